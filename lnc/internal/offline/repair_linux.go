package offline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-core/sortkey"
	"github.com/lance-go/lance/lnc-core/tlv"
	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/topiclog"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// RepairResult tells what RepairTopic found and did.
type RepairResult struct {
	// Before is the scan before any change; After the scan after the
	// changes (Before itself when nothing was changed).
	Before, After *Topic
	// Actions lists the changes in the order they were made: lnc's own
	// index rebuilds, then what topiclog's recovery did.
	Actions []string
	// Refused, when not empty, says why repair left the topic alone.
	Refused string
	// Warnings tell of batches that checked out and were cut anyway.
	Warnings []string
}

// chunkTarget is the size of the batches an index rebuild makes where the
// index no longer says where batches start.
const chunkTarget = 1 << 20

// RepairTopic repairs the topic in td through fsys (an Overlay for a dry
// run):
//
//  1. It refuses, changing nothing, when offsets would be missing after
//     any repair: a segment whose data file is gone between two others, or
//     segments that do not follow each other.
//  2. It rebuilds, from the data, the index of every segment that
//     topiclog's recovery would reject or empty although it holds batches:
//     a segment without an index, a sealed segment whose index header or
//     entries are damaged beyond the one lone entry that recovery
//     rebuilds itself, the newest segment with a damaged header or with
//     damaged entries before batches that check out. Entries that still
//     decode and fit are kept as they are (with their CRC, so that
//     damaged data stays detectable); where none does, batches are cut at
//     TLV record boundaries into pieces of about 1 MiB (or 1 MiB pieces
//     of data that is not TLV), with the CRC-32C of their bytes and the
//     timestamp and sort key of the batch before them.
//  3. It opens the topic with topiclog.Open, whose recovery removes
//     leftover files, rebuilds a lone damaged entry of a sealed segment and
//     cuts the newest segment after its last batch that checks out.
//  4. It scans the topic again.
//
// be is only needed by topiclog.Open; nothing is written through it.
func RepairTopic(fsys vfs.FS, be backend.Backend, td TopicDir) (*RepairResult, error) {
	before, err := ScanTopic(fsys, td, ScanOptions{CheckData: true})
	if err != nil {
		return nil, err
	}
	res := &RepairResult{Before: before, After: before}
	segFindings := 0
	for _, f := range before.Findings {
		if f.File != "" {
			segFindings++
		}
	}
	if segFindings == 0 || len(before.Segments) == 0 {
		return res, nil
	}

	segs := before.Segments
	var kept []*Segment
	for i, s := range segs {
		end := i == 0 || i == len(segs)-1
		switch {
		case s.HasData && (s.HasIndex || s.DataSize > 0 || !end):
			kept = append(kept, s)
		case s.HasIndex && !s.HasData && !end:
			res.Refused = fmt.Sprintf("the data file of segment %s is missing: the offsets it held cannot be restored", s.DataFile())
			return res, nil
		}
	}
	for i := 1; i < len(kept); i++ {
		p, s := kept[i-1], kept[i]
		if pe := p.Base + uint64(p.DataSize); s.Base != pe {
			res.Refused = fmt.Sprintf("segment %s ends at offset %d but %s starts at %d: offsets cannot be renumbered", p.DataFile(), pe, s.DataFile(), s.Base)
			return res, nil
		}
	}

	var prevLast *index.Entry
	for i, s := range kept {
		newest := i == len(kept)-1
		d := &indexData{hdrErr: errors.New("no index file")}
		if s.HasIndex {
			if d, err = readIndex(fsys, filepath.Join(td.Dir, s.IndexFile())); err != nil {
				return nil, err
			}
		}
		if why := needsRebuild(s, d, newest); why != "" {
			entries, keptN, err := rebuildIndex(fsys, td.Dir, s, d, newest, prevLast)
			if err != nil {
				return nil, err
			}
			res.Actions = append(res.Actions, fmt.Sprintf("rebuild %s (%s): %d entries, %d kept from the old index, %d made from the data",
				s.IndexFile(), why, len(entries), keptN, len(entries)-keptN))
			d = &indexData{entries: entries, bad: make([]bool, len(entries))}
		}
		for j := len(d.entries) - 1; j >= 0; j-- {
			if !d.bad[j] {
				e := d.entries[j]
				prevLast = &e
				break
			}
		}
	}

	j := &journal{FS: fsys, dir: td.Dir}
	l, err := topiclog.Open(td.Dir, topiclog.Options{FS: j, Backend: be, Prealloc: -1})
	if err != nil {
		return nil, fmt.Errorf("offline: recovery of topic %q: %w", td.Name, err)
	}
	if err := l.Close(); err != nil {
		return nil, fmt.Errorf("offline: recovery of topic %q: %w", td.Name, err)
	}
	res.Actions = append(res.Actions, j.lines...)

	after, err := ScanTopic(fsys, td, ScanOptions{CheckData: true})
	if err != nil {
		return nil, err
	}
	res.After = after
	for _, b := range before.Segments {
		if !b.Newest || b.Batches == 0 {
			continue
		}
		for _, a := range after.Segments {
			if a.Base == b.Base && a.Batches < b.Batches && hasDamage(before, b) {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%d batches of %s that checked out were cut with the damaged batch before them: recovery keeps the newest segment only up to its first batch that fails",
					b.Batches-a.Batches, b.DataFile()))
			}
		}
	}
	return res, nil
}

