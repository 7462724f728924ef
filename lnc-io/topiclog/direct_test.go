package topiclog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
)

// forEachDirectFS runs f per backend on the two file systems direct mode
// meets: faultfs (which enforces O_DIRECT's alignment rules on every
// write, whatever the disk) and the OS one (real O_DIRECT).
func forEachDirectFS(t *testing.T, f func(t *testing.T, be backend.Backend, fs vfs.FS, dir string)) {
	for _, k := range kinds(t) {
		t.Run("backend="+string(k)+"/fs=faultfs", func(t *testing.T) {
			f(t, openBackend(t, k), faultfs.New(vfs.OS(), 1), filepath.Join(t.TempDir(), "topic"))
		})
		t.Run("backend="+string(k)+"/fs=os", func(t *testing.T) {
			f(t, openBackend(t, k), vfs.OS(), filepath.Join(tempDir(t, true), "topic"))
		})
	}
}

// directChecker appends batches of chosen sizes to a direct log and checks
// after every Sync what the files hold.
type directChecker struct {
	t       *testing.T
	fs      vfs.FS
	be      backend.Backend
	dir     string
	segSize int64
	l       *Log
	want    []byte // every byte ever appended and synced
	n       int
}

func (c *directChecker) open() {
	c.t.Helper()
	l, err := Open(c.dir, Options{FS: c.fs, Backend: c.be, SegmentSize: c.segSize, Prealloc: -1, Direct: true})
	if err != nil {
		c.t.Fatal(err)
	}
	c.l = l
	c.checkTail("after open")
}

// reopen closes and opens the log: the writer rebuilds its tail block
// from the file, and recovery cut the padding.
func (c *directChecker) reopen() {
	c.t.Helper()
	c.l.Close()
	c.open()
	if size, logical := c.activeSizes(); size != logical {
		c.t.Fatalf("after reopen the active data file holds %d bytes, its batches %d: padding not cut", size, logical)
	}
	c.checkContent("after reopen")
}

// activeSizes returns the active data file's size on disk and the
// segment's logical size.
func (c *directChecker) activeSizes() (int64, int64) {
	c.t.Helper()
	w := &c.l.w
	size, err := w.active.data.Size()
	if err != nil {
		c.t.Fatal(err)
	}
	return size, w.active.size
}

// sync appends batches of the given sizes and syncs.
func (c *directChecker) sync(sizes ...int) {
	c.t.Helper()
	for _, n := range sizes {
		d := make([]byte, n)
		for i := range d {
			d[i] = byte(c.n*31 + i*7 + 1) // never all zeros: padding is told apart
		}
		c.n++
		if _, err := c.l.Append(Batch{Data: d}); err != nil {
			c.t.Fatal(err)
		}
		c.want = append(c.want, d...)
	}
	if err := c.l.Sync(ctx); err != nil {
		c.t.Fatal(err)
	}
	what := fmt.Sprintf("after batches %v", sizes)
	c.checkContent(what)
	c.checkTail(what)
	c.checkSealed(what)
}

// checkContent reads the whole log back.
func (c *directChecker) checkContent(what string) {
	c.t.Helper()
	if c.l.End() != uint64(len(c.want)) {
		c.t.Fatalf("%s: End %d, want %d", what, c.l.End(), len(c.want))
	}
	if got := readAll(c.t, c.l); !bytes.Equal(got, c.want) {
		c.t.Fatalf("%s: the log reads back other bytes", what)
	}
}

// checkTail verifies the active segment's tail block and padding: the
// file ends at the next block boundary (or exactly at the logical end
// after a reopen), what lies past the logical end is zeros, and the
// writer's tail is the file's last partial block.
func (c *directChecker) checkTail(what string) {
	c.t.Helper()
	w := &c.l.w
	size, logical := c.activeSizes()
	if size != logical && size != alignUp(logical) {
		c.t.Fatalf("%s: active data file of %d bytes for %d logical", what, size, logical)
	}
	if int64(len(w.tail)) != logical%directBlock {
		c.t.Fatalf("%s: tail of %d bytes, want %d", what, len(w.tail), logical%directBlock)
	}
	block := make([]byte, size-alignDown(logical))
	if _, err := w.active.data.ReadAt(block, alignDown(logical)); err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
	if !bytes.Equal(block[:len(w.tail)], w.tail) {
		c.t.Fatalf("%s: the writer's tail differs from the file's last block", what)
	}
	if pad := block[len(w.tail):]; bytes.Count(pad, []byte{0}) != len(pad) {
		c.t.Fatalf("%s: padding past the logical end is not zeros", what)
	}
	if int64(len(w.tail)) > 0 && !bytes.Equal(w.tail, c.want[len(c.want)-len(w.tail):]) {
		c.t.Fatalf("%s: tail holds other bytes than the log's last ones", what)
	}
}

