//go:build linux

package uring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func newRing(t testing.TB, entries uint32, opts ...Option) *Ring {
	t.Helper()
	r, err := Setup(entries, opts...)
	if err != nil {
		t.Fatalf("Setup(%d): %v", entries, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func tempFile(t testing.TB) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "data"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// reap waits for n completions and returns them, consumed, in arrival order.
func reap(t testing.TB, r *Ring, n int) []CQE {
	t.Helper()
	out := make([]CQE, 0, n)
	for len(out) < n {
		c, err := r.WaitCQE()
		if err != nil {
			t.Fatalf("WaitCQE after %d of %d: %v", len(out), n, err)
		}
		r.CQESeen()
		out = append(out, c)
	}
	return out
}

// byUserData indexes completions by user data, failing on duplicates.
func byUserData(t testing.TB, cqes []CQE) map[uint64]CQE {
	t.Helper()
	m := make(map[uint64]CQE, len(cqes))
	for _, c := range cqes {
		if _, dup := m[c.UserData]; dup {
			t.Fatalf("two CQEs with user data %d", c.UserData)
		}
		m[c.UserData] = c
	}
	return m
}

func getSQE(t testing.TB, r *Ring) *SQE {
	t.Helper()
	sqe := r.GetSQE()
	if sqe == nil {
		t.Fatal("GetSQE returned nil with room in the ring")
	}
	return sqe
}

func TestLayout(t *testing.T) {
	// unsafe.Offsetof and unsafe.Sizeof only read compile-time layout.
	var s SQE
	var c CQE
	var p Params
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"sqe.opcode", unsafe.Offsetof(s.Opcode), 0},
		{"sqe.flags", unsafe.Offsetof(s.Flags), 1},
		{"sqe.ioprio", unsafe.Offsetof(s.IOPrio), 2},
		{"sqe.fd", unsafe.Offsetof(s.Fd), 4},
		{"sqe.off", unsafe.Offsetof(s.Off), 8},
		{"sqe.addr", unsafe.Offsetof(s.Addr), 16},
		{"sqe.len", unsafe.Offsetof(s.Len), 24},
		{"sqe.rw_flags", unsafe.Offsetof(s.OpFlags), 28},
		{"sqe.user_data", unsafe.Offsetof(s.UserData), 32},
		{"sqe.buf_index", unsafe.Offsetof(s.BufIndex), 40},
		{"sqe.personality", unsafe.Offsetof(s.Personality), 42},
		{"sqe.file_index", unsafe.Offsetof(s.FileIndex), 44},
		{"sqe.addr3", unsafe.Offsetof(s.Addr3), 48},
		{"sizeof sqe", unsafe.Sizeof(s), 64},
		{"cqe.user_data", unsafe.Offsetof(c.UserData), 0},
		{"cqe.res", unsafe.Offsetof(c.Res), 8},
		{"cqe.flags", unsafe.Offsetof(c.Flags), 12},
		{"sizeof cqe", unsafe.Sizeof(c), 16},
		{"params.features", unsafe.Offsetof(p.Features), 20},
		{"params.wq_fd", unsafe.Offsetof(p.WQFd), 24},
		{"params.sq_off", unsafe.Offsetof(p.SQOff), 40},
		{"params.cq_off", unsafe.Offsetof(p.CQOff), 80},
		{"sq_off.array", unsafe.Offsetof(p.SQOff.Array), 24},
		{"sq_off.user_addr", unsafe.Offsetof(p.SQOff.UserAddr), 32},
		{"cq_off.cqes", unsafe.Offsetof(p.CQOff.CQEs), 20},
		{"cq_off.user_addr", unsafe.Offsetof(p.CQOff.UserAddr), 32},
		{"sizeof params", unsafe.Sizeof(p), 120},
		{"sizeof probe", unsafe.Sizeof(probeBuf{}), 16 + 8*256},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestSetupReportsRing(t *testing.T) {
	r := newRing(t, 5)
	if r.SQEntries() != 8 || r.CQEntries() != 16 {
		t.Fatalf("Setup(5): SQ %d, CQ %d entries; want 8 and 16", r.SQEntries(), r.CQEntries())
	}
	if !r.Features().Has(FeatNoDrop | FeatSubmitStable | FeatSingleMMap) {
		t.Fatalf("features %v lack NODROP|SUBMIT_STABLE|SINGLE_MMAP on Linux 6.x", r.Features())
	}
	t.Logf("features: %v", r.Features())
	if _, err := Setup(0); !errors.Is(err, unix.EINVAL) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Setup(0) = %v, want EINVAL, not ErrUnavailable", err)
	}
}

func TestProbe(t *testing.T) {
	r := newRing(t, 4)
	p, err := r.Probe()
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range RequiredOps() {
		if !p.Supported(op) {
			t.Errorf("probe: %v not supported", op)
		}
	}
	if p.LastOp < OpWrite {
		t.Errorf("probe: LastOp %v below WRITE", p.LastOp)
	}
	if p.Supported(255) {
		t.Error("probe claims opcode 255")
	}
	t.Logf("kernel knows opcodes up to %d", p.LastOp)
}

func TestAvailable(t *testing.T) {
	if err := Available(); err != nil {
		t.Fatalf("Available: %v", err)
	}
}

func TestNop(t *testing.T) {
	r := newRing(t, 8)
	const ud = 0xfeedfacecafebeef
	sqe := getSQE(t, r)
	sqe.UserData = ud // set before Prep: Prep must keep it
	sqe.PrepNop()
	n, err := r.SubmitAndWait(1)
	if err != nil || n != 1 {
		t.Fatalf("SubmitAndWait(1) = %d, %v; want 1, nil", n, err)
	}
	if r.CQReady() != 1 || r.InFlight() != 1 {
		t.Fatalf("CQReady %d, InFlight %d; want 1, 1", r.CQReady(), r.InFlight())
	}
	c, ok, err := r.PeekCQE()
	if err != nil || !ok {
		t.Fatalf("PeekCQE = %v, %v", ok, err)
	}
	if c.UserData != ud || c.Res != 0 || c.Err() != nil {
		t.Fatalf("NOP completed as %+v", c)
	}
	r.CQESeen()
	if _, ok, _ := r.PeekCQE(); ok || r.InFlight() != 0 {
		t.Fatalf("after CQESeen: CQE still visible or InFlight %d", r.InFlight())
	}
}

func TestWriteThenRead(t *testing.T) {
	r := newRing(t, 8)
	f := tempFile(t)
	fd := int(f.Fd())
	var h Holder
	want := []byte("written through io_uring, read back through io_uring")

	sqe := getSQE(t, r)
	sqe.PrepWrite(fd, h.Bytes(want), 100)
	sqe.UserData = 1
	if _, err := r.SubmitAndWait(1); err != nil {
		t.Fatal(err)
	}
	if c := reap(t, r, 1)[0]; c.Res != int32(len(want)) {
		t.Fatalf("write: %+v (%v), want res %d", c, c.Err(), len(want))
	}

	got := make([]byte, len(want)+10)
	sqe = getSQE(t, r)
	sqe.PrepRead(fd, h.Bytes(got), 100)
	sqe.UserData = 2
	if _, err := r.SubmitAndWait(1); err != nil {
		t.Fatal(err)
	}
	c := reap(t, r, 1)[0]
	h.Release()
	if c.UserData != 2 || c.Res != int32(len(want)) || !bytes.Equal(got[:c.Res], want) {
		t.Fatalf("read: %+v, %q; want %q", c, got[:max(c.Res, 0)], want)
	}
}

func TestWritevLinkedFdatasync(t *testing.T) {
	r := newRing(t, 8)
	f := tempFile(t)
	fd := int(f.Fd())
	var h Holder
	a, b, c := []byte("alpha "), bytes.Repeat([]byte("b"), 5000), []byte(" gamma")
	iovs := AppendIovecs(nil, a, b, c)

	w := getSQE(t, r)
	w.PrepWritev(fd, h.Iovecs(iovs), 0)
	w.Flags |= SQEIOLink
	w.UserData = 1
	s := getSQE(t, r)
	s.PrepFsync(fd, true)
	s.UserData = 2
	if s.OpFlags != fsyncDatasync || s.Opcode != OpFsync {
		t.Fatalf("PrepFsync(datasync) left opcode %v flags %#x", s.Opcode, s.OpFlags)
	}
	n, err := r.Submit()
	if err != nil || n != 2 {
		t.Fatalf("Submit = %d, %v; want both SQEs in one call", n, err)
	}
	got := byUserData(t, reap(t, r, 2))
	h.Release()
	total := len(a) + len(b) + len(c)
	if got[1].Res != int32(total) {
		t.Errorf("writev: %+v (%v), want res %d", got[1], got[1].Err(), total)
	}
	if got[2].Res != 0 {
		t.Errorf("fdatasync: %+v (%v), want res 0", got[2], got[2].Err())
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Join([][]byte{a, b, c}, nil); !bytes.Equal(data, want) {
		t.Fatalf("file holds %d bytes, want the %d written", len(data), len(want))
	}
}

func TestLinkedFsyncCancelledWhenWriteFails(t *testing.T) {
	r := newRing(t, 8)
	f := tempFile(t)
	var h Holder

	w := getSQE(t, r)
	w.PrepWrite(-1, h.Bytes([]byte("never written")), 0) // bad descriptor
	w.Flags |= SQEIOLink
	w.UserData = 1
	s := getSQE(t, r)
	s.PrepFsync(int(f.Fd()), true)
	s.UserData = 2
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	got := byUserData(t, reap(t, r, 2))
	h.Release()
	if err := got[1].Err(); !errors.Is(err, syscall.EBADF) {
		t.Errorf("write to fd -1: res %d (%v), want EBADF", got[1].Res, err)
	}
	if err := got[2].Err(); got[2].Res != -int32(unix.ECANCELED) || !errors.Is(err, syscall.ECANCELED) {
		t.Errorf("linked fsync: res %d (%v), want -ECANCELED", got[2].Res, err)
	}
}

func TestDrainRunsAfterEverythingBefore(t *testing.T) {
	r := newRing(t, 32)
	f := tempFile(t)
	var h Holder
	const writes = 16
	buf := h.Bytes(bytes.Repeat([]byte("x"), 4096))
	for i := range writes {
		sqe := getSQE(t, r)
		sqe.PrepWrite(int(f.Fd()), buf, int64(i)*4096)
		sqe.UserData = uint64(i)
	}
	d := getSQE(t, r)
	d.PrepNop()
	d.Flags |= SQEIODrain
	d.UserData = 1000
	if n, err := r.Submit(); err != nil || n != writes+1 {
		t.Fatalf("Submit = %d, %v", n, err)
	}
	cqes := reap(t, r, writes+1)
	h.Release()
	if last := cqes[len(cqes)-1]; last.UserData != 1000 {
		t.Fatalf("drained NOP completed before the writes submitted ahead of it: order %v", cqes)
	}
	for _, c := range cqes[:writes] {
		if c.Res != 4096 {
			t.Fatalf("write %d: %+v (%v)", c.UserData, c, c.Err())
		}
	}
}

func TestFixedBuffersODirect(t *testing.T) {
	r := newRing(t, 8)
	const blk = 4096
	buf, err := AllocAligned(2*blk, blk)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := FreeAligned(buf); err != nil {
			t.Error(err)
		}
	}()
	if err := r.RegisterBuffers([][]byte{buf}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	fd, err := unix.Open(filepath.Join(dir, "direct"), unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_DIRECT|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("the file system of %s refuses O_DIRECT (EINVAL); fixed-buffer O_DIRECT I/O not tested", dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)

	out, in := buf[:blk], buf[blk:]
	for i := range out {
		out[i] = byte(i*7 + 3)
	}
	sqe := getSQE(t, r)
	sqe.PrepWriteFixed(fd, out, 3*blk, 0)
	sqe.UserData = 1
	if _, err := r.SubmitAndWait(1); err != nil {
		t.Fatal(err)
	}
	if c := reap(t, r, 1)[0]; c.Res != blk {
		t.Fatalf("WRITE_FIXED with O_DIRECT: res %d (%v), want %d", c.Res, c.Err(), blk)
	}

	clear(in)
	sqe = getSQE(t, r)
	sqe.PrepReadFixed(fd, in, 3*blk, 0)
	sqe.UserData = 2
	if _, err := r.SubmitAndWait(1); err != nil {
		t.Fatal(err)
	}
	if c := reap(t, r, 1)[0]; c.Res != blk {
		t.Fatalf("READ_FIXED with O_DIRECT: res %d (%v), want %d", c.Res, c.Err(), blk)
	}
	if !bytes.Equal(in, out) {
		t.Fatal("READ_FIXED returned other bytes than WRITE_FIXED wrote")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size != 4*blk {
		t.Fatalf("file size %d (%v), want %d", st.Size, err, 4*blk)
	}

	// A buffer outside the registered one is refused by the kernel.
	stray := make([]byte, blk)
	sqe = getSQE(t, r)
	sqe.PrepWriteFixed(fd, stray, 0, 0)
	if _, err := r.SubmitAndWait(1); err != nil {
		t.Fatal(err)
	}
	if c := reap(t, r, 1)[0]; !errors.Is(c.Err(), syscall.EFAULT) {
		t.Fatalf("WRITE_FIXED from an unregistered buffer: res %d (%v), want EFAULT", c.Res, c.Err())
	}
	runtime.KeepAlive(stray)

	if err := r.UnregisterBuffers(); err != nil {
		t.Fatal(err)
	}
	if err := r.UnregisterBuffers(); !errors.Is(err, unix.ENXIO) {
		t.Fatalf("second UnregisterBuffers = %v, want ENXIO", err)
	}
}

func TestRegisteredFile(t *testing.T) {
	r := newRing(t, 8)
	f := tempFile(t)
	if err := r.RegisterFiles([]int{-1, int(f.Fd())}); err != nil {
		t.Fatal(err)
	}
	var h Holder
	sqe := getSQE(t, r)
	sqe.PrepWrite(1, h.Bytes([]byte("via slot 1")), 0) // index, not descriptor
	sqe.Flags |= SQEFixedFile
	if _, err := r.SubmitAndWait(1); err != nil {
		t.Fatal(err)
	}
	if c := reap(t, r, 1)[0]; c.Res != 10 {
		t.Fatalf("write to registered file: res %d (%v)", c.Res, c.Err())
	}
	h.Release()
	if data, _ := os.ReadFile(f.Name()); string(data) != "via slot 1" {
		t.Fatalf("file holds %q", data)
	}
	if err := r.UnregisterFiles(); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterFiles(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("RegisterFiles(nil) = %v", err)
	}
}

func TestSubmissionQueueFull(t *testing.T) {
	r := newRing(t, 8)
	for i := range 8 {
		sqe := r.GetSQE()
		if sqe == nil {
			t.Fatalf("GetSQE nil after %d of 8", i)
		}
		sqe.PrepNop()
		sqe.UserData = uint64(i)
	}
	if sqe := r.GetSQE(); sqe != nil {
		t.Fatal("GetSQE returned a 9th SQE from an 8-entry ring")
	}
	if r.SQSpace() != 0 || r.SQReady() != 8 {
		t.Fatalf("SQSpace %d, SQReady %d; want 0, 8", r.SQSpace(), r.SQReady())
	}
	if n, err := r.SubmitAndWait(8); err != nil || n != 8 {
		t.Fatalf("SubmitAndWait(8) = %d, %v", n, err)
	}
	if r.SQSpace() != 8 || r.GetSQE() == nil {
		t.Fatalf("after Submit: SQSpace %d, want 8 and a free SQE", r.SQSpace())
	}
	var cqes [16]CQE
	n, err := r.PeekCQEs(cqes[:])
	if err != nil || n != 8 {
		t.Fatalf("PeekCQEs = %d, %v; want 8", n, err)
	}
	r.CQAdvance(uint32(n))
	if _, err := r.Submit(); err != nil { // the NOP GetSQE handed out above
		t.Fatal(err)
	}
	reap(t, r, 1)
}

// TestManyWritesWrapRings pushes 10,000 writes through a 64-entry ring in
// batches of 64, so that both rings' indices wrap around their masks many
// times, and checks every write landed.
func TestManyWritesWrapRings(t *testing.T) {
	r := newRing(t, 64)
	f := tempFile(t)
	writeRecords(t, r, int(f.Fd()), 10000, 64)
	checkRecords(t, f.Name(), 10000)
}

func writeRecords(t testing.TB, r *Ring, fd, total, batch int) {
	t.Helper()
	recs := make([]byte, total*8)
	seen := make([]bool, total)
	var h Holder
	var cqes [64]CQE
	for next := 0; next < total; {
		queued := 0
		for ; queued < batch && next < total; next, queued = next+1, queued+1 {
			rec := recs[next*8 : next*8+8]
			binary.LittleEndian.PutUint64(rec, uint64(next))
			sqe := getSQE(t, r)
			sqe.PrepWrite(fd, h.Bytes(rec), int64(next)*8)
			sqe.UserData = uint64(next)
		}
		if n, err := r.Submit(); err != nil || n != queued {
			t.Fatalf("Submit = %d, %v; want %d", n, err, queued)
		}
		// Reap without blocking where possible, to exercise PeekCQEs and
		// the flush paths; block only when nothing is visible.
		for done := 0; done < queued; {
			n, err := r.PeekCQEs(cqes[:])
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				if _, err := r.WaitCQE(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			for _, c := range cqes[:n] {
				if c.Res != 8 || c.UserData >= uint64(total) || seen[c.UserData] {
					t.Fatalf("bad completion %+v (%v)", c, c.Err())
				}
				seen[c.UserData] = true
			}
			r.CQAdvance(uint32(n))
			done += n
		}
		h.Release()
	}
	if r.InFlight() != 0 {
		t.Fatalf("InFlight %d after reaping everything", r.InFlight())
	}
}

func checkRecords(t testing.TB, name string, total int) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != total*8 {
		t.Fatalf("file holds %d bytes, want %d", len(data), total*8)
	}
	for i := range total {
		if v := binary.LittleEndian.Uint64(data[i*8:]); v != uint64(i) {
			t.Fatalf("record %d holds %d", i, v)
		}
	}
}

// TestSetupOptions runs the write workload under each supported setup
// option, on a goroutine locked to its thread as the backend will run it.
func TestSetupOptions(t *testing.T) {
	cases := []struct {
		name string
		opts []Option
	}{
		{"cq-entries", []Option{WithCQEntries(256)}},
		{"single-issuer", []Option{WithSingleIssuer()}},
		{"coop-taskrun", []Option{WithCoopTaskrun()}},
		{"single-issuer+coop-taskrun", []Option{WithSingleIssuer(), WithCoopTaskrun()}},
		{"defer-taskrun", []Option{WithDeferTaskrun()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			r := newRing(t, 32, tc.opts...)
			if tc.name == "cq-entries" && r.CQEntries() != 256 {
				t.Fatalf("CQEntries %d, want 256", r.CQEntries())
			}
			f := tempFile(t)
			writeRecords(t, r, int(f.Fd()), 1000, 32)
			checkRecords(t, f.Name(), 1000)
		})
	}
}

func TestSingleIssuerWrongThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r := newRing(t, 8, WithSingleIssuer())

	errc := make(chan error)
	go func() {
		// A locked goroutine runs alone on its thread, and the test
		// goroutine is locked to another, so this is a second thread.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		r.GetSQE().PrepNop()
		_, err := r.Submit()
		errc <- err
	}()
	err := <-errc
	if !errors.Is(err, ErrWrongThread) || !errors.Is(err, unix.EEXIST) {
		t.Fatalf("Submit from a second thread = %v, want ErrWrongThread wrapping EEXIST", err)
	}
	// The NOP stayed queued; its owner submits it.
	if n, err := r.SubmitAndWait(1); err != nil || n != 1 {
		t.Fatalf("owner SubmitAndWait = %d, %v", n, err)
	}
	reap(t, r, 1)
}

// TestCQOverflowNotLost completes more operations than the CQ ring holds
// before reaping any; with FeatNoDrop the kernel keeps the excess, and the
// non-blocking PeekCQE must collect it.
func TestCQOverflowNotLost(t *testing.T) {
	r := newRing(t, 8) // CQ ring of 16
	const total = 24
	for i := 0; i < total; {
		for range 8 {
			sqe := getSQE(t, r)
			sqe.PrepNop()
			sqe.UserData = uint64(i)
			i++
		}
		if _, err := r.Submit(); err != nil {
			t.Fatalf("Submit with %d completions unreaped: %v", i-8, err)
		}
	}
	if r.CQReady() != r.CQEntries() {
		t.Fatalf("CQReady %d, want a full ring of %d", r.CQReady(), r.CQEntries())
	}
	seen := make(map[uint64]bool)
	for len(seen) < total {
		if len(seen) == int(r.CQEntries()) {
			// The ring is drained; the rest wait in the kernel, which
			// says so in the SQ ring flags.
			if r.CQReady() != 0 || atomic.LoadUint32(r.sqFlags)&sqCQOverflow == 0 {
				t.Fatalf("after draining the ring: CQReady %d, SQ flags %#x; want 0 and CQ_OVERFLOW", r.CQReady(), atomic.LoadUint32(r.sqFlags))
			}
		}
		c, ok, err := r.PeekCQE()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("PeekCQE found nothing after %d of %d completions", len(seen), total)
		}
		if seen[c.UserData] || c.Res != 0 {
			t.Fatalf("bad completion %+v", c)
		}
		seen[c.UserData] = true
		r.CQESeen()
	}
}

func TestCloseIdempotent(t *testing.T) {
	r, err := Setup(4)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if r.GetSQE() != nil {
		t.Error("GetSQE after Close returned an SQE")
	}
	if _, err := r.Submit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close = %v", err)
	}
	if _, _, err := r.PeekCQE(); !errors.Is(err, ErrClosed) {
		t.Errorf("PeekCQE after Close = %v", err)
	}
	if _, err := r.WaitCQE(); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitCQE after Close = %v", err)
	}
	if _, err := r.PeekCQEs(make([]CQE, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("PeekCQEs after Close = %v", err)
	}
	if _, err := r.Probe(); !errors.Is(err, ErrClosed) {
		t.Errorf("Probe after Close = %v", err)
	}
	if err := r.RegisterFiles([]int{0}); !errors.Is(err, ErrClosed) {
		t.Errorf("RegisterFiles after Close = %v", err)
	}
	if r.CQReady() != 0 || r.SQSpace() != 0 {
		t.Error("closed ring reports queue space or completions")
	}
}

func TestCQEErr(t *testing.T) {
	if err := (CQE{Res: 42}).Err(); err != nil {
		t.Errorf("Res 42: %v", err)
	}
	err := CQE{Res: -int32(unix.ENOSPC)}.Err()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Res -ENOSPC: %v", err)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) || errno != syscall.ENOSPC {
		t.Errorf("Err() is not a syscall.Errno: %T", err)
	}
}

func TestAllocAligned(t *testing.T) {
	for _, align := range []int{1, 512, 4096, 1 << 21} {
		b, err := AllocAligned(10000, align)
		if err != nil {
			t.Fatalf("AllocAligned(10000, %d): %v", align, err)
		}
		addr := uintptr(unsafe.Pointer(unsafe.SliceData(b))) // unsafe: the address as a number only.
		if want := uintptr(max(align, pageSize)); addr%want != 0 {
			t.Errorf("align %d: address %#x", align, addr)
		}
		if len(b) != 10000 || cap(b)%pageSize != 0 || cap(b) < 10000 {
			t.Errorf("align %d: len %d cap %d", align, len(b), cap(b))
		}
		for i := range b[:cap(b)] {
			if b[:cap(b)][i] != 0 {
				t.Fatalf("align %d: byte %d not zero", align, i)
			}
			b[:cap(b)][i] = 0xa5
		}
		if err := FreeAligned(b[:10]); err != nil {
			t.Fatalf("FreeAligned: %v", err)
		}
		if err := FreeAligned(b); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("second FreeAligned = %v", err)
		}
	}
	for _, bad := range [][2]int{{0, 4096}, {-1, 4096}, {100, 0}, {100, 3000}} {
		if _, err := AllocAligned(bad[0], bad[1]); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("AllocAligned(%d, %d) = %v", bad[0], bad[1], err)
		}
	}
	if err := FreeAligned(make([]byte, 4096)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("FreeAligned of heap memory = %v", err)
	}
}

