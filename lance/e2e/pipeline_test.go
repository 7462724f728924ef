package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// randomBytes returns n bytes from rng.
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := i; j < min(i+8, n); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return b
}

// topicLog is what a test sent to one topic: its batches in offset order
// and the concatenated bytes.
type topicLog struct {
	batches []batch
	offsets []uint64
	bytes   []byte
}

func (l *topicLog) add(b batch) {
	l.batches = append(l.batches, b)
	l.offsets = append(l.offsets, uint64(len(l.bytes)))
	l.bytes = append(l.bytes, b.Data...)
}

func (l *topicLog) end() uint64 { return uint64(len(l.bytes)) }

// batchAt returns the index of the batch holding offset off.
func (l *topicLog) batchAt(off uint64) int {
	return sort.Search(len(l.offsets), func(i int) bool { return l.offsets[i] > off }) - 1
}

// pipeline writes every batch without waiting, with a keepalive after
// every keepaliveEvery batches (0: none), while it reads the replies; it
// asserts that they come back one per request in request order, and
// checks the offsets of extended acks against want (the offset each batch
// must get).
func pipeline(t testing.TB, c *client, bs []batch, want []uint64, keepaliveEvery int) {
	t.Helper()
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(c.nc, 64<<10)
		c.nc.SetWriteDeadline(time.Now().Add(2 * time.Minute))
		for i, b := range bs {
			w.Write(ingestFrame(c.d, b))
			if keepaliveEvery > 0 && (i+1)%keepaliveEvery == 0 {
				w.Write(keepaliveFrame(c.d))
			}
		}
		werr <- w.Flush()
	}()
	for i, b := range bs {
		f, err := c.next()
		if err != nil {
			t.Fatalf("reply to batch %d of %d: %v", i, len(bs), err)
		}
		off, err := checkAck(f, b)
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i, len(bs), err)
		}
		if b.AckOffset && off != want[i] {
			t.Fatalf("extended ack of batch %d: offset %d, want %d", i, off, want[i])
		}
		if keepaliveEvery > 0 && (i+1)%keepaliveEvery == 0 {
			if f := c.recv(); f.Flags != flagKeepalive || !bytes.Equal(f.Raw, keepaliveFrame(c.d)) {
				t.Fatalf("after batch %d: got %s, want the keepalive sent after it", i, f.describe())
			}
		}
	}
	if err := <-werr; err != nil {
		t.Fatalf("writing the pipeline: %v", err)
	}
}

// expectBatches walks a topic with FetchBatches from offset 0 to its end,
// cycling through sizes for max_bytes, and checks that each reply holds
// exactly the whole batches that fit, as sent.
func expectBatches(t testing.TB, c *client, topic uint32, l *topicLog, sizes ...uint32) {
	t.Helper()
	off := uint64(0)
	for i := 0; off < l.end(); i++ {
		m := sizes[i%len(sizes)]
		r := fetchBatches(t, c, topic, off, m, 0)
		checkBatches(t, r, l, off, m)
		off = r.Next
	}
}

func fetchBatches(t testing.TB, c *client, topic uint32, off uint64, maxBytes, waitMS uint32) batchesReply {
	t.Helper()
	p, ok := expectControl(t, "FetchBatches", c.control(codeFetchBatches, fetchBatchesPayload(topic, off, maxBytes, waitMS)), codeBatchesResponse)
	if !ok {
		t.FailNow()
	}
	r, err := decodeBatchesReply(p)
	if err != nil {
		t.Fatalf("FetchBatches(%d, %d, %d): %v", topic, off, maxBytes, err)
	}
	return r
}

// checkBatches checks a BatchesResponse to a request at off with maxBytes:
// from the batch holding off, as many whole batches as fit in maxBytes,
// at least one.
func checkBatches(t testing.TB, r batchesReply, l *topicLog, off uint64, maxBytes uint32) {
	t.Helper()
	if err := batchesError(r, l, off, maxBytes); err != nil {
		t.Fatal(err)
	}
}

