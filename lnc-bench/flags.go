package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	lance "github.com/lance-go/lance/lnc-client"
	"github.com/lance-go/lance/lnc-core/tlv"
	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

// Modes, acknowledgement policies and client paths accepted by the flags.
const (
	modeProduce = "produce"
	modeConsume = "consume"
	modeBoth    = "both"

	acksDurable = "durable"
	acksNoWait  = "nowait"

	clientLNC = "lnc"
	clientRaw = "raw"
)

// maxMsgSize keeps one record, with its TLV header, inside one ingest
// frame of the default maximum size, as the client's batch limit requires.
const maxMsgSize = frame.DefaultMaxPayload - 64 - tlv.HeaderSize

// config is everything the command line sets.
type config struct {
	endpoint       string
	topic          string
	duration       time.Duration
	warmup         time.Duration
	reportInterval time.Duration
	msgSize        int
	connections    int
	batchSize      int
	lingerMS       int
	pipeline       int
	latency        bool
	idempotence    bool // as asked; see idempotent

	// idempotent is whether the lnc producer really runs idempotent: asked
	// for, with the lnc client, and a window the client allows for it.
	idempotent bool

	minThroughput   float64
	maxErrors       int64
	skipLatencyGate bool
	maxP50          time.Duration
	maxP99          time.Duration
	maxP999         time.Duration
	maxServerRSSMiB int64

	mode       string
	acks       string
	client     string
	fetchBytes int

	serverMetrics string
	serverPID     int

	json       bool
	cpuProfile string

	// set holds the long names of the flags given on the command line.
	set map[string]bool
}

// seconds is a duration flag that takes upstream's whole seconds ("30")
// as well as Go durations ("1500ms", "2m").
type seconds struct{ d *time.Duration }

func (s seconds) String() string {
	if s.d == nil {
		return ""
	}
	return s.d.String()
}

func (s seconds) Set(v string) error {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e9 {
			return fmt.Errorf("%q is not a usable number of seconds", v)
		}
		*s.d = time.Duration(f * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is neither seconds nor a duration such as 1500ms", v)
	}
	*s.d = d
	return nil
}

// choice is a string flag limited to a few values.
type choice struct {
	v       *string
	allowed []string
}

func (c choice) String() string {
	if c.v == nil {
		return ""
	}
	return *c.v
}

