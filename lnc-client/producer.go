package lance

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/lance-go/lance/lnc-core/tlv"
	"github.com/lance-go/lance/lnc-network/compress"
	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

// UnknownOffset is passed to Produce callbacks when the server
// acknowledged a batch without saying where it landed (a reference server,
// which ignores the ack-with-offset request).
const UnknownOffset Offset = math.MaxUint64

// retryPause is the wait before a batch the server refused is sent again.
const retryPause = 100 * time.Millisecond

type producerConfig struct {
	batchBytes      int
	linger          time.Duration
	maxInFlight     int
	maxBuffered     int
	compression     compress.Algorithm
	deliveryTimeout time.Duration
	idempotent      bool
}

// ProducerOption configures a Producer.
type ProducerOption func(*producerConfig)

// WithBatchBytes sets the size at which a topic's batch is sent without
// waiting for the linger time, default 64 KiB. A record larger than this
// travels alone in its batch.
func WithBatchBytes(n int) ProducerOption { return func(c *producerConfig) { c.batchBytes = n } }

// WithLinger sets how long a batch waits for more records before it is
// sent, default 5 ms. Zero sends a batch as soon as the in-flight window
// has room; while the window is full, records gather in the open batch.
func WithLinger(d time.Duration) ProducerOption { return func(c *producerConfig) { c.linger = d } }

// WithMaxInFlight sets how many batches may be on the wire without an ack,
// default 8. 1 gives strict stop-and-wait.
func WithMaxInFlight(n int) ProducerOption { return func(c *producerConfig) { c.maxInFlight = n } }

// WithMaxBufferedBytes bounds the encoded bytes of records accepted by
// Produce and not yet acknowledged, default 32 MiB. When the bound is
// reached Produce blocks until acks free room or its context ends.
func WithMaxBufferedBytes(n int) ProducerOption {
	return func(c *producerConfig) { c.maxBuffered = n }
}

// WithCompression compresses each batch with alg (compress.LZ4, Zstd or
// S2; compress.None turns compression off, the default). A compressed
// batch is sent with the frame's compressed flag and travels as a single
// TLV record of type 0x0F whose value is the compress envelope of the
// batch's records; consumers of this package unpack it. S2 is a LANCE-Go
// extension that Rust consumers cannot read.
func WithCompression(alg compress.Algorithm) ProducerOption {
	return func(c *producerConfig) { c.compression = alg }
}

// WithDeliveryTimeout bounds how long a batch may keep being retried
// (after lost connections, backpressure or FORWARD_FAILED) before its
// records fail with the last error, default 1 minute.
func WithDeliveryTimeout(d time.Duration) ProducerOption {
	return func(c *producerConfig) { c.deliveryTimeout = d }
}

// WithIdempotence turns the idempotent producer on (the default) or off.
// On, every batch starts with a producer record naming the producer (a
// random 64-bit id) and the batch's sequence, and the server stores a
// batch it receives twice (a retry after a lost connection) only once,
// acknowledging the retry with the first copy's offset: delivery is then
// exactly once per Producer within the server's de-duplication window
// (docs/LWP.md §7). It costs 21 bytes per batch and limits
// WithMaxInFlight to MaxIdempotentInFlight. Off, a retried batch whose
// first copy was stored is stored twice (at least once).
func WithIdempotence(on bool) ProducerOption { return func(c *producerConfig) { c.idempotent = on } }

// MaxIdempotentInFlight is the largest WithMaxInFlight an idempotent
// producer accepts: the server remembers at least this many recent
// sequences per producer and topic.
const MaxIdempotentInFlight = 128

