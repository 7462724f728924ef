package topics

import (
	"encoding/binary"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-io/vfs/faultfs"
)

// record encodes one offsets.log record.
func record(consumer, offset uint64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, consumer)
	b = binary.LittleEndian.AppendUint64(b, offset)
	return binary.LittleEndian.AppendUint32(b, checksum.Castagnoli.Sum(b))
}

// validPrefix decodes records from the start of b up to the first bad or
// short one: what a load must keep.
func validPrefix(b []byte) (map[uint64]uint64, int) {
	m := map[uint64]uint64{}
	k := 0
	for ; len(b) >= (k+1)*offsetRecordSize; k++ {
		r := b[k*offsetRecordSize : (k+1)*offsetRecordSize]
		if checksum.Castagnoli.Sum(r[:16]) != binary.LittleEndian.Uint32(r[16:]) {
			break
		}
		m[binary.LittleEndian.Uint64(r)] = binary.LittleEndian.Uint64(r[8:])
	}
	return m, k
}

func mustOpenOffsets(t testing.TB, fsys vfs.FS, dir string) *offsetStore {
	t.Helper()
	s, err := openOffsets(fsys, dir)
	if err != nil {
		t.Fatalf("openOffsets: %v", err)
	}
	return s
}

func fileSize(t testing.TB, fsys vfs.FS, name string) int64 {
	t.Helper()
	fi, err := fsys.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// checkLoaded compares a store with the records it was loaded from.
func checkLoaded(t testing.TB, fsys vfs.FS, s *offsetStore, content []byte) {
	t.Helper()
	want, k := validPrefix(content)
	if !maps.Equal(s.m, want) {
		t.Fatalf("loaded %v, want %v (the first %d records)", s.m, want, k)
	}
	if s.records != k || s.size != int64(k*offsetRecordSize) {
		t.Fatalf("loaded %d records, size %d; want %d records", s.records, s.size, k)
	}
	if got := fileSize(t, fsys, s.path); got != s.size {
		t.Fatalf("file is %d bytes after load, want it cut to %d", got, s.size)
	}
}

func TestOffsetsCommitAndReload(t *testing.T) {
	dir := t.TempDir()
	fsys := vfs.OS()
	s := mustOpenOffsets(t, fsys, dir)
	if _, ok := s.get(1); ok {
		t.Fatal("a new store knows a consumer")
	}
	want := map[uint64]uint64{}
	for i := range 50 {
		c, o := uint64(i%7), uint64(i*1000)
		if i == 49 {
			c, o = 1<<64-1, 1<<64-1
		}
		if err := s.commit(c, o); err != nil {
			t.Fatal(err)
		}
		want[c] = o
		if got, ok := s.get(c); !ok || got != o {
			t.Fatalf("get(%d) = %d, %v right after commit", c, got, ok)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if err := s.commit(1, 1); err != ErrTopicGone {
		t.Fatalf("commit after close: %v", err)
	}
	s = mustOpenOffsets(t, fsys, dir)
	defer s.close()
	if !maps.Equal(s.m, want) || s.records != 50 {
		t.Fatalf("reloaded %v (%d records), want %v", s.m, s.records, want)
	}
}

// TestOffsetsLoadCutsDamage: a torn last record, and garbage in the
// middle, are cut off with everything after them; commits then continue
// from the cut.
func TestOffsetsLoadCutsDamage(t *testing.T) {
	fsys := vfs.OS()
	var good []byte
	for i := range 6 {
		good = append(good, record(uint64(i%3), uint64(100+i))...)
	}
	garbage := slices.Clone(good)
	garbage[3*offsetRecordSize+9] ^= 0x40 // the fourth record's offset
	for _, tc := range []struct {
		name    string
		content []byte
		keep    int
	}{
		{"torn 1 byte", append(slices.Clone(good), 0x01), 6},
		{"torn 19 bytes", append(slices.Clone(good), record(9, 9)[:19]...), 6},
		{"zero tail", append(slices.Clone(good), make([]byte, 40)...), 6},
		{"bad crc last", append(slices.Clone(good[:5*offsetRecordSize]), append(record(4, 4)[:16], 0, 0, 0, 0)...), 5},
		{"garbage in the middle", garbage, 3},
		{"garbage first", append([]byte("not a record at all!"), good...), 0},
		{"only a fragment", []byte{1, 2, 3}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, offsetsFile), tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			s := mustOpenOffsets(t, fsys, dir)
			checkLoaded(t, fsys, s, tc.content)
			if s.records != tc.keep {
				t.Fatalf("kept %d records, want %d", s.records, tc.keep)
			}
			want := maps.Clone(s.m)
			if err := s.commit(42, 4242); err != nil {
				t.Fatal(err)
			}
			want[42] = 4242
			if err := s.close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpenOffsets(t, fsys, dir)
			defer s.close()
			if !maps.Equal(s.m, want) || s.records != tc.keep+1 {
				t.Fatalf("after a commit past the cut: %v (%d records), want %v", s.m, s.records, want)
			}
		})
	}
}

// TestOffsetsTornTails tears the file's tail in every way faultfs knows;
// the records before the damage must survive.
func TestOffsetsTornTails(t *testing.T) {
	ffs := faultfs.New(vfs.OS(), 7)
	for i := range 40 {
		dir := t.TempDir()
		s := mustOpenOffsets(t, ffs, dir)
		n := 1 + i%6
		for j := range n {
			if err := s.commit(uint64(j), uint64(i*10+j)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
		size := int64(n * offsetRecordSize)
		mode, torn, err := ffs.TearTailRandom(s.path, offsetRecordSize+5)
		if err != nil {
			t.Fatal(err)
		}
		content, err := os.ReadFile(s.path)
		if err != nil {
			t.Fatal(err)
		}
		s = mustOpenOffsets(t, ffs, dir)
		checkLoaded(t, ffs, s, content)
		if intact := int(max(size-int64(torn), 0)) / offsetRecordSize; s.records < intact {
			t.Fatalf("tear %v of %d bytes: kept %d records, %d were intact", mode, torn, s.records, intact)
		}
		for c, o := range s.m {
			if o != uint64(i*10)+c {
				t.Fatalf("tear %v: consumer %d has offset %d", mode, c, o)
			}
		}
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOffsetsFailedSyncThenCommit: an fsync failure loses the record it
// covered; the commits acknowledged after it must not be lost with it.
func TestOffsetsFailedSyncThenCommit(t *testing.T) {
	ffs := faultfs.New(vfs.OS(), 3)
	dir := t.TempDir()
	s := mustOpenOffsets(t, ffs, dir)
	if err := s.commit(1, 10); err != nil {
		t.Fatal(err)
	}
	ffs.FailSyncs(faultfs.Once())
	if err := s.commit(1, 20); err == nil {
		t.Fatal("commit over a failing fsync succeeded")
	}
	if got, _ := s.get(1); got != 10 {
		t.Fatalf("a failed commit changed the offset to %d", got)
	}
	if err := s.commit(2, 30); err != nil {
		t.Fatal(err)
	}
	if err := s.commit(3, 40); err != nil {
		t.Fatal(err)
	}
	s.close()
	if err := ffs.CutPower(); err != nil {
		t.Fatal(err)
	}
	s = mustOpenOffsets(t, ffs, dir)
	defer s.close()
	if got, ok := s.get(1); !ok || (got != 10 && got != 20) {
		t.Fatalf("consumer 1 after the cut: %d, %v; want 10 or 20", got, ok)
	}
	for c, want := range map[uint64]uint64{2: 30, 3: 40} {
		if got, ok := s.get(c); !ok || got != want {
			t.Fatalf("consumer %d after the cut: %d, %v; want %d (acknowledged after a failed commit)\n%v", c, got, ok, want, ffs.LastCut())
		}
	}
}

// TestOffsetsCompaction commits past the compaction threshold, with the
// first two compactions failing (at the directory sync after the rename,
// then at the new file's sync), and cuts the power at the end: the
// acknowledged offsets survive and the file shrinks to one record per
// consumer. Most of the superseded records are written as a file before
// the store opens (a load counts them as it counts commits), the last
// hundred are commits.
func TestOffsetsCompaction(t *testing.T) {
	ffs := faultfs.New(vfs.OS(), 11)
	dir := t.TempDir()
	const consumers = 3
	acked := map[uint64]uint64{}
	r := rand.New(rand.NewPCG(1, 2))
	var pre []byte
	n := 0
	for ; n < compactAfter-100; n++ {
		c, o := uint64(n%consumers), r.Uint64()
		pre = append(pre, record(c, o)...)
		acked[c] = o
	}
	if err := os.WriteFile(filepath.Join(dir, offsetsFile), pre, 0o644); err != nil {
		t.Fatal(err)
	}
	s := mustOpenOffsets(t, ffs, dir)
	if !maps.Equal(s.m, acked) || s.records != n {
		t.Fatalf("loaded %d records, want %d", s.records, n)
	}
	maybe := map[uint64][]uint64{} // values of failed commits since the last ack
	commit := func(c, o uint64) error {
		err := s.commit(c, o)
		if err == nil {
			acked[c] = o
			maybe[c] = nil
		} else {
			maybe[c] = append(maybe[c], o)
		}
		return err
	}
	for commits := 0; s.records-len(s.m) < compactAfter; n++ {
		if commits++; commits > 200 {
			t.Fatal("no compaction in sight")
		}
		if err := commit(uint64(n%consumers), r.Uint64()); err != nil {
			t.Fatal(err)
		}
	}
	// The next commit compacts: fail its directory sync.
	ffs.FailSyncDirs(faultfs.Once())
	if err := commit(uint64(n%consumers), r.Uint64()); err == nil {
		t.Fatal("a compaction whose directory sync failed reported success")
	}
	n++
	// The next retries; fail the new file's sync (the record's is first).
	ffs.FailSyncs(faultfs.Nth(2))
	if err := commit(uint64(n%consumers), r.Uint64()); err == nil {
		t.Fatal("a compaction whose file sync failed reported success")
	}
	n++
	if err := commit(uint64(n%consumers), r.Uint64()); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, ffs, s.path); got != consumers*offsetRecordSize {
		t.Fatalf("offsets.log is %d bytes after compaction, want %d", got, consumers*offsetRecordSize)
	}
	for i := range 10 {
		if err := commit(uint64(i%consumers), r.Uint64()); err != nil {
			t.Fatal(err)
		}
	}
	s.close()
	if err := ffs.CutPower(); err != nil {
		t.Fatal(err)
	}
	s = mustOpenOffsets(t, ffs, dir)
	defer s.close()
	if len(s.m) != consumers || s.records != consumers+10 {
		t.Fatalf("after the cut: %d consumers, %d records; want %d, %d", len(s.m), s.records, consumers, consumers+10)
	}
	for c, want := range acked {
		got, ok := s.get(c)
		if !ok || (got != want && !slices.Contains(maybe[c], got)) {
			t.Fatalf("consumer %d: %d, %v after the cut; acknowledged %d\n%v", c, got, ok, want, ffs.LastCut())
		}
	}
	names, err := ffs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{offsetsFile}) {
		t.Fatalf("directory after compactions: %v", names)
	}
}

// FuzzOffsetsLoad feeds arbitrary bytes as offsets.log: the load must not
// fail or panic, must keep exactly the valid prefix and cut the file to
// it, and the store must take commits after it.
func FuzzOffsetsLoad(f *testing.F) {
	f.Add([]byte{})
	f.Add(record(1, 2))
	f.Add(append(record(1, 2), record(1, 3)[:7]...))
	f.Add(append(append(record(5, 6), make([]byte, 20)...), record(7, 8)...))
	f.Add(append(record(1<<64-1, 0), []byte("garbage garbage garb")...))
	f.Fuzz(func(t *testing.T, content []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, offsetsFile), content, 0o644); err != nil {
			t.Fatal(err)
		}
		fsys := vfs.OS()
		s := mustOpenOffsets(t, fsys, dir)
		checkLoaded(t, fsys, s, content)
		want := maps.Clone(s.m)
		k := s.records
		if err := s.commit(3, 33); err != nil {
			t.Fatal(err)
		}
		want[3] = 33
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
		s = mustOpenOffsets(t, fsys, dir)
		defer s.close()
		if !maps.Equal(s.m, want) || s.records != k+1 {
			t.Fatalf("after a commit: %v (%d records), want %v (%d)", s.m, s.records, want, k+1)
		}
	})
}
