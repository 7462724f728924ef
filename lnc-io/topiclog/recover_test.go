package topiclog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// threeSegments writes a log of three segments and returns its directory,
// content and segment bases.
func threeSegments(t *testing.T, be backend.Backend, direct bool) (string, []byte, []uint64) {
	dir := filepath.Join(tempDir(t, direct), "topic")
	l := openLog(t, vfs.OS(), be, direct, dir, 200)
	var want []byte
	for i := range 12 {
		d := bytes.Repeat([]byte{byte('a' + i)}, 60)
		if _, err := l.Append(Batch{Data: d, TimestampNS: uint64(i)}); err != nil {
			t.Fatal(err)
		}
		want = append(want, d...)
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	l.Close()
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	return dir, want, segs
}

func TestRecoverRebuildsLoneDamagedEntry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		dir, want, segs := threeSegments(t, be, direct)
		_, idx := segmentPaths(dir, segs[0])
		b, _ := os.ReadFile(idx)
		b[index.EntryOffset(1)+5] ^= 0xFF // entry 1 of a sealed segment
		os.WriteFile(idx, b, 0o644)
		l := openLog(t, vfs.OS(), be, direct, dir, 200)
		defer l.Close()
		if !bytes.Equal(readAll(t, l), want) {
			t.Fatal("content changed")
		}
		es, err := l.Batches(60, 60, nil)
		if err != nil || len(es) != 1 || es[0].Offset != 60 || es[0].Length != 60 || es[0].RecordCount != 0 {
			t.Fatalf("rebuilt entry: %+v, %v", es, err)
		}
		// The rebuilt entry was written back.
		b2, _ := os.ReadFile(idx)
		if _, err := index.DecodeEntry(b2[index.EntryOffset(1):]); err != nil {
			t.Fatalf("entry not rewritten: %v", err)
		}
	})
}

func TestRecoverRefusesDamageInSealedSegment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		f := func(name string, damage func(dir string, segs []uint64)) {
			t.Helper()
			dir, _, segs := threeSegments(t, be, direct)
			damage(dir, segs)
			_, err := Open(dir, Options{FS: vfs.OS(), Backend: be, SegmentSize: 200, Direct: direct})
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: Open = %v, want ErrCorrupt", name, err)
			}
		}
		f("two damaged entries", func(dir string, segs []uint64) {
			_, idx := segmentPaths(dir, segs[0])
			b, _ := os.ReadFile(idx)
			b[index.EntryOffset(0)+3] ^= 1
			b[index.EntryOffset(1)+3] ^= 1
			os.WriteFile(idx, b, 0o644)
		})
		f("short sealed data", func(dir string, segs []uint64) {
			data, _ := segmentPaths(dir, segs[1])
			os.Truncate(data, 10)
		})
		f("middle segment missing its data", func(dir string, segs []uint64) {
			data, _ := segmentPaths(dir, segs[1])
			os.Remove(data)
		})
		f("sealed header damaged", func(dir string, segs []uint64) {
			_, idx := segmentPaths(dir, segs[1])
			b, _ := os.ReadFile(idx)
			b[9] ^= 1
			os.WriteFile(idx, b, 0o644)
		})
	})
}

func TestRecoverLeftovers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		dir, want, segs := threeSegments(t, be, direct)
		// An index without data at the start (an interrupted retention)
		// and a data file without index at the end (an interrupted roll).
		data0, _ := segmentPaths(dir, segs[0])
		os.Remove(data0)
		end := uint64(len(want))
		dataEnd, _ := segmentPaths(dir, end+1000)
		os.WriteFile(dataEnd, []byte("unacknowledged"), 0o644)
		l := openLog(t, vfs.OS(), be, direct, dir, 200)
		defer l.Close()
		if l.Start() != segs[1] || l.End() != end {
			t.Fatalf("start %d end %d, want %d %d", l.Start(), l.End(), segs[1], end)
		}
		if !bytes.Equal(readAll(t, l), want[segs[1]:]) {
			t.Fatal("content differs")
		}
		names, _ := os.ReadDir(dir)
		for _, n := range names {
			if n.Name() == filepath.Base(dataEnd) || n.Name() == filepath.Base(data0) {
				t.Errorf("leftover %s not removed", n.Name())
			}
		}
	})
}

