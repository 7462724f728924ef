//go:build linux

package uring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Memory ordering of the shared rings.
//
// Each ring is a single-producer single-consumer queue whose indices live in
// memory shared with the kernel. For the SQ ring we produce (write SQEs,
// then store the tail) and the kernel consumes (load the tail, read SQEs,
// then store the head); the CQ ring is the mirror image. The protocol needs
// the producer's index store to be a release (the entries it covers are
// visible before the index) and the consumer's index load to be an acquire
// (the entries are not read before the index). The kernel uses
// smp_store_release and smp_load_acquire on its side.
//
// This package loads the indices the kernel writes (SQ head, CQ tail, SQ
// flags) with atomic.LoadUint32 and stores the indices it owns (SQ tail,
// CQ head) with atomic.StoreUint32. Go's sync/atomic operations are
// sequentially consistent, which includes acquire and release:
//   - amd64: LoadUint32 is a plain MOVL, an acquire under x86-TSO (loads
//     are not reordered with later loads or stores); StoreUint32 is XCHGL,
//     a full barrier, stronger than the release a plain MOV would give.
//   - arm64: LoadUint32 is LDARW (load-acquire) and StoreUint32 is STLRW
//     (store-release), the very instructions smp_load_acquire and
//     smp_store_release compile to in the kernel.
// The atomics are plain instructions on a virtual address: they work the
// same on an mmapped MAP_SHARED page as on the Go heap, and the page is the
// same cache-coherent physical memory the kernel maps. Under the race
// detector, atomics on addresses outside the Go heap run unannotated.
// Every index field is a 4-byte-aligned __u32 of the kernel's struct
// io_rings, which mmap places at a page boundary.
//
// SQE and CQE contents are read and written with ordinary loads and stores;
// the index operations order them.

// Option adjusts the parameters Setup passes to io_uring_setup.
type Option func(*setupConfig)

type setupConfig struct {
	flags     uint32
	cqEntries uint32
}

// WithCQEntries asks for a completion queue of n entries instead of the
// default of twice the submission queue (IORING_SETUP_CQSIZE). The kernel
// rounds n up to a power of two; it must be at least the SQ size.
func WithCQEntries(n uint32) Option {
	return func(c *setupConfig) {
		c.flags |= setupCQSize
		c.cqEntries = n
	}
}

// WithSingleIssuer promises the kernel that one thread submits
// (IORING_SETUP_SINGLE_ISSUER, Linux 6.0), which lets it skip locking. The
// ring is bound to the OS thread that calls Setup: lock the owning goroutine
// with runtime.LockOSThread first. Submitting from another thread fails with
// ErrWrongThread.
func WithSingleIssuer() Option {
	return func(c *setupConfig) { c.flags |= setupSingleIssuer }
}

// WithCoopTaskrun lets the kernel post completions when the owning thread
// next enters the kernel instead of interrupting it
// (IORING_SETUP_COOP_TASKRUN with IORING_SETUP_TASKRUN_FLAG, Linux 5.19).
// PeekCQE notices the kernel's "task work pending" flag and enters the
// kernel to collect such completions.
func WithCoopTaskrun() Option {
	return func(c *setupConfig) { c.flags |= setupCoopTaskrun | setupTaskrunFlag }
}

// WithDeferTaskrun makes the kernel post completions only when the owner
// asks for them (IORING_SETUP_DEFER_TASKRUN, Linux 6.1); it implies
// WithSingleIssuer and its thread binding. PeekCQE, PeekCQEs and WaitCQE
// enter the kernel to collect completions when the CQ ring looks empty.
func WithDeferTaskrun() Option {
	return func(c *setupConfig) { c.flags |= setupDeferTaskrun | setupSingleIssuer }
}

// mapping is one mmap of the ring fd.
type mapping struct {
	// ptr is the start of the mapping, memory outside the Go heap that
	// the GC neither scans nor frees; held as unsafe.Pointer because it is
	// only ever offset and converted into typed pointers (see u32).
	ptr  unsafe.Pointer
	size uintptr
}

