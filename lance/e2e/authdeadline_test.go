package e2e

import (
	"testing"
	"time"
)

// TestAuthDeadline: with token auth for every request, a connection that
// keeps talking (keepalives, which need no token) but never authenticates
// is closed once the handshake deadline has passed; one that
// authenticates in time stays open.
func TestAuthDeadline(t *testing.T) {
	s := startServer(t, "--auth-enabled", "--auth-tokens", "ops:s3cret", "--limits-handshake-timeout", "1s")
	lazy := s.dialT(t, ieee)
	good := s.dialT(t, ieee)
	reply := good.control(0x08, []byte("s3cret"))
	if len(reply.Payload) == 0 || reply.Payload[0] != 1 {
		t.Fatalf("authenticate: %s", reply.describe())
	}
	// Keep both connections busy past the deadline.
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		if err := lazy.sendErr(keepaliveFrame(ieee)); err != nil {
			break
		}
		if _, err := lazy.next(); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	lazy.expectClosed("unauthenticated connection after the deadline")
	if f := good.call(keepaliveFrame(ieee)); f.Flags&flagKeepalive == 0 {
		t.Fatalf("authenticated connection: %s", f.describe())
	}
}
