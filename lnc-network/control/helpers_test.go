package control

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// unhex decodes a hex string written with spaces between groups, as the
// digest prints its vectors.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// codec bundles a decoder and an encoder for the shared round-trip check.
type codec[T any] struct {
	name   string
	decode func([]byte) (T, error)
	encode func(T, []byte) []byte
	// canonical returns how many bytes of input p the decoded value v was
	// read from, when re-encoding v must reproduce exactly those bytes;
	// -1 when the format or this input has no such guarantee. Nil means
	// never.
	canonical func(v T, p []byte) int
}

// checkRoundTrip is the body shared by the fuzz targets and the vector
// tests: decoding p must not panic; a failure must be one of the package's
// errors; a success must survive encode/decode unchanged, and, where the
// format is canonical, encode back to the bytes it came from.
func checkRoundTrip[T any](t *testing.T, c codec[T], p []byte) {
	t.Helper()
	in := bytes.Clone(p)
	v, err := c.decode(p)
	if !bytes.Equal(in, p) {
		t.Fatalf("%s: decoder modified its input", c.name)
	}
	if err != nil {
		var pe *PayloadError
		if !errors.As(err, &pe) {
			t.Fatalf("%s(%x): error %v is not a *PayloadError", c.name, p, err)
		}
		if !errors.Is(err, ErrShortPayload) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s(%x): error %v matches no sentinel", c.name, p, err)
		}
		if pe.Got != len(p) {
			t.Fatalf("%s(%x): PayloadError.Got = %d, want %d", c.name, p, pe.Got, len(p))
		}
		_ = err.Error()
		return
	}
	enc := c.encode(v, nil)
	v2, err := c.decode(enc)
	if err != nil {
		t.Fatalf("%s: re-decoding %x (from %x) failed: %v", c.name, enc, p, err)
	}
	if !reflect.DeepEqual(v, v2) {
		t.Fatalf("%s: round trip changed the value\n input %x\n first %#v\nsecond %#v", c.name, p, v, v2)
	}
	// Appending to a non-empty dst must keep the prefix and add the same bytes.
	prefix := []byte("prefix")
	enc2 := c.encode(v, bytes.Clone(prefix))
	if !bytes.HasPrefix(enc2, prefix) || !bytes.Equal(enc2[len(prefix):], enc) {
		t.Fatalf("%s: encoding after a prefix gave %x, want prefix+%x", c.name, enc2, enc)
	}
	if c.canonical != nil {
		if n := c.canonical(v, p); n >= 0 && !bytes.Equal(enc, p[:n]) {
			t.Fatalf("%s: encoding %x differs from the %d input bytes %x", c.name, enc, n, p[:n])
		}
	}
}

// fixed returns a canonical function for a fixed-size layout: the first
// size bytes of any accepted input are reproduced.
func fixed[T any](size int) func(T, []byte) int {
	return func(T, []byte) int { return size }
}

// appender adapts an AppendTo method value to codec.encode.
func appender[T interface{ AppendTo([]byte) []byte }](v T, dst []byte) []byte {
	return v.AppendTo(dst)
}
