package faultfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
)

// This file checks the FS against a naive model of the durability rules
// written from the package documentation: whole-file copies, byte masks,
// directory snapshots. A random workload runs on both; after each power cut
// the real disk must hold exactly what the model says is durable (or, in
// KeepUnsynced mode, something between the durable and the live state).

// mfile is a file of the naive model.
type mfile struct {
	live, durable []byte
	written       []bool // written since the last sync attempt
	poison        []bool // written before a failed sync, not since
	truncLow      int    // lowest size set since the last good sync
}

func newMfile(content []byte) *mfile {
	return &mfile{
		live:     slices.Clone(content),
		durable:  slices.Clone(content),
		written:  make([]bool, len(content)),
		poison:   make([]bool, len(content)),
		truncLow: len(content),
	}
}

func (m *mfile) resize(n int) {
	for len(m.live) < n {
		m.live = append(m.live, 0)
		m.written = append(m.written, false)
		m.poison = append(m.poison, false)
	}
	m.live, m.written, m.poison = m.live[:n], m.written[:n], m.poison[:n]
}

func (m *mfile) write(off int, data []byte) {
	if end := off + len(data); end > len(m.live) {
		m.resize(end)
	}
	copy(m.live[off:], data)
	for i := off; i < off+len(data); i++ {
		m.written[i] = true
		m.poison[i] = false
	}
}

func (m *mfile) truncate(size int) {
	m.resize(size)
	m.truncLow = min(m.truncLow, size)
}

func (m *mfile) syncOK() {
	d := make([]byte, len(m.live))
	for i := range d {
		switch {
		case !m.poison[i]:
			d[i] = m.live[i]
		case i < len(m.durable) && i < m.truncLow:
			d[i] = m.durable[i]
		}
	}
	m.durable = d
	clear(m.written)
	m.truncLow = len(d)
}

func (m *mfile) syncFailed() {
	for i, w := range m.written {
		if w {
			m.poison[i] = true
			m.written[i] = false
		}
	}
}

// model is the naive model: files by id, live names, and each directory's
// entries as of its last SyncDir.
type model struct {
	files   map[int]*mfile
	live    map[string]int            // relative path -> file id
	durable map[string]map[string]int // directory ("" or "d") -> name -> id
	nextID  int
}

var modelDirs = []string{"", "d"}

func (m *model) add(content []byte) int {
	m.nextID++
	m.files[m.nextID] = newMfile(content)
	return m.nextID
}

func (m *model) syncDir(dir string) {
	entries := make(map[string]int)
	for p, id := range m.live {
		if filepath.Dir(p) == dirOrDot(dir) {
			entries[filepath.Base(p)] = id
		}
	}
	m.durable[dir] = entries
}

func dirOrDot(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}

// handle is an open file of the workload.
type handle struct {
	f  vfs.File
	id int
}

// harness runs a random workload on an FS and on the model.
type harness struct {
	t       *testing.T
	fs      *faultfs.FS
	root    string
	rng     *rand.Rand
	m       *model
	handles []*handle
	keep    bool
	log     []string
}

func newHarness(t *testing.T, fsSeed, workSeed uint64, keep bool) *harness {
	h := &harness{
		t:    t,
		fs:   faultfs.New(fastOS(), fsSeed),
		root: t.TempDir(),
		rng:  rand.New(rand.NewPCG(workSeed, 99)),
		m:    &model{files: map[int]*mfile{}, live: map[string]int{}, durable: map[string]map[string]int{"": {}, "d": {}}},
		keep: keep,
	}
	h.fs.SetKeepUnsynced(keep)
	if err := h.fs.MkdirAll(h.abs("d")); err != nil {
		t.Fatal(err)
	}
	if err := h.fs.SyncDir(h.root); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) abs(rel string) string { return filepath.Join(h.root, rel) }

func (h *harness) fail(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("%s\nworkload:\n  %s\n%v", fmt.Sprintf(format, args...), strings.Join(h.log, "\n  "), h.fs.LastCut())
}

// check fails on an unexpected error; it reports whether err is the power
// cut.
func (h *harness) check(op string, err error) (off bool) {
	h.t.Helper()
	if errors.Is(err, faultfs.ErrPoweredOff) {
		h.log = append(h.log, op+": powered off")
		return true
	}
	if err != nil {
		h.fail("%s: %v", op, err)
	}
	h.log = append(h.log, op)
	return false
}

