package topics

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
)

var (
	crashSeeds  = flag.Int("topics.crash.seeds", 6, "seeds of TestPowerCuts")
	crashCycles = flag.Int("topics.crash.cycles", 6, "power cycles per seed of TestPowerCuts")
)

// topicModel is what a topic must hold after a power cut.
type topicModel struct {
	id   uint32
	name string
	// rets are the retentions the topic may have: the last acknowledged
	// one first, then those of SetRetention calls cut short.
	rets []*Retention
	// offsets are the acknowledged commits; maybeOff the values of
	// commits cut short since, per consumer.
	offsets  map[uint64]uint64
	maybeOff map[uint64][]uint64
	batches  []acked // acknowledged ingests
}

// crashModel is the registry as the operations that returned describe it.
type crashModel struct {
	topics map[uint32]*topicModel
	// pendingCreate: Create calls cut short, by name, with their
	// retention; pendingDelete: Delete calls cut short, by id.
	pendingCreate map[string]*Retention
	pendingDelete map[uint32]bool
	deleted       map[uint32]bool
	// maxID is the largest id any call or reopen showed.
	maxID uint32
	names int
}

func newCrashModel() *crashModel {
	return &crashModel{
		topics:        map[uint32]*topicModel{},
		pendingCreate: map[string]*Retention{},
		pendingDelete: map[uint32]bool{},
		deleted:       map[uint32]bool{},
	}
}

func sameRetention(a, b *Retention) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// check compares a reopened registry with the model and returns what it
// found wrong; on success the model adopts the outcome of every operation
// that was cut short.
func (m *crashModel) check(fsys vfs.FS, dataDir string, r *Registry) []string {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	seen := map[uint32]bool{}
	adopted := map[uint32]*topicModel{}
	for _, tp := range r.List() {
		meta := tp.Meta()
		if meta.ID != tp.ID() || meta.Name != tp.Name() {
			fail("topic %q id %d has metadata %+v", tp.Name(), tp.ID(), meta)
		}
		if meta.Epoch != 1 || meta.CreatedAt != 1_700_000_000 {
			fail("topic %q: metadata %+v", tp.Name(), meta)
		}
		seen[meta.ID] = true
		tm := m.topics[meta.ID]
		switch ret, pending := m.pendingCreate[meta.Name]; {
		case tm != nil:
			if tm.name != meta.Name {
				fail("topic id %d is named %q, created as %q", meta.ID, meta.Name, tm.name)
				continue
			}
			if !slices.ContainsFunc(tm.rets, func(r *Retention) bool { return sameRetention(r, meta.Retention) }) {
				fail("topic %q: retention %v, want one of %v", meta.Name, meta.Retention, tm.rets)
			}
			m.checkData(tm, tp, fail)
		case pending && meta.ID > m.maxID && !m.deleted[meta.ID]:
			// A creation cut short that made it.
			if !sameRetention(ret, meta.Retention) {
				fail("topic %q from a cut-short Create: retention %v, want %v", meta.Name, meta.Retention, ret)
			}
			if len(tp.offsets.m) != 0 || tp.Log().End() != 0 {
				fail("topic %q from a cut-short Create is not empty", meta.Name)
			}
			adopted[meta.ID] = &topicModel{id: meta.ID, name: meta.Name, rets: []*Retention{meta.Retention}, offsets: map[uint64]uint64{}, maybeOff: map[uint64][]uint64{}}
		default:
			fail("unexpected topic %q id %d (deleted: %v)", meta.Name, meta.ID, m.deleted[meta.ID])
		}
	}
	for id, tm := range m.topics {
		if seen[id] {
			continue
		}
		if m.pendingDelete[id] {
			delete(m.topics, id)
			m.deleted[id] = true
			continue
		}
		fail("topic %q id %d, whose Create returned, is gone", tm.name, id)
	}
	if lo, err := listLeftovers(fsys, dataDir); err != nil || len(lo) != 0 {
		fail("leftovers after Open: %v (%v)", lo, err)
	}
	maps.Copy(m.topics, adopted)
	for id := range seen {
		m.maxID = max(m.maxID, id)
	}
	clear(m.pendingCreate)
	clear(m.pendingDelete)
	return bad
}

