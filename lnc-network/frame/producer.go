package frame

import (
	"encoding/binary"
	"errors"
)

// ReservedIdempotent is a LANCE-Go extension bit in the reserved bytes
// (6..7) of an ingest frame: the payload starts with a producer record
// (AppendProducerRecord) that names the producer and the batch's sequence,
// and the server stores the batch at most once per (producer, sequence)
// within its de-duplication window (docs/LWP.md §7). The Rust client never
// sets the bit.
const ReservedIdempotent uint16 = 0x0002

// The producer record: a TLV record (docs/LWP.md §6) of type 0x0E with a
// 16-byte value,
//
//	+0  u8  type 0x0E
//	+1  u32 length 16
//	+5  u64 producer_id  non-zero, chosen at random by the producer
//	+13 u64 sequence     1..2^48-1, increasing per producer
//
// Type 0x0E lies in the block the TLV specification leaves unassigned, so
// readers that do not know it step over the record.
const (
	ProducerRecordType = 0x0E
	ProducerRecordSize = 21
	// MaxProducerSequence is the largest sequence a producer record may
	// carry: the server keeps 48 bits of it in its index.
	MaxProducerSequence = 1<<48 - 1
)

// ErrProducerRecord is returned by ParseProducerRecord for a payload that
// does not start with a valid producer record.
var ErrProducerRecord = errors.New("lwp: idempotent ingest without a valid producer record")

// AppendProducerRecord appends a producer record to dst.
func AppendProducerRecord(dst []byte, producerID, seq uint64) []byte {
	dst = append(dst, ProducerRecordType)
	dst = binary.LittleEndian.AppendUint32(dst, 16)
	dst = binary.LittleEndian.AppendUint64(dst, producerID)
	return binary.LittleEndian.AppendUint64(dst, seq)
}

// ParseProducerRecord reads the producer record at the start of payload.
func ParseProducerRecord(payload []byte) (producerID, seq uint64, err error) {
	if len(payload) < ProducerRecordSize || payload[0] != ProducerRecordType ||
		binary.LittleEndian.Uint32(payload[1:]) != 16 {
		return 0, 0, ErrProducerRecord
	}
	producerID = binary.LittleEndian.Uint64(payload[5:])
	seq = binary.LittleEndian.Uint64(payload[13:])
	if producerID == 0 || seq == 0 || seq > MaxProducerSequence {
		return 0, 0, ErrProducerRecord
	}
	return producerID, seq, nil
}
