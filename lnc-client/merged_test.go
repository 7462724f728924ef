package lance

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestMergedReplay: three topics written concurrently replay as one
// sequence in sort-key order, holding every record once, the same on two
// runs; ReplayFrom starts at a time; records written after Records began
// are not part of that replay.
func TestMergedReplay(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 90*time.Second)
	topics := []string{"merge-a", "merge-b", "merge-c"}
	for _, tp := range topics {
		if _, err := c.CreateTopic(ctx, tp); err != nil {
			t.Fatal(err)
		}
	}
	const perTopic = 300
	write := func(phase string) {
		var wg sync.WaitGroup
		for _, tp := range topics {
			wg.Go(func() {
				p, err := NewProducer(c, WithBatchBytes(256), WithLinger(time.Millisecond))
				if err != nil {
					t.Error(err)
					return
				}
				for i := range perTopic {
					if err := p.Produce(ctx, tp, Record{Value: fmt.Appendf(nil, "%s/%s/%d", phase, tp, i)}, nil); err != nil {
						t.Error(err)
					}
				}
				if err := p.Close(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	write("one")
	time.Sleep(5 * time.Millisecond)
	mid := time.Now()
	write("two")

	replay := func(opts ...ReplayOption) []Record {
		t.Helper()
		m, err := NewMergedReplay(c, topics, append(opts, ReplayMaxBytes(2048))...)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var out []Record
		for rec, err := range m.Records(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rec)
		}
		return out
	}
	first := replay()
	if len(first) != 2*perTopic*len(topics) {
		t.Fatalf("%d records, want %d", len(first), 2*perTopic*len(topics))
	}
	seen := map[string]bool{}
	next := map[string]int{} // per topic, how many of its records came
	for i, r := range first {
		if seen[string(r.Value)] {
			t.Fatalf("%s twice", r.Value)
		}
		seen[string(r.Value)] = true
		if i > 0 && bytes.Compare(first[i-1].BatchKey[:], r.BatchKey[:]) > 0 {
			t.Fatalf("record %d (%s) has a smaller sort key than its predecessor", i, r.Value)
		}
		// Within a topic, the replay keeps the log's order.
		k := next[r.Topic]
		phase := "one"
		if k >= perTopic {
			phase = "two"
		}
		if want := fmt.Sprintf("%s/%s/%d", phase, r.Topic, k%perTopic); string(r.Value) != want {
			t.Fatalf("record %d of topic %s is %s, want %s", k, r.Topic, r.Value, want)
		}
		next[r.Topic] = k + 1
	}
	switches := 0
	for i := 1; i < len(first); i++ {
		if first[i].Topic != first[i-1].Topic {
			switches++
		}
	}
	if switches < 2*len(topics) {
		t.Fatalf("the topics interleave only %d times: not merged by key", switches)
	}
	// The second run is the same sequence.
	second := replay()
	if len(second) != len(first) {
		t.Fatalf("second run: %d records", len(second))
	}
	for i := range first {
		if first[i].Topic != second[i].Topic || first[i].Offset != second[i].Offset || !bytes.Equal(first[i].Value, second[i].Value) {
			t.Fatalf("runs differ at %d: %s@%d vs %s@%d", i, first[i].Value, first[i].Offset, second[i].Value, second[i].Offset)
		}
	}
	// From the middle: exactly the second phase.
	late := replay(ReplayFrom(mid))
	if len(late) != perTopic*len(topics) {
		t.Fatalf("ReplayFrom: %d records", len(late))
	}
	for _, r := range late {
		if !bytes.HasPrefix(r.Value, []byte("two/")) {
			t.Fatalf("ReplayFrom yielded %s", r.Value)
		}
	}

	// A replay covers what existed when it started.
	m, err := NewMergedReplay(c, topics)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	count := 0
	for _, err := range m.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if count == 0 {
			p, err := NewProducer(c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.ProduceSync(ctx, "merge-b", Record{Value: []byte("later")}); err != nil {
				t.Fatal(err)
			}
			p.Close(ctx)
		}
		count++
	}
	if count != len(first) {
		t.Fatalf("replay during writes: %d records, want %d", count, len(first))
	}

	if _, err := NewMergedReplay(c, []string{"merge-a", "merge-a"}); err == nil {
		t.Fatal("a topic named twice was accepted")
	}
	m2, err := NewMergedReplay(c, []string{"merge-a", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	var lastErr error
	for _, err := range m2.Records(ctx) {
		lastErr = err
	}
	if !errors.Is(lastErr, ErrTopicNotFound) {
		t.Fatalf("missing topic: %v", lastErr)
	}
}
