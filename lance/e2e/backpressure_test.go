package e2e

// Backpressure under small limits (docs/server.md "Limits", docs/LWP.md
// §8): producers that pipeline far more than their budget without reading
// must be slowed down, told so once per stall, and still get every ack in
// order; the server's memory must stay bounded by the limits, and other
// clients must keep being served meanwhile.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bpRSS returns the resident set size of process pid in bytes.
func bpRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS line %q: %v", line, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// bpStream is what one pipelining producer saw.
type bpStream struct {
	batches []batch
	offsets []uint64 // from the extended acks
	// bpAt holds, for each backpressure frame, how many acks came
	// before it.
	bpAt []int
	err  error
}

// bpProduce writes every batch of st without reading, and only once all
// of them are written (or the writes stall, see release) reads the
// replies: acks in order, with backpressure frames anywhere between them.
func bpProduce(addr string, st *bpStream, release <-chan struct{}) {
	c, err := dialErr(addr, ieee)
	if err != nil {
		st.err = err
		return
	}
	defer c.close()
	written := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(c.nc, 256<<10)
		c.nc.SetWriteDeadline(time.Now().Add(2 * time.Minute))
		for _, b := range st.batches {
			if _, err := w.Write(ingestFrame(ieee, b)); err != nil {
				written <- err
				return
			}
		}
		written <- w.Flush()
	}()
	// Not reading for a while: until everything is written, or until the
	// test says so (a server that stops reading until its acks are
	// read would otherwise hang both sides).
	var werr error
	select {
	case werr = <-written:
		written = nil
	case <-release:
	}
	if werr != nil {
		st.err = fmt.Errorf("writing: %w", werr)
		return
	}
	acks := 0
	for acks < len(st.batches) {
		c.nc.SetReadDeadline(time.Now().Add(replyTimeout))
		f, err := readFrame(c.r, ieee)
		if err != nil {
			st.err = fmt.Errorf("after %d of %d acks: %w", acks, len(st.batches), err)
			return
		}
		if f.Flags&flagBackpressure != 0 {
			if !bytes.Equal(f.Raw, encode(ieee, frame{Flags: flagBackpressure})) {
				st.err = fmt.Errorf("malformed backpressure frame % X", f.Raw)
				return
			}
			st.bpAt = append(st.bpAt, acks)
			continue
		}
		off, err := checkAck(f, st.batches[acks])
		if err != nil {
			st.err = fmt.Errorf("reply %d: %w", acks, err)
			return
		}
		st.offsets = append(st.offsets, off)
		acks++
	}
	if written != nil {
		if err := <-written; err != nil {
			st.err = fmt.Errorf("writing: %w", err)
		}
	}
}

// TestBackpressure floods one topic from two pipelining producers with
// 64 KiB frames, a 256 KiB connection budget and a 128 KiB topic queue,
// while a one-at-a-time producer writes to the same topic and an observer
// uses another topic.
func TestBackpressure(t *testing.T) {
	t.Parallel()
	const (
		maxFrame    = 64 << 10
		connBudget  = 256 << 10
		topicQueue  = 128 << 10
		batchBytes  = 48 << 10
		perProducer = 256 // 12 MiB each, about 48 connection budgets
		producers   = 2
		serialCount = 40
	)
	s := startServer(t,
		"--limits-max-frame", strconv.Itoa(maxFrame),
		"--limits-conn-buffer-bytes", "256KiB",
		"--limits-topic-queue-bytes", "128KiB",
	)
	pid := s.cmd.Process.Pid
	// Everything the limits let the server hold for these connections,
	// plus a generous allowance for the runtime, pools and page tables.
	conns := producers + 4 // and the setup, one-at-a-time, observer and reader connections
	bound := int64(conns*(connBudget+maxFrame) + 2*topicQueue + 200<<20)

	setup := s.dial(ieee)
	topic := createTopic(t, setup, "flood").ID
	quiet := createTopic(t, setup, "quiet").ID
	quietData := []byte("the quiet topic answers")
	ingest(t, setup, batch{Topic: quiet, ID: 1, Records: 1, Data: quietData})

	rng := newRand(seed(t))
	base := randomBytes(rng, batchBytes)
	streams := make([]*bpStream, producers)
	for p := range streams {
		st := &bpStream{}
		for i := range perProducer {
			d := bytes.Clone(base)
			binary.LittleEndian.PutUint32(d, uint32(p))
			binary.LittleEndian.PutUint32(d[4:], uint32(i))
			st.batches = append(st.batches, batch{Topic: topic, ID: uint64(i + 1), Records: 3, Data: d, AckOffset: true})
		}
		streams[p] = st
	}

	release := make(chan struct{})
	var wg sync.WaitGroup
	for _, st := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bpProduce(s.addr, st, release)
		}()
	}
	flooding := make(chan struct{})
	go func() {
		wg.Wait()
		close(flooding)
	}()

	// A producer with one batch in flight at a time, on the flooded
	// topic: it is slowed down like the others but never gets a
	// backpressure frame (docs/LWP.md §8).
	serial := &bpStream{}
	var serialDone atomic.Bool
	serialErr := make(chan error, 1)
	go func() {
		defer serialDone.Store(true)
		c, err := dialErr(s.addr, ieee)
		if err != nil {
			serialErr <- err
			return
		}
		defer c.close()
		for i := range serialCount {
			b := batch{Topic: topic, ID: uint64(1000 + i), Records: 1, Data: bytes.Repeat([]byte{byte(i)}, 1000+i), AckOffset: true}
			serial.batches = append(serial.batches, b)
			if err := c.sendErr(ingestFrame(ieee, b)); err != nil {
				serialErr <- err
				return
			}
			f, err := c.next()
			if err != nil {
				serialErr <- fmt.Errorf("batch %d: %w", i, err)
				return
			}
			off, err := checkAck(f, b)
			if err != nil {
				serialErr <- fmt.Errorf("batch %d: %w", i, err)
				return
			}
			serial.offsets = append(serial.offsets, off)
		}
		if c.backpressure != 0 {
			serialErr <- fmt.Errorf("got %d backpressure frames with never more than one batch in flight", c.backpressure)
			return
		}
		serialErr <- nil
	}()

	// The observer keeps asking while the flood runs; every question must
	// be answered, and the server's memory must stay under the bound.
	obs := s.dial(ieee)
	var peak int64
	answered := 0
	sample := func() {
		rss, err := bpRSS(pid)
		if err != nil {
			t.Fatal(err)
		}
		peak = max(peak, rss)
	}
	stallRelease := time.AfterFunc(20*time.Second, func() { close(release) })
