// Package exportfile reads and writes the files of `lnc export` and
// `lnc import`: every record of a stretch of a topic with its type, key,
// value and timestamp, so that importing a file produces the same records.
//
// # Layout
//
// All integers are little-endian. A file is a header, any number of
// records and a trailer, and nothing after the trailer. Every part ends
// with a CRC-32C (Castagnoli) of its own bytes before the CRC.
//
// Header:
//
//	off  size field
//	  0     8 magic         "LNCEXPRT"
//	  8     2 version       1
//	 10     2 flags         0
//	 12     8 created_ns    export time, ns since the Unix epoch (informational)
//	 20     8 start_offset  topic offset the export started from (informational)
//	 28     2 name_len      length of the source topic's name
//	 30     n name          the source topic's name
//	 30+n   4 crc           CRC-32C of bytes 0 .. 29+n
//
// Record (28 + k + v + 4 bytes):
//
//	off  size field
//	  0     1 kind          'R' (0x52)
//	  1     1 type          the record's TLV type (lnc-core/tlv)
//	  2     1 flags         bit 0: has a key; bit 1: has a timestamp; others 0
//	  3     1 reserved      0
//	  4     8 offset        the record's offset in the source topic (informational)
//	 12     8 timestamp_ns  the record's timestamp, 0 without bit 1
//	 20     4 key_len k     0 without bit 0; at most 65535
//	 24     4 value_len v   at most 16 MiB
//	 28     k key
//	 28+k   v value
//	 28+k+v 4 crc           CRC-32C of bytes 0 .. 27+k+v
//
// The flags follow from the type and must agree with it: KeyValue (0x10)
// has a key, Timestamped (0x11) a timestamp, KeyTimestamped (0x12) both,
// every other type neither; Null (0xFF) has an empty value. Types 0x00
// (reserved) and 0x0F (the Go client's compressed batch, which it unpacks
// before a record is seen) never occur.
//
// Trailer (24 bytes):
//
//	off  size field
//	  0     1 kind          'E' (0x45)
//	  1     3 reserved      0
//	  4     8 count         number of records in the file
//	 12     8 next_offset   source offset just past the last record exported
//	 20     4 crc           CRC-32C of bytes 0..19
//
// A file cut short lacks its trailer, and a file with a record missing has
// the wrong count: both are refused by Reader.
//
// These constants and layouts are part of the file format. Change them only
// together with the version number.
package exportfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-core/tlv"
)

// Format constants.
const (
	Magic       = "LNCEXPRT"
	Version     = 1
	MaxValueLen = tlv.DefaultMaxValueLen
	MaxKeyLen   = tlv.MaxKeyLen

	kindRecord  = 'R'
	kindTrailer = 'E'

	flagKey       = 1 << 0
	flagTimestamp = 1 << 1

	headerFixed  = 30 // bytes before the name
	recordFixed  = 28 // bytes before the key
	trailerSize  = 24
	crcSize      = 4
	maxNameLen   = 1<<16 - 1
	typeCompress = tlv.Type(0x0F)
)

// ErrFormat marks a file that is not a valid export file; errors wrap it
// with the position and the detail.
var ErrFormat = errors.New("exportfile: invalid export file")

var le = binary.LittleEndian

// Header describes the export.
type Header struct {
	// Topic is the name of the topic the records came from.
	Topic string
	// CreatedNS is when the export was made.
	CreatedNS uint64
	// StartOffset is the topic offset the export started from.
	StartOffset uint64
}

// Record is one exported record.
type Record struct {
	// Type is the record's TLV type.
	Type tlv.Type
	// Key is the record's key; set (possibly empty) exactly when the type
	// carries one (HasKey).
	Key []byte
	// Value is the record's value.
	Value []byte
	// TimestampNS is the record's timestamp when the type carries one
	// (HasTimestamp), 0 otherwise.
	TimestampNS uint64
	// Offset is the record's offset in the source topic.
	Offset uint64
}

