package tlv

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// unhex parses "01 05 00 ..." into bytes.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ok returns a function that fails the test on a non-nil error and
// otherwise passes the bytes through: ok(t)(Append(...)).
func ok(t testing.TB) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// collect iterates buf and returns its records and final error.
func collect(buf []byte, maxLen uint32) ([]Record, *Iterator) {
	it := NewIteratorMax(buf, maxLen)
	var recs []Record
	for it.Next() {
		recs = append(recs, it.Record())
	}
	return recs, &it
}

func TestSpecExamples(t *testing.T) {
	hw := ok(t)(Append(nil, TypeRawData, []byte("hello")))
	hw = ok(t)(Append(hw, TypeRawData, []byte("world")))
	if want := unhex(t, "01 05 00 00 00 68 65 6C 6C 6F 01 05 00 00 00 77 6F 72 6C 64"); !bytes.Equal(hw, want) {
		t.Errorf("hello/world = % X\nwant          % X", hw, want)
	}
	kv := ok(t)(AppendKeyValue(nil, []byte("k"), []byte("v")))
	if want := unhex(t, "10 04 00 00 00 01 00 6B 76"); !bytes.Equal(kv, want) {
		t.Errorf("KeyValue k=v = % X, want % X", kv, want)
	}
	if got, want := AppendNull(nil), unhex(t, "FF 00 00 00 00"); !bytes.Equal(got, want) {
		t.Errorf("Null = % X, want % X", got, want)
	}
	if got := ok(t)(Append(nil, TypeNull, nil)); !bytes.Equal(got, AppendNull(nil)) {
		t.Errorf("Append(Null, nil) = % X", got)
	}

	recs, it := collect(hw, 0)
	if it.Err() != nil || len(recs) != 2 {
		t.Fatalf("iterating hello/world: %d records, err %v", len(recs), it.Err())
	}
	for i, want := range []struct {
		value  string
		offset int
	}{{"hello", 0}, {"world", 10}} {
		r := recs[i]
		if r.Type != TypeRawData || string(r.Value) != want.value || r.Offset != want.offset || r.Size() != 10 {
			t.Errorf("record %d = %+v", i, r)
		}
	}
	if it.Consumed() != len(hw) {
		t.Errorf("Consumed = %d, want %d", it.Consumed(), len(hw))
	}
}

func TestStructuredRoundTrip(t *testing.T) {
	var buf []byte
	buf = ok(t)(AppendKeyValue(buf, []byte("user-42"), []byte(`{"a":1}`)))
	buf = ok(t)(AppendKeyValue(buf, nil, nil))
	buf = ok(t)(AppendTimestamped(buf, 1706918400000000000, []byte("tick")))
	buf = ok(t)(AppendTimestamped(buf, math.MaxUint64, nil))
	buf = ok(t)(AppendKeyTimestamped(buf, 0x0102030405060708, []byte("key"), []byte("val")))
	buf = ok(t)(AppendKeyTimestamped(buf, 7, nil, []byte("no key")))
	buf = AppendNull(buf)

	// Byte-exact check of the Timestamped and KeyTimestamped layouts.
	ts := ok(t)(AppendTimestamped(nil, 0x0102030405060708, []byte("d")))
	if want := unhex(t, "11 09 00 00 00 08 07 06 05 04 03 02 01 64"); !bytes.Equal(ts, want) {
		t.Errorf("Timestamped = % X, want % X", ts, want)
	}
	kts := ok(t)(AppendKeyTimestamped(nil, 0x0102030405060708, []byte("k"), []byte("v")))
	if want := unhex(t, "12 0C 00 00 00 08 07 06 05 04 03 02 01 01 00 6B 76"); !bytes.Equal(kts, want) {
		t.Errorf("KeyTimestamped = % X, want % X", kts, want)
	}

	recs, it := collect(buf, 0)
	if it.Err() != nil || len(recs) != 7 {
		t.Fatalf("%d records, err %v", len(recs), it.Err())
	}
	kvCases := []struct{ key, value string }{{"user-42", `{"a":1}`}, {"", ""}}
	for i, c := range kvCases {
		k, v, err := recs[i].KeyValue()
		if err != nil || string(k) != c.key || string(v) != c.value {
			t.Errorf("record %d KeyValue = %q, %q, %v", i, k, v, err)
		}
	}
	tsCases := []struct {
		ts   uint64
		data string
	}{{1706918400000000000, "tick"}, {math.MaxUint64, ""}}
	for i, c := range tsCases {
		gotTS, d, err := recs[2+i].Timestamped()
		if err != nil || gotTS != c.ts || string(d) != c.data {
			t.Errorf("record %d Timestamped = %d, %q, %v", 2+i, gotTS, d, err)
		}
	}
	ktsCases := []struct {
		ts         uint64
		key, value string
	}{{0x0102030405060708, "key", "val"}, {7, "", "no key"}}
	for i, c := range ktsCases {
		gotTS, k, v, err := recs[4+i].KeyTimestamped()
		if err != nil || gotTS != c.ts || string(k) != c.key || string(v) != c.value {
			t.Errorf("record %d KeyTimestamped = %d, %q, %q, %v", 4+i, gotTS, k, v, err)
		}
	}
	if r := recs[6]; r.Type != TypeNull || len(r.Value) != 0 {
		t.Errorf("record 6 = %+v, want Null", r)
	}
	if n, err := Count(buf); n != 7 || err != nil {
		t.Errorf("Count = %d, %v", n, err)
	}
}

