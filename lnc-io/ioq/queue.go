package ioq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Sentinel errors of the queue. Use errors.Is: Push and Pop wrap the
// context's error, and Push wraps ErrUnknownClass with the bad value.
var (
	// ErrFull is returned by TryPush when the class has no room.
	ErrFull = errors.New("ioq: class full")
	// ErrClosed is returned by Push and TryPush once the queue is closed,
	// and by Pop and PopBatch once it is closed and drained.
	ErrClosed = errors.New("ioq: queue closed")
	// ErrInvalidConfig is returned by Config.Validate, and New panics with
	// it, for a negative capacity or weight.
	ErrInvalidConfig = errors.New("ioq: invalid config")
)

// DefaultCapacity is the per-class capacity a zero Config.Capacity entry
// stands for.
const DefaultCapacity = 1024

// defaultWeights are the weights zero Config.Weight entries stand for.
var defaultWeights = [NumClasses]int{
	ClassCommit:     16,
	ClassRead:       4,
	ClassBackground: 1,
}

// Config sets up a Queue. The zero value is usable: every zero entry takes
// its value from DefaultConfig.
type Config struct {
	// Capacity bounds the number of queued items of each class. A full
	// class makes Push block and TryPush fail with ErrFull. Storage for
	// every class is allocated by New, up front.
	Capacity [NumClasses]int
	// Weight is the number of pops each class is given per scheduling
	// round (see the package documentation). Only ratios and sums matter
	// for shares and waits; the default is 16:4:1.
	Weight [NumClasses]int
}

// DefaultConfig returns the configuration a zero Config stands for:
// DefaultCapacity items per class and weights 16 (commit), 4 (read) and
// 1 (background).
func DefaultConfig() Config {
	var cfg Config
	for c := range NumClasses {
		cfg.Capacity[c] = DefaultCapacity
	}
	cfg.Weight = defaultWeights
	return cfg
}

// Validate reports a negative capacity or weight, wrapping ErrInvalidConfig.
func (cfg Config) Validate() error {
	for c := range Class(NumClasses) {
		if cfg.Capacity[c] < 0 {
			return fmt.Errorf("%w: capacity %d for class %v", ErrInvalidConfig, cfg.Capacity[c], c)
		}
		if cfg.Weight[c] < 0 {
			return fmt.Errorf("%w: weight %d for class %v", ErrInvalidConfig, cfg.Weight[c], c)
		}
	}
	return nil
}

// withDefaults fills zero entries from DefaultConfig.
func (cfg Config) withDefaults() Config {
	def := DefaultConfig()
	for c := range NumClasses {
		if cfg.Capacity[c] == 0 {
			cfg.Capacity[c] = def.Capacity[c]
		}
		if cfg.Weight[c] == 0 {
			cfg.Weight[c] = def.Weight[c]
		}
	}
	return cfg
}

// ClassStats are the counters of one class. Counters only grow; Len and Cap
// are a snapshot.
type ClassStats struct {
	// Pushed and Popped count items queued and dequeued.
	Pushed, Popped uint64
	// Full counts Push and TryPush calls that found the class full: the
	// TryPush calls that failed with ErrFull and the Push calls that had
	// to wait (each counted once however long it waited).
	Full uint64
	// MaxWait is the longest time an item spent queued, since New.
	MaxWait time.Duration
	// TotalWait is the sum of the time popped items spent queued; its
	// difference between two snapshots divided by that of Popped is the
	// mean queueing delay over the interval.
	TotalWait time.Duration
	// Len is the number of items queued, Cap the class's capacity.
	Len, Cap int
}

// Stats is a snapshot of a Queue's counters, for metrics.
type Stats struct {
	// Classes holds the counters of each class, indexed by Class.
	Classes [NumClasses]ClassStats
}

// counters are the growing fields of ClassStats, kept by the Queue.
type counters struct {
	pushed, popped, full uint64
	maxWait, totalWait   int64
}

// Queue is a bounded multi-class priority FIFO; see the package
// documentation for how it schedules and waits. It is safe for concurrent
// use by any number of producers and consumers. Create it with New; the
// zero Queue is not usable.
type Queue[T any] struct {
	// mu guards every field from here to the blank line. Every read and
	// change of queue state happens with mu held, and no code blocks while
	// holding it: waits release mu first (see awaitItemsLocked and
	// awaitRoomLocked), and channel sends made under mu never block (they
	// are non-blocking sends to buffered channels, skipped once the
	// channels are closed).
	mu    sync.Mutex
	rings [NumClasses]ring[T]
	// credit is what each class may still be popped in the current round.
	credit [NumClasses]int
	// total is the number of items in all rings.
	total  int
	closed bool
	// popWaiters and pushWaiters count the goroutines that released mu to
	// wait on popWake and pushWake[c]; a wake-up token is sent only when
	// the count is positive.
	popWaiters  int
	pushWaiters [NumClasses]int
	stats       [NumClasses]counters

	// Set by New and read-only afterwards, so read without mu. The wake
	// channels are closed by Close, under mu, after closed is set; sends
	// to them happen under mu and only while closed is false.
	weight   [NumClasses]int
	epoch    time.Time
	popWake  chan struct{}
	pushWake [NumClasses]chan struct{}
}

