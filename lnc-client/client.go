package lance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

// dialect is the checksum dialect the client writes, the Rust client's.
const dialect = checksum.IEEE

// Client is a connection to one LANCE server. It is safe for concurrent
// use: requests from many goroutines are pipelined on one connection and
// their replies matched by order, which the server keeps (docs/LWP.md §8).
//
// A Client owns two goroutines per connection, a writer and a reader, and
// ends them in Close. When the connection breaks, requests queued or in
// flight on it fail with an error matching ErrConnectionLost (retryable);
// the next request dials again, waiting between attempts with exponential
// backoff for as long as its context allows, and authenticates again when
// WithToken is set.
//
// Long-poll fetches hold back every reply queued behind them, so a
// Consumer opens a connection of its own (see NewConsumer) rather than
// sharing this one.
type Client struct {
	addr string // given to Dial
	cfg  config
	log  *slog.Logger

	closed    chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // the reader and writer goroutines of every connection

	connMu  sync.Mutex // guards target, cur, dialing, live and isClosed
	target  string     // where connections go: addr, or the leader a redirect named
	cur     *conn
	dialing chan struct{}      // non-nil while one caller dials; closed when it is done
	live    map[*conn]struct{} // connections whose goroutines may still run
	// isClosed mirrors closed under connMu, so that a dial finishing
	// after Close never starts goroutines.
	isClosed bool

	backpressure atomic.Uint64 // backpressure frames received
	reconnects   atomic.Uint64 // successful dials after the first

	topicMu sync.Mutex // guards topics
	topics  map[string]uint32
}

// Dial connects to the LANCE server at addr (host:port) and, with
// WithToken, authenticates. It makes one attempt, bounded by ctx and the
// dial timeout; reconnections later back off and retry.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := newClient(addr, cfg)
	if _, err := c.getConn(ctx, false); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func newClient(addr string, cfg config) *Client {
	return &Client{
		addr:   addr,
		target: addr,
		cfg:    cfg,
		log:    cfg.logger.With("server", addr),
		closed: make(chan struct{}),
		live:   make(map[*conn]struct{}),
		topics: make(map[string]uint32),
	}
}

// Close closes the connection and ends the client's goroutines. Requests
// still waiting fail with ErrClosed. Close is idempotent and always
// returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.connMu.Lock()
		c.isClosed = true
		close(c.closed)
		conns := make([]*conn, 0, len(c.live))
		for cn := range c.live {
			conns = append(conns, cn)
		}
		c.connMu.Unlock()
		for _, cn := range conns {
			cn.kill(ErrClosed)
		}
		c.wg.Wait()
	})
	return nil
}

// Addr returns the address of the server the client talks to: the one
// given to Dial, or the leader a NOT_LEADER reply redirected it to.
func (c *Client) Addr() string {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	return c.target
}

// maxRedirects bounds the NOT_LEADER redirects one request follows, so
// that nodes that name each other cannot keep a caller going round.
const maxRedirects = 3

// redirect points the client at leader, after a NOT_LEADER reply that
// named it, and closes the connection to the follower: requests still in
// flight there fail with ErrConnectionLost and are retried by their
// owners on the leader.
func (c *Client) redirect(leader string) {
	c.connMu.Lock()
	old := c.target
	c.target = leader
	cur := c.cur
	c.connMu.Unlock()
	if old != leader {
		c.log.Info("lance: following NOT_LEADER redirect", "from", old, "leader", leader)
	}
	if cur != nil && cur.addr != leader {
		cur.kill(fmt.Errorf("%w: redirected to the leader %s", ErrConnectionLost, leader))
	}
}

// followRedirect handles an error reply: it redirects the client when err
// is a NOT_LEADER naming a leader, and reports whether it did.
func (c *Client) followRedirect(err error) bool {
	var nl *NotLeaderError
	if !errors.As(err, &nl) || nl.Leader == "" {
		return false
	}
	c.redirect(nl.Leader)
	return true
}

// Backpressure returns how many backpressure frames the server has sent
// on this client's connections: each one says the server stopped reading
// for a while because too many of the client's writes were waiting.
func (c *Client) Backpressure() uint64 { return c.backpressure.Load() }

// Reconnects returns how many times the client dialed again after losing
// its connection.
func (c *Client) Reconnects() uint64 { return c.reconnects.Load() }

