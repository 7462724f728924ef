package cli

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	lance "github.com/lance-go/lance/lnc-client"
)

type consumeOptions struct {
	conn   connOptions
	topic  string
	offset string
	follow bool
	output string
	max    int64
}

func newConsumeCommand(a *app) *cobra.Command {
	o := &consumeOptions{}
	cmd := &cobra.Command{
		Use:   "consume --topic NAME",
		Short: "Print a topic's records",
		Long: `Print a topic's records, from --offset up to the end of the log as it was when
the command started, or, with --follow, on and on as new records arrive (until
interrupted, which exits with status 0).

--offset is earliest (the first retained record, the default), latest (the end:
only new records, useful with --follow), a byte offset (the first record at or
after it), or @TIME: the first batch produced at or after TIME, where TIME is
RFC 3339 (@2026-11-27T08:00:00Z), Unix time with a unit (@1764230400000ms,
@1764230400s, @1764230400000000000ns; without a unit 13 digits or fewer are
milliseconds and more are nanoseconds), or a duration before now (@-15m).

--output raw prints each value followed by a newline; json prints one JSON
object per record and line (offset, type, timestamp, key, value; keys and values
that are not UTF-8 as key_base64 and value_base64); table prints aligned
columns with values escaped.`,
		Args: usageArgs(cobra.NoArgs),
	}
	f := cmd.Flags()
	addConnFlags(f, &o.conn)
	f.StringVarP(&o.topic, "topic", "t", "", "topic to read (required)")
	f.StringVar(&o.offset, "offset", "earliest", "where to start: earliest, latest, a byte offset, or @TIME")
	f.BoolVarP(&o.follow, "follow", "f", false, "keep waiting for new records")
	f.StringVarP(&o.output, "output", "o", "raw", "output format: raw, json or table")
	f.Int64Var(&o.max, "max", 0, "stop after this many records (0: no limit)")
	_ = cmd.MarkFlagRequired("topic")
	_ = cmd.RegisterFlagCompletionFunc("topic", completeTopics(&o.conn))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"raw", "json", "table"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("offset", cobra.FixedCompletions([]string{"earliest", "latest"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = a.runE(func(cmd *cobra.Command, _ []string) error { return o.run(cmd) })
	return cmd
}

func (o *consumeOptions) run(cmd *cobra.Command) error {
	if err := checkTopic("--topic", o.topic); err != nil {
		return err
	}
	from, err := parseStart(o.offset, time.Now())
	if err != nil {
		return err
	}
	if o.max < 0 {
		return usagef("--max must not be negative")
	}
	var print func(w *bufio.Writer, r *lance.Record) error
	switch o.output {
	case "raw":
		print = printRaw
	case "json":
		print = printJSON
	case "table":
		print = printTable
	default:
		return usagef("--output %q: want raw, json or table", o.output)
	}
	ctx := cmd.Context()
	dctx, cancel := o.conn.withTimeout(ctx)
	defer cancel()
	c, err := o.conn.dial(dctx)
	if err != nil {
		return err
	}
	defer c.Close()
	w := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	header := o.output != "table" // printed before the first record, or at the end
	printHeader := func() {
		if !header {
			fmt.Fprintf(w, "%-12s  %-15s  %-30s  %-16s  %s\n", "OFFSET", "TYPE", "TIMESTAMP", "KEY", "VALUE")
			header = true
		}
	}
	spec := readSpec{topic: o.topic, from: from, follow: o.follow, max: o.max, warn: cmd.ErrOrStderr()}
	_, err = readTopic(ctx, c, o.conn.timeout, spec, func(r *lance.Record) error {
		printHeader()
		return print(w, r)
	}, w.Flush)
	if err == nil {
		printHeader()
	}
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return err
}

func printRaw(w *bufio.Writer, r *lance.Record) error {
	w.Write(r.Value)
	return w.WriteByte('\n')
}

// recordJSON is a record as --output json prints it; a key or value that
// is not UTF-8 goes into the _base64 field instead.
type recordJSON struct {
	Offset      uint64  `json:"offset"`
	Type        string  `json:"type"`
	Timestamp   *string `json:"timestamp,omitempty"`
	Key         *string `json:"key,omitempty"`
	KeyBase64   *string `json:"key_base64,omitempty"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"value_base64,omitempty"`
}

func textOrBase64(b []byte) (text, b64 *string) {
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return nil, &s
}

func hasKey(t lance.RecordType) bool {
	return t == lance.TypeKeyValue || t == lance.TypeKeyTimestamped
}

func hasTimestamp(t lance.RecordType) bool {
	return t == lance.TypeTimestamped || t == lance.TypeKeyTimestamped
}

func printJSON(w *bufio.Writer, r *lance.Record) error {
	j := recordJSON{Offset: uint64(r.Offset), Type: typeName(r.Type)}
	if hasTimestamp(r.Type) {
		ts := r.Timestamp.UTC().Format(time.RFC3339Nano)
		j.Timestamp = &ts
	}
	if hasKey(r.Type) {
		j.Key, j.KeyBase64 = textOrBase64(r.Key)
	}
	j.Value, j.ValueBase64 = textOrBase64(r.Value)
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encoding the record at offset %d: %w", r.Offset, err)
	}
	w.Write(b)
	return w.WriteByte('\n')
}

// display shows b on one line: as it is when it is printable UTF-8
// without tabs or line breaks, quoted Go-style otherwise ("" when empty).
func display(b []byte) string {
	if len(b) == 0 {
		return `""`
	}
	if utf8.Valid(b) {
		plain := true
		for _, r := range string(b) {
			if !unicode.IsPrint(r) {
				plain = false
				break
			}
		}
		if plain {
			return string(b)
		}
	}
	return strconv.Quote(string(b))
}

func printTable(w *bufio.Writer, r *lance.Record) error {
	ts, key := "-", "-"
	if hasTimestamp(r.Type) {
		ts = r.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	if hasKey(r.Type) {
		key = display(r.Key)
	}
	_, err := fmt.Fprintf(w, "%-12d  %-15s  %-30s  %-16s  %s\n", r.Offset, typeName(r.Type), ts, key, display(r.Value))
	return err
}
