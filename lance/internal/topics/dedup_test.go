package topics

import (
	"context"
	"errors"
	"testing"

	"github.com/lance-go/lance/lnc-io/vfs"
)

func TestDedupTableWindow(t *testing.T) {
	var d dedupTable
	if v, _ := d.check(1, 5); v != verdictNew {
		t.Fatalf("unknown producer: %v", v)
	}
	const n = dedupWindow + 10
	for seq := uint64(1); seq <= n; seq++ {
		d.record(1, seq, seq*100)
	}
	// Past dedupWindow the smaller half was forgotten at once: the floor
	// is dedupWindow/2 (of the dedupWindow+1 then held, the first half).
	floor := uint64((dedupWindow + 1) / 2)
	for seq := floor + 1; seq <= n; seq++ {
		if v, off := d.check(1, seq); v != verdictDuplicate || off != seq*100 {
			t.Fatalf("seq %d: %v %d", seq, v, off)
		}
	}
	for _, seq := range []uint64{1, floor} {
		if v, _ := d.check(1, seq); v != verdictTooOld {
			t.Fatalf("seq %d at or below the floor: %v", seq, v)
		}
	}
	if v, _ := d.check(1, n+1); v != verdictNew {
		t.Fatalf("next seq: %v", v)
	}
	if got := len(d.m[1].seqs); got < dedupWindow/2 || got > dedupWindow {
		t.Fatalf("%d sequences remembered", got)
	}
	// A gap inside the window is new (a batch sent out of order), and
	// filling it drops the smallest.
	d2 := dedupTable{}
	for _, seq := range []uint64{2, 4, 6} {
		d2.record(7, seq, seq)
	}
	if v, _ := d2.check(7, 3); v != verdictNew {
		t.Fatalf("gap: %v", v)
	}
	if v, _ := d2.check(7, 1); v != verdictNew {
		t.Fatalf("below the smallest, nothing forgotten yet: %v", v)
	}
	// Producers beyond the cap: the least recently used is forgotten.
	var d3 dedupTable
	for p := uint64(1); p <= dedupProducers; p++ {
		d3.record(p, 1, p)
	}
	d3.check(1, 1) // producer 1 is now recent; 2 is the oldest
	d3.record(dedupProducers+1, 1, 0)
	if len(d3.m) != dedupProducers || d3.m[2] != nil || d3.m[1] == nil {
		t.Fatalf("eviction: %d producers, has 1: %v, has 2: %v", len(d3.m), d3.m[1] != nil, d3.m[2] != nil)
	}
}

// idem submits an idempotent batch and waits for it.
func idem(t *testing.T, tp *Topic, data []byte, pid, seq uint64) *Ingest {
	t.Helper()
	in := NewIngest()
	in.Data, in.ProducerID, in.Sequence = data, pid, seq
	if err := tp.Submit(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	waitDone(t, in)
	return in
}

// TestIdempotentIngest: a retried (producer, sequence) is acked with the
// first copy's offset and stored once, also after a reopen; other
// producers and plain batches are unaffected; a sequence below the window
// is refused.
func TestIdempotentIngest(t *testing.T) {
	dir := t.TempDir()
	be := newBackend(t)
	opts := testOptions(vfs.OS(), be)
	r := openRegistry(t, dir, opts)
	tp := mustCreate(t, r, "idem")

	first := idem(t, tp, []byte("batch-1"), 42, 1)
	if first.Err != nil || first.Duplicate {
		t.Fatalf("first: %v dup=%v", first.Err, first.Duplicate)
	}
	again := idem(t, tp, []byte("batch-1"), 42, 1)
	if again.Err != nil || !again.Duplicate || again.Offset != first.Offset {
		t.Fatalf("retry: off %d (first %d) dup=%v err=%v", again.Offset, first.Offset, again.Duplicate, again.Err)
	}
	other := idem(t, tp, []byte("other-1"), 43, 1)
	if other.Err != nil || other.Duplicate {
		t.Fatalf("other producer: %v dup=%v", other.Err, other.Duplicate)
	}
	if _, err := ingest(t, tp, []byte("plain")); err != nil {
		t.Fatal(err)
	}
	end := tp.Log().End()
	if want := uint64(len("batch-1") + len("other-1") + len("plain")); end != want {
		t.Fatalf("log end %d, want %d: a duplicate was stored", end, want)
	}

	// Two copies in one group commit: the second is the duplicate of the
	// first, which is pending in the same sync.
	a, b := NewIngest(), NewIngest()
	a.Data, a.ProducerID, a.Sequence = []byte("batch-2"), 42, 2
	b.Data, b.ProducerID, b.Sequence = []byte("batch-2"), 42, 2
	for _, in := range []*Ingest{a, b} {
		if err := tp.Submit(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	waitDone(t, a)
	waitDone(t, b)
	if a.Err != nil || b.Err != nil || a.Offset != b.Offset || a.Duplicate == b.Duplicate {
		t.Fatalf("same group: %+v / %+v", a, b)
	}

	// After a restart the table is rebuilt from the index.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openRegistry(t, dir, opts)
	tp = r.ByName("idem")
	for seq, off := range map[uint64]uint64{1: first.Offset, 2: a.Offset} {
		in := idem(t, tp, []byte("retry"), 42, seq)
		if in.Err != nil || !in.Duplicate || in.Offset != off {
			t.Fatalf("retry of seq %d after reopen: off %d (want %d) dup=%v err=%v", seq, in.Offset, off, in.Duplicate, in.Err)
		}
	}
	readBack(t, tp, first.Offset, []byte("batch-1"))

	// Fill the window, then a sequence below it is refused.
	for seq := uint64(3); seq < 3+dedupWindow; seq++ {
		if in := idem(t, tp, []byte("more"), 42, seq); in.Err != nil {
			t.Fatal(in.Err)
		}
	}
	if in := idem(t, tp, []byte("old"), 42, 1); !errors.Is(in.Err, ErrSequenceTooOld) {
		t.Fatalf("seq below the window: %v", in.Err)
	}
}
