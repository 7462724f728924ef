package sortkey

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func mustNext(t testing.TB, g *Generator, ts uint64) Key {
	t.Helper()
	k, err := g.Next(ts)
	if err != nil {
		t.Fatalf("Next(%d): %v", ts, err)
	}
	return k
}

func TestGeneratorBasics(t *testing.T) {
	g := NewGenerator(7, 3)
	if _, ok := g.Last(); ok {
		t.Fatal("Last reports a key before the first Next")
	}
	steps := []struct {
		ts      uint64
		wantTS  uint64
		wantSeq uint64
	}{
		{100, 100, 0},
		{100, 100, 1}, // same nanosecond
		{100, 100, 2},
		{150, 150, 0}, // clock moved on
		{120, 150, 1}, // clock went backwards: keep 150
		{0, 150, 2},   // far backwards
		{151, 151, 0},
	}
	for i, s := range steps {
		k := mustNext(t, g, s.ts)
		if k.Timestamp() != s.wantTS || k.Sequence() != s.wantSeq || k.Node() != 7 || k.Actor() != 3 {
			t.Errorf("step %d: Next(%d) = %v, want ts=%d seq=%d node=7 actor=3", i, s.ts, k, s.wantTS, s.wantSeq)
		}
		if last, ok := g.Last(); !ok || last != k {
			t.Errorf("step %d: Last = %v, %v, want %v", i, last, ok, k)
		}
	}
	if n := g.SequenceOverflows(); n != 0 {
		t.Errorf("SequenceOverflows = %d, want 0", n)
	}
}

func TestGeneratorFirstKeyAtZero(t *testing.T) {
	var g Generator // zero value: node 0, actor 0
	k := mustNext(t, &g, 0)
	if k != (Key{}) {
		t.Errorf("first key at ts 0 = %v, want the zero key", k)
	}
	if k2 := mustNext(t, &g, 0); !Less(k, k2) || k2.Sequence() != 1 {
		t.Errorf("second key at ts 0 = %v", k2)
	}
}

func TestGeneratorMonotonicRandomClock(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	g := NewGenerator(0xBEEF, 0x42)
	clock := uint64(1_000_000)
	prev := mustNext(t, g, clock)
	for i := range 100000 {
		// A jittery clock: mostly forward, often stuck, sometimes backwards.
		switch r.IntN(4) {
		case 0:
			clock += r.Uint64N(1000)
		case 1:
			clock -= r.Uint64N(min(clock, 5000))
		}
		k := mustNext(t, g, clock)
		if !Less(prev, k) {
			t.Fatalf("iteration %d: key %v not after %v", i, k, prev)
		}
		if k.Timestamp() < clock {
			t.Fatalf("iteration %d: key %v earlier than supplied time %d", i, k, clock)
		}
		if k.Node() != 0xBEEF || k.Actor() != 0x42 {
			t.Fatalf("iteration %d: key %v lost node/actor", i, k)
		}
		prev = k
	}
}

func TestGeneratorSequenceOverflow(t *testing.T) {
	g := NewGenerator(1, 2)
	// Put the generator two steps before the end of the sequence space.
	g.last = makeKey(500, 1, 2, MaxSequence-1)
	g.started = true

	k := mustNext(t, g, 500)
	if k.Timestamp() != 500 || k.Sequence() != MaxSequence {
		t.Fatalf("Next = %v, want ts=500 seq=MaxSequence", k)
	}
	// The sequence is full: the timestamp advances by 1 ns, sequence resets.
	k2 := mustNext(t, g, 400) // a clock behind the last key changes nothing
	if k2.Timestamp() != 501 || k2.Sequence() != 0 || k2.Node() != 1 || k2.Actor() != 2 {
		t.Fatalf("Next after overflow = %v, want ts=501 seq=0 node=1 actor=2", k2)
	}
	if !Less(k, k2) {
		t.Fatalf("%v not after %v", k2, k)
	}
	if n := g.SequenceOverflows(); n != 1 {
		t.Fatalf("SequenceOverflows = %d, want 1", n)
	}
	// The next call at the same time continues from the new timestamp.
	if k3 := mustNext(t, g, 501); k3.Timestamp() != 501 || k3.Sequence() != 1 {
		t.Fatalf("Next(501) = %v, want ts=501 seq=1", k3)
	}
	// A supplied time past the bumped timestamp is used as is.
	if k4 := mustNext(t, g, 502); k4.Timestamp() != 502 || k4.Sequence() != 0 {
		t.Fatalf("Next(502) = %v, want ts=502 seq=0", k4)
	}
	if n := g.SequenceOverflows(); n != 1 {
		t.Fatalf("SequenceOverflows = %d, want 1", n)
	}
}

func TestGeneratorExhausted(t *testing.T) {
	g := NewGenerator(1, 2)
	g.last = makeKey(math.MaxUint64, 1, 2, MaxSequence-1)
	g.started = true
	last := mustNext(t, g, math.MaxUint64)
	if last != makeKey(math.MaxUint64, 1, 2, MaxSequence) {
		t.Fatalf("Next = %v", last)
	}
	for range 2 {
		k, err := g.Next(math.MaxUint64)
		if !errors.Is(err, ErrExhausted) {
			t.Fatalf("Next at the end = %v, %v, want ErrExhausted", k, err)
		}
	}
	if got, _ := g.Last(); got != last {
		t.Fatalf("Last changed after ErrExhausted: %v", got)
	}
	if n := g.SequenceOverflows(); n != 0 {
		t.Fatalf("SequenceOverflows = %d, want 0", n)
	}
}

func BenchmarkGeneratorNext(b *testing.B) {
	g := NewGenerator(1, 2)
	ts := uint64(1706918400000000000)
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		// Advance the clock every fourth key, so both branches run.
		if i&3 == 0 {
			ts++
		}
		i++
		if _, err := g.Next(ts); err != nil {
			b.Fatal(err)
		}
	}
}
