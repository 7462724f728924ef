// Package topiclog is a topic's log on disk: a directory of segment files
// holding the accepted batches back to back, each with an index of its
// batches, appended with group commit and read by byte offset.
//
// Offsets are byte positions in the concatenation of every batch ever
// appended to the topic. They never move: a segment's file name carries the
// offset of its first byte, and deleting old segments (retention) changes
// nothing about the offsets of the others.
//
// # Writing and durability
//
// One writer at a time calls Append for each batch, then Sync. Sync
// writes the data of every batch appended since the last Sync and their
// index entries and fdatasyncs both files in one backend commit; it returns
// only when they are on stable storage. Readers see a batch only once the
// Sync covering it returned, so nothing is served that a crash could take
// back. The first write or sync error is sticky: Sync and Append fail with
// it from then on, and the log must be closed and reopened, which recovers
// it from what is on disk.
//
// With Options.Direct the data files are written with O_DIRECT from the
// backend's aligned buffers; see direct.go for how the last partial block
// and its padding are handled.
//
// # Recovery
//
// Open checks every segment's index (entry CRCs, contiguous offsets, data
// file size) and, in the newest segment, the CRC of every batch. The newest
// segment is cut back after its last valid batch: torn or unindexed bytes
// at the tail are what a crash leaves of a Sync that never returned. A
// single damaged index entry between two good ones is rebuilt from them and
// from the data. Damage elsewhere is reported by Open as ErrCorrupt rather
// than served. Directories are fsynced after files are created, renamed or
// removed.
package topiclog

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/lance-go/lance/lnc-core/sortkey"
	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// Errors.
var (
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("topiclog: closed")
	// ErrCorrupt marks data that failed a check and is not served.
	ErrCorrupt = errors.New("topiclog: corrupt")
	// ErrEmptyBatch rejects a batch without bytes: offsets could not tell
	// it from its neighbours.
	ErrEmptyBatch = errors.New("topiclog: empty batch")
	// ErrOffset reports an offset outside the retained log.
	ErrOffset = errors.New("topiclog: offset out of range")
	// ErrWriteFailed wraps the sticky error of a failed Sync.
	ErrWriteFailed = errors.New("topiclog: write failed")
)

// Defaults.
const (
	DefaultSegmentSize = 1 << 30
	DefaultPrealloc    = 64 << 20
)

// Options configure a Log.
type Options struct {
	// FS is the file system; required.
	FS vfs.FS
	// Backend performs the commit writes and syncs; required.
	Backend backend.Backend
	// SegmentSize is the size at which the active segment is sealed and a
	// new one started (a batch is never split, so a segment may exceed it
	// by one batch). Zero means DefaultSegmentSize.
	SegmentSize int64
	// Prealloc is how much disk space is reserved ahead of the active
	// segment's end at a time (fallocate, keeping the file size); it makes
	// fdatasync cheaper. Zero means DefaultPrealloc; negative disables it.
	Prealloc int64
	// Node and Actor go into the sort keys of this log's batches.
	Node  uint16
	Actor uint8
	// Now is the clock for file headers; nil means time.Now.
	Now func() time.Time
	// Direct writes the data file of the active segment with O_DIRECT,
	// from the backend's aligned buffers (Backend.DirectBuffers), so that
	// appended bytes bypass the page cache. Index files and every read
	// stay buffered. While a segment is active its data file may end with
	// zero padding up to a 4 KiB boundary, which readers never see and
	// which sealing and recovery cut off. The file system must accept
	// O_DIRECT and the backend must have a buffer pool: otherwise Open
	// fails (with an error wrapping vfs.ErrDirectUnsupported, or
	// backend.ErrNoDirectBuffers) rather than silently writing buffered.
	Direct bool
}

// Log is one topic's log. Append and Sync must not be called
// concurrently with each other; reads are safe from any goroutine,
// concurrently with writes.
type Log struct {
	dir  string
	opts Options

	// mu guards the fields below it. Readers hold it only to find and
	// acquire segments, never during I/O.
	mu      sync.Mutex
	segs    []*segment // ascending base; the last is active
	durable uint64     // end of what Sync made durable: readers' limit
	closed  bool

	// wmu serializes Append, Sync and Close. Append and Sync are meant to
	// be called by one goroutine, so it is uncontended; it makes Close
	// wait for a Sync in progress, whose backend writes use the files'
	// descriptors: closing them under it could let the kernel reuse a
	// descriptor number for another file before the write is issued.
	wmu sync.Mutex
	w   writer // guarded by wmu

	// damaged lists the offsets of acknowledged batches of the newest
	// segment that failed their CRC at recovery and were kept; set by
	// Open, read-only afterwards.
	damaged []uint64
}

