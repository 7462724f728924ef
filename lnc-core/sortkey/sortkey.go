// Package sortkey defines the 128-bit key that orders records inside a
// LANCE log and its sparse index.
//
// # Layout
//
// A key packs four unsigned fields, most significant first:
//
//	 127                           64 63          48 47          40 39             0
//	+--------------------------------+--------------+--------------+----------------+
//	|       timestamp_ns (64)        | node_id (16) | actor_id (8) | sequence (40)  |
//	+--------------------------------+--------------+--------------+----------------+
//
// Keys compare as the unsigned 128-bit integer they spell, which is the same
// as comparing the tuple (timestamp_ns, node_id, actor_id, sequence)
// field by field.
//
// # Binary encoding
//
// The encoding is the 128-bit integer in big-endian order, 16 bytes:
//
//	offset  0..7   timestamp_ns  u64 BE
//	offset  8..9   node_id       u16 BE
//	offset 10      actor_id      u8
//	offset 11..15  sequence      u40 BE
//
// Big-endian is chosen so that bytes.Compare on two encodings agrees with
// Compare on the keys: encoded keys can be used directly as byte-ordered
// index entries. Keys never travel on the LWP wire; this encoding belongs to
// the index format and must not change without a format version bump.
//
// # Sequence range
//
// The sequence is 40 bits wide (0 to MaxSequence). New rejects a larger
// sequence with ErrSequenceOverflow instead of truncating it, because a
// silently wrapped sequence would reorder records. Generator never produces
// one: it moves to the next nanosecond instead (see Generator).
package sortkey

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Field widths and limits. These are part of the index format.
const (
	// Size is the length in bytes of an encoded key.
	Size = 16

	// SequenceBits is the width of the sequence field.
	SequenceBits = 40
	// MaxSequence is the largest sequence a key can hold, 2^40-1.
	MaxSequence = 1<<SequenceBits - 1

	nodeShift  = 48
	actorShift = 40
)

var (
	// ErrSequenceOverflow is returned by New when the sequence does not fit
	// in 40 bits.
	ErrSequenceOverflow = errors.New("sortkey: sequence exceeds 40 bits")
	// ErrLength is returned when decoding a byte slice whose length is not
	// Size.
	ErrLength = errors.New("sortkey: encoded key must be 16 bytes")
	// ErrExhausted is returned by Generator.Next when the last key already
	// holds the largest timestamp and sequence, so no larger key exists for
	// its node and actor.
	ErrExhausted = errors.New("sortkey: key space exhausted")
)

// Key is a 128-bit sort key. The zero Key is the smallest key. Keys are
// comparable with == and usable as map keys.
type Key struct {
	hi uint64 // timestamp_ns
	lo uint64 // node_id<<48 | actor_id<<40 | sequence
}

// New builds a key from its fields. It returns ErrSequenceOverflow (test it
// with errors.Is) if seq is larger than MaxSequence.
func New(tsNanos uint64, node uint16, actor uint8, seq uint64) (Key, error) {
	if seq > MaxSequence {
		return Key{}, fmt.Errorf("%w: %d > %d", ErrSequenceOverflow, seq, uint64(MaxSequence))
	}
	return makeKey(tsNanos, node, actor, seq), nil
}

// makeKey packs the fields; seq must already be within range.
func makeKey(tsNanos uint64, node uint16, actor uint8, seq uint64) Key {
	return Key{
		hi: tsNanos,
		lo: uint64(node)<<nodeShift | uint64(actor)<<actorShift | seq,
	}
}

// Timestamp returns the timestamp field, in nanoseconds.
func (k Key) Timestamp() uint64 { return k.hi }

// Node returns the node_id field.
func (k Key) Node() uint16 { return uint16(k.lo >> nodeShift) }

// Actor returns the actor_id field.
func (k Key) Actor() uint8 { return uint8(k.lo >> actorShift) }

// Sequence returns the 40-bit sequence field.
func (k Key) Sequence() uint64 { return k.lo & MaxSequence }

// Compare returns -1 if a sorts before b, 0 if they are equal and +1 if a
// sorts after b. It has the signature slices.SortFunc expects.
func Compare(a, b Key) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

// Less reports whether a sorts before b.
func Less(a, b Key) bool {
	return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo)
}

// Bytes returns the 16-byte big-endian encoding of k.
func (k Key) Bytes() [Size]byte {
	var b [Size]byte
	binary.BigEndian.PutUint64(b[0:8], k.hi)
	binary.BigEndian.PutUint64(b[8:16], k.lo)
	return b
}

// Append appends the 16-byte encoding of k to dst and returns the extended
// slice. It does not allocate when dst has room for 16 more bytes.
func (k Key) Append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, k.hi)
	return binary.BigEndian.AppendUint64(dst, k.lo)
}

// AppendBinary implements encoding.BinaryAppender. The error is always nil;
// Append is the same operation without it.
func (k Key) AppendBinary(dst []byte) ([]byte, error) { return k.Append(dst), nil }

// MarshalBinary implements encoding.BinaryMarshaler. The error is always
// nil.
func (k Key) MarshalBinary() ([]byte, error) { return k.Append(make([]byte, 0, Size)), nil }

// UnmarshalBinary implements encoding.BinaryUnmarshaler with the rules of
// FromBytes.
func (k *Key) UnmarshalBinary(b []byte) error {
	v, err := FromBytes(b)
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// FromBytes decodes a key from its 16-byte encoding. Any 16 bytes form a
// valid key; other lengths return an error wrapping ErrLength.
func FromBytes(b []byte) (Key, error) {
	if len(b) != Size {
		return Key{}, fmt.Errorf("%w: got %d", ErrLength, len(b))
	}
	return Key{
		hi: binary.BigEndian.Uint64(b[0:8]),
		lo: binary.BigEndian.Uint64(b[8:16]),
	}, nil
}

// String formats k as "ts=<ns> node=<n> actor=<a> seq=<s>".
func (k Key) String() string {
	return fmt.Sprintf("ts=%d node=%d actor=%d seq=%d", k.Timestamp(), k.Node(), k.Actor(), k.Sequence())
}
