package faultfs_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
)

// alignedBuf returns n zero bytes of heap memory starting at a multiple of
// vfs.DirectAlign (found by address, no unsafe needed).
func alignedBuf(n int) []byte {
	raw := make([]byte, n+vfs.DirectAlign)
	addr := reflect.ValueOf(&raw[0]).Pointer()
	skip := int((vfs.DirectAlign - addr%vfs.DirectAlign) % vfs.DirectAlign)
	return raw[skip : skip+n : skip+n]
}

func blocks(n int, b byte) []byte {
	p := alignedBuf(n * vfs.DirectAlign)
	for i := range p {
		p[i] = b + byte(i)
	}
	return p
}

func mustOpenDirect(t *testing.T, fsys vfs.FS, name string) vfs.File {
	t.Helper()
	f, err := vfs.OpenDirect(fsys, name)
	if err != nil {
		t.Fatalf("OpenDirect(%s): %v", name, err)
	}
	return f
}

// TestOpenDirectSharesTheModel: the direct handle is a second handle of
// the same modelled file, over a real O_DIRECT descriptor (OS) and over an
// emulated one (an inner file system without OpenDirect).
func TestOpenDirectSharesTheModel(t *testing.T) {
	for name, inner := range map[string]vfs.FS{"os": vfs.OS(), "emulated": fastOS()} {
		t.Run(name, func(t *testing.T) {
			fsys := faultfs.New(inner, 1)
			dir := t.TempDir()
			path := filepath.Join(dir, "seg")
			f := mustCreate(t, fsys, path)
			defer f.Close()
			mustSyncDir(t, fsys, dir)
			d := mustOpenDirect(t, fsys, path)
			defer d.Close()

			one := blocks(1, 'a')
			if n, err := d.WriteAt(one, 0); err != nil || n != len(one) {
				t.Fatalf("direct WriteAt: %d, %v", n, err)
			}
			mustSync(t, f) // a sync of the buffered handle covers the direct write
			two := blocks(1, 'b')
			if _, err := d.WriteAt(two, vfs.DirectAlign); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 2*vfs.DirectAlign)
			if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, append(append([]byte(nil), one...), two...)) {
				t.Fatalf("buffered read of direct writes: %v", err)
			}
			cut(t, fsys)
			wantDisk(t, fsys, path, string(one))
			if _, err := d.WriteAt(one, 0); !errors.Is(err, faultfs.ErrPoweredOff) {
				t.Fatalf("direct handle after the cut: %v", err)
			}

			// After the reboot: written through the direct handle, synced
			// through it, durable.
			d2 := mustOpenDirect(t, fsys, path)
			defer d2.Close()
			if _, err := d2.WriteAt(two, 0); err != nil {
				t.Fatal(err)
			}
			mustSync(t, d2)
			cut(t, fsys)
			wantDisk(t, fsys, path, string(two))
		})
	}
}

func TestOpenDirectEnforcesAlignment(t *testing.T) {
	fsys, dir := newFS(t)
	path := filepath.Join(dir, "seg")
	f := mustCreate(t, fsys, path)
	defer f.Close()
	d := mustOpenDirect(t, fsys, path)
	defer d.Close()
	buf := blocks(2, 'x')
	before := fsys.Stats()
	for name, w := range map[string]struct {
		p   []byte
		off int64
	}{
		"offset": {buf[:vfs.DirectAlign], 512},
		"length": {buf[:100], 0},
		"memory": {buf[1 : 1+vfs.DirectAlign], 0},
	} {
		if _, err := d.WriteAt(w.p, w.off); !errors.Is(err, faultfs.ErrMisaligned) || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("misaligned %s write: %v, want EINVAL", name, err)
		}
		if _, err := d.ReadAt(w.p, w.off); !errors.Is(err, faultfs.ErrMisaligned) {
			t.Errorf("misaligned %s read: %v", name, err)
		}
	}
	if st := fsys.Stats(); st.Ops != before.Ops {
		t.Fatalf("refused transfers counted as operations: %d -> %d", before.Ops, st.Ops)
	}
	// The buffered handle keeps no such rule.
	mustWrite(t, f, 3, "any")
	// A write cut short by the space limit stops at a block boundary.
	fsys.SetSpaceLimit(fsys.Stats().SpaceUsed + vfs.DirectAlign + 100)
	n, err := d.WriteAt(buf, 0)
	if n != vfs.DirectAlign || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("direct write over the space limit: %d, %v; want one block and ENOSPC", n, err)
	}
}

func TestOpenDirectRefusals(t *testing.T) {
	fsys, dir := newFS(t)
	if _, err := fsys.OpenDirect(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("OpenDirect of a missing file succeeded")
	}
	if _, err := fsys.OpenDirect(dir); err == nil {
		t.Fatalf("OpenDirect of a directory: %v", err)
	}
	path := filepath.Join(dir, "f")
	mustCreate(t, fsys, path).Close()
	fsys.PowerOff()
	if _, err := fsys.OpenDirect(path); !errors.Is(err, faultfs.ErrPoweredOff) {
		t.Fatalf("OpenDirect while off: %v", err)
	}
	if err := fsys.PowerOn(); err != nil {
		t.Fatal(err)
	}
}
