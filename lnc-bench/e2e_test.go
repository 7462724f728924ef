package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// lanceBin is the server binary TestMain builds.
var lanceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lnc-bench-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lanceBin = filepath.Join(dir, "lance")
	build := exec.Command("go", "build", "-o", lanceBin, "./cmd/lance")
	build.Dir = filepath.Join("..", "lance")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building lance: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// lockedBuf collects a process's output.
type lockedBuf struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// server is one lance process on 127.0.0.1 with a temporary data
// directory.
type server struct {
	addr, httpAddr string
	pid            int
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	logs := new(lockedBuf)
	for range 5 {
		s := &server{addr: freeAddr(t), httpAddr: freeAddr(t)}
		cmd := exec.Command(lanceBin, "--listen", s.addr, "--health", s.httpAddr, "--data-dir", dir)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		if waitReady(s.httpAddr, done) {
			s.pid = cmd.Process.Pid
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-done
				if t.Failed() {
					t.Logf("lance log:\n%s", logs.String())
				}
			})
			return s
		}
		cmd.Process.Kill()
		<-done
	}
	t.Fatalf("lance did not start:\n%s", logs.String())
	return nil
}

func waitReady(httpAddr string, done chan struct{}) bool {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false
		default:
		}
		resp, err := hc.Get("http://" + httpAddr + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// runJSON runs lnc-bench in this process with --json and returns its exit
// status and decoded result.
func runJSON(t *testing.T, args string) (int, map[string]any, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, append(strings.Fields(args), "--json"), &stdout, &stderr)
	var m map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatalf("exit %d, stdout is not JSON: %v\n%s\nstderr:\n%s", code, err, stdout.String(), stderr.String())
	}
	return code, m, stderr.String()
}

func num(t *testing.T, m map[string]any, path ...string) float64 {
	t.Helper()
	var v any = m
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v: not an object at %q", path, k)
		}
		v = obj[k]
	}
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%v = %#v, not a number", path, v)
	}
	return f
}

// TestProduceThenReplay runs a short produce-then-replay against a real
// server with the lnc client, the server's RSS read from /metrics, and
// checks the figures hang together. No timing is asserted.
func TestProduceThenReplay(t *testing.T) {
	s := startServer(t)
	code, m, stderr := runJSON(t, fmt.Sprintf(
		"-e %s -t e2e -d 1 -w 300ms -c 2 -p 4 -s 200 -b 4096 --mode both --report-interval 250ms "+
			"--skip-latency-gate --min-throughput-msgs-per-sec 1 --server-metrics http://%s/metrics --max-server-rss-mib 4096",
		s.addr, s.httpAddr))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	produced := num(t, m, "produce", "msgs")
	if produced <= 0 || num(t, m, "errors") != 0 {
		t.Fatalf("produced %v, errors %v", produced, m["errors"])
	}
	if got := num(t, m, "msgs_per_sec"); got != num(t, m, "produce", "msgs_per_sec") {
		t.Fatalf("top-level msgs_per_sec %v is not the produce phase's", got)
	}
	// Latency samples are the records accepted after the warm-up, all of
	// them acknowledged by the end of the drain.
	samples := num(t, m, "produce", "latency", "samples")
	if samples < produced*0.5 {
		t.Fatalf("%v latency samples for %v records in the window", samples, produced)
	}
	p50, p99, p999, mx := num(t, m, "p50_us"), num(t, m, "p99_us"), num(t, m, "p999_us"), num(t, m, "max_us")
	if p50 <= 0 || p50 > p99 || p99 > p999 || p999 > mx {
		t.Fatalf("percentiles out of order: p50 %v p99 %v p99.9 %v max %v", p50, p99, p999, mx)
	}
	// The replay inside --mode both is capped by --duration; a second,
	// unhurried replay must read every record exactly once per reader.
	if num(t, m, "consume", "msgs") <= 0 {
		t.Fatal("the replay read nothing")
	}
	checkReplay(t, s, "", produced, 200)
	if num(t, m, "server_rss_max_bytes") <= 0 {
		t.Fatal("no server RSS")
	}
	// The replay may end before its first progress line is due.
	if !strings.Contains(stderr, "lnc-bench produce [") {
		t.Fatalf("no progress lines on stderr:\n%s", stderr)
	}
}