// TestValueCapacityClipped checks that appending to a returned slice
// cannot overwrite the next record.
func TestValueCapacityClipped(t *testing.T) {
	buf := ok(t)(AppendKeyValue(nil, []byte("k"), []byte("v")))
	buf = ok(t)(Append(buf, TypeRawData, []byte("next")))
	orig := bytes.Clone(buf)
	it := NewIterator(buf)
	if !it.Next() {
		t.Fatal(it.Err())
	}
	r := it.Record()
	k, v, err := r.KeyValue()
	if err != nil {
		t.Fatal(err)
	}
	_ = append(r.Value, 'X')
	_ = append(k, 'X')
	_ = append(v, 'X')
	if !bytes.Equal(buf, orig) {
		t.Fatalf("appending to decoded slices modified the buffer: % X", buf)
	}
}

func TestForwardCompatibleTypes(t *testing.T) {
	var buf []byte
	types := []Type{0x06, 0x0F, 0x13, 0x7F, TypeUserMin, 0xC0, TypeUserMax}
	for i, ty := range types {
		buf = ok(t)(Append(buf, ty, []byte{byte(i), byte(i)}))
	}
	recs, it := collect(buf, 0)
	if it.Err() != nil || len(recs) != len(types) {
		t.Fatalf("%d records, err %v", len(recs), it.Err())
	}
	for i, r := range recs {
		if r.Type != types[i] || !bytes.Equal(r.Value, []byte{byte(i), byte(i)}) {
			t.Errorf("record %d = %+v", i, r)
		}
	}
}

