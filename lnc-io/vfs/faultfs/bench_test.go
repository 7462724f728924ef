package faultfs_test

import (
	"path/filepath"
	"testing"

	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
)

// BenchmarkAppendSync appends 4 KiB records to one file, syncing each, on
// the OS file system and through the fault file system: the model's cost
// per sync must not grow with the file.
func BenchmarkAppendSync(b *testing.B) {
	for _, c := range []struct {
		name string
		fs   func() vfs.FS
	}{
		{"os", vfs.OS},
		{"faultfs", func() vfs.FS { return faultfs.New(vfs.OS(), 1) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			fsys := c.fs()
			f, err := fsys.Create(filepath.Join(b.TempDir(), "seg"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			rec := make([]byte, 4096)
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			var off int64
			for b.Loop() {
				if _, err := f.WriteAt(rec, off); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				off += int64(len(rec))
			}
		})
	}
}
