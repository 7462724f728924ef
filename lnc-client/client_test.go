package lance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lance-go/lance/lnc-network/compress"
)

func TestAdminAndErrors(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 20*time.Second)

	st, err := c.ClusterStatus(ctx)
	if err != nil || st.Mode != "standalone" || !st.IsLeader {
		t.Fatalf("ClusterStatus = %+v, %v", st, err)
	}
	tp, err := c.CreateTopic(ctx, "orders")
	if err != nil || tp.Name != "orders" || tp.ID == 0 {
		t.Fatalf("CreateTopic = %+v, %v", tp, err)
	}
	_, err = c.CreateTopic(ctx, "orders")
	var se *ServerError
	if !errors.Is(err, ErrTopicExists) || !errors.As(err, &se) || !strings.Contains(se.Text, "already exists") {
		t.Fatalf("second CreateTopic: %v", err)
	}
	if IsRetryable(err) {
		t.Fatal("ErrTopicExists is retryable")
	}
	again, err := c.EnsureTopic(ctx, "orders")
	if err != nil || again.ID != tp.ID {
		t.Fatalf("EnsureTopic existing = %+v, %v", again, err)
	}
	other, err := c.EnsureTopic(ctx, "payments")
	if err != nil || other.ID == tp.ID {
		t.Fatalf("EnsureTopic new = %+v, %v", other, err)
	}
	list, err := c.ListTopics(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListTopics = %+v, %v", list, err)
	}
	got, err := c.GetTopic(ctx, "payments")
	if err != nil || got.ID != other.ID {
		t.Fatalf("GetTopic = %+v, %v", got, err)
	}
	if err := c.SetRetention(ctx, "orders", Retention{MaxAge: time.Hour, MaxBytes: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	kept, err := c.CreateTopicWithRetention(ctx, "kept", Retention{MaxAge: 24 * time.Hour, MaxBytes: 1 << 20})
	if err != nil || kept.Name != "kept" || kept.ID == 0 {
		t.Fatalf("CreateTopicWithRetention = %+v, %v", kept, err)
	}
	if _, err := c.CreateTopicWithRetention(ctx, "kept", Retention{}); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("CreateTopicWithRetention twice: %v", err)
	}
	if err := c.DeleteTopic(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTopic(ctx, "nope"); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("GetTopic unknown: %v", err)
	}
	if _, err := c.CreateTopic(ctx, "bad_name"); !errors.Is(err, ErrInvalidTopicName) {
		t.Fatalf("CreateTopic bad name: %v", err)
	}
	if err := c.DeleteTopic(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTopic(ctx, "payments"); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("second DeleteTopic: %v", err)
	}

	// A topic deleted and created again under another client gets a new
	// id; the stale cache entry must be refreshed, not trusted.
	c2 := dialT(t, s)
	if err := c2.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	re, err := c2.CreateTopic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	got, err = c.GetTopic(ctx, "orders")
	if err != nil || got.ID != re.ID {
		t.Fatalf("GetTopic after re-create = %+v, %v (want id %d)", got, err, re.ID)
	}

	// Produce to a missing topic fails with ErrTopicNotFound.
	p, err := NewProducer(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ProduceSync(ctx, "missing", Record{Value: []byte("x")}); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("produce to missing topic: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Produce(ctx, "orders", Record{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Produce after Close: %v", err)
	}
	c.Close()
	if _, err := c.ListTopics(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("ListTopics after Close: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		text string
		want error
	}{
		{"Topic 'x' already exists", ErrTopicExists},
		{"Topic not found", ErrTopicNotFound},
		{"Topic 7 not found", ErrTopicNotFound},
		{"Configuration error: Topic 7 not found", ErrTopicNotFound},
		{"Unknown topic", ErrTopicNotFound},
		{"Authentication required", ErrUnauthenticated},
		{"Access denied: token:ci may not produce to topic 'x'", ErrAccessDenied},
		{"Storage unavailable: the node stopped accepting writes after a storage error", ErrStorage},
		{"FORWARD_FAILED: Leader not ready", ErrForwardFailed},
		{"Invalid client command", ErrUnsupported},
		{"Invalid data: Topic name 'a_b' contains invalid characters", ErrInvalidTopicName},
	}
	for _, tc := range cases {
		err := fmt.Errorf("wrapped: %w", serverError(tc.text))
		if !errors.Is(err, tc.want) {
			t.Errorf("%q does not match %v", tc.text, tc.want)
		}
	}
	err := fmt.Errorf("x: %w", serverError("NOT_LEADER: redirect to 10.0.0.2:1992"))
	var nl *NotLeaderError
	if !errors.As(err, &nl) || nl.Leader != "10.0.0.2:1992" || !IsRetryable(err) {
		t.Errorf("NOT_LEADER: %v", err)
	}
	if !IsRetryable(serverError("FORWARD_FAILED: x")) || IsRetryable(serverError("Topic not found")) {
		t.Error("IsRetryable on server errors")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if e := ctxErr(ctx); !errors.Is(e, ErrTimeout) || !errors.Is(e, context.DeadlineExceeded) || !IsRetryable(e) {
		t.Errorf("ctxErr = %v", e)
	}
	if !IsRetryable(fmt.Errorf("%w: x", ErrConnectionLost)) || !IsRetryable(ErrBackpressure) {
		t.Error("IsRetryable on sentinels")
	}
}

func TestTokenAuth(t *testing.T) {
	s := startServer(t, "--auth-enabled=true", "--auth-tokens=ci:secret-1")
	ctx := testCtx(t, 20*time.Second)

	// Without a token, admin fails with ErrUnauthenticated.
	anon := dialT(t, s)
	if _, err := anon.CreateTopic(ctx, "t"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("anonymous CreateTopic: %v", err)
	}
	// A wrong token is refused at Dial.
	if _, err := Dial(ctx, s.addr, WithToken("wrong")); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("Dial with a bad token: %v", err)
	}
	c := dialT(t, s, WithToken("secret-1"), WithReconnectBackoff(10*time.Millisecond, 100*time.Millisecond))
	if _, err := c.CreateTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	// After a restart the client reconnects and authenticates again.
	s.stop()
	s.start(false)
	p, err := NewProducer(c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if _, err := p.ProduceSync(ctx, "t", Record{Value: []byte("after restart")}); err != nil {
		t.Fatal(err)
	}
	if c.Reconnects() == 0 {
		t.Error("no reconnect counted")
	}
}

func allTypes() []Record {
	ts := time.Unix(1700000000, 123456789)
	return []Record{
		{Value: []byte("raw")},
		{Type: TypeJSON, Value: []byte(`{"a":1}`)},
		{Type: TypeMessagePack, Value: []byte{0x81, 0xa1, 0x61, 0x01}},
		{Type: TypeProtobuf, Value: []byte{0x08, 0x96, 0x01}},
		{Type: TypeAvro, Value: []byte{0x02, 0x61}},
		{Key: []byte("k"), Value: []byte("kv")},
		{Timestamp: ts, Value: []byte("ts")},
		{Key: []byte("key"), Timestamp: ts, Value: []byte("kts")},
		{Type: TypeNull},
		{Type: 0x80, Value: []byte("user")},
		{Value: []byte{}},
	}
}

func sameRecord(a, b Record) bool {
	want := a.Type
	if want == TypeAuto {
		switch {
		case a.Key != nil && !a.Timestamp.IsZero():
			want = TypeKeyTimestamped
		case a.Key != nil:
			want = TypeKeyValue
		case !a.Timestamp.IsZero():
			want = TypeTimestamped
		default:
			want = TypeRaw
		}
	}
	return want == b.Type && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && a.Timestamp.Equal(b.Timestamp)
}

func TestRoundTripEveryType(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 30*time.Second)
	for _, alg := range []compress.Algorithm{compress.None, compress.LZ4, compress.Zstd, compress.S2} {
		topic := "types-" + strings.ToLower(alg.String())
		if _, err := c.CreateTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
		p, err := NewProducer(c, WithCompression(alg))
		if err != nil {
			t.Fatal(err)
		}
		recs := allTypes()
		offs := make([]Offset, len(recs))
		var wg sync.WaitGroup
		for i, r := range recs {
			wg.Add(1)
			if err := p.Produce(ctx, topic, r, func(o Offset, err error) {
				defer wg.Done()
				if err != nil {
					t.Error(err)
				}
				offs[i] = o
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		p.Close(ctx)

		cons, err := NewConsumer(c, topic, WithMaxWait(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		var got []Record
		for len(got) < len(recs) {
			rs, err := cons.Poll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, rs...)
		}
		cons.Close()
		for i := range recs {
			if !sameRecord(recs[i], got[i]) {
				t.Errorf("%v: record %d: got %+v want %+v", alg, i, got[i], recs[i])
			}
			if got[i].Offset != offs[i] {
				t.Errorf("%v: record %d: consumer offset %d, producer offset %d", alg, i, got[i].Offset, offs[i])
			}
		}
	}
}

func TestPipelined100k(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 60*time.Second)
	if _, err := c.CreateTopic(ctx, "bulk"); err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	p, err := NewProducer(c, WithBatchBytes(16<<10), WithMaxInFlight(8))
	if err != nil {
		t.Fatal(err)
	}
	var failed atomic.Int64
	var lastOff atomic.Int64
	lastOff.Store(-1)
	for i := range n {
		v := fmt.Appendf(nil, "%08d", i)
		if err := p.Produce(ctx, "bulk", Record{Value: v}, func(o Offset, err error) {
			if err != nil {
				failed.Add(1)
				return
			}
			// Acks arrive in order, so offsets only grow.
			if int64(o) <= lastOff.Load() {
				failed.Add(1)
			}
			lastOff.Store(int64(o))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d records failed or out of order", f)
	}
	checkSequence(t, ctx, c, "bulk", n, false)
}

// checkSequence consumes topic and checks that it holds the values
// 0..n-1 in order; with dupsOK, a value may repeat (at-least-once) but
// never go backwards past what was missing.
func checkSequence(t *testing.T, ctx context.Context, c *Client, topic string, n int, dupsOK bool) {
	t.Helper()
	cons, err := NewConsumer(c, topic, WithMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := make([]bool, n)
	next, count := 0, 0
	for rec, err := range cons.Records(ctx) {
		if err != nil {
			t.Fatalf("after %d records: %v", count, err)
		}
		var v int
		if _, err := fmt.Sscanf(string(rec.Value), "%d", &v); err != nil || v < 0 || v >= n {
			t.Fatalf("bad value %q", rec.Value)
		}
		count++
		switch {
		case v == next:
			next++
		case dupsOK && seen[v]:
		default:
			t.Fatalf("record %d: value %d, expected %d", count, v, next)
		}
		seen[v] = true
		if next == n {
			break
		}
	}
	if next != n {
		t.Fatalf("got %d of %d", next, n)
	}
	if pos := cons.Position(); pos == 0 {
		t.Error("position did not move")
	}
	t.Logf("%d records read for %d values", count, n)
}

func TestServerRestartMidStream(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s, WithReconnectBackoff(10*time.Millisecond, 200*time.Millisecond))
	ctx := testCtx(t, 60*time.Second)
	if _, err := c.CreateTopic(ctx, "restart"); err != nil {
		t.Fatal(err)
	}
	const n = 20_000
	p, err := NewProducer(c, WithBatchBytes(4<<10))
	if err != nil {
		t.Fatal(err)
	}
	// A consumer follows along, across the restart.
	cons, err := NewConsumer(c, "restart", WithMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	consumed := make(chan int, 1)
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	go func() {
		seen := make(map[int]bool)
		for rec, err := range cons.Records(cctx) {
			if err != nil {
				break
			}
			var v int
			fmt.Sscanf(string(rec.Value), "%d", &v)
			seen[v] = true
			if len(seen) == n {
				break
			}
		}
		consumed <- len(seen)
	}()

	var failed atomic.Int64
	for i := range n {
		if i == n/2 {
			s.kill()
			s.start(false)
		}
		if err := p.Produce(ctx, "restart", Record{Value: fmt.Appendf(nil, "%d", i)}, func(_ Offset, err error) {
			if err != nil {
				failed.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d records failed", f)
	}
	select {
	case got := <-consumed:
		if got != n {
			t.Fatalf("consumer saw %d distinct values, want %d", got, n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consumer did not finish")
	}
	if c.Reconnects() == 0 {
		t.Error("producer client did not reconnect")
	}
	// Every value is there, in order apart from replays (at least once).
	checkSequence(t, ctx, c, "restart", n, true)
}

func TestSeek(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 30*time.Second)
	if _, err := c.CreateTopic(ctx, "seek"); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	var offs []Offset
	var mid time.Time
	for i := range 10 {
		if i == 5 {
			time.Sleep(5 * time.Millisecond)
			mid = time.Now()
			time.Sleep(5 * time.Millisecond)
		}
		o, err := p.ProduceSync(ctx, "seek", Record{Value: fmt.Appendf(nil, "v%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, o)
	}
	cons, err := NewConsumer(c, "seek", WithMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	first := func() string {
		t.Helper()
		rs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			return ""
		}
		return string(rs[0].Value)
	}
	if err := cons.Seek(ctx, SeekOffset(offs[3])); err != nil {
		t.Fatal(err)
	}
	if v := first(); v != "v3" {
		t.Fatalf("SeekOffset: %q", v)
	}
	if err := cons.Seek(ctx, SeekBeginning); err != nil {
		t.Fatal(err)
	}
	if v := first(); v != "v0" {
		t.Fatalf("SeekBeginning: %q", v)
	}
	if err := cons.Seek(ctx, SeekTime(mid)); err != nil {
		t.Fatal(err)
	}
	if v := first(); v != "v5" {
		t.Fatalf("SeekTime: %q", v)
	}
	if err := cons.Seek(ctx, SeekEnd); err != nil {
		t.Fatal(err)
	}
	if v := first(); v != "" {
		t.Fatalf("SeekEnd: %q", v)
	}
	if _, err := p.ProduceSync(ctx, "seek", Record{Value: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	if v := first(); v != "late" {
		t.Fatalf("after SeekEnd: %q", v)
	}
	if err := cons.Seek(ctx, SeekOffset(1<<40)); err != nil {
		t.Fatal(err)
	}
	if _, err := cons.Poll(ctx); !errors.Is(err, ErrCatchingUp) {
		t.Fatalf("past the end: %v", err)
	}
}

// TestPartialTail checks the classic-fetch path: tiny fetches cut records,
// and the consumer carries the cut part over.
func TestPartialTail(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 30*time.Second)
	if _, err := c.CreateTopic(ctx, "tail"); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := p.Produce(ctx, "tail", Record{Key: []byte("k"), Value: bytes.Repeat([]byte{byte(i)}, 37)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := NewConsumer(c, "tail", WithMaxBytes(13), WithMaxWait(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	cons.mode = modeClassic
	var got []Record
	for len(got) < 50 {
		rs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rs...)
	}
	for i, r := range got {
		if string(r.Key) != "k" || !bytes.Equal(r.Value, bytes.Repeat([]byte{byte(i)}, 37)) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
}