// checkData checks a topic's offsets and batches against the model and
// adopts what survived of the commits cut short.
func (m *crashModel) checkData(tm *topicModel, tp *Topic, fail func(string, ...any)) {
	for c, o := range tm.offsets {
		got, ok := tp.CommittedOffset(c)
		if !ok || (got != o && !slices.Contains(tm.maybeOff[c], got)) {
			fail("topic %q consumer %d: offset %d (%v), acknowledged %d, maybe %v", tm.name, c, got, ok, o, tm.maybeOff[c])
		}
	}
	for c, got := range tp.offsets.m {
		if _, ok := tm.offsets[c]; !ok && !slices.Contains(tm.maybeOff[c], got) {
			fail("topic %q consumer %d: offset %d was never committed", tm.name, c, got)
		}
	}
	tm.offsets = maps.Clone(tp.offsets.m)
	clear(tm.maybeOff)
	tm.rets = []*Retention{tp.Meta().Retention}

	end := tp.Log().End()
	for _, a := range tm.batches {
		if a.off+uint64(len(a.data)) > end {
			fail("topic %q: acknowledged batch at %d+%d beyond the log's end %d", tm.name, a.off, len(a.data), end)
			continue
		}
		got := make([]byte, len(a.data))
		if n, err := tp.Log().ReadAt(context.Background(), got, a.off); err != nil || n != len(got) || !bytes.Equal(got, a.data) {
			fail("topic %q: acknowledged batch at %d reads %q (%d, %v), want %q", tm.name, a.off, got[:n], n, err, a.data)
		}
	}
}

// crashRun drives one data directory through power cycles.
type crashRun struct {
	t    *testing.T
	ffs  *faultfs.FS
	fsys vfs.FS
	be   backend.Backend
	dir  string
	rng  *rand.Rand
	m    *crashModel
}

func (c *crashRun) options() Options { return testOptions(c.fsys, c.be) }

// pick returns a random topic of the model, or nil.
func (c *crashRun) pick() *topicModel {
	ids := slices.Sorted(maps.Keys(c.m.topics))
	if len(ids) == 0 {
		return nil
	}
	return c.m.topics[ids[c.rng.IntN(len(ids))]]
}

// step runs one random operation; false means the power went.
func (c *crashRun) step(r *Registry) bool {
	t, m := c.t, c.m
	check := func(op string, err error) bool {
		if err == nil {
			return true
		}
		if !isPowerOff(err) {
			t.Fatalf("%s: %v (not a power cut)", op, err)
		}
		return false
	}
	tm := c.pick()
	switch k := c.rng.IntN(10); {
	case tm == nil || (k < 2 && len(m.topics) < 5):
		m.names++
		name := fmt.Sprintf("t%d", m.names)
		if c.rng.IntN(6) == 0 {
			name += "-" + strings.Repeat("L", 255-len(name)-1)
		}
		var ret *Retention
		if c.rng.IntN(2) == 0 {
			ret = &Retention{MaxAgeSecs: c.rng.Uint64N(1000), MaxBytes: c.rng.Uint64N(1 << 30)}
		}
		tp, err := r.Create(name, ret)
		if !check("Create", err) {
			m.pendingCreate[name] = ret
			return false
		}
		if tp.ID() <= m.maxID || m.deleted[tp.ID()] {
			t.Fatalf("Create(%q) got id %d; ids up to %d were handed out before", name, tp.ID(), m.maxID)
		}
		m.maxID = tp.ID()
		m.topics[tp.ID()] = &topicModel{id: tp.ID(), name: name, rets: []*Retention{ret}, offsets: map[uint64]uint64{}, maybeOff: map[uint64][]uint64{}}
	case k == 2:
		err := r.Delete(tm.id)
		if !check("Delete", err) {
			m.pendingDelete[tm.id] = true
			return false
		}
		delete(m.topics, tm.id)
		m.deleted[tm.id] = true
	case k == 3:
		ret := Retention{MaxAgeSecs: c.rng.Uint64N(1000), MaxBytes: c.rng.Uint64N(1 << 30)}
		_, err := r.SetRetention(tm.id, ret)
		if !check("SetRetention", err) {
			tm.rets = append(tm.rets, &ret)
			return false
		}
		tm.rets = []*Retention{&ret}
	case k < 6:
		cons, off := c.rng.Uint64N(4), c.rng.Uint64()
		err := r.ByID(tm.id).CommitOffset(cons, off)
		if !check("CommitOffset", err) {
			tm.maybeOff[cons] = append(tm.maybeOff[cons], off)
			return false
		}
		tm.offsets[cons] = off
		tm.maybeOff[cons] = nil
	default:
		return c.ingest(r)
	}
	return true
}

