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

func testConfig(t testing.TB) config.Config {
	c := config.Default()
	c.Node.DataDir = t.TempDir()
	c.Network.Bind = "127.0.0.1:0"
	c.HTTP.Bind = "127.0.0.1:0"
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

// TestZeroCopyFetch checks the sendfile path: large batches, a range cut
// inside batches at both ends, in both dialects; the client's parser
// checks the payload CRC the server computed from the index.
func TestZeroCopyFetch(t *testing.T) {
	n, err := Start(testConfig(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(5 * time.Second)
	for _, d := range []checksum.Dialect{checksum.IEEE, checksum.Castagnoli} {
		c := dial(t, n.Addr().String())
		c.p = frame.NewParser(frame.Config{Dialect: d})
		name := "zc-" + d.String()
		c.send(frame.AppendControl(nil, d, uint8(control.CodeCreateTopic), []byte(name)))
		tp, err := control.DecodeTopic(c.next().Payload)
		if err != nil {
			t.Fatal(err)
		}
		var log []byte
		var stream []byte
		for i := range 12 {
			b := bytes.Repeat([]byte{byte(i)}, 32<<10+i*100)
			for j := range b {
				b[j] ^= byte(j * 7)
			}
			log = append(log, b...)
			stream = frame.AppendIngest(stream, d, uint64(i+1), 1, 1, tp.ID, b)
		}
		c.send(stream)
		for range 12 {
			if f := c.next(); f.Kind() != frame.KindAck {
				t.Fatalf("not an ack: %+v", f.Header)
			}
		}
		for _, r := range [][2]int{{0, 300 << 10}, {1000, 200 << 10}, {32<<10 + 5, 70 << 10}, {100, len(log)}} {
			c.send(frame.AppendControl(nil, d, uint8(control.CodeFetch),
				control.Fetch{TopicID: tp.ID, StartOffset: uint64(r[0]), MaxBytes: uint32(r[1])}.AppendTo(nil)))
			fr, err := control.DecodeFetchResponse(c.next().Payload)
			if err != nil {
				t.Fatal(err)
			}
			want := log[r[0]:min(r[0]+r[1], len(log))]
			if !bytes.Equal(fr.Data, want) || fr.NextOffset != uint64(r[0]+len(want)) {
				t.Fatalf("%v fetch %v: got %d bytes next %d, want %d bytes", d, r, len(fr.Data), fr.NextOffset, len(want))
			}
		}
	}
	if got := n.srv.Metrics.SendfileBytes(); got == 0 {
		t.Fatal("the sendfile path was not taken")
	}
}

// TestSeedReadmeConfig runs a node from the seed README's lance.toml as
// it is (O_DIRECT, NUMA on, L1 with peers), with only the data directory
// and the addresses moved by flags, which override the file.
func TestSeedReadmeConfig(t *testing.T) {
	cfg, action, err := config.Load([]string{
		"--config", "../config/testdata/seed-readme.toml",
		"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--health", "127.0.0.1:0",
	}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil || action != config.ActionRun {
		t.Fatalf("load: %v %v", action, err)
	}
	if !cfg.IO.ODirect || !cfg.NUMA.Enabled || cfg.Node.ID != 1 {
		t.Fatalf("the file was not applied: %+v", cfg)
	}
	n, err := Start(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(5 * time.Second)
	c := dial(t, n.Addr().String())
	d := checksum.IEEE
	c.send(frame.AppendControl(nil, d, uint8(control.CodeCreateTopic), []byte("seed")))
	tp, err := control.DecodeTopic(c.next().Payload)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := range 50 {
		b := bytes.Repeat([]byte{byte(i)}, 1+i*97)
		want = append(want, b...)
		c.send(frame.AppendIngest(nil, d, uint64(i), 1, 1, tp.ID, b))
		if f := c.next(); f.Kind() != frame.KindAck {
			t.Fatalf("batch %d: %+v %q", i, f.Header, f.Payload)
		}
	}
	c.send(frame.AppendControl(nil, d, uint8(control.CodeFetch), control.Fetch{TopicID: tp.ID, MaxBytes: 1 << 20}.AppendTo(nil)))
	fr, err := control.DecodeFetchResponse(c.next().Payload)
	if err != nil || !bytes.Equal(fr.Data, want) {
		t.Fatalf("fetch: %v, %d bytes, want %d", err, len(fr.Data), len(want))
	}
}

// TestCorruptionNotServed flips a byte of a stored batch behind the
// server's back: fetches touching that batch are refused with an error,
// the others still work.
func TestCorruptionNotServed(t *testing.T) {
	cfg := testConfig(t)
	n, err := Start(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(5 * time.Second)
	c := dial(t, n.Addr().String())
	d := checksum.IEEE
	c.send(frame.AppendControl(nil, d, uint8(control.CodeCreateTopic), []byte("rot")))
	tp, err := control.DecodeTopic(c.next().Payload)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.send(frame.AppendIngest(nil, d, uint64(i), 1, 1, tp.ID, bytes.Repeat([]byte{'a' + byte(i)}, 100)))
		if f := c.next(); f.Kind() != frame.KindAck {
			t.Fatalf("ingest %d: %+v", i, f.Header)
		}
	}
	seg := cfg.Node.DataDir + "/topics/rot/00000000000000000000.lnc"
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{'X'}, 150); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fetch := func(off uint64, max uint32) frame.Frame {
		c.send(frame.AppendControl(nil, d, uint8(control.CodeFetch), control.Fetch{TopicID: tp.ID, StartOffset: off, MaxBytes: max}.AppendTo(nil)))
		return c.next()
	}
	isErr := func(f frame.Frame) bool {
		return f.Kind() == frame.KindControl && control.CodeFromBatchID(f.BatchID) == control.CodeErrorResponse
	}
	for _, r := range [][2]uint64{{0, 1 << 20}, {120, 10}, {199, 1}, {150, 1}} {
		if f := fetch(r[0], uint32(r[1])); !isErr(f) {
			t.Fatalf("fetch %v of the damaged batch was served: %+v %q", r, f.Header, f.Payload)
		}
	}
	for _, r := range [][2]uint64{{0, 100}, {200, 100}, {250, 10}} {
		f := fetch(r[0], uint32(r[1]))
		fr, err := control.DecodeFetchResponse(f.Payload)
		if isErr(f) || err != nil || len(fr.Data) != int(r[1]) {
			t.Fatalf("fetch %v of a sound batch: %+v %q", r, f.Header, f.Payload)
		}
	}
	c.send(frame.AppendControl(nil, d, uint8(control.CodeFetchBatches),
		control.FetchBatches{TopicID: tp.ID, StartOffset: 100, MaxBytes: 1000}.AppendTo(nil)))
	if f := c.next(); !isErr(f) {
		t.Fatalf("FetchBatches of the damaged batch was served: %+v", f.Header)
	}
	if got := n.srv.Metrics.CRCFailures(); got == 0 {
		t.Fatal("lance_crc_failures_total did not count the damage")
	}
}
