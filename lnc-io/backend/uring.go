package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/lance-go/lance/lnc-io/ioq"
	"github.com/lance-go/lance/lnc-io/uring"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// uringBackend runs requests on io_uring. Each worker goroutine is locked
// to its OS thread and owns one ring, created on that thread: no other
// goroutine touches the ring, so it needs no lock. A worker takes a batch
// of requests from the queue, turns all of them into SQEs, submits them in
// one io_uring_enter, and reaps every completion before it takes the next
// batch.
//
// Within a commit, the writes to a file and its fdatasync form one chain
// (IOSQE_IO_LINK), so the sync starts only after the writes completed. A
// chain the kernel breaks (a short write cancels what is linked behind
// it) or that reports ECANCELED is finished with system calls: positioned
// writes can be repeated safely.
type uringBackend struct {
	q          *ioq.Queue[request]
	threadInit func()
	wg         sync.WaitGroup // the workers; Close waits for them

	// fallbacks counts requests finished with system calls after the ring
	// broke a chain or failed, for tests and metrics.
	fallbacks atomic.Uint64

	direct directSet
}

func newURing(cfg Config) (Backend, error) {
	if err := Probe().Err; err != nil {
		return nil, err
	}
	entries := cfg.RingEntries
	if entries == 0 {
		entries = 256
	}
	n := cfg.Workers
	if n <= 0 {
		n = 1
	}
	b := &uringBackend{threadInit: cfg.ThreadInit}
	if err := b.direct.init(cfg, n); err != nil {
		return nil, err
	}
	b.q = ioq.New[request](cfg.Queue)
	started := make(chan error, n)
	b.wg.Add(n)
	for range n {
		go b.worker(entries, started)
	}
	var first error
	for range n {
		if err := <-started; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		b.Close()
		return nil, first
	}
	return b, nil
}

func (b *uringBackend) Kind() Kind { return KindURing }

func (b *uringBackend) Do(ctx context.Context, c *Commit) error {
	if c.done == nil {
		c.done = make(chan struct{}, 1)
	}
	if err := submit(ctx, b.q, request{commit: c}, c.done); err != nil {
		return err
	}
	return c.err
}

func (b *uringBackend) ReadAt(ctx context.Context, r *Read) (int, error) {
	if r.done == nil {
		r.done = make(chan struct{}, 1)
	}
	if err := submit(ctx, b.q, request{read: r}, r.done); err != nil {
		return 0, err
	}
	return r.n, r.err
}

// DirectBuffers returns the pool of aligned buffers, which every ring
// registers as fixed buffers before its next request.
func (b *uringBackend) DirectBuffers() (*DirectPool, error) { return b.direct.get() }

// Close stops taking requests, lets the workers finish what is queued,
// closes the rings and waits for the workers.
func (b *uringBackend) Close() error {
	b.q.Close()
	b.wg.Wait()
	b.direct.close()
	return nil
}

// Fallbacks returns how many requests were finished with system calls.
func (b *uringBackend) Fallbacks() uint64 { return b.fallbacks.Load() }

// opKind is what an SQE of a round does.
type opKind uint8

const (
	opWrite opKind = iota
	opSync
	opRead
)

// op is one SQE of a round; its index is the SQE's user data.
type op struct {
	kind opKind
	req  int // index in the round's batch
	file vfs.File
	off  int64
	n    int // bytes asked for (writes, reads)
	res  int32
}

// reqState is the outcome of one request of the round.
type reqState struct {
	err     error // first error, final
	redo    bool  // a chain was broken: finish with system calls
	readN   int
	pending bool // still owes its done signal
}

// ringWorker is the state of one worker; only its goroutine uses it.
type ringWorker struct {
	b       *uringBackend
	ring    *uring.Ring
	entries int
	broken  error // set when the ring failed: from then on, system calls

	batch  []request
	states []reqState
	ops    []op
	sqes   []*uring.SQE // SQEs of the unsubmitted round, to fix their links
	iovs   []unix.Iovec
	trim   [][]byte
	files  []vfs.File
	sys    scratch

	// pool is the direct-write pool this ring registered as fixed
	// buffers, nil if none; regTried is set once the ring tried.
	pool     *DirectPool
	regTried bool

	// lastPrepared is the index of the last request of the batch that
	// was prepared or finished; -1 before the first.
	lastPrepared int
}

