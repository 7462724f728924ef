// Package topics is the server's topic registry: topic metadata on disk,
// one log and one writer goroutine per topic, consumer offsets, and the
// retention loop.
//
// Layout under the data directory:
//
//	topics/registry.json          {"next_topic_id":N}: ids are never reused
//	topics/<name>/topic.json      Meta: id, name, created_at, topic_epoch, retention
//	topics/<name>/offsets.log     committed consumer offsets (see offsets.go)
//	topics/<name>/<20 digits>.lnc segments and their .idx (lnc-io/topiclog)
//	topics/.new-<id>              a creation that did not finish; removed at start
//	topics/.del-<id>              a deletion that did not finish; removed at start
//	LOCK                          flock held by the running server
package topics

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lance-go/lance/lance/internal/flow"
	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/topiclog"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-network/control"
)

// Errors.
var (
	ErrExists   = errors.New("topics: topic exists")
	ErrNotFound = errors.New("topics: topic not found")
	ErrClosed   = errors.New("topics: registry closed")
	// ErrIDsExhausted: every u32 topic id was handed out.
	ErrIDsExhausted = errors.New("topics: topic ids exhausted")
)

// Observer is told about every group commit, for metrics.
type Observer interface {
	Committed(topic string, batches int, bytes int64, d time.Duration, err error)
}

// Options configure a Registry.
type Options struct {
	FS      vfs.FS
	Backend backend.Backend
	// Log options for every topic log.
	SegmentSize int64
	Prealloc    int64
	// Direct writes segment data with O_DIRECT (topiclog.Options.Direct).
	Direct bool
	Node   uint16
	// BatchBytes caps the bytes one group commit gathers.
	BatchBytes int64
	// QueueBytes caps the bytes waiting for one topic's writer.
	QueueBytes int64
	// QueueLen is the writer queue's length in batches (default 4096).
	QueueLen int
	// DefaultRetention applies to topics without their own.
	DefaultRetention topiclog.Retention
	Logger           *slog.Logger
	Observer         Observer
	Now              func() time.Time
}

// Registry holds every topic of the node.
type Registry struct {
	dir  string
	opts Options
	log  *slog.Logger

	// mu serializes the changes of the topic set (create, delete, close)
	// and guards next; lookups read the copy-on-write snapshot without it.
	mu     sync.Mutex
	next   uint32
	closed bool
	snap   atomic.Pointer[snapshot]

	// failed holds the first storage error of any topic: after it the
	// node acknowledges nothing more and reports not ready.
	failed atomic.Pointer[error]
}

// snapshot is an immutable view of the topic set.
type snapshot struct {
	byID   map[uint32]*Topic
	byName map[string]*Topic
}

// Open loads (or creates) the registry under dataDir/topics and recovers
// every topic's log.
func Open(dataDir string, opts Options) (*Registry, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = 4096
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 4 << 20
	}
	r := &Registry{dir: filepath.Join(dataDir, "topics"), opts: opts, log: opts.Logger, next: 1}
	r.snap.Store(&snapshot{byID: map[uint32]*Topic{}, byName: map[string]*Topic{}})
	fs := opts.FS
	if err := fs.MkdirAll(r.dir); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	if err := fs.SyncDir(dataDir); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	var st registryState
	switch err := readJSONFile(fs, filepath.Join(r.dir, registryFile), &st); {
	case err == nil:
		// 0 is what Create stores after handing out the last u32 id:
		// exhausted, not fresh.
		r.next = st.NextTopicID
	case errors.Is(err, iofs.ErrNotExist):
	default:
		return nil, fmt.Errorf("topics: %w", err)
	}
	names, err := fs.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	removed := false
	snap := &snapshot{byID: map[uint32]*Topic{}, byName: map[string]*Topic{}}
	for _, name := range names {
		path := filepath.Join(r.dir, name)
		switch {
		case name == registryFile, name == registryFile+tmpSuffix:
			continue
		case strings.HasPrefix(name, ".new-"), strings.HasPrefix(name, ".del-"):
			r.log.Info("removing an unfinished topic creation or deletion", "dir", path)
			if err := fs.RemoveAll(path); err != nil {
				return nil, fmt.Errorf("topics: %w", err)
			}
			removed = true
			continue
		}
		var m Meta
		if err := readJSONFile(fs, filepath.Join(path, metaFile), &m); err != nil {
			r.closeAll(snap)
			return nil, fmt.Errorf("topics: topic directory %s: %w", path, err)
		}
		if m.Name != name || m.ID == 0 {
			r.closeAll(snap)
			return nil, fmt.Errorf("topics: %s: metadata names topic %q id %d", path, m.Name, m.ID)
		}
		if other := snap.byID[m.ID]; other != nil {
			r.closeAll(snap)
			return nil, fmt.Errorf("topics: topics %q and %q share id %d", other.name, m.Name, m.ID)
		}
		t, err := r.openTopic(path, m)
		if err != nil {
			r.closeAll(snap)
			return nil, err
		}
		snap.byID[m.ID] = t
		snap.byName[m.Name] = t
		if r.next != 0 && m.ID >= r.next {
			r.next = m.ID + 1
		}
	}
	if removed {
		if err := fs.SyncDir(r.dir); err != nil {
			r.closeAll(snap)
			return nil, fmt.Errorf("topics: %w", err)
		}
	}
	r.snap.Store(snap)
	return r, nil
}

