package offline

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lance-go/lance/lnc-io/vfs"
)

// Overlay is a copy-on-write view of a file system: reads see the base's
// files, and every change (writes, truncations, creations, removals,
// renames, new directories) is kept in memory and never reaches the base.
// `lnc repair --dry-run` runs the real repair on one.
//
// Its files have no descriptor of their own (Fd returns ^uintptr(0), which
// every system call refuses), so they must not be handed to an I/O
// backend: topiclog.Open without Options.Direct does not. It is safe for
// concurrent use.
type Overlay struct {
	base vfs.FS

	mu     sync.Mutex // guards the maps
	nodes  map[string]*onode
	hidden map[string]bool // base paths removed or renamed away
	gone   []string        // base directories removed with RemoveAll
	dirs   map[string]bool // directories created in the overlay
}

var _ vfs.FS = (*Overlay)(nil)

// NewOverlay returns an overlay over base.
func NewOverlay(base vfs.FS) *Overlay {
	return &Overlay{base: base, nodes: map[string]*onode{}, hidden: map[string]bool{}, dirs: map[string]bool{}}
}

// onode is a file as the overlay sees it: bytes [0, keep) of the base file
// at basePath, zeros up to size, and the patches written on top, in order.
type onode struct {
	mu       sync.Mutex // guards the fields below
	basePath string     // "" for a file created in the overlay
	size     int64
	keep     int64
	patches  []patch
	mtime    time.Time
}

type patch struct {
	off  int64
	data []byte
}

