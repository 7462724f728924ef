package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lance-go/lance/lnc-bench/internal/histogram"
	lance "github.com/lance-go/lance/lnc-client"
)

// clock gives monotonic nanoseconds since the start of a run.
type clock struct{ base time.Time }

func newClock() clock { return clock{base: time.Now()} }

func (c clock) now() int64 { return int64(time.Since(c.base)) }

// loadWorker drives one connection's produce load.
type loadWorker interface {
	// run produces until st is stopped, then waits for the acks of
	// everything sent (or ctx to end). A non-nil error means the
	// connection could not go on; records that failed are counted, not
	// returned.
	run(ctx context.Context, st *stopper) error
	// counts returns the records acknowledged and failed so far. It is
	// safe to call while run is running.
	counts() (acked, failed uint64)
	// latencies returns the latency histogram; call it after close.
	latencies() *histogram.Histogram
	// firstError returns the first record failure, or nil.
	firstError() error
	// stats returns the backpressure frames and reconnects seen.
	stats() (backpressure, reconnects uint64)
	// close releases the connection.
	close()
}

// stopper ends the load: the flag for the loop's check on every record,
// the context for waits that block (a full window, a stalled server).
type stopper struct {
	flag   atomic.Bool
	ctx    context.Context
	cancel context.CancelFunc
}

func newStopper(parent context.Context) *stopper {
	st := &stopper{}
	st.ctx, st.cancel = context.WithCancel(parent)
	return st
}

func (st *stopper) stop() {
	st.flag.Store(true)
	st.cancel()
}

func (st *stopper) stopped() bool { return st.flag.Load() }

// shared is what every worker of a produce phase is told. The clock
// starts before the connections are made; from is set once they all are.
type shared struct {
	clock   clock
	from    atomic.Int64 // records accepted before this (ns on clock) are warm-up
	latency bool
}

// failures counts failed records and remembers the first error.
type failures struct {
	n     atomic.Uint64
	mu    sync.Mutex // guards first
	first error
}

func (f *failures) add(n uint64, err error) {
	f.n.Add(n)
	f.mu.Lock()
	if f.first == nil {
		f.first = err
	}
	f.mu.Unlock()
}

func (f *failures) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first
}

// stampRing is a FIFO of the times records were accepted, written by the
// load goroutine and read by the acknowledgement callbacks (serialized by
// the worker's mutex). The producer acknowledges one connection's records
// in the order they were produced, so the oldest stamp belongs to the
// record being acknowledged; a batch retried behind later ones (after a
// server-side refusal) swaps stamps between records, which then show in
// the errors.
//
// A slot is pushed, holding unstamped, before Produce and stamped once
// Produce returns: the callback of a record can only run after Produce
// queued it, but it may run before Produce returns, and then finds the
// slot unstamped and records nothing.
type stampRing struct {
	buf  []atomic.Int64
	mask uint64
	head atomic.Uint64 // next slot to write; only the load goroutine stores it
	tail atomic.Uint64 // next slot to read; stored under the worker's mutex
}

// unstamped marks a slot whose record Produce has not yet accepted.
const unstamped = -1

func newStampRing(capacity int) *stampRing {
	n := 1
	for n < capacity {
		n <<= 1
	}
	return &stampRing{buf: make([]atomic.Int64, n), mask: uint64(n - 1)}
}

// push appends an unstamped slot; it reports false when the ring is full.
func (r *stampRing) push() bool {
	h := r.head.Load()
	if h-r.tail.Load() == uint64(len(r.buf)) {
		return false
	}
	r.buf[h&r.mask].Store(unstamped)
	r.head.Store(h + 1)
	return true
}

// stamp sets the time of the slot pushed last.
func (r *stampRing) stamp(t int64) { r.buf[(r.head.Load()-1)&r.mask].Store(t) }

// unpush removes the slot pushed last, whose record was refused before
// any callback could read it.
func (r *stampRing) unpush() { r.head.Store(r.head.Load() - 1) }

// pop removes and returns the oldest slot's time (unstamped if none was
// set yet).
func (r *stampRing) pop() (int64, bool) {
	t := r.tail.Load()
	if t == r.head.Load() {
		return 0, false
	}
	v := r.buf[t&r.mask].Load()
	r.tail.Store(t + 1)
	return v, true
}

