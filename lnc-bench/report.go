package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lance-go/lance/lnc-bench/internal/histogram"
)

// mib is the unit of every MB figure: 2^20 bytes, as upstream lnc-bench
// and nats bench count.
const mib = 1 << 20

// latencyStats summarizes a latency histogram, in microseconds.
type latencyStats struct {
	Samples uint64  `json:"samples"`
	MinUS   float64 `json:"min_us"`
	MeanUS  float64 `json:"mean_us"`
	P50US   float64 `json:"p50_us"`
	P95US   float64 `json:"p95_us"`
	P99US   float64 `json:"p99_us"`
	P999US  float64 `json:"p999_us"`
	MaxUS   float64 `json:"max_us"`
}

func latencyFrom(h *histogram.Histogram) *latencyStats {
	us := func(ns uint64) float64 { return float64(ns) / 1e3 }
	return &latencyStats{
		Samples: h.Count(),
		MinUS:   us(h.Min()),
		MeanUS:  h.Mean() / 1e3,
		P50US:   us(h.Percentile(50)),
		P95US:   us(h.Percentile(95)),
		P99US:   us(h.Percentile(99)),
		P999US:  us(h.Percentile(99.9)),
		MaxUS:   us(h.Max()),
	}
}

// phaseResult is what one phase measured.
type phaseResult struct {
	name string

	// Msgs is the records acknowledged (produce) or read (consume) in
	// the measured window, and Bytes their values' bytes.
	Msgs       uint64  `json:"msgs"`
	Bytes      uint64  `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"`
	// Errors counts records that failed, warm-up and drain included.
	Errors     uint64        `json:"errors"`
	FirstError string        `json:"first_error,omitempty"`
	Latency    *latencyStats `json:"latency"`
	// Backpressure counts the server's backpressure frames, Reconnects
	// the client's reconnections (lnc client only).
	Backpressure uint64 `json:"backpressure_frames"`
	Reconnects   uint64 `json:"reconnects"`
	// LogBytes (consume) is the log bytes read, TLV headers included;
	// EndOffset the end the replay reads up to, and ReachedEnd whether
	// every reader got there before --duration ran out.
	LogBytes    uint64 `json:"log_bytes,omitempty"`
	EndOffset   uint64 `json:"end_offset,omitempty"`
	ReachedEnd  *bool  `json:"reached_end,omitempty"`
	Interrupted bool   `json:"interrupted"`
}

// rates fills the per-second figures.
func (p *phaseResult) rates() {
	if p.Seconds > 0 {
		p.MsgsPerSec = float64(p.Msgs) / p.Seconds
		p.MBPerSec = float64(p.Bytes) / mib / p.Seconds
	}
}

// Gate outcomes.
const (
	gatePass = "PASS"
	gateFail = "FAIL"
	gateSkip = "SKIP"
)

// gate is one pass/fail check.
type gate struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// result is the whole run: the settings, each phase, the gates. Its JSON
// form is what --json prints; the top-level figures repeat those of the
// main phase (produce, or consume with --mode consume).
type result struct {
	cfg *config

	Tool            string  `json:"tool"`
	Endpoint        string  `json:"endpoint"`
	Topic           string  `json:"topic"`
	Mode            string  `json:"mode"`
	Client          string  `json:"client"`
	Acks            string  `json:"acks"`
	Connections     int     `json:"connections"`
	Pipeline        *int    `json:"pipeline"`
	MsgSize         int     `json:"msg_size"`
	BatchSize       int     `json:"batch_size"`
	RecordsPerBatch int     `json:"records_per_batch"`
	LingerMS        *int    `json:"linger_ms"`
	Idempotent      bool    `json:"idempotent"`
	WarmupSec       float64 `json:"warmup_sec"`
	DurationSec     float64 `json:"duration_sec"`

	MsgsPerSec float64  `json:"msgs_per_sec"`
	MBPerSec   float64  `json:"mb_per_sec"`
	Errors     uint64   `json:"errors"`
	P50US      *float64 `json:"p50_us"`
	P95US      *float64 `json:"p95_us"`
	P99US      *float64 `json:"p99_us"`
	P999US     *float64 `json:"p999_us"`
	MaxUS      *float64 `json:"max_us"`

	Produce *phaseResult `json:"produce"`
	Consume *phaseResult `json:"consume"`

	ServerRSSMaxBytes  *uint64 `json:"server_rss_max_bytes"`
	ServerRSSPeakBytes *uint64 `json:"server_rss_peak_bytes"`
	ServerRSSError     string  `json:"server_rss_error,omitempty"`

	Gates       []gate `json:"gates"`
	Pass        bool   `json:"pass"`
	Interrupted bool   `json:"interrupted"`
	Error       string `json:"error,omitempty"`
}