// u32 returns a pointer to the __u32 at byte offset off of m. Callers have
// checked off+4 <= m.size (see checkOffsets).
func (m mapping) u32(off uint32) *uint32 {
	// unsafe: off is one of the kernel's io_sqring_offsets or
	// io_cqring_offsets values, checked to lie inside the mapping; those
	// fields are 4-byte aligned in the kernel's struct io_rings and the
	// mapping starts at a page boundary. The memory is not Go heap (the GC
	// ignores it) and stays mapped until Close, after which the Ring drops
	// every pointer into it.
	return (*uint32)(unsafe.Add(m.ptr, off))
}

// Ring is one io_uring instance: its file descriptor and the three shared
// mappings (SQ ring, CQ ring, SQE array).
//
// A Ring is not safe for concurrent use. One goroutine owns it and makes all
// calls; the storage backend runs that goroutine locked to its OS thread
// (runtime.LockOSThread), which WithSingleIssuer and WithDeferTaskrun
// require. Holding a Ring across goroutines without synchronisation is a
// data race on its unshared fields even when the kernel would not mind.
type Ring struct {
	fd     int
	params Params

	sqMap, cqMap, sqeMap mapping
	cqShared             bool // FeatSingleMMap: cqMap aliases sqMap

	sqHead  *uint32 // written by the kernel
	sqTail  *uint32 // written by us
	sqFlags *uint32 // written by the kernel
	sqMask  uint32
	sqes    []SQE
	// sqeTail is one past the last SQE handed out by GetSQE; published
	// is the value last stored to *sqTail.
	sqeTail, published uint32

	cqHead *uint32 // written by us
	cqTail *uint32 // written by the kernel
	cqMask uint32
	cqes   []CQE
	// cqeHead is our copy of *cqHead; nobody else writes it.
	cqeHead uint32

	// inFlight counts SQEs consumed by the kernel whose CQEs have not
	// been consumed yet.
	inFlight uint64

	// regBufs keeps registered buffers reachable while the kernel holds
	// them (see RegisterBuffers).
	regBufs [][]byte

	closed bool
}

// Setup creates an io_uring instance whose submission queue has at least
// entries slots (the kernel rounds up to a power of two; at most 32768) and
// maps its rings. With no options the ring uses the kernel defaults: a CQ
// twice the SQ size, completions posted as soon as they happen, usable from
// any thread (though still by one goroutine at a time).
//
// If io_uring_setup fails with ENOSYS, EPERM or EACCES the error wraps
// ErrUnavailable; other failures wrap the errno (EINVAL for bad sizes or
// flags the kernel does not know, ENOMEM, EMFILE).
func Setup(entries uint32, opts ...Option) (*Ring, error) {
	var cfg setupConfig
	for _, o := range opts {
		o(&cfg)
	}
	p := Params{Flags: cfg.flags, CQEntries: cfg.cqEntries}
	// unsafe: the pointer is converted to uintptr in the argument list of
	// unix.Syscall (an assembly function), so the compiler keeps p alive
	// and in place for the call (unsafe.Pointer rule 4); the kernel reads
	// and fills p only during the call.
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, setupError(entries, errno)
	}
	r := &Ring{fd: int(fd), params: p}
	if err := r.mapRings(); err != nil {
		_ = r.unmap()
		_ = unix.Close(r.fd)
		return nil, err
	}
	return r, nil
}

func setupError(entries uint32, errno unix.Errno) error {
	switch errno {
	case unix.ENOSYS:
		return fmt.Errorf("%w: io_uring_setup: %w (kernel built without io_uring, or a seccomp filter hides it)", ErrUnavailable, errno)
	case unix.EPERM, unix.EACCES:
		return fmt.Errorf("%w: io_uring_setup: %w (sysctl kernel.io_uring_disabled, or a seccomp or LSM policy, forbids it)", ErrUnavailable, errno)
	}
	return fmt.Errorf("uring: io_uring_setup(%d entries): %w", entries, errno)
}

