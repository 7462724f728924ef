//go:build linux

package uring

import (
	"fmt"
	"math"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Holder keeps memory referenced by in-flight SQEs reachable until their
// completions arrive. Add each buffer or iovec array as it is passed to a
// Prep method, and call Release once every CQE of those operations has been
// seen. Both methods return their argument, so a Holder wraps the argument
// in place:
//
//	sqe.PrepWrite(fd, h.Bytes(buf), off)
//	sqe.PrepWritev(fd, h.Iovecs(iovs), off)
//
// Why this is enough: Go's garbage collector does not move heap objects, so
// a reachable heap buffer keeps its address; and storing a buffer in a
// Holder makes the compiler's escape analysis place it on the heap, so it
// cannot be on a goroutine stack, which would move when the stack grows.
// An iovec array keeps its buffers reachable through its Base pointers.
//
// A Holder reuses its storage after Release, so a steady cycle of
// hold-submit-reap-release allocates nothing. The zero value is ready to
// use. A Holder is owned by one goroutine, like the Ring.
type Holder struct {
	bufs [][]byte
	iovs [][]unix.Iovec
}

// Bytes keeps b reachable until Release and returns it.
func (h *Holder) Bytes(b []byte) []byte {
	h.bufs = append(h.bufs, b)
	return b
}

// Iovecs keeps the iovec array, and through it the buffers it points at,
// reachable until Release, and returns it.
func (h *Holder) Iovecs(iovs []unix.Iovec) []unix.Iovec {
	h.iovs = append(h.iovs, iovs)
	return iovs
}

// Len returns how many buffers and iovec arrays the Holder keeps.
func (h *Holder) Len() int { return len(h.bufs) + len(h.iovs) }

// Release drops every reference the Holder keeps. Call it only when no
// operation using them is in flight.
func (h *Holder) Release() {
	clear(h.bufs)
	h.bufs = h.bufs[:0]
	clear(h.iovs)
	h.iovs = h.iovs[:0]
}

var pageSize = os.Getpagesize()

// allocs records the live AllocAligned mappings, so that FreeAligned
// unmaps only memory AllocAligned returned, and only once: unmapping a
// wrong range could tear pages out from under the Go heap.
var allocs struct {
	// mu guards m. AllocAligned and FreeAligned may be called from any
	// goroutine (unlike a Ring's methods); mmap and munmap run outside it.
	mu sync.Mutex
	m  map[uintptr]uintptr // start address -> mapped length
}

// AllocAligned returns size bytes of zeroed memory mapped anonymously
// outside the Go heap, starting at a multiple of align (a power of two; at
// least the page size is always honoured), as O_DIRECT I/O and registered
// buffers want. The slice's length is size and its capacity size rounded
// up to whole pages. The garbage collector never frees or moves this
// memory: release it with FreeAligned, after which any use of the slice
// faults.
func AllocAligned(size, align int) ([]byte, error) {
	if size <= 0 || align <= 0 || align&(align-1) != 0 {
		return nil, fmt.Errorf("%w: AllocAligned(%d, %d): size must be positive and align a power of two", ErrInvalidArgument, size, align)
	}
	align = max(align, pageSize)
	if size > math.MaxInt-pageSize-align {
		return nil, fmt.Errorf("%w: AllocAligned(%d, %d): too large", ErrInvalidArgument, size, align)
	}
	length := (size + pageSize - 1) &^ (pageSize - 1)
	extra := 0
	if align > pageSize {
		extra = align // room to slide the start up to the next multiple of align
	}
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(length+extra), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("uring: AllocAligned(%d, %d): mmap: %w", size, align, err)
	}
	if extra > 0 {
		start := uintptr(p) // unsafe: the address as a number, for alignment arithmetic only.
		head := int((start+uintptr(align)-1)&^uintptr(align-1) - start)
		// head and extra-head are whole pages (mmap returns pages and
		// align is a multiple of the page size): unmap the slack on
		// both sides so only the aligned range stays mapped.
		if head > 0 {
			// unsafe: [p, p+head) is the start of our own fresh mapping.
			if err := unix.MunmapPtr(p, uintptr(head)); err != nil {
				return nil, fmt.Errorf("uring: AllocAligned: munmap head: %w", err)
			}
		}
		if tail := extra - head; tail > 0 {
			// unsafe: [p+head+length, p+length+extra) is the end of our
			// own fresh mapping.
			if err := unix.MunmapPtr(unsafe.Add(p, head+length), uintptr(tail)); err != nil {
				return nil, fmt.Errorf("uring: AllocAligned: munmap tail: %w", err)
			}
		}
		p = unsafe.Add(p, head) // unsafe: stays inside the mapping, whose first head bytes we just unmapped.
	}
	allocs.mu.Lock() // guards allocs.m; held for the map update only
	if allocs.m == nil {
		allocs.m = make(map[uintptr]uintptr)
	}
	allocs.m[uintptr(p)] = uintptr(length) // unsafe: the address as a map key only.
	allocs.mu.Unlock()
	// unsafe: p is the start of length bytes of readable, writable memory
	// that stays mapped until FreeAligned; it is not Go heap, so the GC
	// neither scans, moves nor frees it.
	return unsafe.Slice((*byte)(p), length)[:size], nil
}

// FreeAligned unmaps memory returned by AllocAligned. b must start where
// the returned slice started (reslicing its length or capacity is fine).
// Freeing anything else, or freeing twice, returns an error wrapping
// ErrInvalidArgument and unmaps nothing. The memory must not be in use by
// an in-flight operation or a buffer registration.
func FreeAligned(b []byte) error {
	if cap(b) == 0 {
		return fmt.Errorf("%w: FreeAligned of an empty slice", ErrInvalidArgument)
	}
	p := unsafe.Pointer(unsafe.SliceData(b)) // unsafe: the slice's start, for the lookup and munmap below.
	allocs.mu.Lock()                         // guards allocs.m; the lookup and delete are one step, so a concurrent double free unmaps once
	length, ok := allocs.m[uintptr(p)]
	if ok {
		delete(allocs.m, uintptr(p))
	}
	allocs.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: FreeAligned of memory AllocAligned did not return, or already freed", ErrInvalidArgument)
	}
	// unsafe: [p, p+length) is exactly a mapping AllocAligned created and
	// recorded, and the record is gone, so no other call unmaps it again.
	if err := unix.MunmapPtr(p, length); err != nil {
		return fmt.Errorf("uring: FreeAligned: munmap: %w", err)
	}
	return nil
}
