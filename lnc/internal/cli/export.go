package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	lance "github.com/lance-go/lance/lnc-client"
	"github.com/lance-go/lance/lnc/internal/exportfile"
)

type exportOptions struct {
	conn   connOptions
	topic  string
	file   string
	offset string
	max    int64
}

func newExportCommand(a *app) *cobra.Command {
	o := &exportOptions{}
	cmd := &cobra.Command{
		Use:   "export --topic NAME [--file PATH]",
		Short: "Save a topic's records to a file",
		Long: `Save a topic's records, from --offset (as in consume) up to the end of the log as
it was when the command started, to an export file that lnc import turns back
into the same records: type, key, value and timestamp (docs/cli.md gives its
bytes). The file is written beside PATH and renamed over it once complete; with
--file - (the default) it goes to standard output and the summary to standard
error.`,
		Args: usageArgs(cobra.NoArgs),
	}
	f := cmd.Flags()
	addConnFlags(f, &o.conn)
	f.StringVarP(&o.topic, "topic", "t", "", "topic to export (required)")
	f.StringVar(&o.file, "file", "-", "file to write, - for standard output")
	f.StringVar(&o.offset, "offset", "earliest", "where to start: earliest, a byte offset, or @TIME (as in consume)")
	f.Int64Var(&o.max, "max", 0, "stop after this many records (0: no limit)")
	_ = cmd.MarkFlagRequired("topic")
	_ = cmd.RegisterFlagCompletionFunc("topic", completeTopics(&o.conn))
	cmd.RunE = a.runE(func(cmd *cobra.Command, _ []string) error { return o.run(cmd) })
	return cmd
}

func (o *exportOptions) run(cmd *cobra.Command) error {
	if err := checkTopic("--topic", o.topic); err != nil {
		return err
	}
	from, err := parseStart(o.offset, time.Now())
	if err != nil {
		return err
	}
	if from.kind == startLatest {
		return usagef("--offset latest exports nothing: give earliest, a byte offset or @TIME")
	}
	if o.max < 0 {
		return usagef("--max must not be negative")
	}
	if o.file == "" {
		return usagef("--file must not be empty")
	}
	ctx := cmd.Context()
	dctx, cancel := o.conn.withTimeout(ctx)
	defer cancel()
	c, err := o.conn.dial(dctx)
	if err != nil {
		return err
	}
	defer c.Close()

	out, commit, abort, err := createOutput(cmd, o.file)
	if err != nil {
		return err
	}
	var w *exportfile.Writer
	var first, last lance.Offset
	spec := readSpec{topic: o.topic, from: from, max: o.max}
	res, err := readTopic(ctx, c, o.conn.timeout, spec, func(r *lance.Record) error {
		if w == nil {
			// The header names the first record's offset; an empty
			// export gets its header below.
			nw, err := exportfile.NewWriter(out, exportfile.Header{Topic: o.topic, CreatedNS: uint64(time.Now().UnixNano()), StartOffset: uint64(r.Offset)})
			if err != nil {
				return err
			}
			w, first = nw, r.Offset
		}
		last = r.Offset
		return w.Write(toExport(r))
	}, func() error { return nil })
	if err == nil && w == nil {
		w, err = exportfile.NewWriter(out, exportfile.Header{Topic: o.topic, CreatedNS: uint64(time.Now().UnixNano()), StartOffset: uint64(res.Start)})
	}
	if err == nil {
		err = w.Close(uint64(res.Next))
	}
	if err == nil {
		err = commit()
	}
	if err != nil {
		abort()
		return err
	}
	msg := fmt.Sprintf("exported %d record%s of %s", res.Count, plural(res.Count), o.topic)
	if res.Count > 0 {
		msg += fmt.Sprintf(" (offsets %d..%d)", first, last)
	}
	if o.file == "-" {
		fmt.Fprintln(cmd.ErrOrStderr(), msg)
	} else {
		fmt.Fprintf(cmd.OutOrStdout(), "%s to %s\n", msg, o.file)
	}
	return nil
}

// toExport converts a consumed record.
func toExport(r *lance.Record) *exportfile.Record {
	e := &exportfile.Record{Type: r.Type, Value: r.Value, Offset: uint64(r.Offset)}
	if exportfile.HasKey(r.Type) {
		e.Key = r.Key
	}
	if exportfile.HasTimestamp(r.Type) {
		e.TimestampNS = uint64(r.Timestamp.UnixNano())
	}
	return e
}

// createOutput opens where an export goes: standard output, or a temporary
// file beside path that commit syncs and renames over path and abort
// removes.
func createOutput(cmd *cobra.Command, path string) (out io.Writer, commit func() error, abort func(), err error) {
	if path == "-" {
		return cmd.OutOrStdout(), func() error { return nil }, func() {}, nil
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--file: %w", err)
	}
	abort = func() {
		f.Close()
		os.Remove(f.Name())
	}
	commit = func() error {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		if err := os.Rename(f.Name(), path); err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		d, err := os.Open(dir)
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		defer d.Close()
		if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
			return fmt.Errorf("--file: sync %s: %w", dir, err)
		}
		return nil
	}
	return f, commit, abort, nil
}
