package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lance-go/lance/lnc-core/tlv"
	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/topiclog"
	"github.com/lance-go/lance/lnc-io/vfs"
)

func openBackend(t *testing.T) backend.Backend {
	t.Helper()
	be, err := backend.Open(backend.Config{Kind: backend.KindPwritev2, Workers: 1, DirectBuffers: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// batchOf returns a batch of n TLV records of size bytes each.
func batchOf(i, n, size int) []byte {
	var b []byte
	for j := range n {
		v := bytes.Repeat([]byte{byte('a' + (i+j)%26)}, size)
		b, _ = tlv.Append(b, tlv.TypeRawData, v)
	}
	return b
}

// makeTopic writes a topic directory with the batches, sealing segments
// at segSize, and a topic.json. It returns the directory and the log's
// bytes.
func makeTopic(t *testing.T, be backend.Backend, segSize int64, batches [][]byte) (TopicDir, []byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "topics", "events")
	l, err := topiclog.Open(dir, topiclog.Options{FS: vfs.OS(), Backend: be, SegmentSize: segSize, Prealloc: -1})
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for i, b := range batches {
		if _, err := l.Append(topiclog.Batch{Data: b, TimestampNS: uint64(1000 + i), RecordCount: uint32(tlvCount(b))}); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	meta, _ := json.Marshal(Meta{ID: 1, Name: "events", CreatedAt: 1, Epoch: 1})
	if err := os.WriteFile(filepath.Join(dir, metaFile), meta, 0o644); err != nil {
		t.Fatal(err)
	}
	return TopicDir{Name: "events", Dir: dir}, all
}

func tlvCount(b []byte) int {
	n, _ := tlv.Count(b)
	return n
}

// readLog opens the topic with topiclog (as the server would) and returns
// all its bytes.
func readLog(t *testing.T, be backend.Backend, td TopicDir) []byte {
	t.Helper()
	l, err := topiclog.Open(td.Dir, topiclog.Options{FS: vfs.OS(), Backend: be, Prealloc: -1})
	if err != nil {
		t.Fatalf("topiclog.Open after repair: %v", err)
	}
	defer l.Close()
	b := make([]byte, l.End()-l.Start())
	if _, err := l.ReadAt(context.Background(), b, l.Start()); err != nil {
		t.Fatal(err)
	}
	return b
}

func files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[n.Name()] = b
	}
	return m
}

func seg(t *testing.T, td TopicDir, i int, ext string) string {
	t.Helper()
	var out []string
	names, err := os.ReadDir(td.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasSuffix(n.Name(), ext) {
			out = append(out, filepath.Join(td.Dir, n.Name()))
		}
	}
	slices.Sort(out)
	if i < 0 {
		i += len(out)
	}
	return out[i]
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x10
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncateBy(t *testing.T, path string, n int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()-n); err != nil {
		t.Fatal(err)
	}
}

// standard is twelve batches of five 100-byte records over 4 KiB segments.
func standard() [][]byte {
	var bs [][]byte
	for i := range 12 {
		bs = append(bs, batchOf(i, 5, 100))
	}
	return bs
}

func TestRepair(t *testing.T) {
	be := openBackend(t)
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, td TopicDir)
		before  []Class // classes of the findings before
		actions []string
		lost    int // bytes at the end of the log that repair cuts
		remains int // problems left
		refused string
		warn    bool // a warning about batches cut that checked out
	}{
		{name: "sound", damage: func(*testing.T, TopicDir) {}},
		{
			name:    "torn data tail",
			damage:  func(t *testing.T, td TopicDir) { truncateBy(t, seg(t, td, -1, dataExt), 3) },
			before:  []Class{Tail},
			actions: []string{"cut 00000000000000007380.idx", "cut 00000000000000007380.lnc"},
			lost:    525,
		},
		{
			name:    "torn index tail",
			damage:  func(t *testing.T, td TopicDir) { truncateBy(t, seg(t, td, -1, indexExt), 10) },
			before:  []Class{Tail, Tail},
			actions: []string{"cut 00000000000000007380.idx", "cut 00000000000000007380.lnc"},
			lost:    525,
		},
		{
			name:    "missing sealed index",
			damage:  func(t *testing.T, td TopicDir) { os.Remove(seg(t, td, 1, indexExt)) },
			before:  []Class{Damage},
			actions: []string{"rebuild 00000000000000003675.idx (no index file): 1 entries, 0 kept from the old index, 1 made from the data"},
		},
		{
			name:    "sealed index header",
			damage:  func(t *testing.T, td TopicDir) { flipByte(t, seg(t, td, 0, indexExt), 9) },
			before:  []Class{Damage},
			actions: []string{"rebuild 00000000000000000000.idx (damaged index header): 7 entries, 7 kept"},
		},
		{
			name: "lone sealed entry",
			damage: func(t *testing.T, td TopicDir) {
				flipByte(t, seg(t, td, 0, indexExt), index.HeaderSize+index.EntrySize*3+2)
			},
			before:  []Class{Damage},
			actions: []string{"rewrite index entry 3 of 00000000000000000000.idx"},
		},
		{
			name: "two sealed entries",
			damage: func(t *testing.T, td TopicDir) {
				flipByte(t, seg(t, td, 0, indexExt), index.HeaderSize+index.EntrySize*3+2)
				flipByte(t, seg(t, td, 0, indexExt), index.HeaderSize+index.EntrySize*4+2)
			},
			before:  []Class{Damage, Damage},
			actions: []string{"rebuild 00000000000000000000.idx (index entries damaged beyond what recovery rebuilds): 6 entries, 5 kept from the old index, 1 made from the data"},
		},
		{
			name:    "newest entry before good ones",
			damage:  func(t *testing.T, td TopicDir) { flipByte(t, seg(t, td, -1, indexExt), index.HeaderSize+2) },
			before:  []Class{Damage},
			actions: []string{"rebuild 00000000000000007380.idx (damaged index entries before batches that check out): 5 entries, 4 kept"},
		},
		{
			name:    "newest header",
			damage:  func(t *testing.T, td TopicDir) { flipByte(t, seg(t, td, -1, indexExt), 20) },
			before:  []Class{Damage},
			actions: []string{"rebuild 00000000000000007380.idx (damaged index header): 5 entries, 5 kept"},
		},
		{
			name:    "sealed data byte",
			damage:  func(t *testing.T, td TopicDir) { flipByte(t, seg(t, td, 1, dataExt), 50) },
			before:  []Class{Damage},
			remains: 1,
		},
		{
			name: "sealed data byte and header",
			damage: func(t *testing.T, td TopicDir) {
				flipByte(t, seg(t, td, 1, dataExt), 50)
				flipByte(t, seg(t, td, 1, indexExt), 9)
			},
			before:  []Class{Damage, Damage},
			actions: []string{"rebuild 00000000000000003675.idx (damaged index header): 1 entries, 1 kept"},
			remains: 1, // the CRC of the damaged batch was kept, not recomputed
		},
		{
			// Batch 1 of the newest segment was acknowledged (later
			// commits followed): recovery keeps it, and everything after
			// it, rather than cut acknowledged data; it stays damage.
			name:    "newest data byte",
			damage:  func(t *testing.T, td TopicDir) { flipByte(t, seg(t, td, -1, dataExt), 600) },
			before:  []Class{Damage},
			remains: 1,
		},
		{
			// The last batch's commit may have been torn: cut it.
			name: "newest last batch byte",
			damage: func(t *testing.T, td TopicDir) {
				p := seg(t, td, -1, dataExt)
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				flipByte(t, p, fi.Size()-100)
			},
			before:  []Class{Tail},
			actions: []string{"cut 00000000000000007380.idx", "cut 00000000000000007380.lnc"},
			lost:    525,
		},
		{
			name:    "missing middle data",
			damage:  func(t *testing.T, td TopicDir) { os.Remove(seg(t, td, 1, dataExt)) },
			before:  []Class{Damage, Damage},
			refused: "the data file of segment 00000000000000003675.lnc is missing",
		},
		{
			name:    "cut sealed data",
			damage:  func(t *testing.T, td TopicDir) { truncateBy(t, seg(t, td, 0, dataExt), 10) },
			before:  []Class{Damage, Damage},
			refused: "ends at offset 3665 but 00000000000000003675.lnc starts at 3675",
		},
		{
			name: "leftover index at the end",
			damage: func(t *testing.T, td TopicDir) {
				hdr := index.AppendHeader(nil, index.Header{BaseOffset: 1 << 20})
				os.WriteFile(filepath.Join(td.Dir, segmentName(1<<20, indexExt)), hdr, 0o644)
			},
			before:  []Class{Note},
			actions: []string{"remove " + segmentName(1<<20, indexExt)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// 4 KiB segments: 7 batches of 525 bytes at 0, one of 3705
			// at 3675, and 5 of 525 at 7380 (the newest).
			var batches [][]byte
			for i := range 7 {
				batches = append(batches, batchOf(i, 5, 100))
			}
			batches = append(batches, batchOf(7, 1, 3700))
			for i := range 5 {
				batches = append(batches, batchOf(8+i, 5, 100))
			}
			td, all := makeTopic(t, be, 4096, batches)
			tc.damage(t, td)

			// A dry run on an overlay first: nothing changes on disk.
			disk := files(t, td.Dir)
			dry, err := RepairTopic(NewOverlay(vfs.OS()), be, td)
			if err != nil {
				t.Fatal(err)
			}
			if got := files(t, td.Dir); !filesEqual(got, disk) {
				t.Fatal("the dry run changed files")
			}

			res, err := RepairTopic(vfs.OS(), be, td)
			if err != nil {
				t.Fatal(err)
			}
			var classes []Class
			for _, f := range res.Before.Findings {
				classes = append(classes, f.Class)
			}
			if !slices.Equal(classes, tc.before) {
				t.Errorf("findings before %v, want %v: %v", classes, tc.before, res.Before.Findings)
			}
			if !slices.Equal(dry.Actions, res.Actions) || dry.Refused != res.Refused || len(dry.After.Findings) != len(res.After.Findings) {
				t.Errorf("the dry run predicted %q (%q, %v), the repair did %q (%q, %v)", dry.Actions, dry.Refused, dry.After.Findings, res.Actions, res.Refused, res.After.Findings)
			}
			if res.Refused != "" || tc.refused != "" {
				if !strings.Contains(res.Refused, tc.refused) || tc.refused == "" {
					t.Fatalf("refused %q, want %q", res.Refused, tc.refused)
				}
				if !filesEqual(files(t, td.Dir), disk) {
					t.Fatal("a refused repair changed files")
				}
				return
			}
			if len(res.Actions) != len(tc.actions) {
				t.Errorf("actions %q, want %q", res.Actions, tc.actions)
			} else {
				for i, a := range tc.actions {
					if !strings.HasPrefix(res.Actions[i], a) {
						t.Errorf("action %d: %q, want %q...", i, res.Actions[i], a)
					}
				}
			}
			if (len(res.Warnings) > 0) != tc.warn {
				t.Errorf("warnings %q", res.Warnings)
			}
			if n := len(res.After.Problems()); n != tc.remains {
				t.Errorf("%d problems remain, want %d: %v", n, tc.remains, res.After.Findings)
			}
			if tc.remains > 0 {
				return
			}
			got := readLog(t, be, td)
			want := all[:len(all)-tc.lost]
			if !bytes.Equal(got, want) {
				t.Errorf("the log holds %d bytes after repair, want %d", len(got), len(want))
			}
			// Repairing again finds nothing.
			again, err := RepairTopic(vfs.OS(), be, td)
			if err != nil || len(again.Before.Findings) != 0 || len(again.Actions) != 0 {
				t.Errorf("second repair: %v %v %v", err, again.Before.Findings, again.Actions)
			}
		})
	}
}

func filesEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// TestRebuildSplits checks how a rebuilt index cuts data without entries.
func TestRebuildSplits(t *testing.T) {
	be := openBackend(t)
	// One sealed segment of 3 MiB of 64 KiB records, then a small newest one.
	batches := [][]byte{batchOf(0, 48, 64<<10), batchOf(1, 1, 10)}
	td, all := makeTopic(t, be, 3<<20, batches)
	os.Remove(seg(t, td, 0, indexExt))
	res, err := RepairTopic(vfs.OS(), be, td)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.After.Problems()) != 0 || !bytes.Equal(readLog(t, be, td), all) {
		t.Fatalf("after %v", res.After.Findings)
	}
	d, err := readIndex(vfs.OS(), seg(t, td, 0, indexExt))
	if err != nil {
		t.Fatal(err)
	}
	// 15 records of 64 KiB (and their headers) fit in 1 MiB: 48 records
	// make 4 batches. Nothing tells their time but the file's.
	if len(d.entries) != 4 {
		t.Fatalf("%d entries", len(d.entries))
	}
	total := 0
	for _, e := range d.entries {
		if e.Length > chunkTarget || e.TimestampNS == 0 || e.TimestampNS != d.entries[0].TimestampNS {
			t.Errorf("entry %+v", e)
		}
		total += int(e.RecordCount)
	}
	if total != 48 {
		t.Errorf("%d records", total)
	}

	// Data that is not TLV: plain 1 MiB pieces.
	raw := bytes.Repeat([]byte{0}, 2<<20+5)
	td2, all2 := makeTopic(t, be, 2<<20, [][]byte{raw, []byte("x")})
	os.Remove(seg(t, td2, 0, indexExt))
	if _, err := RepairTopic(vfs.OS(), be, td2); err != nil {
		t.Fatal(err)
	}
	if d, err = readIndex(vfs.OS(), seg(t, td2, 0, indexExt)); err != nil || len(d.entries) != 3 || d.entries[2].Length != 5 {
		t.Fatalf("entries %+v, %v", d.entries, err)
	}
	if !bytes.Equal(readLog(t, be, td2), all2) {
		t.Error("non-TLV data changed")
	}

	// The newest segment without an index: whole records are kept, a torn
	// last one is cut.
	td3, all3 := makeTopic(t, be, 1<<20, [][]byte{batchOf(0, 3, 10), batchOf(1, 2, 10)})
	os.Remove(seg(t, td3, 0, indexExt))
	truncateBy(t, seg(t, td3, 0, dataExt), 4)
	res, err = RepairTopic(vfs.OS(), be, td3)
	if err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, be, td3); !bytes.Equal(got, all3[:4*15]) {
		t.Errorf("newest without index: %d bytes kept, want %d (actions %q)", len(got), 4*15, res.Actions)
	}
}

