package e2e

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

// TestRetentionKeepsOffsets lets retention remove the oldest segments of a
// topic and checks this server's promise for reads below the first
// retained offset: offsets never move, and a Fetch below the start is
// served from the start (next_offset shows the jump). The same holds after
// a restart.
func TestRetentionKeepsOffsets(t *testing.T) {
	t.Parallel()
	rng := newRand(seed(t))
	s := startServer(t, "--io-segment-size", "64KiB", "--io-prealloc", "0", "--retention-check-interval", "100ms")
	c := s.dial(ieee)
	const keep = 128 << 10
	p, ok := expectControl(t, "CreateTopicWithRetention", c.control(codeCreateTopicWithRetention, createWithRetentionPayload("ret", 0, keep)), codeTopicResponse)
	if !ok {
		t.FailNow()
	}
	topic := parseTopic(t, "ret", decodeJSON(t, "ret", p), "max_age_secs", "max_bytes").ID

	var l topicLog
	base := uint64(time.Now().UnixNano())
	for i := range 200 {
		l.add(batch{Topic: topic, ID: uint64(i + 1), Timestamp: base + uint64(i)*1000, Records: 1, Data: randomBytes(rng, 4096)})
	}
	pipeline(t, c, l.batches, l.offsets, 0)

	// Wait for retention to act, then for it to have nothing left to do.
	var start uint64
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, start, _ = offsetForTime(t, c, topic, 0); start > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if start == 0 {
		t.Fatalf("retention (max_bytes %d, segments of 64 KiB, %d bytes written) removed nothing within 20 s", keep, l.end())
	}
	time.Sleep(500 * time.Millisecond)
	_, start, _ = offsetForTime(t, c, topic, 0)
	t.Logf("retained start %d of %d", start, l.end())

	check := func(t *testing.T, c *client) {
		t.Helper()
		off, st, end := offsetForTime(t, c, topic, 0)
		if st != start || end != l.end() || off != start {
			t.Fatalf("OffsetForTime(0): offset %d start %d end %d; want %d, %d, %d", off, st, end, start, start, l.end())
		}
		if !slices.Contains(l.offsets, start) {
			t.Errorf("retained start %d is not the start of a batch", start)
		}
		k := l.batchAt(start)
		if off, _, _ := offsetForTime(t, c, topic, l.batches[0].Timestamp); off != start {
			t.Errorf("OffsetForTime(timestamp of a removed batch) = %d, want the retained start %d", off, start)
		}
		if off, _, _ := offsetForTime(t, c, topic, l.batches[k+1].Timestamp); off != l.offsets[k+1] {
			t.Errorf("OffsetForTime(timestamp of a retained batch) = %d, want %d", off, l.offsets[k+1])
		}
		if got := logEnd(t, c, topic); got != l.end() {
			t.Errorf("log end %d, want %d: offsets moved", got, l.end())
		}
		for _, from := range []uint64{0, 1, start - 1} {
			r := fetch(t, c, topic, from, 1000)
			if r.Next != start+1000 || !bytes.Equal(r.Data, l.bytes[start:start+1000]) {
				t.Errorf("Fetch(%d, 1000) below the retained start %d: next %d, %d bytes; want the 1000 bytes at %d", from, start, r.Next, len(r.Data), start)
			}
		}
		if got := readLog(t, c, topic, start, l.end(), 1<<20, 7777); !bytes.Equal(got, l.bytes[start:]) {
			t.Errorf("retained bytes differ: %s", firstDiff(got, l.bytes[start:]))
		}
		r := fetchBatches(t, c, topic, 0, 1, 0)
		if r.Start != start || r.Batches != 1 || !bytes.Equal(r.Data, l.batches[k].Data) {
			t.Errorf("FetchBatches(0) below the retained start: start %d, %d batches; want the batch at %d", r.Start, r.Batches, start)
		}
		expectBytes(t, "past the end", c.control(codeFetch, fetchPayload(topic, l.end()+1, 1)), controlFrame(c.d, codeCatchingUp, le64(nil, l.end())))
	}
	t.Run("Running", func(t *testing.T) { check(t, s.dialT(t, ieee)) })
	c.close()
	if code := s.stop(); code != 0 {
		t.Fatalf("SIGTERM: exit code %d, want 0", code)
	}
	s.restart()
	t.Run("AfterRestart", func(t *testing.T) { check(t, s.dialT(t, ieee)) })
}
