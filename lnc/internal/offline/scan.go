package offline

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// Class says how serious a Finding is.
type Class int

const (
	// Note is no problem: a leftover file that recovery removes.
	Note Class = iota
	// Tail is a torn tail of the newest segment: batches or bytes after
	// the last batch that checks out, which is what a crash leaves of a
	// write that was never acknowledged. Recovery (the server's start or
	// lnc repair) cuts it.
	Tail
	// Damage is an index or data that fails a check where acknowledged
	// batches are, or may be.
	Damage
)

func (c Class) String() string {
	switch c {
	case Note:
		return "note"
	case Tail:
		return "torn tail"
	}
	return "damage"
}

// Finding is one problem of a topic.
type Finding struct {
	Class Class
	// File is the base name of the file concerned, "" for the topic.
	File string
	// Segment is the base offset of the segment concerned.
	Segment uint64
	// Text describes the problem.
	Text string
}

func (f Finding) String() string {
	if f.File == "" {
		return f.Text
	}
	return f.File + ": " + f.Text
}

// Segment is what a scan found about one segment.
type Segment struct {
	// Base is the offset of the segment's first byte, from its file names.
	Base uint64
	// HasData and HasIndex say which of the two files exist.
	HasData, HasIndex bool
	// DataSize and IndexSize are the files' sizes.
	DataSize, IndexSize int64
	// Newest is set on the segment recovery treats as the active one.
	Newest bool
	// HeaderOK says the index header decodes and names Base; CreatedNS
	// is its creation time.
	HeaderOK  bool
	CreatedNS uint64
	// Entries counts the index's whole 64-byte entries.
	Entries int
	// Batches counts the entries that check out (decode, continue the
	// chain of offsets, lie inside the data file and, when data was
	// checked, match their CRC); Records sums their record counts.
	Batches int
	Records uint64
	// FirstTS and LastTS are the producer timestamps of the first and
	// last batches that check out.
	FirstTS, LastTS uint64
	// IndexedEnd is where the index's chain of batches ends.
	IndexedEnd uint64
	// Padding counts zero bytes after the last batch of the newest
	// segment, shorter than a block: what O_DIRECT writes leave, which
	// recovery cuts and readers never see.
	Padding int64
	// Problems counts the findings about this segment.
	Problems int
}

// DataFile and IndexFile return the segment's file names.
func (s *Segment) DataFile() string  { return segmentName(s.Base, dataExt) }
func (s *Segment) IndexFile() string { return segmentName(s.Base, indexExt) }

// Topic is what a scan found about one topic.
type Topic struct {
	Name string
	Dir  string
	// Meta is topic.json, nil when it is missing or unreadable.
	Meta *Meta
	// Segments are sorted by base offset.
	Segments []*Segment
	// Findings are in segment order.
	Findings []Finding
}

// Count returns how many findings have class c.
func (t *Topic) Count(c Class) int {
	n := 0
	for _, f := range t.Findings {
		if f.Class == c {
			n++
		}
	}
	return n
}

// Problems returns the findings that are more than notes.
func (t *Topic) Problems() []Finding {
	var out []Finding
	for _, f := range t.Findings {
		if f.Class != Note {
			out = append(out, f)
		}
	}
	return out
}

// ScanOptions say what a scan does besides checking the index.
type ScanOptions struct {
	// CheckData reads every batch and checks it against the CRC in its
	// index entry.
	CheckData bool
	// Entry, when set, is called for every index entry that decodes, in
	// file order, with whether it checks out. An error it returns ends
	// the scan.
	Entry func(s *Segment, i int, e *index.Entry, ok bool) error
}

// maxSegmentFindings bounds the findings listed per segment; more are
// summed up in one.
const maxSegmentFindings = 20