func TestRecoverResetsNewestWithBadHeader(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		dir, want, segs := threeSegments(t, be, direct)
		last := segs[len(segs)-1]
		data, idx := segmentPaths(dir, last)
		os.WriteFile(idx, []byte("torn"), 0o644)
		l := openLog(t, vfs.OS(), be, direct, dir, 200)
		if l.End() != last || !bytes.Equal(readAll(t, l), want[:last]) {
			t.Fatalf("end %d, want %d", l.End(), last)
		}
		if st, _ := os.Stat(data); st.Size() != 0 {
			t.Fatalf("newest data file holds %d bytes", st.Size())
		}
		// It takes appends again, and they survive a reopen.
		l.Append(Batch{Data: []byte("again")})
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		l.Close()
		l = openLog(t, vfs.OS(), be, direct, dir, 200)
		defer l.Close()
		if got := readAll(t, l); !bytes.Equal(got, append(want[:last:last], "again"...)) {
			t.Fatalf("after reopen: %q", got[len(got)-10:])
		}
	})
}

// TestRecoverRewritesDamagedHeader: a bit flip in the newest segment's
// index header, whose entries are intact, does not empty the segment: the
// header is written again and every batch stays.
func TestRecoverRewritesDamagedHeader(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		dir, want, segs := threeSegments(t, be, direct)
		_, idx := segmentPaths(dir, segs[len(segs)-1])
		b, err := os.ReadFile(idx)
		if err != nil {
			t.Fatal(err)
		}
		b[10] ^= 0x01 // the base offset, under the header CRC
		if err := os.WriteFile(idx, b, 0o644); err != nil {
			t.Fatal(err)
		}
		l := openLog(t, vfs.OS(), be, direct, dir, 200)
		if !bytes.Equal(readAll(t, l), want) {
			t.Fatalf("end %d, want %d: batches were dropped", l.End(), len(want))
		}
		l.Close()
		b2, _ := os.ReadFile(idx)
		if h, err := index.DecodeHeader(b2); err != nil || h.BaseOffset != segs[len(segs)-1] {
			t.Fatalf("header not rewritten: %+v, %v", h, err)
		}
	})
}

// TestRecoverKeepsAckedBatchesAfterBitRot: a bit flip in a batch of the
// newest segment whose commit was followed by another one (so it was
// acknowledged) does not make recovery cut the log there: every batch
// stays, the damaged one is reported by Damaged. The same flip in the
// last commit, which may be torn, cuts it back.
func TestRecoverKeepsAckedBatchesAfterBitRot(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		dir := filepath.Join(tempDir(t, direct), "topic")
		l := openLog(t, vfs.OS(), be, direct, dir, 1<<20)
		var want []byte
		var offs []uint64
		for commit := range 4 {
			for i := range 3 {
				d := bytes.Repeat([]byte{byte('a' + 3*commit + i)}, 100)
				off, err := l.Append(Batch{Data: d})
				if err != nil {
					t.Fatal(err)
				}
				offs = append(offs, off)
				want = append(want, d...)
			}
			if err := l.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
		data, _ := segmentPaths(dir, 0)
		flip := func(off uint64) {
			b, err := os.ReadFile(data)
			if err != nil {
				t.Fatal(err)
			}
			b[off+7] ^= 0x40
			if err := os.WriteFile(data, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// Batch 4 is in the second commit, which later commits follow.
		flip(offs[4])
		l = openLog(t, vfs.OS(), be, direct, dir, 1<<20)
		if l.End() != uint64(len(want)) {
			t.Fatalf("end %d after a flip in an acknowledged batch, want %d", l.End(), len(want))
		}
		if d := l.Damaged(); len(d) != 1 || d[0] != offs[4] {
			t.Fatalf("Damaged = %v, want [%d]", d, offs[4])
		}
		l.Close()
		// Batch 10 is in the last commit: it may be a torn write, so the
		// log is cut back to the batch before it.
		flip(offs[10])
		l = openLog(t, vfs.OS(), be, direct, dir, 1<<20)
		defer l.Close()
		if l.End() != offs[10] {
			t.Fatalf("end %d after a flip in the last commit, want %d", l.End(), offs[10])
		}
		if d := l.Damaged(); len(d) != 1 || d[0] != offs[4] {
			t.Fatalf("Damaged = %v after the cut", d)
		}
	})
}
