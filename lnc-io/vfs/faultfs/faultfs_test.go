package faultfs_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
)

// TestMain fails the run if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			os.Stderr.Write(buf)
			os.Stderr.WriteString("\nfaultfs tests leaked goroutines\n")
			code = 1
		}
	}
	os.Exit(code)
}

func newFS(t *testing.T) (*faultfs.FS, string) {
	t.Helper()
	return faultfs.New(vfs.OS(), 1), t.TempDir()
}

// nosyncFS is the OS file system with syncs that do nothing. The heavier
// tests check the model, not the kernel, and thousands of real fsyncs on a
// busy disk would make them slow.
type nosyncFS struct{ vfs.FS }

func (nosyncFS) SyncDir(dir string) error {
	_, err := os.Stat(dir)
	return err
}

func (n nosyncFS) Create(name string) (vfs.File, error) { return nosync(n.FS.Create(name)) }
func (n nosyncFS) Open(name string) (vfs.File, error)   { return nosync(n.FS.Open(name)) }
func (n nosyncFS) OpenRW(name string) (vfs.File, error) { return nosync(n.FS.OpenRW(name)) }

func nosync(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return nosyncFile{f}, nil
}

type nosyncFile struct{ vfs.File }

func (nosyncFile) Sync() error { return nil }

// fastOS is the inner file system of the heavier tests.
func fastOS() vfs.FS { return nosyncFS{vfs.OS()} }

func mustCreate(t *testing.T, fsys vfs.FS, name string) vfs.File {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	return f
}

func mustWrite(t *testing.T, f vfs.File, off int64, s string) {
	t.Helper()
	if n, err := f.WriteAt([]byte(s), off); err != nil || n != len(s) {
		t.Fatalf("WriteAt(%s, %d): %d, %v", f.Name(), off, n, err)
	}
}

func mustSync(t *testing.T, f vfs.File) {
	t.Helper()
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync(%s): %v", f.Name(), err)
	}
}

func mustSyncDir(t *testing.T, fsys vfs.FS, dir string) {
	t.Helper()
	if err := fsys.SyncDir(dir); err != nil {
		t.Fatalf("SyncDir(%s): %v", dir, err)
	}
}

func cut(t *testing.T, fsys *faultfs.FS) {
	t.Helper()
	if err := fsys.CutPower(); err != nil {
		t.Fatalf("CutPower: %v", err)
	}
}

