package exportfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/lance-go/lance/lnc-core/tlv"
)

func sampleRecords() []Record {
	return []Record{
		{Type: tlv.TypeRawData, Value: []byte("hello"), Offset: 0},
		{Type: tlv.TypeJSON, Value: []byte(`{"event":"click"}`), Offset: 10},
		{Type: tlv.TypeKeyValue, Key: []byte("k"), Value: []byte("v"), Offset: 30},
		{Type: tlv.TypeKeyValue, Key: []byte{}, Value: []byte{}, Offset: 40},
		{Type: tlv.TypeTimestamped, TimestampNS: 1, Value: []byte("t"), Offset: 50},
		{Type: tlv.TypeKeyTimestamped, TimestampNS: 1<<64 - 1, Key: []byte{0, 0xff}, Value: []byte("\n\x00binary"), Offset: 70},
		{Type: tlv.TypeKeyTimestamped, TimestampNS: 0, Key: []byte{}, Value: []byte{}, Offset: 100},
		{Type: tlv.TypeNull, Value: []byte{}, Offset: 120},
		{Type: 0x80, Value: []byte("user"), Offset: 125},
		{Type: 0x07, Value: []byte("unassigned"), Offset: 135},
	}
}

func encode(t testing.TB, h Header, recs []Record, next uint64) []byte {
	t.Helper()
	data, err := encodeErr(h, recs, next)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func encodeErr(h Header, recs []Record, next uint64) ([]byte, error) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			return nil, err
		}
	}
	if err := w.Close(next); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decode(data []byte) (Header, []Record, Trailer, error) {
	rd, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return Header{}, nil, Trailer{}, err
	}
	var out []Record
	for {
		r, err := rd.Next()
		if errors.Is(err, io.EOF) {
			tr, ok := rd.Trailer()
			if !ok {
				return rd.Header(), out, Trailer{}, errors.New("EOF without trailer")
			}
			return rd.Header(), out, tr, nil
		}
		if err != nil {
			return rd.Header(), out, Trailer{}, err
		}
		out = append(out, r)
	}
}

func TestRoundTrip(t *testing.T) {
	h := Header{Topic: "events", CreatedNS: 12345, StartOffset: 7}
	recs := sampleRecords()
	data := encode(t, h, recs, 999)
	gh, got, tr, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if gh != h {
		t.Fatalf("header %+v, want %+v", gh, h)
	}
	if tr != (Trailer{Count: uint64(len(recs)), NextOffset: 999}) {
		t.Fatalf("trailer %+v", tr)
	}
	for i := range recs {
		want := recs[i]
		if !HasKey(want.Type) {
			want.Key = nil
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Fatalf("record %d: %+v, want %+v", i, got[i], want)
		}
	}
}

func TestEmptyFile(t *testing.T) {
	data := encode(t, Header{Topic: "t"}, nil, 0)
	_, got, tr, err := decode(data)
	if err != nil || len(got) != 0 || tr.Count != 0 {
		t.Fatalf("got %d records, trailer %+v, err %v", len(got), tr, err)
	}
}

// TestLayout pins the bytes of a small file, as docs/cli.md describes them.
func TestLayout(t *testing.T) {
	data := encode(t, Header{Topic: "ab", CreatedNS: 1, StartOffset: 2}, []Record{
		{Type: tlv.TypeKeyValue, Key: []byte("k"), Value: []byte("v"), Offset: 3},
	}, 4)
	if want := 30 + 2 + 4 + (28 + 2 + 4) + 24; len(data) != want {
		t.Fatalf("%d bytes, want %d", len(data), want)
	}
	// The example of docs/cli.md.
	const want = "4C 4E 43 45 58 50 52 54 01 00 00 00 01 00 00 00 00 00 00 00 " +
		"02 00 00 00 00 00 00 00 02 00 61 62 F2 77 DF 48 " +
		"52 10 01 00 03 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 " +
		"01 00 00 00 01 00 00 00 6B 76 AF 18 23 24 " +
		"45 00 00 00 01 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 " +
		"19 05 5B 68"
	if got := fmt.Sprintf("% X", data); got != want {
		t.Fatalf("bytes\n%s\nwant\n%s", got, want)
	}
}

func TestTruncatedAnywhere(t *testing.T) {
	data := encode(t, Header{Topic: "events"}, sampleRecords(), 140)
	for n := 0; n < len(data); n++ {
		if _, _, _, err := decode(data[:n]); !errors.Is(err, ErrFormat) {
			t.Fatalf("cut at %d of %d: err %v, want ErrFormat", n, len(data), err)
		}
	}
}

func TestCorruptionDetected(t *testing.T) {
	data := encode(t, Header{Topic: "events"}, sampleRecords(), 140)
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x20
		if _, _, _, err := decode(bad); err == nil {
			t.Fatalf("flipping a bit of byte %d went unnoticed", i)
		}
	}
}

func TestTrailingBytesAndCount(t *testing.T) {
	data := encode(t, Header{Topic: "events"}, sampleRecords(), 140)
	if _, _, _, err := decode(append(bytes.Clone(data), 0)); !errors.Is(err, ErrFormat) {
		t.Fatalf("byte after the trailer: %v", err)
	}
	// Drop the second record: the trailer's count no longer matches.
	rd, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	second := int(rd.pos)
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	third := int(rd.pos)
	cut := append(bytes.Clone(data[:second]), data[third:]...)
	if _, _, _, err := decode(cut); !errors.Is(err, ErrFormat) {
		t.Fatalf("missing record: %v", err)
	}
}

func TestWriterRefusesInvalid(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Topic: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Record{
		{Type: 0x00, Value: []byte("x")},
		{Type: 0x0F, Value: []byte("x")},
		{Type: tlv.TypeJSON, Key: []byte("k"), Value: []byte("{}")},
		{Type: tlv.TypeRawData, TimestampNS: 5, Value: []byte("x")},
		{Type: tlv.TypeNull, Value: []byte("x")},
		{Type: tlv.TypeKeyValue, Key: make([]byte, MaxKeyLen+1)},
	} {
		if err := w.Write(&r); err == nil {
			t.Errorf("record %+v accepted", r.Type)
		}
	}
}

func TestNotAnExport(t *testing.T) {
	if _, err := NewReader(bytes.NewReader([]byte("{\"hello\": 1}\n................................"))); !errors.Is(err, ErrFormat) {
		t.Fatalf("err %v", err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add(encode(f, Header{Topic: "events"}, sampleRecords(), 140))
	f.Add(encode(f, Header{Topic: ""}, nil, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, recs, tr, err := decode(data)
		if err != nil {
			return
		}
		// Whatever decodes must encode to the same bytes.
		again := encode(t, h, recs, tr.NextOffset)
		if !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs:\n% x\n% x", data, again)
		}
	})
}