func TestScanClasses(t *testing.T) {
	be := openBackend(t)
	td, _ := makeTopic(t, be, 4096, standard())
	os.Remove(filepath.Join(td.Dir, metaFile))
	hdr := index.AppendHeader(nil, index.Header{BaseOffset: 0})
	os.WriteFile(filepath.Join(td.Dir, segmentName(0, indexExt)), hdr, 0o644) // overwrite: an index of no entries
	tp, err := ScanTopic(vfs.OS(), td, ScanOptions{CheckData: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{metaFile + " is missing", "bytes after the last indexed batch"}
	if len(tp.Findings) != len(want) {
		t.Fatalf("findings %v", tp.Findings)
	}
	for i, w := range want {
		if !strings.Contains(tp.Findings[i].Text, w) || tp.Findings[i].Class != Damage {
			t.Errorf("finding %d: %v, want damage %q", i, tp.Findings[i], w)
		}
	}
}

func TestFindLayout(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "topics", "a"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "topics", "b"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "topics", ".new-7"), 0o755))
	must(os.WriteFile(filepath.Join(root, "topics", "registry.json"), []byte(`{}`), 0o644))
	l, err := Find(vfs.OS(), root)
	must(err)
	if l.DataDir != root || len(l.Topics) != 2 || l.Topics[0].Name != "a" || len(l.Unfinished) != 1 {
		t.Fatalf("%+v", l)
	}
	if _, err := l.Select([]string{"c"}); err == nil {
		t.Error("selected a missing topic")
	}
	must(os.WriteFile(filepath.Join(root, "topics", "a", metaFile), []byte(`{}`), 0o644))
	l, err = Find(vfs.OS(), filepath.Join(root, "topics", "a"))
	must(err)
	if l.DataDir != root || len(l.Topics) != 1 || l.Topics[0].Name != "a" {
		t.Fatalf("%+v", l)
	}
	if _, err := Find(vfs.OS(), filepath.Join(root, "topics", "b")); err == nil {
		t.Error("an empty directory passed for a topic")
	}
	if _, err := Find(vfs.OS(), filepath.Join(root, "none")); err == nil {
		t.Error("a missing directory passed")
	}
}