// getConn returns the live connection, dialing one when there is none.
// With retry, failed attempts are repeated with backoff until ctx ends;
// without, one attempt is made.
func (c *Client) getConn(ctx context.Context, retry bool) (*conn, error) {
	for {
		c.connMu.Lock()
		if c.isClosed {
			c.connMu.Unlock()
			return nil, ErrClosed
		}
		if cn := c.cur; cn != nil && cn.alive() {
			c.connMu.Unlock()
			return cn, nil
		}
		if ch := c.dialing; ch != nil {
			c.connMu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctxErr(ctx)
			case <-c.closed:
				return nil, ErrClosed
			}
		}
		ch := make(chan struct{})
		c.dialing = ch
		again := c.cur != nil
		c.connMu.Unlock()

		cn, err := c.connectLoop(ctx, retry)

		c.connMu.Lock()
		c.dialing = nil
		if err == nil {
			c.cur = cn
			if again {
				c.reconnects.Add(1)
			}
		}
		close(ch)
		c.connMu.Unlock()
		if err != nil {
			return nil, err
		}
		if again {
			c.log.Info("lance: reconnected")
		}
		return cn, nil
	}
}

// connectLoop dials until it succeeds, ctx ends, the client closes or an
// attempt fails in a way retrying cannot fix (a refused token).
func (c *Client) connectLoop(ctx context.Context, retry bool) (*conn, error) {
	delay := c.cfg.backoffMin
	for {
		cn, err := c.connect(ctx)
		if err == nil || !retry || errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrClosed) {
			return cn, err
		}
		c.log.Debug("lance: connect failed", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("lance: reconnecting: %w (last attempt: %w)", ctxErr(ctx), err)
		case <-c.closed:
			t.Stop()
			return nil, ErrClosed
		}
		delay = min(2*delay, c.cfg.backoffMax)
	}
}

// connect makes one attempt: dial, TLS handshake, goroutines, and the
// Authenticate exchange when a token is configured.
func (c *Client) connect(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.dialTimeout)
	defer cancel()
	c.connMu.Lock()
	addr := c.target
	c.connMu.Unlock()
	nc, err := c.cfg.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("lance: dial %s: %w", addr, ctxErr(ctx))
		}
		return nil, fmt.Errorf("lance: dial %s: %w: %w", addr, ErrConnectionLost, err)
	}
	if c.cfg.tls != nil {
		tc := c.cfg.tls
		if tc.ServerName == "" {
			tc = tc.Clone()
			if host, _, err := net.SplitHostPort(addr); err == nil {
				tc.ServerName = host
			}
		}
		tconn := tls.Client(nc, tc)
		if err := tconn.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("lance: TLS handshake with %s: %w", addr, err)
		}
		nc = tconn
	}
	cn := &conn{cl: c, nc: nc, addr: addr, wake: make(chan struct{}, 1), dead: make(chan struct{})}
	c.connMu.Lock()
	if c.isClosed {
		c.connMu.Unlock()
		nc.Close()
		return nil, ErrClosed
	}
	c.live[cn] = struct{}{}
	c.wg.Add(2)
	c.connMu.Unlock()
	go cn.writeLoop()
	go cn.readLoop()

	if c.cfg.token != "" {
		rep, err := c.exchange(ctx, cn, control.CodeAuthenticate, control.Authenticate{Token: c.cfg.token}.AppendTo(nil), nil)
		if err == nil {
			err = authResult(rep)
		}
		if err != nil {
			cn.kill(fmt.Errorf("%w: authentication failed", ErrConnectionLost))
			return nil, err
		}
	}
	c.log.Debug("lance: connected", "local", nc.LocalAddr().String())
	return cn, nil
}