// onDisk reads a file straight from the real file system; ok is false if
// it does not exist.
func onDisk(t *testing.T, name string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func wantDisk(t *testing.T, fsys *faultfs.FS, name, want string) {
	t.Helper()
	got, ok := onDisk(t, name)
	if !ok {
		t.Fatalf("%s does not exist, want %q\n%v", name, want, fsys.LastCut())
	}
	if got != want {
		t.Fatalf("%s = %q, want %q\n%v", name, got, want, fsys.LastCut())
	}
}

func wantAbsent(t *testing.T, fsys *faultfs.FS, name string) {
	t.Helper()
	if got, ok := onDisk(t, name); ok {
		t.Fatalf("%s exists (%q), want absent\n%v", name, got, fsys.LastCut())
	}
}

func TestPowerCutDropsUnsyncedBytes(t *testing.T) {
	fsys, dir := newFS(t)
	name := filepath.Join(dir, "seg")
	f := mustCreate(t, fsys, name)
	mustSyncDir(t, fsys, dir)
	mustWrite(t, f, 0, "hello")
	mustSync(t, f)
	mustWrite(t, f, 5, ", world")
	buf := make([]byte, 12)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "hello, world" {
		t.Fatalf("live read = %q, %v", buf, err)
	}
	cut(t, fsys)
	wantDisk(t, fsys, name, "hello")

	// The old process is dead.
	if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, faultfs.ErrPoweredOff) || !errors.Is(err, faultfs.ErrInjected) {
		t.Errorf("WriteAt after the cut: %v, want ErrPoweredOff", err)
	}
	if _, err := f.ReadAt(buf, 0); !errors.Is(err, faultfs.ErrPoweredOff) {
		t.Errorf("ReadAt after the cut: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, faultfs.ErrPoweredOff) {
		t.Errorf("Sync after the cut: %v", err)
	}
	if err := f.Truncate(0); !errors.Is(err, faultfs.ErrPoweredOff) {
		t.Errorf("Truncate after the cut: %v", err)
	}
	if _, err := f.Size(); !errors.Is(err, faultfs.ErrPoweredOff) {
		t.Errorf("Size after the cut: %v", err)
	}
	if err := f.Close(); !errors.Is(err, faultfs.ErrPoweredOff) {
		t.Errorf("Close after the cut: %v", err)
	}
	r := fsys.LastCut()
	if r.Seq != 1 || len(r.Files) != 1 || r.Files[0].SizeBefore != 12 || r.Files[0].SizeAfter != 5 ||
		!slices.Equal(r.Files[0].Unsynced, [][2]int64{{5, 12}}) {
		t.Errorf("LastCut = %+v", r)
	}
	if !strings.Contains(r.String(), "size 12 -> 5") {
		t.Errorf("report text: %s", r)
	}

	// The rebooted machine works on the durable state.
	g, err := fsys.OpenRW(name)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	mustWrite(t, g, 5, "!")
	mustSync(t, g)
	cut(t, fsys)
	wantDisk(t, fsys, name, "hello!")
	if s := fsys.Stats(); s.PowerCuts != 2 {
		t.Errorf("PowerCuts = %d", s.PowerCuts)
	}
}

func TestNeverSyncedFile(t *testing.T) {
	fsys, dir := newFS(t)
	empty := filepath.Join(dir, "empty")
	g := mustCreate(t, fsys, empty)
	mustSyncDir(t, fsys, dir)
	mustWrite(t, g, 0, "data") // the entry is durable, the data is not

	gone := filepath.Join(dir, "gone")
	f := mustCreate(t, fsys, gone)
	mustWrite(t, f, 0, "data")
	mustSync(t, f) // the file is synced, its directory entry is not
	cut(t, fsys)
	wantAbsent(t, fsys, gone)
	wantDisk(t, fsys, empty, "")
}

func TestRenameDurability(t *testing.T) {
	for _, synced := range []bool{false, true} {
		fsys, dir := newFS(t)
		tmp, final := filepath.Join(dir, "tmp"), filepath.Join(dir, "final")
		f := mustCreate(t, fsys, tmp)
		mustWrite(t, f, 0, "v1")
		mustSync(t, f)
		mustSyncDir(t, fsys, dir)
		if err := fsys.Rename(tmp, final); err != nil {
			t.Fatal(err)
		}
		// The image belongs to the file, not to the name.
		mustWrite(t, f, 0, "v2")
		mustSync(t, f)
		if synced {
			mustSyncDir(t, fsys, dir)
		}
		cut(t, fsys)
		if synced {
			wantAbsent(t, fsys, tmp)
			wantDisk(t, fsys, final, "v2")
		} else {
			wantDisk(t, fsys, tmp, "v2")
			wantAbsent(t, fsys, final)
		}
	}
}

func TestRenameOverExistingUndone(t *testing.T) {
	fsys, dir := newFS(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, n := range []string{a, b} {
		f := mustCreate(t, fsys, n)
		mustWrite(t, f, 0, filepath.Base(n))
		mustSync(t, f)
		f.Close()
	}
	mustSyncDir(t, fsys, dir)
	if err := fsys.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	wantDisk(t, fsys, b, "a")
	cut(t, fsys)
	wantDisk(t, fsys, a, "a")
	wantDisk(t, fsys, b, "b")
}

func TestRenameBetweenDirectories(t *testing.T) {
	fsys, dir := newFS(t)
	d1, d2 := filepath.Join(dir, "d1"), filepath.Join(dir, "d2")
	for _, d := range []string{d1, d2} {
		if err := fsys.MkdirAll(d); err != nil {
			t.Fatal(err)
		}
	}
	mustSyncDir(t, fsys, dir)
	f := mustCreate(t, fsys, filepath.Join(d1, "x"))
	mustWrite(t, f, 0, "x")
	mustSync(t, f)
	mustSyncDir(t, fsys, d1)
	if err := fsys.Rename(filepath.Join(d1, "x"), filepath.Join(d2, "x")); err != nil {
		t.Fatal(err)
	}
	mustSyncDir(t, fsys, d2) // only the new directory
	cut(t, fsys)
	wantDisk(t, fsys, filepath.Join(d1, "x"), "x")
	wantDisk(t, fsys, filepath.Join(d2, "x"), "x")

	// The two names are independent files after the cut.
	g, err := fsys.OpenRW(filepath.Join(d2, "x"))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, g, 0, "y")
	mustSync(t, g)
	g.Close()
	cut(t, fsys)
	wantDisk(t, fsys, filepath.Join(d1, "x"), "x")
	wantDisk(t, fsys, filepath.Join(d2, "x"), "y")
}

func TestRemoveUndoneUnlessSynced(t *testing.T) {
	for _, synced := range []bool{false, true} {
		fsys, dir := newFS(t)
		name := filepath.Join(dir, "old")
		f := mustCreate(t, fsys, name)
		mustWrite(t, f, 0, "keep me")
		mustSync(t, f)
		mustSyncDir(t, fsys, dir)
		mustWrite(t, f, 0, "KEEP") // not synced: never durable
		if err := fsys.Remove(name); err != nil {
			t.Fatal(err)
		}
		if synced {
			mustSyncDir(t, fsys, dir)
		}
		cut(t, fsys)
		if synced {
			wantAbsent(t, fsys, name)
		} else {
			wantDisk(t, fsys, name, "keep me")
		}
	}
}

func TestRemoveAllUndone(t *testing.T) {
	fsys, dir := newFS(t)
	topic := filepath.Join(dir, "topic")
	sub := filepath.Join(topic, "sub")
	if err := fsys.MkdirAll(sub); err != nil {
		t.Fatal(err)
	}
	mustSyncDir(t, fsys, dir)
	mustSyncDir(t, fsys, topic)
	for i, n := range []string{filepath.Join(topic, "a"), filepath.Join(sub, "b")} {
		f := mustCreate(t, fsys, n)
		mustWrite(t, f, 0, strings.Repeat("z", i+1))
		mustSync(t, f)
		f.Close()
	}
	mustSyncDir(t, fsys, topic)
	mustSyncDir(t, fsys, sub)
	if err := fsys.RemoveAll(topic); err != nil {
		t.Fatal(err)
	}
	// A new directory of the same name, not durable either.
	if err := fsys.MkdirAll(topic); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, fsys, filepath.Join(topic, "new")).Close()
	cut(t, fsys)
	wantDisk(t, fsys, filepath.Join(topic, "a"), "z")
	wantDisk(t, fsys, filepath.Join(sub, "b"), "zz")
	wantAbsent(t, fsys, filepath.Join(topic, "new"))

	if err := fsys.RemoveAll(topic); err != nil {
		t.Fatal(err)
	}
	mustSyncDir(t, fsys, dir)
	cut(t, fsys)
	wantAbsent(t, fsys, topic)
}