func TestTypeKnownAndString(t *testing.T) {
	for b := range 256 {
		ty := Type(b)
		want := (b >= 0x01 && b <= 0x05) || (b >= 0x10 && b <= 0x12) || b >= 0x80
		if ty.Known() != want {
			t.Errorf("Type(%#02x).Known() = %v, want %v", b, ty.Known(), want)
		}
		if ty.User() != (b >= 0x80 && b <= 0xFE) {
			t.Errorf("Type(%#02x).User() = %v", b, ty.User())
		}
		if ty.String() == "" {
			t.Errorf("Type(%#02x).String() is empty", b)
		}
	}
	names := map[Type]string{
		TypeReserved: "Reserved(0x00)", TypeRawData: "RawData", TypeJSON: "JSON",
		TypeMessagePack: "MessagePack", TypeProtobuf: "Protobuf", TypeAvro: "Avro",
		TypeKeyValue: "KeyValue", TypeTimestamped: "Timestamped", TypeKeyTimestamped: "KeyTimestamped",
		TypeNull: "Null", 0x80: "User(0x80)", 0xFE: "User(0xFE)", 0x06: "Unassigned(0x06)", 0x7F: "Unassigned(0x7F)",
	}
	for ty, want := range names {
		if got := ty.String(); got != want {
			t.Errorf("Type(%#02x).String() = %q, want %q", uint8(ty), got, want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	prefix := []byte("keep")
	check := func(name string, got []byte, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: error = %v, want %v", name, err, want)
		}
		if !bytes.Equal(got, prefix) {
			t.Errorf("%s: dst changed to %q on error", name, got)
		}
	}
	got, err := Append(prefix, TypeReserved, nil)
	check("reserved", got, err, ErrReserved)
	got, err = Append(prefix, TypeNull, []byte{0})
	check("null with value", got, err, ErrNullWithValue)

	big := make([]byte, DefaultMaxValueLen+1)
	got, err = Append(prefix, TypeRawData, big)
	check("oversize raw", got, err, ErrOversize)
	if _, err := Append(nil, TypeRawData, big[:DefaultMaxValueLen]); err != nil {
		t.Errorf("value of exactly DefaultMaxValueLen rejected: %v", err)
	}
	// Structured values count their fields toward the limit.
	got, err = AppendTimestamped(prefix, 1, big[:DefaultMaxValueLen-timestampSize+1])
	check("oversize timestamped", got, err, ErrOversize)
	got, err = AppendKeyValue(prefix, []byte("k"), big[:DefaultMaxValueLen-keyLenSize])
	check("oversize key-value", got, err, ErrOversize)
	got, err = AppendKeyTimestamped(prefix, 1, nil, big[:DefaultMaxValueLen-timestampSize-keyLenSize+1])
	check("oversize key-timestamped", got, err, ErrOversize)

	longKey := make([]byte, MaxKeyLen+1)
	got, err = AppendKeyValue(prefix, longKey, nil)
	check("long key", got, err, ErrKeyTooLong)
	got, err = AppendKeyTimestamped(prefix, 1, longKey, nil)
	check("long key timestamped", got, err, ErrKeyTooLong)
	if b, err := AppendKeyValue(nil, longKey[:MaxKeyLen], nil); err != nil || len(b) != HeaderSize+keyLenSize+MaxKeyLen {
		t.Errorf("key of exactly MaxKeyLen: len %d, %v", len(b), err)
	}

	// A configured limit.
	small := Encoder{MaxValueLen: 4}
	got, err = small.Append(prefix, TypeJSON, []byte("12345"))
	check("encoder limit", got, err, ErrOversize)
	if b, err := small.Append(nil, TypeJSON, []byte("1234")); err != nil || len(b) != 9 {
		t.Errorf("encoder at its limit: % X, %v", b, err)
	}
	got, err = small.AppendKeyValue(prefix, []byte("ab"), []byte("c"))
	check("encoder limit key-value", got, err, ErrOversize)
	got, err = small.AppendTimestamped(prefix, 0, nil)
	check("encoder limit timestamped", got, err, ErrOversize)
	got, err = small.AppendKeyTimestamped(prefix, 0, nil, nil)
	check("encoder limit key-timestamped", got, err, ErrOversize)
	// math.MaxUint32 lifts the default limit.
	if _, err := (Encoder{MaxValueLen: math.MaxUint32}).Append(nil, TypeRawData, big); err != nil {
		t.Errorf("MaxUint32 encoder rejected %d bytes: %v", len(big), err)
	}
}

// header builds a raw 5-byte header.
func header(ty Type, n uint32) []byte {
	return []byte{byte(ty), byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}
}

func TestIteratorErrors(t *testing.T) {
	good := ok(t)(Append(nil, TypeRawData, []byte("ok"))) // 7 bytes
	cases := []struct {
		name   string
		tail   []byte
		maxLen uint32
		want   error
	}{
		{"reserved type", append(header(TypeReserved, 0), 'x'), 0, ErrReserved},
		{"reserved type, empty", header(TypeReserved, 0), 0, ErrReserved},
		{"null with value", append(header(TypeNull, 1), 'x'), 0, ErrNullWithValue},
		{"null with huge length", header(TypeNull, math.MaxUint32), 0, ErrNullWithValue},
		// Only the header is present: the length is judged before the value.
		{"oversize from header alone", header(TypeRawData, DefaultMaxValueLen+1), 0, ErrOversize},
		{"oversize u32 max", header(TypeRawData, math.MaxUint32), 0, ErrOversize},
		{"oversize with custom limit", append(header(TypeJSON, 4), "abcd"...), 3, ErrOversize},
		{"short header", []byte{0x01, 0x05}, 0, ErrTruncated},
		{"one byte", []byte{0x01}, 0, ErrTruncated},
		{"short value", append(header(TypeRawData, 5), "hel"...), 0, ErrTruncated},
		{"header only", header(TypeRawData, 1), 0, ErrTruncated},
		{"truncated at the limit", header(TypeRawData, DefaultMaxValueLen), 0, ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			buf := append(slices.Clip(good), c.tail...)
			recs, it := collect(buf, c.maxLen)
			if len(recs) != 1 || string(recs[0].Value) != "ok" {
				t.Fatalf("records before the error = %+v", recs)
			}
			err := it.Err()
			if !errors.Is(err, c.want) {
				t.Fatalf("Err = %v, want %v", err, c.want)
			}
			var te *Error
			if !errors.As(err, &te) || te.Offset != len(good) {
				t.Fatalf("Err = %#v, want *Error at offset %d", err, len(good))
			}
			if !strings.Contains(err.Error(), "offset 7") {
				t.Errorf("error text %q lacks the offset", err)
			}
			if it.Consumed() != len(good) {
				t.Errorf("Consumed = %d, want %d", it.Consumed(), len(good))
			}
			if it.Next() || it.Err() != err {
				t.Errorf("Next after an error did not stay stopped")
			}
			if r := it.Record(); r.Value != nil || r.Type != 0 {
				t.Errorf("Record after an error = %+v", r)
			}
			if n, cerr := Count(buf); c.maxLen == 0 && (n != 1 || !errors.Is(cerr, c.want)) {
				t.Errorf("Count = %d, %v", n, cerr)
			}
		})
	}
}

func TestIteratorLimits(t *testing.T) {
	buf := ok(t)(Append(nil, TypeRawData, make([]byte, 100)))
	if _, it := collect(buf, 100); it.Err() != nil {
		t.Errorf("value at the limit: %v", it.Err())
	}
	if _, it := collect(buf, 99); !errors.Is(it.Err(), ErrOversize) {
		t.Errorf("value over the limit: %v", it.Err())
	}
	if _, it := collect(buf, 0); it.Err() != nil {
		t.Errorf("limit 0 (default): %v", it.Err())
	}
	var empty Iterator
	if empty.Next() || empty.Err() != nil || empty.Consumed() != 0 {
		t.Error("zero Iterator is not an empty iteration")
	}
	if n, err := Count(nil); n != 0 || err != nil {
		t.Errorf("Count(nil) = %d, %v", n, err)
	}
}

func TestDecoderErrors(t *testing.T) {
	cases := []struct {
		name  string
		rec   Record
		check func(Record) error
		want  error
	}{
		{"kv empty", Record{Type: TypeKeyValue, Value: nil}, kvErr, ErrBadLayout},
		{"kv one byte", Record{Type: TypeKeyValue, Value: []byte{1}}, kvErr, ErrBadLayout},
		{"kv key past end", Record{Type: TypeKeyValue, Value: []byte{2, 0, 'k'}}, kvErr, ErrBadLayout},
		{"kv key_len huge", Record{Type: TypeKeyValue, Value: []byte{0xFF, 0xFF, 'k'}}, kvErr, ErrBadLayout},
		{"ts short", Record{Type: TypeTimestamped, Value: make([]byte, 7)}, tsErr, ErrBadLayout},
		{"kts short ts", Record{Type: TypeKeyTimestamped, Value: make([]byte, 7)}, ktsErr, ErrBadLayout},
		{"kts no key_len", Record{Type: TypeKeyTimestamped, Value: make([]byte, 9)}, ktsErr, ErrBadLayout},
		{"kts key past end", Record{Type: TypeKeyTimestamped, Value: append(make([]byte, 8), 3, 0, 'a', 'b')}, ktsErr, ErrBadLayout},
		{"kv on raw", Record{Type: TypeRawData, Value: []byte{0, 0}}, kvErr, ErrWrongType},
		{"ts on kv", Record{Type: TypeKeyValue, Value: make([]byte, 8)}, tsErr, ErrWrongType},
		{"kts on ts", Record{Type: TypeTimestamped, Value: make([]byte, 10)}, ktsErr, ErrWrongType},
	}
	for _, c := range cases {
		c.rec.Offset = 123
		err := c.check(c.rec)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error = %v, want %v", c.name, err, c.want)
			continue
		}
		var te *Error
		if !errors.As(err, &te) || te.Offset != 123 {
			t.Errorf("%s: error %v does not carry offset 123", c.name, err)
		}
	}
	// Boundary successes: exactly enough bytes.
	if k, v, err := (Record{Type: TypeKeyValue, Value: []byte{0, 0}}).KeyValue(); err != nil || len(k) != 0 || len(v) != 0 {
		t.Errorf("kv minimal: %q %q %v", k, v, err)
	}
	if k, v, err := (Record{Type: TypeKeyValue, Value: []byte{2, 0, 'a', 'b'}}).KeyValue(); err != nil || string(k) != "ab" || len(v) != 0 {
		t.Errorf("kv key fills value: %q %q %v", k, v, err)
	}
	if ts, d, err := (Record{Type: TypeTimestamped, Value: make([]byte, 8)}).Timestamped(); err != nil || ts != 0 || len(d) != 0 {
		t.Errorf("ts minimal: %d %q %v", ts, d, err)
	}
	if _, k, v, err := (Record{Type: TypeKeyTimestamped, Value: make([]byte, 10)}).KeyTimestamped(); err != nil || len(k) != 0 || len(v) != 0 {
		t.Errorf("kts minimal: %q %q %v", k, v, err)
	}
}