// lncWorker produces through the lnc-client Producer: one Client (one
// connection) and one Producer per worker. The record and its callback are
// made once, so producing allocates nothing per record.
type lncWorker struct {
	sh     *shared
	cfg    *config
	client *lance.Client
	prod   *lance.Producer
	rec    lance.Record
	cb     func(lance.Offset, error)

	acked atomic.Uint64
	fail  failures

	mu    sync.Mutex // guards hist and the read side of ring
	ring  *stampRing
	hist  histogram.Histogram
	stamp bool // latency on: stamp each record
}

func newLNCWorker(ctx context.Context, cfg *config, sh *shared, payload []byte) (*lncWorker, error) {
	client, err := lance.Dial(ctx, cfg.endpoint)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	batchBytes := cfg.recordsPerBatch() * cfg.recordSize()
	if cfg.batchSize == 0 {
		batchBytes = 1 // every record is larger, so each travels alone
	}
	// The buffer is the window: Produce blocks once the window's worth
	// of records is unacknowledged, so the loop neither runs ahead of the
	// acks nor leaves the window short.
	buffered := cfg.window() * cfg.recordsPerBatch() * cfg.recordSize()
	if cfg.acks == acksNoWait {
		buffered = max(noWaitBuffer, 4*cfg.recordsPerBatch()*cfg.recordSize())
	}
	prod, err := lance.NewProducer(client,
		lance.WithBatchBytes(batchBytes),
		lance.WithLinger(time.Duration(cfg.lingerMS)*time.Millisecond),
		lance.WithMaxInFlight(cfg.window()),
		lance.WithMaxBufferedBytes(max(buffered, batchBytes)),
		lance.WithDeliveryTimeout(15*time.Second),
		lance.WithIdempotence(cfg.idempotent),
	)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("creating the producer: %w", err)
	}
	w := &lncWorker{sh: sh, cfg: cfg, client: client, prod: prod, rec: lance.Record{Value: payload}, stamp: sh.latency}
	if w.stamp {
		w.ring = newStampRing(buffered/cfg.recordSize() + 2)
	}
	w.cb = w.onAck
	return w, nil
}

func (w *lncWorker) run(ctx context.Context, st *stopper) error {
	topic := w.cfg.topic
	for !st.stopped() {
		if w.stamp {
			for !w.ring.push() {
				runtime.Gosched() // not reached while the ring exceeds the buffer
			}
		}
		// Produce blocks while the window is full; the record's latency
		// starts when it is accepted.
		if err := w.prod.Produce(st.ctx, topic, w.rec, w.cb); err != nil {
			if w.stamp {
				w.ring.unpush()
			}
			if st.ctx.Err() != nil {
				break // the window ended while Produce waited for room
			}
			return fmt.Errorf("produce: %w", err)
		}
		if w.stamp {
			w.ring.stamp(w.sh.clock.now())
		}
	}
	// Drain: wait for every record sent to be acknowledged or failed.
	dctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	if err := w.prod.Close(dctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("draining: %w", err)
	}
	return nil
}

// onAck is the Produce callback of every record. It runs on the client's
// reader goroutine, in acknowledgement order.
func (w *lncWorker) onAck(_ lance.Offset, err error) {
	if w.stamp {
		now := w.sh.clock.now()
		w.mu.Lock()
		t0, ok := w.ring.pop()
		if err == nil && ok && t0 != unstamped && t0 >= w.sh.from.Load() {
			w.hist.Record(uint64(now - t0))
		}
		w.mu.Unlock()
	}
	if err != nil {
		w.fail.add(1, err)
		return
	}
	w.acked.Add(1)
}

func (w *lncWorker) counts() (uint64, uint64) { return w.acked.Load(), w.fail.n.Load() }

func (w *lncWorker) latencies() *histogram.Histogram {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.hist
	return &h
}

func (w *lncWorker) firstError() error { return w.fail.err() }

func (w *lncWorker) stats() (uint64, uint64) {
	return w.client.Backpressure(), w.client.Reconnects()
}

func (w *lncWorker) close() { w.client.Close() }

// drainTimeout bounds the wait for outstanding acks after the measured
// window, as upstream's 15 s drain did, with room for a busy server.
const drainTimeout = 30 * time.Second