observe:
	for {
		sample()
		expectControl(t, "GetClusterStatus during the flood", obs.control(codeGetClusterStatus, nil), codeClusterStatusResponse)
		if r := fetch(t, obs, quiet, 0, 1024); string(r.Data) != string(quietData) {
			t.Fatalf("Fetch of the quiet topic during the flood: %q", r.Data)
		}
		answered++
		select {
		case <-flooding:
			if serialDone.Load() {
				break observe
			}
		default:
		}
	}
	stallRelease.Stop()
	sample()
	if err := <-serialErr; err != nil {
		t.Fatalf("one-at-a-time producer: %v", err)
	}
	t.Logf("observer answered %d times during the flood; peak RSS %.1f MiB, bound %.1f MiB",
		answered, float64(peak)/(1<<20), float64(bound)/(1<<20))
	if peak > bound {
		t.Errorf("lance's RSS reached %d bytes, over the bound %d derived from the limits", peak, bound)
	}

	bpTotal := 0
	for p, st := range streams {
		if st.err != nil {
			t.Fatalf("producer %d: %v", p, st.err)
		}
		for _, at := range st.bpAt {
			// The frame goes out in the place of the ingest that found
			// the budget full, after the replies to earlier requests:
			// at least one earlier ingest was still unacked then, and
			// the one that stalled is acked after it.
			if at < 1 || at >= len(st.batches) {
				t.Errorf("producer %d: backpressure frame after %d acks of %d; want it between two ingests", p, at, len(st.batches))
			}
		}
		t.Logf("producer %d: %d backpressure frames, after acks %v", p, len(st.bpAt), st.bpAt)
		bpTotal += len(st.bpAt)
		for i := 1; i < len(st.offsets); i++ {
			if st.offsets[i] <= st.offsets[i-1] {
				t.Fatalf("producer %d: batch %d got offset %d after %d", p, i, st.offsets[i], st.offsets[i-1])
			}
		}
	}
	if bpTotal == 0 {
		t.Errorf("no backpressure frame reached producers that each pipelined %d bytes against a %d-byte budget", perProducer*batchBytes, connBudget)
	}
	if _, body, err := s.get("/metrics"); err == nil {
		if v, ok := metricValue(body, "lance_backpressure_events_total"); !ok || int(v) < bpTotal {
			t.Errorf("lance_backpressure_events_total %v (found %v), want at least %d", v, ok, bpTotal)
		}
	}

	// Every acked batch is in the log at its offset, and nothing else is.
	all := append([]*bpStream{serial}, streams...)
	total := 0
	for _, st := range all {
		for _, b := range st.batches {
			total += len(b.Data)
		}
	}
	reader := s.dial(ieee)
	end := logEnd(t, reader, topic)
	if end != uint64(total) {
		t.Fatalf("log end %d, want %d (the bytes of every acked batch)", end, total)
	}
	log := readLog(t, reader, topic, 0, end, 4<<20)
	covered := 0
	for _, st := range all {
		for i, b := range st.batches {
			off := st.offsets[i]
			if off+uint64(len(b.Data)) > end || !bytes.Equal(log[off:off+uint64(len(b.Data))], b.Data) {
				t.Fatalf("batch %d acked at offset %d is not in the log there", b.ID, off)
			}
			covered += len(b.Data)
		}
	}
	if covered != total {
		t.Fatalf("acked batches cover %d bytes of %d", covered, total)
	}
	if !s.running() {
		t.Fatal("lance is not running at the end")
	}
}