func kvErr(r Record) error  { _, _, err := r.KeyValue(); return err }
func tsErr(r Record) error  { _, _, err := r.Timestamped(); return err }
func ktsErr(r Record) error { _, _, _, err := r.KeyTimestamped(); return err }

// mixedBuffer returns records of every kind and the offset at which each
// one starts, with len(buf) appended.
func mixedBuffer(t testing.TB) (buf []byte, starts []int) {
	add := func(b []byte, err error) {
		t.Helper()
		starts = append(starts, len(buf))
		buf = ok(t)(b, err)
	}
	add(Append(buf, TypeRawData, []byte("hello")))
	add(AppendKeyValue(buf, []byte("k"), []byte("v")))
	add(AppendNull(buf), nil)
	add(AppendTimestamped(buf, 1706918400000000000, []byte("t")))
	add(AppendKeyTimestamped(buf, 42, []byte("key"), []byte("value")))
	add(Append(buf, TypeJSON, nil))
	add(Append(buf, 0x80, []byte{0, 1, 2}))
	add(Append(buf, 0x06, []byte("future")))
	starts = append(starts, len(buf))
	return buf, starts
}

// TestTruncationEverywhere cuts a multi-record buffer at every byte: the
// records wholly before the cut come out, then ErrTruncated at the start of
// the cut record, or a clean end when the cut falls on a boundary.
func TestTruncationEverywhere(t *testing.T) {
	full, starts := mixedBuffer(t)
	for cut := 0; cut <= len(full); cut++ {
		// Copy so that the capacity ends at the cut: any read past it panics.
		buf := bytes.Clone(full[:cut])
		buf = slices.Clip(buf)
		complete := 0
		for complete+1 < len(starts) && starts[complete+1] <= cut {
			complete++
		}
		recs, it := collect(buf, 0)
		if len(recs) != complete {
			t.Fatalf("cut %d: %d records, want %d", cut, len(recs), complete)
		}
		for i, r := range recs {
			if r.Offset != starts[i] || r.Offset+r.Size() != starts[i+1] {
				t.Fatalf("cut %d: record %d at %d size %d, want %d..%d", cut, i, r.Offset, r.Size(), starts[i], starts[i+1])
			}
		}
		onBoundary := slices.Contains(starts, cut)
		err := it.Err()
		switch {
		case onBoundary && err != nil:
			t.Fatalf("cut %d on a boundary: %v", cut, err)
		case !onBoundary:
			var te *Error
			if !errors.Is(err, ErrTruncated) || !errors.As(err, &te) || te.Offset != starts[complete] {
				t.Fatalf("cut %d: err %v, want ErrTruncated at %d", cut, err, starts[complete])
			}
		}
		if it.Consumed() != starts[complete] {
			t.Fatalf("cut %d: Consumed %d, want %d", cut, it.Consumed(), starts[complete])
		}
	}
}