func (b *uringBackend) worker(entries uint32, started chan<- error) {
	defer b.wg.Done()
	// The ring belongs to this thread: io_uring may tie a ring to the task
	// that created it, and the kernel's async work is accounted to it.
	runtime.LockOSThread()
	if b.threadInit != nil {
		b.threadInit()
	}
	ring, err := uring.Setup(entries)
	started <- err
	if err != nil {
		return
	}
	w := &ringWorker{b: b, ring: ring, entries: int(ring.SQEntries())}
	defer ring.Close()
	defer w.sys.close()
	defer w.unregister()
	for {
		w.batch, err = b.q.PopBatch(context.Background(), w.batch[:0], batchMax)
		if err != nil {
			return // ErrClosed: the queue is drained
		}
		w.register()
		w.round()
		clear(w.batch)
	}
}

// testRegisterError, set only by tests, makes every ring's registration of
// the direct-write buffers fail with it, as a small RLIMIT_MEMLOCK would.
// Tests set it before opening a backend and clear it after closing it.
var testRegisterError error

// register registers the direct-write pool with the ring the first time
// the worker runs a batch after the pool was created: a request naming one
// of its buffers was pushed after the pool existed, so the worker that
// pops it sees the pool here. A refusal is recorded in the pool's stats
// and the ring goes on with ordinary writes from the same memory.
func (w *ringWorker) register() {
	if w.regTried {
		return
	}
	p := w.b.direct.pool.Load()
	if p == nil {
		return
	}
	w.regTried = true
	err := testRegisterError
	if err == nil {
		err = w.ring.RegisterBuffers(p.views)
	}
	if err != nil {
		err = fmt.Errorf("backend: registering %d direct buffers of %d bytes: %w", len(p.views), p.size, err)
	}
	p.noteRing(err)
	if err == nil {
		w.pool = p
	}
}

// unregister drops the ring's fixed buffers before the ring closes: the
// kernel then unpins their pages at once instead of when it gets round to
// freeing the ring.
func (w *ringWorker) unregister() {
	if w.pool != nil {
		_ = w.ring.UnregisterBuffers()
		w.pool = nil
	}
}

// round runs the current batch: as many requests as fit in the ring go in
// one submission; the rest in the next.
func (w *ringWorker) round() {
	w.states = append(w.states[:0], make([]reqState, len(w.batch))...)
	for i := range w.states {
		w.states[i].pending = true
	}
	w.ops = w.ops[:0]
	w.lastPrepared = -1
	// Reserve iovec space for the whole batch up front: SQEs point into
	// this array, so it must not be reallocated while they are in flight.
	need := 0
	for _, r := range w.batch {
		if r.commit != nil {
			for i := range r.commit.Writes {
				need += len(r.commit.Writes[i].Bufs)
			}
		}
	}
	if cap(w.iovs) < need {
		w.iovs = make([]unix.Iovec, 0, need)
	}
	w.iovs = w.iovs[:0]

	for i := range w.batch {
		if w.broken != nil {
			w.finishBySyscalls(i)
			continue
		}
		sqes := w.countSQEs(i)
		if sqes > w.entries {
			w.finishBySyscalls(i) // too big for one ring submission
			continue
		}
		if len(w.ops)+sqes > w.entries {
			w.flush()
		}
		w.prepare(i)
		w.lastPrepared = i
	}
	w.flush()
}

// countSQEs returns the SQEs request i needs at most.
func (w *ringWorker) countSQEs(i int) int {
	r := w.batch[i]
	if r.read != nil {
		return 1
	}
	n := 0
	for j := range r.commit.Writes {
		n += max(1, (len(r.commit.Writes[j].Bufs)+iovMax-1)/iovMax)
	}
	if r.commit.Sync {
		n += len(r.commit.Writes) + len(r.commit.Files) // at most one sync per file
	}
	return n
}