// ScanTopic checks the topic in dir. Problems of the files become
// Findings; the error is for failures to read them.
func ScanTopic(fsys vfs.FS, td TopicDir, opts ScanOptions) (*Topic, error) {
	t := &Topic{Name: td.Name, Dir: td.Dir}
	switch m, err := readMeta(fsys, td.Dir); {
	case isNotExist(err):
		t.Findings = append(t.Findings, Finding{Class: Damage, Text: metaFile + " is missing: the server does not start with this directory"})
	case err != nil:
		t.Findings = append(t.Findings, Finding{Class: Damage, Text: fmt.Sprintf("%s cannot be read (%v): the server does not start with this directory", metaFile, err)})
	case m.Name != td.Name || m.ID == 0:
		t.Meta = m
		t.Findings = append(t.Findings, Finding{Class: Damage, Text: fmt.Sprintf("%s names topic %q with id %d in directory %q: the server does not start with this directory", metaFile, m.Name, m.ID, td.Name)})
	default:
		t.Meta = m
	}
	segs, err := listSegments(fsys, td.Dir)
	if err != nil {
		return nil, err
	}
	t.Segments = segs
	markNewest(segs)
	for i, s := range segs {
		first, last := i == 0, i == len(segs)-1
		switch {
		case s.HasData && s.HasIndex:
			if err := scanSegment(fsys, t, s, opts); err != nil {
				return nil, err
			}
		case s.HasData && s.DataSize == 0 && (first || last):
			t.add(s, Note, s.DataFile(), "an empty data file without its index: a leftover that recovery removes")
		case s.HasData:
			t.add(s, Damage, s.DataFile(), fmt.Sprintf("%d bytes of data without an index file: the server does not open this topic (lnc repair rebuilds the index from the data)", s.DataSize))
		case first:
			t.add(s, Note, s.IndexFile(), "an index without its data file at the start of the log: a leftover of retention that recovery removes")
		case last && s.IndexSize <= index.HeaderSize:
			t.add(s, Note, s.IndexFile(), "an index without entries and without its data file: a leftover of creating a segment that recovery removes")
		case last:
			t.add(s, Damage, s.IndexFile(), "the data file of the newest segment is missing: its batches are lost, and recovery removes the index")
		default:
			t.add(s, Damage, s.IndexFile(), "the data file is missing: the batches it held are lost, and the server does not open this topic")
		}
	}
	// The segments must follow each other without a gap: a sealed
	// segment is exactly its data.
	var prev *Segment
	for _, s := range segs {
		if !s.HasData {
			continue
		}
		if prev != nil && s.Base != prev.Base+uint64(prev.DataSize) {
			t.add(s, Damage, s.DataFile(), fmt.Sprintf("the segment starts at offset %d, but the one before (%s) ends at %d: the server does not open this topic", s.Base, prev.DataFile(), prev.Base+uint64(prev.DataSize)))
		}
		prev = s
	}
	return t, nil
}

func (t *Topic) add(s *Segment, c Class, file, text string) {
	s.Problems++
	t.Findings = append(t.Findings, Finding{Class: c, File: file, Segment: s.Base, Text: text})
}

// listSegments finds the segment files in dir, sorted by base offset.
func listSegments(fsys vfs.FS, dir string) ([]*Segment, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("offline: %w", err)
	}
	found := map[uint64]*Segment{}
	get := func(base uint64) *Segment {
		s := found[base]
		if s == nil {
			s = &Segment{Base: base}
			found[base] = s
		}
		return s
	}
	for _, name := range names {
		if base, ok := parseSegmentName(name, dataExt); ok {
			s := get(base)
			s.HasData = true
			st, err := fsys.Stat(filepath.Join(dir, name))
			if err != nil {
				return nil, fmt.Errorf("offline: %w", err)
			}
			s.DataSize = st.Size()
		} else if base, ok := parseSegmentName(name, indexExt); ok {
			s := get(base)
			s.HasIndex = true
			st, err := fsys.Stat(filepath.Join(dir, name))
			if err != nil {
				return nil, fmt.Errorf("offline: %w", err)
			}
			s.IndexSize = st.Size()
		}
	}
	segs := make([]*Segment, 0, len(found))
	for _, s := range found {
		segs = append(segs, s)
	}
	slices.SortFunc(segs, func(a, b *Segment) int {
		switch {
		case a.Base < b.Base:
			return -1
		case a.Base > b.Base:
			return 1
		}
		return 0
	})
	return segs, nil
}

