package tlv

import (
	"bytes"
	"errors"
	"testing"
)

// sentinels are the causes an Iterator may report.
var sentinels = []error{ErrTruncated, ErrOversize, ErrNullWithValue, ErrReserved}

// FuzzIterator feeds arbitrary bytes to the Iterator and the structured
// decoders and checks:
//   - no panic;
//   - records are contiguous from offset 0 and every value is a subslice of
//     the input (same memory, within bounds);
//   - an error is an *Error at the end of the consumed prefix, wrapping one
//     sentinel, and no error means the whole input was consumed;
//   - re-encoding the records reproduces the consumed prefix byte for byte,
//     and iterating that again gives the same records without error;
//   - a structured decoder either fails with ErrBadLayout at the record's
//     offset, or returns fields inside the value that re-encode to the
//     record's exact bytes; the other decoders fail with ErrWrongType;
//   - an Iterator with a small limit yields a prefix of the same records
//     and stops with ErrOversize exactly where a longer value comes.
func FuzzIterator(f *testing.F) {
	f.Add([]byte("\x01\x05\x00\x00\x00hello\x01\x05\x00\x00\x00world"))
	f.Add([]byte("\x10\x04\x00\x00\x00\x01\x00kv"))
	f.Add([]byte("\xff\x00\x00\x00\x00"))
	f.Add([]byte("\x11\x09\x00\x00\x00\x08\x07\x06\x05\x04\x03\x02\x01d"))
	f.Add([]byte("\x12\x0c\x00\x00\x00\x08\x07\x06\x05\x04\x03\x02\x01\x01\x00kv"))
	f.Add([]byte("\x10\x03\x00\x00\x00\x05\x00k"))
	f.Add([]byte("\x80\x00\x00\x00\x00\x06\x01\x00\x00\x00x"))
	f.Add([]byte("\x01\x01\x00\x00\x01"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		it := NewIterator(data)
		var recs []Record
		var reencoded []byte
		for it.Next() {
			r := it.Record()
			checkRecord(t, data, r, recs)
			recs = append(recs, r)
			var err error
			reencoded, err = Append(reencoded, r.Type, r.Value)
			if err != nil {
				t.Fatalf("re-encoding %v at %d: %v", r.Type, r.Offset, err)
			}
			checkDecoders(t, data, r)
		}
		consumed := it.Consumed()
		if err := it.Err(); err != nil {
			var te *Error
			if !errors.As(err, &te) || te.Offset != consumed {
				t.Fatalf("error %v is not an *Error at the consumed offset %d", err, consumed)
			}
			if matchCount(err) != 1 {
				t.Fatalf("error %v does not wrap exactly one sentinel", err)
			}
		} else if consumed != len(data) {
			t.Fatalf("clean end after %d of %d bytes", consumed, len(data))
		}
		if !bytes.Equal(reencoded, data[:consumed]) {
			t.Fatalf("re-encoding gives % X, consumed prefix is % X", reencoded, data[:consumed])
		}
		if n, err := Count(data); n != len(recs) || (err == nil) != (it.Err() == nil) {
			t.Fatalf("Count = %d, %v; iteration gave %d, %v", n, err, len(recs), it.Err())
		}

		// Decode the re-encoding again: same records, clean end.
		again, it2 := collect(reencoded, 0)
		if it2.Err() != nil || len(again) != len(recs) {
			t.Fatalf("re-iterating: %d records, err %v; want %d", len(again), it2.Err(), len(recs))
		}
		for i := range recs {
			a, b := recs[i], again[i]
			if a.Type != b.Type || a.Offset != b.Offset || !bytes.Equal(a.Value, b.Value) {
				t.Fatalf("record %d differs after round trip: %+v vs %+v", i, a, b)
			}
		}

		// A tight limit stops at the first longer value, never elsewhere.
		const small = 8
		limited, it3 := collect(data, small)
		if len(limited) > len(recs) {
			t.Fatalf("limited iterator found more records (%d) than the default (%d)", len(limited), len(recs))
		}
		for i, r := range limited {
			if r.Type != recs[i].Type || r.Offset != recs[i].Offset || len(r.Value) > small {
				t.Fatalf("limited record %d = %+v, default %+v", i, r, recs[i])
			}
		}
		if errors.Is(it3.Err(), ErrOversize) && len(limited) < len(recs) && len(recs[len(limited)].Value) <= small {
			t.Fatalf("limited iterator reported ErrOversize for a %d-byte value", len(recs[len(limited)].Value))
		}
		if len(limited) < len(recs) && !errors.Is(it3.Err(), ErrOversize) {
			t.Fatalf("limited iterator stopped early with %v", it3.Err())
		}
	})
}