// TestHolderKeepsBuffers drops every reference to the buffers but the
// Holder's, forces collections while the writes are in flight, and checks
// the data.
func TestHolderKeepsBuffers(t *testing.T) {
	r := newRing(t, 16)
	f := tempFile(t)
	var h Holder
	for i := range 8 {
		sqe := getSQE(t, r)
		sqe.PrepWritev(int(f.Fd()), h.Iovecs(AppendIovecs(nil, bytes.Repeat([]byte{byte('a' + i)}, 1000))), int64(i)*1000)
		sqe.UserData = uint64(i)
	}
	if h.Len() != 8 {
		t.Fatalf("Holder.Len %d, want 8", h.Len())
	}
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	for _, c := range reap(t, r, 8) {
		if c.Res != 1000 {
			t.Fatalf("writev %d: %+v (%v)", c.UserData, c, c.Err())
		}
	}
	h.Release()
	if h.Len() != 0 {
		t.Fatal("Release kept references")
	}
	data, _ := os.ReadFile(f.Name())
	for i := range 8 {
		if !bytes.Equal(data[i*1000:(i+1)*1000], bytes.Repeat([]byte{byte('a' + i)}, 1000)) {
			t.Fatalf("block %d corrupt", i)
		}
	}
}

func TestFeaturesString(t *testing.T) {
	if s := (FeatNoDrop | FeatExtArg | 1<<30).String(); s != "NODROP|EXT_ARG|bit30" {
		t.Errorf("String = %q", s)
	}
	if s := Features(0).String(); s != "0" {
		t.Errorf("String(0) = %q", s)
	}
	if s := Op(17).String(); s != "op(17)" {
		t.Errorf("Op(17) = %q", s)
	}
}
