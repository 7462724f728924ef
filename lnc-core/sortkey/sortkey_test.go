package sortkey

import (
	"bytes"
	"cmp"
	"encoding"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The encoding must satisfy the standard binary interfaces.
var (
	_ encoding.BinaryAppender    = Key{}
	_ encoding.BinaryMarshaler   = Key{}
	_ encoding.BinaryUnmarshaler = (*Key)(nil)
)

func mustNew(t testing.TB, ts uint64, node uint16, actor uint8, seq uint64) Key {
	t.Helper()
	k, err := New(ts, node, actor, seq)
	if err != nil {
		t.Fatalf("New(%d, %d, %d, %d): %v", ts, node, actor, seq, err)
	}
	return k
}

// tupleCompare is the naive definition of the order: field by field.
func tupleCompare(a, b Key) int {
	if c := cmp.Compare(a.Timestamp(), b.Timestamp()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Node(), b.Node()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Actor(), b.Actor()); c != 0 {
		return c
	}
	return cmp.Compare(a.Sequence(), b.Sequence())
}

func TestFieldsRoundTrip(t *testing.T) {
	cases := []struct {
		ts    uint64
		node  uint16
		actor uint8
		seq   uint64
	}{
		{0, 0, 0, 0},
		{1706918400000000000, 1, 2, 3},
		{math.MaxUint64, math.MaxUint16, math.MaxUint8, MaxSequence},
		{1, 0x8001, 0x81, 1 << 39},
		{math.MaxUint64, 0, 0, 0},
		{0, math.MaxUint16, 0, 0},
		{0, 0, math.MaxUint8, 0},
		{0, 0, 0, MaxSequence},
	}
	for _, c := range cases {
		k := mustNew(t, c.ts, c.node, c.actor, c.seq)
		if k.Timestamp() != c.ts || k.Node() != c.node || k.Actor() != c.actor || k.Sequence() != c.seq {
			t.Errorf("New(%d, %d, %d, %d) reads back as %v", c.ts, c.node, c.actor, c.seq, k)
		}
	}
}

func TestSequenceOverflow(t *testing.T) {
	for _, seq := range []uint64{MaxSequence + 1, 1 << 41, math.MaxUint64} {
		k, err := New(1, 2, 3, seq)
		if !errors.Is(err, ErrSequenceOverflow) {
			t.Errorf("New(seq=%d) error = %v, want ErrSequenceOverflow", seq, err)
		}
		if k != (Key{}) {
			t.Errorf("New(seq=%d) returned non-zero key %v with an error", seq, k)
		}
	}
	if _, err := New(1, 2, 3, MaxSequence); err != nil {
		t.Errorf("New(seq=MaxSequence) = %v, want nil", err)
	}
}

func TestKnownEncoding(t *testing.T) {
	k := mustNew(t, 0x0102030405060708, 0x090A, 0x0B, 0x0C0D0E0F10)
	want := []byte{
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // timestamp
		0x09, 0x0A, // node
		0x0B,                         // actor
		0x0C, 0x0D, 0x0E, 0x0F, 0x10, // sequence
	}
	if got := k.Append(nil); !bytes.Equal(got, want) {
		t.Errorf("Append = % X, want % X", got, want)
	}
	if got := k.Bytes(); !bytes.Equal(got[:], want) {
		t.Errorf("Bytes = % X, want % X", got, want)
	}
	if got, err := k.AppendBinary([]byte{0xEE}); err != nil || !bytes.Equal(got, append([]byte{0xEE}, want...)) {
		t.Errorf("AppendBinary = % X, %v", got, err)
	}
	if got, err := k.MarshalBinary(); err != nil || !bytes.Equal(got, want) {
		t.Errorf("MarshalBinary = % X, %v", got, err)
	}
	back, err := FromBytes(want)
	if err != nil || back != k {
		t.Errorf("FromBytes = %v, %v, want %v", back, err, k)
	}
	var u Key
	if err := u.UnmarshalBinary(want); err != nil || u != k {
		t.Errorf("UnmarshalBinary = %v, %v, want %v", u, err, k)
	}
	if s := k.String(); s != "ts=72623859790382856 node=2314 actor=11 seq=51758632720" {
		t.Errorf("String = %q", s)
	}
}

func TestFromBytesLength(t *testing.T) {
	for _, n := range []int{0, 1, 15, 17, 32} {
		if _, err := FromBytes(make([]byte, n)); !errors.Is(err, ErrLength) {
			t.Errorf("FromBytes(len %d) error = %v, want ErrLength", n, err)
		}
		k := mustNew(t, 5, 5, 5, 5)
		if err := k.UnmarshalBinary(make([]byte, n)); !errors.Is(err, ErrLength) {
			t.Errorf("UnmarshalBinary(len %d) error = %v, want ErrLength", n, err)
		}
		if k != mustNew(t, 5, 5, 5, 5) {
			t.Errorf("UnmarshalBinary(len %d) changed the key on error", n)
		}
	}
}

// TestFieldBoundaries checks that a more significant field always wins,
// whatever the less significant fields hold: each pair has the smaller
// value in a higher field and the largest values in every lower field.
func TestFieldBoundaries(t *testing.T) {
	const maxTS = math.MaxUint64
	pairs := []struct {
		name        string
		small, big  Key
		wantCompare int
	}{
		{"timestamp over node/actor/seq",
			mustNew(t, 1, math.MaxUint16, math.MaxUint8, MaxSequence), mustNew(t, 2, 0, 0, 0), -1},
		{"timestamp high bit",
			mustNew(t, 1<<63-1, math.MaxUint16, math.MaxUint8, MaxSequence), mustNew(t, 1<<63, 0, 0, 0), -1},
		{"node over actor/seq",
			mustNew(t, maxTS, 6, math.MaxUint8, MaxSequence), mustNew(t, maxTS, 7, 0, 0), -1},
		{"node high bit",
			mustNew(t, 9, 0x7FFF, math.MaxUint8, MaxSequence), mustNew(t, 9, 0x8000, 0, 0), -1},
		{"actor over seq",
			mustNew(t, 9, 3, 0x7F, MaxSequence), mustNew(t, 9, 3, 0x80, 0), -1},
		{"actor low bit",
			mustNew(t, 9, 3, 0, MaxSequence), mustNew(t, 9, 3, 1, 0), -1},
		{"sequence",
			mustNew(t, 9, 3, 4, 1<<39-1), mustNew(t, 9, 3, 4, 1<<39), -1},
		{"sequence low bit",
			mustNew(t, 9, 3, 4, 0), mustNew(t, 9, 3, 4, 1), -1},
		{"equal",
			mustNew(t, 9, 3, 4, 5), mustNew(t, 9, 3, 4, 5), 0},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			if got := Compare(p.small, p.big); got != p.wantCompare {
				t.Errorf("Compare(%v, %v) = %d, want %d", p.small, p.big, got, p.wantCompare)
			}
			if got := Compare(p.big, p.small); got != -p.wantCompare {
				t.Errorf("Compare(%v, %v) = %d, want %d", p.big, p.small, got, -p.wantCompare)
			}
			if got := Less(p.small, p.big); got != (p.wantCompare < 0) {
				t.Errorf("Less(small, big) = %v", got)
			}
			if Less(p.big, p.small) {
				t.Errorf("Less(big, small) = true")
			}
			sb, bb := p.small.Bytes(), p.big.Bytes()
			if got := bytes.Compare(sb[:], bb[:]); got != p.wantCompare {
				t.Errorf("bytes.Compare of encodings = %d, want %d", got, p.wantCompare)
			}
			if (p.small == p.big) != (p.wantCompare == 0) {
				t.Errorf("== disagrees with Compare")
			}
		})
	}
}

