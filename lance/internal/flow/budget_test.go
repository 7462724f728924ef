package flow

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waiters returns how many Acquire calls are parked on b right now.
func waiters(b *Budget) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiters)
}

// waitParked yields until n Acquire calls are parked on b.
func waitParked(t *testing.T, b *Budget, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for waiters(b) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters parked, want %d", waiters(b), n)
		}
		runtime.Gosched()
	}
}

// result waits for one error from ch, failing the test if none comes in a
// generous liveness bound.
func result(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s never returned", what)
		return nil
	}
}

func TestTryAcquireRelease(t *testing.T) {
	b := NewBudget(100)
	if b.Max() != 100 {
		t.Fatalf("Max = %d", b.Max())
	}
	if !b.TryAcquire(60) {
		t.Fatal("60 of 100 refused on an empty budget")
	}
	if !b.TryAcquire(40) {
		t.Fatal("40 more refused with 60 of 100 held")
	}
	if got := b.Used(); got != 100 {
		t.Fatalf("Used = %d, want 100", got)
	}
	if b.TryAcquire(1) {
		t.Fatal("1 byte taken from a full budget")
	}
	b.Release(40)
	if b.TryAcquire(41) {
		t.Fatal("41 bytes taken with 40 free")
	}
	if !b.TryAcquire(40) {
		t.Fatal("40 bytes refused with 40 free")
	}
	b.Release(100)
	if got := b.Used(); got != 0 {
		t.Fatalf("Used = %d after releasing everything", got)
	}
	// Zero bytes always fit.
	if !b.TryAcquire(100) || !b.TryAcquire(0) {
		t.Fatal("0 bytes refused on a full budget")
	}
	b.Release(100)
}

func TestOversizedPassesOnlyWhenEmpty(t *testing.T) {
	b := NewBudget(100)
	if !b.TryAcquire(250) {
		t.Fatal("an oversized request was refused on an empty budget")
	}
	if b.TryAcquire(1) {
		t.Fatal("a request was let in beside an oversized one")
	}
	b.Release(250)

	if !b.TryAcquire(1) {
		t.Fatal("1 byte refused on an empty budget")
	}
	if b.TryAcquire(250) {
		t.Fatal("an oversized request was let in while bytes were held")
	}
	// Acquire lets it through as soon as the budget drains.
	done := make(chan error, 1)
	go func() { done <- b.Acquire(context.Background(), 250) }()
	waitParked(t, b, 1)
	b.Release(1)
	if err := result(t, done, "oversized Acquire"); err != nil {
		t.Fatal(err)
	}
	if got := b.Used(); got != 250 {
		t.Fatalf("Used = %d, want 250", got)
	}
	b.Release(250)
}

func TestUnlimited(t *testing.T) {
	for _, limit := range []int64{0, -5} {
		b := NewBudget(limit)
		for range 10 {
			if !b.TryAcquire(1 << 40) {
				t.Fatalf("limit %d: unlimited budget refused a request", limit)
			}
		}
		if err := b.Acquire(context.Background(), 1<<40); err != nil {
			t.Fatal(err)
		}
		if got := b.Used(); got != 11<<40 {
			t.Fatalf("Used = %d", got)
		}
		b.Release(11 << 40)
	}
}

func TestAcquireWaitsForRelease(t *testing.T) {
	b := NewBudget(10)
	if err := b.Acquire(context.Background(), 8); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Acquire(context.Background(), 5) }()
	waitParked(t, b, 1)
	select {
	case err := <-done:
		t.Fatalf("Acquire returned (%v) while the budget was full", err)
	default:
	}
	// Giving back too little wakes the waiter, which parks again.
	b.Release(2)
	waitParked(t, b, 1)
	select {
	case err := <-done:
		t.Fatalf("Acquire returned (%v) with only 4 bytes free", err)
	default:
	}
	if got := b.Used(); got != 6 {
		t.Fatalf("Used = %d, want 6", got)
	}
	b.Release(1)
	if err := result(t, done, "Acquire"); err != nil {
		t.Fatal(err)
	}
	if got := b.Used(); got != 10 {
		t.Fatalf("Used = %d, want 10", got)
	}
}

