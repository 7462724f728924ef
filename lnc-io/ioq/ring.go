package ioq

// ring is a fixed-capacity FIFO. Its storage is allocated once, by newRing,
// and never grows, so that push and pop allocate nothing. It is not safe
// for concurrent use: the Queue guards its rings with its mutex.
type ring[T any] struct {
	buf  []slot[T]
	head int // index of the oldest slot
	n    int // number of slots in use
}

// slot is one queued item and the time it was queued, in nanoseconds on the
// owning Queue's monotonic clock.
type slot[T any] struct {
	item T
	at   int64
}

func newRing[T any](capacity int) ring[T] {
	return ring[T]{buf: make([]slot[T], capacity)}
}

func (r *ring[T]) full() bool { return r.n == len(r.buf) }

// push appends an item; the ring must not be full.
func (r *ring[T]) push(item T, at int64) {
	i := r.head + r.n
	if i >= len(r.buf) {
		i -= len(r.buf)
	}
	r.buf[i] = slot[T]{item: item, at: at}
	r.n++
}

// pop removes the oldest item; the ring must not be empty.
func (r *ring[T]) pop() (T, int64) {
	s := &r.buf[r.head]
	item, at := s.item, s.at
	// Clear the slot so that the ring does not keep alive whatever the
	// item points to (buffers, files) after the backend is done with it.
	*s = slot[T]{}
	r.head++
	if r.head == len(r.buf) {
		r.head = 0
	}
	r.n--
	return item, at
}
