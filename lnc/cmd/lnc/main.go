// Command lnc is the command-line client of the LANCE stream server:
// produce, consume, topic administration, cluster status, export and
// import over LWP, and offline inspect, verify and repair of a data
// directory. docs/cli.md describes it; `lnc --help` lists the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lance-go/lance/lnc/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