// TestRawPathAndNoWait covers the raw client with --acks nowait, and the
// raw replay, the RSS read from /proc.
func TestRawPathAndNoWait(t *testing.T) {
	s := startServer(t)
	code, m, stderr := runJSON(t, fmt.Sprintf(
		"-e %s -t e2e -d 1 -w 200ms -c 2 --client raw --acks nowait -b 0 -s 64 --mode both --report-interval 0 "+
			"--skip-latency-gate --min-throughput-msgs-per-sec 1 --server-pid %d", s.addr, s.pid))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if num(t, m, "produce", "msgs") <= 0 || num(t, m, "records_per_batch") != 1 || m["pipeline"] != nil {
		t.Fatalf("produce %v records, %v per batch, pipeline %v", m["produce"], m["records_per_batch"], m["pipeline"])
	}
	if num(t, m, "server_rss_max_bytes") <= 0 {
		t.Fatal("no server RSS from /proc")
	}
	checkReplay(t, s, "--client raw", num(t, m, "produce", "msgs"), 64)
}

// checkReplay replays a topic on two connections with time to spare and
// checks that each reader read the whole log: at least the records
// produced in the measured window, value bytes msgSize each.
func checkReplay(t *testing.T, s *server, extra string, produced float64, msgSize int) {
	t.Helper()
	code, m, stderr := runJSON(t, fmt.Sprintf("-e %s -t e2e --mode consume -c 2 -d 60 --report-interval 0 --min-throughput-msgs-per-sec 1 %s", s.addr, extra))
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, stderr)
	}
	c := m["consume"].(map[string]any)
	if c["reached_end"] != true {
		t.Fatalf("replay did not reach the end in 60 s: %v", c)
	}
	replayed := num(t, m, "consume", "msgs")
	if replayed < 2*produced || int(replayed)%2 != 0 {
		t.Fatalf("two readers replayed %v records; %v were produced in the window alone", replayed, produced)
	}
	if num(t, m, "consume", "log_bytes") != 2*num(t, m, "consume", "end_offset") {
		t.Fatalf("readers read %v log bytes, want twice the end offset %v", c["log_bytes"], c["end_offset"])
	}
	if num(t, m, "consume", "bytes") != replayed*float64(msgSize) {
		t.Fatalf("value bytes %v, want %v records × %d", num(t, m, "consume", "bytes"), replayed, msgSize)
	}
}

// TestGateFailsAndLatencyOff: an unreachable throughput gate exits 1,
// and --latency=false leaves the latency fields null.
func TestGateFailsAndLatencyOff(t *testing.T) {
	s := startServer(t)
	code, m, stderr := runJSON(t, fmt.Sprintf("-e %s -d 500ms -w 0 --latency=false --report-interval 0 --min-throughput-msgs-per-sec 1e12", s.addr))
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	if m["pass"] != false || m["p50_us"] != nil || m["produce"].(map[string]any)["latency"] != nil {
		t.Fatalf("pass %v p50 %v latency %v", m["pass"], m["p50_us"], m["produce"].(map[string]any)["latency"])
	}
	if num(t, m, "produce", "msgs") <= 0 {
		t.Fatal("nothing produced")
	}
	// Consuming the topic just written works on its own.
	code, m, stderr = runJSON(t, fmt.Sprintf("-e %s --mode consume --report-interval 0 --min-throughput-msgs-per-sec 1", s.addr))
	if code != 0 || num(t, m, "consume", "msgs") <= 0 || num(t, m, "msgs_per_sec") != num(t, m, "consume", "msgs_per_sec") || m["p99_us"] != nil {
		t.Fatalf("consume: exit %d, %v, p99 %v\n%s", code, m["consume"], m["p99_us"], stderr)
	}
	// An empty topic has nothing to replay: a run error, exit 1.
	code, m, _ = runJSON(t, fmt.Sprintf("-e %s -t empty --mode consume --report-interval 0", s.addr))
	if code != 1 || m["error"] == nil {
		t.Fatalf("empty topic: exit %d, error %v", code, m["error"])
	}
}
