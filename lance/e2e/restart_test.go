package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// listTopics returns the topics ListTopics reports, by id.
func listTopics(t testing.TB, c *client) map[uint32]topicInfo {
	t.Helper()
	p, ok := expectControl(t, "ListTopics", c.control(codeListTopics, nil), codeTopicResponse)
	if !ok {
		t.FailNow()
	}
	m := decodeJSON(t, "ListTopics", p)
	list, _ := m["topics"].([]any)
	out := map[uint32]topicInfo{}
	for _, e := range list {
		o, _ := e.(map[string]any)
		ti := parseTopic(t, "ListTopics entry", o)
		out[ti.ID] = ti
	}
	return out
}

// TestRestart stops a server with SIGTERM (exit code 0), starts it again on
// the same directory, and checks that topics, bytes, batch boundaries,
// timestamps and committed offsets all survived, and that new writes
// continue where the log ended.
func TestRestart(t *testing.T) {
	t.Parallel()
	rng := newRand(seed(t))
	s := startServer(t)
	c := s.dial(ieee)
	names := []string{"restart-a", "restart-b"}
	ids := make([]uint32, len(names))
	logs := make([]*topicLog, len(names))
	base := uint64(time.Now().UnixNano())
	for i, name := range names {
		ids[i] = createTopic(t, c, name).ID
		logs[i] = new(topicLog)
		for k := range 400 {
			logs[i].add(batch{
				Topic: ids[i], ID: uint64(k + 1), Timestamp: base + uint64(k)*10_000,
				Records: 1 + rng.Uint32N(9), Data: randomBytes(rng, 1+rng.IntN(3000)), AckOffset: k%2 == 0,
			})
		}
		pipeline(t, c, logs[i].batches, logs[i].offsets, 0)
	}
	// Committed offsets: two consumers on the first topic, one on the
	// second, one of them committed twice.
	commits := []struct {
		topic    uint32
		consumer uint64
		offset   uint64
	}{
		{ids[0], 1, logs[0].offsets[100]},
		{ids[0], 2, logs[0].offsets[7]},
		{ids[1], 1, logs[1].offsets[300]},
		{ids[0], 1, logs[0].offsets[200]},
	}
	for _, cm := range commits {
		expectBytes(t, "CommitOffset", c.control(codeCommitOffset, commitPayload(cm.topic, cm.consumer, cm.offset)),
			controlFrame(ieee, codeCommitAck, pairPayload(cm.consumer, cm.offset)))
	}
	wantCommitted := map[[2]uint64]uint64{}
	for _, cm := range commits {
		wantCommitted[[2]uint64{uint64(cm.topic), cm.consumer}] = cm.offset
	}
	// A deleted topic must stay deleted.
	gone := createTopic(t, c, "restart-gone")
	ingest(t, c, batch{Topic: gone.ID, ID: 1, Data: []byte("soon gone")})
	if _, ok := expectControl(t, "DeleteTopic", c.control(codeDeleteTopic, topicIDPayload(gone.ID)), codeTopicResponse); !ok {
		t.FailNow()
	}
	topicsBefore := listTopics(t, c)
	c.close()

	verify := func(t *testing.T, c *client) {
		t.Helper()
		if got := listTopics(t, c); len(got) != len(topicsBefore) {
			t.Errorf("after restart ListTopics has %d topics, before %d", len(got), len(topicsBefore))
		} else {
			for id, ti := range topicsBefore {
				if got[id] != ti {
					t.Errorf("topic %d after restart: %+v, before %+v", id, got[id], ti)
				}
			}
		}
		expectError(t, c.d, "GetTopic of the deleted topic", c.control(codeGetTopic, topicIDPayload(gone.ID)), "Topic not found")
		expectError(t, c.d, "ingest to the deleted topic", c.call(ingestFrame(c.d, batch{Topic: gone.ID, ID: 2, Data: []byte("x")})), "Unknown topic")
		for i, id := range ids {
			l := logs[i]
			if end := logEnd(t, c, id); end != l.end() {
				t.Fatalf("topic %s: end %d after restart, want %d", names[i], end, l.end())
			}
			if got := readLog(t, c, id, 0, l.end(), 1<<20, 333, 65536); !bytes.Equal(got, l.bytes) {
				t.Fatalf("topic %s: log differs after restart: %s", names[i], firstDiff(got, l.bytes))
			}
			expectBatches(t, c, id, l, 1, 10000, 1<<20)
			expectOffsetsForTime(t, c, id, l, rng, 20)
		}
		for key, off := range wantCommitted {
			expectBytes(t, fmt.Sprintf("Subscribe(topic %d, 0, consumer %d)", key[0], key[1]),
				c.control(codeSubscribe, subscribePayload(uint32(key[0]), 0, 1, key[1])),
				controlFrame(c.d, codeSubscribeAck, pairPayload(key[1], off)))
		}
		expectBytes(t, "consumer without a commit", c.control(codeSubscribe, subscribePayload(ids[1], 0, 1, 2)),
			controlFrame(c.d, codeSubscribeAck, pairPayload(2, 0)))
	}

	// Connections the drain must not wait for: an idle one, one stopped
	// inside a frame, and a long poll that would wait longer than the
	// drain's grace period (max_wait_ms is capped at 30 s, the grace is
	// 25 s): each one must end, or the exit code is not 0.
	idle := s.dial(ieee)
	expectBytes(t, "idle connection", idle.call(keepaliveFrame(ieee)), keepaliveFrame(ieee))
	half := s.dial(ieee)
	half.send(ingestFrame(ieee, batch{Topic: ids[0], ID: 1, Data: []byte("half a frame")})[:50])
	poller := s.dial(ieee)
	// The keepalive and the poll go out in one write, so they arrive in
	// one read: the keepalive's reply shows that the poll was read too.
	poller.send(keepaliveFrame(ieee), controlFrame(ieee, codeFetchBatches, fetchBatchesPayload(ids[1], logs[1].end(), 1<<20, 60_000)))
	expectBytes(t, "keepalive before the long poll", poller.recv(), keepaliveFrame(ieee))

	if code := s.stop(); code != 0 {
		t.Fatalf("lance exited with code %d after SIGTERM, want 0", code)
	}
	if f, err := poller.next(); err == nil {
		if p, ok := expectControl(t, "long poll cut by the drain", f, codeBatchesResponse); ok {
			r, err := decodeBatchesReply(p)
			if err != nil || r.Start != logs[1].end() || r.Batches != 0 || r.N != 0 {
				t.Errorf("long poll cut by the drain: %+v %v, want an empty reply at %d", r, err, logs[1].end())
			}
		}
	} else {
		t.Errorf("long poll cut by the drain got no reply: %v", err)
	}
	s.restart()
	t.Run("FirstRestart", func(t *testing.T) {
		// A different dialect after the restart: nothing on disk depends
		// on the one used to write.
		c := s.dialT(t, castagnoli)
		verify(t, c)
		// Writes continue at the old end.
		for i, id := range ids {
			nb := batch{Topic: id, ID: 9000, Timestamp: base + 10_000_000, Records: 1, Data: randomBytes(rng, 100), AckOffset: true}
			if off := ingest(t, c, nb); off != logs[i].end() {
				t.Errorf("topic %s: first batch after restart at %d, want %d", names[i], off, logs[i].end())
			}
			logs[i].add(nb)
		}
		expectBytes(t, "commit after restart", c.control(codeCommitOffset, commitPayload(ids[1], 3, logs[1].offsets[400])),
			controlFrame(castagnoli, codeCommitAck, pairPayload(3, logs[1].offsets[400])))
		wantCommitted[[2]uint64{uint64(ids[1]), 3}] = logs[1].offsets[400]
		nt := createTopic(t, c, "restart-new")
		if _, taken := topicsBefore[nt.ID]; taken || nt.ID == gone.ID {
			t.Errorf("new topic after restart got id %d, which topic %+v already has", nt.ID, topicsBefore[nt.ID])
		}
		topicsBefore[nt.ID] = nt
	})

	if code := s.stop(); code != 0 {
		t.Fatalf("second SIGTERM: exit code %d, want 0", code)
	}
	s.restart()
	t.Run("SecondRestart", func(t *testing.T) {
		verify(t, s.dialT(t, ieee))
	})
}