// prepare turns request i into SQEs.
func (w *ringWorker) prepare(i int) {
	r := w.batch[i]
	st := &w.states[i]
	if rd := r.read; rd != nil {
		if len(rd.Buf) == 0 {
			return
		}
		w.addOp(op{kind: opRead, req: i, file: rd.File, off: rd.Off, n: len(rd.Buf)}, 0).PrepRead(int(rd.File.Fd()), rd.Buf, rd.Off)
		return
	}
	c := r.commit
	w.files = c.syncFiles(w.files[:0])
	for _, f := range w.files {
		// One chain per file: its writes in order, then its sync.
		chainStart := len(w.ops)
		for j := range c.Writes {
			wr := &c.Writes[j]
			if wr.File != f {
				continue
			}
			total := totalLen(wr.Bufs)
			if total == 0 {
				continue
			}
			if err := checkWrite(wr); err != nil {
				if st.err == nil {
					st.err = err
				}
				continue
			}
			allowed, injected := beforeWrite(f, wr.Off, total)
			if allowed < total && injected == nil {
				injected = fmt.Errorf("%w: %s at %d: observer allowed %d of %d bytes", ErrShortWrite, f.Name(), wr.Off, allowed, total)
			}
			if injected != nil && st.err == nil {
				st.err = injected
			}
			if wr.Direct != nil {
				w.prepareDirect(i, f, wr, allowed)
				continue
			}
			w.trim = trimBufs(w.trim[:0], wr.Bufs, allowed)
			off := wr.Off
			for rest := w.trim; len(rest) > 0; {
				k := min(len(rest), iovMax)
				start := len(w.iovs)
				w.iovs = uring.AppendIovecs(w.iovs, rest[:k]...)
				n := totalLen(rest[:k])
				w.addOp(op{kind: opWrite, req: i, file: f, off: off, n: n}, uring.SQEIOLink).
					PrepWritev(int(f.Fd()), w.iovs[start:len(w.iovs):len(w.iovs)], off)
				off += int64(n)
				rest = rest[k:]
			}
			clear(w.trim) // the iovecs keep the buffers alive; drop these references
		}
		if c.Sync && st.err == nil {
			if err := beforeSync(f); err != nil {
				st.err = err
			} else {
				w.addOp(op{kind: opSync, req: i, file: f}, 0).PrepFsync(int(f.Fd()), true)
			}
		}
		// The last SQE of the chain must not link to the next chain.
		if last := len(w.ops) - 1; last >= chainStart {
			w.sqeFlagsClear(last)
		}
	}
	clear(w.files)
}

// prepareDirect adds the SQE of a write from a direct-write buffer (one
// contiguous slice, checked by checkWrite): a fixed write when this ring
// registered the buffer's pool, an ordinary one otherwise. Either way the
// kernel reads the pool's memory, which stays mapped while the buffer is
// held, that is until Do returned.
func (w *ringWorker) prepareDirect(i int, f vfs.File, wr *Write, allowed int) {
	if allowed == 0 {
		return
	}
	buf := wr.Bufs[0][:allowed]
	sqe := w.addOp(op{kind: opWrite, req: i, file: f, off: wr.Off, n: allowed}, uring.SQEIOLink)
	if p := wr.Direct.pool; p == w.pool {
		sqe.PrepWriteFixed(int(f.Fd()), buf, wr.Off, uint16(wr.Direct.index))
		p.fixedWrites.Add(1)
	} else {
		sqe.PrepWrite(int(f.Fd()), buf, wr.Off)
		p.plainWrites.Add(1)
	}
}

// addOp appends o and returns its SQE with flags set; the ring has room
// (round checked it).
func (w *ringWorker) addOp(o op, flags uring.SQEFlags) *uring.SQE {
	sqe := w.ring.GetSQE()
	if sqe == nil {
		panic("backend: ring full after space was checked") // a bug, not an input
	}
	sqe.UserData = uint64(len(w.ops))
	sqe.Flags = flags
	w.ops = append(w.ops, o)
	w.sqes = append(w.sqes, sqe)
	return sqe
}

// sqeFlagsClear removes the link flag from the SQE of op i: it ends its
// chain.
func (w *ringWorker) sqeFlagsClear(i int) {
	w.sqes[i].Flags &^= uring.SQEIOLink
}

// flush submits the prepared SQEs, reaps all their completions, and
// completes the requests whose SQEs were all in this submission.
func (w *ringWorker) flush() {
	if len(w.ops) > 0 {
		if err := w.submitAndReap(); err != nil {
			// The ring failed as a whole: every request of the round is
			// redone with system calls, and so is everything after.
			w.broken = err
			for i := range w.states {
				if w.states[i].pending {
					w.states[i].redo = true
				}
			}
		} else {
			w.apply()
		}
	}
	w.ops = w.ops[:0]
	clear(w.sqes)
	w.sqes = w.sqes[:0]
	w.iovs = w.iovs[:0]
	for i := range w.states {
		if !w.states[i].pending {
			continue
		}
		if w.inRound(i) {
			continue // its SQEs are not submitted yet (only for requests after the flush point)
		}
		w.complete(i)
	}
}

