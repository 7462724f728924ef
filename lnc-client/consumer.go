package lance

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/lance-go/lance/lnc-core/tlv"
	"github.com/lance-go/lance/lnc-network/compress"
	"github.com/lance-go/lance/lnc-network/control"
)

type consumerConfig struct {
	reuse      bool
	maxWait    time.Duration
	maxBytes   int
	store      OffsetStore
	storeSet   bool // WithOffsetStore was given, perhaps with a nil store
	consumerID uint64
}

// ConsumerOption configures a Consumer.
type ConsumerOption func(*consumerConfig)

// WithMaxWait sets how long one fetch waits at the end of the log for new
// data before Poll returns no records, default 1 s. The server caps the
// wait (limits.max_long_poll, 30 s by default).
func WithMaxWait(d time.Duration) ConsumerOption { return func(c *consumerConfig) { c.maxWait = d } }

// WithMaxBytes sets how much data one fetch may return, default 1 MiB.
// The server sends at least one whole batch even when it is larger.
func WithMaxBytes(n int) ConsumerOption { return func(c *consumerConfig) { c.maxBytes = n } }

// WithBufferReuse makes the consumer read every fetch into the same
// buffer and return records in the same slice, instead of new ones each
// time: replaying is then several times faster, since it no longer
// allocates (and the garbage collector no longer frees) a buffer of up to
// WithMaxBytes per fetch. The price: the slice Poll returns, and the Key
// and Value of its records, are valid only until the next Poll; with
// Records, a record's Key and Value only until the loop asks for the next
// record. Copy what you keep.
func WithBufferReuse() ConsumerOption { return func(c *consumerConfig) { c.reuse = true } }

// WithOffsetStore makes the consumer resume from, and commit to, store
// under consumerID. Before its first fetch (or its first Commit) the
// consumer loads the offset committed for (topic, consumerID): when there
// is one, reading starts there; when there is none, reading starts where
// it would without a store, at the beginning of the log or wherever a
// Seek made before that first fetch pointed. A Seek made after the first
// fetch moves the consumer as usual. Consumer.Commit stores Position.
func WithOffsetStore(store OffsetStore, consumerID uint64) ConsumerOption {
	return func(c *consumerConfig) { c.store, c.storeSet, c.consumerID = store, true, consumerID }
}

// fetch modes: which command the server answers.
const (
	modeUnknown = iota
	modeBatches // FetchBatches (0x13), long poll
	modeClassic // Fetch (0x10), for servers without the extension
)

// classicPause is the wait between empty classic fetches.
const classicPause = 50 * time.Millisecond

// Consumer reads one topic from an offset onwards and parses its TLV
// records, carrying a record cut by a fetch over to the next one.
//
// A Consumer has a connection of its own, dialed on first use with the
// configuration of the Client it was made from (address, TLS, token,
// timeouts): its fetches wait at the end of the log for new data (long
// poll), and since a server answers requests in order, such a wait would
// hold back every reply behind it on a shared connection. The Client
// given to NewConsumer is only read for its configuration; closing one
// does not close the other.
//
// It uses FetchBatches (0x13), which returns whole batches and waits for
// new ones, and falls back to the classic Fetch (0x10), polling, when the
// server answers "Invalid client command". Lost connections are
// re-established and the fetch repeated; records may then be delivered
// again only if the caller seeks back.
//
// With WithOffsetStore, a Consumer resumes from a committed offset and
// Commit records its progress; delivery is then at least once across
// restarts: records handed out after the last commit are handed out again
// by the next consumer.
//
// A Consumer is safe for concurrent use, but its methods run one at a
// time.
type Consumer struct {
	cl    *Client
	topic string
	cfg   consumerConfig

	commitMu sync.Mutex // serializes Commit, so that stored offsets follow Position's order

	mu     sync.Mutex // guards every field below; held for each Poll and Seek
	loaded bool       // the offset store was consulted (always true without one)
	mode   int
	next   uint64                  // offset of the next byte to fetch
	tail   []byte                  // bytes of a record cut by the last fetch, starting at next-len(tail)
	skip   uint64                  // records starting before this offset are dropped (a seek inside a batch)
	pos    Offset                  // commit-safe position
	dir    []control.BatchDirEntry // the batches of the last keyed reply, for BatchOffset
	rbuf   *replyBuf               // with WithBufferReuse: the fetch buffer
	recs   []Record                // with WithBufferReuse: the records slice
}

