package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func mustCreate(t *testing.T, fsys FS, name string, content []byte) File {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	if len(content) > 0 {
		if n, err := f.WriteAt(content, 0); err != nil || n != len(content) {
			t.Fatalf("WriteAt(%s): %d, %v", name, n, err)
		}
	}
	return f
}

func readAll(t *testing.T, fsys FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, size)
	if n, err := f.ReadAt(buf, 0); err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
		t.Fatalf("ReadAt(%s): %d, %v", name, n, err)
	}
	return buf
}

func TestOSCreateWriteReadSync(t *testing.T) {
	fsys := OS()
	dir := t.TempDir()
	name := filepath.Join(dir, "seg")
	f := mustCreate(t, fsys, name, []byte("hello, world"))
	if f.Name() != name {
		t.Errorf("Name = %q, want %q", f.Name(), name)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if size, err := f.Size(); err != nil || size != 12 {
		t.Fatalf("Size = %d, %v; want 12", size, err)
	}
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, fsys, name); string(got) != "hello" {
		t.Fatalf("content = %q, want hello", got)
	}

	if _, err := fsys.Create(name); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create of an existing file: %v, want ErrExist", err)
	}
	if _, err := fsys.Open(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing file: %v, want ErrNotExist", err)
	}

	ro, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.WriteAt([]byte("x"), 0); err == nil {
		t.Error("WriteAt on a read-only file succeeded")
	}
	ro.Close()

	rw, err := fsys.OpenRW(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	// A backend writes to the descriptor directly.
	if n, err := unix.Pwrite(int(rw.Fd()), []byte("HE"), 0); err != nil || n != 2 {
		t.Fatalf("pwrite on Fd: %d, %v", n, err)
	}
	if got := readAll(t, fsys, name); string(got) != "HEllo" {
		t.Fatalf("content after pwrite = %q", got)
	}
}

func TestOSRenameRemoveReadDir(t *testing.T) {
	fsys := OS()
	dir := t.TempDir()
	for _, n := range []string{"c", "a", "b"} {
		mustCreate(t, fsys, filepath.Join(dir, n), []byte(n)).Close()
	}
	names, err := fsys.ReadDir(dir)
	if err != nil || !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Fatalf("ReadDir = %v, %v; want [a b c]", names, err)
	}
	// Rename replaces the target.
	if err := fsys.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "c")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, fsys, filepath.Join(dir, "c")); string(got) != "a" {
		t.Fatalf("renamed content = %q, want a", got)
	}
	if err := fsys.Remove(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Remove(filepath.Join(dir, "b")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second Remove: %v, want ErrNotExist", err)
	}
	names, _ = fsys.ReadDir(dir)
	if !slices.Equal(names, []string{"c"}) {
		t.Fatalf("ReadDir = %v, want [c]", names)
	}

	sub := filepath.Join(dir, "x", "y")
	if err := fsys.MkdirAll(sub); err != nil {
		t.Fatal(err)
	}
	if st, err := fsys.Stat(sub); err != nil || !st.IsDir() || st.Mode().Perm() != 0o755&^umask(t) {
		t.Fatalf("Stat(%s) = %v, %v", sub, st, err)
	}
	if err := fsys.SyncDir(sub); err != nil {
		t.Fatalf("SyncDir: %v", err)
	}
	if err := fsys.SyncDir(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDir of a missing directory: %v", err)
	}
	mustCreate(t, fsys, filepath.Join(sub, "f"), nil).Close()
	if err := fsys.RemoveAll(filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat(sub); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat after RemoveAll: %v", err)
	}
	if _, err := fsys.ReadDir(sub); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadDir of a missing directory: %v", err)
	}
}

func umask(t *testing.T) fs.FileMode {
	t.Helper()
	old := unix.Umask(0)
	unix.Umask(old)
	return fs.FileMode(old)
}

func TestOSPreallocateKeepsSize(t *testing.T) {
	fsys := OS()
	name := filepath.Join(t.TempDir(), "seg")
	f := mustCreate(t, fsys, name, []byte("abc"))
	defer f.Close()
	if err := f.Preallocate(0, 1<<20); err != nil {
		t.Fatalf("Preallocate: %v", err)
	}
	if err := f.Preallocate(0, 0); err != nil {
		t.Fatalf("Preallocate of nothing: %v", err)
	}
	if size, err := f.Size(); err != nil || size != 3 {
		t.Fatalf("Size after Preallocate = %d, %v; want 3", size, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 3 {
		t.Fatalf("st_size = %d, want 3", st.Size)
	}
	if got := readAll(t, fsys, name); !bytes.Equal(got, []byte("abc")) {
		t.Fatalf("content = %q", got)
	}
}

func TestOSClosedFile(t *testing.T) {
	f := mustCreate(t, OS(), filepath.Join(t.TempDir(), "f"), []byte("x"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Sync after Close: %v, want ErrClosed", err)
	}
	if _, err := f.Size(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Size after Close: %v, want ErrClosed", err)
	}
}

// alignedBuf returns n bytes of heap memory starting at a multiple of
// DirectAlign.
func alignedBuf(n int) []byte {
	raw := make([]byte, n+DirectAlign)
	addr := reflect.ValueOf(&raw[0]).Pointer()
	skip := int((DirectAlign - addr%DirectAlign) % DirectAlign)
	return raw[skip : skip+n : skip+n]
}

func TestOSOpenDirect(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "seg")
	f := mustCreate(t, OS(), name, []byte("buffered"))
	defer f.Close()
	d, err := OpenDirect(OS(), name)
	if errors.Is(err, ErrDirectUnsupported) {
		t.Skipf("%s refuses O_DIRECT: %v", dir, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p := alignedBuf(2 * DirectAlign)
	for i := range p {
		p[i] = byte(i % 251)
	}
	if n, err := d.WriteAt(p, DirectAlign); err != nil || n != len(p) {
		t.Fatalf("aligned direct write: %d, %v", n, err)
	}
	got := make([]byte, len(p))
	if _, err := f.ReadAt(got, DirectAlign); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("buffered read after a direct write: %v", err)
	}
	// File systems that state an alignment (statx) refuse a misaligned
	// write; tmpfs since Linux 6.6 takes O_DIRECT without any rule.
	var st unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, name, 0, unix.STATX_DIOALIGN, &st) == nil && st.Mask&unix.STATX_DIOALIGN != 0 && st.Dio_offset_align > 1 {
		if _, err := d.WriteAt(p[:DirectAlign], 1); !errors.Is(err, unix.EINVAL) {
			t.Fatalf("misaligned direct write: %v, want EINVAL", err)
		}
	}
	if _, err := OpenDirect(OS(), filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenDirect of a missing file: %v", err)
	}
}

// plainFS hides OpenDirect.
type plainFS struct{ FS }

func TestOpenDirectUnsupported(t *testing.T) {
	if _, err := OpenDirect(plainFS{OS()}, "x"); !errors.Is(err, ErrDirectUnsupported) {
		t.Fatalf("OpenDirect on an FS without it: %v", err)
	}
}
