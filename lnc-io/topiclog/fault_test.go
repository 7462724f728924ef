package topiclog

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
)

var (
	powerCycles = flag.Int("powercut.cycles", 150, "power-cut cycles per backend (scripts/soak.sh runs 10000)")
	tornTails   = flag.Int("torn.tails", 150, "torn tails per backend (scripts/soak.sh runs 10000)")
)

// model is the sequence of batches ever appended, in order; after a
// recovery it is cut to what the log holds.
type model struct {
	batches [][]byte
	acked   int // batches [0, acked) were acknowledged by a Sync
}

// check verifies that the log holds exactly a batch-prefix of the model,
// covering at least every acknowledged batch, cuts the model to it, and
// returns how many batches the log holds.
func (m *model) check(t *testing.T, l *Log, what string) int {
	t.Helper()
	if l.Start() != 0 {
		t.Fatalf("%s: log starts at %d", what, l.Start())
	}
	content := readAll(t, l)
	k, pos := 0, 0
	for k < len(m.batches) && pos+len(m.batches[k]) <= len(content) {
		if !bytes.Equal(content[pos:pos+len(m.batches[k])], m.batches[k]) {
			t.Fatalf("%s: batch %d at offset %d holds other bytes (I3/I5)", what, k, pos)
		}
		pos += len(m.batches[k])
		k++
	}
	if pos != len(content) {
		t.Fatalf("%s: %d bytes after the last whole batch (%d of %d batches, %d bytes): served data that was never a batch",
			what, len(content)-pos, k, len(m.batches), len(content))
	}
	if k < m.acked {
		t.Fatalf("%s: acknowledged batches lost: log holds %d, %d were acked (I1)", what, k, m.acked)
	}
	// The index agrees with the batches.
	var off uint64
	for i := 0; i < k; {
		es, err := l.Batches(off, 1<<20, nil)
		if err != nil || len(es) == 0 {
			t.Fatalf("%s: Batches(%d): %d, %v", what, off, len(es), err)
		}
		for _, e := range es {
			if int(e.Length) != len(m.batches[i]) || e.Dialect.Sum(m.batches[i]) != e.CRC {
				t.Fatalf("%s: index entry %d does not describe batch %d", what, e.Offset, i)
			}
			off = e.End()
			i++
		}
	}
	m.batches = m.batches[:k]
	m.acked = k
	return k
}

func (m *model) appendRandom(r *rand.Rand, l *Log, n int) error {
	return m.appendSized(r, l, n, 300)
}

// appendSized appends n batches of up to maxLen random bytes (plus a
// header).
func (m *model) appendSized(r *rand.Rand, l *Log, n, maxLen int) error {
	for range n {
		d := batchData(r, len(m.batches), maxLen)
		if _, err := l.Append(Batch{Data: d, TimestampNS: uint64(len(m.batches))}); err != nil {
			return err
		}
		m.batches = append(m.batches, d)
	}
	return nil
}

// loopShape sizes what a power-cut loop writes.
type loopShape struct {
	name              string
	segSize, prealloc int64
	maxLen            int // batch bytes, plus a header
}

var (
	// smallShape: many tiny segments, Syncs of a few hundred bytes.
	smallShape = loopShape{name: "small", segSize: 2048, prealloc: 4096, maxLen: 300}
	// chunkShape: Syncs of up to ~20 KiB, which direct mode splits into
	// several chunks (and commits) of the tests' one-block buffers; no
	// preallocation, so that only the padding makes sealing trim a file.
	chunkShape = loopShape{name: "chunks", segSize: 48 << 10, prealloc: -1, maxLen: 3000}
)

// cyclesPerLog is how many cycles the fault loops run on one log before
// they start a fresh one. A log that only grows keeps two descriptors open
// per segment and rechecks every segment at each reopen: the first 10,000-
// cycle soak ran out of descriptors (RLIMIT_NOFILE 20,000) near cycle
// 8,300, with 9,500 segments, and spent most of its time in recovery.
const cyclesPerLog = 500

