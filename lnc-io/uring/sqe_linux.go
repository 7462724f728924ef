//go:build linux

package uring

import (
	"math"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Preparing SQEs.
//
// Each Prep method sets every field of the SQE except UserData and Flags,
// which it leaves as they are, so those two may be set before or after.
//
// Buffers and iovec arrays passed to a Prep method are used by the kernel
// after Submit returns, until the operation's CQE is posted. Until then the
// caller must keep them referenced from something reachable, and they must
// not live on a goroutine stack (stacks move when they grow; the heap does
// not move). Adding them to a Holder does both. Memory from AllocAligned is
// outside the Go heap and needs neither; it must simply not be freed early.
// A local buffer kept alive only with runtime.KeepAlive is safe only if it
// is known to be heap-allocated (for example make with a non-constant size).
// With FeatSubmitStable (Linux 5.5) the kernel has copied an iovec array by
// the time Submit returns, but the buffers it points at are used until the
// CQE.
//
// Offsets are byte offsets in the file. For the non-fixed reads and writes
// an offset of -1 means the file's current position, which the operation
// advances (FeatRWCurPos).

// addrOf returns the address of b's first element, 0 for a nil slice.
func addrOf(b []byte) uint64 {
	// unsafe: only the numeric address is taken, to be stored in an SQE.
	// Keeping the memory alive and unmoved until the CQE is the caller's
	// documented duty (see above); the kernel checks the range itself.
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// iovecsAddr returns the address of the first iovec, 0 for a nil slice.
func iovecsAddr(iovs []unix.Iovec) uint64 {
	// unsafe: as in addrOf, only the number is taken; unix.Iovec has the
	// layout of the kernel's struct iovec on every Linux architecture.
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(iovs))))
}

// clampLen converts a length to the SQE's 32-bit field. Longer buffers are
// cut at 4 GiB - 1, which the kernel (whose transfers stop just short of
// 2 GiB) reports as a short transfer in the CQE.
func clampLen(n int) uint32 {
	if uint64(n) > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(n)
}

func (sqe *SQE) prep(op Op, fd int, addr uint64, n uint32, off uint64) {
	flags, userData := sqe.Flags, sqe.UserData
	*sqe = SQE{Opcode: op, Flags: flags, Fd: int32(fd), Off: off, Addr: addr, Len: n, UserData: userData}
}

// PrepNop prepares an operation that does nothing and completes with res 0.
func (sqe *SQE) PrepNop() {
	sqe.prep(OpNop, -1, 0, 0, 0)
}

// PrepRead prepares a pread(2) of len(b) bytes from fd at off into b. The
// CQE's Res is the number of bytes read (0 at end of file).
func (sqe *SQE) PrepRead(fd int, b []byte, off int64) {
	sqe.prep(OpRead, fd, addrOf(b), clampLen(len(b)), uint64(off))
}

// PrepWrite prepares a pwrite(2) of b to fd at off. The CQE's Res is the
// number of bytes written, which may be short.
func (sqe *SQE) PrepWrite(fd int, b []byte, off int64) {
	sqe.prep(OpWrite, fd, addrOf(b), clampLen(len(b)), uint64(off))
}

// PrepReadv prepares a preadv(2) from fd at off into the buffers iovs
// describe (at most 1024 of them, UIO_MAXIOV). Both the iovec array and
// the buffers must stay alive until the CQE; see AppendIovecs and Holder.
func (sqe *SQE) PrepReadv(fd int, iovs []unix.Iovec, off int64) {
	sqe.prep(OpReadv, fd, iovecsAddr(iovs), clampLen(len(iovs)), uint64(off))
}

// PrepWritev prepares a pwritev(2) to fd at off of the buffers iovs
// describe (at most 1024 of them, UIO_MAXIOV). Both the iovec array and
// the buffers must stay alive until the CQE; see AppendIovecs and Holder.
func (sqe *SQE) PrepWritev(fd int, iovs []unix.Iovec, off int64) {
	sqe.prep(OpWritev, fd, iovecsAddr(iovs), clampLen(len(iovs)), uint64(off))
}

// PrepReadFixed prepares a read from fd at off into b, which must lie
// entirely inside buffer bufIndex of those registered with RegisterBuffers
// (the CQE carries -EFAULT otherwise). The kernel skips pinning and
// mapping the pages per operation.
func (sqe *SQE) PrepReadFixed(fd int, b []byte, off int64, bufIndex uint16) {
	sqe.prep(OpReadFixed, fd, addrOf(b), clampLen(len(b)), uint64(off))
	sqe.BufIndex = bufIndex
}

// PrepWriteFixed prepares a write to fd at off from b, which must lie
// entirely inside buffer bufIndex of those registered with RegisterBuffers.
func (sqe *SQE) PrepWriteFixed(fd int, b []byte, off int64, bufIndex uint16) {
	sqe.prep(OpWriteFixed, fd, addrOf(b), clampLen(len(b)), uint64(off))
	sqe.BufIndex = bufIndex
}

// PrepFsync prepares an fsync(2) of fd, or an fdatasync(2) when datasync
// is set. It orders nothing by itself: operations run concurrently, so to
// sync after a write, link the write to it (SQEIOLink on the write) or
// submit it with SQEIODrain.
func (sqe *SQE) PrepFsync(fd int, datasync bool) {
	sqe.prep(OpFsync, fd, 0, 0, 0)
	if datasync {
		sqe.OpFlags = fsyncDatasync
	}
}

// AppendIovecs appends to dst one iovec per buffer and returns the
// extended slice. The iovecs point at the buffers' memory, so while the
// returned slice is reachable the buffers are too; reuse dst (dst[:0]) to
// avoid allocating.
func AppendIovecs(dst []unix.Iovec, bufs ...[]byte) []unix.Iovec {
	for _, b := range bufs {
		iov := unix.Iovec{Base: unsafe.SliceData(b)} // unsafe.SliceData: a typed *byte the GC sees; no arithmetic.
		iov.SetLen(len(b))
		dst = append(dst, iov)
	}
	return dst
}
