package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"testing"
)

// decodeJSON parses a JSON object, keeping numbers exact.
func decodeJSON(t testing.TB, what string, p []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: reply is not a JSON object (%v): %q", what, err, p)
	}
	if dec.More() {
		t.Fatalf("%s: trailing data after the JSON object: %q", what, p)
	}
	return m
}

// expectKeys asserts that m has exactly keys.
func expectKeys(t testing.TB, what string, m map[string]any, keys ...string) {
	t.Helper()
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	want := slices.Clone(keys)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: JSON keys %v, want %v", what, got, want)
	}
}

// jsonUint returns m[key] as an unsigned integer.
func jsonUint(t testing.TB, what string, m map[string]any, key string) uint64 {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Errorf("%s: %q is %T (%v), want an integer", what, key, m[key], m[key])
		return 0
	}
	v, err := strconv.ParseUint(n.String(), 10, 64)
	if err != nil {
		t.Errorf("%s: %q = %s is not an unsigned integer", what, key, n)
	}
	return v
}

// topicInfo is a topic as a TopicResponse describes it.
type topicInfo struct {
	ID        uint32
	Name      string
	CreatedAt uint64
	Epoch     uint64
}

// parseTopic checks a topic object's keys and returns its values.
func parseTopic(t testing.TB, what string, m map[string]any, extra ...string) topicInfo {
	t.Helper()
	expectKeys(t, what, m, append([]string{"created_at", "id", "name", "topic_epoch"}, extra...)...)
	name, _ := m["name"].(string)
	return topicInfo{
		ID:        uint32(jsonUint(t, what, m, "id")),
		Name:      name,
		CreatedAt: jsonUint(t, what, m, "created_at"),
		Epoch:     jsonUint(t, what, m, "topic_epoch"),
	}
}

// createTopic creates name and returns its id.
func createTopic(t testing.TB, c *client, name string) topicInfo {
	t.Helper()
	what := "CreateTopic " + name
	p, ok := expectControl(t, what, c.control(codeCreateTopic, []byte(name)), codeTopicResponse)
	if !ok {
		t.FailNow()
	}
	ti := parseTopic(t, what, decodeJSON(t, what, p))
	if ti.Name != name || ti.Epoch != 1 || ti.ID == 0 {
		t.Fatalf("%s: got %+v", what, ti)
	}
	return ti
}

// ingest sends one batch and asserts its ack (plain, or with the offset
// when b.AckOffset); it returns the acked offset, or 0 for a plain ack.
func ingest(t testing.TB, c *client, b batch) uint64 {
	t.Helper()
	off, err := checkAck(c.call(ingestFrame(c.d, b)), b)
	if err != nil {
		t.Fatalf("ingest %d bytes to topic %d: %v", len(b.Data), b.Topic, err)
	}
	return off
}

// checkAck checks that f acks b, and returns the offset it carries.
func checkAck(f frame, b batch) (uint64, error) {
	if f.Flags != flagAck || f.BatchID != b.ID || f.Reserved != 0 || f.TimestampNS != 0 || f.RecordCount != 0 || f.TopicID != 0 {
		return 0, fmt.Errorf("got %s (flags 0x%02X), want the ack of batch %d", f.describe(), f.Flags, b.ID)
	}
	if !b.AckOffset {
		if f.PayloadLen != 0 {
			return 0, fmt.Errorf("plain ack of batch %d carries a %d-byte payload", b.ID, f.PayloadLen)
		}
		return 0, nil
	}
	if f.PayloadLen != 8 {
		return 0, fmt.Errorf("extended ack of batch %d has a %d-byte payload, want 8", b.ID, f.PayloadLen)
	}
	return binary.LittleEndian.Uint64(f.Payload), nil
}

// fetch runs one classic Fetch and decodes the FetchResponse.
func fetch(t testing.TB, c *client, topic uint32, start uint64, maxBytes uint32) fetchReply {
	t.Helper()
	what := "Fetch"
	p, ok := expectControl(t, what, c.control(codeFetch, fetchPayload(topic, start, maxBytes)), codeFetchResponse)
	if !ok {
		t.FailNow()
	}
	r, err := decodeFetchReply(p)
	if err != nil {
		t.Fatalf("Fetch(%d, %d, %d): %v", topic, start, maxBytes, err)
	}
	return r
}

// readLog reads a topic's bytes [from, end) with classic Fetch, cycling
// through sizes for max_bytes, and checks every reply against the Fetch
// rules: data = log[off : min(off+max, end)], next = off+len(data),
// record_count 1 when data is returned.
func readLog(t testing.TB, c *client, topic uint32, from, end uint64, sizes ...uint32) []byte {
	t.Helper()
	out := make([]byte, 0, end-from)
	off := from
	for i := 0; off < end; i++ {
		m := sizes[i%len(sizes)]
		r := fetch(t, c, topic, off, m)
		want := min(uint64(m), end-off)
		if uint64(len(r.Data)) != want || r.Next != off+want || r.Records != 1 {
			t.Fatalf("Fetch(%d, %d, %d) with end %d: next %d, %d bytes, record_count %d; want next %d, %d bytes, record_count 1",
				topic, off, m, end, r.Next, len(r.Data), r.Records, off+want, want)
		}
		out = append(out, r.Data...)
		off = r.Next
	}
	return out
}

// logEnd asks for the end of a topic's log with the tail sentinel.
func logEnd(t testing.TB, c *client, topic uint32) uint64 {
	t.Helper()
	r := fetch(t, c, topic, tailOffset, 1)
	if len(r.Data) != 0 || r.Records != 0 {
		t.Fatalf("tail fetch returned %d bytes, record_count %d", len(r.Data), r.Records)
	}
	return r.Next
}

// firstDiff describes where a and b first differ.
func firstDiff(a, b []byte) string {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return "first difference at byte " + strconv.Itoa(i)
		}
	}
	return "lengths " + strconv.Itoa(len(a)) + " and " + strconv.Itoa(len(b))
}
