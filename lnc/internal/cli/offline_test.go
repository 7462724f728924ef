//go:build linux

package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// offlineSetup runs a server with 4 KiB segments, writes records to two
// topics, and stops it. It returns the server (stopped) and the records
// written to "events", in order.
func offlineSetup(t *testing.T) (*server, []string) {
	t.Helper()
	s := startServer(t, "--io-segment-size", "4KiB")
	var want []string
	for b := range 6 {
		var in strings.Builder
		for i := range 20 {
			v := fmt.Sprintf("event %d.%d %s", b, i, strings.Repeat("x", 120))
			want = append(want, v)
			in.WriteString(v + "\n")
		}
		ok(t, in.String(), args([]string{"produce", "-t", "events", "--batch", "10"}, s.ep())...)
	}
	ok(t, "", args([]string{"produce", "-t", "other", "--data", "one"}, s.ep())...)

	// While the server runs, verify and repair refuse; inspect reads.
	fails(t, ExitError, "in use by a running lance server", "", "verify", s.dir)
	fails(t, ExitError, "in use by a running lance server", "", "repair", "--dry-run", s.dir)
	if out := ok(t, "", "inspect", s.dir); !strings.Contains(out, "a lance server is running on it") {
		t.Errorf("inspect beside a server:\n%s", out)
	}
	s.stop()
	return s, want
}