// Producer batches records per topic and sends them over its Client's
// connection, with up to WithMaxInFlight batches awaiting acks.
//
// A batch whose connection breaks before its ack arrives is sent again
// after the reconnect. With idempotence (WithIdempotence, on by default)
// the server recognises the retry of a batch it already stored and does
// not store it again; without, the topic then holds it twice (at least
// once). Within a topic, records are
// acknowledged, and stored, in the order Produce accepted them, except
// when a retry overtakes nothing but a later batch on another topic, or a
// server error other than a lost connection makes one batch retry while
// later ones succeed.
//
// A Producer is safe for concurrent use. It owns one goroutine, which
// sends batches and reconnects; Close ends it.
type Producer struct {
	c   *Client
	cfg producerConfig

	ctx    context.Context // ends the sender when Close gives up
	cancel context.CancelFunc
	done   chan struct{} // closed when the sender exits
	wake   chan struct{} // capacity 1: work for the sender

	id     uint64 // producer id of the producer records; 0 without idempotence
	prefix int    // bytes of the producer record at the start of each payload

	mu       sync.Mutex // guards every field below
	open     map[string]*batch
	ready    []*batch // sealed, not in flight, ordered by seq
	inFlight int
	buffered int           // encoded bytes accepted and not completed
	changed  chan struct{} // closed and replaced whenever a batch completes
	closing  bool          // no more Produce
	seq      uint64
	slow     bool   // backpressure seen: drain before sending more
	lastBP   uint64 // Client.Backpressure at the last look
	pool     []*batch
}

// batch is the records of one topic sent in one ingest frame.
type batch struct {
	topic      string
	seq        uint64
	buf        []byte // frame.HeaderSize bytes of room, then the TLV records
	recs       []pendingRecord
	size       int // bytes charged to the buffer budget
	deadline   time.Time
	frame      []byte // what goes on the wire; set at the first send
	sent       bool   // a frame was built, so a retry must copy it
	compressed bool   // the frame holds one envelope record
	envPos     int    // where the envelope record starts in the payload
	lastErr    error
}

type pendingRecord struct {
	cb  func(Offset, error)
	pos uint32 // position in the uncompressed payload
}

// NewProducer returns a Producer that writes through c. Closing the
// Producer does not close c.
func NewProducer(c *Client, opts ...ProducerOption) (*Producer, error) {
	cfg := producerConfig{
		batchBytes:      64 << 10,
		linger:          5 * time.Millisecond,
		maxInFlight:     8,
		maxBuffered:     32 << 20,
		deliveryTimeout: time.Minute,
		idempotent:      true,
	}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case cfg.batchBytes <= 0 || cfg.batchBytes > frame.DefaultMaxPayload-64:
		return nil, fmt.Errorf("lance: batch bytes %d out of range", cfg.batchBytes)
	case cfg.linger < 0:
		return nil, errors.New("lance: negative linger")
	case cfg.maxInFlight <= 0:
		return nil, errors.New("lance: max in flight must be positive")
	case cfg.maxBuffered < cfg.batchBytes:
		return nil, errors.New("lance: max buffered bytes below the batch size")
	case cfg.compression != compress.None && !cfg.compression.Valid():
		return nil, fmt.Errorf("lance: %w: %d", compress.ErrUnknownAlgorithm, cfg.compression)
	case cfg.deliveryTimeout <= 0:
		return nil, errors.New("lance: delivery timeout must be positive")
	case cfg.idempotent && cfg.maxInFlight > MaxIdempotentInFlight:
		return nil, fmt.Errorf("lance: max in flight %d is over %d, the limit of an idempotent producer", cfg.maxInFlight, MaxIdempotentInFlight)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Producer{
		c: c, cfg: cfg, ctx: ctx, cancel: cancel,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		open:    make(map[string]*batch),
		changed: make(chan struct{}),
	}
	if cfg.idempotent {
		p.id, p.prefix = newProducerID(), frame.ProducerRecordSize
	}
	go p.run()
	return p, nil
}

