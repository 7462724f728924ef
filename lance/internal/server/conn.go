package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lance-go/lance/lance/internal/flow"
	"github.com/lance-go/lance/lance/internal/topics"
	"github.com/lance-go/lance/lnc-network/frame"
)

// A connection has two goroutines, both owned by it:
//
//   - the reader (serve) parses frames and dispatches them in order. Each
//     request puts exactly one item on the out queue: bytes ready to send,
//     an ingest whose ack waits for durability, or a fetch to run.
//   - the writer (writeLoop) takes the items in order, waits where an item
//     must wait, and writes replies, gathering consecutive ready replies
//     into one write.
//
// Replies therefore leave in request order, one per request (keepalive,
// control and ingest alike); client-sent acks, backpressure and unknown
// frames get none. The reader closes the queue when it stops; the writer
// drains it, then the connection is closed.

type itemKind uint8

const (
	itemBytes   itemKind = iota // buf holds a complete reply
	itemAck                     // wait for ing, then ack or refuse
	itemFetch                   // run a classic fetch
	itemBatches                 // run a whole-batch fetch (may wait)
)

type outItem struct {
	kind itemKind
	buf  *[]byte

	// itemAck
	ing      *topics.Ingest
	payload  *[]byte
	batchID  uint64
	ackOff   bool
	received time.Time

	// itemFetch, itemBatches
	topic *topics.Topic
	off   uint64
	max   uint32
	wait  time.Duration
	keyed bool // itemBatches: reply with a batch directory
}

// outQueueLen bounds the replies a connection may owe; a client that does
// not read its replies stops being read once this many are queued.
const outQueueLen = 4096

// readChunk is the parser's base buffer: what an idle connection costs.
const readChunk = 16 << 10

type conn struct {
	s   *Server
	nc  net.Conn
	raw *net.TCPConn // nil with TLS: no sendfile
	p   *frame.Parser
	log *slog.Logger

	out        chan outItem
	writerDone chan struct{}
	budget     *flow.Budget
	// ctx ends when the connection is aborted (forced shutdown, write
	// failure): it unblocks a reader waiting for budget or queue space.
	ctx    context.Context
	cancel context.CancelFunc

	stop     chan struct{} // closed by stopReading
	stopOnce sync.Once

	id       Identity
	authOK   bool          // id may do something without a token (checked until true)
	d        atomic.Uint32 // checksum.Dialect of the connection, once known
	inflight atomic.Int32  // ingests whose ack is not yet written
	bpSent   bool          // a backpressure frame went out in this stall
	memHeld  int64         // bytes of s.memory held for a large frame

	scratch []byte
	ings    chan *topics.Ingest // free list shared by reader and writer

	// Writer state, owned by the writer goroutine.
	wbuf    []byte
	dead    bool // a write failed: drain without writing
	checked verified
	vbuf    []byte // verifyRange's buffer for cut batches
	dir     []byte // runBatches' directory of a keyed reply
	rate    rateLimiter
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		s: s, nc: nc, log: s.log.With("remote", nc.RemoteAddr().String()),
		out:        make(chan outItem, outQueueLen),
		writerDone: make(chan struct{}),
		budget:     flow.NewBudget(s.opts.ConnBuffer),
		ctx:        ctx, cancel: cancel,
		stop: make(chan struct{}),
		ings: make(chan *topics.Ingest, 256),
		rate: rateLimiter{perSec: s.opts.ConsumerRateLimit},
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		c.raw = tc
	}
	return c
}

// stopReading makes the reader stop after the frame it is on; the writer
// then finishes what was read. Safe from any goroutine, more than once.
func (c *conn) stopReading() {
	c.stopOnce.Do(func() {
		close(c.stop)
		// Wake a reader blocked in Read.
		c.nc.SetReadDeadline(time.Now())
	})
}

// abort ends the connection now: waits are cancelled, pending acks are
// not written.
func (c *conn) abort() {
	c.stopReading()
	c.cancel()
	c.nc.Close()
}

func (c *conn) serve() {
	defer c.s.connDone(c)
	defer c.cancel()
	if c.raw != nil {
		c.raw.SetNoDelay(true)
	}
	if cfg := c.s.opts.TLS; cfg != nil {
		tc := tls.Server(c.nc, cfg)
		tc.SetDeadline(time.Now().Add(c.s.opts.HandshakeTimeout))
		if err := tc.HandshakeContext(c.ctx); err != nil {
			c.log.Debug("TLS handshake failed", "err", err)
			c.s.Metrics.errAuth.Inc()
			c.nc.Close()
			return
		}
		tc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		c.id = c.s.principalOf(&st)
		c.nc, c.raw = tc, nil
	}
	c.p = frame.NewParser(frame.Config{MaxPayload: c.s.opts.MaxPayload, BufferSize: readChunk})
	go c.writeLoop()
	c.readLoop()
	close(c.out)
	<-c.writerDone
	c.nc.Close()
	if c.memHeld > 0 {
		c.s.memory.Release(c.memHeld)
	}
}

