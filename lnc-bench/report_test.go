package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/lance-go/lance/lnc-bench/internal/histogram"
)

func testConfig(t *testing.T, args string) *config {
	t.Helper()
	cfg, err := parseArgs(strings.Fields("-e 127.0.0.1:1 "+args), new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// produced is a produce phase of n records in one second with latencies
// spread from 100 µs to 100 ms.
func produced(n uint64, errs uint64) *phaseResult {
	var h histogram.Histogram
	for i := range n {
		h.Record(100_000 + i*100_000_000/max(n, 1))
	}
	ph := &phaseResult{name: "produce", Msgs: n, Bytes: n * 1024, Seconds: 1, Errors: errs, Latency: latencyFrom(&h)}
	ph.rates()
	return ph
}

func gateStatus(r *result) map[string]string {
	m := make(map[string]string)
	for _, g := range r.Gates {
		m[g.Name] = g.Status
	}
	return m
}

func TestGates(t *testing.T) {
	cases := []struct {
		name  string
		args  string
		setup func(r *result)
		want  map[string]string
		pass  bool
	}{
		{"all pass", "--max-p50 60ms --max-p99 120ms --max-p999 1s", func(r *result) { r.Produce = produced(20000, 0) },
			map[string]string{"run": gatePass, "throughput": gatePass, "errors": gatePass, "latency": gatePass}, true},
		{"upstream latency limits", "", func(r *result) { r.Produce = produced(20000, 0) },
			map[string]string{"throughput": gatePass, "latency": gateFail}, false},
		{"skip latency", "--skip-latency-gate", func(r *result) { r.Produce = produced(20000, 0) },
			map[string]string{"latency": gateSkip}, true},
		{"slow", "--skip-latency-gate", func(r *result) { r.Produce = produced(5000, 0) },
			map[string]string{"throughput": gateFail}, false},
		{"errors", "--skip-latency-gate --max-errors 2", func(r *result) { r.Produce = produced(20000, 3) },
			map[string]string{"errors": gateFail}, false},
		{"errors allowed", "--skip-latency-gate --max-errors 3", func(r *result) { r.Produce = produced(20000, 3) },
			map[string]string{"errors": gatePass}, true},
		{"no latency", "--latency=false", func(r *result) { r.Produce = produced(20000, 0); r.Produce.Latency = nil },
			map[string]string{"latency": gateSkip}, true},
		{"no samples", "", func(r *result) { r.Produce = produced(20000, 0); r.Produce.Latency = &latencyStats{} },
			map[string]string{"latency": gateFail}, false},
		{"slow replay", "--mode both --skip-latency-gate", func(r *result) {
			r.Produce = produced(20000, 0)
			r.Consume = &phaseResult{name: "consume", Msgs: 10, Seconds: 1}
			r.Consume.rates()
		}, map[string]string{"throughput": gateFail}, false},
		{"run failed", "", func(r *result) { r.Error = "connecting: refused" },
			map[string]string{"run": gateFail, "throughput": gateFail, "latency": gateSkip}, false},
		{"interrupted", "--skip-latency-gate", func(r *result) { r.Produce = produced(20000, 0); r.Interrupted = true },
			map[string]string{"run": gateFail}, false},
		{"rss ok", "--skip-latency-gate --server-pid 1 --max-server-rss-mib 256", func(r *result) {
			r.Produce = produced(20000, 0)
			r.setRSS(rssReport{max: 200 << 20, samples: 3})
		}, map[string]string{"server-rss": gatePass}, true},
		{"rss over", "--skip-latency-gate --server-pid 1 --max-server-rss-mib 256", func(r *result) {
			r.Produce = produced(20000, 0)
			r.setRSS(rssReport{max: 300 << 20, samples: 3})
		}, map[string]string{"server-rss": gateFail}, false},
		{"rss unknown", "--skip-latency-gate --server-pid 1 --max-server-rss-mib 256", func(r *result) {
			r.Produce = produced(20000, 0)
		}, map[string]string{"server-rss": gateFail}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newResult(testConfig(t, c.args))
			c.setup(r)
			r.finish()
			got := gateStatus(r)
			for name, want := range c.want {
				if got[name] != want {
					t.Errorf("gate %s = %q, want %q (%+v)", name, got[name], want, r.Gates)
				}
			}
			if r.Pass != c.pass {
				t.Errorf("pass = %v, want %v (%+v)", r.Pass, c.pass, r.Gates)
			}
			var out bytes.Buffer
			if err := r.writeTable(&out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "OVERALL: "+status(c.pass)) {
				t.Errorf("table does not end with the verdict:\n%s", out.String())
			}
		})
	}
}

// TestJSONShape pins the machine-readable fields.
func TestJSONShape(t *testing.T) {
	r := newResult(testConfig(t, "--mode both --skip-latency-gate --server-pid 1"))
	r.Produce = produced(20000, 0)
	r.Consume = &phaseResult{name: "consume", Msgs: 20000, Bytes: 20000 * 1024, LogBytes: 20000 * 1029, Seconds: 0.5, EndOffset: 20000 * 1029}
	r.Consume.rates()
	r.setRSS(rssReport{max: 100 << 20, peak: 120 << 20, samples: 2})
	r.finish()
	var buf bytes.Buffer
	if err := r.writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	dec := json.NewDecoder(&buf)
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Fatal("more than one JSON value")
	}
	numbers := []string{"msgs_per_sec", "mb_per_sec", "p50_us", "p95_us", "p99_us", "p999_us", "max_us", "errors",
		"connections", "pipeline", "msg_size", "batch_size", "records_per_batch", "linger_ms", "warmup_sec",
		"duration_sec", "server_rss_max_bytes", "server_rss_peak_bytes"}
	for _, k := range numbers {
		if _, ok := m[k].(float64); !ok {
			t.Errorf("%s = %#v, want a number", k, m[k])
		}
	}
	for _, k := range []string{"tool", "endpoint", "topic", "mode", "client", "acks"} {
		if _, ok := m[k].(string); !ok {
			t.Errorf("%s = %#v, want a string", k, m[k])
		}
	}
	for _, k := range []string{"pass", "interrupted", "idempotent"} {
		if _, ok := m[k].(bool); !ok {
			t.Errorf("%s = %#v, want a bool", k, m[k])
		}
	}
	if m["msgs_per_sec"].(float64) != 20000 || m["mb_per_sec"].(float64) != 20000*1024.0/mib {
		t.Errorf("top level %v msg/s %v MiB/s, want the produce phase's", m["msgs_per_sec"], m["mb_per_sec"])
	}
	if m["p99_us"].(float64) != r.Produce.Latency.P99US {
		t.Errorf("p99_us %v, want %v", m["p99_us"], r.Produce.Latency.P99US)
	}
	for _, ph := range []string{"produce", "consume"} {
		p, ok := m[ph].(map[string]any)
		if !ok {
			t.Fatalf("%s = %#v, want an object", ph, m[ph])
		}
		for _, k := range []string{"msgs", "bytes", "seconds", "msgs_per_sec", "mb_per_sec", "errors"} {
			if _, ok := p[k].(float64); !ok {
				t.Errorf("%s.%s = %#v, want a number", ph, k, p[k])
			}
		}
	}
	if _, ok := m["produce"].(map[string]any)["latency"].(map[string]any); !ok {
		t.Error("produce.latency is not an object")
	}
	if m["consume"].(map[string]any)["latency"] != nil {
		t.Error("consume.latency should be null")
	}
	gates, ok := m["gates"].([]any)
	if !ok || len(gates) == 0 {
		t.Fatalf("gates = %#v", m["gates"])
	}
	for _, g := range gates {
		g := g.(map[string]any)
		if g["name"] == nil || g["status"] == nil || g["detail"] == nil {
			t.Errorf("gate %v lacks a field", g)
		}
	}
}