// checkSealed verifies that every sealed segment's data file is exactly
// its batches: sealing cut the padding.
func (c *directChecker) checkSealed(what string) {
	c.t.Helper()
	c.l.mu.Lock() // the segment list is guarded by the Log's mutex; held for the copy only
	segs := append([]*segment(nil), c.l.segs...)
	c.l.mu.Unlock()
	for _, s := range segs[:len(segs)-1] {
		size, err := s.data.Size()
		if err != nil {
			c.t.Fatal(err)
		}
		if size != s.size {
			c.t.Fatalf("%s: sealed segment %d: data file of %d bytes, %d of batches", what, s.base, size, s.size)
		}
	}
}

func TestDirectTailBlock(t *testing.T) {
	forEachDirectFS(t, func(t *testing.T, be backend.Backend, fs vfs.FS, dir string) {
		c := &directChecker{t: t, fs: fs, be: be, dir: dir, segSize: 64 << 10}
		c.open()
		defer func() { c.l.Close() }()
		// Around one block: the tail grows, fills a block exactly,
		// spills over.
		c.sync(1)
		c.sync(4094)    // ends at 4095
		c.sync(1)       // ends at 4096: no tail
		c.sync(4096)    // a whole block, no tail
		c.sync(4097)    // ends one byte into a block
		c.sync(1, 1, 1) // several batches in one Sync
		c.reopen()
		c.sync(4095)
		c.reopen()
		// Byte by byte across a block boundary.
		for range 10 {
			c.sync(1)
		}
		// Larger than the tests' buffers (one block each, three in the
		// pool): several chunks per commit and several commits per Sync.
		c.sync(3*directBlock + 5)
		c.sync(7*directBlock - 3)
		c.sync(10 * directBlock)
		c.reopen()
		// Many sizes, with reopens and segment rolls.
		r := rand.New(rand.NewPCG(9, 9))
		for i := range 60 {
			sizes := make([]int, 1+r.IntN(4))
			for j := range sizes {
				switch r.IntN(4) {
				case 0:
					sizes[j] = 1 + r.IntN(16)
				case 1:
					sizes[j] = directBlock + r.IntN(3) - 1
				default:
					sizes[j] = 1 + r.IntN(3*directBlock)
				}
			}
			c.sync(sizes...)
			if i%13 == 12 {
				c.reopen()
			}
		}
		if n := len(c.l.Segments()); n < 3 {
			t.Fatalf("only %d segments: no roll tested", n)
		}
	})
}

// TestDirectRoll seals segments whose end is not block-aligned: each
// sealed data file is cut to its exact size before the next segment
// exists.
func TestDirectRoll(t *testing.T) {
	forEachDirectFS(t, func(t *testing.T, be backend.Backend, fs vfs.FS, dir string) {
		c := &directChecker{t: t, fs: fs, be: be, dir: dir, segSize: 10000}
		c.open()
		defer func() { c.l.Close() }()
		for range 12 {
			c.sync(3001, 2999) // 6000 per Sync: every second Append rolls
		}
		c.reopen()
		c.sync(1)
		if n := len(c.l.Segments()); n < 6 {
			t.Fatalf("%d segments", n)
		}
	})
}

// TestDirectRecoveryCutsPadding checks, on the files, that a direct log
// closed (or crashed) with padding after its last batch is cut back to
// the batch by the next Open, and that the bytes survive.
func TestDirectRecoveryCutsPadding(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		if !direct {
			t.Skip("direct mode only")
		}
		dir := filepath.Join(tempDir(t, true), "topic")
		l := openLog(t, vfs.OS(), be, true, dir, 1<<20)
		want := bytes.Repeat([]byte("padded"), 1000) // 6000 bytes
		l.Append(Batch{Data: want})
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		l.Close()
		data, _ := segmentPaths(dir, 0)
		if st, _ := os.Stat(data); st.Size() != alignUp(int64(len(want))) {
			t.Fatalf("data file of %d bytes while active, want %d (padded)", st.Size(), alignUp(int64(len(want))))
		}
		l = openLog(t, vfs.OS(), be, true, dir, 1<<20)
		defer l.Close()
		if st, _ := os.Stat(data); st.Size() != int64(len(want)) {
			t.Fatalf("data file of %d bytes after recovery, want %d", st.Size(), len(want))
		}
		if !bytes.Equal(readAll(t, l), want) {
			t.Fatal("content changed")
		}
	})
}

// noDirectFS hides OpenDirect; refusingFS answers it like tmpfs on older
// kernels.
type (
	noDirectFS struct{ vfs.FS }
	refusingFS struct{ vfs.FS }
)