// Damaged returns the offsets of the batches that recovery found failing
// their CRC although they had been acknowledged (a later commit was
// durable): they are kept, so that nothing after them is lost, and the
// read path refuses to serve them. Torn, unacknowledged batches are cut
// back instead and are not listed.
func (l *Log) Damaged() []uint64 { return l.damaged }

// Open opens (creating it if needed) the log in dir and recovers it.
func Open(dir string, opts Options) (*Log, error) {
	if opts.FS == nil || opts.Backend == nil {
		return nil, errors.New("topiclog: Options.FS and Options.Backend are required")
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.Prealloc == 0 {
		opts.Prealloc = DefaultPrealloc
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Log{dir: dir, opts: opts}
	if err := opts.FS.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("topiclog: %w", err)
	}
	if err := opts.FS.SyncDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("topiclog: %w", err)
	}
	if err := l.recover(); err != nil {
		l.closeSegments()
		return nil, err
	}
	if len(l.segs) == 0 {
		s, err := l.createSegment(0)
		if err != nil {
			return nil, err
		}
		l.segs = append(l.segs, s)
	}
	active := l.segs[len(l.segs)-1]
	l.durable = active.end()
	if err := l.w.init(l, active); err != nil {
		l.closeSegments()
		return nil, err
	}
	return l, nil
}

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// Start returns the first offset still retained.
func (l *Log) Start() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segs[0].base
}

// End returns the end of the durable log: the offset the next batch will
// get once everything appended is synced, as far as readers know.
func (l *Log) End() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable
}

// Segments returns the base offsets of the segments, oldest first.
func (l *Log) Segments() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	bases := make([]uint64, len(l.segs))
	for i, s := range l.segs {
		bases[i] = s.base
	}
	return bases
}

// Close releases the files. Batches appended but not synced are dropped.
func (l *Log) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	l.w.closeDirect()
	l.closeSegments()
	return nil
}

func (l *Log) closeSegments() {
	l.mu.Lock()
	segs := l.segs
	l.segs = nil
	l.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
}

// createSegment creates the data and index files of a new segment starting
// at base, writes and syncs the index header, and syncs the directory.
func (l *Log) createSegment(base uint64) (*segment, error) {
	fs := l.opts.FS
	s := &segment{base: base}
	dataPath, idxPath := s.paths(l.dir)
	var err error
	if s.idx, err = fs.Create(idxPath); err != nil {
		return nil, fmt.Errorf("topiclog: %w", err)
	}
	if s.data, err = fs.Create(dataPath); err != nil {
		s.idx.Close()
		return nil, fmt.Errorf("topiclog: %w", err)
	}
	s.refs.Store(1)
	fail := func(err error) (*segment, error) {
		s.release()
		return nil, fmt.Errorf("topiclog: create segment %d: %w", base, err)
	}
	hdr := index.AppendHeader(nil, index.Header{BaseOffset: base, CreatedNS: uint64(l.opts.Now().UnixNano())})
	if _, err := s.idx.WriteAt(hdr, 0); err != nil {
		return fail(err)
	}
	if err := s.idx.Sync(); err != nil {
		return fail(err)
	}
	if err := fs.SyncDir(l.dir); err != nil {
		return fail(err)
	}
	return s, nil
}

// newKeyGen returns the sort-key generator of the writer.
func (l *Log) newKeyGen() *sortkey.Generator { return sortkey.NewGenerator(l.opts.Node, l.opts.Actor) }

// segmentFor returns a view of the segment holding offset off (base <= off
// < end, or the active segment for off == its end), acquired, and the
// durable end of the log. The caller releases the view.
func (l *Log) segmentFor(off uint64) (view, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return view{}, 0, ErrClosed
	}
	i, found := slices.BinarySearchFunc(l.segs, off, func(s *segment, off uint64) int {
		switch {
		case s.base > off:
			return 1
		case s.base == off:
			return 0
		}
		return -1
	})
	if !found {
		i--
	}
	if i < 0 {
		return view{}, l.durable, fmt.Errorf("%w: %d is before the start %d", ErrOffset, off, l.segs[0].base)
	}
	s := l.segs[i]
	// A sealed segment whose end is off: the next one holds it.
	for s.sealed && off >= s.end() && i+1 < len(l.segs) {
		i++
		s = l.segs[i]
	}
	s.acquire()
	return viewOf(s), l.durable, nil
}