func TestJSONWithoutLatency(t *testing.T) {
	r := newResult(testConfig(t, "--latency=false --acks nowait --client raw"))
	r.Produce = produced(20000, 0)
	r.Produce.Latency = nil
	r.finish()
	var buf bytes.Buffer
	if err := r.writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"p50_us", "p99_us", "p999_us", "pipeline", "linger_ms", "server_rss_max_bytes"} {
		v, present := m[k]
		if !present || v != nil {
			t.Errorf("%s = %#v, want null", k, v)
		}
	}
}

func TestFailedRunExitsOne(t *testing.T) {
	// Nothing listens on port 1 of the loopback: the run fails at once.
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), strings.Fields("-e 127.0.0.1:1 -d 1 --json --report-interval 0"), &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (stderr %s)", code, stderr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout.String())
	}
	if m["pass"] != false || m["error"] == nil {
		t.Fatalf("pass %v error %v", m["pass"], m["error"])
	}
	if !strings.Contains(stderr.String(), "OVERALL: FAIL") {
		t.Fatalf("the table did not go to stderr:\n%s", stderr.String())
	}
}

func TestParseRSS(t *testing.T) {
	metrics := "# HELP x\nlance_ready 1\nprocess_resident_memory_bytes 1.2345e+07\nprocess_resident_memory_peak_bytes 20000000\n"
	rss, peak, err := parseMetricsRSS(strings.NewReader(metrics))
	if err != nil || rss != 12345000 || peak != 20000000 {
		t.Fatalf("metrics: %d %d %v", rss, peak, err)
	}
	if _, _, err := parseMetricsRSS(strings.NewReader("lance_ready 1\n")); err == nil {
		t.Fatal("metrics without the series accepted")
	}
	if _, _, err := parseMetricsRSS(strings.NewReader("process_resident_memory_bytes x\n")); err == nil {
		t.Fatal("a bad value accepted")
	}
	status := "Name:\tlance\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads: 9\n"
	rss, peak, err = parseProcStatus([]byte(status))
	if err != nil || rss != 100<<20 || peak != 200<<20 {
		t.Fatalf("proc: %d %d %v", rss, peak, err)
	}
	if _, _, err := parseProcStatus([]byte("Name:\tzombie\n")); err == nil {
		t.Fatal("status without VmRSS accepted")
	}
	// This process's own status parses.
	rss, _, err = procSource{path: "/proc/self/status"}.sample(context.Background())
	if _, statErr := os.Stat("/proc/self/status"); statErr == nil && (err != nil || rss == 0) {
		t.Fatalf("own status: %d %v", rss, err)
	}
}

func TestFmtUS(t *testing.T) {
	for us, want := range map[float64]string{12.34: "12.3µs", 250: "250µs", 1500: "1.50ms", 2.5e6: "2.50s"} {
		if got := fmtUS(us); got != want {
			t.Errorf("fmtUS(%v) = %q, want %q", us, got, want)
		}
	}
	if group(1234567) != "1,234,567" || group(12) != "12" || group(0) != "0" {
		t.Error("group")
	}
}