func TestNoAllocations(t *testing.T) {
	buf, _ := mixedBuffer(t)
	sink := 0
	allocs := testing.AllocsPerRun(100, func() {
		it := NewIterator(buf)
		for it.Next() {
			r := it.Record()
			sink += len(r.Value)
			switch r.Type {
			case TypeKeyValue:
				k, v, _ := r.KeyValue()
				sink += len(k) + len(v)
			case TypeTimestamped:
				ts, d, _ := r.Timestamped()
				sink += int(ts&1) + len(d)
			case TypeKeyTimestamped:
				ts, k, v, _ := r.KeyTimestamped()
				sink += int(ts&1) + len(k) + len(v)
			}
		}
		if it.Err() != nil {
			panic(it.Err())
		}
	})
	if allocs != 0 {
		t.Errorf("iterating and decoding: %v allocs per run, want 0", allocs)
	}
	out := make([]byte, 0, 4096)
	key, val := []byte("key"), []byte("value")
	allocs = testing.AllocsPerRun(100, func() {
		out = out[:0]
		out, _ = Append(out, TypeRawData, val)
		out, _ = AppendKeyValue(out, key, val)
		out, _ = AppendTimestamped(out, 1, val)
		out, _ = AppendKeyTimestamped(out, 1, key, val)
		out = AppendNull(out)
	})
	if allocs != 0 {
		t.Errorf("appending into a reused buffer: %v allocs per run, want 0", allocs)
	}
	if sink == 0 {
		t.Error("nothing iterated")
	}
}