// HasKey reports whether records of type t carry a key.
func HasKey(t tlv.Type) bool { return t == tlv.TypeKeyValue || t == tlv.TypeKeyTimestamped }

// HasTimestamp reports whether records of type t carry a timestamp.
func HasTimestamp(t tlv.Type) bool { return t == tlv.TypeTimestamped || t == tlv.TypeKeyTimestamped }

// check validates r's fields against its type.
func (r *Record) check() error {
	switch {
	case r.Type == tlv.TypeReserved:
		return errors.New("record type 0x00 is reserved")
	case r.Type == typeCompress:
		return errors.New("record type 0x0F is the client's compressed batch and is never exported")
	case !HasKey(r.Type) && len(r.Key) > 0:
		return fmt.Errorf("record type %v carries no key", r.Type)
	case !HasTimestamp(r.Type) && r.TimestampNS != 0:
		return fmt.Errorf("record type %v carries no timestamp", r.Type)
	case r.Type == tlv.TypeNull && len(r.Value) > 0:
		return errors.New("a Null record has no value")
	case len(r.Key) > MaxKeyLen:
		return fmt.Errorf("key of %d bytes is over %d", len(r.Key), MaxKeyLen)
	case len(r.Value) > MaxValueLen:
		return fmt.Errorf("value of %d bytes is over %d", len(r.Value), MaxValueLen)
	}
	return nil
}

// Trailer closes a file.
type Trailer struct {
	// Count is the number of records in the file.
	Count uint64
	// NextOffset is the source offset just past the last record.
	NextOffset uint64
}

// Writer writes an export file.
type Writer struct {
	w     *bufio.Writer
	buf   []byte
	count uint64
	done  bool
}

// NewWriter writes h to w and returns a Writer for the records.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if len(h.Topic) > maxNameLen {
		return nil, fmt.Errorf("exportfile: topic name of %d bytes is too long", len(h.Topic))
	}
	b := make([]byte, headerFixed, headerFixed+len(h.Topic)+crcSize)
	copy(b, Magic)
	le.PutUint16(b[8:], Version)
	le.PutUint16(b[10:], 0)
	le.PutUint64(b[12:], h.CreatedNS)
	le.PutUint64(b[20:], h.StartOffset)
	le.PutUint16(b[28:], uint16(len(h.Topic)))
	b = append(b, h.Topic...)
	b = le.AppendUint32(b, checksum.Castagnoli.Sum(b))
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.Write(b); err != nil {
		return nil, fmt.Errorf("exportfile: write header: %w", err)
	}
	return &Writer{w: bw}, nil
}

// Write appends one record.
func (w *Writer) Write(r *Record) error {
	if w.done {
		return errors.New("exportfile: write after Close")
	}
	if err := r.check(); err != nil {
		return fmt.Errorf("exportfile: record at offset %d: %w", r.Offset, err)
	}
	var flags byte
	if HasKey(r.Type) {
		flags |= flagKey
	}
	if HasTimestamp(r.Type) {
		flags |= flagTimestamp
	}
	b := w.buf[:0]
	b = append(b, kindRecord, byte(r.Type), flags, 0)
	b = le.AppendUint64(b, r.Offset)
	b = le.AppendUint64(b, r.TimestampNS)
	b = le.AppendUint32(b, uint32(len(r.Key)))
	b = le.AppendUint32(b, uint32(len(r.Value)))
	crc := checksum.Castagnoli.Sum(b)
	crc = checksum.Castagnoli.Update(crc, r.Key)
	crc = checksum.Castagnoli.Update(crc, r.Value)
	w.buf = b
	for _, part := range [][]byte{b, r.Key, r.Value, le.AppendUint32(nil, crc)} {
		if _, err := w.w.Write(part); err != nil {
			return fmt.Errorf("exportfile: write record: %w", err)
		}
	}
	w.count++
	return nil
}