func (c choice) Set(v string) error {
	for _, a := range c.allowed {
		if v == a {
			*c.v = v
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(c.allowed, ", "))
}

// shortNames are upstream's one-letter aliases.
var shortNames = map[string]string{
	"e": "endpoint", "t": "topic-name", "d": "duration", "s": "msg-size",
	"c": "connections", "b": "batch-size", "l": "linger-ms", "w": "warmup", "p": "pipeline",
}

// usageText is what --help prints. TestUsageListsEveryFlag keeps it and
// the flag set in step; docs/performance.md repeats it.
const usageText = `Usage: lnc-bench --endpoint HOST:PORT [flags]

Measures produce throughput and latency, and replay (consume) throughput,
against a LANCE server. Exit status: 0 all gates passed, 1 a gate failed or
the run failed, 2 bad flags.

Load:
  -e, --endpoint HOST:PORT        server address (required)
  -t, --topic-name NAME           topic, created when missing (default bench-topic)
      --mode MODE                 produce, consume or both: both produces, then
                                  replays the topic from the beginning (default produce)
  -d, --duration SECS|DUR         measured window of each phase; a replay ends
                                  sooner when it reaches the end (default 30)
  -w, --warmup SECS|DUR           produce load before the measured window, left out
                                  of throughput and latency (default 3)
  -s, --msg-size BYTES            record value size; each record is TLV-framed,
                                  5 bytes more on the wire (default 1024)
  -c, --connections N             connections, each with its own producer or
                                  consumer (default 1)
  -b, --batch-size BYTES          batch size; 0 sends one record per batch
                                  (default 65536)
  -l, --linger-ms MS              wait for a batch to fill (lnc client only); 0 sends
                                  a batch as soon as the window has room (default 1)
  -p, --pipeline N                batches in flight per connection awaiting acks
                                  (--acks durable only) (default 64)
      --acks POLICY               durable: at most --pipeline unacknowledged batches
                                  per connection; nowait: send without waiting for
                                  acks, held back only by the server's backpressure
                                  and a 128 MiB buffer per connection (default durable)
      --client PATH               lnc: the lnc-client Producer and Consumer; raw:
                                  ingest frames written straight to the socket,
                                  to measure the server alone (default lnc)
      --idempotence               idempotent producer (lnc client only): the client's
                                  default, which allows at most 128 batches in flight;
                                  off by itself when the window is larger, unless
                                  given explicitly (default true)
      --fetch-bytes BYTES         most data per fetch when consuming (default 1048576)
      --latency                   measure per-record latency; --latency=false turns
                                  it off (default true)

Output:
      --report-interval SECS|DUR  progress line on stderr; 0 turns it off (default 5)
      --json                      print one JSON object, on one line, on stdout at
                                  the end; the table then goes to stderr
      --server-metrics URL        the server's /metrics (health port), sampled every
                                  500 ms for process_resident_memory_bytes
      --server-pid PID            sample the server's RSS from /proc/PID/status
                                  instead
      --cpuprofile FILE           write a CPU profile of lnc-bench itself (go tool
                                  pprof), to see what the client costs

Gates (each failure makes the exit status 1):
      --min-throughput-msgs-per-sec N   each phase at least N msg/s (default 10000)
      --max-errors N                    at most N failed records (default 0)
      --max-p50 DUR                     produce p50 latency at most DUR (default 5ms)
      --max-p99 DUR                     produce p99 latency at most DUR (default 50ms)
      --max-p999 DUR                    produce p99.9 latency at most DUR (default 100ms)
      --skip-latency-gate               do not check the three latency limits
      --max-server-rss-mib N            largest server RSS sampled during the run at most
                                        N MiB; needs --server-metrics or --server-pid
                                        (default 0: off)
`

// newFlagSet registers every flag on a fresh set bound to cfg.
func newFlagSet(cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet("lnc-bench", flag.ContinueOnError)
	*cfg = config{
		topic:          "bench-topic",
		duration:       30 * time.Second,
		warmup:         3 * time.Second,
		reportInterval: 5 * time.Second,
		msgSize:        1024,
		connections:    1,
		batchSize:      65536,
		lingerMS:       1,
		pipeline:       64,
		latency:        true,
		idempotence:    true,
		minThroughput:  10000,
		maxP50:         5 * time.Millisecond,
		maxP99:         50 * time.Millisecond,
		maxP999:        100 * time.Millisecond,
		mode:           modeProduce,
		acks:           acksDurable,
		client:         clientLNC,
		fetchBytes:     1 << 20,
	}
	fs.StringVar(&cfg.endpoint, "endpoint", "", "server address host:port")
	fs.StringVar(&cfg.topic, "topic-name", cfg.topic, "topic")
	fs.Var(seconds{&cfg.duration}, "duration", "measured window")
	fs.Var(seconds{&cfg.warmup}, "warmup", "warm-up before the measured window")
	fs.Var(seconds{&cfg.reportInterval}, "report-interval", "progress line interval")
	fs.IntVar(&cfg.msgSize, "msg-size", cfg.msgSize, "record value size in bytes")
	fs.IntVar(&cfg.connections, "connections", cfg.connections, "connections")
	fs.IntVar(&cfg.batchSize, "batch-size", cfg.batchSize, "batch size in bytes")
	fs.IntVar(&cfg.lingerMS, "linger-ms", cfg.lingerMS, "linger in milliseconds")
	fs.IntVar(&cfg.pipeline, "pipeline", cfg.pipeline, "batches in flight per connection")
	fs.BoolVar(&cfg.latency, "latency", cfg.latency, "measure latency")
	fs.BoolVar(&cfg.idempotence, "idempotence", cfg.idempotence, "idempotent producer")
	fs.Float64Var(&cfg.minThroughput, "min-throughput-msgs-per-sec", cfg.minThroughput, "throughput gate")
	fs.Int64Var(&cfg.maxErrors, "max-errors", cfg.maxErrors, "error gate")
	fs.BoolVar(&cfg.skipLatencyGate, "skip-latency-gate", false, "skip the latency gate")
	fs.DurationVar(&cfg.maxP50, "max-p50", cfg.maxP50, "p50 gate")
	fs.DurationVar(&cfg.maxP99, "max-p99", cfg.maxP99, "p99 gate")
	fs.DurationVar(&cfg.maxP999, "max-p999", cfg.maxP999, "p99.9 gate")
	fs.Int64Var(&cfg.maxServerRSSMiB, "max-server-rss-mib", 0, "server RSS gate in MiB")
	fs.Var(choice{&cfg.mode, []string{modeProduce, modeConsume, modeBoth}}, "mode", "produce, consume or both")
	fs.Var(choice{&cfg.acks, []string{acksDurable, acksNoWait}}, "acks", "durable or nowait")
	fs.Var(choice{&cfg.client, []string{clientLNC, clientRaw}}, "client", "lnc or raw")
	fs.IntVar(&cfg.fetchBytes, "fetch-bytes", cfg.fetchBytes, "bytes per fetch")
	fs.StringVar(&cfg.serverMetrics, "server-metrics", "", "server /metrics URL")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "server process id")
	fs.BoolVar(&cfg.json, "json", false, "JSON output")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "CPU profile file")
	for short, long := range shortNames {
		f := fs.Lookup(long)
		fs.Var(f.Value, short, f.Usage)
	}
	fs.SetOutput(io.Discard)
	return fs
}

