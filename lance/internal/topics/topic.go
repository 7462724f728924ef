package topics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lance-go/lance/lance/internal/flow"
	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-io/topiclog"
)

// Errors of the ingest path.
var (
	// ErrTopicGone is returned for requests on a topic that was deleted
	// or closed while they waited.
	ErrTopicGone = errors.New("topics: topic deleted or closed")
)

// Ingest is one batch handed to a topic's writer. The submitter owns it:
// after Submit it waits on Done, then reads Offset and Err, then may reuse
// it with Reset.
type Ingest struct {
	Data        []byte
	CRC         uint32
	Dialect     checksum.Dialect
	TimestampNS uint64
	RecordCount uint32
	// ProducerID and Sequence, when non-zero, come from the producer
	// record of an idempotent ingest (frame.ParseProducerRecord): the
	// writer stores the batch at most once (dedup.go).
	ProducerID uint64
	Sequence   uint64

	// Set by the writer before Done fires.
	Offset uint64
	Err    error
	// Duplicate is set when the batch was a retry of one already stored
	// at Offset, and was not stored again.
	Duplicate bool

	done chan struct{} // capacity 1: one token per completed request
	// queued is the byte count charged to the topic's queue budget.
	queued int64
}

// NewIngest returns an Ingest ready for Submit.
func NewIngest() *Ingest { return &Ingest{done: make(chan struct{}, 1)} }

// Done is signalled once when the batch is durable (Err nil) or failed.
func (in *Ingest) Done() <-chan struct{} { return in.done }

// Reset clears the results for reuse; call it only after Done fired.
func (in *Ingest) Reset() {
	done := in.done
	*in = Ingest{done: done}
}

func (in *Ingest) finish(off uint64, err error) {
	in.Offset, in.Err = off, err
	in.done <- struct{}{}
}

// Topic is one topic: its metadata, its log, its single writer goroutine,
// its consumer offsets.
type Topic struct {
	reg *Registry
	dir string
	log *topiclog.Log

	// metaMu guards meta (retention changes); ID and Name never change.
	metaMu sync.Mutex
	meta   Meta
	id     uint32
	name   string

	offsets *offsetStore

	// dedup is owned by the writer goroutine (run).
	dedup dedupTable

	// Writer queue. mu guards closed and the sender count; see Submit.
	mu      sync.RWMutex
	closed  bool
	senders sync.WaitGroup
	q       chan *Ingest
	budget  *flow.Budget
	deleted atomic.Bool
	stopped chan struct{} // closed when the writer goroutine exits

	// notify is closed and replaced after every sync that made new data
	// visible, waking long-poll readers.
	notifyMu sync.Mutex
	notify   chan struct{}
}

// ID returns the topic's id.
func (t *Topic) ID() uint32 { return t.id }

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// Meta returns a copy of the topic's metadata.
func (t *Topic) Meta() Meta {
	t.metaMu.Lock()
	defer t.metaMu.Unlock()
	m := t.meta
	if m.Retention != nil {
		r := *m.Retention
		m.Retention = &r
	}
	return m
}

// Log returns the topic's log, for reads.
func (t *Topic) Log() *topiclog.Log { return t.log }

// Changed returns a channel closed once data beyond what is visible now
// becomes visible (or the topic closes).
func (t *Topic) Changed() <-chan struct{} {
	t.notifyMu.Lock()
	defer t.notifyMu.Unlock()
	return t.notify
}

func (t *Topic) wake() {
	t.notifyMu.Lock()
	close(t.notify)
	t.notify = make(chan struct{})
	t.notifyMu.Unlock()
}

// QueueFull reports whether n more bytes would exceed the topic's queue
// budget now: the server then tells the producer to slow down.
func (t *Topic) QueueFull(n int) bool {
	if !t.budget.TryAcquire(int64(n)) {
		return true
	}
	t.budget.Release(int64(n))
	return false
}

// Submit queues in for the writer, waiting while the topic's queue is full
// until ctx ends. Once Submit returned nil, Done will fire exactly once.
func (t *Topic) Submit(ctx context.Context, in *Ingest) error {
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return ErrTopicGone
	}
	// Counted under the read lock: close waits for every sender that got
	// past the check before it closes the queue.
	t.senders.Add(1)
	t.mu.RUnlock()
	defer t.senders.Done()
	if err := t.reg.Failed(); err != nil {
		return err
	}

	n := int64(len(in.Data))
	if err := t.budget.Acquire(ctx, n); err != nil {
		return err
	}
	in.queued = n
	select {
	case t.q <- in:
		return nil
	case <-ctx.Done():
		t.budget.Release(n)
		return ctx.Err()
	}
}

