package topiclog

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// recover opens every segment in the directory, checks it, and cuts the
// newest one back to its last valid batch.
func (l *Log) recover() error {
	fs := l.opts.FS
	names, err := fs.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("topiclog: %w", err)
	}
	type pair struct{ data, idx bool }
	found := map[uint64]*pair{}
	for _, name := range names {
		if base, ok := parseSegmentName(name, dataExt); ok {
			p := found[base]
			if p == nil {
				p = &pair{}
				found[base] = p
			}
			p.data = true
		} else if base, ok := parseSegmentName(name, indexExt); ok {
			p := found[base]
			if p == nil {
				p = &pair{}
				found[base] = p
			}
			p.idx = true
		}
	}
	bases := make([]uint64, 0, len(found))
	for b := range found {
		bases = append(bases, b)
	}
	slices.Sort(bases)

	// A segment missing one of its files is what a crash leaves of the
	// creation of the newest segment or of the removal of the oldest: the
	// leftover is removed. Anywhere else it is damage.
	removed := false
	for i := 0; i < len(bases); {
		p := found[bases[i]]
		if p.data && p.idx {
			i++
			continue
		}
		if i != 0 && i != len(bases)-1 {
			return fmt.Errorf("%w: segment %d in %s lacks its %s file", ErrCorrupt, bases[i], l.dir, missing(p.data))
		}
		s := &segment{base: bases[i]}
		dataPath, idxPath := s.paths(l.dir)
		for _, name := range []string{dataPath, idxPath} {
			if err := fs.Remove(name); err != nil && !isNotExist(err) {
				return fmt.Errorf("topiclog: remove leftover: %w", err)
			}
		}
		removed = true
		bases = slices.Delete(bases, i, i+1)
	}
	if removed {
		if err := fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("topiclog: %w", err)
		}
	}

	for i, base := range bases {
		s, err := l.openSegment(base, i == len(bases)-1)
		if err != nil {
			return err
		}
		if n := len(l.segs); n > 0 && l.segs[n-1].end() != base {
			s.release()
			return fmt.Errorf("%w: segment %d does not start where segment %d ends (%d)", ErrCorrupt, base, l.segs[n-1].base, l.segs[n-1].end())
		}
		l.segs = append(l.segs, s)
	}
	return nil
}

func missing(hasData bool) string {
	if hasData {
		return "index"
	}
	return "data"
}

func isNotExist(err error) bool { return errors.Is(err, errNotExist) }

// openSegment opens and checks one segment. The newest (last) one is
// recovered: cut back after its last batch whose entry and data check out.
// Older ones are sealed: they were complete and synced before the next one
// was created, so any damage there is reported, except a lone damaged
// index entry between two good ones, which is rebuilt.
func (l *Log) openSegment(base uint64, last bool) (*segment, error) {
	fs := l.opts.FS
	s := &segment{base: base, sealed: !last}
	dataPath, idxPath := s.paths(l.dir)
	var err error
	if s.data, err = fs.OpenRW(dataPath); err != nil {
		return nil, fmt.Errorf("topiclog: %w", err)
	}
	if s.idx, err = fs.OpenRW(idxPath); err != nil {
		s.data.Close()
		return nil, fmt.Errorf("topiclog: %w", err)
	}
	s.refs.Store(1)
	if err := l.checkSegment(s, last); err != nil {
		s.release()
		return nil, err
	}
	return s, nil
}