// benchBuffer holds 100 RawData records of 100-byte values.
func benchBuffer(b *testing.B) []byte {
	value := bytes.Repeat([]byte{0xAB}, 100)
	buf := make([]byte, 0, 100*(HeaderSize+100))
	for range 100 {
		buf = ok(b)(Append(buf, TypeRawData, value))
	}
	return buf
}

func BenchmarkIterate(b *testing.B) {
	buf := benchBuffer(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		it := NewIterator(buf)
		n := 0
		for it.Next() {
			n += len(it.Record().Value)
		}
		if it.Err() != nil || n != 100*100 {
			b.Fatalf("n=%d err=%v", n, it.Err())
		}
	}
}

func BenchmarkIterateKeyValue(b *testing.B) {
	key, value := bytes.Repeat([]byte{'k'}, 16), bytes.Repeat([]byte{'v'}, 82)
	var buf []byte
	for range 100 {
		buf = ok(b)(AppendKeyValue(buf, key, value))
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		it := NewIterator(buf)
		n := 0
		for it.Next() {
			k, v, err := it.Record().KeyValue()
			if err != nil {
				b.Fatal(err)
			}
			n += len(k) + len(v)
		}
		if it.Err() != nil || n != 100*98 {
			b.Fatalf("n=%d err=%v", n, it.Err())
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	value := bytes.Repeat([]byte{0xAB}, 100)
	buf := make([]byte, 0, 100*(HeaderSize+100))
	b.ReportAllocs()
	b.SetBytes(int64(cap(buf)))
	for b.Loop() {
		buf = buf[:0]
		for range 100 {
			var err error
			if buf, err = Append(buf, TypeRawData, value); err != nil {
				b.Fatal(err)
			}
		}
	}
}