// Count returns how many records were written.
func (w *Writer) Count() uint64 { return w.count }

// Close writes the trailer, with nextOffset as the source offset just past
// the last record, and flushes. It does not close the underlying writer.
func (w *Writer) Close(nextOffset uint64) error {
	if w.done {
		return errors.New("exportfile: Close twice")
	}
	w.done = true
	b := make([]byte, 0, trailerSize)
	b = append(b, kindTrailer, 0, 0, 0)
	b = le.AppendUint64(b, w.count)
	b = le.AppendUint64(b, nextOffset)
	b = le.AppendUint32(b, checksum.Castagnoli.Sum(b))
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("exportfile: write trailer: %w", err)
	}
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("exportfile: flush: %w", err)
	}
	return nil
}

// Reader reads an export file record by record, checking every CRC.
type Reader struct {
	r       *bufio.Reader
	hdr     Header
	pos     int64 // file position of the next part
	count   uint64
	trailer *Trailer
	fixed   [recordFixed]byte
}

// NewReader reads and checks the header of the file in r.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{r: bufio.NewReaderSize(r, 256<<10)}
	b := make([]byte, headerFixed)
	got, err := io.ReadFull(rd.r, b[:len(Magic)])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("exportfile: read: %w", err)
	}
	if got < len(Magic) && string(b[:got]) == Magic[:got] {
		return nil, fmt.Errorf("%w: the file ends inside the header at byte %d (cut short?)", ErrFormat, got)
	}
	if string(b[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("%w: not an lnc export file (it starts with % x)", ErrFormat, b[:got])
	}
	rd.pos = int64(len(Magic))
	if err := rd.full(b[len(Magic):], "header"); err != nil {
		return nil, err
	}
	if v := le.Uint16(b[8:]); v != Version {
		return nil, fmt.Errorf("%w: version %d (this lnc reads version %d)", ErrFormat, v, Version)
	}
	if f := le.Uint16(b[10:]); f != 0 {
		return nil, fmt.Errorf("%w: unknown header flags %#04x", ErrFormat, f)
	}
	rd.pos = headerFixed
	n := int(le.Uint16(b[28:]))
	b = append(b, make([]byte, n+crcSize)...)
	if err := rd.full(b[headerFixed:], "header"); err != nil {
		return nil, err
	}
	if got, want := le.Uint32(b[headerFixed+n:]), checksum.Castagnoli.Sum(b[:headerFixed+n]); got != want {
		return nil, fmt.Errorf("%w: header CRC mismatch (stored %#08x, computed %#08x)", ErrFormat, got, want)
	}
	rd.hdr = Header{
		CreatedNS:   le.Uint64(b[12:]),
		StartOffset: le.Uint64(b[20:]),
		Topic:       string(b[headerFixed : headerFixed+n]),
	}
	rd.pos = int64(len(b))
	return rd, nil
}

// Header returns the file's header.
func (rd *Reader) Header() Header { return rd.hdr }

// Trailer returns the trailer once Next has returned io.EOF.
func (rd *Reader) Trailer() (Trailer, bool) {
	if rd.trailer == nil {
		return Trailer{}, false
	}
	return *rd.trailer, true
}

// full reads exactly len(b) bytes; running out is an error naming what.
func (rd *Reader) full(b []byte, what string) error {
	n, err := io.ReadFull(rd.r, b)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: the file ends inside the %s at byte %d (cut short?)", ErrFormat, what, rd.pos+int64(n))
		}
		return fmt.Errorf("exportfile: read: %w", err)
	}
	return nil
}