// powerCutLoop appends and syncs under a seeded schedule, cuts the power
// at a random operation, reopens and checks, cycles times. It returns the
// number of cycles in which acknowledged batches were lost (only the
// negative control tolerates that) and the acks seen.
func powerCutLoop(t *testing.T, be backend.Backend, direct bool, shape loopShape, seed uint64, cycles int, tolerateLoss bool) (lossCycles, acks int) {
	r := rand.New(rand.NewPCG(seed, 77))
	fs := faultfs.New(vfs.OS(), seed)
	base := t.TempDir()
	dir := filepath.Join(base, "topic")
	var m model
	for cycle := range cycles {
		if cycle > 0 && cycle%cyclesPerLog == 0 {
			dir, m = filepath.Join(base, fmt.Sprintf("topic-%d", cycle/cyclesPerLog)), model{}
		}
		fs.SetKeepUnsynced(cycle%2 == 1)
		l, err := Open(dir, Options{FS: fs, Backend: be, Direct: direct, SegmentSize: shape.segSize, Prealloc: shape.prealloc})
		if err != nil && tolerateLoss && errors.Is(err, ErrCorrupt) {
			t.Logf("cycle %d: loss detected: %v", cycle, err)
			return 1, acks
		}
		if err != nil {
			t.Fatalf("cycle %d: reopen: %v (%v)", cycle, err, fs.LastCut())
		}
		if tolerateLoss {
			before := m.acked
			content := readAll(t, l)
			if !m.isPrefixCovering(content) {
				lossCycles++
				t.Logf("cycle %d: loss detected: %d bytes left, %d batches were acked", cycle, len(content), before)
				l.Close()
				return lossCycles, acks
			}
		}
		m.check(t, l, fmt.Sprintf("cycle %d", cycle))
		fs.CutPowerAfterRandom(60)
		for {
			if err := m.appendSized(r, l, 1+r.IntN(6), shape.maxLen); err != nil {
				// Append syncs when it rolls a segment: only the cut may
				// stop it.
				if !errors.Is(err, faultfs.ErrPoweredOff) {
					t.Fatalf("cycle %d: Append: %v", cycle, err)
				}
				break
			}
			if err := l.Sync(ctx); err != nil {
				if !errors.Is(err, faultfs.ErrPoweredOff) {
					t.Fatalf("cycle %d: Sync: %v", cycle, err)
				}
				break
			}
			m.acked = len(m.batches)
			acks++
		}
		l.Close()
		if err := fs.PowerOn(); err != nil {
			t.Fatal(err)
		}
	}
	return lossCycles, acks
}

// isPrefixCovering reports whether content is a batch-prefix of the model
// holding every acknowledged batch.
func (m *model) isPrefixCovering(content []byte) bool {
	pos := 0
	for k, b := range m.batches {
		if pos == len(content) {
			return k >= m.acked
		}
		if pos+len(b) > len(content) || !bytes.Equal(content[pos:pos+len(b)], b) {
			return false
		}
		pos += len(b)
	}
	return pos == len(content)
}

func TestPowerCut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		shapes := []loopShape{smallShape}
		if direct {
			shapes = append(shapes, chunkShape)
		}
		for _, shape := range shapes {
			t.Run("shape="+shape.name, func(t *testing.T) {
				_, acks := powerCutLoop(t, be, direct, shape, 1, *powerCycles, false)
				t.Logf("power-cut cycles=%d acked syncs=%d violations=0", *powerCycles, acks)
				if acks == 0 {
					t.Fatal("no Sync ever succeeded: the loop tested nothing")
				}
			})
		}
	})
}

// TestPowerCutNegativeControl runs the same loop with fdatasync switched
// off: the checker must find lost acknowledged batches.
func TestPowerCutNegativeControl(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		testSkipSync = true
		defer func() { testSkipSync = false }()
		loss, _ := powerCutLoop(t, be, direct, smallShape, 2, 50, true)
		if loss == 0 {
			t.Fatal("50 cycles without fdatasync lost nothing: the power-cut check cannot fail")
		}
	})
}

func TestTornTails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		r := rand.New(rand.NewPCG(5, 5))
		fs := faultfs.New(vfs.OS(), 5)
		base := t.TempDir()
		dir := filepath.Join(base, "topic")
		var m model
		torn, acked := 0, 0
		for tail := range *tornTails {
			if tail > 0 && tail%cyclesPerLog == 0 {
				acked += m.acked
				dir, m = filepath.Join(base, fmt.Sprintf("topic-%d", tail/cyclesPerLog)), model{}
			}
			l, err := Open(dir, Options{FS: fs, Backend: be, Direct: direct, SegmentSize: 4096, Prealloc: -1})
			if err != nil {
				t.Fatalf("tail %d: %v", tail, err)
			}
			m.check(t, l, fmt.Sprintf("tail %d", tail))
			if err := m.appendRandom(r, l, 1+r.IntN(5)); err != nil {
				t.Fatal(err)
			}
			if err := l.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			m.acked = len(m.batches)
			// More batches reach the disk, but their acks are "lost":
			// only they may be torn.
			ackedEnd := l.End()
			if err := m.appendRandom(r, l, 1+r.IntN(5)); err != nil {
				t.Fatal(err)
			}
			if err := l.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			segs := l.Segments()
			last := segs[len(segs)-1]
			end := l.End()
			l.Close()
			from := max(ackedEnd, last)
			dataPath, idxPath := segmentPaths(dir, last)
			unackedData := int(end - from)
			if unackedData > 0 {
				// In direct mode the file goes on past the last batch with
				// zero padding: a tear may take that and every unacked byte.
				st, err := fs.Stat(dataPath)
				if err != nil {
					t.Fatal(err)
				}
				unackedData += int(st.Size() - int64(end-last))
			}
			unackedEntries := 0
			es, _ := indexEntriesFrom(fs, idxPath, from)
			unackedEntries = es
			if r.IntN(2) == 0 && unackedData > 0 {
				if _, _, err := fs.TearTailRandom(dataPath, unackedData); err != nil {
					t.Fatal(err)
				}
				torn++
			} else if unackedEntries > 0 {
				if _, _, err := fs.TearTailRandom(idxPath, unackedEntries*index.EntrySize); err != nil {
					t.Fatal(err)
				}
				torn++
			}
		}
		t.Logf("torn tails=%d acknowledged batches=%d violations=0", torn, acked+m.acked)
	})
}

