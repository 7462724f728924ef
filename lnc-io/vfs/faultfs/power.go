package faultfs

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/lance-go/lance/lnc-io/vfs"
)

// drainTimeout bounds how long PowerOn waits for operations admitted before
// the cut to report back.
const drainTimeout = time.Second

// CutReport describes what a power cut undid, for test failure messages.
type CutReport struct {
	// Seq numbers the power cycles, from 1; zero means no cut yet.
	Seq int64
	// Cause says what cut the power: a call, or the operation that
	// CutPowerAfter chose.
	Cause string
	// Entries lists the directory entries the cut changed back.
	Entries []EntryLoss
	// Files lists the files whose content or size the cut changed back.
	Files []FileLoss
}

// EntryLoss is a directory entry that a power cut changed back.
type EntryLoss struct {
	Name string
	// Before and After describe the entry ("absent", "dir", "file #id").
	Before, After string
}

// FileLoss is a file whose unsynced changes a power cut dropped.
type FileLoss struct {
	Name string
	// ID is the file's identity in the model (as in EntryLoss).
	ID uint64
	// SizeBefore is the size the process had made; SizeAfter the size
	// after the cut.
	SizeBefore, SizeAfter int64
	// Unsynced lists the byte ranges [lo, hi) of the live file that were
	// not durable (hi is clipped to SizeBefore, or open-ended for an
	// unsynced truncation when SizeAfter is larger).
	Unsynced [][2]int64
	// Kept counts the unsynced bytes that KeepUnsynced mode kept.
	Kept int64
}

// String renders the report, one line per change.
func (r CutReport) String() string {
	if r.Seq == 0 {
		return "no power cut"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "power cut %d (%s)", r.Seq, r.Cause)
	if len(r.Entries) == 0 && len(r.Files) == 0 {
		b.WriteString(": nothing lost")
	}
	for _, e := range r.Entries {
		fmt.Fprintf(&b, "\n  entry %s: %s -> %s", e.Name, e.Before, e.After)
	}
	for _, f := range r.Files {
		fmt.Fprintf(&b, "\n  file %s (#%d): size %d -> %d, unsynced %v", f.Name, f.ID, f.SizeBefore, f.SizeAfter, f.Unsynced)
		if f.Kept > 0 {
			fmt.Fprintf(&b, ", kept %d bytes", f.Kept)
		}
	}
	return b.String()
}

// LastCut reports what the last completed power cycle undid.
func (fs *FS) LastCut() CutReport {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.lastCut
}

// CutPowerAfter arms a power cut: the n-th mutating operation from now
// (n >= 1; see Stats.Ops for what counts) cuts the power instead of being
// performed and fails with ErrPoweredOff. The power then stays off, every
// operation failing, until PowerOn. n <= 0 disarms.
func (fs *FS) CutPowerAfter(n int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.cutAt = 0
	if n > 0 {
		fs.cutAt = fs.stats.Ops + int64(n)
	}
}

// CutPowerAfterRandom arms CutPowerAfter(n) with n drawn from the seed in
// [1, maxOps], and returns n.
func (fs *FS) CutPowerAfterRandom(maxOps int) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := 1 + fs.rng.IntN(max(maxOps, 1))
	fs.cutAt = fs.stats.Ops + int64(n)
	return n
}

// SetKeepUnsynced chooses what a power cut does with data written and not
// synced. Off (the default), all of it is dropped. On, each file keeps,
// drawn from the seed, a prefix (possibly empty or whole) of each unsynced
// range, taken in ascending offset order, with the bytes it had at the
// cut; a range that starts past the end of what the file then holds is not
// kept, so no hole is ever made, and the file is never shorter than its
// durable size. Ranges dropped by a failed sync are never kept, and an
// unsynced truncation is always undone.
func (fs *FS) SetKeepUnsynced(on bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.keepUnsynced = on
}

// PowerOff cuts the power: every open file and the FS itself fail every
// operation with ErrPoweredOff until PowerOn. Writes and syncs admitted
// before the cut (between BeforeWrite and AfterWrite, BeforeSync and
// AfterSync) may still complete, as if the power had gone just after
// them: a sync reported successful is durable. Calling it while off does
// nothing.
func (fs *FS) PowerOff() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.powerOff("PowerOff")
}

// powerOff is PowerOff with fs.mu held.
func (fs *FS) powerOff(cause string) {
	if !fs.on {
		return
	}
	fs.on = false
	fs.offCause = cause
	fs.cutAt = 0
	if fs.inflight > 0 {
		fs.drained = make(chan struct{})
	}
}