func TestMkdirAllDurability(t *testing.T) {
	fsys, dir := newFS(t)
	x := filepath.Join(dir, "x")
	y := filepath.Join(x, "y")
	if err := fsys.MkdirAll(y); err != nil {
		t.Fatal(err)
	}
	f := mustCreate(t, fsys, filepath.Join(y, "f"))
	mustWrite(t, f, 0, "f")
	mustSync(t, f)
	mustSyncDir(t, fsys, y)
	mustSyncDir(t, fsys, x)
	cut(t, fsys) // dir itself never synced: x is gone with everything in it
	wantAbsent(t, fsys, x)

	if err := fsys.MkdirAll(y); err != nil {
		t.Fatal(err)
	}
	f = mustCreate(t, fsys, filepath.Join(y, "f"))
	mustWrite(t, f, 0, "f")
	mustSync(t, f)
	for _, d := range []string{y, x, dir} {
		mustSyncDir(t, fsys, d)
	}
	cut(t, fsys)
	wantDisk(t, fsys, filepath.Join(y, "f"), "f")
}

func TestTruncateUndoneUnlessSynced(t *testing.T) {
	fsys, dir := newFS(t)
	name := filepath.Join(dir, "f")
	f := mustCreate(t, fsys, name)
	mustSyncDir(t, fsys, dir)
	mustWrite(t, f, 0, "0123456789")
	mustSync(t, f)
	if err := f.Truncate(3); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(6); err != nil { // zeros in 3..6 live
		t.Fatal(err)
	}
	cut(t, fsys)
	wantDisk(t, fsys, name, "0123456789")

	g, err := fsys.OpenRW(name)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Truncate(3); err != nil {
		t.Fatal(err)
	}
	if err := g.Truncate(5); err != nil {
		t.Fatal(err)
	}
	mustSync(t, g)
	cut(t, fsys)
	wantDisk(t, fsys, name, "012\x00\x00")
}

// backend writes and syncs the way an I/O backend does: on the descriptor,
// reporting to the Observer.
type backend struct {
	t      *testing.T
	f      vfs.File
	o      vfs.Observer
	noSync bool // skip the real fdatasync (over fastOS)
}