func mmapRing(fd int, off int64, size uintptr) (mapping, error) {
	p, err := unix.MmapPtr(fd, off, nil, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return mapping{}, err
	}
	return mapping{ptr: p, size: size}, nil
}

func (r *Ring) mapRings() error {
	p := &r.params
	sqSize := uintptr(p.SQOff.Array) + uintptr(p.SQEntries)*4
	cqSize := uintptr(p.CQOff.CQEs) + uintptr(p.CQEntries)*unsafe.Sizeof(CQE{}) // unsafe.Sizeof: a constant.
	r.cqShared = p.Features.Has(FeatSingleMMap)
	if r.cqShared {
		sqSize = max(sqSize, cqSize)
		cqSize = sqSize
	}
	var err error
	if r.sqMap, err = mmapRing(r.fd, offSQRing, sqSize); err != nil {
		return fmt.Errorf("uring: mmap SQ ring: %w", err)
	}
	if r.cqShared {
		r.cqMap = r.sqMap
	} else if r.cqMap, err = mmapRing(r.fd, offCQRing, cqSize); err != nil {
		return fmt.Errorf("uring: mmap CQ ring: %w", err)
	}
	sqeSize := uintptr(p.SQEntries) * unsafe.Sizeof(SQE{}) // unsafe.Sizeof: a constant.
	if r.sqeMap, err = mmapRing(r.fd, offSQEs, sqeSize); err != nil {
		return fmt.Errorf("uring: mmap SQE array: %w", err)
	}
	if err := r.checkOffsets(); err != nil {
		return err
	}

	r.sqHead = r.sqMap.u32(p.SQOff.Head)
	r.sqTail = r.sqMap.u32(p.SQOff.Tail)
	r.sqFlags = r.sqMap.u32(p.SQOff.Flags)
	r.sqMask = *r.sqMap.u32(p.SQOff.RingMask)
	r.cqHead = r.cqMap.u32(p.CQOff.Head)
	r.cqTail = r.cqMap.u32(p.CQOff.Tail)
	r.cqMask = *r.cqMap.u32(p.CQOff.RingMask)
	if r.sqMask != p.SQEntries-1 || r.cqMask != p.CQEntries-1 {
		return fmt.Errorf("uring: ring masks %#x/%#x do not match %d/%d entries", r.sqMask, r.cqMask, p.SQEntries, p.CQEntries)
	}

	// unsafe: the SQE mapping holds exactly SQEntries 64-byte SQEs from a
	// page boundary (so every uint64 field is aligned); it is not Go heap
	// and stays mapped until Close, which drops this slice.
	r.sqes = unsafe.Slice((*SQE)(r.sqeMap.ptr), p.SQEntries)
	// unsafe: the kernel places the CQE array at CQOff.CQEs, cache-line
	// aligned, with CQEntries 16-byte entries; checkOffsets verified it
	// fits in the mapping, which lives until Close.
	r.cqes = unsafe.Slice((*CQE)(unsafe.Add(r.cqMap.ptr, p.CQOff.CQEs)), p.CQEntries)

	// The SQ ring holds indices into the SQE array rather than SQEs. We
	// always fill SQE slot tail&mask, so the index array is the identity;
	// write it once. The first tail store (a release) publishes it.
	// unsafe: sqSize was computed as Array + 4*SQEntries, so the index
	// array lies inside the SQ mapping; checkOffsets verified it is 4-byte
	// aligned, and the mapping is not Go heap.
	array := unsafe.Slice((*uint32)(unsafe.Add(r.sqMap.ptr, p.SQOff.Array)), p.SQEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	return nil
}

// checkOffsets verifies that every field the kernel told us about lies
// inside its mapping, so that the unsafe pointer arithmetic above stays in
// bounds even against a kernel that reported nonsense.
func (r *Ring) checkOffsets() error {
	p := &r.params
	if p.SQEntries == 0 || p.SQEntries&(p.SQEntries-1) != 0 || p.CQEntries == 0 || p.CQEntries&(p.CQEntries-1) != 0 {
		return fmt.Errorf("uring: kernel returned ring sizes %d/%d, not powers of two", p.SQEntries, p.CQEntries)
	}
	for _, off := range []uint32{p.SQOff.Head, p.SQOff.Tail, p.SQOff.RingMask, p.SQOff.RingEntries, p.SQOff.Flags, p.SQOff.Array} { // Array: its first entry; sqSize covers the rest.
		if uintptr(off)+4 > r.sqMap.size || off%4 != 0 {
			return fmt.Errorf("uring: SQ ring offset %d outside the %d-byte mapping", off, r.sqMap.size)
		}
	}
	for _, off := range []uint32{p.CQOff.Head, p.CQOff.Tail, p.CQOff.RingMask, p.CQOff.RingEntries} {
		if uintptr(off)+4 > r.cqMap.size || off%4 != 0 {
			return fmt.Errorf("uring: CQ ring offset %d outside the %d-byte mapping", off, r.cqMap.size)
		}
	}
	if p.CQOff.CQEs%8 != 0 || uintptr(p.CQOff.CQEs)+uintptr(p.CQEntries)*16 > r.cqMap.size {
		return fmt.Errorf("uring: CQE array at offset %d does not fit the %d-byte mapping", p.CQOff.CQEs, r.cqMap.size)
	}
	return nil
}

func (r *Ring) unmap() error {
	var errs []error
	for _, m := range []*mapping{&r.sqeMap, &r.cqMap, &r.sqMap} {
		if m.ptr == nil || (m == &r.cqMap && r.cqShared) {
			continue
		}
		// unsafe: m.ptr and m.size are exactly what MmapPtr returned
		// and was asked for; nothing dereferences the mapping after
		// this (Close clears every pointer into it).
		if err := unix.MunmapPtr(m.ptr, m.size); err != nil {
			errs = append(errs, fmt.Errorf("uring: munmap: %w", err))
		}
	}
	r.sqMap, r.cqMap, r.sqeMap = mapping{}, mapping{}, mapping{}
	return errors.Join(errs...)
}

// Close unmaps the rings and closes the ring's file descriptor. It is
// idempotent: later calls return nil. After Close, GetSQE returns nil and
// the other methods return ErrClosed.
//
// Close does not wait for operations in flight: the kernel cancels or
// finishes them in the background, and until it has, it may still read or
// write their buffers (and registered buffers). Reap every completion first
// (InFlight reports how many are outstanding) or keep those buffers alive.
func (r *Ring) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.unmap()
	if cerr := unix.Close(r.fd); cerr != nil {
		err = errors.Join(err, fmt.Errorf("uring: close ring fd: %w", cerr))
	}
	r.sqHead, r.sqTail, r.sqFlags, r.cqHead, r.cqTail = nil, nil, nil, nil, nil
	r.sqes, r.cqes = nil, nil
	r.regBufs = nil
	return err
}

