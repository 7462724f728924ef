package e2e

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// raiseFileLimit makes sure this process and the servers it starts may
// open need descriptors. It calls Setrlimit even when the soft limit
// already looks high enough: Go raises its own soft limit at start-up but
// gives the processes it starts the original one back, unless the program
// sets the limit itself.
func raiseFileLimit(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Max < need {
		t.Fatalf("the hard limit on open files is %d; this test needs %d (raise ulimit -Hn)", lim.Max, need)
	}
	lim.Cur = max(lim.Cur, need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("setrlimit(%d): %v", lim.Cur, err)
	}
}

// TestHardening feeds the server malformed and hostile input and checks
// that it closes exactly the offending connections, without replying to
// the bad frame, while everyone else is served.
func TestHardening(t *testing.T) {
	t.Parallel()
	const idleConns = 2000
	raiseFileLimit(t, 2*idleConns+1024)
	rng := newRand(seed(t))
	s := startServer(t)
	admin := s.dial(ieee)
	topic := createTopic(t, admin, "hard").ID
	// log is what topic must hold once all subtests ran.
	var log []byte

	t.Run("OversizedPayloadLength", func(t *testing.T) {
		for _, n := range []uint32{maxPayload + 1, 0xFFFFFFFF} {
			c := s.dialT(t, ieee)
			h := encode(ieee, frame{Flags: flagBatch, TopicID: topic})
			binary.LittleEndian.PutUint32(h[32:], n)
			// Only the header: the length check must not wait for the
			// payload.
			c.send(h)
			c.expectClosed("payload_length " + itoa(n))
		}
		// The same on the second frame of a connection.
		c := s.dialT(t, ieee)
		h := encode(ieee, frame{Flags: flagControl, BatchID: codeListTopics})
		binary.LittleEndian.PutUint32(h[32:], maxPayload+1)
		c.send(keepaliveFrame(ieee), h)
		expectBytes(t, "keepalive before the oversized frame", c.recv(), keepaliveFrame(ieee))
		c.expectClosed("oversized second frame")
	})

	t.Run("MaxPayloadAccepted", func(t *testing.T) {
		data := randomBytes(rng, maxPayload)
		c := s.dialT(t, ieee)
		// A keepalive first: the first frame of a connection has a
		// deadline (limits.handshake_timeout) that a 16 MiB frame on a
		// loaded machine should not have to race.
		expectBytes(t, "keepalive", c.call(keepaliveFrame(ieee)), keepaliveFrame(ieee))
		if off := ingest(t, c, batch{Topic: topic, ID: 1, Records: 1, Data: data, AckOffset: true}); off != uint64(len(log)) {
			t.Fatalf("16 MiB batch acked at %d, want %d", off, len(log))
		}
		start := uint64(len(log))
		log = append(log, data...)
		// max_bytes is clamped so that the reply frame fits in 16 MiB.
		const maxData = maxPayload - headerSize - 16
		r := fetch(t, c, topic, start, 0xFFFFFFFF)
		if len(r.Data) != maxData || r.Next != start+maxData || !bytes.Equal(r.Data, data[:maxData]) {
			t.Fatalf("Fetch with max_bytes 2^32-1: %d bytes, next %d; want the first %d bytes, next %d", len(r.Data), r.Next, maxData, start+maxData)
		}
		r = fetch(t, c, topic, start+maxData, 1<<20)
		if !bytes.Equal(r.Data, data[maxData:]) {
			t.Fatalf("tail of the 16 MiB batch differs")
		}
	})

	t.Run("GarbageAfterValidFrame", func(t *testing.T) {
		c := s.dialT(t, ieee)
		c.send(keepaliveFrame(ieee), bytes.Repeat([]byte{0xAB}, 100))
		expectBytes(t, "keepalive before garbage", c.recv(), keepaliveFrame(ieee))
		c.expectClosed("garbage after a keepalive")

		// Garbage with a small length field fails on the magic; the
		// ingest before it is still acked and stored.
		c = s.dialT(t, ieee)
		garbage := bytes.Repeat([]byte{'x'}, 60)
		binary.LittleEndian.PutUint32(garbage[32:], 4)
		c.send(ingestFrame(ieee, batch{Topic: topic, ID: 7, Data: []byte("valid")}), garbage)
		expectBytes(t, "ack before garbage", c.recv(), ackFrame(ieee, 7))
		c.expectClosed("garbage after an ingest")
		log = append(log, "valid"...)
	})

	t.Run("BadFrames", func(t *testing.T) {
		good := ingestFrame(ieee, batch{Topic: topic, ID: 1, Data: []byte("must not be stored")})
		corrupt := func(i int, v byte) []byte {
			b := bytes.Clone(good)
			b[i] = v
			return b
		}
		badVersion := corrupt(4, 2)
		// A frame of version 2 whose header CRC is right for its bytes.
		binary.LittleEndian.PutUint32(badVersion[8:], ieee.sum(badVersion[:8]))
		cases := []struct {
			name  string
			frame []byte
		}{
			{"bad magic", corrupt(0, 'X')},
			{"bad version", badVersion},
			{"bad header CRC", corrupt(8, good[8]^1)},
			{"bad payload CRC", corrupt(36, good[36]^1)},
			{"flipped payload byte", corrupt(headerSize+3, good[headerSize+3]^0x20)},
			{"reserved bytes changed under the header CRC", corrupt(7, 0x80)},
		}
		for _, tc := range cases {
			// As the first frame, followed by a valid one that must not
			// be answered either.
			c := s.dialT(t, ieee)
			c.send(tc.frame, keepaliveFrame(ieee))
			c.expectClosed(tc.name + " (first frame)")
			// As the second frame of a connection.
			c = s.dialT(t, ieee)
			c.send(keepaliveFrame(ieee), tc.frame, keepaliveFrame(ieee))
			expectBytes(t, tc.name+": keepalive before it", c.recv(), keepaliveFrame(ieee))
			c.expectClosed(tc.name + " (second frame)")
		}
		// A connection that ends inside a frame stores nothing.
		c := s.dialT(t, ieee)
		c.send(good[:len(good)-3])
		c.close()
	})

	t.Run("SlowClient", func(t *testing.T) {
		slow := s.dialT(t, ieee)
		expectBytes(t, "slow client keepalive", slow.call(keepaliveFrame(ieee)), keepaliveFrame(ieee))
		req := controlFrame(ieee, codeGetTopic, topicIDPayload(topic))
		var sending atomic.Bool
		sending.Store(true)
		firstByte := make(chan struct{})
		sent := make(chan error, 1)
		go func() {
			for i := range req {
				if _, err := slow.nc.Write(req[i : i+1]); err != nil {
					sent <- err
					return
				}
				if i == 0 {
					close(firstByte)
				}
				if i < len(req)-1 {
					time.Sleep(100 * time.Millisecond)
				}
			}
			sending.Store(false)
			sent <- nil
		}()
		<-firstByte

		// Meanwhile other clients ingest and read.
		other := createTopic(t, admin, "hard-others").ID
		const workers, perWorker = 3, 20
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				c, err := dialErr(s.addr, ieee)
				if err != nil {
					errs <- err
					return
				}
				defer c.close()
				for k := range perWorker {
					b := batch{Topic: other, ID: uint64(w*1000 + k), Data: []byte("0123456789")}
					if err := c.sendErr(ingestFrame(ieee, b)); err != nil {
						errs <- err
						return
					}
					f, err := c.next()
					if err == nil {
						_, err = checkAck(f, b)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("a client working next to the slow one: %v", err)
		}
		if end := logEnd(t, admin, other); end != workers*perWorker*10 {
			t.Errorf("the other clients' topic ends at %d, want %d", end, workers*perWorker*10)
		}
		if !sending.Load() {
			t.Errorf("the slow client finished its frame before the other clients were done: the test did not overlap them")
		}
		if err := <-sent; err != nil {
			t.Fatalf("slow client write: %v", err)
		}
		p, ok := expectControl(t, "slow request", slow.recv(), codeTopicResponse)
		if ok {
			if ti := parseTopic(t, "slow request", decodeJSON(t, "slow request", p)); ti.ID != topic {
				t.Errorf("slow request answered with %+v", ti)
			}
		}
	})

	t.Run("IdleConnections", func(t *testing.T) {
		conns := make([]net.Conn, idleConns)
		defer func() {
			for _, nc := range conns {
				if nc != nil {
					nc.Close()
				}
			}
		}()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures int
		var firstErr error
		ka := keepaliveFrame(ieee)
		const dialers = 8
		for g := range dialers {
			wg.Go(func() {
				for i := g; i < idleConns; i += dialers {
					nc, err := net.DialTimeout("tcp", s.addr, 10*time.Second)
					if err == nil {
						conns[i] = nc
						// One keepalive each, so that the server has
						// certainly taken the connection on.
						nc.SetDeadline(time.Now().Add(replyTimeout))
						if _, err = nc.Write(ka); err == nil {
							var f frame
							if f, err = readFrame(nc, ieee); err == nil && !bytes.Equal(f.Raw, ka) {
								err = errString("reply to keepalive: " + f.describe())
							}
						}
					}
					if err != nil {
						mu.Lock()
						if failures++; firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if failures > 0 {
			t.Fatalf("%d of %d idle connections failed, first: %v", failures, idleConns, firstErr)
		}
		_, body, err := s.get("/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := metricValue(body, "lance_connections_active"); !ok || v < idleConns {
			t.Errorf("lance_connections_active = %v (found %v) with %d idle connections open", v, ok, idleConns)
		}

		// Another client works normally next to them.
		c := s.dialT(t, ieee)
		wt := createTopic(t, c, "next-to-idle").ID
		var l topicLog
		for i := range 200 {
			l.add(batch{Topic: wt, ID: uint64(i), Records: 1, Data: randomBytes(rng, 1+rng.IntN(4000)), AckOffset: i%5 == 0})
		}
		pipeline(t, c, l.batches, l.offsets, 50)
		if got := readLog(t, c, wt, 0, l.end(), 1<<20, 5000); !bytes.Equal(got, l.bytes) {
			t.Errorf("log next to idle connections differs: %s", firstDiff(got, l.bytes))
		}
		expectBatches(t, c, wt, &l, 10000)
	})

	t.Run("StillHealthy", func(t *testing.T) {
		expectBytes(t, "keepalive on the first connection", admin.call(keepaliveFrame(ieee)), keepaliveFrame(ieee))
		if end := logEnd(t, admin, topic); end != uint64(len(log)) {
			t.Fatalf("topic hard ends at %d, want %d: a refused frame was stored, or an acked one lost", end, len(log))
		}
		if got := readLog(t, admin, topic, 0, uint64(len(log)), 1<<20); !bytes.Equal(got, log) {
			t.Errorf("topic hard differs: %s", firstDiff(got, log))
		}
		c := s.dialT(t, castagnoli)
		expectBytes(t, "fresh connection", c.call(keepaliveFrame(castagnoli)), keepaliveFrame(castagnoli))
		if code, body, err := s.get("/health/ready"); err != nil || code != http.StatusOK {
			t.Errorf("/health/ready: %d %s %v", code, body, err)
		}
		_, body, _ := s.get("/metrics")
		if v, ok := metricValue(body, `lance_errors_total{type="protocol"}`); !ok || v == 0 {
			t.Errorf("lance_errors_total{type=\"protocol\"} = %v (found %v) after the protocol errors", v, ok)
		}
	})
}

type errString string

func (e errString) Error() string { return string(e) }