func newBackend(t *testing.T, f vfs.File) backend {
	o, ok := f.(vfs.Observer)
	if !ok {
		t.Fatalf("%T does not implement vfs.Observer", f)
	}
	return backend{t: t, f: f, o: o}
}

func (b backend) write(off int64, s string) (int, error) {
	allowed, err := b.o.BeforeWrite(off, len(s))
	if allowed == 0 {
		return 0, err
	}
	n, werr := unix.Pwrite(int(b.f.Fd()), []byte(s[:allowed]), off)
	if n > 0 {
		b.o.AfterWrite(off, n)
	}
	if werr != nil {
		return n, werr
	}
	return n, err
}

func (b backend) sync() error {
	if err := b.o.BeforeSync(); err != nil {
		return err
	}
	if !b.noSync {
		if err := unix.Fdatasync(int(b.f.Fd())); err != nil {
			return err
		}
	}
	b.o.AfterSync()
	return nil
}

func TestObserverPathTrackedLikeWriteAt(t *testing.T) {
	fsys, dir := newFS(t)
	name := filepath.Join(dir, "seg")
	f := mustCreate(t, fsys, name)
	defer f.Close()
	mustSyncDir(t, fsys, dir)
	b := newBackend(t, f)
	if _, err := b.write(0, "durable"); err != nil {
		t.Fatal(err)
	}
	if err := b.sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.write(7, "-lost"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, 0, "D") // mixed with the File path
	wantDisk(t, fsys, name, "Durable-lost")
	cut(t, fsys)
	wantDisk(t, fsys, name, "durable")
	if _, err := b.write(0, "x"); !errors.Is(err, faultfs.ErrPoweredOff) {
		t.Fatalf("BeforeWrite after the cut: %v", err)
	}
	if err := b.sync(); !errors.Is(err, faultfs.ErrPoweredOff) {
		t.Fatalf("BeforeSync after the cut: %v", err)
	}
}

// A sync covers the writes admitted before its BeforeSync, not those
// admitted while it runs, even if the kernel's fdatasync wrote them.
func TestPipelinedSyncCoversEarlierWritesOnly(t *testing.T) {
	fsys, dir := newFS(t)
	name := filepath.Join(dir, "seg")
	f := mustCreate(t, fsys, name)
	defer f.Close()
	mustSyncDir(t, fsys, dir)
	b := newBackend(t, f)
	if _, err := b.write(0, "batch1"); err != nil {
		t.Fatal(err)
	}
	if err := b.o.BeforeSync(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.write(6, "batch2"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	b.o.AfterSync()
	cut(t, fsys)
	wantDisk(t, fsys, name, "batch1")
}

// Operations admitted before a cut may complete while the power is off; a
// sync that then reports success is durable.
func TestAdmittedSyncCompletesAfterPowerOff(t *testing.T) {
	fsys, dir := newFS(t)
	name := filepath.Join(dir, "seg")
	f := mustCreate(t, fsys, name)
	defer f.Close()
	mustSyncDir(t, fsys, dir)
	b := newBackend(t, f)
	if _, err := b.write(0, "acked"); err != nil {
		t.Fatal(err)
	}
	if err := b.o.BeforeSync(); err != nil {
		t.Fatal(err)
	}
	fsys.PowerOff()
	if _, err := fsys.Create(filepath.Join(dir, "other")); !errors.Is(err, faultfs.ErrPoweredOff) {
		t.Fatalf("Create while off: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		unix.Fdatasync(int(f.Fd()))
		b.o.AfterSync()
	}()
	if err := fsys.PowerOn(); err != nil { // waits for the admitted sync
		t.Fatal(err)
	}
	<-done
	wantDisk(t, fsys, name, "acked")
	if s := fsys.Stats(); s.AbandonedSyncs != 0 {
		t.Fatalf("AbandonedSyncs = %d", s.AbandonedSyncs)
	}
}

func TestCutPowerAfter(t *testing.T) {
	fsys, dir := newFS(t)
	name := filepath.Join(dir, "seg")
	f := mustCreate(t, fsys, name)
	mustSyncDir(t, fsys, dir)
	mustWrite(t, f, 0, "one")
	fsys.CutPowerAfter(2)
	mustSync(t, f) // operation 1
	if _, err := f.WriteAt([]byte("two"), 3); !errors.Is(err, faultfs.ErrPoweredOff) {
		t.Fatalf("operation 2: %v, want ErrPoweredOff", err)
	}
	if _, err := fsys.Open(name); !errors.Is(err, faultfs.ErrPoweredOff) {
		t.Fatalf("Open while off: %v", err)
	}
	if err := fsys.PowerOn(); err != nil {
		t.Fatal(err)
	}
	wantDisk(t, fsys, name, "one")
	if r := fsys.LastCut(); !strings.Contains(r.Cause, "write") {
		t.Errorf("cause = %q", r.Cause)
	}
	f.Close()

	// The random trigger is reproducible from the seed.
	a := faultfs.New(vfs.OS(), 42).CutPowerAfterRandom(1000)
	c := faultfs.New(vfs.OS(), 42).CutPowerAfterRandom(1000)
	if a != c || a < 1 || a > 1000 {
		t.Fatalf("CutPowerAfterRandom: %d and %d", a, c)
	}
}

func TestNoSpace(t *testing.T) {
	fsys, dir := newFS(t)
	fsys.SetSpaceLimit(10)
	a := mustCreate(t, fsys, filepath.Join(dir, "a"))
	defer a.Close()
	n, err := a.WriteAt([]byte("0123456789abcdef"), 0)
	if n != 10 || !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, faultfs.ErrInjected) {
		t.Fatalf("WriteAt past the limit: %d, %v; want 10, ENOSPC", n, err)
	}
	if n, err := a.WriteAt([]byte("x"), 10); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append when full: %d, %v", n, err)
	}
	mustWrite(t, a, 2, "OVER") // overwrites are free
	if err := a.Preallocate(0, 100); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Preallocate when full: %v", err)
	}
	b := newBackend(t, a)
	if allowed, err := b.o.BeforeWrite(8, 4); allowed != 2 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("BeforeWrite across the end: %d, %v; want 2, ENOSPC", allowed, err)
	} // the backend gives up on the request: no AfterWrite

	// Removing a file frees its space.
	fsys.SetSpaceLimit(14)
	c := mustCreate(t, fsys, filepath.Join(dir, "c"))
	defer c.Close()
	mustWrite(t, c, 0, "1234")
	if _, err := c.WriteAt([]byte("5"), 4); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past 14 bytes: %v", err)
	}
	if err := fsys.Remove(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, 4, "5678")
	if s := fsys.Stats(); s.SpaceUsed != 8 || s.InjectedNoSpace < 4 {
		t.Fatalf("stats = %+v", s)
	}

	fsys.SetSpaceLimit(8)
	if _, err := c.WriteAt([]byte("9"), 8); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write at the limit: %v", err)
	}
	fsys.FreeSpace()
	mustWrite(t, c, 8, strings.Repeat("9", 1000))
}

