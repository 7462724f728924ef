package lance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newFileStoreT(t *testing.T) *FileOffsetStore {
	t.Helper()
	s, err := NewFileOffsetStore(filepath.Join(t.TempDir(), "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loadT(t *testing.T, s OffsetStore, topic string, consumer uint64) (Offset, bool) {
	t.Helper()
	off, ok, err := s.Load(context.Background(), topic, consumer)
	if err != nil {
		t.Fatalf("Load(%q, %d): %v", topic, consumer, err)
	}
	return off, ok
}

func TestFileOffsetStoreRoundTrip(t *testing.T) {
	s := newFileStoreT(t)
	ctx := context.Background()
	if off, ok := loadT(t, s, "orders", 1); ok || off != 0 {
		t.Fatalf("empty store: %d, %v", off, ok)
	}
	long := strings.Repeat("Ab-9", 63) + "xyz" // 255 bytes
	for _, tc := range []struct {
		topic    string
		consumer uint64
		off      Offset
	}{
		{"orders", 1, 0},
		{"orders", 2, 4096},
		{"Orders", 1, 77}, // differs from "orders" only in case
		{"orders", 1<<64 - 1, 1<<64 - 1},
		{long, 3, 12345},
		{long[:254], 3, 54321}, // long names with the same prefix stay apart
	} {
		if err := s.Commit(ctx, tc.topic, tc.consumer, tc.off); err != nil {
			t.Fatal(err)
		}
		if off, ok := loadT(t, s, tc.topic, tc.consumer); !ok || off != tc.off {
			t.Fatalf("%q/%d: got %d, %v; want %d", tc.topic, tc.consumer, off, ok, tc.off)
		}
	}
	// Every pair kept its own value.
	want := map[string]Offset{"orders/1": 0, "orders/2": 4096, "Orders/1": 77}
	for k, w := range want {
		topic, c, _ := strings.Cut(k, "/")
		var id uint64
		fmt.Sscan(c, &id)
		if off, ok := loadT(t, s, topic, id); !ok || off != w {
			t.Fatalf("%s: got %d, %v; want %d", k, off, ok, w)
		}
	}
	if off, _ := loadT(t, s, long, 3); off != 12345 {
		t.Fatalf("long name: %d", off)
	}
	// Overwriting replaces the value.
	if err := s.Commit(ctx, "orders", 2, 8192); err != nil {
		t.Fatal(err)
	}
	if off, _ := loadT(t, s, "orders", 2); off != 8192 {
		t.Fatalf("after overwrite: %d", off)
	}
	// A second store on the same directory sees the same values.
	s2, err := NewFileOffsetStore(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if off, ok := loadT(t, s2, "orders", 2); !ok || off != 8192 {
		t.Fatalf("reopened: %d, %v", off, ok)
	}
	// File names stay within common limits; no temporary file is left.
	entries, err := os.ReadDir(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if len(e.Name()) > 200 || strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("file %q", e.Name())
		}
	}
	if err := s.Commit(ctx, "bad/name", 1, 1); !errors.Is(err, ErrInvalidTopicName) {
		t.Fatalf("bad name: %v", err)
	}
	if _, _, err := s.Load(ctx, "../x", 1); !errors.Is(err, ErrInvalidTopicName) {
		t.Fatalf("bad name: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Commit(cctx, "orders", 2, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled commit: %v", err)
	}
}

func TestFileOffsetStoreCrashSafety(t *testing.T) {
	s := newFileStoreT(t)
	ctx := context.Background()
	if err := s.Commit(ctx, "events", 9, 1000); err != nil {
		t.Fatal(err)
	}
	final, err := s.path("events", 9)
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(final)
	if err != nil {
		t.Fatal(err)
	}

	// A crash after the temporary file was written (whole or in part) but
	// before the rename leaves the old value in place.
	tmp := final + ".tmp"
	for _, leftover := range [][]byte{
		encodeOffsetFile("events", 9, 2000),
		encodeOffsetFile("events", 9, 2000)[:7],
		nil,
	} {
		if err := os.WriteFile(tmp, leftover, 0o644); err != nil {
			t.Fatal(err)
		}
		if off, ok := loadT(t, s, "events", 9); !ok || off != 1000 {
			t.Fatalf("with a leftover temporary file: %d, %v", off, ok)
		}
	}
	// The next commit goes through over the leftover.
	if err := s.Commit(ctx, "events", 9, 3000); err != nil {
		t.Fatal(err)
	}
	if off, _ := loadT(t, s, "events", 9); off != 3000 {
		t.Fatalf("after commit over a leftover: %d", off)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file still there: %v", err)
	}

	// Damaged files are errors, never a silent 0.
	flipped := append([]byte(nil), good...)
	flipped[14] ^= 0x40 // inside the offset
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 1
	other, err := os.ReadFile(func() string {
		if err := s.Commit(ctx, "events", 10, 5); err != nil {
			t.Fatal(err)
		}
		p, _ := s.path("events", 10)
		return p
	}())
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"bit flip":         flipped,
		"bad checksum":     badCRC,
		"cut short":        good[:len(good)-3],
		"empty":            {},
		"zeros":            make([]byte, len(good)),
		"another consumer": other,
		"too long":         append(append([]byte(nil), good...), make([]byte, 400)...),
	} {
		if err := os.WriteFile(final, content, 0o644); err != nil {
			t.Fatal(err)
		}
		off, ok, err := s.Load(ctx, "events", 9)
		if !errors.Is(err, ErrCorruptOffset) || ok || off != 0 {
			t.Errorf("%s: got %d, %v, %v; want ErrCorruptOffset", name, off, ok, err)
		}
	}
	// A commit repairs the file.
	if err := s.Commit(ctx, "events", 9, 4000); err != nil {
		t.Fatal(err)
	}
	if off, _ := loadT(t, s, "events", 9); off != 4000 {
		t.Fatalf("after repair: %d", off)
	}
}

func TestFileOffsetStoreConcurrent(t *testing.T) {
	s := newFileStoreT(t)
	ctx := context.Background()
	const (
		pairs   = 3
		writers = 3
		commits = 40
	)
	// Writer w of a pair commits the offsets congruent to w modulo
	// writers; readers check that every value they see was committed.
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 64)
	for p := range pairs {
		topic := fmt.Sprintf("t%d", p)
		for w := range writers {
			wg.Go(func() {
				for i := range commits {
					if err := s.Commit(ctx, topic, 1, Offset(i*writers+w)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	var readers sync.WaitGroup
	for p := range pairs {
		topic := fmt.Sprintf("t%d", p)
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				off, ok, err := s.Load(ctx, topic, 1)
				if err != nil {
					errs <- err
					return
				}
				if ok && off >= commits*writers {
					errs <- fmt.Errorf("%s: read %d, never committed", topic, off)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for p := range pairs {
		// The last commit of some writer wins.
		off, ok := loadT(t, s, fmt.Sprintf("t%d", p), 1)
		if !ok || int(off)/writers != commits-1 {
			t.Fatalf("t%d: %d, %v", p, off, ok)
		}
	}
}

func TestServerOffsetStore(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 60*time.Second)
	if _, err := c.CreateTopic(ctx, "committed"); err != nil {
		t.Fatal(err)
	}
	st := NewServerOffsetStore(c)
	if off, ok := loadT(t, st, "committed", 5); ok || off != 0 {
		t.Fatalf("nothing committed: %d, %v", off, ok)
	}
	if err := st.Commit(ctx, "committed", 5, 1234); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, "committed", 6, 99); err != nil {
		t.Fatal(err)
	}
	if off, ok := loadT(t, st, "committed", 5); !ok || off != 1234 {
		t.Fatalf("after commit: %d, %v", off, ok)
	}
	// A committed 0 reads as nothing committed: the protocol cannot tell.
	if err := st.Commit(ctx, "committed", 7, 0); err != nil {
		t.Fatal(err)
	}
	if off, ok := loadT(t, st, "committed", 7); ok || off != 0 {
		t.Fatalf("committed 0: %d, %v", off, ok)
	}

	// Commits survive a server restart.
	s.stop()
	s.start(false)
	c2 := dialT(t, s)
	st2 := NewServerOffsetStore(c2)
	if off, ok := loadT(t, st2, "committed", 5); !ok || off != 1234 {
		t.Fatalf("after restart: %d, %v", off, ok)
	}
	if off, ok := loadT(t, st2, "committed", 6); !ok || off != 99 {
		t.Fatalf("after restart, consumer 6: %d, %v", off, ok)
	}

	if err := st2.Commit(ctx, "missing", 5, 1); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("commit to a missing topic: %v", err)
	}
	if _, _, err := st2.Load(ctx, "missing", 5); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("load from a missing topic: %v", err)
	}
	if err := st2.Commit(ctx, "no_good", 5, 1); !errors.Is(err, ErrInvalidTopicName) {
		t.Fatalf("bad name: %v", err)
	}
	c2.Close()
	if err := st2.Commit(ctx, "committed", 5, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestConsumerResume runs a consumer that commits part-way, closes it,
// and checks that a new consumer with the same store and id starts with
// the first record after the commit, for both stores.
func TestConsumerResume(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 90*time.Second)
	const topic, n = "resume", 60
	if _, err := c.CreateTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(c, WithBatchBytes(200))
	if err != nil {
		t.Fatal(err)
	}
	// Small batches of several records each, so that commits fall inside
	// batches as well as between them.
	for i := range n {
		if err := p.Produce(ctx, topic, Record{Value: fmt.Appendf(nil, "r%02d", i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}

	stores := map[string]OffsetStore{
		"file":   newFileStoreT(t),
		"server": NewServerOffsetStore(c),
	}
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			// read hands out records from a new consumer until stop says
			// so, committing after each record for which commit says so.
			read := func(stop func(i int) bool, commit func(i int) bool) []string {
				t.Helper()
				cons, err := NewConsumer(c, topic, WithOffsetStore(store, 42), WithMaxWait(50*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				defer cons.Close()
				var got []string
				for rec, err := range cons.Records(ctx) {
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, string(rec.Value))
					if commit(len(got)) {
						if err := cons.Commit(ctx); err != nil {
							t.Fatal(err)
						}
					}
					if stop(len(got)) {
						break
					}
				}
				return got
			}
			want := func(from, to int) []string {
				var out []string
				for i := from; i < to; i++ {
					out = append(out, fmt.Sprintf("r%02d", i))
				}
				return out
			}
			// First run: commit after records 7, 13 and 22 (counting from
			// 1), read on to 30 and stop without committing again.
			got := read(func(i int) bool { return i == 30 }, func(i int) bool { return i == 7 || i == 13 || i == 22 })
			if !equalStrings(got, want(0, 30)) {
				t.Fatalf("first run: %v", got)
			}
			// Second run: begins right after the 22nd record; the eight
			// read past the commit come again, nothing earlier does.
			got = read(func(i int) bool { return i == 10 }, func(i int) bool { return i == 10 })
			if !equalStrings(got, want(22, 32)) {
				t.Fatalf("second run: %v", got)
			}
			// Third run: to the end, committing after every record.
			got = read(func(i int) bool { return i == n-32 }, func(int) bool { return true })
			if !equalStrings(got, want(32, n)) {
				t.Fatalf("third run: %v", got)
			}
			// Everything is committed: a new consumer has nothing to read.
			cons, err := NewConsumer(c, topic, WithOffsetStore(store, 42), WithMaxWait(50*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			rs, err := cons.Poll(ctx)
			if err != nil || len(rs) != 0 {
				t.Fatalf("after the last commit: %d records, %v", len(rs), err)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConsumerOffsetStoreStart covers where a consumer with a store
// starts when nothing is committed, Commit before the first fetch and
// Commit without a store.
func TestConsumerOffsetStoreStart(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	ctx := testCtx(t, 60*time.Second)
	const topic = "start"
	if _, err := c.CreateTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(c)
	if err != nil {
		t.Fatal(err)
	}
	var offs []Offset
	for i := range 5 {
		o, err := p.ProduceSync(ctx, topic, Record{Value: fmt.Appendf(nil, "v%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, o)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	store := newFileStoreT(t)
	newCons := func(opts ...ConsumerOption) *Consumer {
		t.Helper()
		cons, err := NewConsumer(c, topic, append(opts, WithMaxWait(50*time.Millisecond))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cons.Close() })
		return cons
	}
	first := func(cons *Consumer) string {
		t.Helper()
		rs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			return ""
		}
		return string(rs[0].Value)
	}

	// Nothing committed: a Seek before the first fetch decides.
	cons := newCons(WithOffsetStore(store, 1))
	if err := cons.Seek(ctx, SeekOffset(offs[2])); err != nil {
		t.Fatal(err)
	}
	if v := first(cons); v != "v2" {
		t.Fatalf("fallback seek: %q", v)
	}
	// Without a Seek, the beginning.
	if v := first(newCons(WithOffsetStore(store, 2))); v != "v0" {
		t.Fatalf("no commit, no seek: %q", v)
	}

	// Something committed: it wins over a Seek made before the first
	// fetch; a Seek after it moves the consumer.
	if err := store.Commit(ctx, topic, 3, offs[3]); err != nil {
		t.Fatal(err)
	}
	cons = newCons(WithOffsetStore(store, 3))
	if err := cons.Seek(ctx, SeekEnd); err != nil {
		t.Fatal(err)
	}
	if v := first(cons); v != "v3" {
		t.Fatalf("committed offset: %q", v)
	}
	if err := cons.Seek(ctx, SeekOffset(offs[1])); err != nil {
		t.Fatal(err)
	}
	if v := first(cons); v != "v1" {
		t.Fatalf("seek after the first fetch: %q", v)
	}

	// Commit before the first fetch keeps the committed offset.
	cons = newCons(WithOffsetStore(store, 3))
	if err := cons.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if off, _ := loadT(t, store, topic, 3); off != offs[3] {
		t.Fatalf("early commit changed the offset to %d", off)
	}
	if pos := cons.Position(); pos != offs[3] {
		t.Fatalf("Position after an early commit: %d", pos)
	}

	// A damaged offset file stops the consumer with the error.
	path, _ := store.path(topic, 4)
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	cons = newCons(WithOffsetStore(store, 4))
	if _, err := cons.Poll(ctx); !errors.Is(err, ErrCorruptOffset) {
		t.Fatalf("Poll with a damaged offset: %v", err)
	}
	for _, err := range cons.Records(ctx) {
		if !errors.Is(err, ErrCorruptOffset) {
			t.Fatalf("Records with a damaged offset: %v", err)
		}
	}

	if err := newCons().Commit(ctx); !errors.Is(err, ErrNoOffsetStore) {
		t.Fatalf("Commit without a store: %v", err)
	}
	if _, err := NewConsumer(c, topic, WithOffsetStore(nil, 1)); err == nil {
		t.Fatal("nil store accepted")
	}
}
