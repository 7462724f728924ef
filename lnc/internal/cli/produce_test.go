package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The seed README's two commands, exactly as written (the endpoint comes
// from LNC_ENDPOINT, as the server runs on a test port).
func TestReadmeCommands(t *testing.T) {
	s := startServer(t)
	t.Setenv(envEndpoint, s.addr)
	out := ok(t, "", "produce", "--topic", "events", "--data", `{"event": "click"}`)
	if !strings.HasPrefix(out, "produced 1 record to events") {
		t.Errorf("produce printed %q", out)
	}
	if out := ok(t, "", "consume", "--topic", "events", "--offset", "earliest"); out != "{\"event\": \"click\"}\n" {
		t.Errorf("consume printed %q", out)
	}
}

// consumed is a record as consume --output json prints it.
type consumed struct {
	Offset      uint64  `json:"offset"`
	Type        string  `json:"type"`
	Timestamp   *string `json:"timestamp"`
	Key         *string `json:"key"`
	KeyBase64   *string `json:"key_base64"`
	Value       *string `json:"value"`
	ValueBase64 *string `json:"value_base64"`
}

func consumeJSON(t *testing.T, s *server, topic string, extra ...string) []consumed {
	t.Helper()
	out := ok(t, "", args([]string{"consume", "--topic", topic, "--output", "json"}, s.ep(), extra)...)
	var recs []consumed
	for _, l := range lines(out) {
		var c consumed
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		recs = append(recs, c)
	}
	return recs
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestProduceInputs(t *testing.T) {
	s := startServer(t)
	ep := s.ep()
	// Lines of standard input: CR LF and LF, empty lines skipped, a last
	// line without a line break.
	out := ok(t, "one\r\ntwo\n\nthree", args([]string{"produce", "-t", "lines"}, ep)...)
	if !strings.HasPrefix(out, "produced 3 records to lines (offsets ") {
		t.Errorf("produce printed %q", out)
	}
	if out := ok(t, "", args([]string{"consume", "-t", "lines"}, ep)...); out != "one\ntwo\nthree\n" {
		t.Errorf("lines: %q", out)
	}

	// Files: each one record, binary and all; - is standard input.
	dir := t.TempDir()
	bin := []byte{0, 1, '\n', 0xff, 0xfe}
	if err := os.WriteFile(filepath.Join(dir, "a.bin"), bin, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.txt"), []byte("line 1\nline 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok(t, "from stdin\n", args([]string{"produce", "-t", "files", "--file", filepath.Join(dir, "a.bin"), "--file", filepath.Join(dir, "b.txt"), "--file", "-"}, ep)...)
	recs := consumeJSON(t, s, "files")
	if len(recs) != 3 || str(recs[0].ValueBase64) != base64.StdEncoding.EncodeToString(bin) ||
		str(recs[1].Value) != "line 1\nline 2\n" || str(recs[2].Value) != "from stdin\n" || recs[0].Type != "raw" {
		t.Errorf("files: %+v", recs)
	}
	fails(t, ExitError, "--file", "", args([]string{"produce", "-t", "files", "--file", filepath.Join(dir, "missing")}, ep)...)

	// Keys, timestamps and types.
	ok(t, "", args([]string{"produce", "-t", "typed", "--data", "v1", "--data", "v2", "--key", "user-1"}, ep)...)
	ok(t, "k1=v=1\nk2=v2\n", args([]string{"produce", "-t", "typed", "--key-separator", "="}, ep)...)
	ok(t, "", args([]string{"produce", "-t", "typed", "--data", "t", "--timestamp", "2026-01-02T03:04:05.000000006Z"}, ep)...)
	ok(t, "", args([]string{"produce", "-t", "typed", "--data", "kt", "--key", "", "--timestamp", "1767323045000ms"}, ep)...)
	ok(t, "", args([]string{"produce", "-t", "typed", "--type", "json", "--data", `{"a":1}`}, ep)...)
	ok(t, "", args([]string{"produce", "-t", "typed", "--type", "null", "--data", ""}, ep)...)
	ok(t, "", args([]string{"produce", "-t", "typed", "--type", "0x80", "--data", "user type"}, ep)...)
	ok(t, "", args([]string{"produce", "-t", "typed", "--type", "kv", "--key", "k", "--data", "kv"}, ep)...)
	before := time.Now()
	ok(t, "", args([]string{"produce", "-t", "typed", "--type", "timestamped", "--data", "now"}, ep)...)
	for _, typ := range []string{"raw", "msgpack", "protobuf", "avro"} {
		ok(t, "", args([]string{"produce", "-t", "typed", "--type", typ, "--data", typ}, ep)...)
	}
	recs = consumeJSON(t, s, "typed")
	want := []struct{ typ, key, value, ts string }{
		{"kv", "user-1", "v1", "<nil>"},
		{"kv", "user-1", "v2", "<nil>"},
		{"kv", "k1", "v=1", "<nil>"},
		{"kv", "k2", "v2", "<nil>"},
		{"timestamped", "<nil>", "t", "2026-01-02T03:04:05.000000006Z"},
		{"key-timestamped", "", "kt", "2026-01-02T03:04:05Z"},
		{"json", "<nil>", `{"a":1}`, "<nil>"},
		{"null", "<nil>", "", "<nil>"},
		{"0x80", "<nil>", "user type", "<nil>"},
		{"kv", "k", "kv", "<nil>"},
		{"timestamped", "<nil>", "now", "?"},
		{"raw", "<nil>", "raw", "<nil>"},
		{"msgpack", "<nil>", "msgpack", "<nil>"},
		{"protobuf", "<nil>", "protobuf", "<nil>"},
		{"avro", "<nil>", "avro", "<nil>"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		r := recs[i]
		if r.Type != w.typ || str(r.Key) != w.key || str(r.Value) != w.value || (w.ts != "?" && str(r.Timestamp) != w.ts) {
			t.Errorf("record %d: type %s key %s value %q ts %s; want %+v", i, r.Type, str(r.Key), str(r.Value), str(r.Timestamp), w)
		}
	}
	if ts, err := time.Parse(time.RFC3339Nano, str(recs[10].Timestamp)); err != nil || ts.Before(before.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
		t.Errorf("timestamped record without --timestamp: %s, %v", str(recs[10].Timestamp), err)
	}
}

func TestProduceFailures(t *testing.T) {
	s := startServer(t)
	ep := s.ep()
	r := fails(t, ExitError, "record 2 is not valid JSON", "", args([]string{"produce", "-t", "j", "--type", "json", "--data", "{}", "--data", "{nope"}, ep)...)
	if !strings.HasPrefix(r.out, "produced 1 record to j") {
		t.Errorf("the record before the bad one: %q", r.out)
	}
	fails(t, ExitError, "record 1 has no key separator", "no separator\n", args([]string{"produce", "-t", "j", "--key-separator", "="}, ep)...)
	fails(t, ExitError, "topic not found", "", args([]string{"produce", "-t", "absent", "--no-create", "--data", "x"}, ep)...)
	fails(t, ExitError, "topic not found", "", args([]string{"consume", "-t", "absent"}, ep)...)
	if out := ok(t, "", args([]string{"topics", "list", "-o", "json"}, ep)...); strings.Contains(out, "absent") {
		t.Errorf("--no-create created the topic: %s", out)
	}
}

func TestConsume(t *testing.T) {
	s := startServer(t)
	ep := s.ep()
	ok(t, "a\nb\nc\n", args([]string{"produce", "-t", "c"}, ep)...)
	time.Sleep(20 * time.Millisecond)
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	ok(t, "", args([]string{"produce", "-t", "c", "--data", "d\te", "--key", "k 1"}, ep)...)

	recs := consumeJSON(t, s, "c")
	if len(recs) != 4 {
		t.Fatalf("records %+v", recs)
	}
	if out := ok(t, "", args([]string{"consume", "-t", "c", "--max", "2"}, ep)...); out != "a\nb\n" {
		t.Errorf("--max 2: %q", out)
	}
	off := strconv.FormatUint(recs[1].Offset, 10)
	if out := ok(t, "", args([]string{"consume", "-t", "c", "--offset", off}, ep)...); out != "b\nc\nd\te\n" {
		t.Errorf("--offset %s: %q", off, out)
	}
	if out := ok(t, "", args([]string{"consume", "-t", "c", "--offset", "latest"}, ep)...); out != "" {
		t.Errorf("--offset latest: %q", out)
	}
	for _, at := range []string{"@" + mid.UTC().Format(time.RFC3339Nano), "@" + strconv.FormatInt(mid.UnixNano(), 10) + "ns", "@" + strconv.FormatInt(mid.UnixNano(), 10)} {
		if out := ok(t, "", args([]string{"consume", "-t", "c", "--offset", at}, ep)...); out != "d\te\n" {
			t.Errorf("--offset %s: %q", at, out)
		}
	}
	if out := ok(t, "", args([]string{"consume", "-t", "c", "--offset", "@-1h"}, ep)...); out != "a\nb\nc\nd\te\n" {
		t.Errorf("--offset @-1h: %q", out)
	}
	fails(t, ExitError, "past the end", "", args([]string{"consume", "-t", "c", "--offset", "1000000"}, ep)...)

	out := ok(t, "", args([]string{"consume", "-t", "c", "-o", "table"}, ep)...)
	ls := lines(out)
	if len(ls) != 5 || !strings.HasPrefix(ls[0], "OFFSET") || !strings.Contains(ls[4], " kv ") || !strings.Contains(ls[4], " k 1 ") || !strings.HasSuffix(ls[4], `"d\te"`) {
		t.Errorf("table:\n%s", out)
	}
	ok(t, "", args([]string{"topics", "create", "empty"}, ep)...)
	if out := ok(t, "", args([]string{"consume", "-t", "empty"}, ep)...); out != "" {
		t.Errorf("empty topic: %q", out)
	}
}

func TestConsumeFollow(t *testing.T) {
	s := startServer(t)
	ep := s.ep()
	ok(t, "", args([]string{"produce", "-t", "f", "--data", "first"}, ep)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuf
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, args([]string{"consume", "-t", "f", "--follow"}, ep), strings.NewReader(""), &out, &errb)
	}()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the output %q (stderr %q)", want, out.String(), errb.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("first\n")
	ok(t, "", args([]string{"produce", "-t", "f", "--data", "second"}, ep)...)
	waitFor("first\nsecond\n")
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("follow ended with %d, stderr %q", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("follow did not end after its context")
	}

	// --follow from the end with --max: only new records, then it ends.
	done2 := make(chan result, 1)
	go func() {
		done2 <- lnc(t, "", args([]string{"consume", "-t", "f", "-f", "--offset", "latest", "--max", "1"}, ep)...)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok(t, "", args([]string{"produce", "-t", "f", "--data", "third"}, ep)...)
		select {
		case r := <-done2:
			if r.code != 0 || r.out != "third\n" {
				t.Fatalf("follow from latest: exit %d, out %q, err %q", r.code, r.out, r.err)
			}
			return
		case <-time.After(300 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("follow from latest saw nothing")
		}
	}
}

// TestConsumeFollowReconnects follows a topic across a restart of the
// server.
func TestConsumeFollowReconnects(t *testing.T) {
	s := startServer(t)
	ep := args(s.ep(), []string{"--timeout", "1s"})
	ok(t, "", args([]string{"produce", "-t", "r", "--data", "before"}, ep)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuf
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, args([]string{"consume", "-t", "r", "-f"}, ep), strings.NewReader(""), &out, &errb)
	}()
	wait := func(cond func() bool, what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: output %q, stderr %q", what, out.String(), errb.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait(func() bool { return out.String() == "before\n" }, "the first record")
	s.stop()
	wait(func() bool { return strings.Contains(errb.String(), "; retrying") }, "a warning about the lost server")
	s.start(false)
	if s.addr != ep[1] {
		t.Skipf("the server's port was taken while it was down")
	}
	ok(t, "", args([]string{"produce", "-t", "r", "--data", "after"}, ep)...)
	wait(func() bool { return out.String() == "before\nafter\n" }, "the record after the restart")
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if n := strings.Count(errb.String(), "retrying"); n != 1 {
		t.Errorf("%d warnings for one outage: %q", n, errb.String())
	}
}