func (r *Registry) closeAll(s *snapshot) {
	for _, t := range s.byID {
		t.close()
	}
}

func (r *Registry) openTopic(dir string, m Meta) (*Topic, error) {
	l, err := topiclog.Open(dir, topiclog.Options{
		FS: r.opts.FS, Backend: r.opts.Backend,
		SegmentSize: r.opts.SegmentSize, Prealloc: r.opts.Prealloc,
		Node: r.opts.Node, Now: r.opts.Now, Direct: r.opts.Direct,
	})
	if err != nil {
		return nil, fmt.Errorf("topics: open topic %q: %w", m.Name, err)
	}
	if d := l.Damaged(); len(d) > 0 {
		r.log.Error("acknowledged batches fail their CRC: kept in the log, refused to readers",
			"topic", m.Name, "offsets", d)
	}
	offs, err := openOffsets(r.opts.FS, dir)
	if err != nil {
		l.Close()
		return nil, err
	}
	if m.Epoch == 0 {
		m.Epoch = 1
	}
	t := &Topic{
		reg: r, dir: dir, log: l, meta: m, id: m.ID, name: m.Name,
		offsets: offs,
		q:       make(chan *Ingest, r.opts.QueueLen),
		budget:  flow.NewBudget(r.opts.QueueBytes),
		stopped: make(chan struct{}),
		notify:  make(chan struct{}),
	}
	if err := t.dedup.load(l); err != nil {
		l.Close()
		offs.close()
		return nil, fmt.Errorf("topics: open topic %q: %w", m.Name, err)
	}
	go t.run()
	return t, nil
}

// ByID returns the topic with id, or nil.
func (r *Registry) ByID(id uint32) *Topic { return r.snap.Load().byID[id] }

// ByName returns the topic named name, or nil.
func (r *Registry) ByName(name string) *Topic { return r.snap.Load().byName[name] }

// List returns every topic, ordered by id.
func (r *Registry) List() []*Topic {
	s := r.snap.Load()
	ts := make([]*Topic, 0, len(s.byID))
	for _, t := range s.byID {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b *Topic) int { return int(int64(a.id) - int64(b.id)) })
	return ts
}