func segmentFiles(t *testing.T, dir, ext string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestInspect(t *testing.T) {
	s, want := offlineSetup(t)
	out := ok(t, "", "inspect", s.dir)
	for _, w := range []string{"data directory " + s.dir, "topic events (id 1, created ", "retention: the server's default", "SEGMENT", "sealed", "active", "topic other (id 2"} {
		if !strings.Contains(out, w) {
			t.Errorf("inspect lacks %q:\n%s", w, out)
		}
	}
	var res inspectJSON
	if err := json.Unmarshal([]byte(ok(t, "", "inspect", s.dir, "-o", "json", "--batches", "--topic", "events")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Topics) != 1 || res.Topics[0].Name != "events" || res.Running {
		t.Fatalf("inspect json: %+v", res)
	}
	tp := res.Topics[0]
	if len(tp.Segments) < 3 {
		t.Fatalf("%d segments, want several of 4 KiB", len(tp.Segments))
	}
	batches := 0
	next := uint64(0)
	for i, seg := range tp.Segments {
		if seg.Base != next {
			t.Errorf("segment %d starts at %d, want %d", i, seg.Base, next)
		}
		if seg.Batches != len(seg.BatchList) || seg.FirstTS == "" || seg.LastTS == "" || seg.FirstTS > seg.LastTS {
			t.Errorf("segment %+v", seg)
		}
		want := "sealed"
		if i == len(tp.Segments)-1 {
			want = "active"
		}
		if seg.State != want {
			t.Errorf("segment %d state %s", i, seg.State)
		}
		for _, b := range seg.BatchList {
			if !b.OK || b.Offset != next {
				t.Errorf("batch %+v, want at %d", b, next)
			}
			next = b.Offset + uint64(b.Length)
		}
		batches += seg.Batches
	}
	if batches != 12 || len(tp.Findings) != 0 || tp.Meta == nil || tp.Meta.Name != "events" {
		t.Errorf("%d batches (want 12), findings %v, meta %+v", batches, tp.Findings, tp.Meta)
	}
	// One topic's directory works too, and --batches prints the entries.
	out = ok(t, "", "inspect", "--batches", filepath.Join(s.dir, "topics", "events"))
	if !strings.Contains(out, "batches of 00000000000000000000.lnc:") || strings.Count(out, " ok\n") != 12 {
		t.Errorf("inspect of a topic directory:\n%s", out)
	}
	fails(t, ExitError, `no topic "nope" here`, "", "inspect", s.dir, "--topic", "nope")
	fails(t, ExitError, "neither a lance data directory", "", "inspect", t.TempDir())
	_ = want
}

func TestVerifyAndRepair(t *testing.T) {
	s, want := offlineSetup(t)
	topic := filepath.Join(s.dir, "topics", "events")
	if out := ok(t, "", "verify", s.dir); !strings.Contains(out, "verified 2 topics: no problems") {
		t.Errorf("verify:\n%s", out)
	}
	if out := ok(t, "", "repair", s.dir); !strings.Contains(out, "topic events: nothing to repair") {
		t.Errorf("repair of a sound directory:\n%s", out)
	}
	data := segmentFiles(t, topic, ".lnc")
	idx := segmentFiles(t, topic, ".idx")
	if len(data) < 3 || len(idx) != len(data) {
		t.Fatalf("segments %v %v", data, idx)
	}
	snapshot := func() map[string][]byte {
		m := map[string][]byte{}
		for _, f := range append(segmentFiles(t, topic, ".lnc"), segmentFiles(t, topic, ".idx")...) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m[filepath.Base(f)] = b
		}
		return m
	}
	original := snapshot()
	restore := func() {
		for _, f := range append(segmentFiles(t, topic, ".lnc"), segmentFiles(t, topic, ".idx")...) {
			os.Remove(f)
		}
		for name, b := range original {
			if err := os.WriteFile(filepath.Join(topic, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	// A flipped byte in a sealed segment: damage that repair cannot fix.
	flip(t, data[0], 100)
	r := fails(t, ExitError, "verify: problems in 1 of 2 topics (1 damage, 0 torn tail)", "", "verify", s.dir)
	if !strings.Contains(r.out, "damage: 00000000000000000000.lnc: the batch at offset 0 (index entry 0") || !strings.Contains(r.out, "fails its CRC") {
		t.Errorf("verify of a flipped byte:\n%s", r.out)
	}
	r = fails(t, ExitError, "repair: problems remain in 1 of 2 topics", "", "repair", s.dir)
	if !strings.Contains(r.out, "change nothing") || !strings.Contains(r.out, "afterwards 1 problem remains") {
		t.Errorf("repair of a flipped byte:\n%s", r.out)
	}
	restore()

	// The newest segment cut short: a torn tail; verify fails, a dry run
	// changes nothing, the repair cuts it, the server serves the rest.
	newest := data[len(data)-1]
	st, err := os.Stat(newest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(newest, st.Size()-7); err != nil {
		t.Fatal(err)
	}
	r = fails(t, ExitError, "(0 damage, 1 torn tail)", "", "verify", s.dir)
	if !strings.Contains(r.out, "torn tail: ") {
		t.Errorf("verify of a cut segment:\n%s", r.out)
	}
	damaged := snapshot()
	out := ok(t, "", "repair", "--dry-run", s.dir)
	for _, w := range []string{"would change:", "cut " + filepath.Base(newest) + " from ", "afterwards: no problems", "dry run: nothing was written"} {
		if !strings.Contains(out, w) {
			t.Errorf("dry run lacks %q:\n%s", w, out)
		}
	}
	if !mapsEqual(damaged, snapshot()) {
		t.Fatal("repair --dry-run changed files")
	}
	out = ok(t, "", "repair", s.dir)
	if !strings.Contains(out, "  change:\n") || !strings.Contains(out, "afterwards: no problems") {
		t.Errorf("repair:\n%s", out)
	}
	ok(t, "", "verify", s.dir)
	s.start(false)
	got := lines(ok(t, "", args([]string{"consume", "-t", "events"}, s.ep())...))
	// The cut batch held the last 10 records.
	if len(got) != len(want)-10 || got[0] != want[0] || got[len(got)-1] != want[len(want)-11] {
		t.Errorf("after repair %d records (want %d): last %q", len(got), len(want)-10, got[len(got)-1])
	}
	ok(t, "", args([]string{"produce", "-t", "events", "--data", "after repair"}, s.ep())...)
	s.stop()
	restore()

	// Lost and damaged indexes: rebuilt from the data; nothing is lost.
	if err := os.Remove(idx[0]); err != nil {
		t.Fatal(err)
	}
	flip(t, idx[1], 5)  // the header
	flip(t, idx[2], 40) // the first entry
	r = fails(t, ExitError, "(3 damage, 0 torn tail)", "", "verify", s.dir)
	out = ok(t, "", "repair", s.dir)
	for _, w := range []string{"rebuild " + filepath.Base(idx[0]) + " (no index file)", "rebuild " + filepath.Base(idx[1]) + " (damaged index header)", "afterwards: no problems"} {
		if !strings.Contains(out, w) {
			t.Errorf("repair lacks %q:\n%s\n(verify said:\n%s)", w, out, r.out)
		}
	}
	ok(t, "", "verify", s.dir)
	s.start(false)
	if got := lines(ok(t, "", args([]string{"consume", "-t", "events"}, s.ep())...)); len(got) != len(want) || got[len(got)-1] != want[len(want)-1] {
		t.Errorf("after rebuilding indexes: %d records, want %d", len(got), len(want))
	}
	s.stop()

	// A data file missing between two segments: repair changes nothing.
	if err := os.Remove(data[1]); err != nil {
		t.Fatal(err)
	}
	before := snapshot()
	r = fails(t, ExitError, "repair: problems remain", "", "repair", s.dir, "--topic", "events")
	if !strings.Contains(r.out, "left unchanged: the data file of segment "+filepath.Base(data[1])+" is missing") {
		t.Errorf("repair with a missing data file:\n%s", r.out)
	}
	if !mapsEqual(before, snapshot()) {
		t.Error("repair changed a topic it refused")
	}
}

func flip(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestProduceBatch checks --batch by the batches the server stored.
func TestProduceBatch(t *testing.T) {
	s := startServer(t)
	in := strings.Repeat("record\n", 7)
	ok(t, in, args([]string{"produce", "-t", "batched", "--batch", "3"}, s.ep())...)
	ok(t, in, args([]string{"produce", "-t", "piped"}, s.ep())...)
	s.stop()
	out := ok(t, "", "inspect", s.dir, "-o", "json", "--batches")
	var res inspectJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	batches := map[string]int{}
	for _, tp := range res.Topics {
		for _, seg := range tp.Segments {
			batches[tp.Name] += seg.Batches
		}
	}
	if batches["batched"] != 3 || batches["piped"] != 1 {
		t.Errorf("batches %v, want batched 3 (3+3+1) and piped 1", batches)
	}
}