func TestAcquireHonoursContext(t *testing.T) {
	b := NewBudget(10)
	if !b.TryAcquire(10) {
		t.Fatal("TryAcquire on an empty budget failed")
	}

	// Already ended.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Acquire(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a cancelled context: %v", err)
	}

	// Ended while waiting.
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Acquire(ctx, 3) }()
	waitParked(t, b, 1)
	cancel()
	if err := result(t, done, "cancelled Acquire"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire: %v, want context.Canceled", err)
	}

	// A deadline.
	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := b.Acquire(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire past its deadline: %v", err)
	}

	// A failed Acquire holds nothing.
	if got := b.Used(); got != 10 {
		t.Fatalf("Used = %d after failed Acquires, want 10", got)
	}
	b.Release(10)
	if !b.TryAcquire(10) {
		t.Fatal("a failed Acquire kept bytes")
	}
	b.Release(10)
}

func TestReleaseTooMuchPanics(t *testing.T) {
	b := NewBudget(10)
	if !b.TryAcquire(4) {
		t.Fatal("TryAcquire failed")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("releasing more than held did not panic")
			}
		}()
		b.Release(5)
	}()
	// The refused release changed nothing.
	if got := b.Used(); got != 4 {
		t.Fatalf("Used = %d after a refused release, want 4", got)
	}
	b.Release(4)

	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("releasing on an empty budget did not panic")
			}
		}()
		NewBudget(0).Release(1)
	}()
}

// TestStress runs many goroutines taking and giving back random amounts,
// some of them larger than the whole budget, some with contexts that end.
// A checker holding each grant checks that the budget is never overdrawn
// except by a single oversized request holding it alone; every goroutine
// must finish (no lost wakeup leaves one parked forever) and the budget
// must end empty.
func TestStress(t *testing.T) {
	const (
		limit      = 1000
		goroutines = 32
		rounds     = 400
	)
	b := NewBudget(limit)
	var (
		mu        sync.Mutex
		held      int64 // sum of the grants being held, as the holders see it
		holders   int
		oversized int // holders of a grant larger than limit
		grants    atomic.Int64
		cancelled atomic.Int64
	)
	check := func(n int64, delta int) {
		mu.Lock()
		defer mu.Unlock()
		holders += delta
		held += int64(delta) * n
		if n > limit {
			oversized += delta
		}
		if delta < 0 {
			return
		}
		switch {
		case oversized > 1:
			t.Errorf("%d oversized grants held at once", oversized)
		case oversized == 1 && holders != 1:
			t.Errorf("an oversized grant of %d is held beside %d others", n, holders-1)
		case oversized == 0 && held > limit:
			t.Errorf("%d bytes held of a %d budget", held, limit)
		}
	}

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range rounds {
				n := 1 + int64(r.IntN(300))
				if r.IntN(50) == 0 {
					n = limit + int64(r.IntN(500)) + 1
				}
				switch r.IntN(4) {
				case 0:
					if !b.TryAcquire(n) {
						continue
					}
				case 1:
					ctx, cancel := context.WithCancel(context.Background())
					if r.IntN(2) == 0 {
						cancel()
					}
					err := b.Acquire(ctx, n)
					cancel()
					if err != nil {
						cancelled.Add(1)
						continue
					}
				default:
					if err := b.Acquire(context.Background(), n); err != nil {
						t.Errorf("Acquire(%d): %v", n, err)
						return
					}
				}
				grants.Add(1)
				check(n, 1)
				if r.IntN(4) == 0 {
					runtime.Gosched()
				}
				check(n, -1)
				b.Release(n)
			}
		})
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		t.Fatalf("goroutines still waiting on the budget (used %d, %d parked): a wakeup was lost", b.Used(), waiters(b))
	}
	if got := b.Used(); got != 0 {
		t.Fatalf("Used = %d after every grant was released", got)
	}
	if grants.Load() == 0 {
		t.Fatal("no grants")
	}
	t.Logf("%d grants, %d cancelled acquires", grants.Load(), cancelled.Load())
}
