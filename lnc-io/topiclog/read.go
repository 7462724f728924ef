package topiclog

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/ioq"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// ReadAt copies the log's bytes from offset off into p, up to the durable
// end, crossing segments as needed. It returns the count and io.EOF when
// the end came first. An offset before the start fails with ErrOffset.
func (l *Log) ReadAt(ctx context.Context, p []byte, off uint64) (int, error) {
	done := 0
	var rd backend.Read
	for done < len(p) {
		v, end, err := l.segmentFor(off)
		if err != nil {
			return done, err
		}
		s := &v
		if off >= end {
			s.release()
			return done, io.EOF
		}
		n := int(min(uint64(len(p)-done), min(end, s.end())-off))
		if n <= 0 {
			s.release()
			return done, io.EOF
		}
		rd = backend.Read{File: s.data, Off: int64(off - s.base), Buf: p[done : done+n], Class: ioq.ClassRead}
		got, err := l.opts.Backend.ReadAt(ctx, &rd)
		s.release()
		done += got
		off += uint64(got)
		if err != nil && !errors.Is(err, io.EOF) {
			return done, err
		}
		if got < n {
			return done, fmt.Errorf("%w: %s is shorter than its index", ErrCorrupt, s.data.Name())
		}
	}
	return done, nil
}

// Range is a stretch of a segment file: bytes [Off, Off+N) of File. It is
// what a server hands to sendfile(2).
type Range struct {
	File vfs.File
	Off  int64
	N    int
}

// Ranges returns the file ranges holding the log's bytes from off, at most
// maxBytes of them, up to the durable end, appended to dst. The files stay
// open until release is called, even if retention removes their segments
// meanwhile; call it once the ranges were sent.
func (l *Log) Ranges(off uint64, maxBytes int, dst []Range) (ranges []Range, release func(), err error) {
	var held []*segment
	release = func() {
		for _, s := range held {
			s.release()
		}
	}
	for maxBytes > 0 {
		v, end, err := l.segmentFor(off)
		if err != nil {
			release()
			return dst, func() {}, err
		}
		s := &v
		n := int(min(uint64(maxBytes), min(end, s.end())-min(off, end)))
		if off >= end || n <= 0 {
			s.release()
			break
		}
		held = append(held, s.segment)
		dst = append(dst, Range{File: s.data, Off: int64(off - s.base), N: n})
		off += uint64(n)
		maxBytes -= n
	}
	return dst, release, nil
}

// Batches returns the index entries of whole durable batches, starting
// with the batch that holds off, and as many following ones as fit in
// maxBytes together; the first is returned even if it alone is larger.
// It stops at the end of a segment, so callers loop with the next offset.
// An off at the durable end returns no entries.
func (l *Log) Batches(off uint64, maxBytes int, dst []index.Entry) ([]index.Entry, error) {
	v, end, err := l.segmentFor(off)
	if err != nil {
		return dst, err
	}
	s := &v
	defer s.release()
	if off >= end || off >= s.end() {
		return dst, nil
	}
	count := s.entries
	scratch := make([]index.Entry, sparseEvery)
	i, e, buf, err := s.findEntry(off, scratch, nil)
	if err != nil {
		return dst, err
	}
	dst = append(dst, e)
	total := int(e.Length)
	for i++; i < count; {
		k := min(len(scratch), count-i)
		if buf, err = s.readEntries(i, scratch[:k], buf); err != nil {
			return dst, err
		}
		for _, e := range scratch[:k] {
			if e.End() > end || total+int(e.Length) > maxBytes {
				return dst, nil
			}
			dst = append(dst, e)
			total += int(e.Length)
		}
		i += k
	}
	return dst, nil
}

// SeekTime returns the offset of the first durable batch whose timestamp
// is at least ts, or the durable end if there is none. Producers' clocks
// need not be monotonic: the answer is the first batch, in offset order,
// at or after ts.
func (l *Log) SeekTime(ts uint64) (uint64, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	var s *view
	for _, c := range l.segs {
		if c.entries > 0 && c.maxTS >= ts {
			c.acquire()
			v := viewOf(c)
			s = &v
			break
		}
	}
	end := l.durable
	l.mu.Unlock()
	if s == nil {
		return end, nil
	}
	defer s.release()
	e, _, err := s.seekTime(ts, make([]index.Entry, sparseEvery), nil)
	if err != nil {
		return 0, err
	}
	return e.Offset, nil
}
