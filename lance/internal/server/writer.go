package server

import (
	"context"
	"errors"
	"github.com/lance-go/lance/lance/internal/topics"
	"io"
	"time"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/topiclog"
	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

// flushAt is the most reply bytes gathered before a write.
const flushAt = 64 << 10

func (c *conn) writeLoop() {
	defer close(c.writerDone)
	for it := range c.out {
		c.handleItem(&it)
		if len(c.out) == 0 || len(c.wbuf) >= flushAt {
			c.flush()
		}
	}
	c.flush()
}

func (c *conn) handleItem(it *outItem) {
	switch it.kind {
	case itemBytes:
		if !c.dead {
			c.wbuf = append(c.wbuf, *it.buf...)
		}
		c.s.pool.put(it.buf)
	case itemAck:
		c.finishIngest(it)
	case itemFetch:
		c.flush()
		c.runFetch(it)
	case itemBatches:
		c.flush()
		c.runBatches(it)
	}
}

// finishIngest waits for the batch's commit and writes its ack, or the
// error reply when it failed.
func (c *conn) finishIngest(it *outItem) {
	in := it.ing
	select {
	case <-in.Done():
	default:
		// Send what is ready before waiting for the disk.
		c.flush()
		<-in.Done()
	}
	d := c.replyDialect()
	if in.Err == nil {
		m := c.s.Metrics
		if in.Duplicate {
			m.duplicates.Inc()
		}
		m.batchesIngested.Inc()
		m.recordsIngested.Add(int(in.RecordCount))
		m.bytesIngested.Add(len(in.Data))
		m.ackLatency.Update(time.Since(it.received).Seconds())
		if !c.dead {
			if it.ackOff {
				c.wbuf = frame.AppendAckOffset(c.wbuf, d, it.batchID, in.Offset)
			} else {
				c.wbuf = frame.AppendAck(c.wbuf, d, it.batchID)
			}
		}
	} else {
		c.s.Metrics.countErr(in.Err)
		c.log.Warn("ingest failed", "err", in.Err)
		if !c.dead {
			c.wbuf = frame.AppendControl(c.wbuf, d, uint8(control.CodeErrorResponse), []byte(storageErrorText(in.Err)))
		}
	}
	c.budget.Release(int64(len(*it.payload)))
	c.s.pool.put(it.payload)
	c.putIngest(in)
	c.inflight.Add(-1)
}

// storageErrorText is the reply to an ingest the storage refused.
func storageErrorText(err error) string {
	if errors.Is(err, topiclog.ErrWriteFailed) {
		return control.StorageUnavailable
	}
	if errors.Is(err, topics.ErrSequenceTooOld) {
		return "Invalid data: " + err.Error()
	}
	return "Storage error: " + err.Error()
}

// flush writes the gathered replies.
func (c *conn) flush() {
	if len(c.wbuf) == 0 {
		return
	}
	if !c.dead {
		c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
		if _, err := c.nc.Write(c.wbuf); err != nil {
			c.writeFailed(err)
		}
	}
	if cap(c.wbuf) > 4*flushAt {
		c.wbuf = nil
	} else {
		c.wbuf = c.wbuf[:0]
	}
}

func (c *conn) writeFailed(err error) {
	if !c.dead {
		c.log.Debug("write failed: closing", "err", err)
		c.dead = true
		c.abort()
	}
}

// writeFrame writes one frame built in a pooled buffer.
func (c *conn) writeFrame(b []byte) {
	if c.dead {
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.writeFailed(err)
	}
}

func (c *conn) writeControl(code control.Code, payload []byte) {
	c.wbuf = frame.AppendControl(c.wbuf, c.replyDialect(), uint8(code), payload)
	c.flush()
}

// runFetch answers a classic Fetch (0x10) with the reference semantics:
// log[start : min(start+max, end)], cut anywhere; CatchingUp past the end;
// the tail sentinel answers the end. An offset below the retained start is
// served from the start (the data before it is gone; next_offset tells).
func (c *conn) runFetch(it *outItem) {
	start := time.Now()
	l := it.topic.Log()
	end := l.End()
	off := it.off
	var hdr [control.FetchResponseHeaderSize]byte
	switch {
	case off == control.TailOffset:
		c.writeControl(control.CodeFetchResponse, control.AppendFetchResponseHeader(hdr[:0], end, 0, 0))
		return
	case off > end:
		c.writeControl(control.CodeCatchingUp, control.CatchingUp{EndOffset: end}.AppendTo(hdr[:0]))
		return
	}
	off = max(off, l.Start())
	n := min(uint64(it.max), uint64(c.s.opts.MaxFetch), end-off)
	if n == 0 {
		c.writeControl(control.CodeFetchResponse, control.AppendFetchResponseHeader(hdr[:0], off, 0, 0))
		return
	}
	if err := c.rate.take(c.ctx, int64(n)); err != nil {
		return
	}
	if c.raw != nil && n >= sendfileMinBytes && c.fetchZeroCopy(l, off, int(n)) {
		c.s.Metrics.fetches.Inc()
		c.s.Metrics.fetchBytes.Add(int(n))
		c.s.Metrics.fetchLatency.Update(time.Since(start).Seconds())
		return
	}
	const pre = frame.HeaderSize + control.FetchResponseHeaderSize
	b := c.s.pool.get(pre + int(n))
	defer c.s.pool.put(b)
	got, err := c.readLog(l, (*b)[pre:], off)
	if err == nil {
		err = c.verifyRange(it.topic, (*b)[pre:pre+got], off)
	}
	if err != nil {
		c.log.Error("fetch refused", "topic", it.topic.Name(), "offset", off, "err", err)
		c.s.Metrics.errIO.Inc()
		c.writeControl(control.CodeErrorResponse, []byte("Storage error: "+err.Error()))
		return
	}
	control.AppendFetchResponseHeader((*b)[frame.HeaderSize:frame.HeaderSize], off+uint64(got), uint32(got), control.ReferenceRecordCount(got))
	c.sendPayloadFrame((*b)[:pre+got], control.CodeFetchResponse)
	c.s.Metrics.fetches.Inc()
	c.s.Metrics.fetchBytes.Add(got)
	c.s.Metrics.fetchLatency.Update(time.Since(start).Seconds())
}

// readLog reads p from the log at off, returning the bytes read (fewer
// when retention or the end came first).
func (c *conn) readLog(l *topiclog.Log, p []byte, off uint64) (int, error) {
	n, err := l.ReadAt(c.ctx, p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	return n, nil
}

// sendPayloadFrame fills in the frame header of b, whose payload starts at
// b[HeaderSize:], and writes it.
func (c *conn) sendPayloadFrame(b []byte, code control.Code) {
	d := c.replyDialect()
	payload := b[frame.HeaderSize:]
	h := frame.Header{
		Flags:         frame.FlagControl,
		BatchID:       uint64(code),
		PayloadLength: uint32(len(payload)),
		PayloadCRC:    d.Sum(payload),
	}
	frame.PutHeader(b, &h, d)
	c.writeFrame(b)
}

// runBatches answers FetchBatches (extension 0x13): whole batches from the
// one holding the offset, up to max bytes (the first one whole in any
// case), waiting up to the request's time for a batch at the end of the
// log.
func (c *conn) runBatches(it *outItem) {
	start := time.Now()
	t := it.topic
	l := t.Log()
	off := it.off
	if end := l.End(); off > end {
		var p [8]byte
		c.writeControl(control.CodeCatchingUp, control.CatchingUp{EndOffset: end}.AppendTo(p[:0]))
		return
	}
	off = max(off, l.Start())
	if off >= l.End() && it.wait > 0 {
		c.waitForData(it, off)
		off = max(off, l.Start())
	}
	maxBytes := int(min(uint64(max(it.max, 1)), uint64(c.s.opts.MaxFetch)))
	var entries [64]index.Entry
	var total, records, count int
	var first uint64
	next := off
	c.dir = c.dir[:0]
	for total < maxBytes {
		es, err := l.Batches(next, maxBytes-total, entries[:0])
		if err != nil {
			if errors.Is(err, topiclog.ErrOffset) && count == 0 {
				next = l.Start()
				continue
			}
			if count == 0 {
				c.s.Metrics.errIO.Inc()
				c.writeControl(control.CodeErrorResponse, []byte("Storage error: "+err.Error()))
				return
			}
			break
		}
		if len(es) == 0 {
			break
		}
		stop := false
		for i := range es {
			e := &es[i]
			if count > 0 && total+int(e.Length) > maxBytes {
				stop = true
				break
			}
			if count == 0 {
				first = e.Offset
			}
			total += int(e.Length)
			records += int(e.RecordCount)
			count++
			next = e.End()
			if it.keyed {
				c.dir = control.BatchDirEntry{Offset: e.Offset, Length: e.Length,
					RecordCount: e.RecordCount, SortKey: e.SortKey.Bytes()}.AppendTo(c.dir)
			}
		}
		if stop {
			break
		}
	}
	pre := frame.HeaderSize + control.BatchesResponseHeaderSize + len(c.dir)
	b := c.s.pool.get(pre + total)
	defer c.s.pool.put(b)
	if count == 0 {
		first, next = off, off
	} else {
		if err := c.rate.take(c.ctx, int64(total)); err != nil {
			return
		}
		got, err := c.readLog(l, (*b)[pre:], first)
		if err == nil && got != total {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			err = c.verifyRange(t, (*b)[pre:pre+total], first)
		}
		if err != nil {
			c.s.Metrics.errIO.Inc()
			c.writeControl(control.CodeErrorResponse, []byte("Storage error: "+err.Error()))
			return
		}
	}
	h := control.AppendBatchesResponseHeader((*b)[frame.HeaderSize:frame.HeaderSize], first, next, uint32(count), uint32(records), uint32(total))
	code := control.CodeBatchesResponse
	if it.keyed {
		code = control.CodeKeyedBatchesResponse
		copy((*b)[frame.HeaderSize+len(h):pre], c.dir)
	}
	c.sendPayloadFrame((*b)[:pre+total], code)
	c.s.Metrics.fetches.Inc()
	c.s.Metrics.fetchBytes.Add(total)
	c.s.Metrics.fetchLatency.Update(time.Since(start).Seconds())
}

// waitForData waits until the log grows past off, the wait ends, the
// connection stops or the topic closes.
func (c *conn) waitForData(it *outItem, off uint64) {
	wait := min(it.wait, c.s.opts.MaxLongPoll)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	t := it.topic
	for {
		ch := t.Changed()
		if t.Log().End() > off {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			return
		case <-c.stop:
			return
		case <-c.ctx.Done():
			return
		}
	}
}

// replyDialect is the dialect replies are written in.
func (c *conn) replyDialect() checksum.Dialect {
	if d := checksum.Dialect(c.d.Load()); d.Valid() {
		return d
	}
	return checksum.IEEE
}

// rateLimiter is a per-connection token bucket on fetched bytes, refilled
// at perSec with a burst of one second. Fetches wait for tokens (throttle)
// instead of failing.
type rateLimiter struct {
	perSec int64
	tokens float64
	last   time.Time
}

func (r *rateLimiter) take(ctx context.Context, n int64) error {
	if r.perSec <= 0 {
		return nil
	}
	now := time.Now()
	if r.last.IsZero() {
		r.tokens = float64(r.perSec)
	} else {
		r.tokens = min(float64(r.perSec), r.tokens+now.Sub(r.last).Seconds()*float64(r.perSec))
	}
	r.last = now
	r.tokens -= float64(n)
	if r.tokens >= 0 {
		return nil
	}
	wait := time.Duration(-r.tokens / float64(r.perSec) * float64(time.Second))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