// Fd returns the ring's file descriptor, for diagnostics.
func (r *Ring) Fd() int { return r.fd }

// Features returns the features word the kernel reported at setup.
func (r *Ring) Features() Features { return r.params.Features }

// Params returns a copy of the parameters the kernel filled in at setup:
// actual ring sizes, features, flags and ring offsets.
func (r *Ring) Params() Params { return r.params }

// SQEntries returns the submission queue size.
func (r *Ring) SQEntries() uint32 { return r.params.SQEntries }

// CQEntries returns the completion queue size.
func (r *Ring) CQEntries() uint32 { return r.params.CQEntries }

// GetSQE returns the next free submission queue entry, zeroed, or nil when
// all SQEntries slots hold SQEs the kernel has not consumed yet (Submit
// frees them) or the ring is closed. An SQE left as returned is a valid NOP
// with UserData 0. Every SQE handed out is submitted by the next Submit or
// SubmitAndWait; there is no way to take one back.
func (r *Ring) GetSQE() *SQE {
	if r.closed {
		return nil
	}
	if r.sqeTail-atomic.LoadUint32(r.sqHead) >= r.params.SQEntries {
		return nil
	}
	sqe := &r.sqes[r.sqeTail&r.sqMask]
	r.sqeTail++
	*sqe = SQE{}
	return sqe
}