// New returns an empty queue configured by cfg, zero entries taking their
// defaults. It panics, with an error wrapping ErrInvalidConfig, if
// cfg.Validate fails: configurations come from code or are checked with
// Validate when loaded, so a bad one here is a programming error.
func New[T any](cfg Config) *Queue[T] {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	q := &Queue[T]{
		weight:  cfg.Weight,
		credit:  cfg.Weight,
		epoch:   time.Now(),
		popWake: make(chan struct{}, 1),
	}
	for c := range NumClasses {
		q.rings[c] = newRing[T](cfg.Capacity[c])
		q.pushWake[c] = make(chan struct{}, 1)
	}
	return q
}

// Push queues item at the tail of class c, waiting while the class is full.
// It returns ErrClosed if the queue is or becomes closed before the item is
// queued, and the context's error, wrapped, if ctx ends first; in both cases
// the item is not queued. ctx only bounds the wait: if the class has room,
// Push succeeds even when ctx has already ended.
func (q *Queue[T]) Push(ctx context.Context, c Class, item T) error {
	if !c.Valid() {
		return fmt.Errorf("%w: %v", ErrUnknownClass, c)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.awaitRoomLocked(ctx, c); err != nil {
		return err
	}
	q.putLocked(c, item)
	return nil
}

// TryPush queues item at the tail of class c if the class has room. It
// returns ErrFull, unwrapped, when the class is full and ErrClosed once the
// queue is closed.
func (q *Queue[T]) TryPush(c Class, item T) error {
	if !c.Valid() {
		return fmt.Errorf("%w: %v", ErrUnknownClass, c)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if q.rings[c].full() {
		q.stats[c].full++
		return ErrFull
	}
	q.putLocked(c, item)
	return nil
}

// Pop removes and returns the next item in scheduling order and its class,
// waiting while the queue is empty. Once the queue is closed, Pop goes on
// returning the remaining items and then returns ErrClosed. If ctx ends
// while Pop waits, it returns the context's error, wrapped. On error the
// item and class are zero values.
func (q *Queue[T]) Pop(ctx context.Context) (T, Class, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.awaitItemsLocked(ctx); err != nil {
		var zero T
		return zero, 0, err
	}
	c := q.pickLocked()
	item := q.takeLocked(c, q.now())
	q.wakeAfterPopLocked(1 << c)
	return item, c, nil
}

// TryPop removes and returns the next item in scheduling order and its
// class, if there is one. It reports false when the queue is empty, closed
// or not.
func (q *Queue[T]) TryPop() (T, Class, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.total == 0 {
		var zero T
		return zero, 0, false
	}
	c := q.pickLocked()
	item := q.takeLocked(c, q.now())
	q.wakeAfterPopLocked(1 << c)
	return item, c, true
}

// PopBatch waits until at least one item is queued, then appends to dst up
// to limit items in scheduling order, as many as are queued at that moment
// (it does not wait for more), and returns the extended slice. Taking k
// items gives exactly the items and order of k calls to TryPop. It returns
// dst unchanged with ErrClosed once the queue is closed and drained, or with
// the context's error, wrapped, if ctx ends while it waits. To allocate
// nothing, pass a dst with room for limit more items. limit must be at
// least 1.
func (q *Queue[T]) PopBatch(ctx context.Context, dst []T, limit int) ([]T, error) {
	if limit < 1 {
		panic(fmt.Sprintf("ioq: PopBatch limit %d, want at least 1", limit))
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.awaitItemsLocked(ctx); err != nil {
		return dst, err
	}
	now := q.now()
	var popped uint8
	for range limit {
		if q.total == 0 {
			break
		}
		c := q.pickLocked()
		dst = append(dst, q.takeLocked(c, now))
		popped |= 1 << c
	}
	q.wakeAfterPopLocked(popped)
	return dst, nil
}

// Len returns the number of queued items in all classes.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total
}

// LenClass returns the number of queued items of class c, or 0 for an
// invalid class.
func (q *Queue[T]) LenClass(c Class) int {
	if !c.Valid() {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rings[c].n
}

// Close closes the queue: Push and TryPush fail with ErrClosed from now on,
// waiting Push calls return ErrClosed, and Pop, TryPop and PopBatch return
// what is left, after which Pop and PopBatch return ErrClosed (waiting ones
// at once). Close is idempotent.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	close(q.popWake)
	for _, ch := range q.pushWake {
		close(ch)
	}
}

// Stats returns a snapshot of the per-class counters.
func (q *Queue[T]) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	var s Stats
	for c := range NumClasses {
		k := &q.stats[c]
		s.Classes[c] = ClassStats{
			Pushed:    k.pushed,
			Popped:    k.popped,
			Full:      k.full,
			MaxWait:   time.Duration(k.maxWait),
			TotalWait: time.Duration(k.totalWait),
			Len:       q.rings[c].n,
			Cap:       len(q.rings[c].buf),
		}
	}
	return s
}

// now reads the queue's clock: nanoseconds since New, monotonic.
func (q *Queue[T]) now() int64 { return int64(time.Since(q.epoch)) }

// awaitRoomLocked returns nil once class c has room, or ErrClosed, or the
// wrapped ctx error. It is called with mu held and returns with mu held,
// releasing it while it waits.
func (q *Queue[T]) awaitRoomLocked(ctx context.Context, c Class) error {
	counted := false
	for {
		if q.closed {
			return ErrClosed
		}
		if !q.rings[c].full() {
			return nil
		}
		if !counted {
			q.stats[c].full++
			counted = true
		}
		q.pushWaiters[c]++
		q.mu.Unlock()
		var err error
		select {
		case <-q.pushWake[c]:
		case <-ctx.Done():
			err = ctx.Err()
		}
		q.mu.Lock()
		q.pushWaiters[c]--
		if err != nil {
			// A token meant for this goroutine, if any, stays in the
			// channel for the next waiter.
			return fmt.Errorf("ioq: push %v: %w", c, err)
		}
	}
}

// awaitItemsLocked returns nil once an item is queued, ErrClosed once the
// queue is closed and empty, or the wrapped ctx error. It is called with mu
// held and returns with mu held, releasing it while it waits.
func (q *Queue[T]) awaitItemsLocked(ctx context.Context) error {
	for q.total == 0 {
		if q.closed {
			return ErrClosed
		}
		q.popWaiters++
		q.mu.Unlock()
		var err error
		select {
		case <-q.popWake:
		case <-ctx.Done():
			err = ctx.Err()
		}
		q.mu.Lock()
		q.popWaiters--
		if err != nil {
			return fmt.Errorf("ioq: pop: %w", err)
		}
	}
	return nil
}

// putLocked queues item in class c, which has room, and wakes a consumer
// and, if room is left, passes the producers' token on.
func (q *Queue[T]) putLocked(c Class, item T) {
	q.rings[c].push(item, q.now())
	q.total++
	q.stats[c].pushed++
	if q.popWaiters > 0 {
		q.notifyLocked(q.popWake)
	}
	if q.pushWaiters[c] > 0 && !q.rings[c].full() {
		q.notifyLocked(q.pushWake[c])
	}
}

// pickLocked applies the scheduling rule: the highest non-empty class with
// credit left, after starting a new round if no such class exists. The
// queue must not be empty.
func (q *Queue[T]) pickLocked() Class {
	for pass := 0; ; pass++ {
		for c := range Class(NumClasses) {
			if q.rings[c].n > 0 && q.credit[c] > 0 {
				return c
			}
		}
		if pass > 0 {
			// Unreachable: after a reset every non-empty class has
			// credit of at least 1.
			panic("ioq: scheduler found no class to serve in a non-empty queue")
		}
		q.credit = q.weight
	}
}

// takeLocked pops the head of class c, spends one credit of c and records
// the item's queueing delay as of now.
func (q *Queue[T]) takeLocked(c Class, now int64) T {
	item, at := q.rings[c].pop()
	q.credit[c]--
	q.total--
	k := &q.stats[c]
	k.popped++
	wait := now - at
	k.totalWait += wait
	if wait > k.maxWait {
		k.maxWait = wait
	}
	return item
}

// wakeAfterPopLocked passes the consumers' token on if items are left, and
// wakes a producer of each class in the bit set popped, which now has room.
func (q *Queue[T]) wakeAfterPopLocked(popped uint8) {
	if q.total > 0 && q.popWaiters > 0 {
		q.notifyLocked(q.popWake)
	}
	for c := range NumClasses {
		if popped&(1<<c) != 0 && q.pushWaiters[c] > 0 {
			q.notifyLocked(q.pushWake[c])
		}
	}
}

// notifyLocked puts a wake-up token in ch unless one is there already. It
// does nothing once the queue is closed: Close has closed ch, which wakes
// every waiter by itself, and a send would panic.
func (q *Queue[T]) notifyLocked(ch chan struct{}) {
	if q.closed {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}