// inRound reports whether request i has not been prepared yet: round calls
// flush before preparing a request that does not fit, so only requests
// with an index above the last prepared one are still to come.
func (w *ringWorker) inRound(i int) bool { return i > w.lastPrepared }

// submitAndReap submits the round and waits for one CQE per op, storing
// each result in its op.
func (w *ringWorker) submitAndReap() error {
	want := len(w.ops)
	got := 0
	for {
		_, err := w.ring.SubmitAndWait(1)
		if err == nil {
			break
		}
		if !errors.Is(err, uring.ErrBusy) {
			// Wait for everything the kernel took: its buffers belong to
			// requests that are about to be redone and completed, and the
			// kernel must be done with them first.
			for w.ring.InFlight() > 0 {
				if w.reapOne(&got) != nil {
					break
				}
			}
			return err
		}
		if w.ring.InFlight() == 0 {
			return err
		}
		w.reapOne(&got)
	}
	for got < want {
		if err := w.reapOne(&got); err != nil {
			return err
		}
	}
	return nil
}

func (w *ringWorker) reapOne(got *int) error {
	cqe, err := w.ring.WaitCQE()
	if err != nil {
		return err
	}
	w.ring.CQESeen()
	if cqe.UserData < uint64(len(w.ops)) {
		w.ops[cqe.UserData].res = cqe.Res
	}
	*got++
	return nil
}

// apply walks the ops in submission order and records their outcome in
// their requests, telling observers what reached the file.
func (w *ringWorker) apply() {
	for k := range w.ops {
		o := &w.ops[k]
		st := &w.states[o.req]
		switch o.kind {
		case opWrite:
			if o.res > 0 {
				afterWrite(o.file, o.off, int(o.res))
			}
			switch {
			case o.res < 0 && errors.Is(uring.CQE{Res: o.res}.Err(), unix.ECANCELED):
				st.redo = true
			case o.res < 0:
				if st.err == nil {
					st.err = fmt.Errorf("backend: io_uring write %s at %d: %w", o.file.Name(), o.off, uring.CQE{Res: o.res}.Err())
				}
			case int(o.res) < o.n:
				st.redo = true // short: finish it with system calls
			}
		case opSync:
			switch {
			case o.res == 0:
				afterSync(o.file)
			case errors.Is(uring.CQE{Res: o.res}.Err(), unix.ECANCELED):
				st.redo = true
			default:
				if st.err == nil {
					st.err = fmt.Errorf("backend: io_uring fdatasync %s: %w", o.file.Name(), uring.CQE{Res: o.res}.Err())
				}
			}
		case opRead:
			switch {
			case o.res < 0:
				st.err = fmt.Errorf("backend: io_uring read %s at %d: %w", o.file.Name(), o.off, uring.CQE{Res: o.res}.Err())
			case int(o.res) < o.n:
				// Short read: finish it with pread, which tells a short
				// read from the end of the file.
				n, err := preadFull(o.file, w.batch[o.req].read.Buf[o.res:], o.off+int64(o.res))
				st.readN, st.err = int(o.res)+n, err
			default:
				st.readN = int(o.res)
			}
		}
	}
}

// complete finishes request i: redoes it with system calls if a chain was
// broken (and no real error was seen), then signals its waiter.
func (w *ringWorker) complete(i int) {
	st := &w.states[i]
	r := w.batch[i]
	if r.commit != nil {
		if st.redo && st.err == nil {
			w.b.fallbacks.Add(1)
			st.err = w.sys.commit(r.commit)
		}
		r.commit.err = st.err
		r.commit.done <- struct{}{}
	} else {
		if st.redo && st.err == nil {
			w.b.fallbacks.Add(1)
			st.readN, st.err = preadFull(r.read.File, r.read.Buf, r.read.Off)
		}
		if st.err == nil && st.readN < len(r.read.Buf) {
			st.err = io.EOF
		}
		r.read.n, r.read.err = st.readN, st.err
		r.read.done <- struct{}{}
	}
	st.pending = false
}

// finishBySyscalls completes request i without the ring.
func (w *ringWorker) finishBySyscalls(i int) {
	w.states[i].redo = true
	w.lastPrepared = max(w.lastPrepared, i)
	w.complete(i)
}
