package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/lance-go/lance/lnc-io/uring"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// Defaults of the direct-write buffer pool.
const (
	DefaultDirectBuffers    = 8
	DefaultDirectBufferSize = 1 << 20
)

// Limits of the pool's configuration: the kernel takes registered buffers
// of up to 1 GiB each, and a pool of more than maxDirectBuffers buffers
// would pin more memory than anyone should.
const (
	maxDirectBufferSize = 1 << 30
	maxDirectBuffers    = 1024
)

// Errors of the direct-write buffers.
var (
	// ErrNoDirectBuffers is returned by DirectBuffers when the backend
	// was configured without a pool (Config.DirectBuffers < 0).
	ErrNoDirectBuffers = errors.New("backend: no direct-write buffers configured")
	// ErrBadDirectWrite rejects a Write whose Direct buffer does not hold
	// its data: Bufs must be a single slice of Direct.Bytes().
	ErrBadDirectWrite = errors.New("backend: direct write not inside its buffer")
	// ErrInvalidConfig rejects a Config that Open cannot honour.
	ErrInvalidConfig = errors.New("backend: invalid configuration")
)

// DirectPool is a bounded set of buffers of aligned memory for O_DIRECT
// writes, shared by everything that writes through one backend. The memory
// lies outside the Go heap, starts every buffer at a multiple of
// vfs.DirectAlign and has a size that is a multiple of it.
//
// The uring backend registers the buffers with each of its rings
// (IORING_REGISTER_BUFFERS), so that a Write naming its buffer in Direct
// goes to the kernel as IORING_OP_WRITE_FIXED: the kernel pinned the pages
// once and skips pinning and mapping them for every write. A ring
// registers the buffers before it runs its first request after the pool was
// created. If the kernel refuses (typically ENOMEM: the pinned pages count
// against RLIMIT_MEMLOCK for a process without CAP_IPC_LOCK, and each ring
// pins them again), that ring writes from the same memory with ordinary
// IORING_OP_WRITE; nothing fails, and Stats tells which is in use. The
// pwritev2 backend writes from the memory with pwritev2.
//
// A DirectPool is safe for concurrent use.
type DirectPool struct {
	mem   []byte // one AllocAligned mapping holding every buffer
	size  int
	rings int
	bufs  []DirectBuf
	views [][]byte // bufs' memory, in index order, for registration

	free   chan *DirectBuf // buffers not held; capacity len(bufs)
	closed chan struct{}   // closed when the backend closes

	fixedWrites, plainWrites atomic.Uint64

	// mu guards the fields below and DirectBuf.held. It is held only for
	// bookkeeping, never while waiting for a buffer.
	mu                 sync.Mutex
	out                int  // buffers held
	shut               bool // the backend closed
	freed              bool // mem was unmapped
	registered, failed int
	regErr             error
}

// DirectBuf is one buffer of a DirectPool, held between Acquire and
// Release.
type DirectBuf struct {
	pool  *DirectPool
	index int
	mem   []byte
	held  bool // guarded by pool.mu
}

// Bytes returns the buffer's memory: BufferSize bytes starting at a
// multiple of vfs.DirectAlign. It is valid until Release.
func (b *DirectBuf) Bytes() []byte { return b.mem }

// Index returns the buffer's index in its pool, the registered-buffer
// index of the fixed writes issued from it.
func (b *DirectBuf) Index() int { return b.index }

// contains reports whether s is a sub-slice of the buffer (made by slicing
// Bytes() with two indices, which keeps the capacity that tells where s
// starts). An empty s is contained in any buffer.
func (b *DirectBuf) contains(s []byte) bool {
	if len(s) == 0 {
		return true
	}
	start := cap(b.mem) - cap(s)
	// Comparing element addresses needs no unsafe: Go pointers to the
	// same array compare equal exactly when they name the same element.
	return start >= 0 && start+len(s) <= len(b.mem) && &b.mem[start] == &s[0]
}