func hasDamage(t *Topic, s *Segment) bool {
	for _, f := range t.Findings {
		if f.Segment == s.Base && f.File != "" && f.Class == Damage {
			return true
		}
	}
	return false
}

// indexData is an index file read whole.
type indexData struct {
	hdr     index.Header
	hdrErr  error
	entries []index.Entry
	bad     []bool // entry does not decode
}

func (d *indexData) headerOK(base uint64) bool { return d.hdrErr == nil && d.hdr.BaseOffset == base }

func readIndex(fsys vfs.FS, path string) (*indexData, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, fmt.Errorf("offline: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("offline: %w", err)
	}
	d := &indexData{}
	hdr := make([]byte, index.HeaderSize)
	n, err := f.ReadAt(hdr, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("offline: read %s: %w", path, err)
	}
	d.hdr, d.hdrErr = index.DecodeHeader(hdr[:n])
	count := 0
	if size > index.HeaderSize {
		count = int((size - index.HeaderSize) / index.EntrySize)
	}
	raw := make([]byte, 1024*index.EntrySize)
	for from := 0; from < count; from += 1024 {
		k := min(1024, count-from)
		buf := raw[:k*index.EntrySize]
		if _, err := f.ReadAt(buf, index.EntryOffset(from)); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("offline: read %s: %w", path, err)
		}
		for i := range k {
			e, err := index.DecodeEntry(buf[i*index.EntrySize:])
			d.entries = append(d.entries, e)
			d.bad = append(d.bad, err != nil)
		}
	}
	return d, nil
}

// needsRebuild says why the segment's index must be rebuilt before
// topiclog's recovery sees it, or "" when recovery handles it alone.
func needsRebuild(s *Segment, d *indexData, newest bool) string {
	switch {
	case !s.HasIndex:
		return "no index file"
	case !newest && !d.headerOK(s.Base):
		return "damaged index header"
	case !newest && !sealedRecoverable(s, d):
		return "index entries damaged beyond what recovery rebuilds"
	case newest && !d.headerOK(s.Base) && decodesAny(d):
		return "damaged index header"
	case newest && d.headerOK(s.Base) && goodAfterBreak(s, d):
		return "damaged index entries before batches that check out"
	}
	return ""
}

