// Package offline reads and repairs a lance data directory while no server
// runs on it: it finds the topics, checks every segment's index and data
// (the checks of lnc-io/topiclog's recovery, plus the CRC of every batch of
// every segment), and repairs what can be repaired, leaving the cutting of
// torn tails to topiclog's own recovery.
//
// Everything goes through a vfs.FS, so that `lnc repair --dry-run` can run
// the real repair on an Overlay that keeps every change in memory.
package offline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lance-go/lance/lnc-io/vfs"
)

// File names of a lance data directory (docs/server.md, docs/storage.md).
const (
	topicsDir    = "topics"
	metaFile     = "topic.json"
	registryFile = "registry.json"
	lockFile     = "LOCK"
	dataExt      = ".lnc"
	indexExt     = ".idx"
	// rebuildSuffix names the temporary file a rebuilt index is written
	// to before it is renamed over the index. topiclog ignores it.
	rebuildSuffix = ".rebuild"
)

// Meta is a topic's topic.json as the server writes it.
type Meta struct {
	ID        uint32     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt uint64     `json:"created_at"`
	Epoch     uint32     `json:"topic_epoch"`
	Retention *Retention `json:"retention,omitempty"`
}

// Retention is a topic's own retention limit in topic.json; zero means
// unlimited.
type Retention struct {
	MaxAgeSecs uint64 `json:"max_age_secs"`
	MaxBytes   uint64 `json:"max_bytes"`
}

// TopicDir is one topic's directory.
type TopicDir struct {
	// Name is the directory's name, which the server requires to be the
	// topic's name.
	Name string
	// Dir is the directory's path.
	Dir string
}

// Layout is what a path given to an offline command holds.
type Layout struct {
	// DataDir is the data directory (holding LOCK and topics/), or ""
	// when the path is a topic directory that is not inside one.
	DataDir string
	// Topics are the topic directories, sorted by name.
	Topics []TopicDir
	// Unfinished lists the directories an interrupted topic creation or
	// deletion left under topics/ (.new-<id>, .del-<id>); the server
	// removes them when it starts.
	Unfinished []string
}

// Find looks at path: a data directory (it has topics/ in it) or a single
// topic's directory (it holds segment files or a topic.json).
func Find(fsys vfs.FS, path string) (*Layout, error) {
	path = filepath.Clean(path)
	st, err := fsys.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("offline: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("offline: %s is not a directory", path)
	}
	tdir := filepath.Join(path, topicsDir)
	if st, err := fsys.Stat(tdir); err == nil && st.IsDir() {
		names, err := fsys.ReadDir(tdir)
		if err != nil {
			return nil, fmt.Errorf("offline: %w", err)
		}
		l := &Layout{DataDir: path}
		for _, name := range names {
			p := filepath.Join(tdir, name)
			switch {
			case name == registryFile || strings.HasPrefix(name, registryFile+"."):
				continue
			case strings.HasPrefix(name, ".new-"), strings.HasPrefix(name, ".del-"):
				l.Unfinished = append(l.Unfinished, p)
				continue
			}
			if st, err := fsys.Stat(p); err == nil && st.IsDir() {
				l.Topics = append(l.Topics, TopicDir{Name: name, Dir: p})
			}
		}
		return l, nil
	}
	names, err := fsys.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("offline: %w", err)
	}
	isTopic := slices.Contains(names, metaFile)
	for _, name := range names {
		if _, ok := parseSegmentName(name, dataExt); ok {
			isTopic = true
		} else if _, ok := parseSegmentName(name, indexExt); ok {
			isTopic = true
		}
	}
	if !isTopic {
		return nil, fmt.Errorf("offline: %s is neither a lance data directory (it has no %s/) nor a topic directory (it has no segment files and no %s)", path, topicsDir, metaFile)
	}
	l := &Layout{Topics: []TopicDir{{Name: filepath.Base(path), Dir: path}}}
	if parent := filepath.Dir(path); filepath.Base(parent) == topicsDir {
		l.DataDir = filepath.Dir(parent)
	}
	return l, nil
}

// Select keeps the topics named in names (all when names is empty) and
// fails for a name the layout does not hold.
func (l *Layout) Select(names []string) ([]TopicDir, error) {
	if len(names) == 0 {
		return l.Topics, nil
	}
	var out []TopicDir
	for _, n := range names {
		i := slices.IndexFunc(l.Topics, func(t TopicDir) bool { return t.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("offline: no topic %q here", n)
		}
		out = append(out, l.Topics[i])
	}
	return out, nil
}

// readMeta reads dir/topic.json.
func readMeta(fsys vfs.FS, dir string) (*Meta, error) {
	f, err := fsys.Open(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > 1<<20 {
		return nil, fmt.Errorf("%s is %d bytes, more than 1 MiB", metaFile, size)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", metaFile, err)
	}
	return &m, nil
}

// segmentName returns the file name of the segment at base with ext.
func segmentName(base uint64, ext string) string { return fmt.Sprintf("%020d%s", base, ext) }

// parseSegmentName returns the base offset of a data or index file name:
// 20 decimal digits and the extension, as topiclog names them.
func parseSegmentName(name, ext string) (uint64, bool) {
	stem, ok := strings.CutSuffix(name, ext)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	for _, c := range stem {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	base, err := strconv.ParseUint(stem, 10, 64)
	return base, err == nil
}

func isNotExist(err error) bool { return errors.Is(err, iofs.ErrNotExist) }
