// Package flow bounds memory: a Budget counts bytes held by requests in
// flight and makes the holder of a full budget wait (or tell its client to
// slow down) until others give bytes back.
package flow

import (
	"context"
	"sync"
)

// Budget is a byte semaphore. A request larger than the whole budget is
// let through when nothing else is held, so that one oversized request
// cannot wait forever. The zero value is not usable; call NewBudget.
type Budget struct {
	// mu guards used and waiters; held only for arithmetic, never across
	// a blocking call.
	mu      sync.Mutex
	used    int64
	max     int64
	waiters []chan struct{} // woken, all at once, whenever bytes come back
}

// NewBudget returns a budget of max bytes; max <= 0 means unlimited.
func NewBudget(max int64) *Budget { return &Budget{max: max} }

// fits reports whether n more bytes fit; the caller holds mu.
func (b *Budget) fits(n int64) bool {
	return b.max <= 0 || b.used == 0 || b.used+n <= b.max
}

// TryAcquire takes n bytes if they fit now.
func (b *Budget) TryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.fits(n) {
		return false
	}
	b.used += n
	return true
}

// Acquire takes n bytes, waiting until they fit or ctx ends.
func (b *Budget) Acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.fits(n) {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		ch := make(chan struct{})
		b.waiters = append(b.waiters, ch)
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release gives n bytes back and wakes the waiters.
func (b *Budget) Release(n int64) {
	b.mu.Lock()
	if n > b.used {
		// Refused before the count changes, so that the budget stays
		// consistent for whoever recovers the panic.
		b.mu.Unlock()
		panic("flow: budget released more than acquired")
	}
	b.used -= n
	ws := b.waiters
	b.waiters = nil
	b.mu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}

// Used returns the bytes held now.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Max returns the budget's size (0 = unlimited).
func (b *Budget) Max() int64 { return b.max }
