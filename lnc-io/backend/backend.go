// Package backend performs the storage engine's file I/O: the writes and
// fdatasyncs of group commits, and reads. Two implementations share one
// contract and one test suite:
//
//   - "uring": io_uring rings, each owned by a goroutine locked to its OS
//     thread. The writes of a commit and the fdatasync of every file they
//     touch go to the kernel in one submission, each sync linked behind its
//     file's writes.
//   - "pwritev2": worker goroutines issuing pwritev2 and fdatasync system
//     calls.
//
// Requests wait in an ioq.Queue, so commits overtake consumer reads, which
// overtake background work, without starving anyone. A Probe at start tells
// whether the kernel offers io_uring with the operations needed; Open with
// KindAuto uses it when it does.
//
// Every write and sync goes through the vfs.Observer of its file when the
// file has one, so that the fault-injecting file system sees, and can fail,
// what either backend does.
//
// For O_DIRECT writes each backend offers a bounded pool of aligned
// buffers (DirectBuffers). The uring backend registers them with its rings
// and issues writes from them as fixed-buffer writes, falling back to
// ordinary writes from the same memory where the kernel refuses the
// registration; DirectPool.Stats tells which is in use.
package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/lance-go/lance/lnc-io/ioq"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// Kind names a backend implementation.
type Kind string

// Backend kinds.
const (
	KindAuto     Kind = "auto"
	KindURing    Kind = "uring"
	KindPwritev2 Kind = "pwritev2"
)

// ParseKind maps a configuration string to a Kind.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindAuto, KindURing, KindPwritev2:
		return k, nil
	case "":
		return KindAuto, nil
	}
	return "", fmt.Errorf("%w: %q (want auto, uring or pwritev2)", ErrUnknownKind, s)
}

// Errors.
var (
	ErrUnknownKind = errors.New("backend: unknown kind")
	ErrClosed      = errors.New("backend: closed")
	// ErrShortWrite reports a write the kernel completed short without an
	// error, twice in a row: the backend retries a short write once.
	ErrShortWrite = errors.New("backend: short write")
)

// Write is one positioned, vectored write: Bufs are written back to back
// at Off.
type Write struct {
	File vfs.File
	Off  int64
	Bufs [][]byte
	// Direct, when set, says that the data comes from this buffer of the
	// backend's DirectPool: Bufs must then be exactly one slice of
	// Direct.Bytes() (Do fails with ErrBadDirectWrite otherwise). The
	// uring backend issues it as IORING_OP_WRITE_FIXED when its ring
	// registered the pool. Writes to an O_DIRECT file must also be
	// aligned (see vfs.DirectAlign); the backend leaves that to the
	// kernel, or to the file's vfs.WriteChecker.
	Direct *DirectBuf
}

// Commit is a group commit: Writes are performed, then, when Sync is set,
// every file they touched is fdatasynced. A Commit is owned by its caller
// and may be reused once Do returned; the backend keeps no reference to it
// or to its buffers after that.
type Commit struct {
	Writes []Write
	Sync   bool
	// Files lists extra files to fdatasync with the commit even if no
	// write touches them (for example a segment whose writes were issued
	// in an earlier commit without Sync).
	Files []vfs.File
	Class ioq.Class

	// Set by the backend.
	err  error
	done chan struct{}
}

// syncFiles returns the distinct files of c to sync, in first-seen order,
// appended to dst.
func (c *Commit) syncFiles(dst []vfs.File) []vfs.File {
	add := func(f vfs.File) {
		for _, g := range dst {
			if g == f {
				return
			}
		}
		dst = append(dst, f)
	}
	for i := range c.Writes {
		add(c.Writes[i].File)
	}
	for _, f := range c.Files {
		add(f)
	}
	return dst
}

// Read is one positioned read into Buf.
type Read struct {
	File  vfs.File
	Off   int64
	Buf   []byte
	Class ioq.Class

	// Set by the backend.
	n    int
	err  error
	done chan struct{}
}

// Backend performs commits and reads. It is safe for concurrent use.
type Backend interface {
	// Kind returns the implementation's kind (never KindAuto).
	Kind() Kind
	// Do performs c and returns the first error: of a write (possibly
	// after part of it reached the file) or of a sync. A Do that returned
	// an error made no promise about what reached stable storage.
	Do(ctx context.Context, c *Commit) error
	// ReadAt reads len(r.Buf) bytes at r.Off, fewer only at end of file,
	// returning the count and, at end of file, io.EOF.
	ReadAt(ctx context.Context, r *Read) (int, error)
	// DirectBuffers returns the backend's pool of aligned buffers for
	// O_DIRECT writes, creating it (with the configured count and size)
	// on the first call. It fails with ErrNoDirectBuffers if the backend
	// was configured without one, and with ErrClosed after Close.
	DirectBuffers() (*DirectPool, error)
	// Close stops the workers after the queued requests are done. Direct
	// buffers still held stay mapped until they are released; Acquire
	// fails from then on.
	Close() error
}

// Config sets up a backend.
type Config struct {
	// Kind selects the implementation; KindAuto (the zero value) probes.
	Kind Kind
	// Workers is the number of rings (uring) or worker goroutines
	// (pwritev2). Zero means 2 for pwritev2 and 1 for uring.
	Workers int
	// Queue configures the priority queue requests wait in.
	Queue ioq.Config
	// RingEntries is the submission queue size of each ring (uring);
	// zero means 256.
	RingEntries uint32
	// ThreadInit, when set, runs on each worker's OS thread before it
	// serves requests (uring workers are always locked to their thread;
	// with ThreadInit pwritev2 workers lock theirs too). The server uses
	// it to pin storage threads to a NUMA node's CPUs.
	ThreadInit func()
	// DirectBuffers is the number of buffers of the DirectPool; zero
	// means DefaultDirectBuffers (8) and a negative value no pool.
	DirectBuffers int
	// DirectBufferSize is the size of each buffer, a multiple of
	// vfs.DirectAlign up to 1 GiB; zero means DefaultDirectBufferSize
	// (1 MiB). The pool is mapped on the first DirectBuffers call; the
	// uring backend then pins DirectBuffers × DirectBufferSize bytes per
	// ring (see DirectPool).
	DirectBufferSize int
}

// iovMax is the kernel's UIO_MAXIOV: a longer gather list is split over
// several system calls or SQEs.
const iovMax = 1024

// request is what waits in the queue: a commit or a read.
type request struct {
	commit *Commit
	read   *Read
}

func (r request) class() ioq.Class {
	if r.commit != nil {
		return r.commit.Class
	}
	return r.read.Class
}

// Open returns a backend of the configured kind. With KindAuto it probes
// io_uring and falls back to pwritev2 when the probe fails; the returned
// error of the probe, if any, is in Probe's result for logging.
func Open(cfg Config) (Backend, error) {
	kind := cfg.Kind
	if kind == "" || kind == KindAuto {
		kind = KindPwritev2
		if Probe().Err == nil {
			kind = KindURing
		}
	}
	switch kind {
	case KindPwritev2:
		return newPwritev2(cfg)
	case KindURing:
		return newURing(cfg)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
}

// submit queues r and waits for it. done is the request's own completion
// channel (capacity 1), created on first use and reused.
func submit(ctx context.Context, q *ioq.Queue[request], r request, done chan struct{}) error {
	if err := q.Push(ctx, r.class(), r); err != nil {
		if errors.Is(err, ioq.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	// The request is in the queue and its buffers are in use: wait for the
	// worker even if ctx ends, since returning would let the caller reuse
	// memory the kernel may still be writing from.
	<-done
	return nil
}
