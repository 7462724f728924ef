package faultfs

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"github.com/lance-go/lance/lnc-io/vfs"
)

// file is an open file of the FS. Its File methods and its Observer methods
// share one path through the model, so that a write issued by a backend on
// Fd and one issued through WriteAt are tracked alike.
type file struct {
	fs       *FS
	inner    vfs.File
	node     *fileNode
	name     string
	writable bool
	// direct marks a handle opened with OpenDirect: its reads and writes
	// must be aligned to vfs.DirectAlign. dio, when not nil, is the inner
	// file system's O_DIRECT descriptor that Fd hands to backends and
	// WriteAt writes through; inner stays an ordinary descriptor for the
	// model's own reads, Size, Truncate, Preallocate and Sync.
	direct bool
	dio    vfs.File

	// Guarded by fs.mu.
	boot   uint64     // the power cycle the file was opened in
	closed bool       // Close was called
	marks  []syncMark // BeforeSyncs waiting for their AfterSync, oldest first
}

var (
	_ vfs.File         = (*file)(nil)
	_ vfs.Observer     = (*file)(nil)
	_ vfs.WriteChecker = (*file)(nil)
)

// wrap makes the FS file for h. Called with fs.mu held.
func (fs *FS) wrap(h vfs.File, n *fileNode, name string, writable bool) *file {
	f := &file{fs: fs, inner: h, node: n, name: name, writable: writable, boot: fs.boot}
	if n.handles == nil {
		n.handles = make(map[*file]struct{})
	}
	n.handles[f] = struct{}{}
	return f
}

// check fails the operation if the file is closed, belongs to an earlier
// power cycle, or the power is off. Called with fs.mu held.
func (f *file) check(op string) error {
	if f.closed {
		return &os.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	}
	if !f.fs.on || f.boot != f.fs.boot {
		return poweredOff(op, f.name)
	}
	return nil
}

// current reports whether a completion (AfterWrite, AfterSync) still
// counts: the power may be off, but the model was not reset since the file
// was opened, so operations admitted before the cut may finish. Called with
// fs.mu held.
func (f *file) current() bool { return f.boot == f.fs.boot }

// syncDone accounts for an admitted sync that reported back. Called with
// fs.mu held.
func (f *file) syncDone() {
	fs := f.fs
	if fs.inflight > 0 {
		fs.inflight--
	}
	if fs.inflight == 0 && fs.drained != nil {
		close(fs.drained)
		fs.drained = nil
	}
}

// BeforeWrite implements vfs.Observer. Besides the faults, it records the
// range as written (a write that lands without a matching AfterWrite is
// then still undone by a power cut).
func (f *file) BeforeWrite(off int64, n int) (int, error) {
	fs := f.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := f.check("write"); err != nil {
		return 0, err
	}
	if !f.writable {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EBADF}
	}
	if off < 0 || n < 0 {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EINVAL}
	}
	if err := fs.admit("write", f.name); err != nil {
		return 0, err
	}
	fs.stats.Writes++
	if fs.writeFaults.hit(fs.rng, f.name) {
		fs.stats.InjectedWriteErrors++
		return 0, injected("write", f.name, fs.writeFaults.errno())
	}
	nd := f.node
	allowed := int64(n)
	var ferr error
	if end := off + allowed; fs.limit >= 0 && nd.path != "" && end > nd.size {
		if free := fs.limit - fs.used; end-nd.size > free {
			allowed = max(0, min(allowed, nd.size+max(free, 0)-off))
			if f.direct {
				// An O_DIRECT write stops at a block boundary.
				allowed &^= vfs.DirectAlign - 1
			}
			fs.stats.InjectedNoSpace++
			ferr = injected("write", f.name, syscall.ENOSPC)
		}
	}
	if allowed > 0 {
		if err := fs.ensureLoaded(nd, f.inner); err != nil {
			return 0, err
		}
		if end := off + allowed; end > nd.size {
			fs.setSize(nd, end)
		}
		nd.addDirty(off, off+allowed)
		nd.inflightBytes += allowed
	}
	return int(allowed), ferr
}

// AfterWrite implements vfs.Observer.
func (f *file) AfterWrite(off int64, n int) { f.afterWrite(off, n, n) }

