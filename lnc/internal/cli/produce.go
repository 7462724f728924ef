package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	lance "github.com/lance-go/lance/lnc-client"
	"github.com/lance-go/lance/lnc-network/frame"
)

type produceOptions struct {
	conn      connOptions
	topic     string
	data      []string
	files     []string
	key       string
	keySep    string
	typ       string
	timestamp string
	batch     int
	noCreate  bool
}

func newProduceCommand(a *app) *cobra.Command {
	o := &produceOptions{}
	cmd := &cobra.Command{
		Use:   "produce --topic NAME [--data VALUE]... [--file PATH]...",
		Short: "Write records to a topic",
		Long: `Write records to a topic, creating it first when it does not exist (unless
--no-create).

Input: each --data value is one record; each --file is one record holding the
whole file (- for standard input); without either, every line of standard input
is one record (the line break, and a carriage return before it, removed; empty
lines skipped).

--type picks the record's TLV type: auto (the default: kv when a key is given,
timestamped when a timestamp is, key-timestamped for both, raw otherwise), raw,
json (each value must be valid JSON), msgpack, protobuf, avro, kv,
timestamped, key-timestamped, null (a tombstone: --data '' only), or a type
byte such as 0x80. --key gives every record the same key; --key-separator
splits each --data value or line at its first separator into key and value.
--timestamp sets the records' own timestamp (RFC 3339, Unix time with ns, ms or
s, -DURATION, or now); timestamped types default to the time of sending.

Records go out in batches of up to 64 KiB, several in flight; --batch N sends
N records per batch and waits for each batch's acknowledgement before the next.
lnc prints the number of records written and their offsets.`,
		Args: usageArgs(cobra.NoArgs),
	}
	f := cmd.Flags()
	addConnFlags(f, &o.conn)
	f.StringVarP(&o.topic, "topic", "t", "", "topic to write to (required)")
	f.StringArrayVarP(&o.data, "data", "d", nil, "a record's value (repeatable)")
	f.StringArrayVar(&o.files, "file", nil, "a file whose whole content is one record, - for standard input (repeatable)")
	f.StringVarP(&o.key, "key", "k", "", "key of every record")
	f.StringVar(&o.keySep, "key-separator", "", "split each value or line at the first SEP into key and value")
	f.StringVar(&o.typ, "type", "auto", "record type: "+typeList()+", or a type byte such as 0x80")
	f.StringVar(&o.timestamp, "timestamp", "", "the records' timestamp: RFC 3339, Unix time with ns, ms or s, -DURATION, or now")
	f.IntVar(&o.batch, "batch", 0, "records per batch, each batch acknowledged before the next (0: batches of up to 64 KiB, pipelined)")
	f.BoolVar(&o.noCreate, "no-create", false, "fail when the topic does not exist instead of creating it")
	_ = cmd.MarkFlagRequired("topic")
	cmd.MarkFlagsMutuallyExclusive("data", "file")
	cmd.MarkFlagsMutuallyExclusive("key", "key-separator")
	_ = cmd.RegisterFlagCompletionFunc("topic", completeTopics(&o.conn))
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions(typeCompletions(), cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = a.runE(func(cmd *cobra.Command, _ []string) error { return o.run(cmd) })
	return cmd
}

func typeCompletions() []string {
	out := make([]string, len(typeNames))
	for i, tn := range typeNames {
		out[i] = tn.name
	}
	return out
}

// recordMaker turns input values into records as the flags say.
type recordMaker struct {
	typ    lance.RecordType
	key    []byte // nil for none
	keySep []byte // nil for none
	ts     time.Time
	tsNow  bool // a timestamped type without --timestamp: the time of sending
}

// newRecordMaker checks the flags that shape records.
func (o *produceOptions) newRecordMaker(cmd *cobra.Command) (*recordMaker, error) {
	t, err := parseType(o.typ)
	if err != nil {
		return nil, err
	}
	m := &recordMaker{typ: t}
	if cmd.Flags().Changed("key") {
		m.key = []byte(o.key)
	}
	if cmd.Flags().Changed("key-separator") {
		if o.keySep == "" {
			return nil, usagef("--key-separator must not be empty")
		}
		m.keySep = []byte(o.keySep)
	}
	keyed := m.key != nil || m.keySep != nil
	if o.timestamp != "" {
		if m.ts, err = parseTime(o.timestamp, time.Now()); err != nil {
			return nil, usagef("--timestamp: %w", err)
		}
	}
	switch {
	case t == lance.TypeAuto:
	case hasKey(t) && !keyed:
		return nil, usagef("--type %s needs --key or --key-separator", typeName(t))
	case !hasKey(t) && keyed:
		return nil, usagef("--type %s carries no key; use --type auto, kv or key-timestamped", typeName(t))
	case !hasTimestamp(t) && o.timestamp != "":
		return nil, usagef("--type %s carries no timestamp; use --type auto, timestamped or key-timestamped", typeName(t))
	}
	if hasTimestamp(t) && o.timestamp == "" {
		m.tsNow = true
	}
	if t == lance.TypeNull {
		if len(o.data) == 0 {
			return nil, usagef("--type null makes tombstones without a value: give --data ''")
		}
		for _, d := range o.data {
			if d != "" {
				return nil, usagef("--type null records carry no value: give --data ''")
			}
		}
	}
	if m.keySep != nil && len(o.files) > 0 {
		return nil, usagef("--key-separator applies to --data values and lines, not to --file")
	}
	return m, nil
}

// record returns the record for value n (1-based, for messages).
func (m *recordMaker) record(n int64, value []byte) (lance.Record, error) {
	r := lance.Record{Type: m.typ, Key: m.key, Value: value}
	if m.keySep != nil {
		k, v, ok := bytes.Cut(value, m.keySep)
		if !ok {
			return r, fmt.Errorf("record %d has no key separator %q", n, m.keySep)
		}
		r.Key, r.Value = k, v
	}
	switch {
	case m.tsNow:
		r.Timestamp = time.Now()
	case !m.ts.IsZero():
		r.Timestamp = m.ts
	}
	if m.typ == lance.TypeJSON && !json.Valid(r.Value) {
		return r, fmt.Errorf("record %d is not valid JSON (--type json)", n)
	}
	if m.typ == lance.TypeNull {
		r.Value = nil
	}
	return r, nil
}

// delivery follows the acknowledgements of a producer's records.
type delivery struct {
	mu          sync.Mutex
	err         error // the first failure
	acked       int64
	first, last lance.Offset
	known       bool // the server reported offsets
}

func (d *delivery) callback(off lance.Offset, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		if d.err == nil {
			d.err = err
		}
		return
	}
	d.acked++
	if off == lance.UnknownOffset {
		return
	}
	if !d.known {
		d.first, d.known = off, true
	}
	d.last = off
}

