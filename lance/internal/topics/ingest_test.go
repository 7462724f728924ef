package topics

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lance-go/lance/lnc-io/topiclog"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
)

type acked struct {
	off  uint64
	data []byte
}

// TestConcurrentIngest: many submitters on several topics. Every ingest
// completes once, with an offset no other batch of its topic got, in
// submission order per submitter; the topic's batches tile its log
// exactly; the data reads back, also after a reopen.
func TestConcurrentIngest(t *testing.T) {
	const (
		ntopics    = 3
		submitters = 12
		perSub     = 60
	)
	dir := t.TempDir()
	be := newBackend(t)
	opts := testOptions(vfs.OS(), be)
	opts.BatchBytes = 2048
	opts.QueueBytes = 4096
	opts.QueueLen = 8
	r := openRegistry(t, dir, opts)
	var tps []*Topic
	for i := range ntopics {
		tps = append(tps, mustCreate(t, r, fmt.Sprintf("t%d", i)))
	}

	var (
		mu   sync.Mutex
		got  = map[string][]acked{}
		wg   sync.WaitGroup
		errc = make(chan error, submitters)
	)
	for s := range submitters {
		wg.Go(func() {
			tp := tps[s%ntopics]
			in := NewIngest()
			var last uint64
			for i := range perSub {
				in.Reset()
				in.Data = payload(tp.Name(), s, i, 1+(s*31+i*17)%700)
				in.TimestampNS = uint64(i)
				in.RecordCount = 1
				if err := tp.Submit(context.Background(), in); err != nil {
					errc <- err
					return
				}
				select {
				case <-in.Done():
				case <-time.After(liveness):
					errc <- errors.New("an ingest never completed")
					return
				}
				if in.Err != nil {
					errc <- in.Err
					return
				}
				if i > 0 && in.Offset <= last {
					errc <- fmt.Errorf("submitter %d: offset %d after %d", s, in.Offset, last)
					return
				}
				last = in.Offset
				mu.Lock()
				got[tp.Name()] = append(got[tp.Name()], acked{in.Offset, in.Data})
				mu.Unlock()
			}
			select {
			case <-in.Done():
				errc <- errors.New("an ingest completed twice")
			default:
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	check := func(r *Registry) {
		for _, name := range []string{"t0", "t1", "t2"} {
			tp := r.ByName(name)
			as := slices.Clone(got[name])
			slices.SortFunc(as, func(a, b acked) int { return int(int64(a.off) - int64(b.off)) })
			var next uint64
			for _, a := range as {
				if a.off != next {
					t.Fatalf("topic %s: batch at %d, want %d (offsets overlap or leave a gap)", name, a.off, next)
				}
				next += uint64(len(a.data))
				readBack(t, tp, a.off, a.data)
			}
			if end := tp.Log().End(); end != next {
				t.Fatalf("topic %s: log ends at %d, batches at %d", name, end, next)
			}
		}
	}
	check(r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	check(openRegistry(t, dir, opts))
}

// TestChangedFiresAfterVisible: a channel taken from Changed before a
// commit is closed by it, and by then the data is readable.
func TestChangedFiresAfterVisible(t *testing.T) {
	r := openRegistry(t, t.TempDir(), testOptions(vfs.OS(), newBackend(t)))
	tp := mustCreate(t, r, "c")
	for i := range 5 {
		ch := tp.Changed()
		select {
		case <-ch:
			t.Fatal("Changed fired with nothing new")
		default:
		}
		end := tp.Log().End()
		data := payload("c", 0, i, 100)
		in := NewIngest()
		in.Data = data
		if err := tp.Submit(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(liveness):
			t.Fatal("Changed never fired")
		}
		if got := tp.Log().End(); got != end+uint64(len(data)) {
			t.Fatalf("Changed fired with the log ending at %d, want %d", got, end+uint64(len(data)))
		}
		readBack(t, tp, end, data)
		waitDone(t, in)
		if in.Err != nil || in.Offset != end {
			t.Fatalf("ingest: %d, %v", in.Offset, in.Err)
		}
	}
	// A failed batch makes nothing visible and wakes no one.
	ch := tp.Changed()
	if _, err := ingest(t, tp, nil); !errors.Is(err, topiclog.ErrEmptyBatch) {
		t.Fatalf("empty batch: %v", err)
	}
	select {
	case <-ch:
		t.Fatal("Changed fired for a batch that failed")
	default:
	}
	// Closing the topic wakes the waiters.
	if err := r.Delete(tp.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(liveness):
		t.Fatal("Delete did not wake Changed")
	}
}

// TestQueueFull holds the writer in its observer so that batches stay in
// the queue and charge its budget.
func TestQueueFull(t *testing.T) {
	be := newBackend(t)
	gate := newGate()
	opts := testOptions(vfs.OS(), be)
	opts.QueueBytes = 100
	opts.Observer = gate
	r := openRegistry(t, t.TempDir(), opts)
	defer gate.open()
	tp := mustCreate(t, r, "q")

	if tp.QueueFull(100) || tp.QueueFull(1000) {
		t.Fatal("an empty queue reports full (an oversized batch must pass an empty queue)")
	}
	first := NewIngest()
	first.Data = make([]byte, 40)
	if err := tp.Submit(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	gate.waitEntered(t) // the writer committed it and holds no bytes
	if tp.QueueFull(100) {
		t.Fatal("queue full while the writer holds no queued bytes")
	}
	queued := NewIngest()
	queued.Data = make([]byte, 60)
	if err := tp.Submit(context.Background(), queued); err != nil {
		t.Fatal(err)
	}
	if !tp.QueueFull(41) || !tp.QueueFull(1000) {
		t.Fatal("QueueFull misses 60 of 100 queued bytes")
	}
	if tp.QueueFull(40) {
		t.Fatal("40 bytes refused with 40 free")
	}
	// A Submit that does not fit waits; its context ends the wait and
	// it charges nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	blocked := NewIngest()
	blocked.Data = make([]byte, 50)
	if err := tp.Submit(ctx, blocked); !errors.Is(err, context.Canceled) {
		t.Fatalf("Submit over a full queue with a cancelled context: %v", err)
	}
	if tp.QueueFull(40) {
		t.Fatal("a failed Submit kept bytes of the queue")
	}
	// A waiting Submit gets in once the writer drains the queue.
	later := NewIngest()
	later.Data = make([]byte, 50)
	done := make(chan error, 1)
	go func() { done <- tp.Submit(context.Background(), later) }()
	gate.open()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(liveness):
		t.Fatal("a Submit waiting for queue space never got it")
	}
	for _, in := range []*Ingest{first, queued, later} {
		waitDone(t, in)
		if in.Err != nil {
			t.Fatal(in.Err)
		}
	}
	if tp.QueueFull(100) {
		t.Fatal("queue full after everything committed")
	}
}

func TestSubmitAfterDeleteAndClose(t *testing.T) {
	r := openRegistry(t, t.TempDir(), testOptions(vfs.OS(), newBackend(t)))
	a := mustCreate(t, r, "a")
	b := mustCreate(t, r, "b")
	if _, err := ingest(t, a, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(a.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest(t, a, []byte("x")); !errors.Is(err, ErrTopicGone) {
		t.Fatalf("Submit after Delete: %v", err)
	}
	if err := a.CommitOffset(1, 1); !errors.Is(err, ErrTopicGone) {
		t.Fatalf("CommitOffset after Delete: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest(t, b, []byte("x")); !errors.Is(err, ErrTopicGone) {
		t.Fatalf("Submit after Close: %v", err)
	}
}

// TestDeleteWithQueuedBatches: the writer is held while batches queue up
// (and more Submits wait for queue space); Delete must complete every one
// of them with an error, and nothing may hang.
func TestDeleteWithQueuedBatches(t *testing.T) {
	be := newBackend(t)
	gate := newGate()
	opts := testOptions(vfs.OS(), be)
	opts.Observer = gate
	opts.QueueLen = 4
	opts.QueueBytes = 1000
	r := openRegistry(t, t.TempDir(), opts)
	defer gate.open()
	tp := mustCreate(t, r, "d")

	first := NewIngest()
	first.Data = []byte("first")
	if err := tp.Submit(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	gate.waitEntered(t)

	// Four fill the queue; the rest wait in Submit, some for queue
	// bytes, some for a queue slot.
	const n = 12
	ins := make([]*Ingest, n)
	submitted := make(chan error, n)
	for i := range ins {
		ins[i] = NewIngest()
		ins[i].Data = payload("d", 0, i, 100+i)
		go func() { submitted <- tp.Submit(context.Background(), ins[i]) }()
	}
	// Delete only once the queue is full.
	deadline := time.Now().Add(liveness)
	for len(tp.q) < cap(tp.q) {
		if time.Now().After(deadline) {
			t.Fatal("the queue never filled")
		}
		runtime.Gosched()
	}
	deleted := make(chan error, 1)
	go func() { deleted <- r.Delete(tp.ID()) }()
	// Let the writer go only once the topic is marked deleted, so that
	// the queued batches meet the deletion.
	for !tp.deleted.Load() {
		if time.Now().After(deadline) {
			t.Fatal("Delete never marked the topic")
		}
		runtime.Gosched()
	}
	gate.open()
	select {
	case err := <-deleted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(liveness):
		t.Fatal("Delete hung on queued batches")
	}
	waitDone(t, first)
	if first.Err != nil {
		t.Fatalf("the batch committed before Delete: %v", first.Err)
	}
	accepted := 0
	for range n {
		err := <-submitted
		if err == nil {
			accepted++
		} else if !errors.Is(err, ErrTopicGone) {
			t.Fatalf("Submit during Delete: %v", err)
		}
	}
	failed := 0
	for _, in := range ins {
		select {
		case <-in.Done():
			if !errors.Is(in.Err, ErrTopicGone) {
				t.Fatalf("queued batch of a deleted topic: offset %d, %v", in.Offset, in.Err)
			}
			failed++
			select {
			case <-in.Done():
				t.Fatal("an ingest completed twice")
			default:
			}
		default:
		}
	}
	if failed != accepted {
		t.Fatalf("%d Submits were accepted, %d completed", accepted, failed)
	}
	if accepted == 0 {
		t.Fatal("no batch was queued when Delete came")
	}
}

// TestStorageFailure: once a topic's fsync fails, the ingest reports
// ErrWriteFailed, the registry reports the failure, and neither that
// topic nor another nor a new one accepts anything.
func TestStorageFailure(t *testing.T) {
	dir := t.TempDir()
	be := newBackend(t)
	ffs := faultfs.New(vfs.OS(), 1)
	fsys := dirRenameFS{ffs}
	// The observer holds the writer after a failed commit: what Failed
	// says then is what it says between the ingest's answer and anything
	// the writer does afterwards.
	obs := &failHold{release: make(chan struct{})}
	defer obs.open()
	opts := testOptions(fsys, be)
	opts.Observer = obs
	r := openRegistry(t, dir, opts)
	a := mustCreate(t, r, "a")
	b := mustCreate(t, r, "b")
	off, err := ingest(t, a, []byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed() != nil {
		t.Fatal(r.Failed())
	}

	ffs.FailSyncs(faultfs.Once().Only(func(name string) bool { return filepath.Base(filepath.Dir(name)) == "a" }))
	_, err = ingest(t, a, []byte("lost"))
	if !errors.Is(err, topiclog.ErrWriteFailed) || !errors.Is(err, faultfs.ErrInjected) {
		t.Fatalf("ingest over a failing fsync: %v", err)
	}
	// The failure is recorded before the ingest hears of it.
	if ferr := r.Failed(); !errors.Is(ferr, topiclog.ErrWriteFailed) {
		t.Fatalf("Failed() right after a failed ingest = %v", ferr)
	}
	obs.open()
	if _, err := ingest(t, a, []byte("after")); err == nil {
		t.Fatal("the failed topic accepted a batch")
	}
	if _, err := ingest(t, b, []byte("after")); !errors.Is(err, topiclog.ErrWriteFailed) {
		t.Fatalf("another topic after the failure: %v", err)
	}
	if _, err := r.Create("c", nil); !errors.Is(err, topiclog.ErrWriteFailed) {
		t.Fatalf("Create after the failure: %v", err)
	}
	// What was acknowledged is still served.
	readBack(t, a, off, []byte("before"))
}

// TestWritersStopOnClose: after Close, and after Delete, no writer
// goroutine of the registry is left.
func TestWritersStopOnClose(t *testing.T) {
	be := newBackend(t)
	ignore := goleak.IgnoreCurrent()
	r, err := Open(t.TempDir(), testOptions(vfs.OS(), be))
	if err != nil {
		t.Fatal(err)
	}
	var tps []*Topic
	for i := range 5 {
		tp := mustCreate(t, r, fmt.Sprintf("w%d", i))
		if _, err := ingest(t, tp, []byte("data")); err != nil {
			t.Fatal(err)
		}
		tps = append(tps, tp)
	}
	for _, tp := range tps[:2] {
		if err := r.Delete(tp.ID()); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore, ignoreBackendHelpers)
}

// failHold blocks the writer that reports a failed commit until open.
type failHold struct {
	once    sync.Once
	release chan struct{}
}

func (h *failHold) Committed(_ string, _ int, _ int64, _ time.Duration, err error) {
	if err != nil {
		<-h.release
	}
}

func (h *failHold) open() { h.once.Do(func() { close(h.release) }) }
