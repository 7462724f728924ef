// Package server is the lance node's client side: the LWP listener, one
// reader and one writer goroutine per connection, request dispatch, acks
// after durability, fetches, backpressure, limits, and the drain on
// shutdown. Storage is package topics; access control comes in through the
// Access interface.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lance-go/lance/lance/internal/flow"
	"github.com/lance-go/lance/lance/internal/topics"
	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-network/control"
)

// Options configure a Server. Zero limits take the defaults noted.
type Options struct {
	NodeID   uint16
	Registry *topics.Registry
	Backend  backend.Backend
	// TLS, when set, wraps every client connection.
	TLS    *tls.Config
	Access Access // nil allows everything
	// Principal names the identity of a TLS client from its verified
	// certificate; nil uses "CN=<common name>" of the first certificate.
	Principal func(*tls.ConnectionState) Identity
	Logger    *slog.Logger

	MaxPayload       uint32        // default 16 MiB
	MaxConns         int           // default 10000
	ConnBuffer       int64         // in-flight ingest bytes per connection, default 64 MiB
	MemoryBudget     int64         // frame buffers of all connections, default 1 GiB
	HandshakeTimeout time.Duration // TLS handshake and first frame, default 10s
	IdleTimeout      time.Duration // between frames; default 5m, <0 never
	WriteTimeout     time.Duration // one write, default 30s
	MaxFetch         int           // bytes of one fetch reply, default control.MaxFetchData
	MaxLongPoll      time.Duration // default 30s
	// ConsumerRateLimit caps fetch bytes per second per connection; 0
	// means unlimited.
	ConsumerRateLimit int64
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Access == nil {
		o.Access = AllowAll{}
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = 16 << 20
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 10000
	}
	if o.ConnBuffer <= 0 {
		o.ConnBuffer = 64 << 20
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = 1 << 30
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.MaxFetch <= 0 || o.MaxFetch > control.MaxFetchData {
		o.MaxFetch = control.MaxFetchData
	}
	if o.MaxLongPoll <= 0 {
		o.MaxLongPoll = 30 * time.Second
	}
}

// Server serves LWP clients.
type Server struct {
	opts    Options
	reg     *topics.Registry
	log     *slog.Logger
	Metrics *Metrics
	pool    bytePool
	// memory bounds the frame buffers of all connections together: a
	// frame larger than the parser's base buffer takes its bytes from it
	// while it is being received.
	memory *flow.Budget

	// mu guards ln, conns and draining.
	mu       sync.Mutex
	ln       net.Listener
	conns    map[*conn]struct{}
	draining bool
	connWG   sync.WaitGroup
	active   atomic.Int64

	listening atomic.Bool
	started   time.Time
}

// New returns a server over opts.Registry.
func New(opts Options) (*Server, error) {
	if opts.Registry == nil || opts.Backend == nil {
		return nil, errors.New("server: Registry and Backend are required")
	}
	opts.setDefaults()
	s := &Server{
		opts:    opts,
		reg:     opts.Registry,
		log:     opts.Logger,
		conns:   map[*conn]struct{}{},
		memory:  flow.NewBudget(opts.MemoryBudget),
		started: time.Now(),
	}
	s.Metrics = newMetrics(s)
	return s, nil
}

func (s *Server) principalOf(st *tls.ConnectionState) Identity {
	if s.opts.Principal != nil {
		return s.opts.Principal(st)
	}
	if len(st.PeerCertificates) > 0 {
		return Identity{Principal: "CN=" + st.PeerCertificates[0].Subject.CommonName}
	}
	return Identity{}
}

// Ready returns nil when the node takes writes: listening, not draining,
// storage healthy.
func (s *Server) Ready() error {
	if err := s.reg.Failed(); err != nil {
		return fmt.Errorf("storage failed: %w", err)
	}
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		return errors.New("draining")
	}
	if !s.listening.Load() {
		return errors.New("client listener not up")
	}
	return nil
}

// Serve accepts connections on ln until Shutdown; it returns nil after a
// Shutdown, or the accept error that stopped it.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	s.listening.Store(true)
	defer s.listening.Store(false)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			draining := s.draining
			s.mu.Unlock()
			if draining {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors or a transient error: wait, so
				// that the accept loop does not spin.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("server: accept: %w", err)
		}
		backoff = 0
		s.Metrics.connsTotal.Inc()
		if s.active.Load() >= int64(s.opts.MaxConns) {
			s.Metrics.connsRejected.Inc()
			s.log.Warn("connection refused: max_connections reached", "remote", nc.RemoteAddr(), "max", s.opts.MaxConns)
			nc.Close()
			continue
		}
		s.startConn(nc)
	}
}

func (s *Server) startConn(nc net.Conn) {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		nc.Close()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.active.Add(1)
	s.mu.Unlock()
	go c.serve()
}

func (s *Server) connDone(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.active.Add(-1)
	s.connWG.Done()
}

// Shutdown drains: it stops accepting, stops reading every connection,
// lets each one write the acks of what it already received (so that every
// batch read is either acked or refused), and closes them. It returns
// ctx's error if the drain did not finish in time, after closing what was
// left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.abort()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// ActiveConns returns the number of open client connections.
func (s *Server) ActiveConns() int64 { return s.active.Load() }