func (h *harness) randomLivePath() (string, bool) {
	if len(h.m.live) == 0 {
		return "", false
	}
	paths := make([]string, 0, len(h.m.live))
	for p := range h.m.live {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths[h.rng.IntN(len(paths))], true
}

func (h *harness) randomPath() string {
	return filepath.Join(modelDirs[h.rng.IntN(2)], []string{"a", "b", "c"}[h.rng.IntN(3)])
}

func (h *harness) randomData() []byte {
	b := make([]byte, 1+h.rng.IntN(12))
	for i := range b {
		b[i] = byte('A' + h.rng.IntN(26))
	}
	return b
}

// step runs one random mutating operation; it reports whether the power
// went off.
func (h *harness) step() bool {
	h.t.Helper()
	var hd *handle
	if len(h.handles) > 0 {
		hd = h.handles[h.rng.IntN(len(h.handles))]
	}
	switch k := h.rng.IntN(100); {
	case k < 10 || hd == nil: // create
		p := h.randomPath()
		if _, ok := h.m.live[p]; ok {
			return h.step()
		}
		f, err := h.fs.Create(h.abs(p))
		if h.check("create "+p, err) {
			return true
		}
		id := h.m.add(nil)
		h.m.live[p] = id
		h.handles = append(h.handles, &handle{f: f, id: id})
	case k < 40: // write, through WriteAt or the Observer path
		mf := h.m.files[hd.id]
		off := h.rng.IntN(len(mf.live) + 4)
		data := h.randomData()
		var err error
		var how string
		if h.rng.IntN(2) == 0 {
			_, err = hd.f.WriteAt(data, int64(off))
			how = "WriteAt"
		} else {
			_, err = h.backend(hd).write(int64(off), string(data))
			how = "pwrite"
		}
		if h.check(fmt.Sprintf("%s #%d %d %q", how, hd.id, off, data), err) {
			return true
		}
		mf.write(off, data)
		h.verifyLive(hd)
	case k < 55: // sync
		var err error
		if h.rng.IntN(2) == 0 {
			err = hd.f.Sync()
		} else {
			err = h.backend(hd).sync()
		}
		if h.check(fmt.Sprintf("sync #%d", hd.id), err) {
			return true
		}
		h.m.files[hd.id].syncOK()
	case k < 60: // failing sync
		h.fs.FailSyncs(faultfs.Once())
		err := hd.f.Sync()
		h.fs.FailSyncs(faultfs.Schedule{})
		if errors.Is(err, faultfs.ErrPoweredOff) {
			return h.check("failing sync", err)
		}
		if !errors.Is(err, faultfs.ErrInjected) {
			h.fail("failing sync #%d: %v", hd.id, err)
		}
		h.log = append(h.log, fmt.Sprintf("failed sync #%d", hd.id))
		h.m.files[hd.id].syncFailed()
	case k < 63: // failing write
		h.fs.FailWrites(faultfs.Once())
		_, err := hd.f.WriteAt([]byte("never"), 0)
		h.fs.FailWrites(faultfs.Schedule{})
		if errors.Is(err, faultfs.ErrPoweredOff) {
			return h.check("failing write", err)
		}
		if !errors.Is(err, faultfs.ErrInjected) {
			h.fail("failing write #%d: %v", hd.id, err)
		}
		h.log = append(h.log, fmt.Sprintf("failed write #%d", hd.id))
	case k < 71: // truncate
		mf := h.m.files[hd.id]
		size := h.rng.IntN(len(mf.live) + 6)
		if h.check(fmt.Sprintf("truncate #%d %d", hd.id, size), hd.f.Truncate(int64(size))) {
			return true
		}
		mf.truncate(size)
		h.verifyLive(hd)
	case k < 80: // rename
		src, ok := h.randomLivePath()
		dst := h.randomPath()
		if !ok || src == dst {
			return h.step()
		}
		if h.check("rename "+src+" "+dst, h.fs.Rename(h.abs(src), h.abs(dst))) {
			return true
		}
		h.m.live[dst] = h.m.live[src]
		delete(h.m.live, src)
	case k < 86: // remove
		p, ok := h.randomLivePath()
		if !ok {
			return h.step()
		}
		if h.check("remove "+p, h.fs.Remove(h.abs(p))) {
			return true
		}
		delete(h.m.live, p)
	default: // sync a directory
		dir := modelDirs[h.rng.IntN(2)]
		if h.check("syncdir /"+dir, h.fs.SyncDir(h.abs(dir))) {
			return true
		}
		h.m.syncDir(dir)
	}
	return false
}

func (h *harness) backend(hd *handle) backend {
	b := newBackend(h.t, hd.f)
	b.noSync = true
	return b
}

func (h *harness) verifyLive(hd *handle) {
	h.t.Helper()
	want := h.m.files[hd.id].live
	got := make([]byte, len(want)+1)
	n, _ := hd.f.ReadAt(got, 0)
	if !bytes.Equal(got[:n], want) {
		h.fail("live content of #%d = %q, model %q", hd.id, got[:n], want)
	}
}

// reboot powers on and compares the disk with the model, then resets the
// model to the state after the cut and reopens every file.
func (h *harness) reboot() {
	h.t.Helper()
	if err := h.fs.PowerOn(); err != nil {
		h.fail("PowerOn: %v", err)
	}
	for _, hd := range h.handles {
		if err := hd.f.Close(); !errors.Is(err, faultfs.ErrPoweredOff) {
			h.fail("Close of a dead file: %v", err)
		}
	}
	h.handles = nil
	next := &model{files: map[int]*mfile{}, live: map[string]int{}, durable: map[string]map[string]int{}, nextID: h.m.nextID}
	for _, dir := range modelDirs {
		ents, err := os.ReadDir(h.abs(dir))
		if err != nil {
			h.fail("%v", err)
		}
		var names []string
		for _, e := range ents {
			if !e.IsDir() {
				names = append(names, e.Name())
			}
		}
		want := make([]string, 0, len(h.m.durable[dir]))
		for name := range h.m.durable[dir] {
			want = append(want, name)
		}
		sort.Strings(want)
		if !slices.Equal(names, want) {
			h.fail("directory /%s holds %v, durable entries are %v", dir, names, want)
		}
		next.durable[dir] = map[string]int{}
		for _, name := range names {
			rel := filepath.Join(dir, name)
			got, err := os.ReadFile(h.abs(rel))
			if err != nil {
				h.fail("%v", err)
			}
			mf := h.m.files[h.m.durable[dir][name]]
			if !h.keep {
				if !bytes.Equal(got, mf.durable) {
					h.fail("%s = %q, durable content is %q (live %q)", rel, got, mf.durable, mf.live)
				}
			} else if err := mayHold(got, mf); err != nil {
				h.fail("%s: %v", rel, err)
			}
			id := next.add(got)
			next.live[rel] = id
			next.durable[dir][name] = id
			f, err := h.fs.OpenRW(h.abs(rel))
			if err != nil {
				h.fail("reopen %s: %v", rel, err)
			}
			h.handles = append(h.handles, &handle{f: f, id: id})
		}
	}
	h.m = next
	h.log = append(h.log, "--- power on ---")
}

// mayHold checks what KeepUnsynced mode allows: every byte is the durable
// one (zero past the durable size) or the live one, and the size lies
// between the durable size and the larger of the two.
func mayHold(got []byte, mf *mfile) error {
	if len(got) < len(mf.durable) || len(got) > max(len(mf.durable), len(mf.live)) {
		return fmt.Errorf("size %d outside [%d, %d]", len(got), len(mf.durable), max(len(mf.durable), len(mf.live)))
	}
	for i, c := range got {
		var d byte
		if i < len(mf.durable) {
			d = mf.durable[i]
		}
		if c != d && (i >= len(mf.live) || c != mf.live[i]) {
			return fmt.Errorf("byte %d = %q: neither durable %q nor live %q", i, c, mf.durable, mf.live)
		}
	}
	return nil
}

func (h *harness) close() {
	for _, hd := range h.handles {
		hd.f.Close()
	}
}

// TestCutAtEveryOperation cuts the power at each operation of one scripted
// workload in turn.
func TestCutAtEveryOperation(t *testing.T) {
	const ops = 45
	for n := 1; n <= ops+1; n++ {
		h := newHarness(t, uint64(n), 2024, false)
		h.fs.CutPowerAfter(n)
		off := false
		for range ops {
			if off = h.step(); off {
				break
			}
		}
		if !off {
			h.fs.PowerOff()
		}
		h.reboot()
		h.close()
	}
}

// TestRandomPowerCycles runs several power cycles per seed, each cut at a
// random operation, and checks the state after each reboot.
func TestRandomPowerCycles(t *testing.T) {
	for _, keep := range []bool{false, true} {
		for seed := uint64(1); seed <= 10; seed++ {
			h := newHarness(t, seed, seed*31, keep)
			for range 5 {
				h.fs.CutPowerAfterRandom(40)
				for !h.step() {
				}
				h.reboot()
			}
			h.close()
		}
	}
}
