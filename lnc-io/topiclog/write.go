package topiclog

import (
	"context"
	"errors"
	"fmt"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-core/sortkey"
	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/ioq"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// Batch is one batch to append: the payload of an ingest frame.
type Batch struct {
	// Data is the batch's bytes. The log keeps a reference until the
	// Sync covering the batch returned: the caller must not change them
	// before.
	Data []byte
	// CRC is the CRC of Data in Dialect, as the producer sent it and the
	// server verified it. With a zero Dialect the log computes a CRC-32C.
	CRC     uint32
	Dialect checksum.Dialect
	// TimestampNS is the producer's timestamp; RecordCount the number of
	// records the producer declared.
	TimestampNS uint64
	RecordCount uint32
	// ProducerID and Sequence identify an idempotent producer's batch and
	// are kept in its index entry (index.Entry); both 0 for other batches.
	ProducerID uint64
	Sequence   uint64
}

// pendingBatch is a batch appended and not yet synced.
type pendingBatch struct {
	seg   *segment
	data  []byte
	entry index.Entry
}

// writer is the state of the log's one writer.
type writer struct {
	l      *Log
	active *segment
	end    uint64 // end of everything appended
	size   int64  // active segment size including pending batches
	count  int    // active segment entries including pending batches
	pend   []pendingBatch
	keys   *sortkey.Generator
	err    error // sticky

	commit  backend.Commit
	bufs    [][]byte
	entries []byte
	idxBufs [1][]byte // the gather list of the index write

	// Direct mode (Options.Direct); see direct.go.
	direct  vfs.File             // O_DIRECT handle of the active data file
	pool    *backend.DirectPool  // the backend's aligned buffers
	tail    []byte               // the active segment's durable partial last block
	held    []*backend.DirectBuf // buffers held by the Sync in progress
	dirBufs [][]byte             // one gather list entry per held buffer
}

func (w *writer) init(l *Log, active *segment) error {
	w.l = l
	w.active = active
	w.end = active.end()
	w.size = active.size
	w.count = active.entries
	w.keys = l.newKeyGen()
	w.commit.Class = ioq.ClassCommit
	if active.prealloc == 0 {
		active.prealloc = active.size
	}
	if !l.opts.Direct {
		return nil
	}
	pool, err := l.opts.Backend.DirectBuffers()
	if err != nil {
		return fmt.Errorf("topiclog: Options.Direct needs the backend's direct-write buffers: %w", err)
	}
	w.pool = pool
	w.tail = make([]byte, 0, directBlock)
	return w.openDirect(active)
}

// Append adds b to the log and returns its offset. The batch becomes
// durable and visible to readers with the next Sync.
func (l *Log) Append(b Batch) (uint64, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	w := &l.w
	if w.err != nil {
		return 0, w.err
	}
	if len(b.Data) == 0 {
		return 0, ErrEmptyBatch
	}
	if l.isClosed() {
		return 0, ErrClosed
	}
	if uint64(len(b.Data)) > 1<<32-1 {
		return 0, fmt.Errorf("topiclog: batch of %d bytes is over 4 GiB", len(b.Data))
	}
	if (b.ProducerID == 0) != (b.Sequence == 0) || b.Sequence > index.MaxSequence {
		return 0, fmt.Errorf("topiclog: %w: producer %d sequence %d", index.ErrEntry, b.ProducerID, b.Sequence)
	}
	if w.size > 0 && w.size+int64(len(b.Data)) > l.opts.SegmentSize {
		if err := l.roll(); err != nil {
			return 0, err
		}
	}
	key, err := w.keys.Next(b.TimestampNS)
	if err != nil {
		return 0, fmt.Errorf("topiclog: %w", err)
	}
	if !b.Dialect.Valid() {
		b.CRC, b.Dialect = checksum.Castagnoli.Sum(b.Data), checksum.Castagnoli
	}
	e := index.Entry{
		Offset:      w.end,
		Length:      uint32(len(b.Data)),
		CRC:         b.CRC,
		Dialect:     b.Dialect,
		TimestampNS: b.TimestampNS,
		SortKey:     key,
		RecordCount: b.RecordCount,
		ProducerID:  b.ProducerID,
		Sequence:    b.Sequence,
	}
	w.pend = append(w.pend, pendingBatch{seg: w.active, data: b.Data, entry: e})
	w.end += uint64(len(b.Data))
	w.size += int64(len(b.Data))
	w.count++
	return e.Offset, nil
}

// Pending returns the number of batches appended and not yet synced.
func (l *Log) Pending() int {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return len(l.w.pend)
}

// Sync makes every appended batch durable and visible. It returns the
// log's sticky error if an earlier write failed, or the error that makes
// it sticky now. In direct mode, a Sync whose ctx ends while it waits for
// a buffer of the backend's pool returns that error without making it
// sticky: the batches stay pending for the next Sync.
func (l *Log) Sync(ctx context.Context) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.sync(ctx)
}

