package topiclog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/vfs"
)

var ctx = context.Background()

// kinds returns the backends to test against; uring only where the kernel
// has it.
func kinds(t testing.TB) []backend.Kind {
	ks := []backend.Kind{backend.KindPwritev2}
	if backend.Probe().Err == nil {
		ks = append(ks, backend.KindURing)
	}
	return ks
}

// testBufferSize and testBuffers size the backends' direct-write pools in
// the tests: one block per buffer and few of them, so that direct Syncs
// are split into chunks, several per commit and several commits per Sync.
const (
	testBufferSize = directBlock
	testBuffers    = 3
)

// openBackend opens a backend of kind k with the tests' small pool.
func openBackend(t testing.TB, k backend.Kind) backend.Backend {
	t.Helper()
	be, err := backend.Open(backend.Config{Kind: k, DirectBuffers: testBuffers, DirectBufferSize: testBufferSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// forEachBackend runs f once per backend kind and write mode: buffered,
// and direct (Options.Direct).
func forEachBackend(t *testing.T, f func(t *testing.T, be backend.Backend, direct bool)) {
	for _, k := range kinds(t) {
		for _, direct := range []bool{false, true} {
			t.Run(fmt.Sprintf("backend=%s/direct=%t", k, direct), func(t *testing.T) {
				f(t, openBackend(t, k), direct)
			})
		}
	}
}

// tempDir returns a new temporary directory for a test on the OS file
// system. Direct tests need one on a file system that takes O_DIRECT:
// t.TempDir() is under $TMPDIR, which may be a tmpfs that refuses it; then
// a directory under /work/tmp is tried, and the test is skipped if that
// refuses it too.
func tempDir(t testing.TB, direct bool) string {
	t.Helper()
	dir := t.TempDir()
	if !direct || takesDirect(t, dir) {
		return dir
	}
	const fallback = "/work/tmp"
	if err := os.MkdirAll(fallback, 0o755); err == nil {
		d, err := os.MkdirTemp(fallback, "topiclog-direct-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			if takesDirect(t, d) {
				return d
			}
		}
	}
	t.Skipf("neither %s nor %s takes O_DIRECT: direct mode cannot be tested on the OS file system here", dir, fallback)
	return ""
}

// takesDirect reports whether files in dir can be opened with O_DIRECT.
func takesDirect(t testing.TB, dir string) bool {
	probe := filepath.Join(dir, "direct-probe")
	f, err := vfs.OS().Create(probe)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer os.Remove(probe)
	d, err := vfs.OpenDirect(vfs.OS(), probe)
	ok := err == nil
	if ok {
		d.Close()
	} else if !errors.Is(err, vfs.ErrDirectUnsupported) {
		t.Fatal(err)
	}
	return ok
}

func openLog(t testing.TB, fs vfs.FS, be backend.Backend, direct bool, dir string, segSize int64) *Log {
	t.Helper()
	l, err := Open(dir, Options{FS: fs, Backend: be, SegmentSize: segSize, Prealloc: 8 << 10, Direct: direct})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// batchData makes the bytes of batch number i: a recognisable header and a
// seeded random body.
func batchData(r *rand.Rand, i, maxLen int) []byte {
	b := fmt.Appendf(nil, "<batch %d>", i)
	for range r.IntN(maxLen) {
		b = append(b, byte(r.Uint32()))
	}
	return b
}

func readAll(t testing.TB, l *Log) []byte {
	t.Helper()
	start, end := l.Start(), l.End()
	buf := make([]byte, end-start)
	n, err := l.ReadAt(ctx, buf, start)
	if err != nil || n != len(buf) {
		t.Fatalf("ReadAt(%d, %d bytes) = %d, %v", start, len(buf), n, err)
	}
	return buf
}

func TestAppendSyncReadAcrossSegments(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		dir := filepath.Join(tempDir(t, direct), "topic")
		l := openLog(t, vfs.OS(), be, direct, dir, 4096)
		r := rand.New(rand.NewPCG(1, 1))
		var want []byte
		var offsets []uint64
		var synced uint64
		for i := range 300 {
			d := batchData(r, i, 600)
			off, err := l.Append(Batch{Data: d, TimestampNS: uint64(i)})
			if err != nil {
				t.Fatal(err)
			}
			if off != uint64(len(want)) {
				t.Fatalf("batch %d at %d, want %d", i, off, len(want))
			}
			offsets = append(offsets, off)
			want = append(want, d...)
			// Nothing appended since the last sync is visible, except what
			// a segment roll synced (everything before this batch).
			if e := l.End(); e != synced && e != off {
				t.Fatalf("End %d before Sync, want the synced end %d or %d", e, synced, off)
			}
			synced = l.End()
			if i%7 == 6 {
				if err := l.Sync(ctx); err != nil {
					t.Fatal(err)
				}
				if l.End() != uint64(len(want)) {
					t.Fatalf("End %d after Sync, want %d", l.End(), len(want))
				}
				synced = l.End()
			}
		}
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, l); !bytes.Equal(got, want) {
			t.Fatal("log content differs")
		}
		if len(l.Segments()) < 10 {
			t.Fatalf("only %d segments with 4 KiB segments", len(l.Segments()))
		}
		// Every read at every batch start crossing segments.
		for i, off := range offsets {
			buf := make([]byte, min(5000, len(want)-int(off)))
			if n, err := l.ReadAt(ctx, buf, off); err != nil || n != len(buf) || !bytes.Equal(buf, want[off:int(off)+len(buf)]) {
				t.Fatalf("read of batch %d: %d %v", i, n, err)
			}
		}
		// Past the end.
		if n, err := l.ReadAt(ctx, make([]byte, 10), uint64(len(want))-3); n != 3 || !errors.Is(err, io.EOF) {
			t.Fatalf("read over the end: %d %v", n, err)
		}
		l.Close()

		// Reopen: same content, appends continue at the end.
		l = openLog(t, vfs.OS(), be, direct, dir, 4096)
		defer l.Close()
		if got := readAll(t, l); !bytes.Equal(got, want) {
			t.Fatal("content differs after reopen")
		}
		off, err := l.Append(Batch{Data: []byte("more")})
		if err != nil || off != uint64(len(want)) {
			t.Fatalf("append after reopen at %d, %v", off, err)
		}
		names, _ := os.ReadDir(dir)
		for _, n := range names {
			if _, ok := parseSegmentName(n.Name(), filepath.Ext(n.Name())); !ok {
				t.Errorf("unexpected file %s", n.Name())
			}
		}
	})
}