// PowerOn reboots the machine after PowerOff or an armed cut: it waits
// (up to a second) for admitted operations to report back, then makes the
// disk hold exactly the durable state (see the package documentation) and
// lets the FS be used again. Files opened before stay dead. Calling it
// while on does nothing. An error means the real file system could not be
// brought to the durable state; the FS is then powered on all the same.
func (fs *FS) PowerOn() error {
	fs.mu.Lock()
	if fs.on {
		fs.mu.Unlock()
		return nil
	}
	if ch := fs.drained; ch != nil {
		// The lock must be released while waiting: AfterWrite and
		// AfterSync need it to report back.
		fs.mu.Unlock()
		timer := time.NewTimer(drainTimeout)
		select {
		case <-ch:
		case <-timer.C:
		}
		timer.Stop()
		fs.mu.Lock()
		if fs.on {
			fs.mu.Unlock()
			return nil
		}
	}
	defer fs.mu.Unlock()
	fs.stats.AbandonedSyncs += int64(fs.inflight)
	fs.inflight = 0
	fs.drained = nil
	err := fs.restore()
	fs.boot++
	fs.on = true
	fs.stats.PowerCuts++
	return err
}

// CutPower cuts the power and reboots at once: PowerOff then PowerOn. It
// returns PowerOn's error.
func (fs *FS) CutPower() error {
	fs.mu.Lock()
	fs.powerOff("CutPower")
	fs.mu.Unlock()
	return fs.PowerOn()
}

// placement is a file's durable entry found while planning a restore.
type placement struct {
	path    string
	node    *fileNode
	inPlace bool      // the live entry at path is the same file
	target  *fileNode // the node the entry holds after the cut
	dir     *dirNode
	name    string
}

// dirVisit is a directory of the durable tree.
type dirVisit struct {
	dir     *dirNode
	entries map[string]node // its entries after the cut
}

// action is one step that brings the disk to the durable state.
type action struct {
	kind int // actRemove, actMkdir, actPlace
	path string
	p    *placement
}

const (
	actRemove = iota
	actMkdir
	actPlace
)

// restorePlan is computed before the disk is touched.
type restorePlan struct {
	actions    []action
	dirs       []*dirVisit
	placements []*placement
	report     CutReport
}

// plan walks the durable tree from d. fresh means the real directory is
// (re)made empty, so every durable entry has to be created.
func (fs *FS) plan(pl *restorePlan, d *dirNode, fresh bool) {
	v := &dirVisit{dir: d, entries: make(map[string]node)}
	pl.dirs = append(pl.dirs, v)
	if fresh {
		pl.actions = append(pl.actions, action{kind: actRemove, path: d.path}, action{kind: actMkdir, path: d.path})
	}
	for _, name := range d.names() {
		de := d.durable(name)
		var le node
		if !fresh {
			le = d.entries[name]
		}
		path := filepath.Join(d.path, name)
		if le != de {
			if !fresh {
				pl.report.Entries = append(pl.report.Entries, EntryLoss{Name: path, Before: describe(le), After: describe(de)})
			}
			if le != nil {
				pl.actions = append(pl.actions, action{kind: actRemove, path: path})
			}
		}
		switch de := de.(type) {
		case *dirNode:
			v.entries[name] = de
			fs.plan(pl, de, le != de)
		case *fileNode:
			p := &placement{path: path, node: de, inPlace: le == de, dir: d, name: name}
			pl.placements = append(pl.placements, p)
			pl.actions = append(pl.actions, action{kind: actPlace, path: path, p: p})
			v.entries[name] = de
		}
	}
}