// Kill test payloads describe themselves, so that a log read back after a
// crash can be cut into batches without trusting the server:
//
//	+0  "E2EK"
//	+4  u32 total length of the payload
//	+8  u32 round, +12 u32 producer, +16 u64 sequence
//	+24 random bytes
const killMagic = "E2EK"

const killHeader = 24

type ackedBatch struct {
	topic  uint32
	offset uint64
	sum    [32]byte
	size   int
}

// loadState is what the producers of all rounds share.
type loadState struct {
	mu    sync.Mutex
	sent  map[[32]byte]uint32 // payload hash -> topic, for every batch sent
	acked []ackedBatch
	// errs are failures seen before the kill (replies that were not
	// acks, bad extended acks).
	errs []string
}

func (st *loadState) fail(format string, args ...any) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.errs) < 20 {
		st.errs = append(st.errs, fmt.Sprintf(format, args...))
	}
}

// produce pipelines batches on one connection until it breaks or stop is
// closed, with at most window batches waiting for their acks.
func produce(addr string, st *loadState, topics []uint32, round, id uint32, seed uint64, stop <-chan struct{}, ackCount *atomic.Int64, killed *atomic.Bool) {
	c, err := dialErr(addr, ieee)
	if err != nil {
		st.fail("producer %d: dial: %v", id, err)
		return
	}
	defer c.close()
	rng := newRand(seed)
	const window = 32
	type pending struct {
		b   batch
		sum [32]byte
	}
	inflight := make(chan pending, window)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer c.close() // unblocks the writer
		for p := range inflight {
			f, err := c.next()
			if err != nil {
				if !killed.Load() {
					st.fail("producer %d: reading an ack before the kill: %v", id, err)
				}
				return
			}
			off, err := checkAck(f, p.b)
			if err != nil {
				st.fail("producer %d: %v", id, err)
				return
			}
			st.mu.Lock()
			st.acked = append(st.acked, ackedBatch{topic: p.b.Topic, offset: off, sum: p.sum, size: len(p.b.Data)})
			st.mu.Unlock()
			ackCount.Add(1)
		}
	}()
	defer func() {
		close(inflight)
		<-readerDone
	}()
	for seq := uint64(1); ; seq++ {
		size := killHeader + rng.IntN(16<<10)
		data := randomBytes(rng, size)
		copy(data, killMagic)
		binary.LittleEndian.PutUint32(data[4:], uint32(size))
		binary.LittleEndian.PutUint32(data[8:], round)
		binary.LittleEndian.PutUint32(data[12:], id)
		binary.LittleEndian.PutUint64(data[16:], seq)
		b := batch{Topic: topics[rng.IntN(len(topics))], ID: seq, Timestamp: uint64(time.Now().UnixNano()), Records: 1, Data: data, AckOffset: true}
		p := pending{b: b, sum: sha256.Sum256(data)}
		st.mu.Lock()
		st.sent[p.sum] = b.Topic
		st.mu.Unlock()
		select {
		case inflight <- p:
		case <-stop:
			return
		case <-readerDone:
			return
		}
		if err := c.sendErr(ingestFrame(ieee, b)); err != nil {
			return
		}
	}
}