func TestOverlay(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	if err := os.WriteFile(base, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := NewOverlay(vfs.OS())
	f, err := o.OpenRW(base)
	if err != nil {
		t.Fatal(err)
	}
	read := func(f vfs.File) string {
		t.Helper()
		n, _ := f.Size()
		b := make([]byte, n)
		if _, err := f.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if _, err := f.WriteAt([]byte("ab"), 3); err != nil {
		t.Fatal(err)
	}
	if got := read(f); got != "012ab56789" {
		t.Errorf("after write %q", got)
	}
	if err := f.Truncate(4); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("Z"), 6); err != nil {
		t.Fatal(err)
	}
	if got := read(f); got != "012a\x00\x00Z" {
		t.Errorf("after truncate and write past the end %q", got)
	}
	f.Close()
	if b, _ := os.ReadFile(base); string(b) != "0123456789" {
		t.Errorf("the base changed: %q", b)
	}
	c, err := o.Create(filepath.Join(dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	c.WriteAt([]byte("fresh"), 0)
	c.Close()
	if _, err := o.Create(filepath.Join(dir, "new")); err == nil {
		t.Error("created a file twice")
	}
	if err := o.Rename(filepath.Join(dir, "new"), base); err != nil {
		t.Fatal(err)
	}
	names, err := o.ReadDir(dir)
	if err != nil || !slices.Equal(names, []string{"base"}) {
		t.Errorf("names %v %v", names, err)
	}
	g, err := o.Open(base)
	if err != nil || read(g) != "fresh" {
		t.Fatalf("renamed file: %v", err)
	}
	g.Close()
	if err := o.Remove(base); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Stat(base); !isNotExist(err) {
		t.Errorf("stat of a removed file: %v", err)
	}
	if _, err := o.Open(base); !isNotExist(err) {
		t.Errorf("open of a removed file: %v", err)
	}
	if err := o.MkdirAll(filepath.Join(dir, "sub", "deeper")); err != nil {
		t.Fatal(err)
	}
	if names, _ := o.ReadDir(dir); !slices.Equal(names, []string{"sub"}) {
		t.Errorf("names after mkdir %v", names)
	}
	if err := o.RemoveAll(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if names, _ := o.ReadDir(dir); len(names) != 0 {
		t.Errorf("names after remove all %v", names)
	}
	if b, err := os.ReadFile(base); err != nil || string(b) != "0123456789" {
		t.Errorf("the base changed: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub")); !os.IsNotExist(err) {
		t.Errorf("a directory reached the disk: %v", err)
	}
}