func authResult(rep reply) error {
	if rep.code != control.CodeAuthenticateResponse {
		return unexpected("Authenticate", rep)
	}
	ar, err := control.DecodeAuthenticateResponse(rep.payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if !ar.Success {
		return fmt.Errorf("lance: token refused (%q): %w", ar.Message, ErrUnauthenticated)
	}
	return nil
}

// forget unregisters a dead connection once its goroutines are gone.
func (c *Client) forget(cn *conn) {
	c.connMu.Lock()
	delete(c.live, cn)
	c.connMu.Unlock()
}

// reply is a copied control reply (or ack) handed back to a caller.
type reply struct {
	kind    frame.Kind
	code    control.Code
	batchID uint64
	payload []byte
}

// err returns the ErrorResponse a reply carries, or nil.
func (r reply) err() error {
	if r.kind == frame.KindControl && r.code == control.CodeErrorResponse {
		text, _ := control.DecodeError(r.payload)
		return serverError(text)
	}
	return nil
}

func unexpected(what string, r reply) error {
	if err := r.err(); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s answered with %v code %#x", ErrProtocol, what, r.kind, uint8(r.code))
}

type result struct {
	rep reply
	err error
}

// replyBuf is a buffer a caller lends to exchange for the reply's payload,
// so that a consumer reusing it does not allocate a fresh buffer per fetch.
// The reader goroutine writes it when the reply arrives: a caller that gave
// up waiting (an error from exchange) must not use that replyBuf again.
type replyBuf struct{ b []byte }

// exchange sends one control request on cn and waits for its reply,
// bounded by ctx. The reply's payload is a copy: in into's buffer when
// into is not nil, in a new slice otherwise.
func (c *Client) exchange(ctx context.Context, cn *conn, code control.Code, payload []byte, into *replyBuf) (reply, error) {
	ch := make(chan result, 1)
	r := &request{
		frame: frame.AppendControl(nil, dialect, uint8(code), payload),
		handle: func(f *frame.Frame, err error) {
			if err != nil {
				ch <- result{err: err}
				return
			}
			var p []byte
			if into != nil {
				into.b = append(into.b[:0], f.Payload...)
				p = into.b
			} else {
				p = append([]byte(nil), f.Payload...)
			}
			ch <- result{rep: reply{
				kind:    f.Kind(),
				code:    control.CodeFromBatchID(f.BatchID),
				batchID: f.BatchID,
				payload: p,
			}}
		},
	}
	if err := cn.send(r); err != nil {
		return reply{}, err
	}
	select {
	case res := <-ch:
		return res.rep, res.err
	case <-ctx.Done():
		return reply{}, ctxErr(ctx)
	case <-c.closed:
		return reply{}, ErrClosed
	}
}

// call sends a control request and returns its reply. It reconnects when
// needed. With idempotent, a request lost with a broken connection is sent
// again, on a new connection, until ctx ends; otherwise the
// ErrConnectionLost is returned, since the server may have acted on it.
// A NOT_LEADER reply naming the leader sends the request there (at most
// maxRedirects times; a follower refuses before acting); an idempotent
// request answered FORWARD_FAILED is asked again after a pause.
// extraWait lengthens the request timeout (for long polls).
func (c *Client) call(ctx context.Context, code control.Code, payload []byte, idempotent bool, extraWait time.Duration) (reply, error) {
	return c.callInto(ctx, code, payload, idempotent, extraWait, nil)
}

// callInto is call with the reply's payload copied into into (see
// exchange); after an error the caller must drop into.
func (c *Client) callInto(ctx context.Context, code control.Code, payload []byte, idempotent bool, extraWait time.Duration, into *replyBuf) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.requestTimeout+extraWait)
	defer cancel()
	redirects := 0
	for {
		cn, err := c.getConn(ctx, true)
		if err != nil {
			return reply{}, err
		}
		rep, err := c.exchange(ctx, cn, code, payload, into)
		if err != nil {
			if !idempotent || !errors.Is(err, ErrConnectionLost) {
				return rep, err
			}
			c.log.Debug("lance: retrying request after a lost connection", "code", code.String(), "err", err)
			continue
		}
		switch rerr := rep.err(); {
		case rerr == nil:
			return rep, nil
		case redirects < maxRedirects && c.followRedirect(rerr):
			redirects++
		case idempotent && errors.Is(rerr, ErrForwardFailed):
			c.log.Debug("lance: retrying after FORWARD_FAILED", "code", code.String(), "err", rerr)
			if err := pauseFor(ctx, c.closed, retryPause); err != nil {
				return reply{}, fmt.Errorf("%w (last reply: %w)", err, rerr)
			}
		default:
			return rep, nil
		}
	}
}

// pauseFor waits for d, or until ctx ends or closed is closed.
func pauseFor(ctx context.Context, closed <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-closed:
		return ErrClosed
	}
}

// request is one frame on its way to the server and the function that
// receives its reply.
type request struct {
	frame []byte
	// handle receives the reply frame, whose payload aliases the parser's
	// buffer and must be copied to be kept, or the error that ended the
	// request. It is called exactly once, from the reader goroutine or
	// from whichever goroutine kills the connection, and must not block.
	handle func(f *frame.Frame, err error)
}