// ingest submits a few batches to a few topics at once and waits for all.
func (c *crashRun) ingest(r *Registry) bool {
	type sub struct {
		tm *topicModel
		in *Ingest
	}
	var subs []sub
	ok := true
	for range 1 + c.rng.IntN(6) {
		tm := c.pick()
		in := NewIngest()
		in.Data = payload(tm.name, int(c.m.maxID), c.rng.IntN(1<<20), 1+c.rng.IntN(400))
		if err := r.ByID(tm.id).Submit(context.Background(), in); err != nil {
			if !isPowerOff(err) {
				c.t.Fatalf("Submit: %v", err)
			}
			ok = false
			continue
		}
		subs = append(subs, sub{tm, in})
	}
	for _, s := range subs {
		waitDone(c.t, s.in)
		if s.in.Err != nil {
			if !isPowerOff(s.in.Err) {
				c.t.Fatalf("ingest: %v", s.in.Err)
			}
			ok = false
			continue
		}
		s.tm.batches = append(s.tm.batches, acked{s.in.Offset, s.in.Data})
	}
	return ok
}

// cycle runs operations on r until the power goes (or cuts it itself),
// powers on, reopens and checks. It returns the reopened registry, or the
// problems found.
func (c *crashRun) cycle(r *Registry, maxOps int) (*Registry, []string) {
	n := c.ffs.CutPowerAfterRandom(maxOps)
	steps := 0
	for ; steps < 60 && c.step(r); steps++ {
	}
	c.ffs.PowerOff() // a no-op if the armed cut came
	r.Close()        // errors expected: the power is off
	if err := c.ffs.PowerOn(); err != nil {
		c.t.Fatalf("PowerOn: %v", err)
	}
	r, err := Open(c.dir, c.options())
	if err != nil {
		return nil, []string{fmt.Sprintf("Open after a cut at op %d (step %d): %v\n%v", n, steps, err, c.ffs.LastCut())}
	}
	bad := c.m.check(c.fsys, c.dir, r)
	if len(bad) != 0 {
		r.Close()
		for i := range bad {
			bad[i] += fmt.Sprintf(" [cut at op %d, step %d]", n, steps)
		}
		return nil, append(bad, c.ffs.LastCut().String())
	}
	return r, nil
}

// TestPowerCuts runs random creations, deletions, retention changes,
// offset commits and ingests, cuts the power at a random file system
// operation, reopens on the same disk and checks every acknowledged
// outcome: created topics exist with their metadata, deleted ones are
// gone, no staging or deletion directory is left, committed offsets and
// acknowledged batches are there, ids are never handed out twice.
func TestPowerCuts(t *testing.T) {
	be := newBackend(t)
	cuts := 0
	for seed := range uint64(*crashSeeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ffs := faultfs.New(vfs.OS(), seed)
			c := &crashRun{
				t: t, ffs: ffs, fsys: dirRenameFS{ffs}, be: be,
				dir: t.TempDir(), rng: rand.New(rand.NewPCG(seed, 5)), m: newCrashModel(),
			}
			r, err := Open(c.dir, c.options())
			if err != nil {
				t.Fatal(err)
			}
			for cycle := range *crashCycles {
				ffs.SetKeepUnsynced(cycle%2 == 1)
				var bad []string
				if r, bad = c.cycle(r, 300); len(bad) != 0 {
					t.Fatalf("seed %d cycle %d:\n%s", seed, cycle, strings.Join(bad, "\n"))
				}
				cuts++
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if len(c.m.topics) == 0 && len(c.m.deleted) == 0 {
				t.Fatal("no topic was ever created")
			}
		})
	}
	t.Logf("%d power cycles", cuts)
}

// unsyncedTopicsDir is a broken disk for the negative control: syncing
// the topics directory does nothing.
type unsyncedTopicsDir struct{ dirRenameFS }

func (fs unsyncedTopicsDir) SyncDir(dir string) error {
	if filepath.Base(dir) == "topics" {
		return nil
	}
	return fs.dirRenameFS.SyncDir(dir)
}

// TestPowerCutsNegativeControl: on a disk that loses directory syncs of
// the topics directory, the checker must notice that an acknowledged
// topic is gone.
func TestPowerCutsNegativeControl(t *testing.T) {
	ffs := faultfs.New(vfs.OS(), 1)
	c := &crashRun{
		t: t, ffs: ffs, fsys: unsyncedTopicsDir{dirRenameFS{ffs}}, be: newBackend(t),
		dir: t.TempDir(), rng: rand.New(rand.NewPCG(1, 5)), m: newCrashModel(),
	}
	// Create cannot be cut: every topic is acknowledged.
	for range 5 {
		r, err := Open(c.dir, c.options())
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			c.m.names++
			name := fmt.Sprintf("n%d", c.m.names)
			tp, err := r.Create(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.m.maxID = tp.ID()
			c.m.topics[tp.ID()] = &topicModel{id: tp.ID(), name: name, rets: []*Retention{nil}, offsets: map[uint64]uint64{}, maybeOff: map[uint64][]uint64{}}
		}
		ffs.PowerOff()
		r.Close()
		if err := ffs.PowerOn(); err != nil {
			t.Fatal(err)
		}
		r, err = Open(c.dir, c.options())
		if err != nil {
			t.Logf("the checker's Open noticed: %v", err)
			return
		}
		bad := c.m.check(c.fsys, c.dir, r)
		r.Close()
		if len(bad) != 0 {
			t.Logf("the checker noticed: %s", bad[0])
			return
		}
	}
	t.Fatal("acknowledged topics were lost by the broken disk and the checker saw nothing")
}