// restore brings the real file system to the durable state and resets the
// model to it. Called with fs.mu held, the power off.
func (fs *FS) restore() error {
	pl := &restorePlan{}
	fs.plan(pl, fs.root, false)
	pl.report.Seq = fs.lastCut.Seq + 1
	pl.report.Cause = fs.offCause

	// Before anything on disk changes: load what must be copied, apply
	// KeepUnsynced, choose which entry keeps each node's identity.
	var firstErr error
	keep := func(err error) {
		if firstErr == nil && err != nil {
			firstErr = err
		}
	}
	primary := make(map[*fileNode]*placement)
	count := make(map[*fileNode]int)
	for _, p := range pl.placements {
		if q, ok := primary[p.node]; !ok || (p.inPlace && !q.inPlace) {
			primary[p.node] = p
		}
		count[p.node]++
	}
	seen := make(map[*fileNode]bool)
	for _, p := range pl.placements {
		n := p.node
		if seen[n] {
			continue
		}
		seen[n] = true
		if !n.loaded && (!primary[n].inPlace || count[n] > 1) {
			keep(fs.ensureLoaded(n, nil))
		}
		loss := FileLoss{Name: primary[n].path, ID: n.id, SizeBefore: n.size}
		unsynced := n.unsynced()
		if n.loaded && fs.keepUnsynced && len(n.dirty) > 0 {
			kept, err := fs.keepPrefixes(n)
			keep(err)
			loss.Kept = kept
		}
		if n.loaded && (len(unsynced) > 0 || n.size != int64(len(n.image))) {
			loss.SizeAfter = int64(len(n.image))
			for _, s := range unsynced.clip(max(n.size, loss.SizeAfter)) {
				loss.Unsynced = append(loss.Unsynced, [2]int64{s.lo, s.hi})
			}
			pl.report.Files = append(pl.report.Files, loss)
		}
	}
	for _, p := range pl.placements {
		if primary[p.node] == p {
			p.target = p.node
			continue
		}
		clone := fs.newFile(p.path, true)
		clone.image = append([]byte(nil), p.node.image...)
		p.target = clone
	}

	for _, a := range pl.actions {
		switch a.kind {
		case actRemove:
			keep(fs.inner.RemoveAll(a.path))
		case actMkdir:
			keep(fs.inner.MkdirAll(a.path))
		case actPlace:
			p := a.p
			if p.inPlace && p.target == p.node {
				keep(fs.restoreInPlace(p.node, p.path))
			} else {
				keep(fs.writeFresh(p.path, p.target.image))
			}
		}
	}

	// The model becomes the durable state.
	for _, v := range pl.dirs {
		v.dir.entries = v.entries
		v.dir.pending = nil
		v.dir.detached = false
	}
	fs.used = 0
	for _, p := range pl.placements {
		t := p.target
		p.dir.entries[p.name] = t
		t.path = p.path
		t.dirty, t.truncs, t.lost = nil, nil, nil
		t.compactAt = 0
		t.inflightBytes = 0
		t.handles = nil
		if t.loaded {
			t.size = int64(len(t.image))
		}
		fs.used += t.size
	}
	fs.lastCut = pl.report
	return firstErr
}

// keepPrefixes applies KeepUnsynced to n: it copies, from the live file,
// a random prefix of each unsynced range into the image. It returns the
// number of bytes kept.
func (fs *FS) keepPrefixes(n *fileNode) (int64, error) {
	h, closeH, err := fs.liveHandle(n)
	if err != nil || h == nil {
		return 0, err
	}
	defer closeH()
	realSize, err := h.Size()
	if err != nil {
		return 0, err
	}
	var ranges spanSet
	for _, e := range n.dirty {
		ranges.add(e.lo, e.hi)
	}
	var kept int64
	end := int64(len(n.image))
	for _, s := range ranges.clip(realSize) {
		if s.lo > end {
			break
		}
		k := fs.pickPrefix(s.hi - s.lo)
		if k == 0 {
			continue
		}
		if s.lo+k > int64(len(n.image)) {
			n.image = resize(n.image, s.lo+k)
		}
		if err := readFull(h, n.image[s.lo:s.lo+k], s.lo); err != nil {
			return kept, err
		}
		end = max(end, s.lo+k)
		kept += k
	}
	return kept, nil
}

// pickPrefix draws how much of an unsynced range of length l survives:
// nothing, all of it, or a uniform length, each a third of the time.
func (fs *FS) pickPrefix(l int64) int64 {
	switch fs.rng.IntN(3) {
	case 0:
		return 0
	case 1:
		return l
	}
	return fs.rng.Int64N(l + 1)
}

// liveHandle returns an open descriptor of n's live content (one of its
// open files, or the file opened by name), the function that releases it,
// and nil if the content is gone.
func (fs *FS) liveHandle(n *fileNode) (vfs.File, func(), error) {
	for h := range n.handles {
		if !h.closed {
			return h.inner, func() {}, nil
		}
	}
	if n.path == "" {
		return nil, nil, nil
	}
	h, err := fs.inner.Open(n.path)
	if err != nil {
		return nil, nil, err
	}
	return h, func() { h.Close() }, nil
}

// restoreInPlace gives the real file at path (n's own) its durable content,
// rewriting only the ranges that may differ. A file with writes still in
// flight gets a new inode instead, so that a late write of the dead process
// lands in the old, unlinked one.
func (fs *FS) restoreInPlace(n *fileNode, path string) error {
	if !n.loaded {
		return nil // never changed: the real file is its durable content
	}
	if n.inflightBytes > 0 {
		if err := fs.inner.Remove(path); err != nil {
			return err
		}
		return fs.writeFresh(path, n.image)
	}
	regions := n.unsynced().clip(int64(len(n.image)))
	if len(regions) == 0 && n.size == int64(len(n.image)) {
		return nil
	}
	h, err := fs.inner.OpenRW(path)
	if err != nil {
		return err
	}
	for _, s := range regions {
		if _, err := h.WriteAt(n.image[s.lo:s.hi], s.lo); err != nil {
			h.Close()
			return err
		}
	}
	err = h.Truncate(int64(len(n.image)))
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFresh creates the file at path (which does not exist) with content.
func (fs *FS) writeFresh(path string, content []byte) error {
	h, err := fs.inner.Create(path)
	if err != nil {
		return err
	}
	_, err = h.WriteAt(content, 0)
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	return err
}
