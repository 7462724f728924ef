package offline

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// journal is a file system that passes everything to another and writes a
// line for each change: how `lnc repair` tells what topiclog's recovery
// did (or, on an Overlay, would do).
type journal struct {
	vfs.FS
	dir string // names are shown relative to it

	mu    sync.Mutex // guards lines
	lines []string
}

var _ vfs.FS = (*journal)(nil)

func (j *journal) note(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, fmt.Sprintf(format, args...))
}

func (j *journal) rel(name string) string {
	if r, err := filepath.Rel(j.dir, name); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return name
}

func (j *journal) Create(name string) (vfs.File, error) {
	f, err := j.FS.Create(name)
	if err != nil {
		return nil, err
	}
	j.note("create %s", j.rel(name))
	return &jfile{File: f, j: j}, nil
}

func (j *journal) OpenRW(name string) (vfs.File, error) {
	f, err := j.FS.OpenRW(name)
	if err != nil {
		return nil, err
	}
	return &jfile{File: f, j: j}, nil
}

func (j *journal) Remove(name string) error {
	size := int64(-1)
	if st, err := j.FS.Stat(name); err == nil {
		size = st.Size()
	}
	if err := j.FS.Remove(name); err != nil {
		return err
	}
	if size >= 0 {
		j.note("remove %s (%d bytes)", j.rel(name), size)
	} else {
		j.note("remove %s", j.rel(name))
	}
	return nil
}

func (j *journal) Rename(oldname, newname string) error {
	if err := j.FS.Rename(oldname, newname); err != nil {
		return err
	}
	j.note("rename %s to %s", j.rel(oldname), j.rel(newname))
	return nil
}

func (j *journal) RemoveAll(dir string) error {
	if err := j.FS.RemoveAll(dir); err != nil {
		return err
	}
	j.note("remove %s and everything in it", j.rel(dir))
	return nil
}

// jfile notes writes and truncations.
type jfile struct {
	vfs.File
	j *journal
}

func (f *jfile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	if n > 0 {
		name := f.j.rel(f.Name())
		rel := off - index.HeaderSize
		switch {
		case strings.HasSuffix(name, indexExt) && off == 0 && n == index.HeaderSize:
			f.j.note("write the index header of %s", name)
		case strings.HasSuffix(name, indexExt) && rel >= 0 && rel%index.EntrySize == 0 && n == index.EntrySize:
			f.j.note("rewrite index entry %d of %s", rel/index.EntrySize, name)
		default:
			f.j.note("write %d bytes at byte %d of %s", n, off, name)
		}
	}
	return n, err
}

func (f *jfile) Truncate(size int64) error {
	old, serr := f.File.Size()
	if err := f.File.Truncate(size); err != nil {
		return err
	}
	name := f.j.rel(f.Name())
	switch {
	case serr != nil:
		f.j.note("cut %s to %d bytes", name, size)
	case old != size:
		f.j.note("cut %s from %d to %d bytes (%d bytes removed)", name, old, size, old-size)
	}
	return nil
}
