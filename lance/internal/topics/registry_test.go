package topics

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lance-go/lance/lnc-io/topiclog"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-network/control"
)

func TestCreateLookupList(t *testing.T) {
	dir := t.TempDir()
	r := openRegistry(t, dir, testOptions(vfs.OS(), newBackend(t)))

	if got := r.List(); len(got) != 0 {
		t.Fatalf("a new registry lists %d topics", len(got))
	}
	ret := &Retention{MaxAgeSecs: 3600, MaxBytes: 1 << 20}
	names := []string{"orders", "Payments-2", "x"}
	for i, name := range names {
		var rp *Retention
		if i == 1 {
			rp = ret
		}
		tp, err := r.Create(name, rp)
		if err != nil {
			t.Fatalf("Create(%q): %v", name, err)
		}
		if tp.ID() != uint32(i+1) || tp.Name() != name {
			t.Fatalf("Create(%q) = id %d name %q, want id %d", name, tp.ID(), tp.Name(), i+1)
		}
		m := tp.Meta()
		if m.ID != tp.ID() || m.Name != name || m.Epoch != 1 || m.CreatedAt != 1_700_000_000 {
			t.Fatalf("Meta = %+v", m)
		}
		if (m.Retention != nil) != (rp != nil) || (rp != nil && *m.Retention != *rp) {
			t.Fatalf("Meta.Retention = %v, want %v", m.Retention, rp)
		}
	}
	// Create copied the retention: the caller's struct is not shared.
	ret.MaxBytes = 7
	if got := r.ByName("Payments-2").Meta().Retention.MaxBytes; got != 1<<20 {
		t.Fatalf("the registry shares the caller's Retention: MaxBytes %d", got)
	}
	// So does Meta.
	m := r.ByName("Payments-2").Meta()
	m.Retention.MaxAgeSecs = 1
	if got := r.ByName("Payments-2").Meta().Retention.MaxAgeSecs; got != 3600 {
		t.Fatalf("Meta shares the topic's Retention: MaxAgeSecs %d", got)
	}

	for i, name := range names {
		id := uint32(i + 1)
		if tp := r.ByID(id); tp == nil || tp.Name() != name {
			t.Fatalf("ByID(%d) = %v", id, tp)
		}
		if tp := r.ByName(name); tp == nil || tp.ID() != id {
			t.Fatalf("ByName(%q) = %v", name, tp)
		}
	}
	if r.ByID(0) != nil || r.ByID(4) != nil || r.ByName("ORDERS") != nil || r.ByName("") != nil {
		t.Fatal("a lookup found a topic that does not exist")
	}
	list := r.List()
	if len(list) != 3 {
		t.Fatalf("List has %d topics", len(list))
	}
	for i, tp := range list {
		if tp.ID() != uint32(i+1) {
			t.Fatalf("List()[%d] has id %d: not ordered by id", i, tp.ID())
		}
	}

	// The files of docs/server.md.
	for _, name := range []string{"registry.json", "orders/topic.json", "orders/offsets.log"} {
		if _, err := vfs.OS().Stat(filepath.Join(dir, "topics", name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCreateDuplicateAndInvalidNames(t *testing.T) {
	r := openRegistry(t, t.TempDir(), testOptions(vfs.OS(), newBackend(t)))
	first := mustCreate(t, r, "dup")
	if _, err := r.Create("dup", nil); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	for _, name := range []string{"", "a.b", "a/b", "..", ".new-1", ".del-1", "registry.json", "sp ace", "é", strings.Repeat("n", 256)} {
		_, err := r.Create(name, nil)
		var ne *control.NameError
		if !errors.As(err, &ne) {
			t.Errorf("Create(%q): %v, want a control.NameError", name, err)
		}
	}
	// Failed creations spend no id and change nothing.
	if got := r.List(); len(got) != 1 || got[0] != first {
		t.Fatalf("List after refused creations: %v", got)
	}
	if tp := mustCreate(t, r, "next"); tp.ID() != 2 {
		t.Fatalf("id after refused creations = %d, want 2", tp.ID())
	}
}

func TestLongNames(t *testing.T) {
	dir := t.TempDir()
	fsys := vfs.OS()
	be := newBackend(t)
	r := openRegistry(t, dir, testOptions(fsys, be))
	long := []string{strings.Repeat("a", control.MaxTopicNameLen), strings.Repeat("Z9-", 85)}
	for _, name := range long {
		tp := mustCreate(t, r, name)
		off, err := ingest(t, tp, []byte("hello"))
		if err != nil {
			t.Fatalf("ingest into a %d-byte name: %v", len(name), err)
		}
		readBack(t, tp, off, []byte("hello"))
		if err := tp.CommitOffset(1, 5); err != nil {
			t.Fatal(err)
		}
		if _, err := r.SetRetention(tp.ID(), Retention{MaxBytes: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openRegistry(t, dir, testOptions(fsys, be))
	for _, name := range long {
		tp := r.ByName(name)
		if tp == nil {
			t.Fatalf("%d-byte name lost across reopen", len(name))
		}
		if off, ok := tp.CommittedOffset(1); !ok || off != 5 {
			t.Fatalf("committed offset = %d, %v", off, ok)
		}
		if err := r.Delete(tp.ID()); err != nil {
			t.Fatalf("Delete of a %d-byte name: %v", len(name), err)
		}
	}
	names, err := fsys.ReadDir(filepath.Join(dir, "topics"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "registry.json" {
		t.Fatalf("topics directory after deleting everything: %v", names)
	}
}

func TestIDsNeverReused(t *testing.T) {
	dir := t.TempDir()
	be := newBackend(t)
	opts := testOptions(vfs.OS(), be)
	r := openRegistry(t, dir, opts)
	a := mustCreate(t, r, "a")
	b := mustCreate(t, r, "b")
	c := mustCreate(t, r, "c")
	if a.ID() != 1 || b.ID() != 2 || c.ID() != 3 {
		t.Fatalf("ids %d %d %d", a.ID(), b.ID(), c.ID())
	}
	if err := r.Delete(c.ID()); err != nil {
		t.Fatal(err)
	}
	if r.ByID(3) != nil || r.ByName("c") != nil {
		t.Fatal("deleted topic still found")
	}
	if err := r.Delete(c.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	// A new topic of the same name gets a new id.
	c2 := mustCreate(t, r, "c")
	if c2.ID() != 4 {
		t.Fatalf("recreated topic got id %d, want 4", c2.ID())
	}
	if err := r.Delete(c2.ID()); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// The highest id in use is 2, but 3 and 4 were spent.
	r = openRegistry(t, dir, opts)
	if got := len(r.List()); got != 2 {
		t.Fatalf("%d topics after reopen, want 2", got)
	}
	if tp := mustCreate(t, r, "d"); tp.ID() != 5 {
		t.Fatalf("id after delete and reopen = %d, want 5", tp.ID())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// Without registry.json (written by an older layout, or lost), the
	// ids of the topics on disk still bound the next one.
	if err := vfs.OS().Remove(filepath.Join(dir, "topics", registryFile)); err != nil {
		t.Fatal(err)
	}
	r = openRegistry(t, dir, opts)
	if tp := mustCreate(t, r, "e"); tp.ID() != 6 {
		t.Fatalf("id without registry.json = %d, want 6", tp.ID())
	}
}

// TestIDsExhausted hands out the last u32 id: no further creation may
// succeed, not even after that topic is deleted and the registry reopened.
func TestIDsExhausted(t *testing.T) {
	dir := t.TempDir()
	fsys := vfs.OS()
	if err := fsys.MkdirAll(filepath.Join(dir, "topics")); err != nil {
		t.Fatal(err)
	}
	if err := writeJSONFile(fsys, filepath.Join(dir, "topics", registryFile), registryState{NextTopicID: 1<<32 - 1}); err != nil {
		t.Fatal(err)
	}
	be := newBackend(t)
	r := openRegistry(t, dir, testOptions(fsys, be))
	last := mustCreate(t, r, "last")
	if last.ID() != 1<<32-1 {
		t.Fatalf("id = %d", last.ID())
	}
	if _, err := r.Create("more", nil); !errors.Is(err, ErrIDsExhausted) {
		t.Fatalf("Create past the last id: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r = openRegistry(t, dir, testOptions(fsys, be))
	if _, err := r.Create("more", nil); !errors.Is(err, ErrIDsExhausted) {
		t.Fatalf("Create past the last id after reopen: %v", err)
	}
	if err := r.Delete(last.ID()); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r = openRegistry(t, dir, testOptions(fsys, be))
	if tp, err := r.Create("more", nil); !errors.Is(err, ErrIDsExhausted) {
		t.Fatalf("Create after the last id's topic was deleted and the registry reopened: id %d, %v; want ErrIDsExhausted", idOf(tp), err)
	}
}

func idOf(tp *Topic) uint32 {
	if tp == nil {
		return 0
	}
	return tp.ID()
}

func TestSetRetention(t *testing.T) {
	dir := t.TempDir()
	be := newBackend(t)
	opts := testOptions(vfs.OS(), be)
	opts.DefaultRetention = topiclog.Retention{MaxAge: time.Hour, MaxBytes: 99}
	r := openRegistry(t, dir, opts)
	tp := mustCreate(t, r, "ret")
	if got := tp.Retention(); got != opts.DefaultRetention {
		t.Fatalf("Retention without a topic limit = %+v, want the default", got)
	}
	if _, err := r.SetRetention(tp.ID(), Retention{MaxAgeSecs: 60, MaxBytes: 1000}); err != nil {
		t.Fatal(err)
	}
	if got := tp.Retention(); got != (topiclog.Retention{MaxAge: time.Minute, MaxBytes: 1000}) {
		t.Fatalf("Retention = %+v", got)
	}
	// Limits beyond what a Duration or int64 holds saturate.
	if _, err := r.SetRetention(tp.ID(), Retention{MaxAgeSecs: 1<<64 - 1, MaxBytes: 1<<64 - 1}); err != nil {
		t.Fatal(err)
	}
	if got := tp.Retention(); got.MaxAge <= 0 || got.MaxBytes != 1<<63-1 {
		t.Fatalf("saturated Retention = %+v", got)
	}
	if _, err := r.SetRetention(tp.ID(), Retention{MaxAgeSecs: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SetRetention(999, Retention{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetRetention of an unknown id: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openRegistry(t, dir, opts)
	m := r.ByName("ret").Meta()
	if m.Retention == nil || *m.Retention != (Retention{MaxAgeSecs: 5}) {
		t.Fatalf("retention after reopen = %v", m.Retention)
	}
}

func TestClosedRegistry(t *testing.T) {
	r := openRegistry(t, t.TempDir(), testOptions(vfs.OS(), newBackend(t)))
	tp := mustCreate(t, r, "t")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Create("u", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Create after Close: %v", err)
	}
	if err := r.Delete(tp.ID()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Delete after Close: %v", err)
	}
	if _, err := r.SetRetention(tp.ID(), Retention{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetRetention after Close: %v", err)
	}
	if err := tp.CommitOffset(1, 1); !errors.Is(err, ErrTopicGone) {
		t.Fatalf("CommitOffset after Close: %v", err)
	}
	if _, err := ingest(t, tp, []byte("x")); !errors.Is(err, ErrTopicGone) {
		t.Fatalf("Submit after Close: %v", err)
	}
}

// TestOpenRefusesDamage: a topic directory whose metadata is missing or
// disagrees with it stops Open rather than being served or dropped.
func TestOpenRefusesDamage(t *testing.T) {
	fsys := vfs.OS()
	be := newBackend(t)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, topics string)
	}{
		{"no topic.json", func(t *testing.T, topics string) {
			if err := fsys.Remove(filepath.Join(topics, "a", metaFile)); err != nil {
				t.Fatal(err)
			}
		}},
		{"name mismatch", func(t *testing.T, topics string) {
			if err := writeJSONFile(fsys, filepath.Join(topics, "a", metaFile), Meta{ID: 1, Name: "b"}); err != nil {
				t.Fatal(err)
			}
		}},
		{"shared id", func(t *testing.T, topics string) {
			if err := writeJSONFile(fsys, filepath.Join(topics, "b", metaFile), Meta{ID: 1, Name: "b"}); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage json", func(t *testing.T, topics string) {
			f, err := fsys.OpenRW(filepath.Join(topics, "a", metaFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("{{{{"), 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := openRegistry(t, dir, testOptions(fsys, be))
			mustCreate(t, r, "a")
			mustCreate(t, r, "b")
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, filepath.Join(dir, "topics"))
			r2, err := Open(dir, testOptions(fsys, be))
			if err == nil {
				r2.Close()
				t.Fatal("Open accepted a damaged topic directory")
			}
		})
	}
}

// TestOpenRemovesLeftovers: staging and deletion directories found at
// start are removed; the topics beside them are kept.
func TestOpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	fsys := vfs.OS()
	be := newBackend(t)
	r := openRegistry(t, dir, testOptions(fsys, be))
	mustCreate(t, r, "keep")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	topics := filepath.Join(dir, "topics")
	for _, d := range []string{".new-7", ".del-3"} {
		if err := fsys.MkdirAll(filepath.Join(topics, d)); err != nil {
			t.Fatal(err)
		}
		f, err := fsys.Create(filepath.Join(topics, d, metaFile))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	r = openRegistry(t, dir, testOptions(fsys, be))
	if got := leftovers(t, fsys, dir); len(got) != 0 {
		t.Fatalf("leftovers after Open: %v", got)
	}
	if len(r.List()) != 1 || r.ByName("keep") == nil {
		t.Fatalf("topics after Open: %v", r.List())
	}
}