// afterWrite records that n bytes were written at off and that settled of
// the bytes admitted are no longer in flight.
func (f *file) afterWrite(off int64, n, settled int) {
	fs := f.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !f.current() {
		return
	}
	f.node.inflightBytes = max(0, f.node.inflightBytes-int64(settled))
	if n > 0 {
		fs.stats.BytesWritten += int64(n)
		// Again: a sync may have read the range before the data landed.
		f.node.addDirty(off, off+int64(n))
	}
}

// BeforeSync implements vfs.Observer. An injected failure drops what was
// written since the previous sync attempt: it will not become durable, even
// through a later successful sync, unless written again.
func (f *file) BeforeSync() error {
	fs := f.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := f.check("fdatasync"); err != nil {
		return err
	}
	if err := fs.admit("fdatasync", f.name); err != nil {
		return err
	}
	fs.stats.Syncs++
	nd := f.node
	if fs.syncFaults.hit(fs.rng, f.name) {
		fs.stats.InjectedSyncErrors++
		nd.loseEpoch(nd.syncEpoch)
		nd.syncEpoch++
		return injected("fdatasync", f.name, fs.syncFaults.errno())
	}
	f.marks = append(f.marks, syncMark{epoch: nd.syncEpoch, size: nd.size})
	nd.syncEpoch++
	fs.inflight++
	return nil
}

// AfterSync implements vfs.Observer: what was written before the matching
// BeforeSync is now durable.
func (f *file) AfterSync() {
	f.afterSync()
}

// afterSync is AfterSync returning the error of reading the synced ranges
// (they are then treated as lost).
func (f *file) afterSync() error {
	fs := f.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !f.current() {
		return poweredOff("fdatasync", f.name)
	}
	nd := f.node
	var m syncMark
	if len(f.marks) > 0 {
		m = f.popMark()
		f.syncDone()
	} else {
		// An AfterSync without BeforeSync: take it as a sync of everything.
		m = syncMark{epoch: nd.syncEpoch, size: nd.size}
		nd.syncEpoch++
	}
	if err := nd.persist(f.inner, m); err != nil {
		nd.loseEpoch(m.epoch)
		return err
	}
	if nd.inflightBytes == 0 && len(nd.dirty) == 0 && nd.loaded {
		// Nothing in flight: the real size is the truth (short or failed
		// writes may have left the tracked size too large).
		if size, err := f.inner.Size(); err == nil {
			fs.setSize(nd, size)
		}
	}
	return nil
}

// popMark removes and returns the oldest sync mark, shifting the rest so
// that the slice keeps its capacity. Called with fs.mu held.
func (f *file) popMark() syncMark {
	m := f.marks[0]
	f.marks = f.marks[:copy(f.marks, f.marks[1:])]
	return m
}

// syncFailed handles a real fdatasync error on the File.Sync path: like an
// injected one, it drops what the sync covered. Called without fs.mu.
func (f *file) syncFailed() {
	fs := f.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !f.current() || len(f.marks) == 0 {
		return
	}
	m := f.popMark()
	f.syncDone()
	f.node.loseEpoch(m.epoch)
}

// ReadAt implements vfs.File.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	// The lock covers the check only: a read needs no model state, and
	// holding the lock across the I/O would queue every reader behind
	// whatever the model is doing. The same holds for Size and Preallocate.
	f.fs.mu.Lock()
	err := f.check("read")
	f.fs.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if f.direct {
		if err := checkAligned("read", f.name, off, p); err != nil {
			return 0, err
		}
	}
	return f.inner.ReadAt(p, off)
}

// CheckWrite implements vfs.WriteChecker. On a handle opened with
// OpenDirect it enforces O_DIRECT's rules as the strictest disks do: the
// offset, every buffer's length and every buffer's address are multiples
// of vfs.DirectAlign; otherwise the write fails with EINVAL (wrapping
// ErrMisaligned) before anything is written. Other handles accept
// anything.
func (f *file) CheckWrite(off int64, bufs [][]byte) error {
	if !f.direct {
		return nil
	}
	return checkAligned("write", f.name, off, bufs...)
}

