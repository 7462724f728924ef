package main

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	lance "github.com/lance-go/lance/lnc-client"
	"github.com/lance-go/lance/lnc-core/tlv"
	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

// replayWait is the long-poll wait of a replay fetch. A replay stops at
// the end it was given, so a fetch only waits when the log ends earlier
// than that (it was cut by retention or deleted).
const replayWait = 100 * time.Millisecond

// replayWorker reads one topic from the beginning to a given end.
type replayWorker interface {
	// run reads until the end offset, stop, or ctx; it reports whether
	// it reached the end.
	run(ctx context.Context, stop *atomic.Bool, end uint64) (bool, error)
	// counts returns the records read so far, the bytes of their values
	// and the log bytes read (TLV headers and idempotent producers'
	// records included); safe to call while run is running.
	counts() (records, valueBytes, logBytes uint64)
	close()
}

// lncReplay reads with the lnc-client Consumer (FetchBatches long poll,
// TLV parsing into Records).
type lncReplay struct {
	cons    *lance.Consumer
	records atomic.Uint64
	values  atomic.Uint64
	bytes   atomic.Uint64
}

func newLNCReplay(admin *lance.Client, cfg *config) (*lncReplay, error) {
	cons, err := lance.NewConsumer(admin, cfg.topic, lance.WithMaxBytes(cfg.fetchBytes), lance.WithMaxWait(replayWait), lance.WithBufferReuse())
	if err != nil {
		return nil, fmt.Errorf("creating the consumer: %w", err)
	}
	return &lncReplay{cons: cons}, nil
}

func (r *lncReplay) run(ctx context.Context, stop *atomic.Bool, end uint64) (bool, error) {
	if err := r.cons.Seek(ctx, lance.SeekBeginning); err != nil {
		return false, fmt.Errorf("seek: %w", err)
	}
	last := uint64(r.cons.Position())
	for last < end && !stop.Load() {
		recs, err := r.cons.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			if lance.IsRetryable(err) {
				continue
			}
			return false, fmt.Errorf("poll: %w", err)
		}
		pos := uint64(r.cons.Position())
		var values uint64
		for i := range recs {
			values += uint64(len(recs[i].Value))
		}
		r.records.Add(uint64(len(recs)))
		r.values.Add(values)
		r.bytes.Add(pos - last)
		last = pos
	}
	return last >= end, nil
}

func (r *lncReplay) counts() (uint64, uint64, uint64) {
	return r.records.Load(), r.values.Load(), r.bytes.Load()
}

func (r *lncReplay) close() { r.cons.Close() }

// rawReplay sends FetchBatches frames itself and walks the TLV headers
// of each reply without decoding Records: the server's replay speed with
// as little client as possible. Idempotent producers' records (type 0x0E)
// are not counted as records; a compressed batch (type 0x0F) counts as
// one record whose value is the compressed envelope.
type rawReplay struct {
	conn     net.Conn
	topicID  uint32
	maxBytes uint32
	parser   *frame.Parser
	req      []byte
	records  atomic.Uint64
	values   atomic.Uint64
	bytes    atomic.Uint64
}

func newRawReplay(ctx context.Context, cfg *config, topicID uint32) (*rawReplay, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.endpoint)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	return &rawReplay{
		conn: conn, topicID: topicID, maxBytes: uint32(cfg.fetchBytes),
		parser: frame.NewParser(frame.Config{Dialect: rawDialect, BufferSize: cfg.fetchBytes + 64<<10}),
	}, nil
}

func (r *rawReplay) run(ctx context.Context, stop *atomic.Bool, end uint64) (bool, error) {
	stopWatch := context.AfterFunc(ctx, func() { r.conn.SetDeadline(time.Now()) })
	defer stopWatch()
	next := uint64(0)
	for next < end && !stop.Load() {
		req := control.FetchBatches{TopicID: r.topicID, StartOffset: next, MaxBytes: r.maxBytes, MaxWaitMS: uint32(replayWait / time.Millisecond)}
		r.req = frame.AppendControl(r.req[:0], rawDialect, uint8(control.CodeFetchBatches), req.AppendTo(nil))
		if _, err := r.conn.Write(r.req); err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			return false, fmt.Errorf("write: %w", err)
		}
		f, err := r.reply()
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			return false, err
		}
		switch code := control.CodeFromBatchID(f.BatchID); {
		case f.Kind() != frame.KindControl:
			return false, fmt.Errorf("fetch answered with a %v frame", f.Kind())
		case code == control.CodeBatchesResponse:
			br, err := control.DecodeBatchesResponse(f.Payload)
			if err != nil {
				return false, fmt.Errorf("fetch reply: %w", err)
			}
			var n, values uint64
			it := tlv.NewIterator(br.Data)
			for it.Next() {
				if rec := it.Record(); rec.Type != frame.ProducerRecordType {
					n++
					values += uint64(len(rec.Value))
				}
			}
			if err := it.Err(); err != nil {
				return false, fmt.Errorf("fetch reply at offset %d: %w", br.StartOffset+uint64(it.Consumed()), err)
			}
			r.records.Add(n)
			r.values.Add(values)
			r.bytes.Add(uint64(len(br.Data)))
			next = br.NextOffset
		case code == control.CodeCatchingUp:
			return false, fmt.Errorf("the log ends before offset %d (fetch at %d was past its end)", end, next)
		case code == control.CodeErrorResponse:
			text, _ := control.DecodeError(f.Payload)
			return false, fmt.Errorf("fetch refused: %s", text)
		default:
			return false, fmt.Errorf("fetch answered with control code %#x", uint8(code))
		}
	}
	return next >= end, nil
}

// reply reads frames until the reply to the fetch: backpressure and
// keepalive frames answer nothing.
func (r *rawReplay) reply() (frame.Frame, error) {
	for {
		f, ok, err := r.parser.Next()
		if err != nil {
			return frame.Frame{}, fmt.Errorf("reading the fetch reply: %w", err)
		}
		if ok {
			if f.Kind() == frame.KindControl || f.Kind() == frame.KindAck {
				return f, nil
			}
			continue
		}
		if _, err := r.parser.Fill(r.conn); err != nil {
			return frame.Frame{}, fmt.Errorf("reading the fetch reply: %w", err)
		}
	}
}

func (r *rawReplay) counts() (uint64, uint64, uint64) {
	return r.records.Load(), r.values.Load(), r.bytes.Load()
}

func (r *rawReplay) close() { r.conn.Close() }

// logEnd returns the current end offset of the topic: where a consumer
// that seeks to the end would start.
func logEnd(ctx context.Context, admin *lance.Client, topic string) (uint64, error) {
	cons, err := lance.NewConsumer(admin, topic)
	if err != nil {
		return 0, fmt.Errorf("finding the end of %q: %w", topic, err)
	}
	defer cons.Close()
	if err := cons.Seek(ctx, lance.SeekEnd); err != nil {
		return 0, fmt.Errorf("finding the end of %q: %w", topic, err)
	}
	return uint64(cons.Position()), nil
}
