package topiclog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// validSegment returns the files of a one-segment log holding the given
// batches.
func validSegment(batches ...string) (data, idx []byte) {
	idx = index.AppendHeader(nil, index.Header{})
	for _, b := range batches {
		e := index.Entry{Offset: uint64(len(data)), Length: uint32(len(b)), CRC: checksum.Castagnoli.Sum([]byte(b)), Dialect: checksum.Castagnoli}
		idx = index.AppendEntry(idx, &e)
		data = append(data, b...)
	}
	return data, idx
}

// FuzzRecover writes arbitrary bytes as the index and data files of a
// log's newest segment, behind one valid sealed segment, and opens it: no
// panic; Open either fails with ErrCorrupt or yields a log whose every
// byte reads back, whose batches tile it and check out against their CRCs,
// and which keeps the sealed segment whole.
func FuzzRecover(f *testing.F) {
	d, i := validSegment("hello", "world", "!")
	f.Add(d, i)
	f.Add(d[:7], i)
	f.Add(d, i[:len(i)-10])
	f.Add([]byte{}, []byte{})
	f.Add(d, append(i, make([]byte, 64)...))
	be, err := backend.Open(backend.Config{Kind: backend.KindPwritev2, Workers: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { be.Close() })
	sealedData, sealedIdx := validSegment("sealed-one", "sealed-two")
	f.Fuzz(func(t *testing.T, data, idx []byte) {
		dir := t.TempDir()
		write := func(base uint64, d, x []byte) {
			dp, ip := segmentPaths(dir, base)
			if err := os.WriteFile(dp, d, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(ip, x, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(0, sealedData, sealedIdx)
		base := uint64(len(sealedData))
		// Give the fuzzed index the right base offset when it has a
		// header, so that more than the header check is reached.
		if h, err := index.DecodeHeader(idx); err == nil && h.BaseOffset == 0 {
			idx = append(index.AppendHeader(nil, index.Header{BaseOffset: base}), idx[index.HeaderSize:]...)
			idx = rebase(idx, base)
		}
		write(base, data, idx)
		l, err := Open(dir, Options{FS: vfs.OS(), Backend: be, Prealloc: -1})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		defer l.Close()
		if l.Start() != 0 || l.End() < base {
			t.Fatalf("start %d end %d: the sealed segment is not whole", l.Start(), l.End())
		}
		content := make([]byte, l.End())
		if n, err := l.ReadAt(ctx, content, 0); n != len(content) || (err != nil && !errors.Is(err, io.EOF)) {
			t.Fatalf("ReadAt: %d of %d, %v", n, len(content), err)
		}
		if !bytes.Equal(content[:base], sealedData) {
			t.Fatal("sealed segment changed")
		}
		var off uint64
		for off < l.End() {
			es, err := l.Batches(off, 1<<20, nil)
			if err != nil || len(es) == 0 {
				t.Fatalf("Batches(%d): %v", off, err)
			}
			for _, e := range es {
				if e.Offset != off || e.Dialect.Sum(content[e.Offset:e.End()]) != e.CRC {
					t.Fatalf("batch at %d does not check out", e.Offset)
				}
				off = e.End()
			}
		}
		// Appending after recovery continues at the end.
		if o, err := l.Append(Batch{Data: []byte("x")}); err != nil || o != l.End() {
			t.Fatalf("Append after recovery: %d, %v", o, err)
		}
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// rebase shifts the offsets of the valid entries in an index by base and
// refreshes their CRCs, leaving invalid ones as they are.
func rebase(idx []byte, base uint64) []byte {
	out := bytes.Clone(idx)
	for at := index.HeaderSize; at+index.EntrySize <= len(out); at += index.EntrySize {
		e, err := index.DecodeEntry(out[at:])
		if err != nil || e.Offset+base < e.Offset {
			continue
		}
		e.Offset += base
		if e.Validate() != nil {
			continue
		}
		copy(out[at:], index.AppendEntry(nil, &e))
	}
	return out
}
