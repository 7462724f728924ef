package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	lance "github.com/lance-go/lance/lnc-client"
	"github.com/lance-go/lance/lnc/internal/exportfile"
)

type importOptions struct {
	conn     connOptions
	file     string
	topic    string
	noCreate bool
}

func newImportCommand(a *app) *cobra.Command {
	o := &importOptions{}
	cmd := &cobra.Command{
		Use:   "import [--file PATH] [--topic NAME]",
		Short: "Write the records of an export file to a topic",
		Long: `Write the records of an export file (made by lnc export) to a topic, by default
the one the file was exported from, creating it when it does not exist (unless
--no-create). Each record keeps its type, key, value and timestamp; offsets and
batch boundaries are the new topic's own.

A file given by path is checked whole (every CRC, the record count) before the
first record is sent, so a damaged file imports nothing. From standard input
(--file -, the default) records are sent as they are read, and damage found
part-way ends the import after the records before it.`,
		Args: usageArgs(cobra.NoArgs),
	}
	f := cmd.Flags()
	addConnFlags(f, &o.conn)
	f.StringVar(&o.file, "file", "-", "export file to read, - for standard input")
	f.StringVarP(&o.topic, "topic", "t", "", "topic to write to (default: the topic named in the file)")
	f.BoolVar(&o.noCreate, "no-create", false, "fail when the topic does not exist instead of creating it")
	_ = cmd.RegisterFlagCompletionFunc("topic", completeTopics(&o.conn))
	cmd.RunE = a.runE(func(cmd *cobra.Command, _ []string) error { return o.run(cmd) })
	return cmd
}

func (o *importOptions) run(cmd *cobra.Command) error {
	if o.topic != "" {
		if err := checkTopic("--topic", o.topic); err != nil {
			return err
		}
	}
	if o.file == "" {
		return usagef("--file must not be empty")
	}
	var in io.Reader = cmd.InOrStdin()
	if o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		if err := checkExport(f); err != nil {
			return fmt.Errorf("%s: %w (nothing was imported)", o.file, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		in = f
	}
	rd, err := exportfile.NewReader(in)
	if err != nil {
		return err
	}
	topic := o.topic
	if topic == "" {
		topic = rd.Header().Topic
		if err := checkTopic("the file's topic", topic); err != nil {
			return fmt.Errorf("%w (give --topic)", err)
		}
	}

	ctx := cmd.Context()
	dctx, cancel := o.conn.withTimeout(ctx)
	defer cancel()
	c, err := o.conn.dial(dctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := ensureTopic(dctx, c, topic, o.noCreate); err != nil {
		return err
	}
	p, err := producerFor(c, o.conn.timeout, 0)
	if err != nil {
		return err
	}
	d := &delivery{}
	for {
		if err = d.failed(); err != nil {
			break
		}
		var r exportfile.Record
		if r, err = rd.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			break
		}
		if err = p.Produce(ctx, topic, fromExport(&r), d.callback); err != nil {
			break
		}
	}
	if cerr := p.Close(ctx); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.failed()
	}
	if err == nil || d.count() > 0 {
		fmt.Fprintln(cmd.OutOrStdout(), d.summary("imported", "into", topic))
	}
	return err
}

// checkExport reads a whole export file, checking every part.
func checkExport(r io.Reader) error {
	rd, err := exportfile.NewReader(r)
	if err != nil {
		return err
	}
	for {
		if _, err := rd.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// fromExport converts an exported record into one to produce.
func fromExport(e *exportfile.Record) lance.Record {
	r := lance.Record{Type: e.Type, Value: e.Value}
	if exportfile.HasKey(e.Type) {
		r.Key = e.Key
		if r.Key == nil {
			r.Key = []byte{}
		}
	}
	if exportfile.HasTimestamp(e.Type) {
		r.Timestamp = time.Unix(0, int64(e.TimestampNS))
	}
	if e.Type == lance.TypeNull {
		r.Value = nil
	}
	return r
}