// NewConsumer returns a Consumer of topic that starts at the beginning of
// the log (see Seek). It opens its own connection, with c's configuration,
// on first use; Close closes it.
func NewConsumer(c *Client, topic string, opts ...ConsumerOption) (*Consumer, error) {
	if err := checkName(topic); err != nil {
		return nil, err
	}
	cfg := consumerConfig{maxWait: time.Second, maxBytes: 1 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxWait < 0 || cfg.maxWait > time.Hour {
		return nil, fmt.Errorf("lance: max wait %v out of range", cfg.maxWait)
	}
	if cfg.maxBytes <= 0 || cfg.maxBytes > control.MaxFetchData {
		return nil, fmt.Errorf("lance: max bytes %d out of range", cfg.maxBytes)
	}
	if cfg.storeSet && cfg.store == nil {
		return nil, errors.New("lance: WithOffsetStore needs a store")
	}
	return &Consumer{cl: newClient(c.Addr(), c.cfg), topic: topic, cfg: cfg, loaded: cfg.store == nil}, nil
}

// Close closes the consumer's connection. It is idempotent.
func (c *Consumer) Close() error { return c.cl.Close() }

// Topic returns the topic the consumer reads.
func (c *Consumer) Topic() string { return c.topic }

// Position returns the offset just after the last record handed out (by
// Poll, or by Records up to the record last yielded): where a restarted
// consumer should seek to continue without loss. For records of a
// compressed batch it stays at the batch's start until the batch's last
// record is handed out. With an offset store, the stored offset is only
// applied at the first fetch; Position reports the fallback before that.
func (c *Consumer) Position() Offset {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos
}

// Commit stores Position in the consumer's offset store (WithOffsetStore).
//
// Position is the commit-safe offset: the one just after the last record
// handed out, so a commit says "every record before this one is done".
// Call Commit only once the records handed out so far are processed. A
// consumer started later with the same store and consumer id begins with
// the first record after the commit; records handed out after the commit
// are delivered again. Called before the first fetch, Commit stores the
// offset the consumer would start from, which leaves an earlier commit as
// it was. Without a store Commit fails with ErrNoOffsetStore.
func (c *Consumer) Commit(ctx context.Context) error {
	if c.cfg.store == nil {
		return fmt.Errorf("lance: commit %q: %w", c.topic, ErrNoOffsetStore)
	}
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.mu.Lock()
	err := c.loadLocked(ctx)
	pos := c.pos
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("lance: commit %q: %w", c.topic, err)
	}
	if err := c.cfg.store.Commit(ctx, c.topic, c.cfg.consumerID, pos); err != nil {
		return fmt.Errorf("lance: commit %q: %w", c.topic, err)
	}
	return nil
}

// loadLocked applies the committed offset once, before the first fetch.
// On error it stays to be tried again.
func (c *Consumer) loadLocked(ctx context.Context) error {
	if c.loaded {
		return nil
	}
	off, ok, err := c.cfg.store.Load(ctx, c.topic, c.cfg.consumerID)
	if err != nil {
		return fmt.Errorf("load the offset of consumer %d: %w", c.cfg.consumerID, err)
	}
	if ok {
		c.setLocked(off)
	}
	c.loaded = true
	return nil
}

func (c *Consumer) setLocked(off Offset) {
	c.next, c.skip, c.pos, c.tail = uint64(off), uint64(off), off, nil
}

// SeekTarget says where Seek moves a consumer; build one with
// SeekBeginning, SeekEnd, SeekOffset or SeekTime.
type SeekTarget struct {
	kind int
	off  Offset
	t    time.Time
}

