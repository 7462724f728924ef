// Package uring is a small binding of Linux io_uring written directly on
// golang.org/x/sys/unix, for the storage engine's write and sync path.
//
// It exists because the Go binding we would otherwise use,
// github.com/ii64/gouring v0.4.1, reaches the unexported syscall.mmap and
// syscall.munmap with a linkname directive, which Go 1.23 and later refuse
// to link without -ldflags=-checklinkname=0. This package only calls exported x/sys/unix
// functions: io_uring_setup, io_uring_enter and io_uring_register through
// unix.Syscall, and mmap through unix.MmapPtr.
//
// # Model
//
// Setup creates a ring: a submission queue (SQ) of 64-byte SQEs and a
// completion queue (CQ) of 16-byte CQEs, both shared with the kernel through
// mmap. The caller takes a free entry with GetSQE, fills it with one of the
// Prep methods, sets SQE.UserData and optionally SQE.Flags, then calls
// Submit or SubmitAndWait. Completions are read with PeekCQE, PeekCQEs or
// WaitCQE, which return copies, and consumed with CQESeen or CQAdvance.
//
// # Ownership
//
// A Ring is not safe for concurrent use: exactly one goroutine owns it and
// makes every call on it, and the package starts no goroutines of its own.
// Rings set up with WithSingleIssuer or WithDeferTaskrun are further bound
// by the kernel to the OS thread that created them; their owner must call
// runtime.LockOSThread before Setup and keep the lock for the ring's life.
//
// # Memory handed to the kernel
//
// An SQE holds raw addresses. The kernel reads and writes those addresses
// after Submit returns, until the operation's CQE is posted, so the memory
// behind them must stay allocated and must not move for that whole time.
// Go's garbage collector never moves heap objects (it is a non-moving
// mark-sweep collector), so a heap buffer that stays reachable stays put;
// goroutine stacks, however, are copied when they grow, so a buffer that
// lives on a stack may move under the kernel. Holder covers both: adding a
// buffer to it keeps the buffer reachable and, because the buffer is then
// stored in heap memory, makes the compiler allocate it on the heap. Memory
// from AllocAligned is outside the Go heap altogether and is the
// recommended home for registered buffers and O_DIRECT I/O.
//
// # Portability
//
// Everything except Available, RequiredOps, the Op type and the sentinel
// errors is Linux only. On other systems Available reports ErrUnavailable, so code that
// picks an I/O backend at run time builds everywhere.
package uring