func TestSyncEIOMakesWritesNonDurable(t *testing.T) {
	fsys, dir := newFS(t)
	name := filepath.Join(dir, "seg")
	f := mustCreate(t, fsys, name)
	defer f.Close()
	mustSyncDir(t, fsys, dir)
	mustWrite(t, f, 0, "good")
	mustSync(t, f)
	mustWrite(t, f, 4, "-bad")
	fsys.FailSyncs(faultfs.Once())
	err := f.Sync()
	if !errors.Is(err, syscall.EIO) || !errors.Is(err, faultfs.ErrInjected) {
		t.Fatalf("Sync: %v, want injected EIO", err)
	}
	mustSync(t, f) // succeeds, but must not make "-bad" durable
	buf := make([]byte, 8)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "good-bad" {
		t.Fatalf("live read = %q, %v", buf, err)
	}
	mustWrite(t, f, 8, "+new")
	mustSync(t, f)
	cut(t, fsys)
	// The size became durable with the later sync; the lost bytes did not.
	wantDisk(t, fsys, name, "good\x00\x00\x00\x00+new")

	// Written again after the failure, they are durable.
	g, err := fsys.OpenRW(name)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	mustWrite(t, g, 4, "-bad")
	fsys.FailSyncs(faultfs.Once())
	if err := g.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatal(err)
	}
	mustWrite(t, g, 4, "-ok!")
	mustSync(t, g)
	cut(t, fsys)
	wantDisk(t, fsys, name, "good-ok!+new")
	if s := fsys.Stats(); s.InjectedSyncErrors != 2 {
		t.Fatalf("InjectedSyncErrors = %d", s.InjectedSyncErrors)
	}
}

