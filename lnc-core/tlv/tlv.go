// Package tlv encodes and decodes LANCE TLV records, the framing producers
// and consumers use inside an ingest payload (LWP specification §8, digest
// §12). The server never parses them; they matter to clients, tools and
// offline index rebuilds.
//
// # Record layout
//
// Records are packed back to back with no padding. Integers are
// little-endian.
//
//	offset 0   type    u8
//	offset 1   length  u32 LE   length of value only
//	offset 5   value   [length]byte
//
// "hello" and "world" as two RawData records are the 20 bytes
//
//	01 05 00 00 00 68 65 6C 6C 6F  01 05 00 00 00 77 6F 72 6C 64
//
// # Types
//
// The type numbers are the specification's (not the Rust lnc-core or
// lnc-client tables, which disagree with it and with each other):
//
//	0x00        reserved, never valid
//	0x01        RawData
//	0x02        JSON
//	0x03        MessagePack
//	0x04        Protobuf
//	0x05        Avro
//	0x10        KeyValue        key_len u16 LE | key | value
//	0x11        Timestamped     ts_ns u64 LE | data
//	0x12        KeyTimestamped  ts_ns u64 LE | key_len u16 LE | key | value
//	0x80..0xFE  user-defined
//	0xFF        Null (tombstone), length must be 0: FF 00 00 00 00
//
// For the structured types the length covers the whole value, fields
// included; the trailing value or data takes whatever bytes remain. Key
// "k" with value "v" is 10 04 00 00 00 01 00 6B 76.
//
// The bytes 0x06..0x0F and 0x13..0x7F are not assigned. They are still
// framed by the same 5-byte header, so the Iterator returns such records
// unchanged (Type.Known reports false) and Append writes them: a reader
// built today can step over types defined later. Only 0x00 is refused.
// Note that 0xFF is never an "extended header" here, unlike in the Rust
// lnc-core parser.
//
// # Limits
//
// A length is a u32, so the format cannot describe a value over 4 GiB.
// Readers and writers default to a 16 MiB limit (DefaultMaxValueLen), the
// specification's maximum record; see Encoder and NewIteratorMax to change
// it. The Iterator checks the declared length against its limit from the
// header alone, before looking at the value, so a corrupt length cannot make
// it read or allocate past the limit.
//
// # Errors and ownership
//
// Decoding errors are *Error values carrying the byte offset of the record
// that failed; test the cause with errors.Is against ErrTruncated,
// ErrOversize, ErrNullWithValue, ErrReserved, ErrBadLayout or ErrWrongType.
// Record values and the slices returned by its decoders alias the buffer
// being iterated: nothing is copied, and they are valid only as long as the
// caller keeps that buffer unchanged.
package tlv

import (
	"errors"
	"fmt"
)

// Sizes and limits of the format.
const (
	// HeaderSize is the length of a record header: type u8 + length u32.
	HeaderSize = 5
	// MaxKeyLen is the longest key of a KeyValue or KeyTimestamped
	// record, limited by its u16 length field.
	MaxKeyLen = 1<<16 - 1
	// DefaultMaxValueLen is the default limit on a value's length (16
	// MiB), used by Append and NewIterator.
	DefaultMaxValueLen = 16 << 20
	// timestampSize is the ts_ns field of the timestamped types.
	timestampSize = 8
	// keyLenSize is the key_len field of the keyed types.
	keyLenSize = 2
)

// Type is a record's type byte.
type Type uint8

