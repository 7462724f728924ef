package lance

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

// tcpServer is a listener on 127.0.0.1 for the fake servers and proxies
// of these tests: it runs a handler per accepted connection and, at the
// test's end, closes the listener and every connection it tracks and
// waits for the handlers.
type tcpServer struct {
	ln    net.Listener
	mu    sync.Mutex // guards conns
	conns []net.Conn
	wg    sync.WaitGroup
}

func serveTCP(t *testing.T, handle func(s *tcpServer, nc net.Conn)) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{ln: ln}
	s.wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.track(nc)
			s.wg.Go(func() { handle(s, nc) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.cut()
		s.wg.Wait()
	})
	return s
}

func (s *tcpServer) addr() string { return s.ln.Addr().String() }

// track adds nc to the connections cut closes.
func (s *tcpServer) track(nc net.Conn) {
	s.mu.Lock()
	s.conns = append(s.conns, nc)
	s.mu.Unlock()
}

// cut closes every tracked connection.
func (s *tcpServer) cut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// proxy forwards TCP connections to a server. While dropping, it swallows
// what the server sends (acks), so that batches are stored but never
// acknowledged; cut then closes every connection.
type proxy struct {
	*tcpServer
	dropping atomic.Bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{}
	p.tcpServer = serveTCP(t, func(s *tcpServer, cc net.Conn) {
		sc, err := net.Dial("tcp", target)
		if err != nil {
			cc.Close()
			return
		}
		s.track(sc)
		s.wg.Go(func() { io.Copy(sc, cc); sc.Close() })
		buf := make([]byte, 32<<10)
		for {
			n, err := sc.Read(buf)
			if n > 0 && !p.dropping.Load() {
				if _, werr := cc.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		cc.Close()
	})
	return p
}

// metric reads one counter of the server's /metrics.
func (s *server) metric(t *testing.T, name string) int {
	t.Helper()
	resp, err := http.Get("http://" + s.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return n
		}
	}
	return 0
}

// TestProducerRetryAfterCut: batches the server stored but whose acks were
// lost are sent again after the connection is cut. With idempotence the
// topic holds every record once; without, the retried batches are stored
// twice (at least once, as documented).
func TestProducerRetryAfterCut(t *testing.T) {
	s := startServer(t)
	for _, idem := range []bool{true, false} {
		t.Run(fmt.Sprintf("idempotence=%v", idem), func(t *testing.T) {
			ctx := testCtx(t, 90*time.Second)
			px := startProxy(t, s.addr)
			c, err := Dial(ctx, px.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			topic := fmt.Sprintf("retry-%v", idem)
			if _, err := c.CreateTopic(ctx, topic); err != nil {
				t.Fatal(err)
			}
			const inFlight, before, during = 8, 50, 20
			// Every record fills its batch ("rec-000" is 12 bytes as TLV): one
			// batch per record, whatever the window does.
			p, err := NewProducer(c, WithBatchBytes(12), WithLinger(0), WithMaxInFlight(inFlight), WithIdempotence(idem))
			if err != nil {
				t.Fatal(err)
			}
			var failed atomic.Int32
			cb := func(_ Offset, err error) {
				if err != nil {
					failed.Add(1)
				}
			}
			produce := func(from, to int) {
				for i := from; i < to; i++ {
					if err := p.Produce(ctx, topic, Record{Value: fmt.Appendf(nil, "rec-%03d", i)}, cb); err != nil {
						t.Fatal(err)
					}
				}
			}
			produce(0, before)
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			// Acks vanish from here on: the window's batches are stored,
			// their acks never arrive.
			stored := s.metric(t, "lance_batches_ingested_total")
			px.dropping.Store(true)
			produce(before, before+during)
			for s.metric(t, "lance_batches_ingested_total") < stored+inFlight {
				if ctx.Err() != nil {
					t.Fatal("the server never stored the window's batches")
				}
				time.Sleep(10 * time.Millisecond)
			}
			px.dropping.Store(false)
			px.cut()
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if n := failed.Load(); n != 0 {
				t.Fatalf("%d records failed", n)
			}
			if c.Reconnects() == 0 {
				t.Fatal("the producer never reconnected")
			}

			counts := map[string]int{}
			cons, err := NewConsumer(c, topic, WithMaxWait(50*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			for {
				recs, err := cons.Poll(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) == 0 {
					break
				}
				for _, r := range recs {
					counts[string(r.Value)]++
				}
			}
			dups := 0
			for i := range before + during {
				switch n := counts[fmt.Sprintf("rec-%03d", i)]; {
				case n == 0:
					t.Fatalf("rec-%03d is missing", i)
				case n > 1:
					dups += n - 1
				}
			}
			if idem && dups != 0 {
				t.Fatalf("%d duplicates with idempotence on", dups)
			}
			if !idem && dups < inFlight {
				t.Fatalf("%d duplicates without idempotence; the %d retried batches were stored before", dups, inFlight)
			}
			if idem && s.metric(t, "lance_ingest_duplicates_total") < inFlight {
				t.Fatalf("the server counted %d duplicates", s.metric(t, "lance_ingest_duplicates_total"))
			}
			t.Logf("%d records, %d duplicates, %d reconnects", before+during, dups, c.Reconnects())
		})
	}
}

// fakeFollower answers every request with the replies of a cluster
// follower: first `forwardFailures` FORWARD_FAILED, then a NOT_LEADER
// redirect to leader.
func fakeFollower(t *testing.T, leader string, forwardFailures int) string {
	t.Helper()
	var answered atomic.Int32
	return serveTCP(t, func(_ *tcpServer, nc net.Conn) {
		defer nc.Close()
		p := frame.NewParser(frame.Config{})
		for {
			if _, err := p.Fill(nc); err != nil {
				return
			}
			for {
				f, ok, err := p.Next()
				if err != nil || !ok {
					break
				}
				if f.Kind() != frame.KindControl && f.Kind() != frame.KindIngest {
					continue
				}
				text := control.NotLeader(leader)
				if int(answered.Add(1)) <= forwardFailures {
					text = control.ForwardFailed("leader unreachable")
				}
				out := frame.AppendControl(nil, dialect, uint8(control.CodeErrorResponse), []byte(text))
				if _, err := nc.Write(out); err != nil {
					return
				}
			}
		}
	}).addr()
}

// TestRedirect: a client pointed at a follower follows NOT_LEADER to the
// leader for control requests and for produced batches, and retries
// FORWARD_FAILED.
func TestRedirect(t *testing.T) {
	s := startServer(t)
	ctx := testCtx(t, 60*time.Second)

	follower := fakeFollower(t, s.addr, 2)
	c, err := Dial(ctx, follower)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Two FORWARD_FAILED replies, then the redirect, then the leader.
	if _, err := c.ListTopics(ctx); err != nil {
		t.Fatalf("ListTopics through a follower: %v", err)
	}
	if c.Addr() != s.addr {
		t.Fatalf("Addr = %s, want the leader %s", c.Addr(), s.addr)
	}
	if _, err := c.CreateTopic(ctx, "redirected"); err != nil {
		t.Fatal(err)
	}

	// A producer whose first batch meets the follower.
	c2, err := Dial(ctx, fakeFollower(t, s.addr, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.remember("redirected", mustTopicID(t, c, "redirected"))
	p, err := NewProducer(c2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	off, err := p.ProduceSync(ctx, "redirected", Record{Value: []byte("via the leader")})
	if err != nil {
		t.Fatalf("produce through a follower: %v", err)
	}
	if c2.Addr() != s.addr {
		t.Fatalf("producer's client Addr = %s", c2.Addr())
	}
	cons, err := NewConsumer(c, "redirected")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	recs, err := cons.Poll(ctx)
	if err != nil || len(recs) != 1 || string(recs[0].Value) != "via the leader" || recs[0].Offset != off {
		t.Fatalf("read back: %+v %v", recs, err)
	}

	// Followers that name each other: the client gives up.
	a := fakeFollower(t, "127.0.0.1:1", 0)
	c3, err := Dial(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := c3.ListTopics(short); err == nil {
		t.Fatal("ListTopics succeeded through a dead leader")
	}
}

func mustTopicID(t *testing.T, c *Client, name string) uint32 {
	t.Helper()
	tp, err := c.GetTopic(testCtx(t, 10*time.Second), name)
	if err != nil {
		t.Fatal(err)
	}
	return tp.ID
}

// crashChildEnv names the environment variable that makes the test binary
// run consumerCrashChild instead of the tests.
const crashChildEnv = "LNC_CLIENT_CRASH_CHILD"

// consumerCrashChild consumes the topic with a file store, commits after
// every record and reports each commit on stdout, until it is killed.
func consumerCrashChild(spec string) {
	addr, dir, _ := strings.Cut(spec, ",")
	ctx := context.Background()
	c, err := Dial(ctx, addr)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	store, err := NewFileOffsetStore(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	cons, err := NewConsumer(c, "crash", WithOffsetStore(store, 7), WithMaxWait(50*time.Millisecond))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for rec, err := range cons.Records(ctx) {
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if err := cons.Commit(ctx); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Printf("committed %s\n", rec.Value)
		time.Sleep(2 * time.Millisecond)
	}
}

// TestConsumerResumeAfterCrash: a consumer process that commits to a
// file store is killed (SIGKILL) mid-stream; a new consumer with the same
// store starts right after the last record whose commit completed.
func TestConsumerResumeAfterCrash(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 90*time.Second)
	if _, err := c.CreateTopic(ctx, "crash"); err != nil {
		t.Fatal(err)
	}
	const n = 400
	p, err := NewProducer(c, WithBatchBytes(300))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := p.Produce(ctx, "crash", Record{Value: fmt.Appendf(nil, "c%04d", i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+s.addr+","+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	last := -1
	for sc.Scan() {
		line := sc.Text()
		v, ok := strings.CutPrefix(line, "committed c")
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %s", line)
		}
		last, _ = strconv.Atoi(v)
		if last == n/3 {
			cmd.Process.Kill()
			break
		}
	}
	// Whatever the child printed after the kill was decided is read, so
	// that last is the newest commit it reported.
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "committed c"); ok {
			last, _ = strconv.Atoi(v)
		}
	}
	cmd.Wait()
	if last < 0 {
		t.Fatal("the child committed nothing")
	}

	store, err := NewFileOffsetStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := NewConsumer(c, "crash", WithOffsetStore(store, 7), WithMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	recs, err := cons.Poll(ctx)
	if err != nil || len(recs) == 0 {
		t.Fatalf("resumed consumer: %d records, %v", len(recs), err)
	}
	first, _ := strconv.Atoi(strings.TrimPrefix(string(recs[0].Value), "c"))
	// The commit of record last+1 may have completed without its line
	// being printed; none after it can have.
	if first != last+1 && first != last+2 {
		t.Fatalf("resumed at c%04d after the last reported commit c%04d", first, last)
	}
	t.Logf("killed after c%04d, resumed at c%04d", last, first)
}

// TestBatchOffset: records carry the offset of the batch they were
// produced in; the first record of an idempotent batch sits just after
// its producer record.
func TestBatchOffset(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 30*time.Second)
	if _, err := c.CreateTopic(ctx, "batches"); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(c, WithLinger(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	var starts []Offset
	for b := range 3 {
		for i := range 4 {
			if err := p.Produce(ctx, "batches", Record{Value: fmt.Appendf(nil, "b%d-r%d", b, i)}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := p.ProduceSync(ctx, "batches", Record{Value: fmt.Appendf(nil, "b%d-last", b)}); err != nil {
			t.Fatal(err)
		}
		starts = append(starts, 0)
	}
	cons, err := NewConsumer(c, "batches", WithMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	recs, err := cons.Poll(ctx)
	if err != nil || len(recs) != 15 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for i, r := range recs {
		b := i / 5
		if i%5 == 0 {
			starts[b] = r.BatchOffset
			if r.Offset != r.BatchOffset+Offset(frame.ProducerRecordSize) {
				t.Fatalf("first record of batch %d at %d, batch at %d", b, r.Offset, r.BatchOffset)
			}
		}
		if r.BatchOffset != starts[b] || (b > 0 && starts[b] <= starts[b-1]) {
			t.Fatalf("record %d (%s): batch offset %d, batch starts %v", i, r.Value, r.BatchOffset, starts)
		}
	}
}

// referenceProxy forwards to a LANCE-Go server but answers FetchBatches as
// a reference server does ("Invalid client command"). It serves one
// request at a time, which is how a Consumer uses its connection.
func referenceProxy(t *testing.T, target string) string {
	t.Helper()
	return serveTCP(t, func(s *tcpServer, cc net.Conn) {
		sc, err := net.Dial("tcp", target)
		if err != nil {
			cc.Close()
			return
		}
		s.track(sc)
		var wmu sync.Mutex // serializes writes to cc
		s.wg.Go(func() {
			defer cc.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := sc.Read(buf)
				if n > 0 {
					wmu.Lock()
					_, werr := cc.Write(buf[:n])
					wmu.Unlock()
					if werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
		defer sc.Close()
		p := frame.NewParser(frame.Config{})
		for {
			if _, err := p.Fill(cc); err != nil {
				return
			}
			for {
				f, ok, err := p.Next()
				if err != nil || !ok {
					break
				}
				if f.Kind() == frame.KindControl && control.CodeFromBatchID(f.BatchID) == control.CodeFetchBatches {
					out := frame.AppendControl(nil, dialect, uint8(control.CodeErrorResponse), []byte(control.InvalidClientCommand))
					wmu.Lock()
					cc.Write(out)
					wmu.Unlock()
					continue
				}
				if _, err := sc.Write(frame.Append(nil, &f.Header, f.Payload, dialect)); err != nil {
					return
				}
			}
		}
	}).addr()
}

// TestConsumerFallbackAndReuse: against a server without FetchBatches the
// consumer falls back to the classic Fetch; with and without buffer reuse
// it reads every record, records cut by small fetches included.
func TestConsumerFallbackAndReuse(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 60*time.Second)
	if _, err := c.CreateTopic(ctx, "fallback"); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(c, WithBatchBytes(500))
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		if err := p.Produce(ctx, "fallback", Record{Value: fmt.Appendf(nil, "value-%04d-%s", i, strings.Repeat("x", i%50))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ref := referenceProxy(t, s.addr)
	for _, tc := range []struct {
		name string
		addr string
		opts []ConsumerOption
	}{
		{"batches", s.addr, nil},
		{"batches-reuse", s.addr, []ConsumerOption{WithBufferReuse()}},
		{"classic", ref, []ConsumerOption{WithMaxBytes(97)}},
		{"classic-reuse", ref, []ConsumerOption{WithMaxBytes(97), WithBufferReuse()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := Dial(ctx, tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			cons, err := NewConsumer(cc, "fallback", append(tc.opts, WithMaxWait(20*time.Millisecond))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			i := 0
			for i < n {
				recs, err := cons.Poll(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					if want := fmt.Sprintf("value-%04d-%s", i, strings.Repeat("x", i%50)); string(r.Value) != want {
						t.Fatalf("record %d: %q", i, r.Value)
					}
					i++
				}
			}
			wantMode := modeBatches
			if tc.addr == ref {
				wantMode = modeClassic
			}
			if cons.mode != wantMode {
				t.Fatalf("mode %d, want %d", cons.mode, wantMode)
			}
		})
	}
}

// TestLingerZeroGathers: with linger 0, records produced while the
// in-flight window is full gather in the open batch instead of queuing as
// one-record batches.
func TestLingerZeroGathers(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 60*time.Second)
	if _, err := c.CreateTopic(ctx, "gather"); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(c, WithLinger(0), WithMaxInFlight(1))
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	before := s.metric(t, "lance_batches_ingested_total")
	for i := range n {
		if err := p.Produce(ctx, "gather", Record{Value: fmt.Appendf(nil, "g%d", i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	batches := s.metric(t, "lance_batches_ingested_total") - before
	if batches <= 0 || batches > n/2 {
		t.Fatalf("%d records went in %d batches", n, batches)
	}
	t.Logf("%d records in %d batches", n, batches)
}
