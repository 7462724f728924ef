package tlv

import (
	"encoding/binary"
	"fmt"
)

// Record is one decoded record. Value aliases the iterated buffer; its
// capacity is cut at the record's end, so appending to it copies instead of
// overwriting the next record.
type Record struct {
	// Type is the record's type byte; it may be unassigned (see
	// Type.Known), never TypeReserved.
	Type Type
	// Value is the record's value, without the header.
	Value []byte
	// Offset is the position of the record's header in the iterated
	// buffer.
	Offset int
}

// Size returns the record's encoded length, header included.
func (r Record) Size() int { return HeaderSize + len(r.Value) }

// layoutError builds the *Error a structured decoder returns for a value
// too short for its fields.
func (r Record) layoutError(detail string) error {
	return &Error{Offset: r.Offset, Err: fmt.Errorf("%w: %v %s", ErrBadLayout, r.Type, detail)}
}

func (r Record) wrongType(want Type) error {
	return &Error{Offset: r.Offset, Err: fmt.Errorf("%w: %v record, decoder for %v", ErrWrongType, r.Type, want)}
}

// splitKey reads key_len u16 LE | key | rest from b.
func (r Record) splitKey(b []byte) (key, rest []byte, err error) {
	if len(b) < keyLenSize {
		return nil, nil, r.layoutError(fmt.Sprintf("value of %d bytes has no room for key_len", len(r.Value)))
	}
	n := int(binary.LittleEndian.Uint16(b))
	b = b[keyLenSize:]
	if n > len(b) {
		return nil, nil, r.layoutError(fmt.Sprintf("key_len %d but only %d bytes follow", n, len(b)))
	}
	return b[:n:n], b[n:], nil
}

// KeyValue decodes a KeyValue record (key_len u16 LE | key | value). Both
// slices alias the buffer. Errors are *Error values wrapping ErrWrongType if
// r is not a KeyValue record, or ErrBadLayout if the value is shorter than
// its key_len field and key.
func (r Record) KeyValue() (key, value []byte, err error) {
	if r.Type != TypeKeyValue {
		return nil, nil, r.wrongType(TypeKeyValue)
	}
	return r.splitKey(r.Value)
}

// Timestamped decodes a Timestamped record (ts_ns u64 LE | data). data
// aliases the buffer. Errors are *Error values wrapping ErrWrongType or
// ErrBadLayout (value shorter than 8 bytes).
func (r Record) Timestamped() (tsNanos uint64, data []byte, err error) {
	if r.Type != TypeTimestamped {
		return 0, nil, r.wrongType(TypeTimestamped)
	}
	if len(r.Value) < timestampSize {
		return 0, nil, r.layoutError(fmt.Sprintf("value of %d bytes has no room for ts_ns", len(r.Value)))
	}
	return binary.LittleEndian.Uint64(r.Value), r.Value[timestampSize:], nil
}

// KeyTimestamped decodes a KeyTimestamped record
// (ts_ns u64 LE | key_len u16 LE | key | value). The slices alias the
// buffer. Errors are *Error values wrapping ErrWrongType or ErrBadLayout.
func (r Record) KeyTimestamped() (tsNanos uint64, key, value []byte, err error) {
	if r.Type != TypeKeyTimestamped {
		return 0, nil, nil, r.wrongType(TypeKeyTimestamped)
	}
	if len(r.Value) < timestampSize {
		return 0, nil, nil, r.layoutError(fmt.Sprintf("value of %d bytes has no room for ts_ns", len(r.Value)))
	}
	key, value, err = r.splitKey(r.Value[timestampSize:])
	if err != nil {
		return 0, nil, nil, err
	}
	return binary.LittleEndian.Uint64(r.Value), key, value, nil
}

// Iterator walks the records of a buffer without copying or allocating:
//
//	it := tlv.NewIterator(buf)
//	for it.Next() {
//		r := it.Record()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
//
// It stops at the end of the buffer or at the first malformed record; it
// does not resynchronise after an error. An Iterator is a small value: keep
// it in a local variable (its methods need an addressable Iterator) and do
// not share it between goroutines.
type Iterator struct {
	buf    []byte
	off    int    // start of the next record to read
	maxLen uint64 // value length limit
	rec    Record
	err    error
}

// NewIterator returns an Iterator over buf with the DefaultMaxValueLen
// limit.
func NewIterator(buf []byte) Iterator {
	return NewIteratorMax(buf, DefaultMaxValueLen)
}

// NewIteratorMax returns an Iterator over buf that rejects, with
// ErrOversize, any record whose declared value length is over maxValueLen.
// Zero means DefaultMaxValueLen.
func NewIteratorMax(buf []byte, maxValueLen uint32) Iterator {
	limit := uint64(maxValueLen)
	if limit == 0 {
		limit = DefaultMaxValueLen
	}
	return Iterator{buf: buf, maxLen: limit}
}

// Next advances to the next record and reports whether there is one. It
// returns false at the end of the buffer and on the first error (see Err),
// and keeps returning false after that.
//
// A record is checked in this order, using the header alone for the first
// three: type 0x00 (ErrReserved), Null with a non-zero length
// (ErrNullWithValue), declared length over the limit (ErrOversize), then
// header or value past the end of the buffer (ErrTruncated). A header cut
// short (fewer than 5 bytes left) is ErrTruncated.
func (it *Iterator) Next() bool {
	if it.err != nil || it.off >= len(it.buf) {
		return false
	}
	rest := it.buf[it.off:]
	if len(rest) < HeaderSize {
		return it.fail(fmt.Errorf("%w: %d header bytes of %d", ErrTruncated, len(rest), HeaderSize))
	}
	t := Type(rest[0])
	n := uint64(binary.LittleEndian.Uint32(rest[1:HeaderSize]))
	switch {
	case t == TypeReserved:
		return it.fail(ErrReserved)
	case t == TypeNull && n != 0:
		return it.fail(fmt.Errorf("%w: length %d", ErrNullWithValue, n))
	case n > it.maxLen:
		return it.fail(fmt.Errorf("%w: length %d, limit %d", ErrOversize, n, it.maxLen))
	case n > uint64(len(rest)-HeaderSize):
		return it.fail(fmt.Errorf("%w: length %d, %d bytes left", ErrTruncated, n, len(rest)-HeaderSize))
	}
	end := HeaderSize + int(n)
	it.rec = Record{Type: t, Value: rest[HeaderSize:end:end], Offset: it.off}
	it.off += end
	return true
}

func (it *Iterator) fail(err error) bool {
	it.err = &Error{Offset: it.off, Err: err}
	it.rec = Record{}
	return false
}

// Record returns the record found by the last successful Next.
func (it *Iterator) Record() Record { return it.rec }

// Err returns the error that stopped the iteration, an *Error, or nil if
// the iteration is still going or reached the end of the buffer cleanly.
func (it *Iterator) Err() error { return it.err }

// Consumed returns how many bytes of the buffer the records returned so far
// occupy. After an error it is the offset of the bad record, i.e. the
// length of the valid prefix: the point at which a recovery scan would
// truncate.
func (it *Iterator) Consumed() int { return it.off }

// Count returns the number of records in buf, with the default limit. If
// buf is not a whole number of valid records it returns the count of
// records before the first bad one and the *Error for it.
func Count(buf []byte) (int, error) {
	it := NewIterator(buf)
	n := 0
	for it.Next() {
		n++
	}
	return n, it.Err()
}