// commitLoad commits ever higher offsets for one consumer, one request at
// a time, until the connection breaks or stop is closed. acked is the
// last offset the server confirmed, sent the last one it was sent.
type commitLoad struct {
	consumer    uint64
	acked, sent atomic.Uint64
}

func (cl *commitLoad) run(addr string, st *loadState, topic uint32, stop <-chan struct{}, killed *atomic.Bool) {
	c, err := dialErr(addr, ieee)
	if err != nil {
		st.fail("committer: dial: %v", err)
		return
	}
	defer c.close()
	for k := uint64(1); ; k++ {
		select {
		case <-stop:
			return
		default:
		}
		cl.sent.Store(k)
		if c.sendErr(controlFrame(ieee, codeCommitOffset, commitPayload(topic, cl.consumer, k))) != nil {
			return
		}
		f, err := c.next()
		if err != nil {
			if !killed.Load() {
				st.fail("committer: reading a CommitAck before the kill: %v", err)
			}
			return
		}
		if !bytes.Equal(f.Raw, controlFrame(ieee, codeCommitAck, pairPayload(cl.consumer, k))) {
			st.fail("committer: commit %d answered with %s", k, f.describe())
			return
		}
		cl.acked.Store(k)
	}
}

// TestKillUnderLoad kills the server with SIGKILL while several producers
// pipeline batches into two topics and a consumer commits offsets,
// restarts it, and checks that every acknowledged batch is in the log,
// byte for byte, at the offset its extended ack gave, that the log holds
// nothing but whole batches that were sent, and that every confirmed
// commit survived. It repeats for -e2e.killrounds rounds on the same
// directory, then does one more round that ends with SIGTERM instead (a
// drain under load: exit code 0, nothing acked lost).
func TestKillUnderLoad(t *testing.T) {
	t.Parallel()
	rng := newRand(seed(t))
	s := startServer(t)
	c := s.dial(ieee)
	topics := []uint32{createTopic(t, c, "load-a").ID, createTopic(t, c, "load-b").ID}
	c.close()
	st := &loadState{sent: map[[32]byte]uint32{}}
	var commits []*commitLoad
	const producers = 4

	for round := 1; round <= *killRounds+1; round++ {
		graceful := round == *killRounds+1
		var ackCount atomic.Int64
		var killed atomic.Bool
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for p := range producers {
			pseed := rng.Uint64()
			wg.Go(func() {
				produce(s.addr, st, topics, uint32(round), uint32(p), pseed, stop, &ackCount, &killed)
			})
		}
		cl := &commitLoad{consumer: uint64(round)}
		commits = append(commits, cl)
		wg.Go(func() { cl.run(s.addr, st, topics[0], stop, &killed) })

		threshold := int64(200 + rng.IntN(1300))
		deadline := time.Now().Add(30 * time.Second)
		for ackCount.Load() < threshold && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if ackCount.Load() < threshold {
			close(stop)
			wg.Wait()
			t.Fatalf("round %d: only %d acks in 30 s, wanted %d before the kill; errors: %v", round, ackCount.Load(), threshold, st.errs)
		}
		time.Sleep(time.Duration(rng.IntN(5000)) * time.Microsecond)
		killed.Store(true)
		how := "SIGKILL"
		if graceful {
			how = "SIGTERM"
			if code := s.stop(); code != 0 {
				t.Errorf("round %d: SIGTERM under load: exit code %d, want 0", round, code)
			}
		} else {
			s.kill()
		}
		close(stop)
		wg.Wait()
		st.mu.Lock()
		errs := st.errs
		st.mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("round %d: clients saw errors before the %s:\n%v", round, how, errs)
		}
		t.Logf("round %d: %s after %d acks this round, %d in all; %d commits confirmed", round, how, ackCount.Load(), len(st.acked), cl.acked.Load())

		s.restart()
		verifyAfterKill(t, s, st, topics, round)
		c := s.dial(ieee)
		for _, cl := range commits {
			f := c.control(codeSubscribe, subscribePayload(topics[0], 0, 1, cl.consumer))
			p, ok := expectControl(t, "Subscribe", f, codeSubscribeAck)
			if !ok || len(p) != 16 {
				t.Fatalf("round %d: Subscribe: %s", round, f.describe())
			}
			got, acked, sent := le64at(p, 8), cl.acked.Load(), cl.sent.Load()
			if got != acked && got != sent {
				t.Errorf("round %d: consumer %d resumes at %d; the last confirmed commit was %d (last sent %d)", round, cl.consumer, got, acked, sent)
			}
		}
		c.close()
	}
	if code := s.stop(); code != 0 {
		t.Errorf("final SIGTERM: exit code %d, want 0", code)
	}
}

