// Package cli is the `lnc` command line: a cobra command tree whose
// commands speak LWP to a lance server through lnc-client (produce,
// consume, topics, cluster, export, import) or read a data directory
// offline through lnc-io (inspect, verify, repair). docs/cli.md describes
// every command.
//
// Every command is built by a NewXCommand function with its own options
// struct, returns its errors from RunE and prints through the command's
// OutOrStdout and ErrOrStderr, so that tests run the tree in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit statuses.
const (
	ExitOK          = 0
	ExitError       = 1   // the command failed (or, for verify and repair, found damage)
	ExitUsage       = 2   // bad command line: unknown command or flag, bad value, missing argument
	ExitInterrupted = 130 // SIGINT or SIGTERM ended the command
)

// usageError marks an error of the command line rather than of running it.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// app is what the commands of one tree share.
type app struct {
	// ran is set when a command's own code starts: an error before that
	// came from cobra's parsing of the command line.
	ran bool
}

// runE wraps a command's run function so that app knows it started.
func (a *app) runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.ran = true
		return fn(cmd, args)
	}
}

// NewRootCommand returns a new `lnc` command tree.
func NewRootCommand() *cobra.Command {
	root, _ := newRoot()
	return root
}

func newRoot() (*cobra.Command, *app) {
	a := &app{}
	root := &cobra.Command{
		Use:   "lnc",
		Short: "Command-line client of the LANCE stream server",
		Long: `lnc produces to and consumes from a lance server, administers its topics,
and inspects, verifies and repairs a data directory while no server runs on it.

Network commands connect to --endpoint (default 127.0.0.1:1992, or $LNC_ENDPOINT).
Topics are always named, never numbered.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newProduceCommand(a),
		newConsumeCommand(a),
		newTopicsCommand(a),
		newClusterCommand(a),
		newExportCommand(a),
		newImportCommand(a),
	)
	addOfflineCommands(root, a)
	return root, a
}

// usageArgs turns the errors of a cobra argument check into usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// groupRunE is the RunE of a command that only groups others: without
// arguments it prints its help, with one it refuses the unknown command.
func groupRunE(a *app) func(*cobra.Command, []string) error {
	return a.runE(func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return cmd.Help()
	})
}

// Main runs lnc with args (without the program name), reading stdin and
// writing stdout and stderr, and returns the exit status. ctx ends the
// command when it is cancelled (main cancels it on SIGINT and SIGTERM).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root, a := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var ue usageError
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "lnc: interrupted")
		return ExitInterrupted
	case errors.As(err, &ue) || !a.ran:
		fmt.Fprintf(stderr, "lnc: %v\n", err)
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return ExitUsage
	}
	fmt.Fprintf(stderr, "lnc: %v\n", err)
	return ExitError
}
