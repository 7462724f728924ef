package topiclog

import (
	"fmt"
	"testing"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// BenchmarkAppend is the durable ingest path: 256 records of 1 KiB
// appended, then one Sync (group commit), per op. Segments roll at 256 MiB
// and retention keeps the directory small. direct=true writes the data
// files with O_DIRECT from the backend's default pool (8 × 1 MiB); it
// reports the fixed (registered-buffer) writes per op.
func BenchmarkAppend(b *testing.B) {
	for _, k := range kinds(b) {
		for _, group := range []int{256, 1024} {
			for _, direct := range []bool{false, true} {
				b.Run(fmt.Sprintf("backend=%s/group=%d/direct=%t", k, group, direct), func(b *testing.B) {
					benchAppend(b, k, group, direct)
				})
			}
		}
	}
}

func benchAppend(b *testing.B, k backend.Kind, group int, direct bool) {
	be, err := backend.Open(backend.Config{Kind: k})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	l, err := Open(tempDir(b, direct), Options{FS: vfs.OS(), Backend: be, SegmentSize: 256 << 20, Direct: direct})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	rec := make([]byte, 1024)
	for i := range rec {
		rec[i] = byte(i)
	}
	crc := checksum.IEEE.Sum(rec)
	b.SetBytes(int64(group * len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		for range group {
			if _, err := l.Append(Batch{Data: rec, CRC: crc, Dialect: checksum.IEEE, TimestampNS: 1}); err != nil {
				b.Fatal(err)
			}
		}
		if err := l.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		if l.End()-l.Start() > 1<<30 {
			b.StopTimer()
			l.ApplyRetention(Retention{MaxBytes: 512 << 20}, timeNow())
			b.StartTimer()
		}
	}
	if direct {
		pool, _ := be.DirectBuffers()
		b.ReportMetric(float64(pool.Stats().FixedWrites)/float64(b.N), "fixed/op")
	}
}

// BenchmarkReadSequential reads a 64 MiB log front to back in 1 MiB reads.
func BenchmarkReadSequential(b *testing.B) {
	for _, k := range kinds(b) {
		b.Run("backend="+string(k), func(b *testing.B) {
			be, err := backend.Open(backend.Config{Kind: k})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			l, err := Open(b.TempDir(), Options{FS: vfs.OS(), Backend: be, SegmentSize: 16 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			rec := make([]byte, 64<<10)
			for range 1024 {
				l.Append(Batch{Data: rec})
				if l.Pending() == 64 {
					l.Sync(ctx)
				}
			}
			l.Sync(ctx)
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			off := uint64(0)
			for b.Loop() {
				if off >= l.End() {
					off = 0
				}
				if _, err := l.ReadAt(ctx, buf, off); err != nil {
					b.Fatal(err)
				}
				off += uint64(len(buf))
			}
		})
	}
}