func (refusingFS) OpenDirect(name string) (vfs.File, error) {
	return nil, &os.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: %w", vfs.ErrDirectUnsupported, syscall.EINVAL)}
}

func TestDirectRefused(t *testing.T) {
	be := openBackend(t, backend.KindPwritev2)
	for name, fs := range map[string]vfs.FS{"no OpenDirect": noDirectFS{vfs.OS()}, "EINVAL": refusingFS{vfs.OS()}} {
		_, err := Open(t.TempDir(), Options{FS: fs, Backend: be, Direct: true})
		if !errors.Is(err, vfs.ErrDirectUnsupported) || !strings.Contains(err.Error(), "Options.Direct") {
			t.Errorf("%s: Open = %v, want an error naming Options.Direct and wrapping ErrDirectUnsupported", name, err)
		}
	}
	nopool, err := backend.Open(backend.Config{Kind: backend.KindPwritev2, DirectBuffers: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer nopool.Close()
	if _, err := Open(t.TempDir(), Options{FS: faultfs.New(vfs.OS(), 1), Backend: nopool, Direct: true}); !errors.Is(err, backend.ErrNoDirectBuffers) {
		t.Errorf("Open with a backend without a pool = %v", err)
	}
	// The refusal leaves the directory usable without the option.
	dir := t.TempDir()
	if _, err := Open(dir, Options{FS: noDirectFS{vfs.OS()}, Backend: be, Direct: true}); err == nil {
		t.Fatal("Open succeeded")
	}
	l, err := Open(dir, Options{FS: noDirectFS{vfs.OS()}, Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// TestDirectFixedWrites checks which kind of write direct mode issued:
// fixed (registered buffers) on io_uring, plain pwritev2 otherwise.
func TestDirectFixedWrites(t *testing.T) {
	for _, k := range kinds(t) {
		t.Run("backend="+string(k), func(t *testing.T) {
			be := openBackend(t, k)
			l, err := Open(filepath.Join(t.TempDir(), "topic"), Options{FS: faultfs.New(vfs.OS(), 1), Backend: be, Direct: true})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			for range 5 {
				l.Append(Batch{Data: bytes.Repeat([]byte{7}, 5000)})
				if err := l.Sync(ctx); err != nil {
					t.Fatal(err)
				}
			}
			pool, _ := be.DirectBuffers()
			st := pool.Stats()
			t.Logf("%+v", st)
			if k == backend.KindURing && (st.FixedWrites == 0 || st.PlainWrites != 0) {
				t.Fatalf("uring: %+v, want fixed writes only", st)
			}
			if k == backend.KindPwritev2 && st.PlainWrites == 0 {
				t.Fatalf("pwritev2: %+v", st)
			}
		})
	}
}

// TestDirectSyncWaitsForBuffers: a Sync finds the pool empty; its context
// ends while it waits, which does not break the log; once a buffer is
// back, the next Sync writes everything.
func TestDirectSyncWaitsForBuffers(t *testing.T) {
	for _, k := range kinds(t) {
		t.Run("backend="+string(k), func(t *testing.T) {
			be := openBackend(t, k)
			l, err := Open(filepath.Join(t.TempDir(), "topic"), Options{FS: faultfs.New(vfs.OS(), 1), Backend: be, Direct: true})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			pool, _ := be.DirectBuffers()
			var held []*backend.DirectBuf
			for range pool.Buffers() {
				b, _ := pool.Acquire(ctx)
				held = append(held, b)
			}
			want := []byte("waiting for a buffer")
			l.Append(Batch{Data: want})
			short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			if err := l.Sync(short); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrWriteFailed) {
				t.Fatalf("Sync with no buffer free = %v, want a non-sticky DeadlineExceeded", err)
			}
			if l.End() != 0 || l.Pending() != 1 {
				t.Fatalf("End %d, %d pending", l.End(), l.Pending())
			}
			done := make(chan error)
			go func() { done <- l.Sync(ctx) }()
			time.Sleep(10 * time.Millisecond)
			for _, b := range held {
				pool.Release(b)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, l); !bytes.Equal(got, want) {
				t.Fatalf("log holds %q", got)
			}
		})
	}
}

func TestGather(t *testing.T) {
	g := gather{bufs: [][]byte{nil, []byte("ab"), {}, []byte("cdefg"), []byte("h")}}
	var got []string
	for {
		dst := make([]byte, 3)
		n := g.copyTo(dst)
		if n == 0 {
			break
		}
		got = append(got, string(dst[:n]))
	}
	if fmt.Sprint(got) != "[abc def gh]" {
		t.Fatalf("chunks %v", got)
	}
}
