package faultfs

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lance-go/lance/lnc-io/vfs"
)

// This file holds the model of the file system that the FS keeps beside
// the real one: a tree of directories (live entries plus the durable
// entries they replaced since the last SyncDir) and, per file, the durable
// image and what was written since. Everything here is guarded by FS.mu.

// node is a *dirNode or a *fileNode. A nil node in an entry map means "no
// entry" (used for durable entries that did not exist).
type node interface{ isNode() }

// dirNode is a directory. Directories never move (renaming one is refused),
// so path is fixed for the node's life.
type dirNode struct {
	path string
	// entries are the live entries known so far. A name missing here is
	// looked up on the real file system when needed and added: what was
	// there before the FS touched it is taken as durable.
	entries map[string]node
	// pending maps each name changed since the last SyncDir of this
	// directory to its durable entry (nil: none). Names not in pending are
	// durable as they are live.
	pending map[string]node
	// detached is set once the directory was removed; its entries then
	// list everything it held, as the durable state may bring it back.
	detached bool
}

func (*dirNode) isNode() {}

// durable returns the durable entry for name.
func (d *dirNode) durable(name string) node {
	if e, ok := d.pending[name]; ok {
		return e
	}
	return d.entries[name]
}

// markChanged records, before the live entry for name changes, what the
// durable entry is, unless the name already changed since the last SyncDir.
func (d *dirNode) markChanged(name string, prev node) {
	if d.pending == nil {
		d.pending = make(map[string]node)
	}
	if _, ok := d.pending[name]; !ok {
		d.pending[name] = prev
	}
}

