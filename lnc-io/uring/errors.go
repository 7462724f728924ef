package uring

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them, the
// failing system call's syscall.Errno, or both; test with errors.Is.
var (
	// ErrUnavailable means io_uring cannot be used by this process: the
	// kernel lacks it (ENOSYS), forbids it (EPERM: the sysctl
	// kernel.io_uring_disabled, a seccomp filter in a container), or lacks
	// an operation or feature this package needs. The caller should fall
	// back to another I/O backend.
	ErrUnavailable = errors.New("uring: io_uring unavailable")
	// ErrClosed is returned by the methods of a Ring after Close.
	ErrClosed = errors.New("uring: ring closed")
	// ErrBusy is returned when io_uring_enter fails with EAGAIN or EBUSY:
	// the kernel could not take more requests now, typically because
	// too many completions are waiting to be reaped. Reap completions and
	// submit again; nothing was lost.
	ErrBusy = errors.New("uring: kernel busy, reap completions and retry")
	// ErrWrongThread is returned when a ring set up with WithSingleIssuer
	// or WithDeferTaskrun is used from an OS thread other than the one
	// that created it (the kernel answers EEXIST).
	ErrWrongThread = errors.New("uring: ring used from a thread other than its single issuer")
	// ErrInvalidArgument reports an argument this package rejects before
	// asking the kernel.
	ErrInvalidArgument = errors.New("uring: invalid argument")
)