// Next returns the next record. Key and Value are new slices for every
// record. After the last record it checks the trailer and that nothing
// follows it, and returns io.EOF.
func (rd *Reader) Next() (Record, error) {
	if rd.trailer != nil {
		return Record{}, io.EOF
	}
	at := rd.pos
	kind, err := rd.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Record{}, fmt.Errorf("%w: the file ends at byte %d after %d records without its trailer (cut short?)", ErrFormat, at, rd.count)
		}
		return Record{}, fmt.Errorf("exportfile: read: %w", err)
	}
	switch kind {
	case kindRecord:
		return rd.record(at)
	case kindTrailer:
		return Record{}, rd.readTrailer(at)
	}
	return Record{}, fmt.Errorf("%w: byte %d: unknown part kind %#02x", ErrFormat, at, kind)
}

func (rd *Reader) record(at int64) (Record, error) {
	b := rd.fixed[:]
	b[0] = kindRecord
	rd.pos++
	if err := rd.full(b[1:], "record header"); err != nil {
		return Record{}, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: record %d at byte %d: %w", ErrFormat, rd.count+1, at, fmt.Errorf(format, args...))
	}
	r := Record{
		Type:        tlv.Type(b[1]),
		Offset:      le.Uint64(b[4:]),
		TimestampNS: le.Uint64(b[12:]),
	}
	flags := b[2]
	keyLen, valLen := le.Uint32(b[20:]), le.Uint32(b[24:])
	switch {
	case flags&^(flagKey|flagTimestamp) != 0 || b[3] != 0:
		return Record{}, bad("unknown flags %#02x or reserved byte %#02x", flags, b[3])
	case (flags&flagKey != 0) != HasKey(r.Type):
		return Record{}, bad("key flag does not match type %v", r.Type)
	case (flags&flagTimestamp != 0) != HasTimestamp(r.Type):
		return Record{}, bad("timestamp flag does not match type %v", r.Type)
	case flags&flagKey == 0 && keyLen != 0:
		return Record{}, bad("key of %d bytes without the key flag", keyLen)
	case keyLen > MaxKeyLen || valLen > MaxValueLen:
		return Record{}, bad("key length %d or value length %d over the limit", keyLen, valLen)
	}
	body := make([]byte, int(keyLen)+int(valLen)+crcSize)
	rd.pos += int64(len(b) - 1)
	if err := rd.full(body, "record"); err != nil {
		return Record{}, err
	}
	rd.pos += int64(len(body))
	crc := checksum.Castagnoli.Sum(b)
	crc = checksum.Castagnoli.Update(crc, body[:keyLen+valLen])
	if stored := le.Uint32(body[keyLen+valLen:]); stored != crc {
		return Record{}, bad("CRC mismatch (stored %#08x, computed %#08x)", stored, crc)
	}
	if HasKey(r.Type) {
		r.Key = body[:keyLen:keyLen]
	}
	r.Value = body[keyLen : keyLen+valLen : keyLen+valLen]
	if err := r.check(); err != nil {
		return Record{}, bad("%w", err)
	}
	rd.count++
	return r, nil
}

func (rd *Reader) readTrailer(at int64) error {
	b := make([]byte, trailerSize)
	b[0] = kindTrailer
	rd.pos++
	if err := rd.full(b[1:], "trailer"); err != nil {
		return err
	}
	rd.pos += trailerSize - 1
	if got, want := le.Uint32(b[20:]), checksum.Castagnoli.Sum(b[:20]); got != want {
		return fmt.Errorf("%w: trailer at byte %d: CRC mismatch (stored %#08x, computed %#08x)", ErrFormat, at, got, want)
	}
	if b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return fmt.Errorf("%w: trailer at byte %d: reserved bytes are not zero", ErrFormat, at)
	}
	t := Trailer{Count: le.Uint64(b[4:]), NextOffset: le.Uint64(b[12:])}
	if t.Count != rd.count {
		return fmt.Errorf("%w: the trailer counts %d records, the file holds %d", ErrFormat, t.Count, rd.count)
	}
	if _, err := rd.r.ReadByte(); err == nil {
		return fmt.Errorf("%w: bytes after the trailer at byte %d", ErrFormat, rd.pos)
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("exportfile: read: %w", err)
	}
	rd.trailer = &t
	return io.EOF
}