func batchesError(r batchesReply, l *topicLog, off uint64, maxBytes uint32) error {
	k := l.batchAt(off)
	j, size, records := k, uint64(0), uint32(0)
	for j < len(l.batches) && (j == k || size+uint64(len(l.batches[j].Data)) <= uint64(maxBytes)) {
		size += uint64(len(l.batches[j].Data))
		records += l.batches[j].Records
		j++
	}
	start := l.offsets[k]
	if r.Start != start || r.Next != start+size || r.Batches != uint32(j-k) || r.Records != records {
		return fmt.Errorf("FetchBatches(off %d, max %d): start %d next %d batches %d records %d; want start %d next %d batches %d records %d",
			off, maxBytes, r.Start, r.Next, r.Batches, r.Records, start, start+size, j-k, records)
	}
	if !bytes.Equal(r.Data, l.bytes[start:start+size]) {
		return fmt.Errorf("FetchBatches(off %d, max %d): data differs from what was sent (%s)", off, maxBytes, firstDiff(r.Data, l.bytes[start:start+size]))
	}
	return nil
}

// offsetForTime runs OffsetForTime and returns (offset, start, end).
func offsetForTime(t testing.TB, c *client, topic uint32, ts uint64) (uint64, uint64, uint64) {
	t.Helper()
	p, ok := expectControl(t, "OffsetForTime", c.control(codeOffsetForTime, offsetForTimePayload(topic, ts)), codeOffsetResponse)
	if !ok {
		t.FailNow()
	}
	if len(p) != 24 {
		t.Fatalf("OffsetResponse of %d bytes, want 24", len(p))
	}
	return le64at(p, 0), le64at(p, 8), le64at(p, 16)
}

func le64at(p []byte, i int) uint64 { return binary.LittleEndian.Uint64(p[i:]) }

// expectOffsetsForTime checks OffsetForTime for the batches' own
// timestamps (strictly increasing in l) and their neighbours.
func expectOffsetsForTime(t testing.TB, c *client, topic uint32, l *topicLog, rng *rand.Rand, samples int) {
	t.Helper()
	check := func(ts, want uint64) {
		t.Helper()
		off, start, end := offsetForTime(t, c, topic, ts)
		if off != want || start != 0 || end != l.end() {
			t.Errorf("OffsetForTime(%d): offset %d start %d end %d; want %d, 0, %d", ts, off, start, end, want, l.end())
		}
	}
	n := len(l.batches)
	check(0, 0)
	check(l.batches[0].Timestamp, 0)
	check(l.batches[n-1].Timestamp+1, l.end())
	check(tailOffset, l.end())
	for range samples {
		k := rng.IntN(n)
		ts := l.batches[k].Timestamp
		check(ts, l.offsets[k])
		check(ts-1, l.offsets[k])
		if k+1 < n {
			check(ts+1, l.offsets[k+1])
		} else {
			check(ts+1, l.end())
		}
	}
}

