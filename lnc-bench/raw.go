package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/lance-go/lance/lnc-bench/internal/histogram"
	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-core/tlv"
	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

// rawDialect is the checksum dialect of the raw path, the Rust client's
// (and lnc-client's).
const rawDialect = checksum.IEEE

// rawWorker writes ingest frames straight to a TCP connection and reads
// the acks with the lnc-network parser: no per-record work at all. Every
// batch carries the same payload (recordsPerBatch TLV records), so its
// CRC is computed once and a frame costs one 44-byte header. This
// measures the server with as little client as possible; the default
// lnc path measures the client too.
//
// Two goroutines: run writes (as many frames per writev as the window
// allows) and a reader matches acks to batches by order, which the
// LANCE-Go server keeps (docs/LWP.md §8).
type rawWorker struct {
	sh      *shared
	conn    net.Conn
	topicID uint32
	payload []byte
	records uint64 // records per batch
	crc     uint32
	window  uint64

	// Slots hold, per batch in flight, its header and its send time;
	// batch n (from 1) uses slot (n-1) & mask.
	headers []byte
	sent    []int64
	mask    uint64
	head    atomic.Uint64 // batches written; stored by run only
	tail    atomic.Uint64 // batches answered; stored by the reader only
	freed   chan struct{} // capacity 1: the reader answered a batch
	dead    chan struct{} // closed when the reader ends
	readErr error         // why the reader ended; read after dead is closed

	acked atomic.Uint64
	fail  failures
	bp    atomic.Uint64
	hist  histogram.Histogram // written by the reader only
}

func newRawWorker(ctx context.Context, cfg *config, sh *shared, topicID uint32, value []byte) (*rawWorker, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.endpoint)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	w := &rawWorker{sh: sh, conn: conn, topicID: topicID, records: uint64(cfg.recordsPerBatch()),
		window: uint64(cfg.window()), freed: make(chan struct{}, 1), dead: make(chan struct{})}
	for range cfg.recordsPerBatch() {
		if w.payload, err = tlv.Append(w.payload, tlv.TypeRawData, value); err != nil {
			conn.Close()
			return nil, fmt.Errorf("encoding records: %w", err)
		}
	}
	w.crc = rawDialect.Sum(w.payload)
	n := uint64(1)
	for n < w.window {
		n <<= 1
	}
	w.mask = n - 1
	w.headers = make([]byte, n*frame.HeaderSize)
	w.sent = make([]int64, n)
	go w.readLoop()
	return w, nil
}

// maxFramesPerWrite bounds the frames gathered into one writev.
const maxFramesPerWrite = 128

func (w *rawWorker) run(ctx context.Context, st *stopper) error {
	bufs := make(net.Buffers, 0, 2*maxFramesPerWrite)
	h := frame.Header{
		Flags:         frame.FlagBatch,
		RecordCount:   uint32(w.records),
		PayloadLength: uint32(len(w.payload)),
		PayloadCRC:    w.crc,
		TopicID:       w.topicID,
	}
	for !st.stopped() {
		head := w.head.Load()
		room := w.window - (head - w.tail.Load())
		if room == 0 {
			select {
			case <-w.freed:
			case <-w.dead:
				return w.readErr
			case <-st.ctx.Done():
			}
			continue
		}
		n := min(room, maxFramesPerWrite)
		now := w.sh.clock.now()
		wall := uint64(time.Now().UnixNano())
		bufs = bufs[:0]
		for i := range n {
			slot := (head + i) & w.mask
			hdr := w.headers[slot*frame.HeaderSize : (slot+1)*frame.HeaderSize]
			h.BatchID = head + i + 1
			h.TimestampNS = wall
			frame.PutHeader(hdr, &h, rawDialect)
			w.sent[slot] = now
			bufs = append(bufs, hdr, w.payload)
		}
		// The reader may see the acks as soon as the bytes leave, so the
		// batches are published first.
		w.head.Store(head + n)
		out := bufs
		if _, err := out.WriteTo(w.conn); err != nil {
			select {
			case <-w.dead:
				return w.readErr
			default:
			}
			return fmt.Errorf("write: %w", err)
		}
	}
	// Drain: wait until every batch written is answered.
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	for w.tail.Load() != w.head.Load() {
		select {
		case <-w.freed:
		case <-w.dead:
			return w.readErr
		case <-ctx.Done():
			return nil
		case <-timer.C:
			return fmt.Errorf("draining: %d batches unanswered after %v", w.head.Load()-w.tail.Load(), drainTimeout)
		}
	}
	return nil
}

// readLoop parses replies until the connection ends. Each ack or error
// reply answers the oldest batch in flight.
func (w *rawWorker) readLoop() {
	defer close(w.dead)
	p := frame.NewParser(frame.Config{Dialect: rawDialect})
	for {
		_, rerr := p.Fill(w.conn)
		now := w.sh.clock.now()
		for {
			f, ok, err := p.Next()
			if err != nil {
				w.readErr = fmt.Errorf("reading replies: %w", err)
				return
			}
			if !ok {
				break
			}
			if err := w.answer(&f, now); err != nil {
				w.readErr = err
				return
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, net.ErrClosed) {
				w.readErr = fmt.Errorf("reading replies: %w", rerr)
			}
			return
		}
	}
}

func (w *rawWorker) answer(f *frame.Frame, now int64) error {
	switch f.Kind() {
	case frame.KindBackpressure:
		w.bp.Add(1)
		return nil
	case frame.KindAck, frame.KindControl:
	default:
		return nil
	}
	t := w.tail.Load()
	if t == w.head.Load() {
		return fmt.Errorf("%v frame with no batch in flight", f.Kind())
	}
	slot := t & w.mask
	switch {
	case f.Kind() == frame.KindAck:
		if f.BatchID != t+1 {
			return fmt.Errorf("ack of batch %d while batch %d is the oldest in flight", f.BatchID, t+1)
		}
		if w.sh.latency && w.sent[slot] >= w.sh.from.Load() {
			w.hist.RecordN(uint64(now-w.sent[slot]), w.records)
		}
		w.acked.Add(w.records)
	case control.CodeFromBatchID(f.BatchID) == control.CodeErrorResponse:
		text, _ := control.DecodeError(f.Payload)
		w.fail.add(w.records, fmt.Errorf("batch %d refused: %s", t+1, text))
	default:
		return fmt.Errorf("ingest answered with control code %#x", uint8(control.CodeFromBatchID(f.BatchID)))
	}
	w.tail.Store(t + 1)
	select {
	case w.freed <- struct{}{}:
	default:
	}
	return nil
}

func (w *rawWorker) counts() (uint64, uint64) { return w.acked.Load(), w.fail.n.Load() }

// latencies must only be called after run returned and close was called
// (the reader has ended).
func (w *rawWorker) latencies() *histogram.Histogram {
	<-w.dead
	h := w.hist
	return &h
}

func (w *rawWorker) firstError() error { return w.fail.err() }

func (w *rawWorker) stats() (uint64, uint64) { return w.bp.Load(), 0 }

func (w *rawWorker) close() {
	w.conn.Close()
	<-w.dead
}
