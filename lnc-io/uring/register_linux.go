//go:build linux

package uring

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// register calls io_uring_register, retrying on EINTR (older kernels wait
// interruptibly for the ring to go idle before changing registrations).
func (r *Ring) register(op uint32, arg unsafe.Pointer, nr uint32) error {
	if r.closed {
		return ErrClosed
	}
	for {
		// unsafe: arg is converted to uintptr in the argument list of
		// unix.Syscall6 (an assembly function), so whatever it points
		// to stays alive and in place for the call (unsafe.Pointer
		// rule 4). The kernel copies the argument during the call.
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), uintptr(op), uintptr(arg), uintptr(nr), 0, 0)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		case unix.EEXIST:
			if r.params.Flags&setupSingleIssuer != 0 {
				return fmt.Errorf("%w: io_uring_register: %w", ErrWrongThread, errno)
			}
		}
		return errno
	}
}

// RegisterBuffers registers bufs with the kernel for PrepReadFixed and
// PrepWriteFixed, which then name a buffer by its index in bufs. The kernel
// pins the buffers' pages until UnregisterBuffers or Close, and reads and
// writes them by physical page, not by address. The Ring keeps bufs
// reachable until then; they should nevertheless come from AllocAligned:
// that memory is outside the Go heap, page aligned (as O_DIRECT needs), and
// cannot be reused by the Go allocator while the kernel still holds its
// pages. Each buffer must be non-empty and at most 1 GiB; the kernel allows
// up to 16384 of them, and one registration per ring at a time (EBUSY).
// Without CAP_IPC_LOCK the pinned pages count against RLIMIT_MEMLOCK
// (ENOMEM when it is exceeded).
func (r *Ring) RegisterBuffers(bufs [][]byte) error {
	if len(bufs) == 0 {
		return fmt.Errorf("%w: RegisterBuffers of no buffers", ErrInvalidArgument)
	}
	iovs := make([]unix.Iovec, 0, len(bufs))
	for i, b := range bufs {
		if len(b) == 0 {
			return fmt.Errorf("%w: RegisterBuffers: buffer %d is empty", ErrInvalidArgument, i)
		}
		iovs = AppendIovecs(iovs, b)
	}
	// unsafe: the iovec array is Go memory that the kernel reads during
	// the call only (see register); its Base pointers keep bufs alive.
	err := r.register(registerBuffers, unsafe.Pointer(&iovs[0]), uint32(len(iovs)))
	runtime.KeepAlive(iovs)
	if err != nil {
		return fmt.Errorf("uring: register %d buffers: %w", len(bufs), err)
	}
	r.regBufs = slices.Clone(bufs)
	return nil
}

// UnregisterBuffers drops the registered buffers. No fixed read or write
// using them may be in flight.
func (r *Ring) UnregisterBuffers() error {
	if err := r.register(unregisterBuffers, nil, 0); err != nil {
		return fmt.Errorf("uring: unregister buffers: %w", err)
	}
	r.regBufs = nil
	return nil
}

// RegisterFiles registers file descriptors with the kernel; an SQE with
// SQEFixedFile then names a file by its index in fds instead of its
// descriptor, which saves a file table lookup and reference count per
// operation. An entry of -1 leaves that slot empty. The kernel holds its own
// reference to each file: closing the descriptor afterwards does not close
// the registered file until UnregisterFiles or Close.
func (r *Ring) RegisterFiles(fds []int) error {
	if len(fds) == 0 {
		return fmt.Errorf("%w: RegisterFiles of no files", ErrInvalidArgument)
	}
	arr := make([]int32, len(fds))
	for i, fd := range fds {
		arr[i] = int32(fd)
	}
	// unsafe: Go memory the kernel reads during the call only.
	err := r.register(registerFiles, unsafe.Pointer(&arr[0]), uint32(len(arr)))
	runtime.KeepAlive(arr)
	if err != nil {
		return fmt.Errorf("uring: register %d files: %w", len(fds), err)
	}
	return nil
}

// UnregisterFiles drops the registered files.
func (r *Ring) UnregisterFiles() error {
	if err := r.register(unregisterFiles, nil, 0); err != nil {
		return fmt.Errorf("uring: unregister files: %w", err)
	}
	return nil
}

// ProbeResult says which operations the running kernel supports.
type ProbeResult struct {
	// LastOp is the highest operation code the kernel knows, supported
	// or not.
	LastOp Op
	ops    [probeMaxOps / 64]uint64
}

// Supported reports whether the kernel supports op.
func (p ProbeResult) Supported(op Op) bool {
	return p.ops[op/64]&(1<<(op%64)) != 0
}

// Probe asks the kernel which operations it supports
// (IORING_REGISTER_PROBE, Linux 5.6). On older kernels the error wraps
// ErrUnavailable.
func (r *Ring) Probe() (ProbeResult, error) {
	// The kernel rejects the probe unless the buffer is zeroed, which new
	// guarantees.
	buf := new(probeBuf)
	// unsafe: buf is Go heap memory the kernel fills during the call only.
	err := r.register(registerProbe, unsafe.Pointer(buf), probeMaxOps)
	runtime.KeepAlive(buf)
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			return ProbeResult{}, fmt.Errorf("%w: IORING_REGISTER_PROBE: %w (kernel older than 5.6)", ErrUnavailable, err)
		}
		return ProbeResult{}, fmt.Errorf("uring: probe: %w", err)
	}
	res := ProbeResult{LastOp: Op(buf.LastOp)}
	for _, o := range buf.Ops[:min(int(buf.OpsLen), probeMaxOps)] {
		if o.Flags&probeOpSupported != 0 {
			res.ops[o.Op/64] |= 1 << (o.Op % 64)
		}
	}
	return res, nil
}