// sealedRecoverable mirrors topiclog's check of a sealed segment: every
// entry continues the chain, except lone undecodable entries between two
// that decode, and the chain ends exactly at the end of the data.
func sealedRecoverable(s *Segment, d *indexData) bool {
	next, dataEnd := s.Base, s.Base+uint64(s.DataSize)
	n := len(d.entries)
	for i := range n {
		e := &d.entries[i]
		if !d.bad[i] && e.Offset == next && e.End() <= dataEnd {
			next = e.End()
			continue
		}
		if d.bad[i] && i+1 < n && !d.bad[i+1] && d.entries[i+1].Offset > next {
			end := d.entries[i+1].Offset
			if end > dataEnd || end-next > 1<<32-1 {
				return false
			}
			next = end
			continue
		}
		return false
	}
	return next == dataEnd
}

func decodesAny(d *indexData) bool {
	for _, b := range d.bad {
		if !b {
			return true
		}
	}
	return false
}

// goodAfterBreak reports whether, after the prefix of entries that
// topiclog's recovery keeps in the newest segment (ignoring CRCs), there is
// an entry that decodes and fits further on, which recovery would cut.
func goodAfterBreak(s *Segment, d *indexData) bool {
	next, dataEnd := s.Base, s.Base+uint64(s.DataSize)
	i := 0
	for ; i < len(d.entries); i++ {
		e := &d.entries[i]
		if d.bad[i] || e.Offset != next || e.End() > dataEnd {
			break
		}
		next = e.End()
	}
	for ; i < len(d.entries); i++ {
		e := &d.entries[i]
		if !d.bad[i] && e.Offset >= next && e.End() <= dataEnd {
			return true
		}
	}
	return false
}

// rebuildIndex writes a new index for s and returns its entries and how
// many came from the old index.
func rebuildIndex(fsys vfs.FS, dir string, s *Segment, d *indexData, newest bool, prevLast *index.Entry) ([]index.Entry, int, error) {
	dataEnd := s.Base + uint64(s.DataSize)
	var anchors []index.Entry
	cur := s.Base
	for i, e := range d.entries {
		if d.bad[i] || e.Offset < cur || e.End() > dataEnd {
			continue
		}
		anchors = append(anchors, e)
		cur = e.End()
	}
	data, err := fsys.Open(filepath.Join(dir, s.DataFile()))
	if err != nil {
		return nil, 0, fmt.Errorf("offline: %w", err)
	}
	defer data.Close()
	var mtime time.Time
	if st, err := fsys.Stat(filepath.Join(dir, s.DataFile())); err == nil {
		mtime = st.ModTime()
	}
	rd := newSeqReader(data)

	var out []index.Entry
	fill := func(start, end uint64, next *index.Entry, stopAtTorn bool) error {
		var model index.Entry
		switch {
		case len(out) > 0:
			model = out[len(out)-1]
		case prevLast != nil:
			model = *prevLast
		case next != nil:
			model = *next
		default:
			ts := uint64(max(mtime.UnixNano(), 0))
			key, err := sortkey.New(ts, 0, 0, 0)
			if err != nil {
				return fmt.Errorf("offline: %w", err)
			}
			model = index.Entry{TimestampNS: ts, SortKey: key}
		}
		chunks, err := splitBatches(rd, s.Base, start, end, stopAtTorn)
		if err != nil {
			return fmt.Errorf("offline: read %s: %w", data.Name(), err)
		}
		for _, c := range chunks {
			crc, err := rd.crc(checksum.Castagnoli, int64(c.off-s.Base), int64(c.n))
			if err != nil {
				return fmt.Errorf("offline: read %s: %w", data.Name(), err)
			}
			out = append(out, index.Entry{
				Offset: c.off, Length: uint32(c.n), CRC: crc, Dialect: checksum.Castagnoli,
				TimestampNS: model.TimestampNS, SortKey: model.SortKey, RecordCount: c.records,
			})
		}
		return nil
	}
	pos := s.Base
	for i := range anchors {
		a := &anchors[i]
		if a.Offset > pos {
			if err := fill(pos, a.Offset, a, false); err != nil {
				return nil, 0, err
			}
		}
		out = append(out, *a)
		pos = a.End()
	}
	switch {
	case !newest && pos < dataEnd:
		if err := fill(pos, dataEnd, nil, false); err != nil {
			return nil, 0, err
		}
	case newest && len(anchors) == 0 && pos < dataEnd:
		// Nothing says where the newest segment's acknowledged data ends:
		// index every whole record; a torn last one is left for recovery
		// to cut.
		if err := fill(pos, dataEnd, nil, true); err != nil {
			return nil, 0, err
		}
	}
	created := uint64(time.Now().UnixNano())
	if d.headerOK(s.Base) {
		created = d.hdr.CreatedNS
	}
	if err := writeIndex(fsys, filepath.Join(dir, s.IndexFile()), index.Header{BaseOffset: s.Base, CreatedNS: created}, out); err != nil {
		return nil, 0, err
	}
	return out, len(anchors), nil
}