// errUsage marks a command line that cannot run; the caller exits 2.
var errUsage = errors.New("bad command line")

// parseArgs parses and validates args. It returns flag.ErrHelp for
// --help (after printing the usage to out) and an error matching errUsage
// for anything else that is wrong.
func parseArgs(args []string, out io.Writer) (config, error) {
	var cfg config
	fs := newFlagSet(&cfg)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(out, usageText)
			return cfg, err
		}
		return cfg, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg.set = make(map[string]bool)
	fs.Visit(func(f *flag.Flag) {
		name := f.Name
		if long, ok := shortNames[name]; ok {
			name = long
		}
		cfg.set[name] = true
	})
	if err := cfg.validate(); err != nil {
		return cfg, fmt.Errorf("%w: %w", errUsage, err)
	}
	return cfg, nil
}

// validate checks ranges and combinations.
func (c *config) validate() error {
	if c.endpoint == "" {
		return errors.New("--endpoint is required")
	}
	if _, _, err := net.SplitHostPort(c.endpoint); err != nil {
		return fmt.Errorf("--endpoint %q: %w", c.endpoint, err)
	}
	if err := control.ValidateTopicName(c.topic); err != nil {
		return fmt.Errorf("--topic-name: %w", err)
	}
	type bound struct {
		name      string
		v, lo, hi int64
	}
	for _, b := range []bound{
		{"msg-size", int64(c.msgSize), 0, maxMsgSize},
		{"connections", int64(c.connections), 1, 1024},
		{"batch-size", int64(c.batchSize), 0, frame.DefaultMaxPayload - 64},
		{"linger-ms", int64(c.lingerMS), 0, 60_000},
		{"pipeline", int64(c.pipeline), 1, 1 << 16},
		{"max-errors", c.maxErrors, 0, math.MaxInt64},
		{"fetch-bytes", int64(c.fetchBytes), 1, control.MaxFetchData},
		{"server-pid", int64(c.serverPID), 0, math.MaxInt32},
		{"max-server-rss-mib", c.maxServerRSSMiB, 0, 1 << 30},
	} {
		if b.v < b.lo || b.v > b.hi {
			return fmt.Errorf("--%s %d out of range %d..%d", b.name, b.v, b.lo, b.hi)
		}
	}
	switch {
	case c.duration <= 0:
		return fmt.Errorf("--duration %v must be positive", c.duration)
	case c.warmup < 0:
		return fmt.Errorf("--warmup %v is negative", c.warmup)
	case c.reportInterval < 0:
		return fmt.Errorf("--report-interval %v is negative", c.reportInterval)
	case c.reportInterval > 0 && c.reportInterval < 10*time.Millisecond:
		return fmt.Errorf("--report-interval %v is below 10ms", c.reportInterval)
	case c.minThroughput < 0 || math.IsNaN(c.minThroughput) || math.IsInf(c.minThroughput, 0):
		return fmt.Errorf("--min-throughput-msgs-per-sec %v must be a number ≥ 0", c.minThroughput)
	case c.maxP50 <= 0 || c.maxP99 <= 0 || c.maxP999 <= 0:
		return errors.New("--max-p50, --max-p99 and --max-p999 must be positive")
	case c.serverMetrics != "" && c.serverPID != 0:
		return errors.New("give --server-metrics or --server-pid, not both")
	case c.maxServerRSSMiB > 0 && c.serverMetrics == "" && c.serverPID == 0:
		return errors.New("--max-server-rss-mib needs --server-metrics or --server-pid")
	}
	if c.serverMetrics != "" && !strings.HasPrefix(c.serverMetrics, "http://") && !strings.HasPrefix(c.serverMetrics, "https://") {
		return fmt.Errorf("--server-metrics %q is not an http(s) URL", c.serverMetrics)
	}
	// Flags that would be silently ignored are refused instead.
	produceOnly := []string{"warmup", "msg-size", "batch-size", "linger-ms", "pipeline", "acks", "latency",
		"idempotence", "max-p50", "max-p99", "max-p999", "skip-latency-gate"}
	if c.mode == modeConsume {
		for _, f := range produceOnly {
			if c.set[f] {
				return fmt.Errorf("--%s applies to producing, not to --mode consume", f)
			}
		}
	}
	if c.mode == modeProduce && c.set["fetch-bytes"] {
		return errors.New("--fetch-bytes applies to consuming, not to --mode produce")
	}
	if c.client == clientRaw && c.set["linger-ms"] {
		return errors.New("--linger-ms applies to --client lnc: the raw path always has whole batches ready")
	}
	if c.acks == acksNoWait && c.set["pipeline"] {
		return errors.New("--pipeline bounds --acks durable; --acks nowait has no in-flight window")
	}
	if c.client == clientRaw && c.set["idempotence"] {
		return errors.New("--idempotence applies to --client lnc: the raw path sends plain batches")
	}
	fits := c.window() <= lance.MaxIdempotentInFlight
	if c.idempotence && c.set["idempotence"] && !fits {
		return fmt.Errorf("--idempotence needs at most %d batches in flight (lnc-client's limit); use --idempotence=false", lance.MaxIdempotentInFlight)
	}
	c.idempotent = c.idempotence && c.client == clientLNC && fits
	return nil
}

// recordSize is the encoded size of one record: TLV header and value.
func (c *config) recordSize() int { return tlv.HeaderSize + c.msgSize }

// recordsPerBatch is how many records fill one batch of --batch-size
// bytes (at least one).
func (c *config) recordsPerBatch() int { return max(1, c.batchSize/c.recordSize()) }

// window is the number of batches a connection keeps unacknowledged.
func (c *config) window() int {
	if c.acks == acksNoWait {
		return noWaitWindow
	}
	return c.pipeline
}

// noWaitWindow is the in-flight limit of --acks nowait: far more batches
// than the server lets a connection have in flight, so that its
// backpressure is what holds the sender back.
const noWaitWindow = 1 << 16

// noWaitBuffer bounds the encoded bytes one connection holds unacknowledged
// with --acks nowait.
const noWaitBuffer = 128 << 20