// checkAligned applies O_DIRECT's alignment rules to a transfer.
func checkAligned(op, name string, off int64, bufs ...[]byte) error {
	const mask = vfs.DirectAlign - 1
	bad := off&mask != 0
	for _, b := range bufs {
		// unsafe: only the numeric address of the buffer is taken, to test
		// its alignment; nothing is read or written through it.
		addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		if len(b)&mask != 0 || addr&mask != 0 {
			bad = true
		}
	}
	if bad {
		return &os.PathError{Op: op, Path: name, Err: fmt.Errorf("%w: %w", ErrMisaligned, syscall.EINVAL)}
	}
	return nil
}

// WriteAt implements vfs.File through the Observer hooks.
func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if err := f.CheckWrite(off, [][]byte{p}); err != nil {
		return 0, err
	}
	allowed, ferr := f.BeforeWrite(off, len(p))
	if allowed == 0 {
		return 0, ferr
	}
	h := f.inner
	if f.dio != nil {
		h = f.dio
	}
	n, err := h.WriteAt(p[:allowed], off)
	f.afterWrite(off, n, allowed) // the call is over: nothing more can land
	if err == nil {
		err = ferr
	}
	return n, err
}

// Sync implements vfs.File through the Observer hooks.
func (f *file) Sync() error {
	if err := f.BeforeSync(); err != nil {
		return err
	}
	if err := f.inner.Sync(); err != nil {
		f.syncFailed()
		return err
	}
	return f.afterSync()
}

// Truncate implements vfs.File. The new size is durable after a sync; a
// power cut before that restores the old size and content.
func (f *file) Truncate(size int64) error {
	fs := f.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := f.check("truncate"); err != nil {
		return err
	}
	if !f.writable {
		return &os.PathError{Op: "truncate", Path: f.name, Err: syscall.EINVAL}
	}
	if err := fs.admit("truncate", f.name); err != nil {
		return err
	}
	fs.stats.Truncates++
	nd := f.node
	if err := fs.ensureLoaded(nd, f.inner); err != nil {
		return err
	}
	if err := f.inner.Truncate(size); err != nil {
		return err
	}
	nd.addTrunc(size)
	fs.setSize(nd, size)
	return nil
}

// Preallocate implements vfs.File. It is not a mutating operation, but it
// fails with ENOSPC when the range reaches further past the end of the
// file than the space limit leaves free (reserved blocks are not charged).
func (f *file) Preallocate(off, n int64) error {
	fs := f.fs
	fs.mu.Lock()
	err := f.check("fallocate")
	if err == nil && fs.limit >= 0 && n > 0 && f.node.path != "" {
		if grow := off + n - f.node.size; grow > 0 && grow > fs.limit-fs.used {
			fs.stats.InjectedNoSpace++
			err = injected("fallocate", f.name, syscall.ENOSPC)
		}
	}
	fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.inner.Preallocate(off, n)
}

// Size implements vfs.File.
func (f *file) Size() (int64, error) {
	f.fs.mu.Lock()
	err := f.check("fstat")
	f.fs.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return f.inner.Size()
}

// Name implements vfs.File.
func (f *file) Name() string { return f.name }

// Fd implements vfs.File. The descriptor stays open until Close, even after
// a power cut, so that a late write of the old process can never land in a
// reused descriptor.
// A handle opened with OpenDirect returns its O_DIRECT descriptor when the
// inner file system gave one.
func (f *file) Fd() uintptr {
	if f.dio != nil {
		return f.dio.Fd()
	}
	return f.inner.Fd()
}

// Close implements vfs.File. It always releases the descriptor; for a file
// of an earlier power cycle it then reports ErrPoweredOff.
func (f *file) Close() error {
	fs := f.fs
	fs.mu.Lock()
	if f.closed {
		fs.mu.Unlock()
		return &os.PathError{Op: "close", Path: f.name, Err: os.ErrClosed}
	}
	f.closed = true
	dead := !fs.on || !f.current()
	if f.current() {
		delete(f.node.handles, f)
	}
	// The model no longer refers to f: the descriptor can be closed
	// without the lock.
	fs.mu.Unlock()
	err := f.inner.Close()
	if f.dio != nil {
		if derr := f.dio.Close(); err == nil {
			err = derr
		}
	}
	if dead {
		return poweredOff("close", f.name)
	}
	return err
}