// maxGroup caps the batches of one group commit.
const maxGroup = 4096

// run is the topic's writer: it takes every batch waiting in the queue (up
// to the configured bytes), appends them, syncs once, and completes them.
// It exits when the queue is closed and drained.
func (t *Topic) run() {
	defer close(t.stopped)
	maxBytes := t.reg.opts.BatchBytes
	batch := make([]*Ingest, 0, 256)
	for in := range t.q {
		batch = append(batch[:0], in)
		bytes := int64(len(in.Data))
	gather:
		for bytes < maxBytes && len(batch) < maxGroup {
			select {
			case more, ok := <-t.q:
				if !ok {
					break gather
				}
				batch = append(batch, more)
				bytes += int64(len(more.Data))
			default:
				break gather
			}
		}
		t.commit(batch, bytes)
		clear(batch)
	}
}

// commit appends and syncs one group of batches and completes them.
func (t *Topic) commit(batch []*Ingest, bytes int64) {
	for _, in := range batch {
		t.budget.Release(in.queued)
		in.queued = 0
	}
	if t.deleted.Load() {
		for _, in := range batch {
			in.finish(0, ErrTopicGone)
		}
		return
	}
	start := time.Now()
	appended, dups := 0, 0
	var appendErr error
	for _, in := range batch {
		if in.ProducerID != 0 {
			switch v, off := t.dedup.check(in.ProducerID, in.Sequence); v {
			case verdictDuplicate:
				// Acked with the first copy's offset once this group's
				// sync (which may be the one storing it) returned.
				in.Offset, in.Err, in.Duplicate = off, nil, true
				dups++
				continue
			case verdictTooOld:
				in.Err = fmt.Errorf("producer %d sequence %d: %w", in.ProducerID, in.Sequence, ErrSequenceTooOld)
				continue
			}
		}
		off, err := t.log.Append(topiclog.Batch{
			Data: in.Data, CRC: in.CRC, Dialect: in.Dialect,
			TimestampNS: in.TimestampNS, RecordCount: in.RecordCount,
			ProducerID: in.ProducerID, Sequence: in.Sequence,
		})
		// Results are parked in the request until the sync decides.
		in.Offset, in.Err = off, err
		if err == nil {
			appended++
			if in.ProducerID != 0 {
				t.dedup.record(in.ProducerID, in.Sequence, off)
			}
		} else if appendErr == nil {
			appendErr = err
		}
	}
	var err error
	if appended > 0 || dups > 0 {
		// With only duplicates nothing is pending and Sync just reports
		// the log's sticky error: no ack for a copy a failed sync lost.
		err = t.log.Sync(context.Background())
	}
	failErr := err
	if failErr == nil {
		failErr = appendErr
	}
	// Recorded before any submitter hears of the failure, so that one
	// who did sees Failed() report it.
	if failErr != nil && errors.Is(failErr, topiclog.ErrWriteFailed) {
		t.reg.storageFailed(t, failErr)
	}
	for _, in := range batch {
		switch {
		case in.Err != nil:
			in.finish(0, fmt.Errorf("topic %s: %w", t.name, in.Err))
		case err != nil:
			in.finish(0, fmt.Errorf("topic %s: %w", t.name, err))
		default:
			in.finish(in.Offset, nil)
		}
	}
	if appended > 0 {
		t.wake()
	}
	if t.reg.opts.Observer != nil {
		t.reg.opts.Observer.Committed(t.name, len(batch), bytes, time.Since(start), failErr)
	}
}

// close stops the writer after the queued batches are done (or failed, when
// the topic was deleted), then closes the log.
func (t *Topic) close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		<-t.stopped
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	t.senders.Wait()
	close(t.q)
	<-t.stopped
	t.wake()
	err := t.log.Close()
	if cerr := t.offsets.close(); err == nil {
		err = cerr
	}
	return err
}

// Retention returns the topic's effective retention.
func (t *Topic) Retention() topiclog.Retention {
	t.metaMu.Lock()
	r := t.meta.Retention
	t.metaMu.Unlock()
	if r == nil {
		return t.reg.opts.DefaultRetention
	}
	return topiclog.Retention{
		MaxAge:   time.Duration(min(r.MaxAgeSecs, uint64(1<<63-1)/uint64(time.Second))) * time.Second,
		MaxBytes: int64(min(r.MaxBytes, 1<<63-1)),
	}
}

// CommitOffset records consumer's offset durably.
func (t *Topic) CommitOffset(consumer, offset uint64) error {
	return t.offsets.commit(consumer, offset)
}

// CommittedOffset returns consumer's committed offset.
func (t *Topic) CommittedOffset(consumer uint64) (uint64, bool) {
	return t.offsets.get(consumer)
}