// chunk is a stretch of data that becomes one batch of a rebuilt index.
type chunk struct {
	off     uint64
	n       uint64
	records uint32
}

// splitBatches cuts [start, end) into batches: whole TLV records, grouped
// up to chunkTarget bytes (a larger record alone), as long as the data
// parses as TLV; from the first byte that does not, plain chunkTarget
// pieces. With stopAtTorn, a last record cut short by end is left out.
func splitBatches(rd *seqReader, base, start, end uint64, stopAtTorn bool) ([]chunk, error) {
	var out []chunk
	cur := chunk{off: start}
	flush := func() {
		if cur.n > 0 {
			out = append(out, cur)
		}
	}
	pos := start
	var hdr [tlv.HeaderSize]byte
	for pos < end {
		rest := end - pos
		if rest < tlv.HeaderSize {
			if stopAtTorn {
				break
			}
			cur.n += rest
			break
		}
		if err := rd.read(hdr[:], int64(pos-base)); err != nil {
			return nil, err
		}
		t, n := tlv.Type(hdr[0]), uint64(binary.LittleEndian.Uint32(hdr[1:]))
		plausible := t != tlv.TypeReserved && (t != tlv.TypeNull || n == 0) && n <= tlv.DefaultMaxValueLen
		size := tlv.HeaderSize + n
		switch {
		case plausible && size <= rest:
			if cur.n > 0 && cur.n+size > chunkTarget {
				flush()
				cur = chunk{off: pos}
			}
			cur.n += size
			cur.records++
			pos += size
			continue
		case plausible && stopAtTorn:
			flush()
			return out, nil
		}
		// Not TLV from here on: plain pieces.
		flush()
		for pos < end {
			k := min(uint64(chunkTarget), end-pos)
			out = append(out, chunk{off: pos, n: k})
			pos += k
		}
		return out, nil
	}
	flush()
	return out, nil
}

// writeIndex replaces the index at path with hdr and entries: a temporary
// file is written and synced, renamed over it, and the directory synced.
func writeIndex(fsys vfs.FS, path string, hdr index.Header, entries []index.Entry) error {
	tmp := path + rebuildSuffix
	if err := fsys.Remove(tmp); err != nil && !isNotExist(err) {
		return fmt.Errorf("offline: %w", err)
	}
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("offline: %w", err)
	}
	buf := index.AppendHeader(make([]byte, 0, 1024*index.EntrySize), hdr)
	off := int64(0)
	write := func() error {
		if _, err := f.WriteAt(buf, off); err != nil {
			return err
		}
		off += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	for i := range entries {
		buf = index.AppendEntry(buf, &entries[i])
		if len(buf) >= cap(buf)-index.EntrySize {
			if err := write(); err != nil {
				f.Close()
				return fmt.Errorf("offline: write %s: %w", tmp, err)
			}
		}
	}
	if err := write(); err != nil {
		f.Close()
		return fmt.Errorf("offline: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("offline: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("offline: %w", err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("offline: %w", err)
	}
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("offline: %w", err)
	}
	return nil
}
