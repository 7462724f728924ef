package lance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Dialer opens the network connection to a server. *net.Dialer satisfies
// it; tests and proxies may supply their own.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// config is a Client's settings. It is immutable after Dial, so a Consumer
// can copy it to open a connection of its own.
type config struct {
	tls            *tls.Config
	token          string
	dialer         Dialer
	dialTimeout    time.Duration
	requestTimeout time.Duration
	logger         *slog.Logger
	backoffMin     time.Duration
	backoffMax     time.Duration
}

func defaultConfig() config {
	return config{
		dialTimeout:    10 * time.Second,
		requestTimeout: 30 * time.Second,
		backoffMin:     50 * time.Millisecond,
		backoffMax:     5 * time.Second,
	}
}

func (c *config) validate() error {
	if c.dialTimeout <= 0 {
		return errors.New("lance: dial timeout must be positive")
	}
	if c.requestTimeout <= 0 {
		return errors.New("lance: request timeout must be positive")
	}
	if c.backoffMin <= 0 || c.backoffMax < c.backoffMin {
		return fmt.Errorf("lance: bad reconnect backoff %v..%v", c.backoffMin, c.backoffMax)
	}
	if c.dialer == nil {
		c.dialer = &net.Dialer{KeepAlive: 30 * time.Second}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Option configures a Client; pass options to Dial.
type Option func(*config)

// WithTLS makes the client speak TLS with cfg. When cfg.ServerName is
// empty, the host part of the address given to Dial is used. Without this
// option the connection is plain TCP.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithToken makes the client authenticate with token (the Authenticate
// command) on every connection it opens: after the first dial and after
// every reconnect, before any other request. A refused token makes Dial
// fail with an error matching ErrUnauthenticated.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithDialer sets how connections are opened. The default is a
// *net.Dialer with 30 s TCP keep-alives.
func WithDialer(d Dialer) Option { return func(c *config) { c.dialer = d } }

// WithDialTimeout bounds one connection attempt: TCP connect, TLS
// handshake and authentication. Default 10 s. The caller's context may
// end an attempt sooner.
func WithDialTimeout(d time.Duration) Option { return func(c *config) { c.dialTimeout = d } }

// WithRequestTimeout bounds how long a request waits for its reply once
// it is queued, default 30 s; a long-poll fetch adds its wait to it. The
// caller's context may end the wait sooner. A request that times out fails
// with ErrTimeout; its reply, if one comes later, is dropped.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) { c.requestTimeout = d }
}

// WithLogger sets the logger for connection events (connects, reconnects,
// dropped connections). The default discards everything.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithReconnectBackoff sets the delays between reconnection attempts: the
// first wait is min, each later one doubles, up to max. Defaults 50 ms and
// 5 s. Reconnecting always stops when the caller's context ends.
func WithReconnectBackoff(min, max time.Duration) Option {
	return func(c *config) { c.backoffMin, c.backoffMax = min, max }
}
