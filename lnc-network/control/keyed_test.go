package control

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestFetchBatchesFlags(t *testing.T) {
	m := FetchBatches{TopicID: 1, StartOffset: 2, MaxBytes: 3, MaxWaitMS: 4}
	if b := m.AppendTo(nil); len(b) != FetchBatchesSize {
		t.Fatalf("no flags: %d bytes", len(b))
	}
	m.Flags = FetchWithKeys
	b := m.AppendTo(nil)
	if len(b) != FetchBatchesFlagsSize || hex.EncodeToString(b[20:]) != "01000000" {
		t.Fatalf("with flags: % x", b)
	}
	if got, err := DecodeFetchBatches(b); err != nil || got != m {
		t.Fatalf("decode %+v %v", got, err)
	}
	b[20] = 2
	var pe *PayloadError
	if _, err := DecodeFetchBatches(b); !errors.As(err, &pe) || pe.Text != InvalidFetchBatchesPayload {
		t.Fatalf("unknown flag: %v", err)
	}
}

func keyedSample() []byte {
	data := []byte("aaaabbbbbbcc")
	b := AppendBatchesResponseHeader(nil, 100, 112, 3, 7, uint32(len(data)))
	for i, e := range []BatchDirEntry{
		{Offset: 100, Length: 4, RecordCount: 1},
		{Offset: 104, Length: 6, RecordCount: 5},
		{Offset: 110, Length: 2, RecordCount: 1},
	} {
		e.SortKey[0], e.SortKey[15] = byte(i), 0xEE
		b = e.AppendTo(b)
	}
	return append(b, data...)
}

func TestKeyedBatchesResponse(t *testing.T) {
	p := keyedSample()
	if len(p) != BatchesResponseHeaderSize+3*BatchDirEntrySize+12 {
		t.Fatalf("%d bytes", len(p))
	}
	m, err := DecodeKeyedBatchesResponse(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "aaaabbbbbbcc" || len(m.Dir) != 3 || m.Dir[1].Offset != 104 || m.Dir[1].Length != 6 ||
		m.Dir[1].RecordCount != 5 || m.Dir[2].SortKey[0] != 2 || m.Dir[2].SortKey[15] != 0xEE || m.RecordCount != 7 {
		t.Fatalf("decoded %+v", m)
	}
	bad := func(name string, mut func(b []byte) []byte) {
		t.Helper()
		if _, err := DecodeKeyedBatchesResponse(mut(bytes.Clone(p)), nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	bad("short", func(b []byte) []byte { return b[:20] })
	bad("truncated", func(b []byte) []byte { return b[:len(b)-1] })
	bad("count", func(b []byte) []byte { b[16] = 2; return b })
	bad("gap", func(b []byte) []byte { b[28+32] = 105; return b })
	bad("zero-length", func(b []byte) []byte { b[28+8] = 0; return b })
	bad("overrun", func(b []byte) []byte { b[28+64+8] = 3; return b })
}

func FuzzKeyedBatchesResponse(f *testing.F) {
	f.Add(keyedSample())
	f.Add(AppendBatchesResponseHeader(nil, 5, 5, 0, 0, 0))
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := DecodeKeyedBatchesResponse(p, nil)
		if err != nil {
			return
		}
		var sum uint64
		for _, e := range m.Dir {
			sum += uint64(e.Length)
		}
		if sum != uint64(len(m.Data)) || m.NextOffset-m.StartOffset != sum {
			t.Fatalf("directory covers %d bytes of %d", sum, len(m.Data))
		}
	})
}