// indexEntriesFrom counts the entries of an index file whose batches start
// at or after off.
func indexEntriesFrom(fs vfs.FS, path string, off uint64) (int, error) {
	f, err := fs.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, _ := f.Size()
	n := 0
	b := make([]byte, index.EntrySize)
	for i := int((size - index.HeaderSize) / index.EntrySize); i > 0; i-- {
		if _, err := f.ReadAt(b, index.EntryOffset(i-1)); err != nil {
			return n, err
		}
		e, err := index.DecodeEntry(b)
		if err != nil || e.Offset < off {
			break
		}
		n++
	}
	return n, nil
}

func TestNoSpace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		r := rand.New(rand.NewPCG(6, 6))
		fs := faultfs.New(vfs.OS(), 6)
		dir := filepath.Join(t.TempDir(), "topic")
		var m model
		l, err := Open(dir, Options{FS: fs, Backend: be, Direct: direct, SegmentSize: 8192, Prealloc: -1})
		if err != nil {
			t.Fatal(err)
		}
		fs.SetSpaceLimit(20000)
		var syncErr error
		for i := 0; i < 1000 && syncErr == nil; i++ {
			if err := m.appendRandom(r, l, 3); err != nil {
				syncErr = err
				break
			}
			if syncErr = l.Sync(ctx); syncErr == nil {
				m.acked = len(m.batches)
			}
		}
		if !errors.Is(syncErr, syscall.ENOSPC) {
			t.Fatalf("filling the disk: %v, want ENOSPC", syncErr)
		}
		// Sticky: nothing is acknowledged after the error, even with space.
		fs.FreeSpace()
		if err := m.appendRandom(r, l, 1); !errors.Is(err, ErrWriteFailed) {
			t.Fatalf("Append after ENOSPC = %v", err)
		}
		if err := l.Sync(ctx); !errors.Is(err, ErrWriteFailed) {
			t.Fatalf("Sync after ENOSPC = %v", err)
		}
		l.Close()
		// Reopened with space again, the log works and lost nothing acked.
		l, err = Open(dir, Options{FS: fs, Backend: be, Direct: direct, SegmentSize: 8192, Prealloc: -1})
		if err != nil {
			t.Fatal(err)
		}
		m.check(t, l, "after ENOSPC")
		if err := m.appendRandom(r, l, 3); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		m.acked = len(m.batches)
		l.Close()
		fs.CutPower()
		l, _ = Open(dir, Options{FS: fs, Backend: be, Direct: direct, SegmentSize: 8192, Prealloc: -1})
		m.check(t, l, "after ENOSPC and a power cut")
		l.Close()
	})
}

func TestFsyncError(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		r := rand.New(rand.NewPCG(7, 7))
		fs := faultfs.New(vfs.OS(), 7)
		dir := filepath.Join(t.TempDir(), "topic")
		var m model
		l, err := Open(dir, Options{FS: fs, Backend: be, Direct: direct, SegmentSize: 8192, Prealloc: -1})
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			m.appendRandom(r, l, 2)
			if err := l.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			m.acked = len(m.batches)
		}
		fs.FailSyncs(faultfs.Once())
		m.appendRandom(r, l, 2)
		if err := l.Sync(ctx); !errors.Is(err, syscall.EIO) {
			t.Fatalf("Sync with a failing fsync = %v, want EIO", err)
		}
		// Never an ack after the EIO, though fsync works again.
		for range 3 {
			m.appendRandom(r, l, 1)
			if err := l.Sync(ctx); !errors.Is(err, ErrWriteFailed) {
				t.Fatalf("Sync after EIO = %v", err)
			}
		}
		l.Close()
		fs.CutPower()
		l, err = Open(dir, Options{FS: fs, Backend: be, Direct: direct, SegmentSize: 8192, Prealloc: -1})
		if err != nil {
			t.Fatal(err)
		}
		m.check(t, l, "after EIO and a power cut")
		l.Close()
	})
}
