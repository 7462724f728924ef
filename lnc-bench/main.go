// Command lnc-bench measures a LANCE server: produce throughput and
// per-record latency (from the producer accepting a record to its durable
// ack) over several pipelined connections, and replay throughput (consume
// from the beginning). It keeps the flags of upstream's lnc-bench and its
// gates (minimum throughput, maximum errors, latency limits) with the same
// exit status: 0 when every gate passes, 1 when one fails, 2 for a bad
// command line.
//
// See `lnc-bench --help` and docs/performance.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "lnc-bench: %v\n(see lnc-bench --help)\n", err)
		return 2
	}
	if cfg.cpuProfile != "" {
		stopProfile, err := startCPUProfile(cfg.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "lnc-bench: %v\n", err)
			return 1
		}
		defer func() {
			if err := stopProfile(); err != nil {
				fmt.Fprintf(stderr, "lnc-bench: %v\n", err)
			}
		}()
	}
	res := bench(ctx, &cfg, stderr)
	table := stdout
	if cfg.json {
		table = stderr
	}
	if err := res.writeTable(table); err != nil {
		fmt.Fprintf(stderr, "lnc-bench: %v\n", err)
		return 1
	}
	if cfg.json {
		if err := res.writeJSON(stdout); err != nil {
			fmt.Fprintf(stderr, "lnc-bench: %v\n", err)
			return 1
		}
	}
	if !res.Pass {
		return 1
	}
	return 0
}

// startCPUProfile profiles this process into path until the returned
// function is called.
func startCPUProfile(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return nil
	}, nil
}
