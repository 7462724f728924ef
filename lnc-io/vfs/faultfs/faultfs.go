package faultfs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/lance-go/lance/lnc-io/vfs"
)

// Sentinel errors. Every error the FS makes up itself wraps ErrInjected, so
// that a test can tell an injected fault from a real one; those that stand
// for an errno (EIO, ENOSPC) wrap the syscall.Errno as well.
var (
	// ErrInjected marks every fault this package made up.
	ErrInjected = errors.New("faultfs: injected fault")
	// ErrPoweredOff is returned by every operation of a file opened before
	// the last power cut, and by every operation while the power is off.
	ErrPoweredOff = errors.New("faultfs: power is off")
	// ErrOutOfRange is returned by FlipBit for an offset past the end of the
	// file or a bit number over 7.
	ErrOutOfRange = errors.New("faultfs: offset out of range")
	// ErrNotFile is returned when a regular file was expected.
	ErrNotFile = errors.New("faultfs: not a regular file")
	// ErrDirRename is returned by Rename for a directory: the model keeps
	// directories at fixed paths.
	ErrDirRename = errors.New("faultfs: renaming a directory is not modelled")
	// ErrMisaligned is returned, with syscall.EINVAL, by a read or write
	// of a handle opened with OpenDirect whose offset, length or buffer
	// address is not a multiple of vfs.DirectAlign.
	ErrMisaligned = errors.New("faultfs: O_DIRECT transfer not aligned")
)

// errPoweredOff is what powered-off operations wrap: both sentinels.
var errPoweredOff = fmt.Errorf("%w (%w)", ErrPoweredOff, ErrInjected)

func poweredOff(op, name string) error {
	return &os.PathError{Op: op, Path: name, Err: errPoweredOff}
}

func injected(op, name string, errno syscall.Errno) error {
	return &os.PathError{Op: op, Path: name, Err: fmt.Errorf("%w: %w", ErrInjected, errno)}
}

// FS is a fault-injecting file system over another one (normally vfs.OS()
// on a test's temporary directory). See the package documentation for the
// durability model. It is safe for concurrent use.
//
// All changes to files under the paths it is used on must go through it:
// it learns what exists on disk lazily and does not notice changes made
// behind its back. The inner file system's files are used through their
// File methods only: Observer calls are not forwarded to them.
type FS struct {
	inner vfs.FS

	// mu guards every field below and the whole model (directory and file
	// nodes, and the fields of open files marked as guarded). It is held
	// across the inner file system's metadata calls (create, rename, ...)
	// so that the model and the disk change together, but not across data
	// transfer: WriteAt's pwrite and Sync's fdatasync run unlocked, as a
	// backend's do, and the Before/After hooks around them take it.
	mu     sync.Mutex
	rng    *rand.Rand
	root   *dirNode
	nextID uint64

	on       bool
	boot     uint64 // increases at every power-on; files carry theirs
	offCause string
	inflight int           // admitted syncs not reported back
	drained  chan struct{} // closed when inflight drops to zero while off

	cutAt int64 // Stats.Ops value at which the power is cut; 0: none

	writeFaults, syncFaults, syncDirFaults faultState

	limit        int64 // space limit in bytes; negative: none
	used         int64
	keepUnsynced bool

	stats   Stats
	lastCut CutReport
}

var (
	_ vfs.FS           = (*FS)(nil)
	_ vfs.DirectOpener = (*FS)(nil)
)

// Stats counts what an FS did. Operations refused because the power was
// off are not counted.
type Stats struct {
	// Ops counts mutating operations (write, sync, truncate, create,
	// rename, remove, remove-all, mkdir-all, sync-dir), whether they then
	// succeeded, failed or cut the power: CutPowerAfter counts the same.
	Ops int64
	// Per kind of mutating operation.
	Writes, Syncs, SyncDirs, Creates, Renames, Removes, Truncates, Mkdirs int64
	// BytesWritten counts the bytes the kernel reported written.
	BytesWritten int64
	// PowerCuts counts completed power cycles.
	PowerCuts int64
	// Injected faults by kind.
	InjectedWriteErrors, InjectedSyncErrors, InjectedSyncDirErrors, InjectedNoSpace int64
	// Damage done at rest.
	TornTails, BitFlips int64
	// AbandonedSyncs counts syncs admitted before a power cut that had not
	// reported back (AfterSync, or the error of File.Sync) when PowerOn
	// gave up waiting for them.
	AbandonedSyncs int64
	// SpaceUsed is the total size of the files the FS knows of, what
	// SetSpaceLimit bounds.
	SpaceUsed int64
}