func TestUnsyncedInvisible(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		l := openLog(t, vfs.OS(), be, direct, tempDir(t, direct), 0)
		defer l.Close()
		l.Append(Batch{Data: []byte("abc")})
		if l.End() != 0 {
			t.Fatal("unsynced batch visible")
		}
		if n, err := l.ReadAt(ctx, make([]byte, 3), 0); n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("read of unsynced data: %d %v", n, err)
		}
		if _, err := l.Append(Batch{}); !errors.Is(err, ErrEmptyBatch) {
			t.Fatalf("empty batch: %v", err)
		}
	})
}

func TestBatchesAndCRCs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		l := openLog(t, vfs.OS(), be, direct, tempDir(t, direct), 2000)
		defer l.Close()
		r := rand.New(rand.NewPCG(2, 2))
		var all [][]byte
		for i := range 100 {
			d := batchData(r, i, 300)
			b := Batch{Data: d, RecordCount: uint32(i)}
			if i%2 == 0 {
				b.CRC, b.Dialect = checksum.IEEE.Sum(d), checksum.IEEE
			}
			l.Append(b)
			all = append(all, d)
		}
		l.Sync(ctx)
		// Walk the whole log batch by batch.
		var off uint64
		var got []index.Entry
		for off < l.End() {
			es, err := l.Batches(off, 700, nil)
			if err != nil || len(es) == 0 {
				t.Fatalf("Batches(%d) = %d entries, %v", off, len(es), err)
			}
			got = append(got, es...)
			off = es[len(es)-1].End()
		}
		if len(got) != len(all) {
			t.Fatalf("%d entries, want %d", len(got), len(all))
		}
		for i, e := range got {
			if int(e.Length) != len(all[i]) || e.RecordCount != uint32(i) || e.Dialect.Sum(all[i]) != e.CRC {
				t.Fatalf("entry %d: %+v", i, e)
			}
		}
		// An offset inside a batch returns that batch first; a huge batch
		// comes back alone.
		es, _ := l.Batches(got[10].Offset+3, 1, nil)
		if len(es) != 1 || es[0] != got[10] {
			t.Fatalf("inside batch 10: %+v", es)
		}
	})
}

func TestSeekTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		l := openLog(t, vfs.OS(), be, direct, tempDir(t, direct), 3000)
		defer l.Close()
		r := rand.New(rand.NewPCG(3, 3))
		type rec struct {
			off uint64
			ts  uint64
		}
		var recs []rec
		for i := range 700 {
			ts := uint64(i*10) + uint64(r.IntN(50)) // mostly rising, with jitter
			off, _ := l.Append(Batch{Data: batchData(r, i, 40), TimestampNS: ts})
			recs = append(recs, rec{off, ts})
		}
		l.Sync(ctx)
		for _, q := range []uint64{0, 1, 5, 55, 999, 3333, 6990, 7039, 7040, 1 << 40} {
			want := l.End()
			for _, rc := range recs {
				if rc.ts >= q {
					want = rc.off
					break
				}
			}
			if got, err := l.SeekTime(q); err != nil || got != want {
				t.Errorf("SeekTime(%d) = %d, %v; want %d", q, got, err, want)
			}
		}
	})
}

func TestRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		l := openLog(t, vfs.OS(), be, direct, tempDir(t, direct), 1000)
		defer l.Close()
		r := rand.New(rand.NewPCG(4, 4))
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var want []byte
		for i := range 200 {
			d := batchData(r, i, 100)
			l.Append(Batch{Data: d, TimestampNS: uint64(base.Add(time.Duration(i) * time.Minute).UnixNano())})
			want = append(want, d...)
		}
		l.Sync(ctx)
		segs := l.Segments()

		// Age: everything older than 100 minutes before the last batch.
		now := base.Add(200 * time.Minute)
		removed, err := l.ApplyRetention(Retention{MaxAge: 100 * time.Minute}, now)
		if err != nil || len(removed) == 0 {
			t.Fatalf("age retention removed %v, %v", removed, err)
		}
		start := l.Start()
		if !bytes.Equal(readAll(t, l), want[start:]) {
			t.Fatal("offsets moved after retention")
		}
		if _, err := l.ReadAt(ctx, make([]byte, 1), start-1); !errors.Is(err, ErrOffset) {
			t.Fatalf("read before the start: %v", err)
		}
		// Size: keep about 3000 bytes.
		if _, err := l.ApplyRetention(Retention{MaxBytes: 3000}, now); err != nil {
			t.Fatal(err)
		}
		if got := l.End() - l.Start(); got > 3000+1000 {
			t.Fatalf("%d bytes retained", got)
		}
		// Everything: the active segment stays.
		l.ApplyRetention(Retention{MaxBytes: 1}, now)
		if s := l.Segments(); len(s) != 1 || s[0] != segs[len(segs)-1] {
			t.Fatalf("segments %v after removing all, want only the active %d", s, segs[len(segs)-1])
		}
		// Appending still works at the old end.
		off, err := l.Append(Batch{Data: []byte("x")})
		if err != nil || off != uint64(len(want)) {
			t.Fatalf("append after retention: %d %v", off, err)
		}
		l.Sync(ctx)
		l.Close()
		l = openLog(t, vfs.OS(), be, direct, l.Dir(), 1000)
		if l.Start() != segs[len(segs)-1] || l.End() != uint64(len(want))+1 {
			t.Fatalf("after reopen start %d end %d", l.Start(), l.End())
		}
		l.Close()
	})
}

func TestRangesSurviveRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		l := openLog(t, vfs.OS(), be, direct, tempDir(t, direct), 500)
		defer l.Close()
		var want []byte
		for i := range 40 {
			d := bytes.Repeat([]byte{byte('a' + i%26)}, 100)
			l.Append(Batch{Data: d})
			want = append(want, d...)
		}
		l.Sync(ctx)
		ranges, release, err := l.Ranges(0, 2500, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.ApplyRetention(Retention{MaxBytes: 600}, time.Now())
		var got []byte
		for _, rg := range ranges {
			b := make([]byte, rg.N)
			if _, err := rg.File.ReadAt(b, rg.Off); err != nil {
				t.Fatalf("range of a removed segment: %v", err)
			}
			got = append(got, b...)
		}
		release()
		if !bytes.Equal(got, want[:2500]) {
			t.Fatal("ranges hold the wrong bytes")
		}
	})
}