// Produce queues rec for topic and returns once the record is buffered;
// cb, which may be nil, later receives the record's offset or the error
// that ended its delivery. Produce blocks while the buffer budget
// (WithMaxBufferedBytes) is spent, until acks free room or ctx ends. When
// Produce returns an error, cb is never called.
//
// Callbacks run on the client's reader goroutine (or the goroutine that
// notices a failure), in ack order. They must be quick and must not call
// blocking methods of the Producer or its Client.
func (p *Producer) Produce(ctx context.Context, topic string, rec Record, cb func(Offset, error)) error {
	if err := checkName(topic); err != nil {
		return err
	}
	size := recordSize(&rec)
	p.mu.Lock()
	for {
		if p.closing {
			p.mu.Unlock()
			return ErrClosed
		}
		if p.buffered == 0 || p.buffered+size <= p.cfg.maxBuffered {
			break
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("lance: produce to %q: waiting for buffer space: %w", topic, ctxErr(ctx))
		}
		p.mu.Lock()
	}
	b := p.open[topic]
	if b != nil && len(b.buf)-frame.HeaderSize-p.prefix+size > p.cfg.batchBytes {
		p.sealLocked(b)
		b = nil
	}
	if b == nil {
		b = p.newBatchLocked(topic)
	}
	pos := len(b.buf) - frame.HeaderSize
	var err error
	if b.buf, err = appendRecord(b.buf, &rec); err != nil {
		if len(b.recs) == 0 {
			p.sealLocked(b) // an empty batch is dropped by the sender
		}
		p.mu.Unlock()
		return err
	}
	n := len(b.buf) - frame.HeaderSize - pos
	b.recs = append(b.recs, pendingRecord{cb: cb, pos: uint32(pos)})
	b.size += n
	p.buffered += n
	switch {
	case len(b.buf)-frame.HeaderSize-p.prefix >= p.cfg.batchBytes:
		p.sealLocked(b)
	case p.cfg.linger == 0:
		// Sent as soon as the window has room; until then it keeps
		// taking records (run seals it), so a full window makes bigger
		// batches instead of a queue of one-record ones.
		p.kick()
	}
	p.mu.Unlock()
	return nil
}

// ProduceSync produces rec and waits for its acknowledgement, returning
// the record's offset. It sends the topic's batch at once rather than
// waiting for the linger time.
func (p *Producer) ProduceSync(ctx context.Context, topic string, rec Record) (Offset, error) {
	type ack struct {
		off Offset
		err error
	}
	ch := make(chan ack, 1)
	if err := p.Produce(ctx, topic, rec, func(o Offset, err error) { ch <- ack{o, err} }); err != nil {
		return 0, err
	}
	p.mu.Lock()
	if b := p.open[topic]; b != nil {
		p.sealLocked(b)
	}
	p.mu.Unlock()
	select {
	case a := <-ch:
		return a.off, a.err
	case <-ctx.Done():
		return 0, fmt.Errorf("lance: produce to %q: %w", topic, ctxErr(ctx))
	}
}

// Flush sends every buffered record at once and waits until all of them
// are acknowledged or failed, or ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	for {
		for _, b := range p.open {
			p.sealLocked(b)
		}
		if len(p.ready) == 0 && p.inFlight == 0 {
			p.mu.Unlock()
			return nil
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-p.done:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("lance: flush: %w", ctxErr(ctx))
		}
		p.mu.Lock()
	}
}

// Close flushes, then stops the producer. When ctx ends first, records not
// yet sent fail with ErrClosed; callbacks of batches already in flight
// still run when their acks arrive or the Client closes. Produce after
// Close returns ErrClosed. The Client stays open.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.mu.Unlock()
	err := p.Flush(ctx)
	p.mu.Lock()
	p.closing = true
	var failed []*batch
	for _, b := range p.open {
		failed = append(failed, b)
	}
	clear(p.open)
	failed = append(failed, p.ready...)
	p.ready = nil
	for _, b := range failed {
		p.buffered -= b.size
	}
	p.mu.Unlock()
	p.cancel()
	<-p.done
	for _, b := range failed {
		b.complete(0, ErrClosed)
	}
	return err
}

func (p *Producer) newBatchLocked(topic string) *batch {
	var b *batch
	if n := len(p.pool); n > 0 {
		b, p.pool = p.pool[n-1], p.pool[:n-1]
	} else {
		b = &batch{buf: make([]byte, 0, frame.HeaderSize+p.cfg.batchBytes+tlv.HeaderSize+64)}
	}
	p.seq++
	b.topic, b.seq = topic, p.seq
	b.buf = b.buf[:frame.HeaderSize]
	if p.id != 0 {
		// The sequence is the batch's; a retry resends the same bytes.
		b.buf = frame.AppendProducerRecord(b.buf, p.id, b.seq)
	}
	p.open[topic] = b
	if p.cfg.linger > 0 {
		seq := b.seq
		time.AfterFunc(p.cfg.linger, func() { p.lingerDone(topic, seq) })
	}
	return b
}