// names returns, sorted, every name that has a live or a durable entry.
func (d *dirNode) names() []string {
	seen := make(map[string]struct{}, len(d.entries)+len(d.pending))
	for name := range d.entries {
		seen[name] = struct{}{}
	}
	for name := range d.pending {
		seen[name] = struct{}{}
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// extent is a byte range [lo, hi) written while the file's sync epoch was
// epoch: a sync whose BeforeSync saw epoch e makes the extents of epochs up
// to e durable, not those written after its BeforeSync.
type extent struct {
	lo, hi int64
	epoch  uint64
}

// truncation is a Truncate to size while the sync epoch was epoch.
type truncation struct {
	size  int64
	epoch uint64
}

// syncMark is what a BeforeSync saw: the epoch it closes and the size the
// file had; the matching AfterSync makes that much durable.
type syncMark struct {
	epoch uint64
	size  int64
}

// minCompact is the dirty-list length at which extents start being merged.
const minCompact = 1024

// fileNode is a file: its identity is this node, not its name, so that its
// durable image follows renames and outlives removal until that is durable.
type fileNode struct {
	id uint64
	// path is the live name, "" once unlinked.
	path string
	// loaded tells whether image holds the durable content. A file found on
	// disk is not loaded until it is first changed: until then the real
	// file is its durable content.
	loaded bool
	// image is the durable content; its length is the durable size.
	image []byte
	// size is the live size as the process made it (writes admitted,
	// truncations), the amount charged against the space limit.
	size int64
	// dirty lists what was written since the last sync attempt, in order.
	dirty     []extent
	compactAt int
	// truncs lists truncations not yet made durable by a good sync.
	truncs []truncation
	// lost holds ranges written before a failed sync: never durable unless
	// written again, though the live file still shows them.
	lost spanSet
	// syncEpoch counts BeforeSyncs; extents carry it.
	syncEpoch uint64
	// inflightBytes counts bytes admitted by BeforeWrite and not yet
	// reported by AfterWrite: while positive, a write may still land.
	inflightBytes int64
	// handles are the open files of the current boot, used to read the
	// content of a file that no longer has a name.
	handles map[*file]struct{}
}

func (*fileNode) isNode() {}

// addDirty records a write of [lo, hi). Consecutive writes of one epoch that
// touch or overlap merge into one extent, so appends cost nothing; the list
// is compacted when scattered writes make it long.
func (n *fileNode) addDirty(lo, hi int64) {
	if hi <= lo {
		return
	}
	if k := len(n.dirty); k > 0 {
		last := &n.dirty[k-1]
		if last.epoch == n.syncEpoch && lo <= last.hi && hi >= last.lo {
			last.lo = min(last.lo, lo)
			last.hi = max(last.hi, hi)
			return
		}
	}
	n.dirty = append(n.dirty, extent{lo: lo, hi: hi, epoch: n.syncEpoch})
	if len(n.dirty) > max(n.compactAt, minCompact) {
		n.compactDirty()
		n.compactAt = 2 * len(n.dirty)
	}
}

// compactDirty merges the extents of each epoch into disjoint ranges. The
// order between epochs is kept; within an epoch the order of writes does
// not matter (one sync covers all of them or none).
func (n *fileNode) compactDirty() {
	var out []extent
	for i := 0; i < len(n.dirty); {
		j := i
		var set spanSet
		for j < len(n.dirty) && n.dirty[j].epoch == n.dirty[i].epoch {
			set.add(n.dirty[j].lo, n.dirty[j].hi)
			j++
		}
		for _, s := range set {
			out = append(out, extent{lo: s.lo, hi: s.hi, epoch: n.dirty[i].epoch})
		}
		i = j
	}
	n.dirty = out
}

// addTrunc records a truncation; of several in one epoch only the smallest
// size matters (it decides which old bytes are gone).
func (n *fileNode) addTrunc(size int64) {
	if k := len(n.truncs); k > 0 && n.truncs[k-1].epoch == n.syncEpoch {
		n.truncs[k-1].size = min(n.truncs[k-1].size, size)
		return
	}
	n.truncs = append(n.truncs, truncation{size: size, epoch: n.syncEpoch})
}

// loseEpoch moves the extents of one epoch to the lost set: the sync that
// closed that epoch failed, dropping what it was the first to cover.
// Extents of earlier epochs belong to syncs still in flight, which may
// succeed and make them durable.
func (n *fileNode) loseEpoch(epoch uint64) {
	kept := n.dirty[:0]
	for _, e := range n.dirty {
		if e.epoch == epoch {
			n.lost.add(e.lo, e.hi)
		} else {
			kept = append(kept, e)
		}
	}
	n.dirty = kept
}

// persist makes durable what a sync with mark m covered, reading the
// written ranges from h (an open descriptor of the file).
func (n *fileNode) persist(h vfs.File, m syncMark) error {
	if !n.loaded || (len(n.dirty) == 0 && len(n.truncs) == 0 && m.size == int64(len(n.image))) {
		return nil
	}
	realSize, err := h.Size()
	if err != nil {
		return err
	}
	size := min(m.size, realSize)
	low := int64(math.MaxInt64)
	keptTruncs := n.truncs[:0]
	for _, t := range n.truncs {
		if t.epoch <= m.epoch {
			low = min(low, t.size)
		} else {
			keptTruncs = append(keptTruncs, t)
		}
	}
	n.truncs = keptTruncs
	if low < int64(len(n.image)) {
		n.image = n.image[:low]
	}
	n.image = resize(n.image, size)
	keptDirty := n.dirty[:0]
	for _, e := range n.dirty {
		if e.epoch > m.epoch {
			keptDirty = append(keptDirty, e)
			continue
		}
		if hi := min(e.hi, size); e.lo < hi {
			if err := readFull(h, n.image[e.lo:hi], e.lo); err != nil {
				// What could not be read is not known to be on disk.
				n.lost.add(e.lo, e.hi)
			}
		}
	}
	n.dirty = keptDirty
	return nil
}

// unsynced returns every range in which the live file may differ from the
// durable image.
func (n *fileNode) unsynced() spanSet {
	var set spanSet
	for _, e := range n.dirty {
		set.add(e.lo, e.hi)
	}
	for _, s := range n.lost {
		set.add(s.lo, s.hi)
	}
	if len(n.truncs) > 0 {
		low := int64(math.MaxInt64)
		for _, t := range n.truncs {
			low = min(low, t.size)
		}
		set.add(low, math.MaxInt64)
	}
	return set
}

// span is the byte range [lo, hi).
type span struct{ lo, hi int64 }

// spanSet is a sorted list of disjoint, non-touching spans.
type spanSet []span

// add inserts [lo, hi), merging it with the spans it touches.
func (s *spanSet) add(lo, hi int64) {
	if hi <= lo {
		return
	}
	set := *s
	// First span that ends at or after lo: it may touch the new one.
	i := sort.Search(len(set), func(k int) bool { return set[k].hi >= lo })
	j := i
	for j < len(set) && set[j].lo <= hi {
		lo = min(lo, set[j].lo)
		hi = max(hi, set[j].hi)
		j++
	}
	if i == j {
		set = append(set, span{})
		copy(set[i+1:], set[i:])
		set[i] = span{lo, hi}
	} else {
		set[i] = span{lo, hi}
		set = append(set[:i+1], set[j:]...)
	}
	*s = set
}

// clip returns the parts of the set inside [0, limit).
func (s spanSet) clip(limit int64) spanSet {
	var out spanSet
	for _, sp := range s {
		if sp.lo >= limit {
			break
		}
		out = append(out, span{sp.lo, min(sp.hi, limit)})
	}
	return out
}

// resize returns b with length n; bytes it adds are zero even where b's
// capacity still holds old data.
func resize(b []byte, n int64) []byte {
	old := int64(len(b))
	if n <= old {
		return b[:n]
	}
	if n <= int64(cap(b)) {
		b = b[:n]
		clear(b[old:])
		return b
	}
	nb := make([]byte, n, max(n, 2*int64(cap(b))))
	copy(nb, b)
	return nb
}

// readFull reads len(buf) bytes at off; what lies past the end of the file
// reads as zeros, as a hole would.
func readFull(h vfs.File, buf []byte, off int64) error {
	n, err := h.ReadAt(buf, off)
	if errors.Is(err, io.EOF) {
		clear(buf[n:])
		return nil
	}
	return err
}

// readAll reads the whole content of h.
func readAll(h vfs.File) ([]byte, error) {
	size, err := h.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if err := readFull(h, buf, 0); err != nil {
		return nil, err
	}
	return buf, nil
}

// splitPath turns an absolute clean path into its components.
func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// absPath makes name absolute and clean, the key of the model.
func absPath(name string) (string, error) {
	p, err := filepath.Abs(name)
	if err != nil {
		return "", fmt.Errorf("faultfs: resolving %q: %w", name, err)
	}
	return p, nil
}

// child returns the live entry name of d, discovering it on the real file
// system when the model does not know it yet; nil if there is none.
func (fs *FS) child(d *dirNode, name string) node {
	if e, ok := d.entries[name]; ok {
		return e
	}
	if d.detached {
		return nil
	}
	p := filepath.Join(d.path, name)
	st, err := fs.inner.Stat(p)
	if err != nil {
		return nil
	}
	var e node
	if st.IsDir() {
		e = &dirNode{path: p, entries: make(map[string]node)}
	} else {
		n := fs.newFile(p, false)
		n.size = st.Size()
		fs.used += n.size
		e = n
	}
	d.entries[name] = e
	return e
}

// lookupDir returns the live directory at the absolute path p, or nil.
func (fs *FS) lookupDir(p string) *dirNode {
	d := fs.root
	for _, c := range splitPath(p) {
		sub, ok := fs.child(d, c).(*dirNode)
		if !ok {
			return nil
		}
		d = sub
	}
	return d
}

// lookup returns the parent directory of p (nil if it does not exist), the
// base name, and the live entry (nil if none).
func (fs *FS) lookup(p string) (*dirNode, string, node) {
	if p == "/" {
		return nil, "", fs.root
	}
	parent := fs.lookupDir(filepath.Dir(p))
	base := filepath.Base(p)
	if parent == nil {
		return nil, base, nil
	}
	return parent, base, fs.child(parent, base)
}

// newFile makes a file node named p. A loaded node starts with an empty
// image (a new file); an unloaded one stands for a file found on disk.
func (fs *FS) newFile(p string, loaded bool) *fileNode {
	fs.nextID++
	return &fileNode{id: fs.nextID, path: p, loaded: loaded}
}

// setSize changes the live size of n and charges the difference to the
// space used while n has a name.
func (fs *FS) setSize(n *fileNode, size int64) {
	if n.path != "" {
		fs.used += size - n.size
	}
	n.size = size
}

// ensureLoaded reads the durable image of a file found on disk before its
// first change. via, if not nil, is an open descriptor of the file.
func (fs *FS) ensureLoaded(n *fileNode, via vfs.File) error {
	if n.loaded {
		return nil
	}
	if via == nil {
		for h := range n.handles {
			via = h.inner
			break
		}
	}
	if via == nil {
		if n.path == "" {
			return fmt.Errorf("faultfs: file #%d has neither a name nor an open descriptor", n.id)
		}
		h, err := fs.inner.Open(n.path)
		if err != nil {
			return err
		}
		defer h.Close()
		via = h
	}
	img, err := readAll(via)
	if err != nil {
		return err
	}
	n.image = img
	n.loaded = true
	return nil
}

// detach unlinks a live entry: a file loses its name (and stops counting
// against the space limit); a directory and everything under it become
// detached, keeping their entries for the durable state.
func (fs *FS) detach(e node) {
	switch e := e.(type) {
	case *fileNode:
		fs.used -= e.size
		e.path = ""
	case *dirNode:
		e.detached = true
		for _, c := range e.entries {
			fs.detach(c)
		}
	}
}

// discoverTree adds every real entry under d to the model and loads every
// file's image, before the tree is removed.
func (fs *FS) discoverTree(d *dirNode) error {
	names, err := fs.inner.ReadDir(d.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, name := range names {
		switch c := fs.child(d, name).(type) {
		case *dirNode:
			if err := fs.discoverTree(c); err != nil {
				return err
			}
		case *fileNode:
			if err := fs.ensureLoaded(c, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// describe names a node in a report.
func describe(e node) string {
	switch e := e.(type) {
	case *dirNode:
		return "dir"
	case *fileNode:
		return fmt.Sprintf("file #%d", e.id)
	}
	return "absent"
}