func verifyAfterKill(t *testing.T, s *server, st *loadState, topics []uint32, round int) {
	t.Helper()
	c := s.dial(ieee)
	defer c.close()
	found := map[[32]byte]uint64{} // hash -> offset, for batches in the logs
	for _, topic := range topics {
		end := logEnd(t, c, topic)
		off := uint64(0)
		for off < end {
			r := fetchBatches(t, c, topic, off, 1<<20, 0)
			if r.Start != off || r.Batches == 0 {
				t.Fatalf("round %d, topic %d: FetchBatches(%d) returned start %d with %d batches", round, topic, off, r.Start, r.Batches)
			}
			// Cut the data into the payloads it must consist of.
			data, at, n := r.Data, r.Start, uint32(0)
			for len(data) > 0 {
				if len(data) < killHeader || string(data[:4]) != killMagic {
					t.Fatalf("round %d, topic %d: bytes at offset %d are not the start of a sent batch: % X", round, topic, at, data[:min(len(data), 32)])
				}
				size := int(binary.LittleEndian.Uint32(data[4:]))
				if size < killHeader || size > len(data) {
					t.Fatalf("round %d, topic %d: batch at %d claims %d bytes, %d left in the reply", round, topic, at, size, len(data))
				}
				sum := sha256.Sum256(data[:size])
				if tp, ok := st.sent[sum]; !ok || tp != topic {
					t.Fatalf("round %d, topic %d: the %d bytes at offset %d are no batch sent to this topic (known %v, topic %d)", round, topic, size, at, ok, tp)
				}
				if prev, dup := found[sum]; dup {
					t.Fatalf("round %d, topic %d: batch at %d is also at %d", round, topic, at, prev)
				}
				found[sum] = at
				data, at, n = data[size:], at+uint64(size), n+1
			}
			if n != r.Batches {
				t.Fatalf("round %d, topic %d: reply at %d counts %d batches, its data holds %d", round, topic, off, r.Batches, n)
			}
			off = r.Next
		}
	}
	lost := 0
	for _, a := range st.acked {
		off, ok := found[a.sum]
		if !ok || off != a.offset {
			lost++
			if lost <= 10 {
				t.Errorf("round %d: acked batch (topic %d, offset %d, %d bytes) is missing or elsewhere (found %v at %d)", round, a.topic, a.offset, a.size, ok, off)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("round %d: %d of %d acked batches lost", round, lost, len(st.acked))
	}
	t.Logf("round %d: all %d acked batches present; %d batches in the logs", round, len(st.acked), len(found))
}