func newResult(cfg *config) *result {
	r := &result{
		cfg: cfg, Tool: "lnc-bench", Endpoint: cfg.endpoint, Topic: cfg.topic, Mode: cfg.mode,
		Client: cfg.client, Acks: cfg.acks, Connections: cfg.connections, MsgSize: cfg.msgSize,
		BatchSize: cfg.batchSize, RecordsPerBatch: cfg.recordsPerBatch(),
		WarmupSec: cfg.warmup.Seconds(), DurationSec: cfg.duration.Seconds(),
	}
	if cfg.acks == acksDurable {
		r.Pipeline = &cfg.pipeline
	}
	if cfg.client == clientLNC {
		r.LingerMS = &cfg.lingerMS
	}
	r.Idempotent = cfg.idempotent
	return r
}

func (r *result) setRSS(rep rssReport) {
	if rep.samples > 0 {
		r.ServerRSSMaxBytes = &rep.max
		if rep.peak > 0 {
			r.ServerRSSPeakBytes = &rep.peak
		}
	}
	if rep.err != nil {
		r.ServerRSSError = rep.err.Error()
	}
}

// main returns the phase the top-level figures repeat.
func (r *result) main() *phaseResult {
	if r.cfg.mode == modeConsume {
		return r.Consume
	}
	return r.Produce
}

// finish copies the main phase's figures to the top level and evaluates
// the gates.
func (r *result) finish() {
	if m := r.main(); m != nil {
		r.MsgsPerSec, r.MBPerSec = m.MsgsPerSec, m.MBPerSec
		if l := m.Latency; l != nil {
			r.P50US, r.P95US, r.P99US, r.P999US, r.MaxUS = &l.P50US, &l.P95US, &l.P99US, &l.P999US, &l.MaxUS
		}
	}
	for _, p := range r.phases() {
		r.Errors += p.Errors
	}
	r.Gates = r.gates()
	r.Pass = true
	for _, g := range r.Gates {
		if g.Status == gateFail {
			r.Pass = false
		}
	}
}

