// Command lance is the LANCE stream server. With no arguments it runs a
// single node (L1) with data in ./data, clients on 0.0.0.0:1992 and
// health and metrics on 0.0.0.0:8080. `lance --help` lists every flag,
// its environment variable and default; docs/configuration.md the file.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/lance-go/lance/lance/internal/config"
	"github.com/lance-go/lance/lance/internal/node"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run returns the process exit status: 0 after a clean drain, 1 when the
// node failed or the drain ran out of time, 2 for bad configuration.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, action, err := config.Load(args, os.LookupEnv, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "lance: %v\n", err)
		return 2
	}
	if action != config.ActionRun {
		return 0
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "lance: %v\n", err)
		return 2
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)

	n, err := node.Start(cfg, log)
	if err != nil {
		log.Error("start-up failed", "err", err)
		return 1
	}
	select {
	case s := <-sig:
		log.Info("draining", "signal", s.String(), "grace", cfg.Node.ShutdownGrace)
		go func() {
			// A second signal during the drain is reported, not obeyed:
			// the grace period bounds the drain.
			for s := range sig {
				log.Warn("still draining", "signal", s.String())
			}
		}()
		if err := n.Shutdown(cfg.Node.ShutdownGrace); err != nil {
			log.Error("drain incomplete", "err", err)
			return 1
		}
		return 0
	case err := <-n.Wait():
		log.Error("client listener stopped", "err", err)
		n.Shutdown(cfg.Node.ShutdownGrace)
		return 1
	}
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	level, err := node.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, errors.New(`log.format: want "text" or "json"`)
}