// TestPipelinedIngest pipelines 5,000 ingests of random sizes (with
// keepalives among them) on one connection, then reads the log back with
// classic Fetch in chunks of many sizes, with FetchBatches, with
// OffsetForTime, and with a long-poll FetchBatches that another
// connection's ingest completes.
func TestPipelinedIngest(t *testing.T) {
	t.Parallel()
	rng := newRand(seed(t))
	s := startServer(t)
	c := s.dial(ieee)
	topic := createTopic(t, c, "pipeline").ID

	const n = 5000
	var l topicLog
	base := uint64(time.Now().UnixNano())
	for i := range n {
		size := 1 + rng.IntN(2048)
		if rng.IntN(100) == 0 {
			size = 1 + rng.IntN(256<<10)
		}
		l.add(batch{
			Topic:     topic,
			ID:        rng.Uint64(),
			Timestamp: base + uint64(i)*1000 + uint64(rng.IntN(500)),
			Records:   1 + rng.Uint32N(100),
			Data:      randomBytes(rng, size),
			AckOffset: rng.IntN(3) == 0,
		})
	}
	pipeline(t, c, l.batches, l.offsets, 500)
	if c.backpressure > 0 {
		t.Logf("%d backpressure frames during the pipeline", c.backpressure)
	}

	t.Run("Fetch", func(t *testing.T) {
		c := s.dialT(t, ieee)
		if end := logEnd(t, c, topic); end != l.end() {
			t.Fatalf("log end %d, want %d", end, l.end())
		}
		got := readLog(t, c, topic, 0, l.end(), 1, 7, 4096, 1<<20, 65536+13, 300000)
		if !bytes.Equal(got, l.bytes) {
			t.Fatalf("reassembled log differs from what was sent: %s", firstDiff(got, l.bytes))
		}
		// A few reads from random places, with random sizes.
		for range 50 {
			off := uint64(rng.IntN(len(l.bytes)))
			m := uint32(1 + rng.IntN(200000))
			r := fetch(t, c, topic, off, m)
			want := l.bytes[off:min(off+uint64(m), l.end())]
			if r.Next != off+uint64(len(want)) || !bytes.Equal(r.Data, want) {
				t.Fatalf("Fetch(%d, %d): next %d, %d bytes; want next %d, %d bytes (%s)", off, m, r.Next, len(r.Data), off+uint64(len(want)), len(want), firstDiff(r.Data, want))
			}
		}
		expectBytes(t, "past the end", c.control(codeFetch, fetchPayload(topic, l.end()+1, 1)), controlFrame(ieee, codeCatchingUp, le64(nil, l.end())))
	})

	t.Run("FetchBatches", func(t *testing.T) {
		c := s.dialT(t, ieee)
		expectBatches(t, c, topic, &l, 1, 4096, 100000, 1<<20, 7, 0)
		// From inside a batch: the batch holding the offset, whole.
		for range 50 {
			off := uint64(rng.IntN(len(l.bytes)))
			m := uint32(1 + rng.IntN(20000))
			checkBatches(t, fetchBatches(t, c, topic, off, m, 0), &l, off, m)
		}
		r := fetchBatches(t, c, topic, l.end(), 4096, 0)
		if r.Start != l.end() || r.Next != l.end() || r.Batches != 0 || r.Records != 0 || r.N != 0 {
			t.Errorf("FetchBatches at the end: %+v, want an empty reply at %d", r, l.end())
		}
		expectBytes(t, "past the end", c.control(codeFetchBatches, fetchBatchesPayload(topic, l.end()+1, 1, 0)),
			controlFrame(ieee, codeCatchingUp, le64(nil, l.end())))
		expectError(t, ieee, "19-byte payload", c.control(codeFetchBatches, fetchBatchesPayload(topic, 0, 1, 0)[:19]), "Invalid fetch batches payload")
		expectError(t, ieee, "unknown topic", c.control(codeFetchBatches, fetchBatchesPayload(999, 0, 1, 0)), "Topic 999 not found")
	})

	t.Run("OffsetForTime", func(t *testing.T) {
		c := s.dialT(t, ieee)
		expectOffsetsForTime(t, c, topic, &l, rng, 100)
		expectError(t, ieee, "11-byte payload", c.control(codeOffsetForTime, offsetForTimePayload(topic, 1)[:11]), "Invalid offset for time payload")
		expectError(t, ieee, "unknown topic", c.control(codeOffsetForTime, offsetForTimePayload(999, 1)), "Topic 999 not found")
	})

	t.Run("MixedPipeline", func(t *testing.T) {
		mixedPipeline(t, s, topic, &l, rng)
	})

	t.Run("LongPoll", func(t *testing.T) {
		poller := s.dialT(t, ieee)
		producer := s.dialT(t, ieee)
		end := l.end()
		// The long poll and a keepalive behind it, in one write: the
		// keepalive's reply must wait for the poll's.
		poller.send(controlFrame(ieee, codeFetchBatches, fetchBatchesPayload(topic, end, 1<<20, 2000)), keepaliveFrame(ieee))
		// Give the poll a moment to start waiting; the outcome does not
		// depend on it.
		time.Sleep(100 * time.Millisecond)
		nb := batch{Topic: topic, ID: 1, Timestamp: base + n*1000 + 1, Records: 3, Data: randomBytes(rng, 777), AckOffset: true}
		if off := ingest(t, producer, nb); off != end {
			t.Fatalf("extended ack offset %d, want %d", off, end)
		}
		l.add(nb)
		p, ok := expectControl(t, "long poll", poller.recv(), codeBatchesResponse)
		if !ok {
			t.FailNow()
		}
		r, err := decodeBatchesReply(p)
		if err != nil {
			t.Fatal(err)
		}
		if r.Start != end || r.Next != end+777 || r.Batches != 1 || r.Records != 3 || !bytes.Equal(r.Data, nb.Data) {
			t.Errorf("long poll returned start %d next %d batches %d records %d (%d bytes); want the new batch at %d",
				r.Start, r.Next, r.Batches, r.Records, len(r.Data), end)
		}
		expectBytes(t, "keepalive behind the long poll", poller.recv(), keepaliveFrame(ieee))

		// A long poll nobody feeds ends empty at the end.
		r = fetchBatches(t, poller, topic, l.end(), 1<<20, 100)
		if r.Start != l.end() || r.Next != l.end() || r.Batches != 0 || r.N != 0 {
			t.Errorf("unfed long poll: %+v", r)
		}
	})
}

