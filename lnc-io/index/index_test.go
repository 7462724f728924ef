package index

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-core/sortkey"
)

func sampleEntry(t testing.TB) Entry {
	key, err := sortkey.New(1706918400000000000, 3, 1, 42)
	if err != nil {
		t.Fatal(err)
	}
	return Entry{
		Offset:      4096,
		Length:      20,
		CRC:         0xF2CCADAC,
		TimestampNS: 1706918400000000000,
		SortKey:     key,
		RecordCount: 2,
		Dialect:     checksum.IEEE,
	}
}

func TestEntryLayout(t *testing.T) {
	e := sampleEntry(t)
	b := AppendEntry([]byte("x"), &e)[1:]
	want := "0010000000000000" + // offset 4096
		"14000000" + // length 20
		"acadccf2" + // crc
		"000094bc3d31b017" + // timestamp
		"17b0313dbc940000" + "0003" + "01" + "000000002a" + // sort key, big-endian
		"02000000" + // record count
		"0100" + // flags: IEEE
		"0000000000000000000000000000" // reserved
	got := hex.EncodeToString(b[:60])
	if got != want {
		t.Fatalf("entry bytes\n got %s\nwant %s", got, want)
	}
	if le.Uint32(b[60:]) != checksum.Castagnoli.Sum(b[:60]) {
		t.Fatal("entry CRC is not CRC-32C of bytes 0..59")
	}
	d, err := DecodeEntry(b)
	if err != nil || d != e {
		t.Fatalf("decode: %+v, %v", d, err)
	}
	if d.End() != 4116 {
		t.Fatalf("End = %d", d.End())
	}
}

func TestEntryErrors(t *testing.T) {
	e := sampleEntry(t)
	good := AppendEntry(nil, &e)
	f := func(name string, b []byte, want error) {
		t.Helper()
		if _, err := DecodeEntry(b); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	f("short", good[:63], ErrShort)
	for i := range EntrySize {
		b := bytes.Clone(good)
		b[i] ^= 0x10
		f("flip", b, ErrEntryCRC)
	}
	// Bad fields under a good CRC.
	recrc := func(mut func(b []byte)) []byte {
		b := bytes.Clone(good)
		mut(b)
		le.PutUint32(b[60:], checksum.Castagnoli.Sum(b[:60]))
		return b
	}
	f("zero-length", recrc(func(b []byte) { le.PutUint32(b[8:], 0) }), ErrEntry)
	f("overflow", recrc(func(b []byte) { le.PutUint64(b[0:], math.MaxUint64-5) }), ErrEntry)
	f("flags", recrc(func(b []byte) { b[44] = 8 }), ErrEntry)
	f("reserved", recrc(func(b []byte) { b[50] = 1 }), ErrEntry)
	f("producer-id-0", recrc(func(b []byte) { b[44] |= byte(FlagProducer); b[54] = 1 }), ErrEntry)
	f("sequence-0", recrc(func(b []byte) { b[44] |= byte(FlagProducer); b[46] = 1 }), ErrEntry)
}

func TestEntryCommitEnd(t *testing.T) {
	e := sampleEntry(t)
	e.CommitEnd = true
	b := AppendEntry(nil, &e)
	if got := le.Uint16(b[44:]); got != FlagCRCIEEE|FlagCommitEnd {
		t.Fatalf("flags %#x", got)
	}
	if d, err := DecodeEntry(b); err != nil || d != e {
		t.Fatalf("decode: %+v, %v", d, err)
	}
}

func TestEntryProducer(t *testing.T) {
	e := sampleEntry(t)
	e.ProducerID, e.Sequence = 0x1122334455667788, MaxSequence
	b := AppendEntry(nil, &e)
	if got := le.Uint16(b[44:]); got != FlagCRCIEEE|FlagProducer {
		t.Fatalf("flags %#x", got)
	}
	if got := hex.EncodeToString(b[46:60]); got != "8877665544332211"+"ffffffffffff" {
		t.Fatalf("producer bytes %s", got)
	}
	d, err := DecodeEntry(b)
	if err != nil || d != e {
		t.Fatalf("decode: %+v, %v", d, err)
	}
	for _, bad := range []Entry{
		{Offset: 1, Length: 1, Dialect: checksum.IEEE, ProducerID: 1},
		{Offset: 1, Length: 1, Dialect: checksum.IEEE, ProducerID: 1, Sequence: MaxSequence + 1},
		{Offset: 1, Length: 1, Dialect: checksum.IEEE, Sequence: 5},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrEntry) {
			t.Errorf("%+v: Validate = %v", bad, err)
		}
	}
}

func TestHeader(t *testing.T) {
	h := Header{BaseOffset: 1 << 40, CreatedNS: 123}
	b := AppendHeader(nil, h)
	if len(b) != HeaderSize || string(b[:4]) != "LNCX" {
		t.Fatalf("header % x", b)
	}
	if got, err := DecodeHeader(b); err != nil || got != h {
		t.Fatalf("decode %+v %v", got, err)
	}
	f := func(name string, b []byte, want error) {
		t.Helper()
		if _, err := DecodeHeader(b); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	f("short", b[:31], ErrShort)
	bad := bytes.Clone(b)
	bad[0] = 'X'
	f("magic", bad, ErrMagic)
	bad = bytes.Clone(b)
	bad[4] = 2
	f("version", bad, ErrVersion)
	bad = bytes.Clone(b)
	bad[9] ^= 1
	f("crc", bad, ErrHeaderCRC)
}

func TestAppendEntryRejectsInvalid(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("AppendEntry accepted a zero-length entry")
		}
	}()
	e := sampleEntry(t)
	e.Length = 0
	AppendEntry(nil, &e)
}

func FuzzDecodeEntry(f *testing.F) {
	e := sampleEntry(f)
	f.Add(AppendEntry(nil, &e))
	e.Dialect = checksum.Castagnoli
	f.Add(AppendEntry(nil, &e))
	f.Add(make([]byte, EntrySize))
	e.ProducerID, e.Sequence = 7, 9
	f.Add(AppendEntry(nil, &e))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		again := AppendEntry(nil, &e)
		if !bytes.Equal(again, b[:EntrySize]) {
			t.Fatalf("re-encoding differs:\n% x\n% x", again, b[:EntrySize])
		}
		if e2, err := DecodeEntry(again); err != nil || e2 != e {
			t.Fatalf("second decode: %+v %v", e2, err)
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add(AppendHeader(nil, Header{BaseOffset: 7, CreatedNS: 9}))
	f.Add([]byte("LNCX"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		if again := AppendHeader(nil, h); !bytes.Equal(again, b[:HeaderSize]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func BenchmarkAppendEntry(b *testing.B) {
	e := sampleEntry(b)
	buf := make([]byte, 0, EntrySize)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEntry(buf[:0], &e)
	}
}

func BenchmarkDecodeEntry(b *testing.B) {
	e := sampleEntry(b)
	buf := AppendEntry(nil, &e)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEntry(buf); err != nil {
			b.Fatal(err)
		}
	}
}
