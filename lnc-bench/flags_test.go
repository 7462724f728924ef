package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultsMatchUpstream(t *testing.T) {
	cfg, err := parseArgs([]string{"--endpoint", "127.0.0.1:1992"}, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		endpoint: "127.0.0.1:1992", topic: "bench-topic", duration: 30 * time.Second, warmup: 3 * time.Second,
		reportInterval: 5 * time.Second, msgSize: 1024, connections: 1, batchSize: 65536, lingerMS: 1,
		pipeline: 64, latency: true, idempotence: true, idempotent: true, minThroughput: 10000,
		maxP50: 5 * time.Millisecond, maxP99: 50 * time.Millisecond, maxP999: 100 * time.Millisecond,
		mode: modeProduce, acks: acksDurable, client: clientLNC, fetchBytes: 1 << 20,
	}
	cfg.set = nil
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", cfg, want)
	}
}

func TestShortNamesAndUpstreamSeconds(t *testing.T) {
	cfg, err := parseArgs(strings.Fields("-e h:1 -t orders -d 12 -s 100 -c 8 -b 0 -l 0 -w 1.5 -p 256 --report-interval 250ms --latency=false"), new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case cfg.endpoint != "h:1", cfg.topic != "orders", cfg.duration != 12*time.Second, cfg.msgSize != 100,
		cfg.connections != 8, cfg.batchSize != 0, cfg.lingerMS != 0, cfg.warmup != 1500*time.Millisecond,
		cfg.pipeline != 256, cfg.reportInterval != 250*time.Millisecond, cfg.latency:
		t.Fatalf("parsed %+v", cfg)
	}
	// 256 batches in flight is over the idempotent producer's limit: off.
	if cfg.idempotent {
		t.Error("idempotence left on with 256 batches in flight")
	}
	if cfg.recordsPerBatch() != 1 {
		t.Errorf("batch size 0 gives %d records per batch, want 1", cfg.recordsPerBatch())
	}
	for _, name := range []string{"endpoint", "topic-name", "duration", "msg-size", "connections", "batch-size",
		"linger-ms", "warmup", "pipeline", "report-interval", "latency"} {
		if !cfg.set[name] {
			t.Errorf("flag %s not recorded as set", name)
		}
	}
}

func TestRecordsPerBatch(t *testing.T) {
	for _, c := range []struct{ batch, size, want int }{
		{65536, 1024, 63}, {0, 1024, 1}, {100, 1024, 1}, {1029, 1024, 1}, {2058, 1024, 2}, {10, 0, 2},
	} {
		cfg := config{batchSize: c.batch, msgSize: c.size}
		if got := cfg.recordsPerBatch(); got != c.want {
			t.Errorf("batch %d, msg %d: %d records, want %d", c.batch, c.size, got, c.want)
		}
	}
}

func TestBadCommandLines(t *testing.T) {
	for _, args := range []string{
		"",                                        // no endpoint
		"-e nohost",                               // no port
		"-e h:1 --topic-name bad_name",            // underscore
		"-e h:1 --duration 0",                     // not positive
		"-e h:1 --duration soon",                  // not a duration
		"-e h:1 --warmup -1",                      // negative
		"-e h:1 --report-interval 1ms",            // too often
		"-e h:1 --msg-size -1",                    // negative
		"-e h:1 --connections 0",                  // none
		"-e h:1 --pipeline 0",                     // none
		"-e h:1 --batch-size 99999999",            // over a frame
		"-e h:1 --mode replay",                    // unknown
		"-e h:1 --acks all",                       // unknown
		"-e h:1 --client rust",                    // unknown
		"-e h:1 --max-errors -1",                  // negative
		"-e h:1 --min-throughput-msgs-per-sec -5", // negative
		"-e h:1 --max-p99 0s",                     // not positive
		"-e h:1 --fetch-bytes 0 --mode consume",   // none
		"-e h:1 --mode consume --pipeline 8",      // produce flag when only consuming
		"-e h:1 --mode consume --latency=false",   // same
		"-e h:1 --fetch-bytes 1024",               // consume flag when only producing
		"-e h:1 --client raw --linger-ms 5",       // raw has no linger
		"-e h:1 --client raw --idempotence",       // raw is not idempotent
		"-e h:1 --acks nowait --pipeline 4",       // nowait has no window
		"-e h:1 -p 256 --idempotence=true",        // over the client's limit
		"-e h:1 --server-pid 1 --server-metrics http://x/metrics",
		"-e h:1 --server-metrics ftp://x/metrics",
		"-e h:1 --max-server-rss-mib 256", // nothing to sample
		"-e h:1 --no-such-flag",
		"-e h:1 extra",
	} {
		_, err := parseArgs(strings.Fields(args), new(bytes.Buffer))
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), strings.Fields(args), &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
}