// mixedPipeline sends 2,000 requests of every kind in one pipeline, cut
// into writes of random sizes so that frames arrive split anywhere, and
// checks every reply, in order, against what the log l of topic says.
// Large fetches take the server's zero-copy path between ordinary replies.
func mixedPipeline(t *testing.T, s *server, topic uint32, l *topicLog, rng *rand.Rand) {
	c := s.dialT(t, ieee)
	side := createTopic(t, c, "pipeline-side").ID
	var sideLen uint64
	type step struct {
		req   []byte
		check func(f frame) error
	}
	exact := func(want []byte) func(frame) error {
		return func(f frame) error {
			if !bytes.Equal(f.Raw, want) {
				w, _ := readFrame(bytes.NewReader(want), ieee)
				return fmt.Errorf("got %s, want %s", f.describe(), w.describe())
			}
			return nil
		}
	}
	end := l.end()
	steps := make([]step, 0, 2000)
	for i := range 2000 {
		switch rng.IntN(7) {
		case 0:
			steps = append(steps, step{keepaliveFrame(ieee), exact(keepaliveFrame(ieee))})
		case 1:
			off := uint64(rng.IntN(int(end)))
			m := uint32(1 + rng.IntN(256<<10))
			data := l.bytes[off:min(off+uint64(m), end)]
			steps = append(steps, step{controlFrame(ieee, codeFetch, fetchPayload(topic, off, m)),
				exact(controlFrame(ieee, codeFetchResponse, fetchResponsePayload(off+uint64(len(data)), data)))})
		case 2:
			data := randomBytes(rng, 1+rng.IntN(4096))
			b := batch{Topic: side, ID: uint64(i), Records: 1, Data: data, AckOffset: rng.IntN(2) == 0}
			want := ackFrame(ieee, b.ID)
			if b.AckOffset {
				want = ackOffsetFrame(ieee, b.ID, sideLen)
			}
			sideLen += uint64(len(data))
			steps = append(steps, step{ingestFrame(ieee, b), exact(want)})
		case 3:
			off := uint64(rng.IntN(int(end)))
			m := uint32(rng.IntN(64 << 10))
			steps = append(steps, step{controlFrame(ieee, codeFetchBatches, fetchBatchesPayload(topic, off, m, 0)), func(f frame) error {
				if f.Flags != flagControl || f.BatchID != codeBatchesResponse {
					return fmt.Errorf("got %s, want a BatchesResponse", f.describe())
				}
				r, err := decodeBatchesReply(f.Payload)
				if err != nil {
					return err
				}
				return batchesError(r, l, off, m)
			}})
		case 4:
			k := rng.IntN(len(l.batches))
			steps = append(steps, step{controlFrame(ieee, codeOffsetForTime, offsetForTimePayload(topic, l.batches[k].Timestamp)),
				exact(controlFrame(ieee, codeOffsetResponse, le64(le64(le64(nil, l.offsets[k]), 0), end)))})
		case 5:
			steps = append(steps, step{controlFrame(ieee, codeFetch, fetchPayload(999, 0, 1)), exact(errorFrame(ieee, "Topic 999 not found"))})
		case 6:
			steps = append(steps, step{controlFrame(ieee, codeSubscribe, subscribePayload(topic, uint64(i), 1, uint64(i))),
				exact(controlFrame(ieee, codeSubscribeAck, pairPayload(uint64(i), uint64(i))))})
		}
	}
	var stream []byte
	for _, st := range steps {
		stream = append(stream, st.req...)
	}
	wrng := newRand(rng.Uint64())
	werr := make(chan error, 1)
	go func() {
		c.nc.SetWriteDeadline(time.Now().Add(2 * time.Minute))
		for len(stream) > 0 {
			n := 1 + wrng.IntN(4096)
			if wrng.IntN(3) == 0 {
				n = 1 + wrng.IntN(16)
			}
			n = min(n, len(stream))
			if _, err := c.nc.Write(stream[:n]); err != nil {
				werr <- err
				return
			}
			stream = stream[n:]
		}
		werr <- nil
	}()
	for i, st := range steps {
		f, err := c.next()
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i, len(steps), err)
		}
		if err := st.check(f); err != nil {
			t.Fatalf("reply %d of %d: %v", i, len(steps), err)
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if got := logEnd(t, c, side); got != sideLen {
		t.Errorf("side topic ends at %d, want %d", got, sideLen)
	}
}
