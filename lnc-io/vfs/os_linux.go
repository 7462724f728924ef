package vfs

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// OS returns the real file system of the machine. Its files are *os.File
// underneath; Sync is fdatasync and Preallocate is fallocate with
// FALLOC_FL_KEEP_SIZE. The value is stateless and safe for concurrent use.
func OS() FS { return osFS{} }

// Default is the real file system, the same value OS returns. It is a
// variable only so that call sites can write vfs.Default; never assign to
// it (tests that want faults pass a fault file system explicitly).
var Default = OS()

// Permissions of what the OS file system creates.
const (
	filePerm = 0o644
	dirPerm  = 0o755
)

// osFS is the real file system; it has no state.
type osFS struct{}

var (
	_ FS           = osFS{}
	_ DirectOpener = osFS{}
)

func (osFS) Create(name string) (File, error) {
	// os.OpenFile adds O_CLOEXEC by itself; it is spelled out because the
	// descriptor is handed to I/O backends and must never leak into a child.
	return openOS(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, filePerm)
}

func (osFS) Open(name string) (File, error) {
	return openOS(name, os.O_RDONLY|unix.O_CLOEXEC, 0)
}

func (osFS) OpenRW(name string) (File, error) {
	return openOS(name, os.O_RDWR|unix.O_CLOEXEC, 0)
}

// OpenDirect implements DirectOpener: the file opened again with
// O_DIRECT|O_RDWR. A file system that refuses O_DIRECT (EINVAL at open), or
// that reports through statx a required alignment above DirectAlign, fails
// with an error wrapping ErrDirectUnsupported.
func (osFS) OpenDirect(name string) (File, error) {
	f, err := openOS(name, os.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EINVAL) {
		return nil, &os.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: %w", ErrDirectUnsupported, unix.EINVAL)}
	}
	if err != nil {
		return nil, err
	}
	if err := checkDirectAlign(f.(*osFile)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkDirectAlign asks the kernel (statx STATX_DIOALIGN, Linux 6.1) which
// alignment O_DIRECT needs on the file and refuses the file if that is
// more than DirectAlign. Kernels and file systems that do not answer are
// trusted: 4096 covers every common disk.
func checkDirectAlign(o *osFile) error {
	var st unix.Statx_t
	err := o.control("statx", func(fd int) error {
		return unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &st)
	})
	if err != nil || st.Mask&unix.STATX_DIOALIGN == 0 {
		return nil // no answer: nothing to check against
	}
	if st.Dio_offset_align == 0 {
		// The file system says it does not support O_DIRECT on this file
		// even though the open succeeded.
		return &os.PathError{Op: "open", Path: o.name, Err: fmt.Errorf("%w: statx reports no direct I/O support", ErrDirectUnsupported)}
	}
	if st.Dio_offset_align > DirectAlign || st.Dio_mem_align > DirectAlign {
		return &os.PathError{Op: "open", Path: o.name, Err: fmt.Errorf("%w: the file system needs %d-byte offsets and %d-byte memory alignment, more than %d",
			ErrDirectUnsupported, st.Dio_offset_align, st.Dio_mem_align, DirectAlign)}
	}
	return nil
}

func (osFS) Remove(name string) error { return os.Remove(name) }

func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

func (osFS) MkdirAll(dir string) error { return os.MkdirAll(dir, dirPerm) }

func (osFS) RemoveAll(dir string) error { return os.RemoveAll(dir) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	// os.File.Sync is fsync(2) on the directory descriptor, retried on
	// EINTR; it is what makes the directory's entries durable.
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) ReadDir(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

// osFile is an open file of the real file system.
type osFile struct {
	f    *os.File
	fd   uintptr
	name string
}

var _ File = (*osFile)(nil)

func openOS(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	// Fd is read once here: os.File.Fd may switch the descriptor to
	// blocking mode, which is what regular files are in anyway, and the
	// number stays valid for as long as f is open (f is kept, so no
	// finalizer can close it early).
	return &osFile{f: f, fd: f.Fd(), name: name}, nil
}

func (o *osFile) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, off) }
func (o *osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o *osFile) Close() error                             { return o.f.Close() }
func (o *osFile) Truncate(size int64) error                { return o.f.Truncate(size) }
func (o *osFile) Name() string                             { return o.name }
func (o *osFile) Fd() uintptr                              { return o.fd }

// control runs fn on the descriptor. os.File's RawConn holds a reference to
// the descriptor for the duration of fn, so a concurrent Close cannot let
// the number be reused under the system call.
func (o *osFile) control(op string, fn func(fd int) error) error {
	rc, err := o.f.SyscallConn()
	if err != nil {
		return &os.PathError{Op: op, Path: o.name, Err: err}
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		// Control fails only when the file is closed (or closing).
		return &os.PathError{Op: op, Path: o.name, Err: os.ErrClosed}
	}
	if opErr != nil {
		return &os.PathError{Op: op, Path: o.name, Err: opErr}
	}
	return nil
}

func (o *osFile) Sync() error {
	return o.control("fdatasync", func(fd int) error {
		return retryEINTR(func() error { return unix.Fdatasync(fd) })
	})
}

func (o *osFile) Preallocate(off, n int64) error {
	if n <= 0 {
		return nil
	}
	err := o.control("fallocate", func(fd int) error {
		return retryEINTR(func() error { return unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, off, n) })
	})
	// File systems without fallocate (some FUSE or network ones, tmpfs on
	// old kernels) say so with EOPNOTSUPP or ENOSYS: preallocation is only
	// an optimisation, so that is not an error.
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return nil
	}
	return err
}

func (o *osFile) Size() (int64, error) {
	var st unix.Stat_t
	if err := o.control("fstat", func(fd int) error { return unix.Fstat(fd, &st) }); err != nil {
		return 0, err
	}
	return st.Size, nil
}

// retryEINTR repeats a system call that a signal interrupted.
func retryEINTR(call func() error) error {
	for {
		if err := call(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
