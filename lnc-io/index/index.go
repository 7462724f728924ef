// Package index encodes the batch index (.idx) that sits beside each
// segment file (.lnc) of a topic.
//
// A segment holds the payloads of accepted batches back to back and nothing
// else, so that it can be copied and served byte for byte. The index is what
// knows where each batch starts and ends, what its CRC is, when it was
// produced and its 128-bit sort key. It serves offset lookups, timestamp
// seeks, batch-aligned reads and recovery.
//
// # File layout
//
// All integers are little-endian except the sort key, which is big-endian so
// that its bytes sort like keys. A file is a 32-byte header followed by
// 64-byte entries, one per batch, in offset order.
//
// Header:
//
//	off size field
//	  0    4 magic         "LNCX"
//	  4    2 version       1
//	  6    2 flags         0 (reserved)
//	  8    8 base_offset   topic byte offset of the segment's first byte
//	 16    8 created_ns    creation time, ns since the Unix epoch (informational)
//	 24    4 reserved      0
//	 28    4 header_crc    CRC-32C of bytes 0..27
//
// Entry:
//
//	off size field
//	  0    8 offset        topic byte offset of the batch's first byte
//	  8    4 length        batch length in bytes (> 0)
//	 12    4 crc           CRC of the batch bytes, in the dialect named by flags
//	 16    8 timestamp_ns  producer timestamp (from the ingest header)
//	 24   16 sort_key      128-bit sort key, big-endian
//	 40    4 record_count  records the producer said the batch holds
//	 44    2 flags         bit 0: crc is CRC-32/IEEE (else CRC-32C); others 0
//	 46   14 reserved      0 in version 1
//	 60    4 entry_crc     CRC-32C of bytes 0..59
//
// The batch CRC is the payload CRC the producer sent and the server checked,
// in the producer's dialect, so storing it costs no second pass over the
// bytes. An entry whose entry_crc fails was torn or damaged.
//
// These constants and layouts are part of the storage format. Change them
// only together with the version number.
package index

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-core/sortkey"
)

// Format constants.
const (
	HeaderSize = 32
	EntrySize  = 64
	Version    = 1
)

// Magic opens every index file.
var Magic = [4]byte{'L', 'N', 'C', 'X'}

// Entry flag bits.
const (
	// FlagCRCIEEE marks a batch CRC computed with CRC-32/IEEE; without it
	// the CRC is CRC-32C.
	FlagCRCIEEE uint16 = 1 << 0
	// FlagProducer marks an entry of an idempotent producer's batch: bytes
	// 46..53 hold its producer id and bytes 54..59 its sequence (u48).
	FlagProducer uint16 = 1 << 1
	// FlagCommitEnd marks the last entry that one group commit wrote: an
	// entry after it was written after that commit was durable.
	FlagCommitEnd uint16 = 1 << 2
	knownFlags           = FlagCRCIEEE | FlagProducer | FlagCommitEnd
)

// Errors of the decoders. They come wrapped with detail; use errors.Is.
var (
	ErrShort     = errors.New("index: short buffer")
	ErrMagic     = errors.New("index: bad magic")
	ErrVersion   = errors.New("index: unsupported version")
	ErrHeaderCRC = errors.New("index: header CRC mismatch")
	ErrEntryCRC  = errors.New("index: entry CRC mismatch")
	ErrEntry     = errors.New("index: invalid entry")
)

var le = binary.LittleEndian

// Header is the decoded file header.
type Header struct {
	BaseOffset uint64
	CreatedNS  uint64
}

// AppendHeader appends the 32-byte header for h to dst.
func AppendHeader(dst []byte, h Header) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	b := dst[n:]
	copy(b, Magic[:])
	le.PutUint16(b[4:], Version)
	le.PutUint16(b[6:], 0)
	le.PutUint64(b[8:], h.BaseOffset)
	le.PutUint64(b[16:], h.CreatedNS)
	le.PutUint32(b[24:], 0)
	le.PutUint32(b[28:], checksum.Castagnoli.Sum(b[:28]))
	return dst
}

// DecodeHeader decodes the header at the start of b.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: header needs %d bytes, have %d", ErrShort, HeaderSize, len(b))
	}
	if [4]byte(b[:4]) != Magic {
		return Header{}, fmt.Errorf("%w: % x", ErrMagic, b[:4])
	}
	if v := le.Uint16(b[4:]); v != Version {
		return Header{}, fmt.Errorf("%w: %d", ErrVersion, v)
	}
	if got, want := le.Uint32(b[28:]), checksum.Castagnoli.Sum(b[:28]); got != want {
		return Header{}, fmt.Errorf("%w: stored %#08x, computed %#08x", ErrHeaderCRC, got, want)
	}
	if le.Uint16(b[6:]) != 0 || le.Uint32(b[24:]) != 0 {
		return Header{}, fmt.Errorf("%w: reserved header fields are not zero", ErrVersion)
	}
	return Header{BaseOffset: le.Uint64(b[8:]), CreatedNS: le.Uint64(b[16:])}, nil
}