func TestGoodCombinations(t *testing.T) {
	for _, args := range []string{
		"-e h:1 --mode consume --fetch-bytes 1048576 -c 2",
		"-e h:1 --mode both --fetch-bytes 1048576",
		"-e h:1 --client raw -p 8",
		"-e h:1 --acks nowait",
		"-e h:1 -p 128 --idempotence",
		"-e h:1 --server-pid 1 --max-server-rss-mib 256",
		"-e [::1]:1992 --server-metrics http://127.0.0.1:8080/metrics --json",
	} {
		if _, err := parseArgs(strings.Fields(args), new(bytes.Buffer)); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--help exits %d", code)
	}
	if stdout.String() != usageText {
		t.Fatal("--help does not print the usage text")
	}
}

// TestUsageListsEveryFlag keeps --help, the flag set and
// docs/performance.md in step.
func TestUsageListsEveryFlag(t *testing.T) {
	var cfg config
	fs := newFlagSet(&cfg)
	doc, err := os.ReadFile(filepath.Join("..", "docs", "performance.md"))
	if err != nil {
		t.Fatal(err)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if long, ok := shortNames[f.Name]; ok {
			if !strings.Contains(usageText, "-"+f.Name+", --"+long+" ") {
				t.Errorf("usage lacks -%s as the short name of --%s", f.Name, long)
			}
			return
		}
		if !strings.Contains(usageText, "--"+f.Name+" ") && !strings.Contains(usageText, "--"+f.Name+"\n") {
			t.Errorf("usage lacks --%s", f.Name)
		}
		if !strings.Contains(string(doc), "--"+f.Name) {
			t.Errorf("docs/performance.md lacks --%s", f.Name)
		}
	})
	// Every flag named in the usage exists, and every "(default X)" is
	// the flag's real default.
	lines := strings.Split(usageText, "\n")
	isFlagLine := func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "-") }
	checked := 0
	for i, line := range lines {
		if !isFlagLine(line) {
			continue
		}
		at := strings.Index(line, "--")
		name := strings.Fields(line[at+2:])[0]
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("usage names --%s, which does not exist", name)
			continue
		}
		block := line
		for _, next := range lines[i+1:] {
			if isFlagLine(next) || strings.TrimSpace(next) == "" {
				break
			}
			block += " " + strings.TrimSpace(next)
		}
		_, def, ok := strings.Cut(block, "(default ")
		if !ok {
			continue
		}
		def, _, _ = strings.Cut(def, ")")
		def, _, _ = strings.Cut(def, ":")
		var fresh config
		ff := newFlagSet(&fresh).Lookup(name)
		checked++
		if err := ff.Value.Set(def); err != nil {
			t.Errorf("--%s: usage default %q does not parse: %v", name, def, err)
		} else if ff.Value.String() != f.DefValue {
			t.Errorf("--%s: usage says default %q, the flag's is %q", name, def, f.DefValue)
		}
	}
	if checked < 20 {
		t.Errorf("only %d defaults found in the usage text", checked)
	}
	if !strings.Contains(string(doc), usageText) {
		t.Error("docs/performance.md does not quote the --help text verbatim")
	}
}
