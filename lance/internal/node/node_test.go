package node

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/lance-go/lance/lance/internal/config"
	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

func testConfig(t *testing.T) config.Config {
	var c config.Config
	c.Node.DataDir = t.TempDir()
	c.Network.Bind = "127.0.0.1:0"
	c.HTTP.Bind = "127.0.0.1:0"
	c.IO.BatchSize = 4 << 20
	c.IO.SegmentSize = 1 << 30
	c.IO.Prealloc = 64 << 20
	c.Limits.MaxFrame = 16 << 20
	c.Limits.MaxConnections = 100
	c.Limits.ConnBufferBytes = 64 << 20
	c.Limits.TopicQueueBytes = 256 << 20
	c.Limits.HandshakeTimeout = 10 * time.Second
	c.Limits.IdleTimeout = time.Minute
	c.Limits.WriteTimeout = 10 * time.Second
	c.Limits.MaxFetchBytes = control.MaxFetchData
	c.Limits.MaxLongPoll = 10 * time.Second
	c.Retention.CheckInterval = time.Minute
	return c
}

type client struct {
	t  *testing.T
	nc net.Conn
	p  *frame.Parser
}

func dial(t *testing.T, addr string) *client {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, p: frame.NewParser(frame.Config{Dialect: checksum.IEEE})}
}

func (c *client) send(b []byte) {
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) next() frame.Frame {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, ok, err := c.p.Next()
		if err != nil {
			c.t.Fatal(err)
		}
		if ok {
			f.Payload = bytes.Clone(f.Payload)
			return f
		}
		if _, err := c.p.Fill(c.nc); err != nil && err != io.EOF {
			c.t.Fatal(err)
		}
	}
}

func TestSmoke(t *testing.T) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := Start(testConfig(t), log)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(5 * time.Second)
	c := dial(t, n.Addr().String())
	d := checksum.IEEE
	c.send(frame.AppendControl(nil, d, uint8(control.CodeCreateTopic), []byte("events")))
	f := c.next()
	tp, err := control.DecodeTopic(f.Payload)
	if err != nil || tp.Name != "events" || tp.ID != 1 {
		t.Fatalf("create: %v %+v %q", err, tp, f.Payload)
	}
	var stream []byte
	for i := range 100 {
		stream = frame.AppendIngest(stream, d, uint64(i+1), 1, 1, tp.ID, []byte("hello world"))
	}
	c.send(stream)
	for i := range 100 {
		f := c.next()
		if f.Kind() != frame.KindAck || f.BatchID != uint64(i+1) {
			t.Fatalf("ack %d: %+v %q", i, f.Header, f.Payload)
		}
	}
	c.send(frame.AppendControl(nil, d, uint8(control.CodeFetch), control.Fetch{TopicID: tp.ID, MaxBytes: 1 << 20}.AppendTo(nil)))
	f = c.next()
	fr, err := control.DecodeFetchResponse(f.Payload)
	if err != nil || len(fr.Data) != 1100 || fr.NextOffset != 1100 {
		t.Fatalf("fetch: %v next %d len %d", err, fr.NextOffset, len(fr.Data))
	}
}