func (l *Log) checkSegment(s *segment, last bool) error {
	dataSize, err := s.data.Size()
	if err != nil {
		return fmt.Errorf("topiclog: %w", err)
	}
	idxSize, err := s.idx.Size()
	if err != nil {
		return fmt.Errorf("topiclog: %w", err)
	}
	hdr := make([]byte, index.HeaderSize)
	_, rerr := s.idx.ReadAt(hdr, 0)
	h, herr := index.DecodeHeader(hdr)
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		return fmt.Errorf("topiclog: read %s: %w", s.idx.Name(), rerr)
	}
	if herr == nil && h.BaseOffset != s.base {
		herr = fmt.Errorf("index says base %d", h.BaseOffset)
	}
	if herr != nil || rerr != nil {
		if !last {
			return fmt.Errorf("%w: %s: header: %w", ErrCorrupt, s.idx.Name(), errors.Join(herr, rerr))
		}
		// The header is synced before any entry is written. So when the
		// first entry is there, whole and where the file name says the
		// segment starts, the header was durable once and has been
		// damaged since: write it again rather than drop acknowledged
		// batches. Otherwise the header never became durable, no batch
		// in the segment was acknowledged, and it starts afresh.
		if !l.firstEntryProvesHeader(s, idxSize) {
			return l.resetSegment(s)
		}
		if err := l.rewriteHeader(s); err != nil {
			return err
		}
	}

	// Read every entry; keep the good prefix, rebuilding lone damaged
	// entries of sealed segments.
	n := int((idxSize - index.HeaderSize) / index.EntrySize)
	raw := make([]byte, 0, min(n, 1024)*index.EntrySize)
	entries := make([]index.Entry, 0, min(n, 1024))
	bad := make([]bool, 0, min(n, 1024))
	for from := 0; from < n; from += 1024 {
		k := min(1024, n-from)
		raw = raw[:k*index.EntrySize]
		if _, err := s.idx.ReadAt(raw, index.EntryOffset(from)); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("topiclog: read %s: %w", s.idx.Name(), err)
		}
		for i := range k {
			e, err := index.DecodeEntry(raw[i*index.EntrySize:])
			entries = append(entries, e)
			bad = append(bad, err != nil)
		}
	}
	valid := 0 // entries [0, valid) are good
	next := s.base
	for i := range entries {
		e := &entries[i]
		if !bad[i] && e.Offset == next && e.End() <= s.base+uint64(dataSize) {
			next = e.End()
			valid++
			continue
		}
		if !last && bad[i] && i+1 < len(entries) && !bad[i+1] && entries[i+1].Offset > next {
			// A lone damaged entry of a sealed segment: its neighbours
			// prove where the batch starts and ends.
			rebuilt, err := l.rebuildEntry(s, i, next, entries[i+1].Offset, entries, dataSize)
			if err != nil {
				return err
			}
			entries[i], bad[i] = rebuilt, false
			next = rebuilt.End()
			valid++
			continue
		}
		break
	}
	if !last {
		if valid != n || next != s.base+uint64(dataSize) {
			return fmt.Errorf("%w: sealed segment %s: %d of %d index entries check out, covering %d of %d data bytes",
				ErrCorrupt, s.data.Name(), valid, n, next-s.base, dataSize)
		}
	} else {
		// A commit is proven complete, all its batches acknowledged, when
		// an entry written after it exists: its writes began only after
		// the commit's sync returned. A CRC failure up to there is damage
		// to acknowledged data, kept (and never served, the read path
		// checks every batch); only the last commit, which may be torn,
		// is cut back at its first failure.
		proven := -1
		for i := valid - 2; i >= 0; i-- {
			if entries[i].CommitEnd {
				proven = i
				break
			}
		}
		var damaged []uint64
		if valid, damaged, err = verifyData(s, entries[:valid], proven); err != nil {
			return err
		}
		l.damaged = append(l.damaged, damaged...)
		if err := l.cutBack(s, entries[:valid], idxSize, dataSize); err != nil {
			return err
		}
	}
	for i := range valid {
		s.addEntry(&entries[i])
	}
	s.size = 0
	if valid > 0 {
		s.size = int64(entries[valid-1].End() - s.base)
	}
	s.prealloc = s.size
	return nil
}

// verifyData checks the CRC of each batch in order and returns how many
// leading batches are kept: a batch at an index up to proven that fails is
// kept and its offset listed in damaged; the first failure after proven
// ends the kept batches.
func verifyData(s *segment, entries []index.Entry, proven int) (kept int, damaged []uint64, err error) {
	const chunk = 4 << 20
	buf := make([]byte, 0, chunk)
	var bufStart uint64 // segment-relative offset of buf[0]
	for i := range entries {
		e := &entries[i]
		start := e.Offset - s.base
		crc := uint32(0)
		for pos := start; pos < start+uint64(e.Length); {
			if pos < bufStart || pos >= bufStart+uint64(len(buf)) {
				buf = buf[:chunk]
				n, err := s.data.ReadAt(buf, int64(pos))
				if err != nil && !errors.Is(err, io.EOF) {
					return i, damaged, fmt.Errorf("topiclog: read %s: %w", s.data.Name(), err)
				}
				buf, bufStart = buf[:n], pos
				if n == 0 {
					return i, damaged, nil // shorter than the index says
				}
			}
			lo := pos - bufStart
			hi := min(uint64(len(buf)), start+uint64(e.Length)-bufStart)
			crc = e.Dialect.Update(crc, buf[lo:hi])
			pos = bufStart + hi
		}
		if crc != e.CRC {
			if i > proven {
				return i, damaged, nil
			}
			damaged = append(damaged, e.Offset)
		}
	}
	return len(entries), damaged, nil
}

