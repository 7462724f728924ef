package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lance-go/lance/lnc-io/ioq"
	"github.com/lance-go/lance/lnc-io/uring"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// pwritev2 runs requests on worker goroutines with plain system calls. A
// commit that writes one file and syncs it is a single pwritev2 with
// RWF_DSYNC; others are pwritev2 calls followed by one fdatasync per file.
type pwritev2 struct {
	q          *ioq.Queue[request]
	threadInit func()
	wg         sync.WaitGroup // the workers; Close waits for them
	direct     directSet
}

// batchMax bounds how many requests a worker takes from the queue at once.
const batchMax = 32

func newPwritev2(cfg Config) (*pwritev2, error) {
	b := &pwritev2{threadInit: cfg.ThreadInit}
	if err := b.direct.init(cfg, 0); err != nil {
		return nil, err
	}
	b.q = ioq.New[request](cfg.Queue)
	n := cfg.Workers
	if n <= 0 {
		n = 2
	}
	b.wg.Add(n)
	for range n {
		go b.worker()
	}
	return b, nil
}

func (b *pwritev2) Kind() Kind { return KindPwritev2 }

func (b *pwritev2) Do(ctx context.Context, c *Commit) error {
	if c.done == nil {
		c.done = make(chan struct{}, 1)
	}
	if err := submit(ctx, b.q, request{commit: c}, c.done); err != nil {
		return err
	}
	return c.err
}

func (b *pwritev2) ReadAt(ctx context.Context, r *Read) (int, error) {
	if r.done == nil {
		r.done = make(chan struct{}, 1)
	}
	if err := submit(ctx, b.q, request{read: r}, r.done); err != nil {
		return 0, err
	}
	return r.n, r.err
}

// DirectBuffers returns the pool of aligned buffers; pwritev2 writes from
// them with ordinary system calls.
func (b *pwritev2) DirectBuffers() (*DirectPool, error) { return b.direct.get() }

// Close stops taking requests, lets the workers finish what is queued and
// waits for them.
func (b *pwritev2) Close() error {
	b.q.Close()
	b.wg.Wait()
	b.direct.close()
	return nil
}

// worker owns nothing but its scratch space; it exits when the queue is
// closed and drained.
func (b *pwritev2) worker() {
	defer b.wg.Done()
	if b.threadInit != nil {
		// Pinning applies to a thread: keep this worker on the one it
		// pinned. The thread exits with the worker.
		runtime.LockOSThread()
		b.threadInit()
	}
	var (
		batch []request
		s     scratch
	)
	defer s.close()
	for {
		var err error
		batch, err = b.q.PopBatch(context.Background(), batch[:0], batchMax)
		if err != nil {
			return // ErrClosed: the queue is drained
		}
		for i, r := range batch {
			if r.commit != nil {
				r.commit.err = s.commit(r.commit)
				r.commit.done <- struct{}{}
			} else {
				rd := r.read
				rd.n, rd.err = preadFull(rd.File, rd.Buf, rd.Off)
				rd.done <- struct{}{}
			}
			batch[i] = request{} // drop references for the GC
		}
	}
}

// scratch holds a worker's reusable slices, so that a commit allocates
// nothing.
type scratch struct {
	files []vfs.File
	iov   [][]byte
	vecs  []unix.Iovec // the iovec array handed to the kernel

	// The sync helper, started on the first commit that syncs several
	// files (see syncHelper).
	syncReq  chan []vfs.File
	syncDone chan error
}

// commit performs c with system calls and returns the first error.
func (s *scratch) commit(c *Commit) error {
	s.files = c.syncFiles(s.files[:0])
	defer clear(s.files) // drop file references between commits
	dsync := c.Sync && len(s.files) == 1 && len(c.Writes) == 1
	for i := range c.Writes {
		w := &c.Writes[i]
		if totalLen(w.Bufs) > 0 {
			if err := checkWrite(w); err != nil {
				return err
			}
			if w.Direct != nil {
				w.Direct.pool.plainWrites.Add(1)
			}
		}
		if err := s.pwriteFull(w.File, w.Bufs, w.Off, dsync); err != nil {
			return err
		}
	}
	if !c.Sync || dsync {
		return nil
	}
	if len(s.files) == 1 {
		return fdatasync(s.files[0])
	}
	// Several files: sync the first here and the others on the helper at
	// the same time, so that the file system can serve them with one
	// journal commit instead of one after the other.
	s.syncHelper()
	s.syncReq <- s.files[1:]
	err := fdatasync(s.files[0])
	if herr := <-s.syncDone; err == nil {
		err = herr
	}
	return err
}