// New returns a fault file system over inner, powered on, with no fault
// armed. seed drives every random choice (random faults, garbage bytes,
// what a power cut keeps in KeepUnsynced mode): the same seed and the same
// sequence of calls give the same faults.
func New(inner vfs.FS, seed uint64) *FS {
	return &FS{
		inner: inner,
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		root:  &dirNode{path: "/", entries: make(map[string]node)},
		on:    true,
		boot:  1,
		limit: -1,
	}
}

// admit lets a mutating operation start: it fails while the power is off,
// counts the operation, and cuts the power if the operation is the one
// CutPowerAfter chose. Called with fs.mu held.
func (fs *FS) admit(op, name string) error {
	if !fs.on {
		return poweredOff(op, name)
	}
	fs.stats.Ops++
	if fs.cutAt != 0 && fs.stats.Ops >= fs.cutAt {
		fs.powerOff(fmt.Sprintf("operation %d (%s %s)", fs.stats.Ops, op, name))
		return poweredOff(op, name)
	}
	return nil
}

// checkOn fails while the power is off. Called with fs.mu held.
func (fs *FS) checkOn(op, name string) error {
	if !fs.on {
		return poweredOff(op, name)
	}
	return nil
}

// Create implements vfs.FS.
func (fs *FS) Create(name string) (vfs.File, error) {
	p, err := absPath(name)
	if err != nil {
		return nil, err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.admit("create", name); err != nil {
		return nil, err
	}
	fs.stats.Creates++
	h, err := fs.inner.Create(name)
	if err != nil {
		return nil, err
	}
	n := fs.newFile(p, true)
	if parent := fs.lookupDir(filepath.Dir(p)); parent != nil {
		base := filepath.Base(p)
		parent.markChanged(base, nil)
		parent.entries[base] = n
	}
	return fs.wrap(h, n, name, true), nil
}

// Open implements vfs.FS.
func (fs *FS) Open(name string) (vfs.File, error) { return fs.open(name, false) }

// OpenRW implements vfs.FS.
func (fs *FS) OpenRW(name string) (vfs.File, error) { return fs.open(name, true) }

func (fs *FS) open(name string, rw bool) (vfs.File, error) {
	p, err := absPath(name)
	if err != nil {
		return nil, err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkOn("open", name); err != nil {
		return nil, err
	}
	var h vfs.File
	if rw {
		h, err = fs.inner.OpenRW(name)
	} else {
		h, err = fs.inner.Open(name)
	}
	if err != nil {
		return nil, err
	}
	_, _, e := fs.lookup(p)
	n, ok := e.(*fileNode)
	if !ok {
		h.Close()
		return nil, &os.PathError{Op: "open", Path: name, Err: ErrNotFile}
	}
	return fs.wrap(h, n, name, rw), nil
}

// OpenDirect implements vfs.DirectOpener: another read-write handle of the
// existing file name, sharing the model with every other handle of the
// file (writes through either are tracked alike, a sync through either
// covers both, a power cut kills both), that enforces O_DIRECT's alignment
// rules on its reads, its writes and the writes backends issue on its
// descriptor (see CheckWrite). Fd is an O_DIRECT descriptor when the inner
// file system implements vfs.DirectOpener and accepts O_DIRECT for the
// file; otherwise (tmpfs on older kernels, a test wrapper) it is an
// ordinary one and only the model enforces the rules, so that fault tests
// of direct I/O run on any file system.
func (fs *FS) OpenDirect(name string) (vfs.File, error) {
	p, err := absPath(name)
	if err != nil {
		return nil, err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkOn("open", name); err != nil {
		return nil, err
	}
	h, err := fs.inner.OpenRW(name)
	if err != nil {
		return nil, err
	}
	_, _, e := fs.lookup(p)
	n, ok := e.(*fileNode)
	if !ok {
		h.Close()
		return nil, &os.PathError{Op: "open", Path: name, Err: ErrNotFile}
	}
	var dio vfs.File
	if d, ok := fs.inner.(vfs.DirectOpener); ok {
		dio, err = d.OpenDirect(name)
		if errors.Is(err, vfs.ErrDirectUnsupported) {
			dio, err = nil, nil // emulated: the model enforces the rules
		}
		if err != nil {
			h.Close()
			return nil, err
		}
	}
	f := fs.wrap(h, n, name, true)
	f.direct, f.dio = true, dio
	return f, nil
}

// Remove implements vfs.FS. The removed file's durable content is kept
// until the removal is durable.
func (fs *FS) Remove(name string) error {
	return fs.remove("remove", name, fs.inner.Remove)
}

// RemoveAll implements vfs.FS. Everything removed is kept in the model
// until the removal is durable, so a power cut can bring it back.
func (fs *FS) RemoveAll(dir string) error {
	return fs.remove("removeall", dir, fs.inner.RemoveAll)
}

func (fs *FS) remove(op, name string, do func(string) error) error {
	p, err := absPath(name)
	if err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.admit(op, name); err != nil {
		return err
	}
	fs.stats.Removes++
	parent, base, e := fs.lookup(p)
	if e == fs.root {
		return &os.PathError{Op: op, Path: name, Err: syscall.EBUSY}
	}
	// The content of what is about to go must be in memory first.
	switch e := e.(type) {
	case *fileNode:
		if err := fs.ensureLoaded(e, nil); err != nil {
			return err
		}
	case *dirNode:
		if err := fs.discoverTree(e); err != nil {
			return err
		}
	}
	if err := do(name); err != nil {
		return err
	}
	if e != nil {
		parent.markChanged(base, e)
		delete(parent.entries, base)
		fs.detach(e)
	}
	return nil
}

// Rename implements vfs.FS for files; renaming a directory fails with
// ErrDirRename.
func (fs *FS) Rename(oldname, newname string) error {
	po, err := absPath(oldname)
	if err != nil {
		return err
	}
	pn, err := absPath(newname)
	if err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.admit("rename", oldname); err != nil {
		return err
	}
	fs.stats.Renames++
	dOld, bOld, e := fs.lookup(po)
	dNew, bNew, t := fs.lookup(pn)
	if _, ok := e.(*dirNode); ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: ErrDirRename}
	}
	if tf, ok := t.(*fileNode); ok && t != e {
		if err := fs.ensureLoaded(tf, nil); err != nil {
			return err
		}
	}
	if err := fs.inner.Rename(oldname, newname); err != nil {
		return err
	}
	f, ok := e.(*fileNode)
	if !ok || e == t || dNew == nil {
		return nil
	}
	dOld.markChanged(bOld, e)
	dNew.markChanged(bNew, t)
	delete(dOld.entries, bOld)
	if t != nil {
		fs.detach(t)
	}
	dNew.entries[bNew] = f
	f.path = pn
	return nil
}

// MkdirAll implements vfs.FS.
func (fs *FS) MkdirAll(dir string) error {
	p, err := absPath(dir)
	if err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.admit("mkdirall", dir); err != nil {
		return err
	}
	fs.stats.Mkdirs++
	d := fs.root
	comps := splitPath(p)
	missing := len(comps)
	for i, c := range comps {
		sub, ok := fs.child(d, c).(*dirNode)
		if !ok {
			missing = i
			break
		}
		d = sub
	}
	if err := fs.inner.MkdirAll(dir); err != nil {
		return err
	}
	for _, c := range comps[missing:] {
		nd := &dirNode{path: filepath.Join(d.path, c), entries: make(map[string]node)}
		d.markChanged(c, nil)
		d.entries[c] = nd
		d = nd
	}
	return nil
}

// SyncDir implements vfs.FS: the directory's entries become durable.
func (fs *FS) SyncDir(dir string) error {
	p, err := absPath(dir)
	if err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.admit("syncdir", dir); err != nil {
		return err
	}
	fs.stats.SyncDirs++
	if fs.syncDirFaults.hit(fs.rng, dir) {
		fs.stats.InjectedSyncDirErrors++
		return injected("fsync", dir, fs.syncDirFaults.errno())
	}
	if err := fs.inner.SyncDir(dir); err != nil {
		return err
	}
	if d := fs.lookupDir(p); d != nil {
		d.pending = nil
	}
	return nil
}

// ReadDir implements vfs.FS.
func (fs *FS) ReadDir(dir string) ([]string, error) {
	// Listing changes no model state: the lock covers the power check only.
	fs.mu.Lock()
	err := fs.checkOn("readdir", dir)
	fs.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return fs.inner.ReadDir(dir)
}

// Stat implements vfs.FS.
func (fs *FS) Stat(name string) (os.FileInfo, error) {
	fs.mu.Lock()
	err := fs.checkOn("stat", name)
	fs.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return fs.inner.Stat(name)
}

// Stats returns the counters.
func (fs *FS) Stats() Stats {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	s := fs.stats
	s.SpaceUsed = fs.used
	return s
}
