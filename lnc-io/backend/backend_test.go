package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lance-go/lance/lnc-io/ioq"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// kinds returns the backends this machine can run; the uring one is
// skipped, with the probe's reason, where the kernel lacks io_uring.
func kinds(t testing.TB) []Kind {
	ks := []Kind{KindPwritev2}
	if p := Probe(); p.Err == nil {
		ks = append(ks, KindURing)
	} else {
		t.Logf("io_uring unavailable, testing pwritev2 only: %v", p.Err)
	}
	return ks
}

// forEachKind runs f against every backend kind, with a fresh backend that
// is closed (and checked for leaked goroutines) afterwards.
func forEachKind(t *testing.T, f func(t *testing.T, b Backend, dir string)) {
	for _, k := range kinds(t) {
		t.Run("backend="+string(k), func(t *testing.T) {
			before := runtime.NumGoroutine()
			b, err := Open(Config{Kind: k, Workers: 2, RingEntries: 32})
			if err != nil {
				t.Fatal(err)
			}
			if b.Kind() != k {
				t.Fatalf("Kind() = %v", b.Kind())
			}
			f(t, b, t.TempDir())
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			waitGoroutines(t, before)
		})
	}
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func create(t testing.TB, dir, name string) vfs.File {
	t.Helper()
	f, err := vfs.OS().Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestCommitTwoFiles(t *testing.T) {
	forEachKind(t, func(t *testing.T, b Backend, dir string) {
		r := rand.New(rand.NewPCG(1, 2))
		seg, idx := create(t, dir, "a.lnc"), create(t, dir, "a.idx")
		var wantSeg, wantIdx []byte
		var c Commit
		for round := range 20 {
			bufs := [][]byte{randBytes(r, 100), randBytes(r, 1), randBytes(r, 5000)}
			entry := randBytes(r, 64)
			c = Commit{
				Writes: []Write{
					{File: seg, Off: int64(len(wantSeg)), Bufs: bufs},
					{File: idx, Off: int64(len(wantIdx)), Bufs: [][]byte{entry}},
				},
				Sync:  round%2 == 0,
				Class: ioq.ClassCommit,
				done:  c.done, // reused
			}
			if err := b.Do(context.Background(), &c); err != nil {
				t.Fatal(err)
			}
			for _, x := range bufs {
				wantSeg = append(wantSeg, x...)
			}
			wantIdx = append(wantIdx, entry...)
		}
		for name, want := range map[string][]byte{"a.lnc": wantSeg, "a.idx": wantIdx} {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %d bytes, want %d (%v)", name, len(got), len(want), err)
			}
		}
	})
}

func TestLongGatherList(t *testing.T) {
	forEachKind(t, func(t *testing.T, b Backend, dir string) {
		f := create(t, dir, "long")
		var bufs [][]byte
		var want []byte
		for i := range 2500 { // more than UIO_MAXIOV
			x := []byte(fmt.Sprintf("<%d>", i))
			bufs = append(bufs, x)
			want = append(want, x...)
		}
		// Also more SQEs than the ring has entries.
		if err := b.Do(context.Background(), &Commit{Writes: []Write{{File: f, Bufs: bufs}}, Sync: true}); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(f.Name())
		if !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want %d", len(got), len(want))
		}
	})
}

func TestConcurrentCommitsAndReads(t *testing.T) {
	forEachKind(t, func(t *testing.T, b Backend, dir string) {
		const writers, rounds = 6, 40
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 9))
				f := create(t, dir, fmt.Sprintf("f%d", w))
				var want []byte
				var c Commit
				var rd Read
				for i := range rounds {
					x := randBytes(r, 1+r.IntN(3000))
					c.Writes = append(c.Writes[:0], Write{File: f, Off: int64(len(want)), Bufs: [][]byte{x}})
					c.Sync = i%3 == 0
					c.Class = ioq.Class(r.IntN(int(ioq.NumClasses)))
					if err := b.Do(context.Background(), &c); err != nil {
						errs <- err
						return
					}
					want = append(want, x...)
					off := r.IntN(len(want))
					rd = Read{File: f, Off: int64(off), Buf: make([]byte, len(want)-off), Class: ioq.ClassRead, done: rd.done}
					n, err := b.ReadAt(context.Background(), &rd)
					if err != nil || n != len(rd.Buf) || !bytes.Equal(rd.Buf, want[off:]) {
						errs <- fmt.Errorf("writer %d read at %d: n=%d err=%v", w, off, n, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}

func TestReadAtEOF(t *testing.T) {
	forEachKind(t, func(t *testing.T, b Backend, dir string) {
		f := create(t, dir, "eof")
		if _, err := f.WriteAt([]byte("0123456789"), 0); err != nil {
			t.Fatal(err)
		}
		rd := Read{File: f, Off: 6, Buf: make([]byte, 10)}
		n, err := b.ReadAt(context.Background(), &rd)
		if n != 4 || !errors.Is(err, io.EOF) || string(rd.Buf[:n]) != "6789" {
			t.Fatalf("n=%d err=%v %q", n, err, rd.Buf[:n])
		}
		rd = Read{File: f, Off: 10, Buf: make([]byte, 1)}
		if n, err := b.ReadAt(context.Background(), &rd); n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("at end: n=%d err=%v", n, err)
		}
		rd = Read{File: f, Off: 3, Buf: nil}
		if n, err := b.ReadAt(context.Background(), &rd); n != 0 || err != nil {
			t.Fatalf("empty read: n=%d err=%v", n, err)
		}
	})
}

func TestWriteErrorReported(t *testing.T) {
	forEachKind(t, func(t *testing.T, b Backend, dir string) {
		w := create(t, dir, "ro")
		ro, err := vfs.OS().Open(w.Name())
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		ok := create(t, dir, "ok")
		c := Commit{Writes: []Write{{File: ok, Bufs: [][]byte{[]byte("fine")}}, {File: ro, Bufs: [][]byte{[]byte("nope")}}}, Sync: true}
		err = b.Do(context.Background(), &c)
		if !errors.Is(err, syscall.EBADF) {
			t.Fatalf("write to a read-only descriptor: %v, want EBADF", err)
		}
		// The backend goes on working.
		c = Commit{Writes: []Write{{File: ok, Off: 4, Bufs: [][]byte{[]byte("!")}}}, Sync: true}
		if err := b.Do(context.Background(), &c); err != nil {
			t.Fatal(err)
		}
	})
}

// observed wraps a file with a vfs.Observer that records calls and can
// inject errors.
type observed struct {
	vfs.File
	mu       sync.Mutex // guards the fields below: backends call from their workers
	log      []string
	allow    int // bytes BeforeWrite allows; <0 means all
	writeErr error
	syncErr  error
}

func (o *observed) BeforeWrite(off int64, n int) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.log = append(o.log, fmt.Sprintf("bw %d %d", off, n))
	if o.allow >= 0 && o.allow < n {
		return o.allow, o.writeErr
	}
	return n, o.writeErr
}

func (o *observed) AfterWrite(off int64, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.log = append(o.log, fmt.Sprintf("aw %d %d", off, n))
}

func (o *observed) BeforeSync() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.log = append(o.log, "bs")
	return o.syncErr
}