func (r *result) phases() []*phaseResult {
	var out []*phaseResult
	for _, p := range []*phaseResult{r.Produce, r.Consume} {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// gates evaluates upstream's gates (throughput, errors, latency) and the
// RSS limit; a run that failed or was interrupted fails a "run" gate.
func (r *result) gates() []gate {
	c := r.cfg
	var gs []gate
	switch {
	case r.Error != "":
		gs = append(gs, gate{"run", gateFail, r.Error})
	case r.Interrupted:
		gs = append(gs, gate{"run", gateFail, "interrupted before the end"})
	default:
		gs = append(gs, gate{"run", gatePass, "completed"})
	}

	tp := gate{Name: "throughput", Status: gatePass}
	var parts []string
	for _, p := range r.phases() {
		ok := p.MsgsPerSec >= c.minThroughput && p.Seconds > 0
		if !ok {
			tp.Status = gateFail
		}
		parts = append(parts, fmt.Sprintf("%s %s msg/s %s %s", p.name, group(uint64(p.MsgsPerSec)), cmp(ok, ">=", "<"), group(uint64(c.minThroughput))))
	}
	if len(parts) == 0 {
		tp.Status, parts = gateFail, []string{"nothing measured"}
	}
	tp.Detail = strings.Join(parts, "; ")
	gs = append(gs, tp)

	okErr := r.Errors <= uint64(c.maxErrors)
	gs = append(gs, gate{"errors", status(okErr), fmt.Sprintf("%s %s %s", group(r.Errors), cmp(okErr, "<=", ">"), group(uint64(c.maxErrors)))})

	lat := gate{Name: "latency"}
	switch {
	case c.skipLatencyGate:
		lat.Status, lat.Detail = gateSkip, "--skip-latency-gate"
	case r.Produce == nil || r.Produce.Latency == nil:
		lat.Status, lat.Detail = gateSkip, "latency not measured"
	case r.Produce.Latency.Samples == 0:
		lat.Status, lat.Detail = gateFail, "no latency samples in the measured window"
	default:
		l := r.Produce.Latency
		lat.Status = gatePass
		var d []string
		for _, x := range []struct {
			name  string
			us    float64
			limit time.Duration
		}{{"p50", l.P50US, c.maxP50}, {"p99", l.P99US, c.maxP99}, {"p99.9", l.P999US, c.maxP999}} {
			ok := x.us <= float64(x.limit.Microseconds())
			if !ok {
				lat.Status = gateFail
			}
			d = append(d, fmt.Sprintf("%s %s %s %v", x.name, fmtUS(x.us), cmp(ok, "<=", ">"), x.limit))
		}
		lat.Detail = strings.Join(d, ", ")
	}
	gs = append(gs, lat)

	if c.maxServerRSSMiB > 0 {
		g := gate{Name: "server-rss"}
		switch {
		case r.ServerRSSMaxBytes == nil:
			g.Status, g.Detail = gateFail, "no RSS sample: "+r.ServerRSSError
		default:
			ok := *r.ServerRSSMaxBytes <= uint64(c.maxServerRSSMiB)*mib
			g.Status = status(ok)
			g.Detail = fmt.Sprintf("max %.1f MiB %s %d MiB", float64(*r.ServerRSSMaxBytes)/mib, cmp(ok, "<=", ">"), c.maxServerRSSMiB)
		}
		gs = append(gs, g)
	}
	return gs
}

func status(ok bool) string {
	if ok {
		return gatePass
	}
	return gateFail
}

func cmp(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

// fmtUS formats microseconds with a unit that keeps 3 significant digits.
func fmtUS(us float64) string {
	switch {
	case us < 100:
		return fmt.Sprintf("%.1fµs", us)
	case us < 1e3:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

// writeJSON writes the result as one JSON object on one line.
func (r *result) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // gate details hold ">=" and "<="
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the JSON result: %w", err)
	}
	return nil
}

// writeTable writes the human-readable summary.
func (r *result) writeTable(w io.Writer) error {
	c := r.cfg
	var b strings.Builder
	fmt.Fprintf(&b, "lnc-bench: %s on %s, topic %s, client %s\n", c.mode, c.endpoint, c.topic, c.client)
	if c.mode != modeConsume {
		window := fmt.Sprintf("%d batches in flight", c.pipeline)
		if c.acks == acksNoWait {
			window = "no in-flight window (acks nowait)"
		}
		fmt.Fprintf(&b, "  produce: %d connection(s), %s, %d B records, %d B batches (%d records), ",
			c.connections, window, c.msgSize, c.batchSize, c.recordsPerBatch())
		if c.client == clientLNC {
			fmt.Fprintf(&b, "linger %d ms, idempotent %v, ", c.lingerMS, c.idempotent)
		}
		fmt.Fprintf(&b, "warm-up %v, window %v\n", c.warmup, c.duration)
	}
	if c.mode != modeProduce {
		fmt.Fprintf(&b, "  consume: %d connection(s) each replaying the topic from the beginning, %d B fetches, at most %v\n",
			c.connections, c.fetchBytes, c.duration)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tmsgs\tseconds\tmsg/s\tMiB/s\terrors\t")
	for _, p := range r.phases() {
		note := ""
		switch {
		case p.Interrupted:
			note = " (interrupted)"
		case p.ReachedEnd != nil && !*p.ReachedEnd:
			note = " (stopped by --duration before the end)"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%.2f\t%s\t%.1f\t%s\t\n", p.name, note, group(p.Msgs), p.Seconds,
			group(uint64(p.MsgsPerSec)), p.MBPerSec, group(p.Errors))
	}
	tw.Flush()
	if p := r.Produce; p != nil {
		if l := p.Latency; l != nil {
			from := "accepted by the producer"
			if c.client == clientRaw {
				from = "batch written"
			}
			fmt.Fprintf(&b, "\nproduce latency, %s to durable ack, %s records accepted after the warm-up:\n", from, group(l.Samples))
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "min\tmean\tp50\tp95\tp99\tp99.9\tmax\t")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", fmtUS(l.MinUS), fmtUS(l.MeanUS), fmtUS(l.P50US),
				fmtUS(l.P95US), fmtUS(l.P99US), fmtUS(l.P999US), fmtUS(l.MaxUS))
			tw.Flush()
		} else {
			b.WriteString("\nproduce latency: not measured (--latency=false)\n")
		}
		if p.FirstError != "" {
			fmt.Fprintf(&b, "first error: %s\n", p.FirstError)
		}
		fmt.Fprintf(&b, "server backpressure frames: %s, reconnects: %s\n", group(p.Backpressure), group(p.Reconnects))
	}
	if r.ServerRSSMaxBytes != nil {
		fmt.Fprintf(&b, "server RSS: max %.1f MiB while sampled", float64(*r.ServerRSSMaxBytes)/mib)
		if r.ServerRSSPeakBytes != nil {
			fmt.Fprintf(&b, ", peak since its start %.1f MiB", float64(*r.ServerRSSPeakBytes)/mib)
		}
		b.WriteString("\n")
	}
	if r.ServerRSSError != "" {
		fmt.Fprintf(&b, "server RSS sampling: %s\n", r.ServerRSSError)
	}
	b.WriteString("\ngates:\n")
	for _, g := range r.Gates {
		fmt.Fprintf(&b, "  %-11s %s  %s\n", g.Name, g.Status, g.Detail)
	}
	fmt.Fprintf(&b, "OVERALL: %s\n", status(r.Pass))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	return nil
}
