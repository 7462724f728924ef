package ioq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	q := New[int](Config{Capacity: [NumClasses]int{ClassRead: 3}, Weight: [NumClasses]int{ClassBackground: 2}})
	s := q.Stats()
	if got := [NumClasses]int{s.Classes[0].Cap, s.Classes[1].Cap, s.Classes[2].Cap}; got != [NumClasses]int{DefaultCapacity, 3, DefaultCapacity} {
		t.Errorf("capacities %v", got)
	}
	if q.weight != [NumClasses]int{16, 4, 2} {
		t.Errorf("weights %v", q.weight)
	}
	if def := DefaultConfig(); def.Weight != [NumClasses]int{16, 4, 1} || def.Capacity[ClassBackground] != DefaultCapacity {
		t.Errorf("DefaultConfig() = %+v", def)
	}
	for _, bad := range []Config{
		{Capacity: [NumClasses]int{ClassRead: -1}},
		{Weight: [NumClasses]int{ClassCommit: -5}},
	} {
		err := bad.Validate()
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidConfig", bad, err)
		}
		func() {
			defer func() {
				if r, _ := recover().(error); !errors.Is(r, ErrInvalidConfig) {
					t.Errorf("New(%+v) panicked with %v, want ErrInvalidConfig", bad, r)
				}
			}()
			New[int](bad)
		}()
	}
}

func TestInvalidClass(t *testing.T) {
	q := New[int](Config{})
	if err := q.TryPush(NumClasses, 1); !errors.Is(err, ErrUnknownClass) {
		t.Errorf("TryPush(3): %v", err)
	}
	if err := q.Push(context.Background(), 200, 1); !errors.Is(err, ErrUnknownClass) {
		t.Errorf("Push(200): %v", err)
	}
	if n := q.LenClass(NumClasses); n != 0 || q.Len() != 0 {
		t.Errorf("LenClass(3) = %d, Len() = %d", n, q.Len())
	}
}

func TestFIFOWithinClass(t *testing.T) {
	for c := range Class(NumClasses) {
		t.Run(c.String(), func(t *testing.T) {
			q := New[int](Config{Capacity: [NumClasses]int{5, 5, 5}})
			// Several laps around the ring so that head and tail wrap.
			next := 0
			var got []int
			for lap := range 4 {
				for range 3 + lap%3 {
					mustTryPush(t, q, c, next)
					next++
				}
				if n := q.LenClass(c); n != 3+lap%3 {
					t.Fatalf("LenClass = %d", n)
				}
				items, classes := popAll(q)
				for _, k := range classes {
					if k != c {
						t.Fatalf("popped class %v from a queue holding only %v", k, c)
					}
				}
				got = append(got, items...)
			}
			for i, v := range got {
				if v != i {
					t.Fatalf("popped %v, want 0..%d in order", got, next-1)
				}
			}
		})
	}
}

func TestPriorityAllLoaded(t *testing.T) {
	q := New[string](Config{})
	// Push in reverse priority order, interleaved, so that arrival order
	// favours the low classes.
	for i := range 40 {
		mustTryPush(t, q, ClassBackground, fmt.Sprintf("b%d", i))
		mustTryPush(t, q, ClassRead, fmt.Sprintf("r%d", i))
		mustTryPush(t, q, ClassCommit, fmt.Sprintf("c%d", i))
	}
	if q.Len() != 120 {
		t.Fatalf("Len = %d", q.Len())
	}
	items, classes := popAll(q)
	// Rounds of 16 commit, 4 read, 1 background while commit lasts (40 =
	// 16+16+8), then read and background share 4:1 until read runs out
	// (40 = 3×4 + 7×4), then background alone (40 - 10).
	want := strings.Repeat("C", 16) + "RRRRB" +
		strings.Repeat("C", 16) + "RRRRB" +
		strings.Repeat("C", 8) + "RRRRB" +
		strings.Repeat("RRRRB", 7) + strings.Repeat("B", 30)
	if got := pattern(classes); got != want {
		t.Fatalf("pop order\n got %s\nwant %s", got, want)
	}
	// FIFO within each class, whatever the interleaving.
	seen := map[byte]int{}
	for _, it := range items {
		k := it[0]
		if want := fmt.Sprintf("%c%d", k, seen[k]); it != want {
			t.Fatalf("popped %s, want %s", it, want)
		}
		seen[k]++
	}
}