// randomKey draws fields that often repeat between keys, so that ties on
// the leading fields (and the comparisons after them) are common.
func randomKey(r *rand.Rand) Key {
	pick := func(small, full uint64) uint64 {
		if r.IntN(2) == 0 {
			return r.Uint64N(small)
		}
		return full
	}
	ts := pick(3, r.Uint64())
	node := uint16(pick(3, uint64(r.Uint32())))
	actor := uint8(pick(3, uint64(r.Uint32())))
	seq := pick(3, r.Uint64()) & MaxSequence
	return makeKey(ts, node, actor, seq)
}

func TestOrderMatchesBytesProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(20240203, 7))
	for i := range 200000 {
		a, b := randomKey(r), randomKey(r)
		if i%7 == 0 {
			b = a
		}
		want := tupleCompare(a, b)
		if got := Compare(a, b); got != want {
			t.Fatalf("Compare(%v, %v) = %d, tuple order says %d", a, b, got, want)
		}
		if got := Less(a, b); got != (want < 0) {
			t.Fatalf("Less(%v, %v) = %v, tuple order says %d", a, b, got, want)
		}
		ea, eb := a.Bytes(), b.Bytes()
		if got := bytes.Compare(ea[:], eb[:]); got != want {
			t.Fatalf("bytes.Compare(%v, %v) = %d, tuple order says %d", a, b, got, want)
		}
		back, err := FromBytes(ea[:])
		if err != nil || back != a {
			t.Fatalf("FromBytes(Bytes(%v)) = %v, %v", a, back, err)
		}
	}
}

func TestSortedKeysSortedEncodings(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	keys := make([]Key, 1000)
	for i := range keys {
		keys[i] = randomKey(r)
	}
	slices.SortFunc(keys, Compare)
	encs := make([][]byte, len(keys))
	for i, k := range keys {
		encs[i] = k.Append(nil)
	}
	if !slices.IsSortedFunc(encs, bytes.Compare) {
		t.Fatal("encodings of sorted keys are not sorted")
	}
}

func BenchmarkCompare(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	keys := make([]Key, 1024)
	for i := range keys {
		keys[i] = randomKey(r)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = Compare(keys[i&1023], keys[(i+1)&1023])
		i++
	}
}

func BenchmarkAppend(b *testing.B) {
	k := makeKey(1706918400000000000, 1, 2, 3)
	buf := make([]byte, 0, 64*Size)
	b.ReportAllocs()
	b.SetBytes(64 * Size)
	for b.Loop() {
		buf = buf[:0]
		for range 64 {
			buf = k.Append(buf)
		}
	}
}
