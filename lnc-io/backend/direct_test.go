package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
)

// directFile creates name in dir and opens it a second time with O_DIRECT;
// it skips the test where the file system refuses O_DIRECT.
func directFile(t *testing.T, dir, name string) (buffered, direct vfs.File) {
	t.Helper()
	buffered = create(t, dir, name)
	direct, err := vfs.OpenDirect(vfs.OS(), buffered.Name())
	if errors.Is(err, vfs.ErrDirectUnsupported) {
		t.Skipf("%s refuses O_DIRECT: %v", dir, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	return buffered, direct
}

// openDirect opens a backend of kind k with a small pool.
func openDirect(t *testing.T, k Kind, workers, buffers int) Backend {
	t.Helper()
	b, err := Open(Config{Kind: k, Workers: workers, DirectBuffers: buffers, DirectBufferSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// fill writes a pattern of n bytes into a buffer and returns the slice.
func fill(buf *DirectBuf, n int, seed byte) []byte {
	p := buf.Bytes()[:n]
	for i := range p {
		p[i] = seed + byte(i*7)
	}
	return p
}

// writeDirect writes chunks of the pool's buffers to f at increasing
// aligned offsets, some commits with several writes, and returns what the
// file must hold.
func writeDirect(t *testing.T, b Backend, f vfs.File) []byte {
	t.Helper()
	pool, err := b.DirectBuffers()
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for round := range 6 {
		var c Commit
		var held []*DirectBuf
		for k := range 1 + round%3 {
			buf, err := pool.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, buf)
			n := vfs.DirectAlign * (1 + (round+k)%4)
			c.Writes = append(c.Writes, Write{File: f, Off: int64(len(want)), Bufs: [][]byte{fill(buf, n, byte(round*3+k))}, Direct: buf})
			want = append(want, buf.Bytes()[:n]...)
		}
		c.Sync = round%2 == 1
		if err := b.Do(context.Background(), &c); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, buf := range held {
			pool.Release(buf)
		}
	}
	return want
}

func TestDirectWrites(t *testing.T) {
	for _, k := range kinds(t) {
		t.Run("backend="+string(k), func(t *testing.T) {
			b := openDirect(t, k, 1, 4)
			buffered, direct := directFile(t, t.TempDir(), "d")
			want := writeDirect(t, b, direct)
			if err := buffered.Sync(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(buffered.Name())
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("file holds %d bytes (%v), want %d", len(got), err, len(want))
			}
			pool, _ := b.DirectBuffers()
			st := pool.Stats()
			t.Logf("%+v", st)
			switch k {
			case KindURing:
				if !st.Fixed() || st.FixedWrites == 0 || st.PlainWrites != 0 {
					t.Fatalf("uring with registration: %+v, want only fixed writes", st)
				}
			case KindPwritev2:
				if st.Rings != 0 || st.FixedWrites != 0 || st.PlainWrites == 0 {
					t.Fatalf("pwritev2: %+v", st)
				}
			}
		})
	}
}

func TestDirectRegistrationFallback(t *testing.T) {
	if Probe().Err != nil {
		t.Skip("no io_uring")
	}
	testRegisterError = fmt.Errorf("injected: %w", unix.ENOMEM)
	b, err := Open(Config{Kind: KindURing, Workers: 1, DirectBuffers: 4, DirectBufferSize: 16 << 10})
	if err != nil {
		testRegisterError = nil
		t.Fatal(err)
	}
	defer func() {
		b.Close()
		testRegisterError = nil
	}()
	buffered, direct := directFile(t, t.TempDir(), "d")
	want := writeDirect(t, b, direct)
	got, _ := os.ReadFile(buffered.Name())
	if !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes, want %d", len(got), len(want))
	}
	pool, _ := b.DirectBuffers()
	st := pool.Stats()
	if st.Fixed() || st.Failed != 1 || !errors.Is(st.RegisterErr, unix.ENOMEM) || st.FixedWrites != 0 || st.PlainWrites == 0 {
		t.Fatalf("stats after a refused registration: %+v", st)
	}
}

// TestDirectMemlockFallback runs TestDirectMemlockChild in a process
// without CAP_IPC_LOCK (capsh drops it), where the kernel charges
// registered buffers to a small RLIMIT_MEMLOCK and refuses them: the
// backend must fall back to ordinary writes on its own.
func TestDirectMemlockFallback(t *testing.T) {
	if Probe().Err != nil {
		t.Skip("no io_uring")
	}
	capsh, err := exec.LookPath("capsh")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and capsh (libcap2-bin) to drop CAP_IPC_LOCK")
	}
	dir := t.TempDir()
	cmd := exec.Command(capsh, "--drop=cap_ipc_lock", "--", "-c", `exec "$0" -test.run='^TestDirectMemlockChild$' -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), "LNC_MEMLOCK_CHILD_DIR="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if !bytes.Contains(out, []byte("=== RUN   TestDirectMemlockChild")) {
		t.Skipf("capsh could not start the child without CAP_IPC_LOCK: %v", err)
	}
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
	if bytes.Contains(out, []byte("--- SKIP: TestDirectMemlockChild")) {
		t.Skip("the child's kernel did not refuse the registration")
	}
	if !bytes.Contains(out, []byte("fallback in use")) {
		t.Fatal("child did not check the fallback")
	}
}

// TestDirectMemlockChild is the child of TestDirectMemlockFallback; on its
// own it does nothing.
func TestDirectMemlockChild(t *testing.T) {
	dir := os.Getenv("LNC_MEMLOCK_CHILD_DIR")
	if dir == "" {
		t.Skip("run by TestDirectMemlockFallback")
	}
	lim := unix.Rlimit{Cur: 64 << 10, Max: 64 << 10}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		t.Fatal(err)
	}
	b, err := Open(Config{Kind: KindURing, Workers: 1}) // default pool: 8 MiB
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	buffered, direct := directFile(t, dir, "d")
	want := writeDirect(t, b, direct)
	got, _ := os.ReadFile(buffered.Name())
	if !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes, want %d", len(got), len(want))
	}
	pool, _ := b.DirectBuffers()
	st := pool.Stats()
	if st.Registered == 1 {
		t.Skipf("8 MiB registered under a 64 KiB memlock limit (CAP_IPC_LOCK kept?): %+v", st)
	}
	if st.Failed != 1 || st.PlainWrites == 0 || st.FixedWrites != 0 {
		t.Fatalf("stats under a 64 KiB memlock limit: %+v", st)
	}
	t.Logf("fallback in use: %v", st.RegisterErr)
}

func TestDirectPoolBounded(t *testing.T) {
	for _, k := range kinds(t) {
		t.Run("backend="+string(k), func(t *testing.T) {
			b := openDirect(t, k, 1, 2)
			pool, err := b.DirectBuffers()
			if err != nil {
				t.Fatal(err)
			}
			if again, _ := b.DirectBuffers(); again != pool {
				t.Fatal("DirectBuffers made a second pool")
			}
			if pool.Buffers() != 2 || pool.BufferSize() != 16<<10 {
				t.Fatalf("pool of %d × %d", pool.Buffers(), pool.BufferSize())
			}
			b1, _ := pool.Acquire(context.Background())
			b2, _ := pool.Acquire(context.Background())
			if b1.Index() == b2.Index() {
				t.Fatal("one buffer handed out twice")
			}
			for _, x := range []*DirectBuf{b1, b2} {
				if addr := reflect.ValueOf(&x.Bytes()[0]).Pointer(); addr%vfs.DirectAlign != 0 {
					t.Fatalf("buffer at %#x is not aligned", addr)
				}
			}
			if _, ok := pool.TryAcquire(); ok {
				t.Fatal("TryAcquire succeeded on an empty pool")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if _, err := pool.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Acquire on an empty pool = %v", err)
			}
			// A waiter gets the buffer released meanwhile.
			got := make(chan *DirectBuf)
			go func() {
				x, _ := pool.Acquire(context.Background())
				got <- x
			}()
			time.Sleep(5 * time.Millisecond)
			pool.Release(b1)
			if x := <-got; x != b1 {
				t.Fatal("the waiter got another buffer")
			}
			func() {
				defer func() {
					if recover() == nil {
						t.Fatal("double Release did not panic")
					}
				}()
				pool.Release(b1)
				pool.Release(b1)
			}()
		})
	}
}

func TestDirectBadWrites(t *testing.T) {
	forEachKind(t, func(t *testing.T, b Backend, dir string) {
		pool, err := b.DirectBuffers()
		if err != nil {
			t.Fatal(err)
		}
		f := create(t, dir, "bad")
		buf, _ := pool.Acquire(context.Background())
		defer pool.Release(buf)
		other := make([]byte, 4096)
		for name, bufs := range map[string][][]byte{
			"heap slice": {other},
			"two slices": {buf.Bytes()[:4096], buf.Bytes()[4096:8192]},
			"re-capped":  {buf.Bytes()[4096:8192:8192]},
		} {
			c := Commit{Writes: []Write{{File: f, Bufs: bufs, Direct: buf}}, Sync: true}
			if err := b.Do(context.Background(), &c); !errors.Is(err, ErrBadDirectWrite) {
				t.Errorf("%s: Do = %v, want ErrBadDirectWrite", name, err)
			}
		}
		// An interior slice is fine.
		c := Commit{Writes: []Write{{File: f, Bufs: [][]byte{buf.Bytes()[4096:8192]}, Direct: buf}}, Sync: true}
		if err := b.Do(context.Background(), &c); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDirectObserved checks that direct writes reach the file's observer
// and write checker, through faultfs: misaligned writes are refused before
// anything is written, aligned ones are counted and modelled.
func TestDirectObserved(t *testing.T) {
	forEachKind(t, func(t *testing.T, b Backend, dir string) {
		fsys := faultfs.New(vfs.OS(), 1)
		name := filepath.Join(dir, "obs")
		bf, err := fsys.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		defer bf.Close()
		if err := fsys.SyncDir(dir); err != nil {
			t.Fatal(err)
		}
		df, err := fsys.OpenDirect(name)
		if err != nil {
			t.Fatal(err)
		}
		defer df.Close()
		pool, _ := b.DirectBuffers()
		buf, _ := pool.Acquire(context.Background())
		defer pool.Release(buf)
		data := fill(buf, 8192, 1)
		before := fsys.Stats()
		for name, w := range map[string]Write{
			"offset": {File: df, Off: 512, Bufs: [][]byte{data[:4096]}, Direct: buf},
			"length": {File: df, Bufs: [][]byte{data[:1000]}, Direct: buf},
			"memory": {File: df, Bufs: [][]byte{data[512 : 512+4096]}, Direct: buf},
		} {
			c := Commit{Writes: []Write{w}, Sync: true}
			if err := b.Do(context.Background(), &c); !errors.Is(err, syscall.EINVAL) || !errors.Is(err, faultfs.ErrMisaligned) {
				t.Errorf("misaligned %s: Do = %v, want EINVAL", name, err)
			}
		}
		if st := fsys.Stats(); st.Writes != before.Writes || st.BytesWritten != before.BytesWritten {
			t.Fatalf("misaligned writes reached the model: %+v", st)
		}
		c := Commit{Writes: []Write{{File: df, Bufs: [][]byte{data}, Direct: buf}}, Sync: true}
		if err := b.Do(context.Background(), &c); err != nil {
			t.Fatal(err)
		}
		if st := fsys.Stats(); st.Writes != before.Writes+1 || st.BytesWritten != before.BytesWritten+8192 || st.Syncs != before.Syncs+1 {
			t.Fatalf("direct write not seen by the model: before %+v after %+v", before, st)
		}
		// Synced through the direct handle: durable for every handle.
		if err := fsys.CutPower(); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(name)
		if !bytes.Equal(got, data) {
			t.Fatalf("after a power cut the file holds %d bytes, want the 8192 synced", len(got))
		}
	})
}

func TestDirectClose(t *testing.T) {
	for _, k := range kinds(t) {
		b, err := Open(Config{Kind: k, DirectBuffers: 2, DirectBufferSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		pool, _ := b.DirectBuffers()
		held, _ := pool.Acquire(context.Background())
		b.Close()
		// The held buffer stays usable until released.
		clear(held.Bytes())
		if _, err := pool.Acquire(context.Background()); !errors.Is(err, ErrClosed) {
			t.Errorf("%s: Acquire after Close = %v", k, err)
		}
		if _, err := b.DirectBuffers(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("%s: DirectBuffers after Close = %v", k, err)
		}
		pool.Release(held)
		// A backend closed before anyone asked for the pool has none.
		b2, _ := Open(Config{Kind: k})
		b2.Close()
		if _, err := b2.DirectBuffers(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s: DirectBuffers of a closed backend = %v", k, err)
		}
	}
}

func TestDirectConfig(t *testing.T) {
	for _, k := range kinds(t) {
		for _, cfg := range []Config{{DirectBufferSize: 1000}, {DirectBufferSize: -4096}, {DirectBuffers: 5000}, {DirectBufferSize: 2 << 30}} {
			cfg.Kind = k
			if b, err := Open(cfg); !errors.Is(err, ErrInvalidConfig) {
				if b != nil {
					b.Close()
				}
				t.Errorf("%s: Open(%+v) = %v, want ErrInvalidConfig", k, cfg, err)
			}
		}
		b, err := Open(Config{Kind: k, DirectBuffers: -1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.DirectBuffers(); !errors.Is(err, ErrNoDirectBuffers) {
			t.Errorf("%s: DirectBuffers without a pool = %v", k, err)
		}
		b.Close()
		b, _ = Open(Config{Kind: k})
		pool, err := b.DirectBuffers()
		if err != nil || pool.Buffers() != DefaultDirectBuffers || pool.BufferSize() != DefaultDirectBufferSize {
			t.Errorf("%s: default pool %v", k, err)
		}
		b.Close()
	}
}
