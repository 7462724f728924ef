// Package vfs is the one door through which the storage engine touches the
// file system, so that tests can put a fault-injecting file system in its
// place: one that cuts power (forgets everything not fsynced), tears file
// tails, flips bits, runs out of space or fails fsync.
//
// Writes of the group-commit path do not go through File methods: an I/O
// backend (io_uring or pwritev2) writes to File.Fd directly. Backends
// therefore report what they do through the optional Observer interface,
// and ask it first, so that a fault file sees and can fail every write and
// every sync whichever backend issued it.
package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// FS is a file system. Names are slash-separated paths as os uses them.
// Implementations are safe for concurrent use.
type FS interface {
	// Create creates a new file for reading and writing; it fails if the
	// file exists. The new directory entry is durable only after SyncDir
	// of its parent.
	Create(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// OpenRW opens an existing file for reading and writing (recovery
	// truncates and appends with it).
	OpenRW(name string) (File, error)
	// Remove deletes a file; durable after SyncDir of its parent.
	Remove(name string) error
	// Rename renames a file, replacing newname if it exists; durable after
	// SyncDir of both parents.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and its missing parents. Each created
	// directory is durable after SyncDir of its parent.
	MkdirAll(dir string) error
	// RemoveAll deletes a directory tree; durable after SyncDir of its
	// parent.
	RemoveAll(dir string) error
	// SyncDir makes the entries of dir (creations, renames, removals)
	// durable.
	SyncDir(dir string) error
	// ReadDir lists the names in dir, sorted.
	ReadDir(dir string) ([]string, error)
	// Stat describes a file or directory.
	Stat(name string) (os.FileInfo, error)
}

// File is an open file.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's data and size durable (fdatasync).
	Sync() error
	// Truncate changes the file's size; durable after Sync.
	Truncate(size int64) error
	// Preallocate reserves disk blocks for [off, off+n) without changing
	// the file size (fallocate with FALLOC_FL_KEEP_SIZE), where the file
	// system supports it; a file system that does not returns nil.
	Preallocate(off, n int64) error
	// Size returns the current size of the file.
	Size() (int64, error)
	// Name returns the name the file was opened with.
	Name() string
	// Fd returns the OS file descriptor, for backends, sendfile and
	// splice. It stays valid until Close.
	Fd() uintptr
}

// Observer is implemented by files that must see writes and syncs issued
// on their descriptor by an I/O backend. A backend calls, for each request:
// BeforeWrite before it submits a write (a non-nil error fails the request
// without writing; n may be cut short to simulate a partial write), then
// AfterWrite with what the kernel reported; BeforeSync and AfterSync around
// an fdatasync the same way. The OS file system's files do not implement it.
//
// AfterWrite reports bytes that reached the file: one BeforeWrite may be
// followed by several AfterWrite calls (a short write finished in pieces)
// or by none (nothing written). AfterSync follows a BeforeSync that
// returned nil when, and only when, the fdatasync succeeded; a fault file
// system treats the sync as in flight until then.
type Observer interface {
	// BeforeWrite is told that n bytes are about to be written at off. It
	// returns how many of them may be written (at most n) and an error to
	// report after those were written; (n, nil) lets the write through.
	BeforeWrite(off int64, n int) (allowed int, err error)
	// AfterWrite is told that n bytes were written at off.
	AfterWrite(off int64, n int)
	// BeforeSync may fail an fdatasync before it is issued.
	BeforeSync() error
	// AfterSync is told that an fdatasync succeeded.
	AfterSync()
}

// DirectAlign is the alignment this module uses for O_DIRECT I/O: the file
// offset, the length and the memory address of every direct read or write
// are multiples of it. 4096 is at least the logical block size of the
// disks and file systems the engine runs on; OS().OpenDirect refuses a file
// whose file system asks for more.
const DirectAlign = 4096

// ErrDirectUnsupported reports a file system or file that cannot be opened
// for O_DIRECT I/O (for example tmpfs on kernels before 6.6, which fail the
// open with EINVAL, or an FS that does not implement DirectOpener).
var ErrDirectUnsupported = errors.New("vfs: O_DIRECT not supported")

// DirectOpener is implemented by file systems that can open an existing
// file a second time for O_DIRECT I/O. The returned File is another handle
// of the same file: what it writes is what the file's other handles read,
// and a Sync through any of them covers it. Reads and writes through it
// must be aligned to DirectAlign (offset, length and buffer address); the
// kernel fails them with EINVAL otherwise. Use it for writes only and keep
// an ordinary handle for reads, sendfile, Truncate and Preallocate.
type DirectOpener interface {
	OpenDirect(name string) (File, error)
}

// OpenDirect opens name on fsys for O_DIRECT I/O, or fails with an error
// wrapping ErrDirectUnsupported when fsys does not implement DirectOpener.
func OpenDirect(fsys FS, name string) (File, error) {
	d, ok := fsys.(DirectOpener)
	if !ok {
		return nil, &os.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: %T has no OpenDirect", ErrDirectUnsupported, fsys)}
	}
	return d.OpenDirect(name)
}

// WriteChecker is implemented by files whose writes must obey rules that
// BeforeWrite's offset and length cannot express, such as the alignment of
// the memory an O_DIRECT write comes from. A backend calls CheckWrite with
// a write's gather list before BeforeWrite; a non-nil error fails the
// write: nothing is written and BeforeWrite is not called.
type WriteChecker interface {
	CheckWrite(off int64, bufs [][]byte) error
}