// SQReady returns how many SQEs have been handed out by GetSQE and not yet
// consumed by the kernel.
func (r *Ring) SQReady() uint32 {
	if r.closed {
		return 0
	}
	return r.sqeTail - atomic.LoadUint32(r.sqHead)
}

// SQSpace returns how many more SQEs GetSQE can hand out now.
func (r *Ring) SQSpace() uint32 {
	if r.closed {
		return 0
	}
	return r.params.SQEntries - r.SQReady()
}

// InFlight returns how many submitted operations have not had their CQE
// consumed (CQESeen, CQAdvance) yet. It assumes one CQE per SQE, which
// holds for every operation this package prepares, including members of a
// failed link chain.
func (r *Ring) InFlight() uint64 { return r.inFlight }

// Submit hands every SQE obtained from GetSQE since the last submission to
// the kernel and returns how many the kernel consumed. It does not wait
// for completions. See SubmitAndWait.
func (r *Ring) Submit() (int, error) { return r.SubmitAndWait(0) }

// SubmitAndWait submits like Submit and then, if waitNr > 0, waits until
// at least waitNr CQEs are ready to be read (counting ones not consumed
// yet). It returns the number of SQEs the kernel consumed.
//
// Errors of an individual operation arrive in its CQE, never here; if the
// kernel rejects an SQE outright it still consumes it and posts a CQE with
// the error. Interrupted waits (EINTR) are retried. EAGAIN and EBUSY, when
// the kernel cannot take more work until completions are reaped, return an
// error wrapping ErrBusy and the errno, with the SQEs not yet consumed left
// queued for the next call; the count returned is still accurate.
func (r *Ring) SubmitAndWait(waitNr uint32) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	if r.sqeTail != r.published {
		atomic.StoreUint32(r.sqTail, r.sqeTail)
		r.published = r.sqeTail
	}
	submitted := 0
	for {
		pending := r.sqeTail - atomic.LoadUint32(r.sqHead)
		wait := waitNr > 0 && r.CQReady() < waitNr
		if pending == 0 && !wait {
			return submitted, nil
		}
		var minComplete, flags uint32
		if wait {
			minComplete, flags = waitNr, enterGetEvents
		}
		n, errno := r.enter(pending, minComplete, flags)
		submitted += n
		r.inFlight += uint64(n)
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0:
			return submitted, enterError(errno)
		case n == 0 && pending > 0:
			// The kernel took nothing and reported no error; do not
			// spin. The SQEs stay queued for the next call.
			return submitted, fmt.Errorf("%w: io_uring_enter consumed none of %d queued SQEs", ErrBusy, pending)
		}
	}
}

