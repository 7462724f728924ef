package ioq

import (
	"context"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// weightSets are the weight configurations the scheduling tests prove the
// rule for: the default, others in decreasing, equal and increasing order.
var weightSets = [][NumClasses]int{
	{16, 4, 1},
	{3, 2, 1},
	{1, 1, 1},
	{1, 4, 16},
	{5, 1, 3},
}

// waitBound is the documented limit on the number of consecutive pops that
// go to other classes while class c is non-empty.
func waitBound(w [NumClasses]int, c Class) int {
	n := 0
	for d := range Class(NumClasses) {
		if d != c {
			n += w[d]
		}
		if d < c {
			n += w[d]
		}
	}
	return n
}

// roundPattern is the pop sequence of one round with every class busy.
func roundPattern(w [NumClasses]int) string {
	return strings.Repeat("C", w[0]) + strings.Repeat("R", w[1]) + strings.Repeat("B", w[2])
}

// With every class kept non-empty (a producer puts an item back into each
// class as soon as one is popped from it), the pops come in rounds of
// exactly w(c) per class, highest class first, so the shares are exactly
// the weights.
func TestWeightedShareExact(t *testing.T) {
	const rounds = 50
	for _, w := range weightSets {
		q := New[int](Config{Weight: w, Capacity: [NumClasses]int{3, 3, 3}})
		for c := range Class(NumClasses) {
			for i := range 3 {
				mustTryPush(t, q, c, i)
			}
		}
		total := w[0] + w[1] + w[2]
		var seq []Class
		var count [NumClasses]int
		for i := range rounds * total {
			_, c, ok := q.TryPop()
			if !ok {
				t.Fatal("TryPop on a loaded queue failed")
			}
			mustTryPush(t, q, c, i)
			seq = append(seq, c)
			count[c]++
		}
		for c := range Class(NumClasses) {
			if count[c] != rounds*w[c] {
				t.Errorf("weights %v: class %v popped %d times in %d pops, want exactly %d", w, c, count[c], rounds*total, rounds*w[c])
			}
		}
		if got, want := pattern(seq), strings.Repeat(roundPattern(w), rounds); got != want {
			t.Errorf("weights %v: pop sequence\n got %s\nwant %s", w, got, want)
		}
	}
}

// A long pseudo-random (seeded, so deterministic) single-threaded sequence
// of pushes and pops, in phases with different class mixes and load. While
// a class is non-empty, the number of consecutive pops that go elsewhere
// never exceeds the bound; a non-empty queue never fails to pop; and no
// class ever gets more than w(c) pops between two round starts, checked via
// the share over windows in which every class stayed non-empty.
func TestWaitBound(t *testing.T) {
	for _, w := range weightSets {
		rng := rand.New(rand.NewPCG(uint64(w[0]), uint64(w[2])))
		q := New[int](Config{Weight: w, Capacity: [NumClasses]int{24, 24, 24}})
		var skipped, worst [NumClasses]int
		var pushP [NumClasses]int
		for step := range 30000 {
			if step%500 == 0 {
				// New phase: each class pushed with weight 0..4, and
				// pushes 1.5× or 0.5× as likely as pops.
				for c := range pushP {
					pushP[c] = rng.IntN(5)
				}
			}
			if rng.IntN(4) < 2+step/500%2 && pushP != [NumClasses]int{} {
				r := rng.IntN(pushP[0] + pushP[1] + pushP[2])
				c := ClassCommit
				for r >= pushP[c] {
					r -= pushP[c]
					c++
				}
				_ = q.TryPush(c, step)
				continue
			}
			var nonEmpty [NumClasses]bool
			for c := range Class(NumClasses) {
				nonEmpty[c] = q.LenClass(c) > 0
			}
			_, got, ok := q.TryPop()
			if ok != (nonEmpty != [NumClasses]bool{}) {
				t.Fatalf("step %d: TryPop ok=%v with classes non-empty %v", step, ok, nonEmpty)
			}
			if !ok {
				continue
			}
			for c := range Class(NumClasses) {
				switch {
				case c == got:
					skipped[c] = 0
				case nonEmpty[c]:
					skipped[c]++
					worst[c] = max(worst[c], skipped[c])
					if b := waitBound(w, c); skipped[c] > b {
						t.Fatalf("weights %v step %d: class %v passed over %d times in a row, bound %d", w, step, c, skipped[c], b)
					}
				default:
					skipped[c] = 0
				}
			}
		}
		t.Logf("weights %v: longest waits %v pops, bounds [%d %d %d]", w, worst, waitBound(w, 0), waitBound(w, 1), waitBound(w, 2))
	}
}

// The bound is tight: background, served alone while the others were idle,
// then waits out the rest of that round and the higher classes' next round.
func TestWaitBoundTight(t *testing.T) {
	q := New[int](Config{})
	mustTryPush(t, q, ClassBackground, 0)
	q.TryPop() // a round starts; background spends its only credit
	mustTryPush(t, q, ClassBackground, 1)
	for i := range 40 {
		mustTryPush(t, q, ClassCommit, i)
		if i < 10 {
			mustTryPush(t, q, ClassRead, i)
		}
	}
	var seq []Class
	for range 41 {
		_, c, _ := q.TryPop()
		seq = append(seq, c)
	}
	want := strings.Repeat(strings.Repeat("C", 16)+"RRRR", 2) + "B"
	if got := pattern(seq); got != want {
		t.Fatalf("pop sequence\n got %s\nwant %s", got, want)
	}
	if n := waitBound(DefaultConfig().Weight, ClassBackground); n != 40 {
		t.Fatalf("bound %d", n)
	}
}

// A producer goroutine keeps ClassCommit permanently non-empty: the
// consumer, slower than the producer, pops only once commit holds an item.
// Background still gets exactly one pop per round: with read idle, the pop
// sequence is exactly (16 commit, 1 background) repeated, timing
// notwithstanding, and the background items come out FIFO.
func TestBackgroundNotStarved(t *testing.T) {
	checkLeaks(t)
	const background = 40
	q := New[int](Config{Capacity: [NumClasses]int{8, 8, background}})
	stop, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			if err := q.Push(stop, ClassCommit, i); err != nil {
				return
			}
		}
	})
	defer wg.Wait()
	defer cancel()
	for i := range background {
		mustTryPush(t, q, ClassBackground, i)
	}

	ctx, cancelPop := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelPop()
	var seq []Class
	next, commit := 0, 0
	for next < background {
		for q.LenClass(ClassCommit) == 0 {
			if ctx.Err() != nil {
				t.Fatal("the commit producer stalled")
			}
			runtime.Gosched()
		}
		v, c, err := q.Pop(ctx)
		if err != nil {
			t.Fatalf("after %d background items: %v", next, err)
		}
		seq = append(seq, c)
		switch c {
		case ClassBackground:
			if v != next {
				t.Fatalf("background item %d popped, want %d", v, next)
			}
			next++
		case ClassCommit:
			if v != commit {
				t.Fatalf("commit item %d popped, want %d", v, commit)
			}
			commit++
		}
	}
	if got, want := pattern(seq), strings.Repeat(strings.Repeat("C", 16)+"B", background); got != want {
		t.Fatalf("pop sequence\n got %s\nwant %s", got, want)
	}
}