const (
	seekBeginning = iota
	seekEnd
	seekOffset
	seekTime
)

var (
	// SeekBeginning is the first retained record of the topic.
	SeekBeginning = SeekTarget{kind: seekBeginning}
	// SeekEnd is the end of the log: only records produced from now on.
	SeekEnd = SeekTarget{kind: seekEnd}
)

// SeekOffset is the record at offset o, which should be a record boundary
// such as a Record's Offset or a Position. Records the server returns
// before o (the start of o's batch) are skipped.
func SeekOffset(o Offset) SeekTarget { return SeekTarget{kind: seekOffset, off: o} }

// SeekTime is the first batch whose producer timestamp is at or after t
// (the end of the log when none is). It needs the OffsetForTime extension;
// a server without it makes Seek fail with ErrUnsupported.
func SeekTime(t time.Time) SeekTarget { return SeekTarget{kind: seekTime, t: t} }

// Seek moves the consumer; the next Poll reads from the target. On a
// consumer with an offset store, a Seek before the first fetch only sets
// where to start when nothing is committed (see WithOffsetStore).
func (c *Consumer) Seek(ctx context.Context, to SeekTarget) error {
	var off Offset
	switch to.kind {
	case seekBeginning:
	case seekOffset:
		off = to.off
	case seekEnd:
		err := c.cl.withTopic(ctx, c.topic, func(id uint32) error {
			rep, err := c.cl.call(ctx, control.CodeFetch, control.Fetch{TopicID: id, StartOffset: control.TailOffset}.AppendTo(nil), true, 0)
			if err != nil {
				return err
			}
			if rep.code != control.CodeFetchResponse {
				return unexpected("Fetch", rep)
			}
			fr, err := control.DecodeFetchResponse(rep.payload)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			off = Offset(fr.NextOffset)
			return nil
		})
		if err != nil {
			return fmt.Errorf("lance: seek to the end of %q: %w", c.topic, err)
		}
	case seekTime:
		err := c.cl.withTopic(ctx, c.topic, func(id uint32) error {
			or, err := c.cl.offsetForTime(ctx, id, uint64(max(to.t.UnixNano(), 0)))
			off = Offset(or.Offset)
			return err
		})
		if err != nil {
			return fmt.Errorf("lance: seek %q to %v: %w", c.topic, to.t, err)
		}
	}
	c.mu.Lock()
	c.setLocked(off)
	c.mu.Unlock()
	return nil
}

// Poll returns the next records, waiting up to the max wait for some to
// arrive; it returns no records and a nil error when none did. After
// Poll, Position is past every record returned.
func (c *Consumer) Poll(ctx context.Context) ([]Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	recs, err := c.pollLocked(ctx)
	if err != nil {
		return nil, fmt.Errorf("lance: consume %q: %w", c.topic, err)
	}
	if n := len(recs); n > 0 {
		c.pos = recs[n-1].next
	}
	return recs, nil
}

// Records iterates over the topic's records until ctx ends or a
// non-retryable error occurs; either ends the sequence after one final
// (Record{}, err) pair. Lost connections and timeouts are retried inside.
// Position follows the records as they are yielded.
//
//	for rec, err := range consumer.Records(ctx) {
//		if err != nil {
//			return err
//		}
//		handle(rec)
//	}
func (c *Consumer) Records(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for {
			c.mu.Lock()
			recs, err := c.pollLocked(ctx)
			c.mu.Unlock()
			if err != nil {
				if ctx.Err() == nil && IsRetryable(err) {
					continue
				}
				if ctx.Err() != nil {
					err = ctxErr(ctx)
				}
				yield(Record{}, fmt.Errorf("lance: consume %q: %w", c.topic, err))
				return
			}
			for _, r := range recs {
				c.mu.Lock()
				c.pos = r.next
				c.mu.Unlock()
				if !yield(r, nil) {
					return
				}
			}
			if len(recs) == 0 && ctx.Err() != nil {
				yield(Record{}, fmt.Errorf("lance: consume %q: %w", c.topic, ctxErr(ctx)))
				return
			}
		}
	}
}