// sync is Sync with wmu held.
func (l *Log) sync(ctx context.Context) error {
	w := &l.w
	if w.err != nil {
		return w.err
	}
	if len(w.pend) == 0 {
		return nil
	}
	if l.isClosed() {
		return ErrClosed
	}
	a := w.active
	need := w.size
	if w.direct != nil {
		need = alignUp(need) // the padding of the last block is written too
	}
	if l.opts.Prealloc > 0 && need > a.prealloc {
		// Reserve the space before writing into it: fdatasync then has
		// no block allocation to commit.
		n := max(l.opts.Prealloc, need-a.prealloc)
		if err := a.data.Preallocate(a.prealloc, n); err != nil {
			return w.fail(fmt.Errorf("preallocate %s: %w", a.data.Name(), err))
		}
		a.prealloc += n
	}
	// All pending batches are in the active segment: roll syncs before it
	// switches segments.
	w.entries = w.entries[:0]
	w.bufs = w.bufs[:0]
	if w.direct != nil {
		w.bufs = append(w.bufs, w.tail) // rewritten in front of the new bytes
	}
	for i := range w.pend {
		p := &w.pend[i]
		w.bufs = append(w.bufs, p.data)
		// The commit's last entry says so: recovery then knows that the
		// batches up to it were acknowledged once a later entry exists.
		e := p.entry
		e.CommitEnd = i == len(w.pend)-1
		w.entries = index.AppendEntry(w.entries, &e)
	}
	first := &w.pend[0].entry
	w.idxBufs[0] = w.entries
	idxWrite := backend.Write{File: a.idx, Off: index.EntryOffset(w.count - len(w.pend)), Bufs: w.idxBufs[:]}
	var err error
	if w.direct != nil {
		err = l.writeDirect(ctx, int64(first.Offset-a.base), idxWrite)
	} else {
		w.commit.Writes = append(w.commit.Writes[:0],
			backend.Write{File: a.data, Off: int64(first.Offset - a.base), Bufs: w.bufs},
			idxWrite,
		)
		w.commit.Sync = !testSkipSync
		err = l.opts.Backend.Do(ctx, &w.commit)
	}
	clear(w.commit.Writes)
	clear(w.bufs)
	if err != nil {
		var nw notWritten
		if errors.As(err, &nw) {
			return nw.err // nothing changed that a later Sync does not redo
		}
		return w.fail(err)
	}
	l.mu.Lock()
	for i := range w.pend {
		a.addEntry(&w.pend[i].entry)
	}
	l.durable = w.end
	l.mu.Unlock()
	clear(w.pend)
	w.pend = w.pend[:0]
	return nil
}

// fail makes err the log's sticky write error.
func (w *writer) fail(err error) error {
	w.err = fmt.Errorf("%w: %w", ErrWriteFailed, err)
	return w.err
}

// roll syncs what is pending, seals the active segment and starts a new
// one at the end of the log. A segment is sealed only once all its data is
// durable, so that recovery can trust every segment but the newest.
func (l *Log) roll() error {
	w := &l.w
	if err := l.sync(context.Background()); err != nil {
		return err
	}
	old := w.active
	// A sealed segment is exactly its data: give back the space reserved
	// beyond the end, and cut the zero padding direct writes leave after
	// it. Recovery trusts every segment but the newest to end exactly
	// where its last batch ends.
	trim := l.opts.Prealloc > 0 && old.prealloc > old.size
	if w.direct != nil && old.size%directBlock != 0 {
		trim = true
	}
	if trim {
		if err := old.data.Truncate(old.size); err != nil {
			return w.fail(fmt.Errorf("trim %s: %w", old.data.Name(), err))
		}
		if err := old.data.Sync(); err != nil {
			return w.fail(fmt.Errorf("sync %s: %w", old.data.Name(), err))
		}
	}
	w.closeDirect()
	s, err := l.createSegment(w.end)
	if err != nil {
		return w.fail(err)
	}
	l.mu.Lock()
	old.sealed = true
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	w.active, w.size, w.count = s, 0, 0
	if l.opts.Direct {
		if err := w.openDirect(s); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

func (l *Log) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}