// Create makes a new topic. The name must pass control.ValidateTopicName;
// an existing name fails with ErrExists. ret may be nil.
func (r *Registry) Create(name string, ret *Retention) (*Topic, error) {
	if err := control.ValidateTopicName(name); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if err := r.Failed(); err != nil {
		return nil, err
	}
	if r.ByName(name) != nil {
		return nil, fmt.Errorf("%w: %q", ErrExists, name)
	}
	if r.next == 0 {
		return nil, ErrIDsExhausted
	}
	id := r.next
	fs := r.opts.FS
	// The id is spent durably before it is used.
	if err := writeJSONFile(fs, filepath.Join(r.dir, registryFile), registryState{NextTopicID: id + 1}); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	r.next = id + 1
	m := Meta{ID: id, Name: name, CreatedAt: uint64(r.opts.Now().Unix()), Epoch: 1}
	if ret != nil {
		rc := *ret
		m.Retention = &rc
	}
	// Staging and deletion names carry the id, not the name, so that they
	// fit the 255-byte file name limit whatever the topic's name.
	tmp := filepath.Join(r.dir, fmt.Sprintf(".new-%d", id))
	final := filepath.Join(r.dir, name)
	if err := fs.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	if err := fs.MkdirAll(tmp); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	if err := writeJSONFile(fs, filepath.Join(tmp, metaFile), m); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	if err := fs.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	if err := fs.SyncDir(r.dir); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	t, err := r.openTopic(final, m)
	if err != nil {
		return nil, err
	}
	r.publish(func(s *snapshot) {
		s.byID[id] = t
		s.byName[name] = t
	})
	r.log.Info("topic created", "topic", name, "id", id)
	return t, nil
}

// publish installs a modified copy of the snapshot; mu is held.
func (r *Registry) publish(change func(*snapshot)) {
	old := r.snap.Load()
	s := &snapshot{byID: make(map[uint32]*Topic, len(old.byID)+1), byName: make(map[string]*Topic, len(old.byName)+1)}
	for k, v := range old.byID {
		s.byID[k] = v
	}
	for k, v := range old.byName {
		s.byName[k] = v
	}
	change(s)
	r.snap.Store(s)
}

// Delete removes the topic with id: batches waiting for its writer fail,
// its files are removed.
func (r *Registry) Delete(id uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	t := r.ByID(id)
	if t == nil {
		return fmt.Errorf("%w: id %d", ErrNotFound, id)
	}
	fs := r.opts.FS
	gone := filepath.Join(r.dir, fmt.Sprintf(".del-%d", id))
	if err := fs.Rename(t.dir, gone); err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	if err := fs.SyncDir(r.dir); err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	r.publish(func(s *snapshot) {
		delete(s.byID, id)
		delete(s.byName, t.name)
	})
	t.deleted.Store(true)
	if err := t.close(); err != nil {
		r.log.Warn("closing a deleted topic", "topic", t.name, "err", err)
	}
	if err := fs.RemoveAll(gone); err != nil {
		// Removed at the next start.
		r.log.Warn("removing a deleted topic's files", "dir", gone, "err", err)
	} else if err := fs.SyncDir(r.dir); err != nil {
		r.log.Warn("syncing the topics directory", "err", err)
	}
	r.log.Info("topic deleted", "topic", t.name, "id", id)
	return nil
}

// SetRetention changes a topic's retention durably.
func (r *Registry) SetRetention(id uint32, ret Retention) (*Topic, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	t := r.ByID(id)
	if t == nil {
		return nil, fmt.Errorf("%w: id %d", ErrNotFound, id)
	}
	m := t.Meta()
	m.Retention = &ret
	if err := writeJSONFile(r.opts.FS, filepath.Join(t.dir, metaFile), m); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	t.metaMu.Lock()
	t.meta = m
	t.metaMu.Unlock()
	return t, nil
}

// ApplyRetention enforces every topic's retention once.
func (r *Registry) ApplyRetention(now time.Time) {
	for _, t := range r.List() {
		removed, err := t.log.ApplyRetention(t.Retention(), now)
		if err != nil && !errors.Is(err, topiclog.ErrClosed) {
			r.log.Warn("retention", "topic", t.name, "err", err)
		}
		if len(removed) > 0 {
			r.log.Info("retention removed segments", "topic", t.name, "segments", len(removed), "start", t.log.Start())
		}
	}
}

// RunRetention applies retention every interval until ctx ends.
func (r *Registry) RunRetention(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			r.ApplyRetention(r.opts.Now())
		}
	}
}

// storageFailed records the first storage error.
func (r *Registry) storageFailed(t *Topic, err error) {
	if r.failed.CompareAndSwap(nil, &err) {
		r.log.Error("storage failed: this node acknowledges no more writes", "topic", t.name, "err", err)
	}
}

// Failed returns the storage error that stopped the write path, or nil.
func (r *Registry) Failed() error {
	if p := r.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops every writer after its queued batches and closes the logs.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var first error
	for _, t := range r.snap.Load().byID {
		if err := t.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