// Entry describes one batch.
type Entry struct {
	Offset      uint64
	Length      uint32
	CRC         uint32
	TimestampNS uint64
	SortKey     sortkey.Key
	RecordCount uint32
	// Dialect is the dialect of CRC: checksum.IEEE or checksum.Castagnoli.
	Dialect checksum.Dialect
	// ProducerID and Sequence identify an idempotent producer's batch
	// (docs/LWP.md §7); both are 0 for any other batch. A non-zero
	// ProducerID needs a Sequence in 1..MaxSequence.
	ProducerID uint64
	Sequence   uint64
	// CommitEnd is set on the last entry of a group commit (FlagCommitEnd).
	CommitEnd bool
}

// MaxSequence is the largest producer sequence an entry holds (48 bits).
const MaxSequence = 1<<48 - 1

// End returns the offset just past the batch.
func (e *Entry) End() uint64 { return e.Offset + uint64(e.Length) }

// Validate checks the fields an encoder must not write: a zero length, an
// end past 2^64-1, an unknown dialect.
func (e *Entry) Validate() error {
	switch {
	case e.Length == 0:
		return fmt.Errorf("%w: zero length at offset %d", ErrEntry, e.Offset)
	case e.Offset+uint64(e.Length) < e.Offset:
		return fmt.Errorf("%w: offset %d + length %d overflows", ErrEntry, e.Offset, e.Length)
	case !e.Dialect.Valid():
		return fmt.Errorf("%w: crc dialect %v", ErrEntry, e.Dialect)
	case e.ProducerID == 0 && e.Sequence != 0:
		return fmt.Errorf("%w: sequence %d without a producer id", ErrEntry, e.Sequence)
	case e.ProducerID != 0 && (e.Sequence == 0 || e.Sequence > MaxSequence):
		return fmt.Errorf("%w: producer sequence %d outside 1..2^48-1", ErrEntry, e.Sequence)
	}
	return nil
}

// AppendEntry appends the 64-byte encoding of e to dst. e must be valid (see
// Validate); AppendEntry panics otherwise, since entries are built by the
// log from batches it accepted.
func AppendEntry(dst []byte, e *Entry) []byte {
	if err := e.Validate(); err != nil {
		panic(err)
	}
	n := len(dst)
	dst = append(dst, make([]byte, EntrySize)...)
	b := dst[n : n+EntrySize]
	le.PutUint64(b[0:], e.Offset)
	le.PutUint32(b[8:], e.Length)
	le.PutUint32(b[12:], e.CRC)
	le.PutUint64(b[16:], e.TimestampNS)
	key := e.SortKey.Bytes()
	copy(b[24:40], key[:])
	le.PutUint32(b[40:], e.RecordCount)
	var flags uint16
	if e.Dialect == checksum.IEEE {
		flags |= FlagCRCIEEE
	}
	if e.CommitEnd {
		flags |= FlagCommitEnd
	}
	if e.ProducerID != 0 {
		flags |= FlagProducer
		le.PutUint64(b[46:], e.ProducerID)
		putUint48(b[54:], e.Sequence)
	}
	le.PutUint16(b[44:], flags)
	// Without FlagProducer, bytes 46..59 are reserved and stay zero.
	le.PutUint32(b[60:], checksum.Castagnoli.Sum(b[:60]))
	return dst
}

// DecodeEntry decodes the entry at the start of b, checking its CRC and
// fields.
func DecodeEntry(b []byte) (Entry, error) {
	if len(b) < EntrySize {
		return Entry{}, fmt.Errorf("%w: entry needs %d bytes, have %d", ErrShort, EntrySize, len(b))
	}
	b = b[:EntrySize]
	if got, want := le.Uint32(b[60:]), checksum.Castagnoli.Sum(b[:60]); got != want {
		return Entry{}, fmt.Errorf("%w: stored %#08x, computed %#08x", ErrEntryCRC, got, want)
	}
	flags := le.Uint16(b[44:])
	if flags&^knownFlags != 0 {
		return Entry{}, fmt.Errorf("%w: unknown flags %#04x", ErrEntry, flags)
	}
	if flags&FlagProducer == 0 {
		for _, c := range b[46:60] {
			if c != 0 {
				return Entry{}, fmt.Errorf("%w: reserved bytes are not zero", ErrEntry)
			}
		}
	}
	key, err := sortkey.FromBytes(b[24:40])
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrEntry, err)
	}
	e := Entry{
		Offset:      le.Uint64(b[0:]),
		Length:      le.Uint32(b[8:]),
		CRC:         le.Uint32(b[12:]),
		TimestampNS: le.Uint64(b[16:]),
		SortKey:     key,
		RecordCount: le.Uint32(b[40:]),
		Dialect:     checksum.Castagnoli,
	}
	if flags&FlagCRCIEEE != 0 {
		e.Dialect = checksum.IEEE
	}
	e.CommitEnd = flags&FlagCommitEnd != 0
	if flags&FlagProducer != 0 {
		e.ProducerID, e.Sequence = le.Uint64(b[46:]), uint48(b[54:])
		if e.ProducerID == 0 {
			return Entry{}, fmt.Errorf("%w: producer flag with producer id 0", ErrEntry)
		}
	}
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

func putUint48(b []byte, v uint64) {
	le.PutUint32(b, uint32(v))
	le.PutUint16(b[4:], uint16(v>>32))
}

func uint48(b []byte) uint64 { return uint64(le.Uint32(b)) | uint64(le.Uint16(b[4:]))<<32 }

// EntryOffset returns the file position of entry i.
func EntryOffset(i int) int64 { return HeaderSize + int64(i)*EntrySize }