// enter calls io_uring_enter with no signal mask.
func (r *Ring) enter(toSubmit, minComplete, flags uint32) (int, unix.Errno) {
	n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(minComplete), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

func enterError(errno unix.Errno) error {
	switch errno {
	case unix.EAGAIN, unix.EBUSY:
		return fmt.Errorf("%w: io_uring_enter: %w", ErrBusy, errno)
	case unix.EEXIST:
		return fmt.Errorf("%w: io_uring_enter: %w", ErrWrongThread, errno)
	case unix.EBADR:
		return fmt.Errorf("uring: io_uring_enter: %w (the kernel dropped completions)", errno)
	}
	return fmt.Errorf("uring: io_uring_enter: %w", errno)
}

// getEvents asks the kernel to post pending completions (overflowed ones,
// deferred task work) and, if minComplete > 0, to wait until that many CQEs
// are ready.
func (r *Ring) getEvents(minComplete uint32) error {
	for {
		_, errno := r.enter(0, minComplete, enterGetEvents)
		if errno == unix.EINTR {
			if minComplete > 0 && r.CQReady() >= minComplete {
				return nil
			}
			continue
		}
		if errno != 0 {
			return enterError(errno)
		}
		return nil
	}
}

// needsFlush reports whether completions may be waiting in the kernel
// rather than in the CQ ring: the ring overflowed (the kernel keeps the
// excess, FeatNoDrop), task work is pending (WithCoopTaskrun), or the ring
// defers all task work until asked (WithDeferTaskrun).
func (r *Ring) needsFlush() bool {
	return r.params.Flags&setupDeferTaskrun != 0 || atomic.LoadUint32(r.sqFlags)&(sqCQOverflow|sqTaskrun) != 0
}

// CQReady returns how many CQEs are in the CQ ring waiting to be consumed.
// Completions the kernel still holds (after a CQ overflow, or deferred by
// WithDeferTaskrun) are not counted until a Peek or Wait collects them.
func (r *Ring) CQReady() uint32 {
	if r.closed {
		return 0
	}
	return atomic.LoadUint32(r.cqTail) - r.cqeHead
}

// PeekCQE returns a copy of the oldest unconsumed CQE without waiting, and
// false if there is none. It does not consume the CQE: call CQESeen once
// done with it. If the ring looks empty but the kernel holds completions
// (see CQReady), PeekCQE enters the kernel once, without blocking, to
// collect them.
func (r *Ring) PeekCQE() (CQE, bool, error) {
	if r.closed {
		return CQE{}, false, ErrClosed
	}
	if r.CQReady() == 0 {
		if !r.needsFlush() {
			return CQE{}, false, nil
		}
		if err := r.getEvents(0); err != nil {
			return CQE{}, false, err
		}
		if r.CQReady() == 0 {
			return CQE{}, false, nil
		}
	}
	return r.cqes[r.cqeHead&r.cqMask], true, nil
}

// PeekCQEs copies up to len(dst) of the oldest unconsumed CQEs into dst,
// without waiting, and returns how many it copied. Like PeekCQE it consumes
// nothing (call CQAdvance) and collects completions the kernel holds when
// the ring looks empty.
func (r *Ring) PeekCQEs(dst []CQE) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	ready := r.CQReady()
	if ready == 0 && r.needsFlush() {
		if err := r.getEvents(0); err != nil {
			return 0, err
		}
		ready = r.CQReady()
	}
	n := len(dst)
	if uint64(n) > uint64(ready) {
		n = int(ready)
	}
	head := r.cqeHead
	for i := range dst[:n] {
		dst[i] = r.cqes[(head+uint32(i))&r.cqMask]
	}
	return n, nil
}

// WaitCQE returns a copy of the oldest unconsumed CQE, blocking until one
// is posted. It does not consume the CQE (call CQESeen) and does not
// submit: with nothing submitted and nothing in the ring it blocks forever.
// Interrupted waits are retried.
func (r *Ring) WaitCQE() (CQE, error) {
	if r.closed {
		return CQE{}, ErrClosed
	}
	for r.CQReady() == 0 {
		if err := r.getEvents(1); err != nil {
			return CQE{}, err
		}
	}
	return r.cqes[r.cqeHead&r.cqMask], nil
}

// CQESeen consumes the oldest CQE, the one PeekCQE or WaitCQE returned.
func (r *Ring) CQESeen() { r.CQAdvance(1) }

// CQAdvance consumes the n oldest CQEs, handing their slots back to the
// kernel. It panics if fewer than n are ready: consuming CQEs that were
// never read is a programming error that would corrupt the ring.
func (r *Ring) CQAdvance(n uint32) {
	if n == 0 || r.closed {
		return
	}
	if n > r.CQReady() {
		panic(fmt.Sprintf("uring: CQAdvance(%d) with only %d CQEs ready", n, r.CQReady()))
	}
	r.cqeHead += n
	atomic.StoreUint32(r.cqHead, r.cqeHead)
	if r.inFlight >= uint64(n) {
		r.inFlight -= uint64(n)
	} else {
		r.inFlight = 0
	}
}