// readLoop reads and dispatches frames until EOF, an error, a protocol
// violation (the connection is then closed without a reply, as LWP says),
// an idle timeout or stopReading.
func (c *conn) readLoop() {
	authBy := time.Now().Add(c.s.opts.HandshakeTimeout)
	c.nc.SetReadDeadline(authBy)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		if !c.reserveFrameMemory() {
			return
		}
		n, rerr := c.p.Fill(c.nc)
		framed := false
		for {
			f, ok, err := c.p.Next()
			if err != nil {
				c.protocolError(err)
				return
			}
			if !ok {
				break
			}
			framed = true
			if c.d.Load() == 0 {
				c.d.Store(uint32(c.p.Dialect()))
			}
			if !c.dispatch(&f) {
				return
			}
		}
		if framed {
			c.releaseFrameMemory()
			var deadline time.Time
			if idle := c.s.opts.IdleTimeout; idle > 0 {
				deadline = time.Now().Add(idle)
			}
			if !c.authOK {
				// A connection that may do nothing until it presents a
				// token has the handshake deadline to do so.
				if c.needsToken() {
					if time.Now().After(authBy) {
						c.s.Metrics.errAuth.Inc()
						c.log.Info("closing a connection that did not authenticate in time")
						return
					}
					if deadline.IsZero() || deadline.After(authBy) {
						deadline = authBy
					}
				} else {
					c.authOK = true
				}
			}
			c.nc.SetReadDeadline(deadline)
		}
		if rerr != nil {
			c.readEnded(rerr, n)
			return
		}
	}
}

// reserveFrameMemory charges a frame larger than the base buffer to the
// server-wide memory budget before the reads that receive it, waiting
// (without reading) while the budget is spent.
func (c *conn) reserveFrameMemory() bool {
	need := int64(c.p.HeadFrameSize() - c.p.ChunkSize())
	if err := c.p.Err(); err != nil {
		c.protocolError(err)
		return false
	}
	if need <= c.memHeld {
		return true
	}
	if err := c.s.memory.Acquire(c.ctx, need-c.memHeld); err != nil {
		return false
	}
	c.memHeld = need
	return true
}

func (c *conn) releaseFrameMemory() {
	if c.memHeld > 0 && c.p.HeadFrameSize() <= c.p.ChunkSize() {
		c.s.memory.Release(c.memHeld)
		c.memHeld = 0
	}
}

func (c *conn) readEnded(err error, n int) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		if c.p.Buffered() > 0 {
			c.log.Debug("connection closed inside a frame", "buffered", c.p.Buffered())
		}
	case errors.As(err, &ne) && ne.Timeout():
		select {
		case <-c.stop:
		default:
			c.s.Metrics.errTimeout.Inc()
			c.log.Debug("closing an idle connection", "buffered", c.p.Buffered())
		}
	case errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed):
	default:
		c.log.Debug("read failed", "err", err)
	}
}

func (c *conn) protocolError(err error) {
	c.s.Metrics.errProtocol.Inc()
	c.log.Info("protocol error: closing the connection", "err", err)
}

// push queues an item for the writer. It blocks while the queue is full
// (the client is not reading its replies), and gives up when the
// connection is aborted.
func (c *conn) push(it outItem) bool {
	select {
	case c.out <- it:
		return true
	default:
	}
	select {
	case c.out <- it:
		return true
	case <-c.ctx.Done():
		c.releaseItem(&it)
		return false
	}
}

// reply queues a ready reply built by build into a pooled buffer.
func (c *conn) reply(build func([]byte) []byte) bool {
	b := c.s.pool.get(0)
	*b = build(*b)
	return c.push(outItem{kind: itemBytes, buf: b})
}

func (c *conn) getIngest() *topics.Ingest {
	select {
	case in := <-c.ings:
		return in
	default:
		return topics.NewIngest()
	}
}

func (c *conn) putIngest(in *topics.Ingest) {
	in.Reset()
	select {
	case c.ings <- in:
	default:
	}
}

// releaseItem gives back what an item holds without sending it.
func (c *conn) releaseItem(it *outItem) {
	c.s.pool.put(it.buf)
	it.buf = nil
	if it.kind == itemAck {
		if it.ing != nil {
			<-it.ing.Done()
			c.putIngest(it.ing)
		}
		if it.payload != nil {
			c.budget.Release(int64(len(*it.payload)))
			c.s.pool.put(it.payload)
		}
		c.inflight.Add(-1)
	}
}

// needsToken reports whether the connection can do nothing at all until
// it authenticates (token auth on, without write_only).
func (c *conn) needsToken() bool {
	acc := c.s.opts.Access
	return acc.CheckAuth(c.id, OpConsume) != nil && acc.CheckAuth(c.id, OpProduce) != nil
}