// conn is one network connection and its two goroutines.
type conn struct {
	cl   *Client
	nc   net.Conn
	addr string        // the address dialed
	wake chan struct{} // capacity 1: the queue has work for the writer
	dead chan struct{} // closed by kill

	mu      sync.Mutex // guards queue, pending and err
	queue   []*request // accepted, not yet taken by the writer
	pending []*request // handed to the writer, awaiting replies in send order
	err     error      // why the connection ended; nil while alive
}

func (cn *conn) alive() bool {
	select {
	case <-cn.dead:
		return false
	default:
		return true
	}
}

// send queues r for the writer. It never blocks. It fails only when the
// connection is already dead, and then r.handle is not called.
func (cn *conn) send(r *request) error {
	cn.mu.Lock()
	if cn.err != nil {
		err := cn.err
		cn.mu.Unlock()
		return err
	}
	cn.queue = append(cn.queue, r)
	cn.mu.Unlock()
	select {
	case cn.wake <- struct{}{}:
	default:
	}
	return nil
}

// kill ends the connection once: it records err, closes the socket (which
// ends both goroutines) and fails every request queued or in flight.
func (cn *conn) kill(err error) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.err = err
	pending, queue := cn.pending, cn.queue
	cn.pending, cn.queue = nil, nil
	cn.mu.Unlock()
	close(cn.dead)
	cn.nc.Close()
	if !errors.Is(err, ErrClosed) {
		cn.cl.log.Warn("lance: connection lost", "err", err, "in_flight", len(pending)+len(queue))
	}
	for _, r := range pending {
		r.handle(nil, err)
	}
	for _, r := range queue {
		r.handle(nil, err)
	}
}

// writeLoop writes queued frames, many per system call, until the
// connection dies.
func (cn *conn) writeLoop() {
	defer cn.cl.wg.Done()
	var bufs net.Buffers
	for {
		select {
		case <-cn.wake:
		case <-cn.dead:
			return
		}
		cn.mu.Lock()
		if cn.err != nil {
			cn.mu.Unlock()
			return
		}
		batch := cn.queue
		cn.queue = nil
		// Replies can only follow writes, so a request joins pending
		// before its bytes leave; the FIFO then matches the wire order.
		cn.pending = append(cn.pending, batch...)
		cn.mu.Unlock()
		bufs = bufs[:0]
		for _, r := range batch {
			bufs = append(bufs, r.frame)
		}
		out := bufs
		if _, err := out.WriteTo(cn.nc); err != nil {
			cn.kill(fmt.Errorf("%w: write: %w", ErrConnectionLost, err))
			return
		}
		clear(bufs)
	}
}

// readLoop parses replies and hands each to the oldest pending request.
func (cn *conn) readLoop() {
	defer cn.cl.wg.Done()
	defer cn.cl.forget(cn)
	// Fetch replies of up to a few MiB arrive back to back on a consumer's
	// connection: keep the buffer grown for them instead of allocating it
	// again for every reply.
	p := frame.NewParser(frame.Config{Dialect: dialect, BufferSize: 256 << 10, Retain: 8 << 20})
	for {
		_, rerr := p.Fill(cn.nc)
		for {
			f, ok, err := p.Next()
			if err != nil {
				cn.kill(fmt.Errorf("%w: %w", ErrProtocol, err))
				return
			}
			if !ok {
				break
			}
			if err := cn.dispatch(&f); err != nil {
				cn.kill(err)
				return
			}
		}
		if rerr != nil {
			cn.kill(fmt.Errorf("%w: read: %w", ErrConnectionLost, rerr))
			return
		}
	}
}

func (cn *conn) dispatch(f *frame.Frame) error {
	switch f.Kind() {
	case frame.KindBackpressure:
		// A signal, not a reply: it matches no request.
		cn.cl.backpressure.Add(1)
		return nil
	case frame.KindAck, frame.KindControl:
	default:
		// Keepalives answer keepalives, which this client never sends;
		// unknown frames are ignored, as the protocol says.
		return nil
	}
	cn.mu.Lock()
	if len(cn.pending) == 0 {
		cn.mu.Unlock()
		return fmt.Errorf("%w: reply (%v) with no request waiting", ErrProtocol, f.Kind())
	}
	r := cn.pending[0]
	cn.pending[0] = nil
	cn.pending = cn.pending[1:]
	cn.mu.Unlock()
	r.handle(f, nil)
	return nil
}