// syncHelper starts the scratch's helper goroutine on first use. It syncs
// the files it is sent, one after the other, and answers with the first
// error. It exits when close stops it: the worker that owns the scratch
// calls close when it exits.
func (s *scratch) syncHelper() {
	if s.syncReq != nil {
		return
	}
	s.syncReq = make(chan []vfs.File)
	s.syncDone = make(chan error)
	go func() {
		for files := range s.syncReq {
			var first error
			for _, f := range files {
				if err := fdatasync(f); err != nil && first == nil {
					first = err
				}
			}
			s.syncDone <- first
		}
	}()
}

// close stops the helper goroutine, if one was started.
func (s *scratch) close() {
	if s.syncReq != nil {
		close(s.syncReq)
		s.syncReq = nil
	}
}

// pwriteFull writes all of bufs at off, going on after short writes. With
// dsync every call carries RWF_DSYNC, which makes it a write and an
// fdatasync in one; the observer sees a sync around it.
func (s *scratch) pwriteFull(f vfs.File, bufs [][]byte, off int64, dsync bool) error {
	total := totalLen(bufs)
	if total == 0 {
		if dsync {
			return fdatasync(f)
		}
		return nil
	}
	allowed, injected := beforeWrite(f, off, total)
	if allowed < total && injected == nil {
		injected = fmt.Errorf("%w: %s at %d: observer allowed %d of %d bytes", ErrShortWrite, f.Name(), off, allowed, total)
	}
	flags := 0
	if dsync && injected == nil {
		if err := beforeSync(f); err != nil {
			return err
		}
		flags = unix.RWF_DSYNC
	}
	s.iov = trimBufs(s.iov[:0], bufs, allowed)
	defer clear(s.iov)
	iov := s.iov
	fd := int(f.Fd())
	done := 0
	for len(iov) > 0 {
		s.vecs = uring.AppendIovecs(s.vecs[:0], iov[:min(len(iov), iovMax)]...)
		n, err := pwritev2Raw(fd, s.vecs, off+int64(done), flags)
		clear(s.vecs) // drop the buffer references until the next call
		if n > 0 {
			afterWrite(f, off+int64(done), n)
			done += n
			iov = advance(iov, n)
		}
		switch {
		case errors.Is(err, unix.EINTR):
		case err != nil:
			return fmt.Errorf("backend: pwritev2 %s at %d: %w", f.Name(), off+int64(done), err)
		case n == 0:
			return fmt.Errorf("%w: %s at %d", ErrShortWrite, f.Name(), off+int64(done))
		}
	}
	if injected != nil {
		return injected
	}
	if flags != 0 {
		afterSync(f)
	}
	return nil
}

// pwritev2Raw is pwritev2(2) on an iovec array the caller owns, so that
// no call allocates (unix.Pwritev2 builds a new array every time).
func pwritev2Raw(fd int, vecs []unix.Iovec, off int64, flags int) (int, error) {
	if len(vecs) == 0 {
		return 0, nil
	}
	// The kernel takes the offset as two longs, low half first; on 64-bit
	// systems the high one is 0. Shifting twice by half the width keeps
	// the expression valid where a long has 32 bits.
	const half = unix.SizeofLong * 4
	lo, hi := uintptr(off), uintptr(uint64(off)>>half>>half)
	// unsafe: vecs is a Go slice of unix.Iovec whose Base fields are
	// *byte pointers the GC sees, so the array and the buffers stay alive
	// and unmoved (heap memory does not move) for the duration of the call.
	n, _, errno := unix.Syscall6(unix.SYS_PWRITEV2, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(vecs))),
		uintptr(len(vecs)), lo, hi, uintptr(flags))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func fdatasync(f vfs.File) error {
	if err := beforeSync(f); err != nil {
		return err
	}
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("backend: fdatasync %s: %w", f.Name(), err)
		}
		afterSync(f)
		return nil
	}
}

// preadFull reads len(p) bytes at off, fewer only at end of file.
func preadFull(f vfs.File, p []byte, off int64) (int, error) {
	fd := int(f.Fd())
	done := 0
	for done < len(p) {
		n, err := unix.Pread(fd, p[done:], off+int64(done))
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return done, fmt.Errorf("backend: pread %s at %d: %w", f.Name(), off+int64(done), err)
		}
		if n == 0 {
			return done, io.EOF
		}
		done += n
	}
	return done, nil
}