// hiddenLocked reports whether a base path was removed in the overlay.
func (o *Overlay) hiddenLocked(name string) bool {
	if o.hidden[name] {
		return true
	}
	for _, d := range o.gone {
		if name == d || strings.HasPrefix(name, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// nodeLocked returns the node of name, creating it from the base file when
// name was not changed yet.
func (o *Overlay) nodeLocked(op, name string) (*onode, error) {
	if n := o.nodes[name]; n != nil {
		return n, nil
	}
	if o.hiddenLocked(name) {
		return nil, &os.PathError{Op: op, Path: name, Err: iofs.ErrNotExist}
	}
	st, err := o.base.Stat(name)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, &os.PathError{Op: op, Path: name, Err: errors.New("is a directory")}
	}
	n := &onode{basePath: name, size: st.Size(), keep: st.Size(), mtime: st.ModTime()}
	o.nodes[name] = n
	return n, nil
}

func (o *Overlay) existsLocked(name string) bool {
	if o.nodes[name] != nil || o.dirs[name] {
		return true
	}
	if o.hiddenLocked(name) {
		return false
	}
	_, err := o.base.Stat(name)
	return err == nil
}

// Create creates an empty file; it fails when name exists.
func (o *Overlay) Create(name string) (vfs.File, error) {
	name = filepath.Clean(name)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.existsLocked(name) {
		return nil, &os.PathError{Op: "open", Path: name, Err: iofs.ErrExist}
	}
	n := &onode{mtime: time.Now()}
	o.nodes[name] = n
	return &ofile{o: o, n: n, name: name}, nil
}

// Open opens a file; the overlay does not tell read-only from read-write.
func (o *Overlay) Open(name string) (vfs.File, error) { return o.open("open", name) }

// OpenRW opens a file for reading and writing.
func (o *Overlay) OpenRW(name string) (vfs.File, error) { return o.open("open", name) }

func (o *Overlay) open(op, name string) (vfs.File, error) {
	name = filepath.Clean(name)
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.nodeLocked(op, name)
	if err != nil {
		return nil, err
	}
	return &ofile{o: o, n: n, name: name}, nil
}

// Remove removes a file.
func (o *Overlay) Remove(name string) error {
	name = filepath.Clean(name)
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.existsLocked(name) || o.dirs[name] {
		return &os.PathError{Op: "remove", Path: name, Err: iofs.ErrNotExist}
	}
	delete(o.nodes, name)
	o.hidden[name] = true
	return nil
}

// Rename renames a file, replacing newname.
func (o *Overlay) Rename(oldname, newname string) error {
	oldname, newname = filepath.Clean(oldname), filepath.Clean(newname)
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.nodeLocked("rename", oldname)
	if err != nil {
		return err
	}
	delete(o.nodes, oldname)
	o.hidden[oldname] = true
	o.nodes[newname] = n
	return nil
}

// MkdirAll creates a directory.
func (o *Overlay) MkdirAll(dir string) error {
	dir = filepath.Clean(dir)
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.hiddenLocked(dir) {
		if st, err := o.base.Stat(dir); err == nil && st.IsDir() {
			return nil
		}
	}
	for d := dir; !o.dirs[d]; d = filepath.Dir(d) {
		o.dirs[d] = true
		if d == filepath.Dir(d) {
			break
		}
	}
	return nil
}

// RemoveAll removes a directory tree.
func (o *Overlay) RemoveAll(dir string) error {
	dir = filepath.Clean(dir)
	o.mu.Lock()
	defer o.mu.Unlock()
	prefix := dir + string(filepath.Separator)
	for name := range o.nodes {
		if name == dir || strings.HasPrefix(name, prefix) {
			delete(o.nodes, name)
		}
	}
	for d := range o.dirs {
		if d == dir || strings.HasPrefix(d, prefix) {
			delete(o.dirs, d)
		}
	}
	o.gone = append(o.gone, dir)
	return nil
}

// SyncDir does nothing: nothing of the overlay is durable.
func (o *Overlay) SyncDir(string) error { return nil }

// ReadDir lists dir as changed by the overlay.
func (o *Overlay) ReadDir(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	o.mu.Lock()
	defer o.mu.Unlock()
	var names []string
	if !o.hiddenLocked(dir) {
		base, err := o.base.ReadDir(dir)
		switch {
		case err == nil:
			for _, name := range base {
				if !o.hiddenLocked(filepath.Join(dir, name)) {
					names = append(names, name)
				}
			}
		case !o.dirs[dir] || !isNotExist(err):
			return nil, err
		}
	} else if !o.dirs[dir] {
		return nil, &os.PathError{Op: "open", Path: dir, Err: iofs.ErrNotExist}
	}
	for name := range o.nodes {
		if filepath.Dir(name) == dir {
			names = append(names, filepath.Base(name))
		}
	}
	for d := range o.dirs {
		if d != dir && filepath.Dir(d) == dir {
			names = append(names, filepath.Base(d))
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// Stat describes a file or directory as the overlay sees it.
func (o *Overlay) Stat(name string) (os.FileInfo, error) {
	name = filepath.Clean(name)
	o.mu.Lock()
	defer o.mu.Unlock()
	if n := o.nodes[name]; n != nil {
		n.mu.Lock()
		defer n.mu.Unlock()
		return fileInfo{name: filepath.Base(name), size: n.size, mtime: n.mtime}, nil
	}
	if o.dirs[name] {
		return fileInfo{name: filepath.Base(name), dir: true, mtime: time.Now()}, nil
	}
	if o.hiddenLocked(name) {
		return nil, &os.PathError{Op: "stat", Path: name, Err: iofs.ErrNotExist}
	}
	return o.base.Stat(name)
}

type fileInfo struct {
	name  string
	size  int64
	dir   bool
	mtime time.Time
}

func (f fileInfo) Name() string { return f.name }
func (f fileInfo) Size() int64  { return f.size }
func (f fileInfo) Mode() os.FileMode {
	if f.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}
func (f fileInfo) ModTime() time.Time { return f.mtime }
func (f fileInfo) IsDir() bool        { return f.dir }
func (f fileInfo) Sys() any           { return nil }

// ofile is an open file of an Overlay.
type ofile struct {
	o    *Overlay
	n    *onode
	name string
	base vfs.File // the base file, opened on the first read that needs it
}

var _ vfs.File = (*ofile)(nil)

func (f *ofile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &os.PathError{Op: "read", Path: f.name, Err: iofs.ErrInvalid}
	}
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if off >= n.size {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), n.size-off))
	dst := p[:k]
	fromBase := 0
	if off < n.keep {
		fromBase = int(min(int64(k), n.keep-off))
		if f.base == nil {
			b, err := f.o.base.Open(n.basePath)
			if err != nil {
				return 0, err
			}
			f.base = b
		}
		got, err := f.base.ReadAt(dst[:fromBase], off)
		if got < fromBase {
			if err == nil || errors.Is(err, io.EOF) {
				err = fmt.Errorf("offline: %s changed under the overlay", n.basePath)
			}
			return 0, err
		}
	}
	clear(dst[fromBase:])
	for _, pt := range n.patches {
		lo, hi := max(pt.off, off), min(pt.off+int64(len(pt.data)), off+int64(k))
		if lo < hi {
			copy(dst[lo-off:hi-off], pt.data[lo-pt.off:hi-pt.off])
		}
	}
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

func (f *ofile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: iofs.ErrInvalid}
	}
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	n.patches = append(n.patches, patch{off: off, data: slices.Clone(p)})
	n.size = max(n.size, off+int64(len(p)))
	n.mtime = time.Now()
	return len(p), nil
}

func (f *ofile) Truncate(size int64) error {
	if size < 0 {
		return &os.PathError{Op: "truncate", Path: f.name, Err: iofs.ErrInvalid}
	}
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	n.keep = min(n.keep, size)
	kept := n.patches[:0]
	for _, pt := range n.patches {
		if pt.off >= size {
			continue
		}
		if end := pt.off + int64(len(pt.data)); end > size {
			pt.data = pt.data[:size-pt.off]
		}
		kept = append(kept, pt)
	}
	n.patches = kept
	n.size = size
	n.mtime = time.Now()
	return nil
}

func (f *ofile) Sync() error                    { return nil }
func (f *ofile) Preallocate(int64, int64) error { return nil }
func (f *ofile) Name() string                   { return f.name }
func (f *ofile) Fd() uintptr                    { return ^uintptr(0) }

func (f *ofile) Size() (int64, error) {
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	return f.n.size, nil
}

func (f *ofile) Close() error {
	if f.base != nil {
		err := f.base.Close()
		f.base = nil
		return err
	}
	return nil
}