// DirectStats tells what a DirectPool holds and how its writes were
// issued.
type DirectStats struct {
	// Buffers and BufferSize describe the pool.
	Buffers, BufferSize int
	// Rings is the uring backend's number of rings (0 for pwritev2). Of
	// them, Registered took the buffers as fixed buffers and Failed could
	// not (RegisterErr is the first refusal) and write from the same
	// memory without registration. Rings that have run no request since
	// the pool was created have not tried yet.
	Rings, Registered, Failed int
	RegisterErr               error
	// FixedWrites counts writes issued as IORING_OP_WRITE_FIXED;
	// PlainWrites the writes from the pool's memory issued otherwise
	// (pwritev2, rings without registration, system-call fallbacks).
	FixedWrites, PlainWrites uint64
}

// Fixed reports whether every ring registered the buffers: the uring
// backend then issues every direct write as a fixed write.
func (s DirectStats) Fixed() bool { return s.Rings > 0 && s.Registered == s.Rings }

// BufferSize returns the size of each buffer.
func (p *DirectPool) BufferSize() int { return p.size }

// Buffers returns the number of buffers.
func (p *DirectPool) Buffers() int { return len(p.bufs) }

// Acquire takes a free buffer, waiting for one to be released if all are
// held. It fails with ctx's error when ctx ends first, and with ErrClosed
// once the backend is closed.
func (p *DirectPool) Acquire(ctx context.Context) (*DirectBuf, error) {
	select {
	case b := <-p.free:
		return p.take(b)
	default:
	}
	select {
	case b := <-p.free:
		return p.take(b)
	case <-p.closed:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TryAcquire takes a free buffer if there is one, without waiting.
func (p *DirectPool) TryAcquire() (*DirectBuf, bool) {
	select {
	case b := <-p.free:
		b, err := p.take(b)
		return b, err == nil
	default:
		return nil, false
	}
}

// take marks b, just received from the free list, as held.
func (p *DirectPool) take(b *DirectBuf) (*DirectBuf, error) {
	p.mu.Lock() // guards out, shut and held: Release and shutdown change them from other goroutines
	defer p.mu.Unlock()
	if p.shut {
		p.free <- b // cannot block: the buffer came from this channel
		return nil, ErrClosed
	}
	b.held = true
	p.out++
	return b, nil
}

// Release returns b to its pool. b must have been acquired and not
// released since, and no write from it may be in flight (Do returned). It
// panics on a buffer that is not held: that is a use-after-release bug.
func (p *DirectPool) Release(b *DirectBuf) {
	if b == nil || b.pool != p {
		panic("backend: Release of a buffer of another pool")
	}
	p.mu.Lock() // guards out, shut, freed and held (see take)
	if !b.held {
		p.mu.Unlock()
		panic("backend: Release of a direct buffer that is not held")
	}
	b.held = false
	p.out--
	unmap := p.shut && p.out == 0 && !p.freed
	if unmap {
		p.freed = true
	}
	p.mu.Unlock()
	if unmap {
		_ = uring.FreeAligned(p.mem) // the last holder after Close frees the memory
		return
	}
	p.free <- b // cannot block: the channel has room for every buffer
}

// Stats reports the pool's state.
func (p *DirectPool) Stats() DirectStats {
	p.mu.Lock() // guards the registration counters
	defer p.mu.Unlock()
	return DirectStats{
		Buffers: len(p.bufs), BufferSize: p.size,
		Rings: p.rings, Registered: p.registered, Failed: p.failed, RegisterErr: p.regErr,
		FixedWrites: p.fixedWrites.Load(), PlainWrites: p.plainWrites.Load(),
	}
}

// noteRing records the outcome of one ring's registration.
func (p *DirectPool) noteRing(err error) {
	p.mu.Lock() // guards the registration counters
	defer p.mu.Unlock()
	if err == nil {
		p.registered++
		return
	}
	p.failed++
	if p.regErr == nil {
		p.regErr = err
	}
}

// shutdown is called by the backend's Close once no ring uses the buffers
// any more: Acquire fails from then on, and the memory is unmapped now if
// no buffer is held, else by the last Release.
func (p *DirectPool) shutdown() {
	p.mu.Lock() // guards shut, out and freed (see take)
	if p.shut {
		p.mu.Unlock()
		return
	}
	p.shut = true
	close(p.closed)
	unmap := p.out == 0 && !p.freed
	if unmap {
		p.freed = true
	}
	p.mu.Unlock()
	if unmap {
		_ = uring.FreeAligned(p.mem)
	}
}

// newDirectPool maps count buffers of size bytes.
func newDirectPool(count, size, rings int) (*DirectPool, error) {
	mem, err := uring.AllocAligned(count*size, vfs.DirectAlign)
	if err != nil {
		return nil, fmt.Errorf("backend: direct-write buffers: %w", err)
	}
	p := &DirectPool{
		mem:    mem,
		size:   size,
		rings:  rings,
		bufs:   make([]DirectBuf, count),
		views:  make([][]byte, count),
		free:   make(chan *DirectBuf, count),
		closed: make(chan struct{}),
	}
	for i := range p.bufs {
		b := mem[i*size : (i+1)*size : (i+1)*size]
		p.bufs[i] = DirectBuf{pool: p, index: i, mem: b}
		p.views[i] = b
		p.free <- &p.bufs[i]
	}
	return p, nil
}

// directSet is a backend's pool, created on first use so that a backend
// nobody asks for direct buffers maps and pins nothing.
type directSet struct {
	count, size, rings int // count 0: no pool

	// mu guards creation and closed; workers read the pool through the
	// atomic pointer without it.
	mu     sync.Mutex
	closed bool
	pool   atomic.Pointer[DirectPool]
}

// init checks and records the pool's configuration.
func (d *directSet) init(cfg Config, rings int) error {
	count, size := cfg.DirectBuffers, cfg.DirectBufferSize
	if count == 0 {
		count = DefaultDirectBuffers
	}
	if count < 0 {
		count = 0
	}
	if size == 0 {
		size = DefaultDirectBufferSize
	}
	if count > maxDirectBuffers {
		return fmt.Errorf("%w: DirectBuffers %d is over %d", ErrInvalidConfig, count, maxDirectBuffers)
	}
	if size < 0 || size%vfs.DirectAlign != 0 || size > maxDirectBufferSize {
		return fmt.Errorf("%w: DirectBufferSize %d is not a positive multiple of %d up to %d", ErrInvalidConfig, size, vfs.DirectAlign, maxDirectBufferSize)
	}
	d.count, d.size, d.rings = count, size, rings
	return nil
}

// get returns the pool, creating it on the first call.
func (d *directSet) get() (*DirectPool, error) {
	if p := d.pool.Load(); p != nil {
		return p, nil
	}
	d.mu.Lock() // serializes creation: one pool per backend
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	if d.count == 0 {
		return nil, ErrNoDirectBuffers
	}
	if p := d.pool.Load(); p != nil {
		return p, nil
	}
	p, err := newDirectPool(d.count, d.size, d.rings)
	if err != nil {
		return nil, err
	}
	d.pool.Store(p)
	return p, nil
}

// close shuts the pool down; called by the backend's Close after its
// workers exited.
func (d *directSet) close() {
	d.mu.Lock() // guards closed against a concurrent get
	d.closed = true
	p := d.pool.Load()
	d.mu.Unlock()
	if p != nil {
		p.shutdown()
	}
}

// checkWrite applies the rules of a Write before it is issued: a direct
// write's data lies in its buffer, and the file's vfs.WriteChecker, if it
// has one, accepts the write.
func checkWrite(w *Write) error {
	if w.Direct != nil && (len(w.Bufs) != 1 || !w.Direct.contains(w.Bufs[0])) {
		return fmt.Errorf("%w: %s at %d", ErrBadDirectWrite, w.File.Name(), w.Off)
	}
	if c, ok := w.File.(vfs.WriteChecker); ok {
		return c.CheckWrite(w.Off, w.Bufs)
	}
	return nil
}