// markNewest marks the segment recovery treats as the active one: the last
// that has data, or both files.
func markNewest(segs []*Segment) {
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		if (s.HasData && s.HasIndex) || (s.HasData && s.DataSize > 0) {
			s.Newest = true
			return
		}
	}
}

// problem is a finding about an entry before it is classified: entry is
// the index entry it concerns, -1 for the header, Entries for what follows
// the last entry.
type problem struct {
	entry int
	data  bool // about the data file rather than the index
	text  string
}

// scanSegment checks a segment that has both files.
func scanSegment(fsys vfs.FS, t *Topic, s *Segment, opts ScanOptions) error {
	idx, err := fsys.Open(filepath.Join(t.Dir, s.IndexFile()))
	if err != nil {
		return fmt.Errorf("offline: %w", err)
	}
	defer idx.Close()
	data, err := fsys.Open(filepath.Join(t.Dir, s.DataFile()))
	if err != nil {
		return fmt.Errorf("offline: %w", err)
	}
	defer data.Close()

	var probs []problem
	more, moreMin := 0, -1 // findings past the limit, and the lowest entry among them
	report := func(entry int, data bool, format string, args ...any) {
		if len(probs) < maxSegmentFindings {
			probs = append(probs, problem{entry: entry, data: data, text: fmt.Sprintf(format, args...)})
			return
		}
		if more == 0 || entry < moreMin {
			moreMin = entry
		}
		more++
	}

	hdr := make([]byte, index.HeaderSize)
	n, err := idx.ReadAt(hdr, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("offline: read %s: %w", idx.Name(), err)
	}
	switch h, err := index.DecodeHeader(hdr[:n]); {
	case err != nil:
		report(-1, false, "index header: %v", err)
	case h.BaseOffset != s.Base:
		report(-1, false, "index header names base offset %d, the file name %d", h.BaseOffset, s.Base)
	default:
		s.HeaderOK, s.CreatedNS = true, h.CreatedNS
	}

	if s.IndexSize > index.HeaderSize {
		s.Entries = int((s.IndexSize - index.HeaderSize) / index.EntrySize)
	}
	dataEnd := s.Base + uint64(s.DataSize)
	rd := newSeqReader(data)
	lastGood, anyDecoded := -1, false
	next, prevBad := s.Base, false
	raw := make([]byte, 1024*index.EntrySize)
	for from := 0; from < s.Entries; from += 1024 {
		k := min(1024, s.Entries-from)
		buf := raw[:k*index.EntrySize]
		if _, err := idx.ReadAt(buf, index.EntryOffset(from)); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("offline: read %s: %w", idx.Name(), err)
		}
		for j := range k {
			i := from + j
			e, err := index.DecodeEntry(buf[j*index.EntrySize:])
			if err != nil {
				report(i, false, "index entry %d does not decode: %v", i, err)
				prevBad = true
				continue
			}
			anyDecoded = true
			ok := true
			switch {
			case e.Offset == next:
			case e.Offset > next && prevBad:
				// The damaged entries before it held the gap.
			case e.Offset > next:
				report(i, false, "index entry %d: the batch starts at offset %d, but the one before ends at %d (%d bytes without an entry)", i, e.Offset, next, e.Offset-next)
			default:
				report(i, false, "index entry %d: the batch at offset %d overlaps the one before, which ends at %d", i, e.Offset, next)
				prevBad = true
				if err := visit(opts, s, i, &e, false); err != nil {
					return err
				}
				continue
			}
			switch {
			case e.Offset < s.Base || e.End() > dataEnd:
				report(i, true, "the batch at offset %d (index entry %d, %d bytes) lies outside the data file, which holds offsets %d..%d", e.Offset, i, e.Length, s.Base, dataEnd)
				ok = false
			case opts.CheckData:
				crc, err := rd.crc(e.Dialect, int64(e.Offset-s.Base), int64(e.Length))
				if err != nil {
					return fmt.Errorf("offline: read %s: %w", data.Name(), err)
				}
				if crc != e.CRC {
					report(i, true, "the batch at offset %d (index entry %d, %d bytes) fails its CRC: the index has %08x, the data gives %08x", e.Offset, i, e.Length, e.CRC, crc)
					ok = false
				}
			}
			if ok {
				if s.Batches == 0 {
					s.FirstTS = e.TimestampNS
				}
				s.Batches++
				s.Records += uint64(e.RecordCount)
				s.LastTS = e.TimestampNS
				lastGood = i
			}
			next, prevBad = e.End(), false
			if err := visit(opts, s, i, &e, ok); err != nil {
				return err
			}
		}
	}
	s.IndexedEnd = next
	if s.IndexSize > index.HeaderSize {
		if rest := (s.IndexSize - index.HeaderSize) % index.EntrySize; rest != 0 {
			report(s.Entries, false, "the index ends with %d bytes of an incomplete entry", rest)
		}
	}
	if next < dataEnd {
		extra := int64(dataEnd - next)
		zero, err := allZero(data, int64(next-s.Base), extra)
		if err != nil {
			return fmt.Errorf("offline: read %s: %w", data.Name(), err)
		}
		if s.Newest && extra < vfs.DirectAlign && zero {
			s.Padding = extra
		} else {
			report(s.Entries, true, "%d bytes after the last indexed batch (offsets %d..%d)", extra, next, dataEnd)
		}
	}

	// In the newest segment, problems after the last batch that checks
	// out are a torn tail; anything before it is damage.
	class := func(entry int) Class {
		switch {
		case !s.Newest:
			return Damage
		case entry == -1:
			// A newest segment whose header never became durable held
			// no acknowledged batch, unless entries after it decode.
			if anyDecoded {
				return Damage
			}
			return Tail
		case entry > lastGood:
			return Tail
		}
		return Damage
	}
	for _, p := range probs {
		file := s.IndexFile()
		if p.data {
			file = s.DataFile()
		}
		t.add(s, class(p.entry), file, p.text)
	}
	if more > 0 {
		t.add(s, class(moreMin), s.DataFile(), fmt.Sprintf("and %d more problems in this segment", more))
	}
	return nil
}