func TestFaultSchedules(t *testing.T) {
	fsys, dir := newFS(t)
	f := mustCreate(t, fsys, filepath.Join(dir, "a"))
	defer f.Close()
	g := mustCreate(t, fsys, filepath.Join(dir, "b.idx"))
	defer g.Close()
	pattern := func(op func() error, n int) string {
		var b strings.Builder
		for range n {
			if err := op(); err == nil {
				b.WriteByte('.')
			} else if errors.Is(err, faultfs.ErrInjected) && errors.Is(err, syscall.EIO) {
				b.WriteByte('X')
			} else {
				t.Fatalf("unexpected error: %v", err)
			}
		}
		return b.String()
	}
	write := func() error { _, err := f.WriteAt([]byte("w"), 0); return err }
	cases := []struct {
		s    faultfs.Schedule
		want string
	}{
		{faultfs.Once(), "X....."},
		{faultfs.Times(2), "XX...."},
		{faultfs.Nth(3), "..X..."},
		{faultfs.From(4), "...XXX"},
		{faultfs.Always(), "XXXXXX"},
		{faultfs.Schedule{}, "......"},
	}
	for _, c := range cases {
		fsys.FailWrites(c.s)
		if got := pattern(write, 6); got != c.want {
			t.Errorf("schedule %+v: %s, want %s", c.s, got, c.want)
		}
	}
	fsys.FailWrites(faultfs.Schedule{})

	// Only filters by name: the .lnc file is neither failed nor counted.
	fsys.FailSyncs(faultfs.Nth(2).Only(func(n string) bool { return strings.HasSuffix(n, ".idx") }))
	if got := pattern(f.Sync, 3) + pattern(g.Sync, 3); got != "....X." {
		t.Errorf("filtered syncs: %s", got)
	}
	fsys.FailSyncDirs(faultfs.Once())
	if got := pattern(func() error { return fsys.SyncDir(dir) }, 2); got != "X." {
		t.Errorf("directory syncs: %s", got)
	}

	// Random schedules are reproducible from the seed.
	random := func(seed uint64) string {
		fsys := faultfs.New(vfs.OS(), seed)
		f := mustCreate(t, fsys, filepath.Join(t.TempDir(), "r"))
		defer f.Close()
		fsys.FailWrites(faultfs.Randomly(0.5))
		return pattern(func() error { _, err := f.WriteAt([]byte("r"), 0); return err }, 40)
	}
	r1, r2 := random(7), random(7)
	if r1 != r2 || !strings.Contains(r1, "X") || !strings.Contains(r1, ".") {
		t.Errorf("Randomly(0.5) with one seed: %s and %s", r1, r2)
	}
	if s := fsys.Stats(); s.InjectedWriteErrors == 0 || s.InjectedSyncDirErrors != 1 {
		t.Errorf("stats: %+v", s)
	}

	// Another errno: a disk that fills up at the third write.
	fsys.FailWrites(faultfs.Nth(3).WithErrno(syscall.ENOSPC))
	for i := 1; i <= 3; i++ {
		_, err := f.WriteAt([]byte("w"), 0)
		if fails := i == 3; fails != errors.Is(err, syscall.ENOSPC) || (err != nil) != fails {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}

func TestTearTail(t *testing.T) {
	fsys, dir := newFS(t)
	name := filepath.Join(dir, "seg")
	const content = "0123456789"
	reset := func() {
		t.Helper()
		fsys.Remove(name)
		f := mustCreate(t, fsys, name)
		mustWrite(t, f, 0, content)
		mustSync(t, f)
		f.Close()
		mustSyncDir(t, fsys, dir)
	}
	reset()
	if err := fsys.TearTail(name, faultfs.TearTruncate, 3); err != nil {
		t.Fatal(err)
	}
	wantDisk(t, fsys, name, "0123456")
	cut(t, fsys) // damage at rest is durable
	wantDisk(t, fsys, name, "0123456")

	reset()
	if err := fsys.TearTail(name, faultfs.TearZero, 4); err != nil {
		t.Fatal(err)
	}
	wantDisk(t, fsys, name, "012345\x00\x00\x00\x00")

	reset()
	if err := fsys.TearTail(name, faultfs.TearGarbage, 4); err != nil {
		t.Fatal(err)
	}
	got, _ := onDisk(t, name)
	if len(got) != 10 || got[:6] != "012345" || got[6:] == "6789" {
		t.Fatalf("garbage tail: %q", got)
	}
	cut(t, fsys)
	wantDisk(t, fsys, name, got)

	reset()
	if err := fsys.TearTail(name, faultfs.TearTruncate, 100); err != nil {
		t.Fatal(err)
	}
	wantDisk(t, fsys, name, "")

	reset()
	mode, n, err := fsys.TearTailRandom(name, 5)
	if err != nil || n < 1 || n > 5 {
		t.Fatalf("TearTailRandom: %v %d %v", mode, n, err)
	}
	got, _ = onDisk(t, name)
	switch mode {
	case faultfs.TearTruncate:
		if got != content[:10-n] {
			t.Fatalf("%v %d: %q", mode, n, got)
		}
	default:
		if len(got) != 10 || got[:10-n] != content[:10-n] {
			t.Fatalf("%v %d: %q", mode, n, got)
		}
	}
	if err := fsys.TearTail(filepath.Join(dir, "missing"), faultfs.TearZero, 1); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("TearTail of a missing file: %v", err)
	}
	if s := fsys.Stats(); s.TornTails != 5 {
		t.Fatalf("TornTails = %d", s.TornTails)
	}
}

func TestFlipBit(t *testing.T) {
	fsys, dir := newFS(t)
	name := filepath.Join(dir, "seg")
	f := mustCreate(t, fsys, name)
	mustWrite(t, f, 0, "AAAA")
	mustSync(t, f)
	mustSyncDir(t, fsys, dir)
	mustWrite(t, f, 4, "BB") // unsynced bytes can be flipped too
	if err := fsys.FlipBit(name, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := fsys.FlipBit(name, 5, 1); err != nil {
		t.Fatal(err)
	}
	wantDisk(t, fsys, name, "A@AAB@")
	cut(t, fsys)
	wantDisk(t, fsys, name, "A@AA")
	f.Close()

	if err := fsys.FlipBit(name, 4, 0); !errors.Is(err, faultfs.ErrOutOfRange) {
		t.Fatalf("flip past the end: %v", err)
	}
	if err := fsys.FlipBit(name, 0, 8); !errors.Is(err, faultfs.ErrOutOfRange) {
		t.Fatalf("flip bit 8: %v", err)
	}
	before, _ := onDisk(t, name)
	off, bit, err := fsys.FlipBitRandom(name)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := onDisk(t, name)
	want := []byte(before)
	want[off] ^= 1 << bit
	if after != string(want) {
		t.Fatalf("FlipBitRandom(%d, %d): %q -> %q", off, bit, before, after)
	}
}

func TestPreexistingFilesAreDurable(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	for _, n := range []string{a, b, c} {
		if err := os.WriteFile(n, []byte("old "+filepath.Base(n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsys := faultfs.New(vfs.OS(), 3)
	f, err := fsys.OpenRW(a)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, 0, "NEW")
	if err := f.Truncate(2); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Remove(b); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Rename(c, c+"2"); err != nil {
		t.Fatal(err)
	}
	cut(t, fsys)
	wantDisk(t, fsys, a, "old a")
	wantDisk(t, fsys, b, "old b")
	wantDisk(t, fsys, c, "old c")
	wantAbsent(t, fsys, c+"2")
	f.Close()
}

// A write admitted before the cut and landing after the reboot goes to
// the dead process's inode, not to the restored file.
func TestLateWriteCannotTouchRestoredFile(t *testing.T) {
	fsys, dir := newFS(t)
	name := filepath.Join(dir, "seg")
	f := mustCreate(t, fsys, name)
	defer f.Close()
	mustSyncDir(t, fsys, dir)
	mustWrite(t, f, 0, "durable")
	mustSync(t, f)
	o := f.(vfs.Observer)
	if allowed, err := o.BeforeWrite(0, 4); allowed != 4 || err != nil {
		t.Fatal(allowed, err)
	}
	cut(t, fsys)
	if _, err := unix.Pwrite(int(f.Fd()), []byte("LATE"), 0); err != nil {
		t.Fatal(err)
	}
	o.AfterWrite(0, 4) // ignored: the file belongs to the dead process
	wantDisk(t, fsys, name, "durable")
}

// A sync admitted before the cut that never reports back delays PowerOn by
// the drain timeout and is counted.
func TestAbandonedSync(t *testing.T) {
	fsys, dir := newFS(t)
	f := mustCreate(t, fsys, filepath.Join(dir, "seg"))
	defer f.Close()
	mustWrite(t, f, 0, "x")
	if err := f.(vfs.Observer).BeforeSync(); err != nil {
		t.Fatal(err)
	}
	cut(t, fsys)
	if s := fsys.Stats(); s.AbandonedSyncs != 1 {
		t.Fatalf("AbandonedSyncs = %d", s.AbandonedSyncs)
	}
	wantAbsent(t, fsys, filepath.Join(dir, "seg"))
}

func TestKeepUnsynced(t *testing.T) {
	const synced = "synced:"
	tail := strings.Repeat("0123456789", 10)
	var sawNone, sawSome bool
	for seed := uint64(1); seed <= 12; seed++ {
		fsys := faultfs.New(fastOS(), seed)
		fsys.SetKeepUnsynced(true)
		dir := t.TempDir()
		name := filepath.Join(dir, "seg")
		f := mustCreate(t, fsys, name)
		mustSyncDir(t, fsys, dir)
		mustWrite(t, f, 0, synced)
		mustSync(t, f)
		mustWrite(t, f, int64(len(synced)), tail)
		cut(t, fsys)
		got, _ := onDisk(t, name)
		// A prefix of the unsynced append, never beyond it.
		if !strings.HasPrefix(synced+tail, got) || len(got) < len(synced) {
			t.Fatalf("seed %d: %q is not the synced part plus a prefix of the rest", seed, got)
		}
		kept := int64(len(got) - len(synced))
		if r := fsys.LastCut(); len(r.Files) != 1 || r.Files[0].Kept != kept {
			t.Fatalf("seed %d: report %v, kept %d", seed, r, kept)
		}
		sawNone = sawNone || kept == 0
		sawSome = sawSome || kept > 0
		f.Close()
	}
	if !sawNone || !sawSome {
		t.Fatalf("over 12 seeds: kept nothing %v, kept something %v", sawNone, sawSome)
	}
}

func TestDirectoryRenameRefused(t *testing.T) {
	fsys, dir := newFS(t)
	if err := fsys.MkdirAll(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")); !errors.Is(err, faultfs.ErrDirRename) {
		t.Fatalf("Rename of a directory: %v", err)
	}
}

func TestReadDirAndStat(t *testing.T) {
	fsys, dir := newFS(t)
	for _, n := range []string{"c", "a", "b"} {
		mustCreate(t, fsys, filepath.Join(dir, n)).Close()
	}
	names, err := fsys.ReadDir(dir)
	if err != nil || !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Fatalf("ReadDir = %v, %v", names, err)
	}
	if _, err := fsys.Stat(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Create(filepath.Join(dir, "a")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create of an existing file: %v", err)
	}
	if _, err := fsys.Open(dir); !errors.Is(err, faultfs.ErrNotFile) {
		t.Fatalf("Open of a directory: %v", err)
	}
	fsys.PowerOff()
	if _, err := fsys.ReadDir(dir); !errors.Is(err, faultfs.ErrPoweredOff) {
		t.Fatalf("ReadDir while off: %v", err)
	}
	if err := fsys.PowerOn(); err != nil {
		t.Fatal(err)
	}
	names, _ = fsys.ReadDir(dir)
	if len(names) != 0 {
		t.Fatalf("after the cut: %v (no SyncDir was done)", names)
	}
}

// Writers append and sync concurrently while the power goes off; every
// sync that reported success is on disk afterwards.
func TestConcurrentWritersAndPowerOff(t *testing.T) {
	fsys, dir := faultfs.New(fastOS(), 1), t.TempDir()
	const writers = 3
	record := []byte("record--")
	files := make([]vfs.File, writers)
	for i := range files {
		files[i] = mustCreate(t, fsys, filepath.Join(dir, string(rune('a'+i))))
	}
	mustSyncDir(t, fsys, dir)
	acked := make([]int64, writers)
	var progress sync.WaitGroup
	progress.Add(writers)
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := newBackend(t, f)
			b.noSync = true
			var off int64
			for k := 0; ; k++ {
				if k == 20 {
					progress.Done()
				}
				var err error
				if k%2 == 0 {
					_, err = f.WriteAt(record, off)
				} else {
					_, err = b.write(off, string(record))
				}
				if err != nil {
					break
				}
				off += int64(len(record))
				if k%3 == 0 {
					err = f.Sync()
				} else {
					err = b.sync()
				}
				if err != nil {
					break
				}
				acked[i] = off
			}
			if k := acked[i] / int64(len(record)); k < 20 {
				progress.Done() // stopped early: do not block the test
			}
		}()
	}
	progress.Wait()
	fsys.PowerOff()
	wg.Wait()
	if err := fsys.PowerOn(); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		got, _ := onDisk(t, f.Name())
		if int64(len(got)) < acked[i] {
			t.Fatalf("%s: %d bytes on disk, %d acked\n%v", f.Name(), len(got), acked[i], fsys.LastCut())
		}
		if want := bytes.Repeat(record, len(got)/len(record)); got != string(want) {
			t.Fatalf("%s: content %q", f.Name(), got)
		}
		f.Close()
	}
}