// cutBack truncates the newest segment's files after its valid entries and
// makes that durable.
func (l *Log) cutBack(s *segment, valid []index.Entry, idxSize, dataSize int64) error {
	wantIdx := index.EntryOffset(len(valid))
	wantData := int64(0)
	if len(valid) > 0 {
		wantData = int64(valid[len(valid)-1].End() - s.base)
	}
	for _, c := range []struct {
		f         vfs.File
		have, cut int64
	}{{s.idx, idxSize, wantIdx}, {s.data, dataSize, wantData}} {
		if c.have == c.cut {
			continue
		}
		if err := c.f.Truncate(c.cut); err != nil {
			return fmt.Errorf("topiclog: recover %s: %w", c.f.Name(), err)
		}
		if err := c.f.Sync(); err != nil {
			return fmt.Errorf("topiclog: recover %s: %w", c.f.Name(), err)
		}
	}
	return nil
}

// firstEntryProvesHeader reports whether s's index holds a valid first
// entry for a batch at s's base offset.
func (l *Log) firstEntryProvesHeader(s *segment, idxSize int64) bool {
	if idxSize < index.EntryOffset(1) {
		return false
	}
	b := make([]byte, index.EntrySize)
	if _, err := s.idx.ReadAt(b, index.EntryOffset(0)); err != nil {
		return false
	}
	e, err := index.DecodeEntry(b)
	return err == nil && e.Offset == s.base
}

// rewriteHeader writes s's index header afresh and syncs it.
func (l *Log) rewriteHeader(s *segment) error {
	hdr := index.AppendHeader(nil, index.Header{BaseOffset: s.base, CreatedNS: uint64(l.opts.Now().UnixNano())})
	if _, err := s.idx.WriteAt(hdr, 0); err != nil {
		return fmt.Errorf("topiclog: rewrite header of %s: %w", s.idx.Name(), err)
	}
	if err := s.idx.Sync(); err != nil {
		return fmt.Errorf("topiclog: rewrite header of %s: %w", s.idx.Name(), err)
	}
	return nil
}

// resetSegment empties the newest segment and rewrites its header.
func (l *Log) resetSegment(s *segment) error {
	hdr := index.AppendHeader(nil, index.Header{BaseOffset: s.base, CreatedNS: uint64(l.opts.Now().UnixNano())})
	for _, step := range []func() error{
		func() error { return s.data.Truncate(0) },
		s.data.Sync,
		func() error { return s.idx.Truncate(0) },
		func() error { _, err := s.idx.WriteAt(hdr, 0); return err },
		s.idx.Sync,
	} {
		if err := step(); err != nil {
			return fmt.Errorf("topiclog: reset segment %d: %w", s.base, err)
		}
	}
	return nil
}

// rebuildEntry rewrites the damaged entry i of a sealed segment from its
// neighbours: the batch spans [start, end). Its CRC is computed from the
// data (CRC-32C); its timestamp and sort key are its predecessor's (or its
// successor's, for the first entry), its record count 0.
func (l *Log) rebuildEntry(s *segment, i int, start, end uint64, entries []index.Entry, dataSize int64) (index.Entry, error) {
	if end > s.base+uint64(dataSize) || end-start > 1<<32-1 {
		return index.Entry{}, fmt.Errorf("%w: %s: damaged entry %d cannot be rebuilt", ErrCorrupt, s.idx.Name(), i)
	}
	data := make([]byte, end-start)
	if _, err := s.data.ReadAt(data, int64(start-s.base)); err != nil {
		return index.Entry{}, fmt.Errorf("topiclog: read %s: %w", s.data.Name(), err)
	}
	model := entries[i+1]
	if i > 0 {
		model = entries[i-1]
	}
	e := index.Entry{
		Offset:      start,
		Length:      uint32(end - start),
		CRC:         checksum.Castagnoli.Sum(data),
		Dialect:     checksum.Castagnoli,
		TimestampNS: model.TimestampNS,
		SortKey:     model.SortKey,
	}
	if _, err := s.idx.WriteAt(index.AppendEntry(nil, &e), index.EntryOffset(i)); err != nil {
		return index.Entry{}, fmt.Errorf("topiclog: rebuild %s entry %d: %w", s.idx.Name(), i, err)
	}
	if err := s.idx.Sync(); err != nil {
		return index.Entry{}, fmt.Errorf("topiclog: rebuild %s entry %d: %w", s.idx.Name(), i, err)
	}
	return e, nil
}