// TestPowerCutAtEveryStep cuts the power at each file system operation of
// one Create, Delete, SetRetention and CommitOffset in turn (and once
// after the last), on a registry holding a topic with data and offsets,
// and checks the reopened registry against what the call returned.
func TestPowerCutAtEveryStep(t *testing.T) {
	be := newBackend(t)
	ops := []struct {
		name string
		run  func(c *crashRun, r *Registry, base *topicModel) bool
	}{
		{"Create", func(c *crashRun, r *Registry, _ *topicModel) bool {
			ret := &Retention{MaxAgeSecs: 9}
			tp, err := r.Create("fresh", ret)
			if err != nil {
				c.m.pendingCreate["fresh"] = ret
				return isPowerOff(err)
			}
			c.m.maxID = tp.ID()
			c.m.topics[tp.ID()] = &topicModel{id: tp.ID(), name: "fresh", rets: []*Retention{ret}, offsets: map[uint64]uint64{}, maybeOff: map[uint64][]uint64{}}
			return true
		}},
		{"Delete", func(c *crashRun, r *Registry, base *topicModel) bool {
			if err := r.Delete(base.id); err != nil {
				c.m.pendingDelete[base.id] = true
				return isPowerOff(err)
			}
			delete(c.m.topics, base.id)
			c.m.deleted[base.id] = true
			return true
		}},
		{"SetRetention", func(c *crashRun, r *Registry, base *topicModel) bool {
			ret := Retention{MaxBytes: 77}
			if _, err := r.SetRetention(base.id, ret); err != nil {
				base.rets = append(base.rets, &ret)
				return isPowerOff(err)
			}
			base.rets = []*Retention{&ret}
			return true
		}},
		{"CommitOffset", func(c *crashRun, r *Registry, base *topicModel) bool {
			if err := r.ByID(base.id).CommitOffset(1, 555); err != nil {
				base.maybeOff[1] = append(base.maybeOff[1], 555)
				return isPowerOff(err)
			}
			base.offsets[1] = 555
			return true
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			// One run per operation index, until a run in which the
			// armed cut never came.
			for k := 1; ; k++ {
				ffs := faultfs.New(vfs.OS(), uint64(k))
				c := &crashRun{t: t, ffs: ffs, fsys: dirRenameFS{ffs}, be: be, dir: t.TempDir(), m: newCrashModel()}
				r, err := Open(c.dir, c.options())
				if err != nil {
					t.Fatal(err)
				}
				tp, err := r.Create("base", nil)
				if err != nil {
					t.Fatal(err)
				}
				base := &topicModel{id: tp.ID(), name: "base", rets: []*Retention{nil}, offsets: map[uint64]uint64{7: 70}, maybeOff: map[uint64][]uint64{}}
				c.m.topics[tp.ID()], c.m.maxID = base, tp.ID()
				if err := tp.CommitOffset(7, 70); err != nil {
					t.Fatal(err)
				}
				data := []byte("base batch")
				off, err := ingest(t, tp, data)
				if err != nil {
					t.Fatal(err)
				}
				base.batches = []acked{{off, data}}

				ffs.CutPowerAfter(k)
				if !op.run(c, r, base) {
					t.Fatalf("cut at op %d: %s failed without a power cut", k, op.name)
				}
				cut := !ffsOn(ffs, c.dir)
				ffs.PowerOff()
				r.Close()
				if err := ffs.PowerOn(); err != nil {
					t.Fatal(err)
				}
				r, err = Open(c.dir, c.options())
				if err != nil {
					t.Fatalf("cut at op %d of %s: Open: %v\n%v", k, op.name, err, ffs.LastCut())
				}
				bad := c.m.check(c.fsys, c.dir, r)
				r.Close()
				if len(bad) != 0 {
					t.Fatalf("cut at op %d of %s:\n%s\n%v", k, op.name, strings.Join(bad, "\n"), ffs.LastCut())
				}
				if !cut {
					t.Logf("%s: %d cut points", op.name, k-1)
					return
				}
			}
		})
	}
}

// ffsOn tells whether the power is on, probing with a listing (which
// changes nothing).
func ffsOn(ffs *faultfs.FS, dir string) bool {
	_, err := ffs.ReadDir(dir)
	return !isPowerOff(err)
}