func (p *Producer) lingerDone(topic string, seq uint64) {
	p.mu.Lock()
	if b := p.open[topic]; b != nil && b.seq == seq {
		p.sealLocked(b)
	}
	p.mu.Unlock()
}

// sealLocked moves an open batch to the send queue.
func (p *Producer) sealLocked(b *batch) {
	delete(p.open, b.topic)
	if len(b.recs) == 0 {
		p.recycleLocked(b)
		return
	}
	b.deadline = time.Now().Add(p.cfg.deliveryTimeout)
	p.ready = append(p.ready, b)
	p.kick()
}

// sealOldestLocked seals the open batch created first, if any.
func (p *Producer) sealOldestLocked() {
	var oldest *batch
	for _, b := range p.open {
		if oldest == nil || b.seq < oldest.seq {
			oldest = b
		}
	}
	if oldest != nil {
		p.sealLocked(oldest)
	}
}

func (p *Producer) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Producer) recycleLocked(b *batch) {
	clear(b.recs)
	b.recs, b.size, b.frame, b.sent, b.compressed, b.lastErr = b.recs[:0], 0, nil, false, false, nil
	if cap(b.buf) <= frame.HeaderSize+2*p.cfg.batchBytes && len(p.pool) < 2*p.cfg.maxInFlight+8 {
		p.pool = append(p.pool, b)
	}
}

// run is the sender goroutine: it sends ready batches while the in-flight
// window has room, reconnecting as needed, until Close.
func (p *Producer) run() {
	defer close(p.done)
	for {
		p.mu.Lock()
		for p.windowOpenLocked() {
			if len(p.ready) == 0 && p.cfg.linger == 0 {
				p.sealOldestLocked()
			}
			if len(p.ready) == 0 {
				break
			}
			b := p.ready[0]
			p.ready = p.ready[1:]
			p.inFlight++
			p.mu.Unlock()
			p.send(b)
			p.mu.Lock()
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-p.ctx.Done():
			return
		}
	}
}

// windowOpenLocked reports whether another batch may be sent. After a
// backpressure frame the producer lets its window drain to zero before it
// sends again.
func (p *Producer) windowOpenLocked() bool {
	if bp := p.c.Backpressure(); bp != p.lastBP {
		p.lastBP, p.slow = bp, true
	}
	if p.slow {
		if p.inFlight > 0 {
			return false
		}
		p.slow = false
	}
	return p.inFlight < p.cfg.maxInFlight
}

// send puts b on the wire; failures before that go through finish.
func (p *Producer) send(b *batch) {
	ctx, cancel := context.WithDeadline(p.ctx, b.deadline)
	defer cancel()
	if b.lastErr != nil && !errors.Is(b.lastErr, ErrConnectionLost) {
		// A server-side refusal (backpressure, FORWARD_FAILED): give the
		// server a moment before asking again.
		t := time.NewTimer(retryPause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			p.finish(b, nil, ctxErr(ctx))
			return
		}
	}
	id, err := p.c.resolve(ctx, b.topic)
	if err != nil {
		p.finish(b, nil, err)
		return
	}
	if err := p.encode(b, id); err != nil {
		p.finish(b, nil, err)
		return
	}
	cn, err := p.c.getConn(ctx, true)
	if err != nil {
		p.finish(b, nil, err)
		return
	}
	r := &request{frame: b.frame, handle: func(f *frame.Frame, err error) { p.finish(b, f, err) }}
	if err := cn.send(r); err != nil {
		p.finish(b, nil, err)
	}
}

