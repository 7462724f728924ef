package topics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
)

// TestMain fails the package if any test leaves a goroutine behind: topic
// writers, backend workers, waiters.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ignoreBackendHelpers skips the fsync helpers a pwritev2 backend starts
// on first use and stops when it is closed: they belong to the backend,
// which outlives the registries of a test.
var ignoreBackendHelpers = goleak.IgnoreTopFunction("github.com/lance-go/lance/lnc-io/backend.(*scratch).syncHelper.func1")

// liveness bounds every wait of these tests: it only turns a hang into a
// failure, it never decides an outcome.
const liveness = 60 * time.Second

func newBackend(t testing.TB) backend.Backend {
	t.Helper()
	be, err := backend.Open(backend.Config{Kind: backend.KindPwritev2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// testOptions are small logs on fsys.
func testOptions(fsys vfs.FS, be backend.Backend) Options {
	return Options{
		FS: fsys, Backend: be,
		SegmentSize: 4096, Prealloc: -1,
		Now: func() time.Time { return time.Unix(1_700_000_000, 0) },
	}
}

func openRegistry(t testing.TB, dir string, opts Options) *Registry {
	t.Helper()
	r, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func mustCreate(t testing.TB, r *Registry, name string) *Topic {
	t.Helper()
	tp, err := r.Create(name, nil)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	return tp
}

// dirRenameFS is a faultfs.FS that also renames directories. faultfs
// refuses to (its model keeps directories at fixed paths), and the
// registry renames a topic's directory to create and to delete it.
//
// A rename of a flat directory old -> new is played as: make new, move
// every file into it, sync new, remove old. Nothing of that is durable in
// the parent until the caller syncs the parent, as for a real rename: a
// power cut before that brings old back whole (its removal and the moves
// out of it were never synced) and drops new (its creation was never
// synced); after it, new is there with every file and old is gone. A cut
// in the middle of the sequence is a cut before the parent sync. What the
// emulation cannot show is a staging directory whose own entries were not
// synced before the rename: syncing new makes them durable.
type dirRenameFS struct {
	*faultfs.FS
}

func (fs dirRenameFS) Rename(oldname, newname string) error {
	fi, err := fs.FS.Stat(oldname)
	if err != nil || !fi.IsDir() {
		return fs.FS.Rename(oldname, newname)
	}
	if _, err := fs.FS.Stat(newname); err == nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.ENOTEMPTY}
	}
	names, err := fs.FS.ReadDir(oldname)
	if err != nil {
		return err
	}
	for _, name := range names {
		fi, err := fs.FS.Stat(filepath.Join(oldname, name))
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return fmt.Errorf("dirRenameFS: %s holds directory %s", oldname, name)
		}
	}
	if err := fs.FS.MkdirAll(newname); err != nil {
		return err
	}
	for _, name := range names {
		if err := fs.FS.Rename(filepath.Join(oldname, name), filepath.Join(newname, name)); err != nil {
			return err
		}
	}
	if err := fs.FS.SyncDir(newname); err != nil {
		return err
	}
	return fs.FS.RemoveAll(oldname)
}

// gateObserver blocks the writer that reports a group commit until the
// test lets it go, so that a test can hold batches in a topic's queue.
type gateObserver struct {
	mu      sync.Mutex
	closed  bool
	entered chan struct{} // one token per commit that reached the gate
	release chan struct{} // closed to open the gate for good
}

func newGate() *gateObserver {
	return &gateObserver{entered: make(chan struct{}, 1<<16), release: make(chan struct{})}
}

func (g *gateObserver) Committed(string, int, int64, time.Duration, error) {
	g.entered <- struct{}{}
	<-g.release
}

func (g *gateObserver) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		close(g.release)
	}
}

func (g *gateObserver) waitEntered(t testing.TB) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(liveness):
		t.Fatal("no commit reached the observer")
	}
}

// payload returns a batch that names its topic, submitter and sequence,
// so that a batch found at the wrong offset is recognised.
func payload(topic string, who, seq, size int) []byte {
	b := fmt.Appendf(nil, "%s/%d/%d/", topic, who, seq)
	for len(b) < size {
		b = append(b, byte('a'+(who+seq+len(b))%26))
	}
	return b
}

// ingest submits data and waits for its result.
func ingest(t testing.TB, tp *Topic, data []byte) (uint64, error) {
	t.Helper()
	in := NewIngest()
	in.Data = data
	if err := tp.Submit(context.Background(), in); err != nil {
		return 0, err
	}
	waitDone(t, in)
	return in.Offset, in.Err
}

// waitDone waits for in's completion and checks that it fires only once.
func waitDone(t testing.TB, in *Ingest) {
	t.Helper()
	select {
	case <-in.Done():
	case <-time.After(liveness):
		t.Fatal("an ingest never completed")
	}
	select {
	case <-in.Done():
		t.Fatal("an ingest completed twice")
	default:
	}
}

// readBack reads len(want) bytes at off from tp's log and compares.
func readBack(t testing.TB, tp *Topic, off uint64, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	n, err := tp.Log().ReadAt(context.Background(), got, off)
	if err != nil || n != len(want) {
		t.Fatalf("topic %s: ReadAt(%d, %d bytes) = %d, %v", tp.Name(), off, len(want), n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("topic %s: offset %d holds %q, want %q", tp.Name(), off, got, want)
	}
}

// leftovers lists the staging and deletion entries under dir/topics.
func leftovers(t testing.TB, fsys vfs.FS, dataDir string) []string {
	t.Helper()
	out, err := listLeftovers(fsys, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listLeftovers(fsys vfs.FS, dataDir string) ([]string, error) {
	names, err := fsys.ReadDir(filepath.Join(dataDir, "topics"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, ".new-") || strings.HasPrefix(n, ".del-") {
			out = append(out, n)
		}
	}
	return out, nil
}

func isPowerOff(err error) bool { return errors.Is(err, faultfs.ErrPoweredOff) }