func TestTryPushFull(t *testing.T) {
	q := New[int](Config{Capacity: [NumClasses]int{ClassRead: 2}})
	mustTryPush(t, q, ClassRead, 1)
	mustTryPush(t, q, ClassRead, 2)
	if err := q.TryPush(ClassRead, 3); err != ErrFull {
		t.Fatalf("TryPush on a full class: %v, want ErrFull", err)
	}
	// A full class does not hold up the others.
	mustTryPush(t, q, ClassCommit, 10)
	mustTryPush(t, q, ClassBackground, 20)
	if _, c, _ := q.TryPop(); c != ClassCommit {
		t.Fatalf("first pop from class %v", c)
	}
	if v, c, _ := q.TryPop(); c != ClassRead || v != 1 {
		t.Fatalf("second pop %v from %v", v, c)
	}
	mustTryPush(t, q, ClassRead, 3)
	if st := q.Stats().Classes[ClassRead]; st.Full != 1 || st.Pushed != 3 || st.Popped != 1 || st.Len != 2 || st.Cap != 2 {
		t.Fatalf("read stats %+v", st)
	}
}

func TestPushBlocksUntilPop(t *testing.T) {
	checkLeaks(t)
	q := New[int](Config{Capacity: [NumClasses]int{ClassBackground: 1}})
	mustTryPush(t, q, ClassBackground, 1)
	done := make(chan error, 2)
	for _, v := range []int{2, 3} {
		go func() { done <- q.Push(context.Background(), ClassBackground, v) }()
	}
	waitUntil(t, "both pushes wait", func() bool { return q.pushWaiting(ClassBackground) == 2 })
	select {
	case err := <-done:
		t.Fatalf("Push into a full class returned %v", err)
	default:
	}
	var got []int
	for range 3 {
		v, _, err := q.Pop(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
		if len(got) < 3 {
			// Each pop frees one slot: exactly one waiting Push gets in.
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	if got[0] != 1 || !slices.Equal(slices.Sorted(slices.Values(got[1:])), []int{2, 3}) {
		t.Fatalf("popped %v", got)
	}
	if st := q.Stats().Classes[ClassBackground]; st.Full != 2 || st.Pushed != 3 || st.Popped != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPopBlocksUntilPush(t *testing.T) {
	checkLeaks(t)
	q := New[int](Config{})
	got := make(chan result[int], 1)
	go func() {
		v, c, err := q.Pop(context.Background())
		got <- result[int]{v, c, err}
	}()
	waitUntil(t, "Pop waits", func() bool { return q.popWaiting() == 1 })
	mustTryPush(t, q, ClassRead, 42)
	if r := <-got; r.err != nil || r.item != 42 || r.class != ClassRead {
		t.Fatalf("Pop = %+v", r)
	}
}

func TestPushCancel(t *testing.T) {
	checkLeaks(t)
	q := New[int](Config{Capacity: [NumClasses]int{ClassCommit: 1}})
	mustTryPush(t, q, ClassCommit, 1)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Push(ctx, ClassCommit, 2) }()
	waitUntil(t, "Push waits", func() bool { return q.pushWaiting(ClassCommit) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Push: %v, want context.Canceled", err)
	}

	tctx, tcancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer tcancel()
	if err := q.Push(tctx, ClassCommit, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out Push: %v, want context.DeadlineExceeded", err)
	}
	if n := q.pushWaiting(ClassCommit); n != 0 {
		t.Fatalf("%d push waiters left", n)
	}
	items, _ := popAll(q)
	if !slices.Equal(items, []int{1}) {
		t.Fatalf("queue holds %v after cancelled pushes, want [1]", items)
	}
	// With room, an ended context does not stop Push.
	if err := q.Push(ctx, ClassCommit, 4); err != nil {
		t.Fatalf("Push with room and a cancelled ctx: %v", err)
	}
}

func TestPopCancel(t *testing.T) {
	checkLeaks(t)
	q := New[int](Config{})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan result[int], 2)
	go func() {
		v, c, err := q.Pop(ctx)
		got <- result[int]{v, c, err}
	}()
	go func() {
		_, err := q.PopBatch(ctx, nil, 8)
		got <- result[int]{err: err}
	}()
	waitUntil(t, "both pops wait", func() bool { return q.popWaiting() == 2 })
	cancel()
	for range 2 {
		if r := <-got; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled pop: %+v, want context.Canceled", r)
		}
	}
	if n := q.popWaiting(); n != 0 {
		t.Fatalf("%d pop waiters left", n)
	}
	// A wake-up sent to a waiter that then gave up is not lost: the next
	// Pop still gets the item.
	mustTryPush(t, q, ClassRead, 7)
	if v, _, err := q.Pop(context.Background()); err != nil || v != 7 {
		t.Fatalf("Pop after cancellations = %v, %v", v, err)
	}
}

func TestClose(t *testing.T) {
	checkLeaks(t)
	q := New[int](Config{Capacity: [NumClasses]int{ClassRead: 1}})
	mustTryPush(t, q, ClassRead, 1)
	pushed := make(chan error, 1)
	go func() { pushed <- q.Push(context.Background(), ClassRead, 2) }()
	waitUntil(t, "Push waits", func() bool { return q.pushWaiting(ClassRead) == 1 })
	mustTryPush(t, q, ClassBackground, 3)
	mustTryPush(t, q, ClassCommit, 4)

	q.Close()
	q.Close() // idempotent
	if err := <-pushed; !errors.Is(err, ErrClosed) {
		t.Fatalf("Push waiting at Close: %v, want ErrClosed", err)
	}
	if err := q.TryPush(ClassCommit, 5); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryPush after Close: %v", err)
	}
	if err := q.Push(context.Background(), ClassCommit, 5); !errors.Is(err, ErrClosed) {
		t.Fatalf("Push after Close: %v", err)
	}
	// Drain in scheduling order.
	v, c, err := q.Pop(context.Background())
	if err != nil || v != 4 || c != ClassCommit {
		t.Fatalf("first Pop after Close = %v %v %v", v, c, err)
	}
	batch, err := q.PopBatch(context.Background(), nil, 10)
	if err != nil || !slices.Equal(batch, []int{1, 3}) {
		t.Fatalf("PopBatch after Close = %v, %v", batch, err)
	}
	if _, _, err := q.Pop(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pop on closed, drained queue: %v", err)
	}
	if b, err := q.PopBatch(context.Background(), batch[:0], 10); !errors.Is(err, ErrClosed) || len(b) != 0 {
		t.Fatalf("PopBatch on closed, drained queue: %v, %v", b, err)
	}
	if _, _, ok := q.TryPop(); ok {
		t.Fatal("TryPop on closed, drained queue succeeded")
	}
}

func TestCloseWakesPops(t *testing.T) {
	checkLeaks(t)
	q := New[int](Config{})
	const waiters = 4
	got := make(chan error, waiters)
	for i := range waiters {
		go func() {
			if i%2 == 0 {
				_, _, err := q.Pop(context.Background())
				got <- err
			} else {
				_, err := q.PopBatch(context.Background(), nil, 4)
				got <- err
			}
		}()
	}
	waitUntil(t, "all pops wait", func() bool { return q.popWaiting() == waiters })
	q.Close()
	for range waiters {
		if err := <-got; !errors.Is(err, ErrClosed) {
			t.Fatalf("Pop waiting at Close: %v, want ErrClosed", err)
		}
	}
}

func TestPopBatch(t *testing.T) {
	checkLeaks(t)
	load := func(q *Queue[int]) {
		for i := range 30 {
			mustTryPush(t, q, ClassBackground, 2000+i)
			mustTryPush(t, q, ClassRead, 1000+i)
			mustTryPush(t, q, ClassCommit, i)
		}
	}
	// Reference: the same load popped one at a time.
	ref := New[int](Config{})
	load(ref)
	want, _ := popAll(ref)

	q := New[int](Config{})
	load(q)
	ctx := context.Background()
	buf := make([]int, 0, 64)
	var got []int
	for _, limit := range []int{1, 5, 21, 7, 64} {
		b, err := q.PopBatch(ctx, buf[:0], limit)
		if err != nil {
			t.Fatal(err)
		}
		if n := min(limit, 90-len(got)); len(b) != n {
			t.Fatalf("PopBatch(limit %d) took %d items, want %d", limit, len(b), n)
		}
		got = append(got, b...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("PopBatch order\n got %v\nwant %v", got, want)
	}
	if q.Len() != 0 {
		t.Fatalf("Len = %d after taking everything", q.Len())
	}

	// PopBatch appends to dst and takes only what is there.
	mustTryPush(t, q, ClassRead, 5)
	b, err := q.PopBatch(ctx, []int{-1}, 64)
	if err != nil || !slices.Equal(b, []int{-1, 5}) {
		t.Fatalf("PopBatch = %v, %v", b, err)
	}

	// On an empty queue it waits for the first item.
	res := make(chan []int, 1)
	go func() {
		b, err := q.PopBatch(ctx, nil, 64)
		if err != nil {
			t.Error(err)
		}
		res <- b
	}()
	waitUntil(t, "PopBatch waits", func() bool { return q.popWaiting() == 1 })
	mustTryPush(t, q, ClassBackground, 9)
	if b := <-res; !slices.Equal(b, []int{9}) {
		t.Fatalf("woken PopBatch = %v", b)
	}

	defer func() {
		if recover() == nil {
			t.Fatal("PopBatch with limit 0 did not panic")
		}
	}()
	q.PopBatch(ctx, nil, 0)
}

func TestPopBatchWakesProducers(t *testing.T) {
	checkLeaks(t)
	q := New[int](Config{Capacity: [NumClasses]int{ClassCommit: 4}})
	for i := range 4 {
		mustTryPush(t, q, ClassCommit, i)
	}
	const producers = 3
	done := make(chan error, producers)
	for i := range producers {
		go func() { done <- q.Push(context.Background(), ClassCommit, 10+i) }()
	}
	waitUntil(t, "producers wait", func() bool { return q.pushWaiting(ClassCommit) == producers })
	// One batch frees four slots at once; one wake-up token, passed on by
	// each producer that leaves room behind, lets all three in.
	if b, err := q.PopBatch(context.Background(), nil, 4); err != nil || len(b) != 4 {
		t.Fatalf("PopBatch = %v, %v", b, err)
	}
	for range producers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := q.LenClass(ClassCommit); n != producers {
		t.Fatalf("LenClass = %d", n)
	}
}

func TestStatsWait(t *testing.T) {
	q := New[int](Config{})
	mustTryPush(t, q, ClassRead, 1)
	mustTryPush(t, q, ClassRead, 2)
	time.Sleep(2 * time.Millisecond)
	popAll(q)
	st := q.Stats().Classes[ClassRead]
	if st.MaxWait < 2*time.Millisecond || st.TotalWait < 2*st.MaxWait-time.Millisecond || st.TotalWait > 2*st.MaxWait {
		t.Fatalf("MaxWait %v, TotalWait %v", st.MaxWait, st.TotalWait)
	}
	if st.Pushed != 2 || st.Popped != 2 || st.Len != 0 {
		t.Fatalf("stats %+v", st)
	}
	if other := q.Stats().Classes[ClassCommit]; other != (ClassStats{Cap: DefaultCapacity}) {
		t.Fatalf("commit stats %+v, want untouched", other)
	}
}

// Items that hold pointers are released by the ring when popped.
func TestPopClearsSlot(t *testing.T) {
	q := New[*int](Config{Capacity: [NumClasses]int{2, 2, 2}})
	v := 1
	mustTryPush(t, q, ClassRead, &v)
	q.TryPop()
	for _, s := range q.rings[ClassRead].buf {
		if s.item != nil {
			t.Fatal("popped item still referenced by the ring")
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	q := New[int](Config{})
	ctx := context.Background()
	if n := testing.AllocsPerRun(200, func() {
		if err := q.Push(ctx, ClassRead, 1); err != nil {
			t.Fatal(err)
		}
		if _, _, err := q.Pop(ctx); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Push+Pop: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(200, func() {
		_ = q.TryPush(ClassBackground, 1)
		q.TryPop()
	}); n != 0 {
		t.Errorf("TryPush+TryPop: %v allocs, want 0", n)
	}
	buf := make([]int, 0, 64)
	if n := testing.AllocsPerRun(200, func() {
		for i := range 64 {
			_ = q.TryPush(Class(i%NumClasses), i)
		}
		if _, err := q.PopBatch(ctx, buf[:0], 64); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("PopBatch: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(200, func() {
		_ = q.Stats()
		_ = q.Len()
	}); n != 0 {
		t.Errorf("Stats: %v allocs, want 0", n)
	}
}