// encode builds b's frame for topic id. A retry writes a fresh copy, since
// the writer may still hold the previous one.
func (p *Producer) encode(b *batch, id uint32) error {
	// The producer record, if any, stays outside the compressed envelope:
	// the server reads it.
	pre := frame.HeaderSize + p.prefix
	records := b.buf[pre:]
	flags := frame.FlagBatch
	switch {
	case b.sent:
		b.frame = slices.Clone(b.frame)
	case p.cfg.compression != compress.None:
		env := make([]byte, pre+tlv.HeaderSize, pre+tlv.HeaderSize+len(records)/2+64)
		copy(env[frame.HeaderSize:], b.buf[frame.HeaderSize:pre])
		env, err := compress.Append(env, p.cfg.compression, records)
		if err != nil {
			return fmt.Errorf("lance: compressing batch: %w", err)
		}
		env[pre] = byte(typeCompressed)
		binary.LittleEndian.PutUint32(env[pre+1:], uint32(len(env)-pre-tlv.HeaderSize))
		b.frame = env
		b.compressed, b.envPos = true, p.prefix
	default:
		b.frame = b.buf
	}
	if p.cfg.compression != compress.None {
		flags |= frame.FlagCompressed
	}
	reserved := frame.ReservedAckOffset
	if p.id != 0 {
		reserved |= frame.ReservedIdempotent
	}
	body := b.frame[frame.HeaderSize:]
	h := frame.Header{
		Flags:         flags,
		Reserved:      reserved,
		BatchID:       b.seq,
		TimestampNS:   uint64(time.Now().UnixNano()),
		RecordCount:   uint32(len(b.recs)),
		PayloadLength: uint32(len(body)),
		PayloadCRC:    dialect.Sum(body),
		TopicID:       id,
	}
	frame.PutHeader(b.frame, &h, dialect)
	b.sent = true
	return nil
}

// finish handles the outcome of one send: an ack, an error reply or a
// failure. Retryable failures go back to the queue until the batch's
// deadline.
func (p *Producer) finish(b *batch, f *frame.Frame, err error) {
	off := UnknownOffset
	if err == nil {
		switch {
		case f.Kind() == frame.KindAck && len(f.Payload) >= control.AckOffsetSize:
			off = Offset(binary.LittleEndian.Uint64(f.Payload))
		case f.Kind() == frame.KindAck:
		case f.Kind() == frame.KindControl && control.CodeFromBatchID(f.BatchID) == control.CodeErrorResponse:
			text, _ := control.DecodeError(f.Payload)
			err = serverError(text)
		default:
			err = fmt.Errorf("%w: ingest answered with %v", ErrProtocol, f.Kind())
		}
	}
	if err != nil {
		// A follower named the leader: the retry goes there.
		p.c.followRedirect(err)
	}
	p.mu.Lock()
	p.inFlight--
	if err != nil && p.retryable(b, err) {
		b.lastErr = err
		i, _ := slices.BinarySearchFunc(p.ready, b.seq, func(x *batch, s uint64) int {
			return compareU64(x.seq, s)
		})
		p.ready = slices.Insert(p.ready, i, b)
		p.kick()
		p.mu.Unlock()
		return
	}
	p.buffered -= b.size
	close(p.changed)
	p.changed = make(chan struct{})
	p.kick()
	p.mu.Unlock()

	if err != nil && b.lastErr != nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (last delivery error: %w)", err, b.lastErr)
	}
	if err != nil {
		err = fmt.Errorf("lance: produce to %q: %w", b.topic, err)
	}
	b.complete(off, err)

	p.mu.Lock()
	p.recycleLocked(b)
	p.mu.Unlock()
}

// retryable decides whether b goes back to the queue after err.
func (p *Producer) retryable(b *batch, err error) bool {
	if p.closing && p.ctx.Err() != nil {
		return false
	}
	if time.Now().After(b.deadline) {
		return false
	}
	if errors.Is(err, ErrTopicNotFound) && b.lastErr == nil {
		// The cached id may be stale (the topic was deleted and created
		// again): look the name up afresh, once.
		p.c.forgetTopic(b.topic)
		return true
	}
	return IsRetryable(err)
}

// complete runs the callbacks of b's records.
func (b *batch) complete(off Offset, err error) {
	for _, r := range b.recs {
		if r.cb == nil {
			continue
		}
		switch {
		case err != nil:
			r.cb(0, err)
		case off == UnknownOffset:
			r.cb(UnknownOffset, nil)
		case b.compressed:
			r.cb(off+Offset(b.envPos), nil)
		default:
			r.cb(off+Offset(r.pos), nil)
		}
	}
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// newProducerID returns a random non-zero producer id. Two producers that
// drew the same id would see each other's batches as retries; with 64
// random bits that takes billions of producers on one topic.
func newProducerID() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
		if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}