// pattern is the byte at topic offset o in TestConcurrentReaders: readers
// can check any range without sharing state with the writer.
func pattern(o uint64) byte { return byte(o*7 + o>>9) }

func TestConcurrentReaders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		l := openLog(t, vfs.OS(), be, direct, tempDir(t, direct), 3000)
		defer l.Close()
		stop := make(chan struct{})
		errs := make(chan error, 4)
		for reader := range 3 {
			go func() {
				r := rand.New(rand.NewPCG(uint64(reader), 1))
				buf := make([]byte, 5000)
				for {
					select {
					case <-stop:
						errs <- nil
						return
					default:
					}
					start, end := l.Start(), l.End()
					if end == start {
						continue
					}
					off := start + uint64(r.IntN(int(end-start)))
					n, err := l.ReadAt(ctx, buf[:min(len(buf), int(end-off))], off)
					if err != nil && !errors.Is(err, ErrOffset) {
						errs <- fmt.Errorf("ReadAt(%d): %w", off, err)
						return
					}
					for i := range n {
						if buf[i] != pattern(off+uint64(i)) {
							errs <- fmt.Errorf("byte %d differs", off+uint64(i))
							return
						}
					}
					if es, err := l.Batches(off, 2000, nil); err != nil && !errors.Is(err, ErrOffset) {
						errs <- fmt.Errorf("Batches(%d): %w", off, err)
						return
					} else if len(es) > 0 && (es[0].Offset > off || es[0].End() <= off) {
						errs <- fmt.Errorf("Batches(%d) starts with %+v", off, es[0])
						return
					}
					if _, err := l.SeekTime(uint64(r.IntN(1000))); err != nil {
						errs <- fmt.Errorf("SeekTime: %w", err)
						return
					}
				}
			}()
		}
		var off uint64
		for i := range 600 {
			d := make([]byte, 1+i%300)
			for j := range d {
				d[j] = pattern(off + uint64(j))
			}
			off += uint64(len(d))
			if _, err := l.Append(Batch{Data: d, TimestampNS: uint64(i)}); err != nil {
				t.Fatal(err)
			}
			if i%5 == 4 {
				if err := l.Sync(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if i%100 == 99 {
				l.ApplyRetention(Retention{MaxBytes: 20000}, time.Now())
			}
		}
		close(stop)
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestProducerFieldsSurviveReopen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		dir := tempDir(t, direct)
		l := openLog(t, vfs.OS(), be, direct, dir, 2000)
		for i := range 40 {
			b := Batch{Data: batchData(rand.New(rand.NewPCG(3, uint64(i))), i, 200)}
			if i%3 != 0 {
				b.ProducerID, b.Sequence = uint64(100+i%2), uint64(i)
			}
			if _, err := l.Append(b); err != nil {
				t.Fatal(err)
			}
		}
		for _, bad := range []Batch{
			{Data: []byte("x"), ProducerID: 1},
			{Data: []byte("x"), Sequence: 1},
			{Data: []byte("x"), ProducerID: 1, Sequence: index.MaxSequence + 1},
		} {
			if _, err := l.Append(bad); !errors.Is(err, index.ErrEntry) {
				t.Fatalf("Append(%+v) = %v", bad, err)
			}
		}
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		l.Close()
		l = openLog(t, vfs.OS(), be, direct, dir, 2000)
		defer l.Close()
		var got []index.Entry
		for off := uint64(0); off < l.End(); {
			es, err := l.Batches(off, 1<<20, nil)
			if err != nil || len(es) == 0 {
				t.Fatalf("Batches(%d): %d, %v", off, len(es), err)
			}
			got = append(got, es...)
			off = es[len(es)-1].End()
		}
		if len(got) != 40 {
			t.Fatalf("%d entries", len(got))
		}
		for i, e := range got {
			wantP, wantS := uint64(100+i%2), uint64(i)
			if i%3 == 0 {
				wantP, wantS = 0, 0
			}
			if e.ProducerID != wantP || e.Sequence != wantS {
				t.Fatalf("entry %d: producer %d seq %d", i, e.ProducerID, e.Sequence)
			}
		}
	})
}