// pollLocked fetches once (or, in classic mode, until data or the max
// wait) and parses what came.
func (c *Consumer) pollLocked(ctx context.Context) ([]Record, error) {
	if err := c.loadLocked(ctx); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.cfg.maxWait)
	for {
		var base uint64
		var data []byte
		err := c.cl.withTopic(ctx, c.topic, func(id uint32) error {
			var err error
			base, data, err = c.fetch(ctx, id)
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(data) == 0 && c.mode == modeClassic && time.Now().Before(deadline) {
			t := time.NewTimer(min(classicPause, time.Until(deadline)))
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return nil, ctxErr(ctx)
			}
		}
		if len(data) == 0 && base == c.next {
			return nil, nil
		}
		return c.parse(base, data)
	}
}

// fetch asks for data at c.next and returns where the data starts and the
// data itself.
func (c *Consumer) fetch(ctx context.Context, id uint32) (uint64, []byte, error) {
	if c.mode != modeClassic {
		// The batch directory costs 32 bytes a batch and gives each
		// record its batch's offset.
		req := control.FetchBatches{TopicID: id, StartOffset: c.next, MaxBytes: uint32(c.cfg.maxBytes),
			MaxWaitMS: uint32(c.cfg.maxWait / time.Millisecond), Flags: control.FetchWithKeys}
		c.dir = c.dir[:0]
		rep, err := c.cl.callInto(ctx, control.CodeFetchBatches, req.AppendTo(nil), true, c.cfg.maxWait, c.replyBuf())
		if err != nil {
			c.rbuf = nil // the reader may still write it
		} else if rerr := rep.err(); errors.Is(rerr, ErrUnsupported) {
			err = rerr // a server without the extension
		}
		switch {
		case errors.Is(err, ErrUnsupported):
			c.cl.log.Info("lance: server has no FetchBatches; using Fetch")
			c.mode = modeClassic
		case err != nil:
			return 0, nil, err
		case rep.code == control.CodeKeyedBatchesResponse:
			kr, err := control.DecodeKeyedBatchesResponse(rep.payload, c.dir[:0])
			if err != nil {
				return 0, nil, fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			c.mode, c.dir = modeBatches, kr.Dir
			return kr.StartOffset, kr.Data, nil
		case rep.code == control.CodeBatchesResponse:
			// A server that does not know the flags.
			br, err := control.DecodeBatchesResponse(rep.payload)
			if err != nil {
				return 0, nil, fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			c.mode = modeBatches
			return br.StartOffset, br.Data, nil
		default:
			return 0, nil, fetchReplyErr("FetchBatches", rep)
		}
	}
	req := control.Fetch{TopicID: id, StartOffset: c.next, MaxBytes: uint32(c.cfg.maxBytes)}
	rep, err := c.cl.callInto(ctx, control.CodeFetch, req.AppendTo(nil), true, 0, c.replyBuf())
	if err != nil {
		c.rbuf = nil // the reader may still write it
		return 0, nil, err
	}
	if rep.code != control.CodeFetchResponse {
		return 0, nil, fetchReplyErr("Fetch", rep)
	}
	fr, err := control.DecodeFetchResponse(rep.payload)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	// Data ends at next_offset; it starts there minus its length, which
	// differs from the request after retention removed the start.
	return fr.NextOffset - uint64(len(fr.Data)), fr.Data, nil
}

// offsetForTime asks OffsetForTime (0x15) of topic id: the first batch at
// or after ts, and the log's first retained offset and durable end.
func (c *Client) offsetForTime(ctx context.Context, id uint32, ts uint64) (control.OffsetResponse, error) {
	rep, err := c.call(ctx, control.CodeOffsetForTime, control.OffsetForTime{TopicID: id, TimestampNS: ts}.AppendTo(nil), true, 0)
	if err != nil {
		return control.OffsetResponse{}, err
	}
	if rep.code != control.CodeOffsetResponse {
		return control.OffsetResponse{}, unexpected("OffsetForTime", rep)
	}
	or, err := control.DecodeOffsetResponse(rep.payload)
	if err != nil {
		return control.OffsetResponse{}, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return or, nil
}

// replyBuf returns the buffer fetch replies go to: with WithBufferReuse
// the consumer's own (a new one after a fetch was abandoned), otherwise
// nil, for a new slice per reply.
func (c *Consumer) replyBuf() *replyBuf {
	if !c.cfg.reuse {
		return nil
	}
	if c.rbuf == nil {
		c.rbuf = &replyBuf{}
	}
	return c.rbuf
}

func fetchReplyErr(what string, rep reply) error {
	if rep.code == control.CodeCatchingUp {
		cu, err := control.DecodeCatchingUp(rep.payload)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		return &CatchingUpError{End: Offset(cu.EndOffset)}
	}
	return unexpected(what, rep)
}

// parse decodes the records in data, which starts at offset base, after
// the tail carried from the previous fetch when the two are contiguous.
func (c *Consumer) parse(base uint64, data []byte) ([]Record, error) {
	buf, bufOff := data, base
	if len(c.tail) > 0 && base == c.next {
		buf = append(c.tail[:len(c.tail):len(c.tail)], data...)
		bufOff = base - uint64(len(c.tail))
	}
	c.tail = nil
	c.next = base + uint64(len(data))
	batchOff := Offset(0)
	if c.mode == modeBatches {
		batchOff = Offset(base)
	}
	dir := c.dir
	var out []Record
	if c.cfg.reuse {
		clear(c.recs)
		out = c.recs[:0]
	}
	it := tlv.NewIterator(buf)
	for it.Next() {
		tr := it.Record()
		off := bufOff + uint64(tr.Offset)
		end := Offset(off) + Offset(tr.Size())
		for len(dir) > 0 && off >= dir[0].Offset+uint64(dir[0].Length) {
			dir = dir[1:]
		}
		if len(dir) > 0 && off >= dir[0].Offset {
			batchOff = Offset(dir[0].Offset)
		}
		if off < c.skip || tr.Type == typeProducer {
			continue
		}
		if tr.Type == typeCompressed {
			recs, err := unpack(tr.Value, Offset(off), batchOff, end)
			if err != nil {
				return nil, fmt.Errorf("compressed batch at offset %d: %w", off, err)
			}
			out = append(out, recs...)
			continue
		}
		r, err := decodeRecord(tr)
		if err != nil {
			return nil, fmt.Errorf("record at offset %d: %w", off, err)
		}
		r.Offset, r.BatchOffset, r.next = Offset(off), batchOff, end
		out = append(out, r)
	}
	if err := it.Err(); err != nil {
		if !errors.Is(err, tlv.ErrTruncated) {
			return nil, fmt.Errorf("data at offset %d is not a TLV record: %w", bufOff+uint64(it.Consumed()), err)
		}
		// A copy: the reply's buffer may be reused by the next fetch.
		c.tail = append([]byte(nil), buf[it.Consumed():]...)
	}
	for i := range out {
		out[i].Topic = c.topic
	}
	if c.cfg.reuse {
		c.recs = out
	}
	return out, nil
}

// unpack decodes the records of one compressed batch: all carry the
// envelope record's offset, and only the last moves the position past it.
func unpack(env []byte, off, batchOff, end Offset) ([]Record, error) {
	raw, err := compress.Decode(nil, env, 0)
	if err != nil {
		return nil, err
	}
	var out []Record
	it := tlv.NewIterator(raw)
	for it.Next() {
		r, err := decodeRecord(it.Record())
		if err != nil {
			return nil, err
		}
		r.Offset, r.BatchOffset, r.next = off, batchOff, off
		out = append(out, r)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if n := len(out); n > 0 {
		out[n-1].next = end
	}
	return out, nil
}