// Record types, numbered as in the LWP specification. These values are
// written on the wire and must never change.
const (
	// TypeReserved (0x00) is not a valid record type.
	TypeReserved Type = 0x00
	// TypeRawData is opaque bytes.
	TypeRawData Type = 0x01
	// TypeJSON is a JSON document.
	TypeJSON Type = 0x02
	// TypeMessagePack is a MessagePack document.
	TypeMessagePack Type = 0x03
	// TypeProtobuf is a Protocol Buffers message.
	TypeProtobuf Type = 0x04
	// TypeAvro is an Avro datum.
	TypeAvro Type = 0x05
	// TypeKeyValue is key_len u16 LE | key | value.
	TypeKeyValue Type = 0x10
	// TypeTimestamped is ts_ns u64 LE | data.
	TypeTimestamped Type = 0x11
	// TypeKeyTimestamped is ts_ns u64 LE | key_len u16 LE | key | value.
	TypeKeyTimestamped Type = 0x12
	// TypeUserMin is the first user-defined type.
	TypeUserMin Type = 0x80
	// TypeUserMax is the last user-defined type.
	TypeUserMax Type = 0xFE
	// TypeNull is a tombstone; its length is always 0.
	TypeNull Type = 0xFF
)

// Known reports whether the specification assigns t: the standard types,
// the user-defined range and Null. It is false for the reserved 0x00 and
// for the unassigned 0x06..0x0F and 0x13..0x7F.
func (t Type) Known() bool {
	switch {
	case t >= TypeRawData && t <= TypeAvro,
		t >= TypeKeyValue && t <= TypeKeyTimestamped,
		t >= TypeUserMin:
		return true
	}
	return false
}

// User reports whether t is in the user-defined range 0x80..0xFE.
func (t Type) User() bool { return t >= TypeUserMin && t <= TypeUserMax }

// String returns the specification's name for t, "User(0xNN)" for a
// user-defined type, "Reserved(0x00)" or "Unassigned(0xNN)".
func (t Type) String() string {
	switch t {
	case TypeReserved:
		return "Reserved(0x00)"
	case TypeRawData:
		return "RawData"
	case TypeJSON:
		return "JSON"
	case TypeMessagePack:
		return "MessagePack"
	case TypeProtobuf:
		return "Protobuf"
	case TypeAvro:
		return "Avro"
	case TypeKeyValue:
		return "KeyValue"
	case TypeTimestamped:
		return "Timestamped"
	case TypeKeyTimestamped:
		return "KeyTimestamped"
	case TypeNull:
		return "Null"
	}
	if t.User() {
		return fmt.Sprintf("User(0x%02X)", uint8(t))
	}
	return fmt.Sprintf("Unassigned(0x%02X)", uint8(t))
}

// Sentinel errors. Encoding functions return them wrapped with details;
// decoding returns them inside an *Error. Always test with errors.Is.
var (
	// ErrTruncated: a header or value runs past the end of the buffer.
	ErrTruncated = errors.New("tlv: truncated record")
	// ErrOversize: a value is longer than the limit in force.
	ErrOversize = errors.New("tlv: value too large")
	// ErrNullWithValue: a Null (0xFF) record with a non-zero length.
	ErrNullWithValue = errors.New("tlv: null record with a value")
	// ErrReserved: the reserved type 0x00.
	ErrReserved = errors.New("tlv: reserved record type 0x00")
	// ErrBadLayout: a structured value too short for its fields.
	ErrBadLayout = errors.New("tlv: malformed structured value")
	// ErrWrongType: a structured decoder called on a record of another
	// type.
	ErrWrongType = errors.New("tlv: wrong record type for decoder")
	// ErrKeyTooLong: a key over MaxKeyLen bytes given to an encoder.
	ErrKeyTooLong = errors.New("tlv: key longer than 65535 bytes")
)

// Error is a decoding error at a known position.
type Error struct {
	// Offset is the position, within the buffer given to the Iterator, of
	// the header of the record that failed.
	Offset int
	// Err is one of the package's sentinel errors, possibly wrapped with
	// details.
	Err error
}

// Error formats the cause followed by the offset.
func (e *Error) Error() string { return fmt.Sprintf("%v (at offset %d)", e.Err, e.Offset) }

// Unwrap returns e.Err, so errors.Is sees the sentinel.
func (e *Error) Unwrap() error { return e.Err }