func (o *observed) AfterSync() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.log = append(o.log, "as")
}

var _ vfs.Observer = (*observed)(nil)

func TestObserver(t *testing.T) {
	injected := errors.New("injected")
	forEachKind(t, func(t *testing.T, b Backend, dir string) {
		f := &observed{File: create(t, dir, "obs"), allow: -1}
		c := Commit{Writes: []Write{{File: f, Off: 0, Bufs: [][]byte{[]byte("abc"), []byte("de")}}}, Sync: true}
		if err := b.Do(context.Background(), &c); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(f.log); got != "[bw 0 5 bs aw 0 5 as]" && got != "[bw 0 5 aw 0 5 bs as]" {
			t.Fatalf("observer saw %s", got)
		}

		// A partial write with an injected error: 2 bytes reach the file,
		// no sync happens, the error comes back.
		f.log, f.allow, f.writeErr = nil, 2, injected
		c = Commit{Writes: []Write{{File: f, Off: 5, Bufs: [][]byte{[]byte("xyz")}}}, Sync: true}
		if err := b.Do(context.Background(), &c); !errors.Is(err, injected) {
			t.Fatalf("Do = %v, want injected", err)
		}
		if got := fmt.Sprint(f.log); got != "[bw 5 3 aw 5 2]" {
			t.Fatalf("observer saw %s", got)
		}
		if data, _ := os.ReadFile(f.Name()); string(data) != "abcdexy" {
			t.Fatalf("file holds %q", data)
		}

		// A failed sync.
		f.log, f.allow, f.writeErr, f.syncErr = nil, -1, nil, injected
		c = Commit{Writes: []Write{{File: f, Off: 7, Bufs: [][]byte{[]byte("z")}}}, Sync: true}
		if err := b.Do(context.Background(), &c); !errors.Is(err, injected) {
			t.Fatalf("Do = %v, want injected sync error", err)
		}
		for _, e := range f.log {
			if e == "as" {
				t.Fatalf("AfterSync after a failed BeforeSync: %v", f.log)
			}
		}
	})
}

func TestClosed(t *testing.T) {
	for _, k := range kinds(t) {
		b, err := Open(Config{Kind: k})
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		f := create(t, t.TempDir(), "x")
		if err := b.Do(context.Background(), &Commit{Writes: []Write{{File: f, Bufs: [][]byte{{1}}}}}); !errors.Is(err, ErrClosed) {
			t.Errorf("%v: Do after Close = %v", k, err)
		}
	}
}

func TestParseKind(t *testing.T) {
	for _, s := range []string{"auto", "uring", "pwritev2", ""} {
		if _, err := ParseKind(s); err != nil {
			t.Errorf("ParseKind(%q) = %v", s, err)
		}
	}
	if _, err := ParseKind("aio"); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("ParseKind(aio) = %v", err)
	}
}

// BenchmarkCommit writes 256 1 KiB records per commit and fdatasyncs, like
// a group commit of the ingest path.
func BenchmarkCommit(b *testing.B) {
	for _, k := range kinds(b) {
		b.Run("backend="+string(k), func(b *testing.B) {
			be, err := Open(Config{Kind: k})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			f := create(b, b.TempDir(), "bench")
			bufs := make([][]byte, 256)
			for i := range bufs {
				bufs[i] = make([]byte, 1024)
			}
			const limit = 64 << 20 // wrap to keep the file small
			c := Commit{Writes: []Write{{File: f, Bufs: bufs}}, Sync: true}
			b.ReportAllocs()
			b.SetBytes(256 * 1024)
			off := int64(0)
			for b.Loop() {
				c.Writes[0].Off = off
				if err := be.Do(context.Background(), &c); err != nil {
					b.Fatal(err)
				}
				off = (off + 256*1024) % limit
			}
		})
	}
}

func TestThreadInit(t *testing.T) {
	for _, k := range kinds(t) {
		t.Run(string(k), func(t *testing.T) {
			var calls atomic.Int32
			b, err := Open(Config{Kind: k, Workers: 3, ThreadInit: func() { calls.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if n := calls.Load(); n != 3 {
				t.Fatalf("ThreadInit ran %d times, want 3 (one per worker)", n)
			}
		})
	}
}