func matchCount(err error) int {
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	return n
}

// at reports whether sub is outer[off:off+len(sub)] itself (the same
// memory, in bounds), not a copy. An empty sub only needs off in bounds.
func at(outer []byte, off int, sub []byte) bool {
	if off+len(sub) > len(outer) {
		return false
	}
	return len(sub) == 0 || &outer[off] == &sub[0]
}

func checkRecord(t *testing.T, data []byte, r Record, prev []Record) {
	t.Helper()
	wantOffset := 0
	if len(prev) > 0 {
		last := prev[len(prev)-1]
		wantOffset = last.Offset + last.Size()
	}
	if r.Offset != wantOffset {
		t.Fatalf("record at %d, want %d", r.Offset, wantOffset)
	}
	end := r.Offset + r.Size()
	if end > len(data) {
		t.Fatalf("record %d..%d past the input (%d bytes)", r.Offset, end, len(data))
	}
	if len(r.Value) > 0 && &r.Value[0] != &data[r.Offset+HeaderSize] {
		t.Fatalf("value of record at %d is not the input's memory", r.Offset)
	}
	if cap(r.Value) != len(r.Value) {
		t.Fatalf("value capacity %d exceeds its length %d", cap(r.Value), len(r.Value))
	}
	if r.Type == TypeReserved || (r.Type == TypeNull && len(r.Value) != 0) {
		t.Fatalf("iterator returned an invalid record %+v", r)
	}
}

func checkDecoders(t *testing.T, data []byte, r Record) {
	t.Helper()
	raw := data[r.Offset : r.Offset+r.Size()]
	expectErr := func(name string, err, want error) {
		t.Helper()
		var te *Error
		if !errors.Is(err, want) || !errors.As(err, &te) || te.Offset != r.Offset {
			t.Fatalf("%s on %v at %d: error %v, want %v at that offset", name, r.Type, r.Offset, err, want)
		}
	}
	sameBytes := func(name string, got []byte, err error) {
		t.Helper()
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("%s re-encoding: % X, %v; record is % X", name, got, err, raw)
		}
	}

	key, value, err := r.KeyValue()
	switch {
	case r.Type != TypeKeyValue:
		expectErr("KeyValue", err, ErrWrongType)
	case err != nil:
		expectErr("KeyValue", err, ErrBadLayout)
	default:
		if !at(r.Value, keyLenSize, key) || !at(r.Value, keyLenSize+len(key), value) ||
			keyLenSize+len(key)+len(value) != len(r.Value) {
			t.Fatalf("KeyValue fields %q %q do not tile the value % X", key, value, r.Value)
		}
		got, err := AppendKeyValue(nil, key, value)
		sameBytes("KeyValue", got, err)
	}

	ts, d, err := r.Timestamped()
	switch {
	case r.Type != TypeTimestamped:
		expectErr("Timestamped", err, ErrWrongType)
	case err != nil:
		expectErr("Timestamped", err, ErrBadLayout)
	default:
		if !at(r.Value, timestampSize, d) || timestampSize+len(d) != len(r.Value) {
			t.Fatalf("Timestamped data %q does not end the value % X", d, r.Value)
		}
		got, err := AppendTimestamped(nil, ts, d)
		sameBytes("Timestamped", got, err)
	}

	ts, key, value, err = r.KeyTimestamped()
	switch {
	case r.Type != TypeKeyTimestamped:
		expectErr("KeyTimestamped", err, ErrWrongType)
	case err != nil:
		expectErr("KeyTimestamped", err, ErrBadLayout)
	default:
		if !at(r.Value, timestampSize+keyLenSize, key) ||
			!at(r.Value, timestampSize+keyLenSize+len(key), value) ||
			timestampSize+keyLenSize+len(key)+len(value) != len(r.Value) {
			t.Fatalf("KeyTimestamped fields %q %q do not tile the value % X", key, value, r.Value)
		}
		got, err := AppendKeyTimestamped(nil, ts, key, value)
		sameBytes("KeyTimestamped", got, err)
	}
}