func (d *delivery) count() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acked
}

func (d *delivery) failed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// summary describes what was written.
func (d *delivery) summary(verb, prep, topic string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := fmt.Sprintf("%s %d record%s %s %s", verb, d.acked, plural(d.acked), prep, topic)
	if d.known && d.acked > 0 {
		s += fmt.Sprintf(" (offsets %d..%d)", d.first, d.last)
	}
	return s
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// producerFor returns a producer for records sent n per batch (0: the
// client's batching by size).
func producerFor(c *lance.Client, timeout time.Duration, perBatch int) (*lance.Producer, error) {
	opts := []lance.ProducerOption{lance.WithDeliveryTimeout(max(timeout, time.Second))}
	if perBatch > 0 {
		// Batches are cut by Flush only (or when they reach the frame
		// limit).
		opts = append(opts, lance.WithBatchBytes(frame.DefaultMaxPayload-64), lance.WithLinger(24*time.Hour))
	}
	return lance.NewProducer(c, opts...)
}

// ensureTopic creates topic unless it exists, or, with noCreate, only
// checks that it does.
func ensureTopic(ctx context.Context, c *lance.Client, topic string, noCreate bool) error {
	if noCreate {
		_, err := c.GetTopic(ctx, topic)
		return err
	}
	_, err := c.EnsureTopic(ctx, topic)
	return err
}

func (o *produceOptions) run(cmd *cobra.Command) error {
	if err := checkTopic("--topic", o.topic); err != nil {
		return err
	}
	if o.batch < 0 {
		return usagef("--batch must not be negative")
	}
	maker, err := o.newRecordMaker(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	dctx, cancel := o.conn.withTimeout(ctx)
	defer cancel()
	c, err := o.conn.dial(dctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := ensureTopic(dctx, c, o.topic, o.noCreate); err != nil {
		return err
	}
	p, err := producerFor(c, o.conn.timeout, o.batch)
	if err != nil {
		return err
	}
	d := &delivery{}
	var n int64
	send := func(value []byte) error {
		if err := d.failed(); err != nil {
			return err
		}
		n++
		rec, err := maker.record(n, value)
		if err != nil {
			return err
		}
		if err := p.Produce(ctx, o.topic, rec, d.callback); err != nil {
			return err
		}
		if o.batch > 0 && n%int64(o.batch) == 0 {
			return p.Flush(ctx)
		}
		return nil
	}
	err = o.feed(cmd, send)
	if cerr := p.Close(ctx); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.failed()
	}
	if err == nil || d.count() > 0 {
		fmt.Fprintln(cmd.OutOrStdout(), d.summary("produced", "to", o.topic))
	}
	return err
}

// feed hands every input value to send.
func (o *produceOptions) feed(cmd *cobra.Command, send func([]byte) error) error {
	switch {
	case len(o.data) > 0:
		for _, v := range o.data {
			if err := send([]byte(v)); err != nil {
				return err
			}
		}
		return nil
	case len(o.files) > 0:
		for _, name := range o.files {
			var b []byte
			var err error
			if name == "-" {
				b, err = io.ReadAll(cmd.InOrStdin())
			} else {
				b, err = os.ReadFile(name)
			}
			if err != nil {
				return fmt.Errorf("--file: %w", err)
			}
			if err := send(b); err != nil {
				return err
			}
		}
		return nil
	}
	r := bufio.NewReaderSize(cmd.InOrStdin(), 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(line) > 0 {
				if err := send(line); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
	}
}
