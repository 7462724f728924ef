package topiclog

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
)

// TestCrashPointsAroundRoll cuts the power at every file operation of an
// Append that rolls the segment and of the Sync after it, in both
// unsynced-data modes, then reopens: every acknowledged batch must be
// there, and the log must take and sync new batches, rolling again.
func TestCrashPointsAroundRoll(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend.Backend, direct bool) {
		for keep := range 2 {
			points := 0
			for point := 1; ; point++ {
				if !crashAtPoint(t, be, direct, keep == 1, point) {
					break
				}
				points++
			}
			if points < 5 {
				t.Fatalf("only %d crash points: the roll was not covered", points)
			}
			t.Logf("keep-unsynced=%v: %d crash points, each recovered and rolled again", keep == 1, points)
		}
	})
}

// crashAtPoint runs one case; it returns false once point lies past the
// last operation of the roll (no cut happened).
func crashAtPoint(t *testing.T, be backend.Backend, direct, keep bool, point int) bool {
	t.Helper()
	what := fmt.Sprintf("keep=%v point=%d", keep, point)
	fs := faultfs.New(vfs.OS(), uint64(point))
	fs.SetKeepUnsynced(keep)
	dir := filepath.Join(t.TempDir(), "topic")
	opts := Options{FS: fs, Backend: be, Direct: direct, SegmentSize: 1024, Prealloc: 4096}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("%s: open: %v", what, err)
	}
	r := rand.New(rand.NewPCG(uint64(point), 9))
	var m model
	// Fill the first segment to its size, durably.
	for l.End() < 1000 {
		if err := m.appendSized(r, l, 1, 200); err != nil {
			t.Fatalf("%s: fill: %v", what, err)
		}
		if err := l.Sync(ctx); err != nil {
			t.Fatalf("%s: fill sync: %v", what, err)
		}
		m.acked = len(m.batches)
	}
	fs.CutPowerAfter(point)
	cut := false
	for range 3 {
		if err := m.appendSized(r, l, 1, 200); err != nil {
			if !errors.Is(err, faultfs.ErrPoweredOff) {
				t.Fatalf("%s: Append: %v", what, err)
			}
			cut = true
			break
		}
		if err := l.Sync(ctx); err != nil {
			if !errors.Is(err, faultfs.ErrPoweredOff) {
				t.Fatalf("%s: Sync: %v", what, err)
			}
			cut = true
			break
		}
		m.acked = len(m.batches)
	}
	fs.CutPowerAfter(0)
	l.Close()
	if err := fs.PowerOn(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, opts)
	if err != nil {
		t.Fatalf("%s: reopen: %v (%v)", what, err, fs.LastCut())
	}
	defer l.Close()
	m.check(t, l, what)
	// The log goes on: enough batches to roll at least twice more.
	for range 15 {
		if err := m.appendSized(r, l, 1, 200); err != nil {
			t.Fatalf("%s: Append after recovery: %v (%v)", what, err, fs.LastCut())
		}
		if err := l.Sync(ctx); err != nil {
			t.Fatalf("%s: Sync after recovery: %v (%v)", what, err, fs.LastCut())
		}
		m.acked = len(m.batches)
	}
	m.check(t, l, what+" after more appends")
	return cut
}