func visit(opts ScanOptions, s *Segment, i int, e *index.Entry, ok bool) error {
	if opts.Entry == nil {
		return nil
	}
	return opts.Entry(s, i, e, ok)
}

// allZero reports whether the n bytes at off of f are all zero; it reads
// at most one block (larger ranges are reported as not zero).
func allZero(f vfs.File, off, n int64) (bool, error) {
	if n >= vfs.DirectAlign {
		return false, nil
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	for _, c := range b {
		if c != 0 {
			return false, nil
		}
	}
	return true, nil
}

// seqReader reads a file mostly front to back through a 1 MiB buffer.
type seqReader struct {
	f     vfs.File
	buf   []byte
	data  []byte // the valid part of buf
	start int64  // file position of data[0]
}

func newSeqReader(f vfs.File) *seqReader { return &seqReader{f: f} }

// fill makes data hold the byte at off, reading from there.
func (r *seqReader) fill(off int64) error {
	if off >= r.start && off < r.start+int64(len(r.data)) {
		return nil
	}
	if r.buf == nil {
		r.buf = make([]byte, 1<<20)
	}
	n, err := r.f.ReadAt(r.buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if n == 0 {
		return io.ErrUnexpectedEOF
	}
	r.data, r.start = r.buf[:n], off
	return nil
}

// crc returns the CRC in dialect d of the n bytes at off.
func (r *seqReader) crc(d checksum.Dialect, off, n int64) (uint32, error) {
	var crc uint32
	for n > 0 {
		if err := r.fill(off); err != nil {
			return 0, err
		}
		lo := off - r.start
		hi := min(int64(len(r.data)), lo+n)
		crc = d.Update(crc, r.data[lo:hi])
		n -= hi - lo
		off += hi - lo
	}
	return crc, nil
}

// read copies the n bytes at off into dst (n at most the buffer size).
func (r *seqReader) read(dst []byte, off int64) error {
	for len(dst) > 0 {
		if err := r.fill(off); err != nil {
			return err
		}
		k := copy(dst, r.data[off-r.start:])
		dst = dst[k:]
		off += int64(k)
	}
	return nil
}
