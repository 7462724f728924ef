package tlv

import (
	"encoding/binary"
	"fmt"
)

// Encoder appends records to caller-owned buffers. Its methods never
// allocate when dst has enough spare capacity, and on error they return dst
// unchanged. The zero Encoder uses DefaultMaxValueLen; the package-level
// Append functions are the zero Encoder's methods.
type Encoder struct {
	// MaxValueLen is the longest value, in bytes, the encoder writes; for
	// the structured types it counts the whole value including the
	// timestamp and key fields, as the header's length does. Zero means
	// DefaultMaxValueLen; math.MaxUint32 allows every length the format
	// can express. Keep it no larger than the readers' limit, or they will
	// reject the records with ErrOversize.
	MaxValueLen uint32
}

func (e Encoder) limit() uint64 {
	if e.MaxValueLen == 0 {
		return DefaultMaxValueLen
	}
	return uint64(e.MaxValueLen)
}

// checkLen validates the total value length of a record of type t.
func (e Encoder) checkLen(t Type, n uint64) error {
	switch {
	case t == TypeReserved:
		return ErrReserved
	case t == TypeNull && n != 0:
		return fmt.Errorf("%w: %d bytes", ErrNullWithValue, n)
	case n > e.limit():
		return fmt.Errorf("%w: %d bytes, limit %d", ErrOversize, n, e.limit())
	}
	return nil
}

func checkKey(key []byte) error {
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes", ErrKeyTooLong, len(key))
	}
	return nil
}

// appendHeader writes the 5-byte header; n has been checked by checkLen,
// which never lets it past MaxUint32.
func appendHeader(dst []byte, t Type, n uint64) []byte {
	dst = append(dst, byte(t))
	return binary.LittleEndian.AppendUint32(dst, uint32(n))
}

// Append appends one record of type t holding value. It accepts every type
// but the reserved 0x00, including unassigned ones, and writes value as
// given: it does not check the inner layout of the structured types (use
// AppendKeyValue and friends for those). Errors wrap ErrReserved,
// ErrNullWithValue (TypeNull with a non-empty value) or ErrOversize.
func (e Encoder) Append(dst []byte, t Type, value []byte) ([]byte, error) {
	if err := e.checkLen(t, uint64(len(value))); err != nil {
		return dst, err
	}
	dst = appendHeader(dst, t, uint64(len(value)))
	return append(dst, value...), nil
}

// AppendKeyValue appends a KeyValue record: key_len u16 LE | key | value.
// Errors wrap ErrKeyTooLong or ErrOversize.
func (e Encoder) AppendKeyValue(dst, key, value []byte) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return dst, err
	}
	n := keyLenSize + uint64(len(key)) + uint64(len(value))
	if err := e.checkLen(TypeKeyValue, n); err != nil {
		return dst, err
	}
	dst = appendHeader(dst, TypeKeyValue, n)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	return append(dst, value...), nil
}

// AppendTimestamped appends a Timestamped record: ts_ns u64 LE | data.
// The error wraps ErrOversize.
func (e Encoder) AppendTimestamped(dst []byte, tsNanos uint64, data []byte) ([]byte, error) {
	n := timestampSize + uint64(len(data))
	if err := e.checkLen(TypeTimestamped, n); err != nil {
		return dst, err
	}
	dst = appendHeader(dst, TypeTimestamped, n)
	dst = binary.LittleEndian.AppendUint64(dst, tsNanos)
	return append(dst, data...), nil
}

// AppendKeyTimestamped appends a KeyTimestamped record:
// ts_ns u64 LE | key_len u16 LE | key | value. Errors wrap ErrKeyTooLong
// or ErrOversize.
func (e Encoder) AppendKeyTimestamped(dst []byte, tsNanos uint64, key, value []byte) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return dst, err
	}
	n := timestampSize + keyLenSize + uint64(len(key)) + uint64(len(value))
	if err := e.checkLen(TypeKeyTimestamped, n); err != nil {
		return dst, err
	}
	dst = appendHeader(dst, TypeKeyTimestamped, n)
	dst = binary.LittleEndian.AppendUint64(dst, tsNanos)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	return append(dst, value...), nil
}

// Append appends one record with the default limit; see Encoder.Append.
func Append(dst []byte, t Type, value []byte) ([]byte, error) {
	return Encoder{}.Append(dst, t, value)
}

// AppendKeyValue appends a KeyValue record with the default limit; see
// Encoder.AppendKeyValue.
func AppendKeyValue(dst, key, value []byte) ([]byte, error) {
	return Encoder{}.AppendKeyValue(dst, key, value)
}

// AppendTimestamped appends a Timestamped record with the default limit;
// see Encoder.AppendTimestamped.
func AppendTimestamped(dst []byte, tsNanos uint64, data []byte) ([]byte, error) {
	return Encoder{}.AppendTimestamped(dst, tsNanos, data)
}

// AppendKeyTimestamped appends a KeyTimestamped record with the default
// limit; see Encoder.AppendKeyTimestamped.
func AppendKeyTimestamped(dst []byte, tsNanos uint64, key, value []byte) ([]byte, error) {
	return Encoder{}.AppendKeyTimestamped(dst, tsNanos, key, value)
}

// AppendNull appends a Null (tombstone) record, FF 00 00 00 00.
func AppendNull(dst []byte) []byte {
	return append(dst, byte(TypeNull), 0, 0, 0, 0)
}
