package topiclog

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// File names: the base offset in 20 decimal digits, so that names sort
// like offsets, with .lnc for data and .idx for the index.
const (
	dataExt  = ".lnc"
	indexExt = ".idx"
)

func segmentName(base uint64, ext string) string { return fmt.Sprintf("%020d%s", base, ext) }

// parseSegmentName returns the base offset of a data or index file name.
func parseSegmentName(name, ext string) (uint64, bool) {
	stem, ok := strings.CutSuffix(name, ext)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	base, err := strconv.ParseUint(stem, 10, 64)
	return base, err == nil
}

// sparseEvery is how many index entries one in-memory sparse point covers:
// a lookup reads at most this many entries (4 KiB) from the index file.
const sparseEvery = 64

// segment is one data file and its index. Its fields are guarded by the
// Log's mutex, except the files themselves (safe for concurrent ReadAt)
// and refs.
type segment struct {
	base uint64
	data vfs.File
	idx  vfs.File

	// size and entries count what is durable: readers see no more. The
	// writer's own view of what it appended is in the Log's pending list.
	size    int64
	entries int
	// maxTS is the largest batch timestamp in the segment.
	maxTS uint64
	// sparse[i] is entry i*sparseEvery: its offset and the largest
	// timestamp of entries 0..i*sparseEvery.
	sparse []sparsePoint
	// prealloc is how far the data file has space reserved.
	prealloc int64
	// sealed segments never change again.
	sealed bool

	// refs counts readers holding the files open; the segment list holds
	// one reference. The files are closed when it drops to zero.
	refs atomic.Int32
}

type sparsePoint struct {
	offset uint64
	maxTS  uint64
}

func (s *segment) end() uint64 { return s.base + uint64(s.size) }

// addEntry records a durable entry in the in-memory summary.
func (s *segment) addEntry(e *index.Entry) {
	s.maxTS = max(s.maxTS, e.TimestampNS)
	if s.entries%sparseEvery == 0 {
		s.sparse = append(s.sparse, sparsePoint{offset: e.Offset, maxTS: s.maxTS})
	}
	s.entries++
	s.size = int64(e.End() - s.base)
}

func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference and closes the files with the last one.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.data.Close()
		s.idx.Close()
	}
}

// readEntries reads entries [from, from+len(dst)) of the index file.
func (s *segment) readEntries(from int, dst []index.Entry, buf []byte) ([]byte, error) {
	need := len(dst) * index.EntrySize
	if cap(buf) < need {
		buf = make([]byte, need)
	}
	buf = buf[:need]
	if _, err := s.idx.ReadAt(buf, index.EntryOffset(from)); err != nil && !errors.Is(err, io.EOF) {
		return buf, fmt.Errorf("topiclog: read index %s: %w", s.idx.Name(), err)
	}
	for i := range dst {
		e, err := index.DecodeEntry(buf[i*index.EntrySize:])
		if err != nil {
			return buf, fmt.Errorf("%w: %s entry %d: %w", ErrCorrupt, s.idx.Name(), from+i, err)
		}
		dst[i] = e
	}
	return buf, nil
}

// view is a snapshot of a segment's durable extent taken under the Log's
// mutex, with the segment acquired: readers use it without the lock while
// the writer goes on adding entries. (sparse is append-only, so the
// snapshot's elements never change.)
type view struct {
	*segment
	size    int64
	entries int
	sparse  []sparsePoint
}

func (v *view) end() uint64 { return v.base + uint64(v.size) }

// viewOf snapshots s; the caller holds the Log's mutex.
func viewOf(s *segment) view {
	return view{segment: s, size: s.size, entries: s.entries, sparse: s.sparse}
}

// findEntry returns the index of the entry holding offset off, which must
// lie in [base, end()), and the entry itself.
func (s *view) findEntry(off uint64, scratch []index.Entry, buf []byte) (int, index.Entry, []byte, error) {
	// The last sparse point at or before off.
	lo, hi := 0, len(s.sparse)
	for lo < hi {
		m := (lo + hi) / 2
		if s.sparse[m].offset <= off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	first := (lo - 1) * sparseEvery
	n := min(sparseEvery, s.entries-first)
	var err error
	if buf, err = s.readEntries(first, scratch[:n], buf); err != nil {
		return 0, index.Entry{}, buf, err
	}
	for i := n - 1; i >= 0; i-- {
		if scratch[i].Offset <= off {
			return first + i, scratch[i], buf, nil
		}
	}
	return 0, index.Entry{}, buf, fmt.Errorf("%w: %s: no entry holds offset %d", ErrCorrupt, s.idx.Name(), off)
}

// seekTime returns the index of the first entry whose timestamp is at
// least ts, using the prefix maxima; the segment's maxTS must be >= ts.
func (s *view) seekTime(ts uint64, scratch []index.Entry, buf []byte) (index.Entry, []byte, error) {
	// The first sparse point whose prefix maximum reaches ts; the answer
	// is at or before it, after the previous point.
	lo, hi := 0, len(s.sparse)
	for lo < hi {
		m := (lo + hi) / 2
		if s.sparse[m].maxTS >= ts {
			hi = m
		} else {
			lo = m + 1
		}
	}
	// Entries after point lo-1 up to point lo (or the end).
	first := 0
	if lo > 0 {
		first = (lo-1)*sparseEvery + 1
	}
	last := min(lo*sparseEvery, s.entries-1)
	for from := first; from <= last; from += len(scratch) {
		n := min(len(scratch), last-from+1)
		var err error
		if buf, err = s.readEntries(from, scratch[:n], buf); err != nil {
			return index.Entry{}, buf, err
		}
		for i := range n {
			if scratch[i].TimestampNS >= ts {
				return scratch[i], buf, nil
			}
		}
	}
	return index.Entry{}, buf, fmt.Errorf("%w: %s: timestamp summary disagrees with the entries", ErrCorrupt, s.idx.Name())
}

func (s *segment) paths(dir string) (data, idx string) { return segmentPaths(dir, s.base) }

// segmentPaths returns the data and index file paths of the segment at
// base in dir.
func segmentPaths(dir string, base uint64) (data, idx string) {
	return filepath.Join(dir, segmentName(base, dataExt)), filepath.Join(dir, segmentName(base, indexExt))
}
