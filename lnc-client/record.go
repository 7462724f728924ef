package lance

import (
	"errors"
	"fmt"
	"time"

	"github.com/lance-go/lance/lnc-core/tlv"
	"github.com/lance-go/lance/lnc-network/frame"
)

// Offset is a byte position in a topic's log: the concatenation of every
// payload the server accepted for the topic. Offsets never move, not even
// when retention deletes old data. They count bytes, not records.
type Offset uint64

// RecordType is a record's TLV type byte (lnc-core/tlv, docs/LWP.md §6).
type RecordType = tlv.Type

// Record types. TypeAuto lets the producer pick the encoding from the
// fields that are set; the others force one.
const (
	TypeAuto           RecordType = 0
	TypeRaw                       = tlv.TypeRawData
	TypeJSON                      = tlv.TypeJSON
	TypeMessagePack               = tlv.TypeMessagePack
	TypeProtobuf                  = tlv.TypeProtobuf
	TypeAvro                      = tlv.TypeAvro
	TypeKeyValue                  = tlv.TypeKeyValue
	TypeTimestamped               = tlv.TypeTimestamped
	TypeKeyTimestamped            = tlv.TypeKeyTimestamped
	TypeNull                      = tlv.TypeNull
)

// typeCompressed is this client's TLV type for a compressed batch: one
// record whose value is an lnc-network/compress envelope holding the
// batch's records. The type is in the block the specification leaves
// unassigned (0x06..0x0F), so readers that do not know it step over it.
const typeCompressed tlv.Type = 0x0F

// typeProducer is the producer record that starts an idempotent batch
// (frame.AppendProducerRecord). Consumers skip it.
const typeProducer tlv.Type = frame.ProducerRecordType

// Record is one message.
//
// For producing, set Value and optionally Key, Timestamp and Type; the
// producer never sets Offset or BatchOffset (the offset comes to the
// Produce callback). With Type left as TypeAuto the encoding follows the
// fields that are set:
//
//	Key and Timestamp  TypeKeyTimestamped (0x12): ts_ns | key_len | key | value
//	Key only           TypeKeyValue (0x10):       key_len | key | value
//	Timestamp only     TypeTimestamped (0x11):    ts_ns | value
//	neither            TypeRaw (0x01):            value
//
// Other types (JSON, Protobuf, user types 0x80..0xFE, …) carry Value alone
// and accept neither Key nor Timestamp. TypeNull is a tombstone: no value.
//
// For consuming, the consumer sets every field it finds. Key and Value
// alias the fetched buffer, which is never reused: they stay valid.
type Record struct {
	// Type is the TLV type byte; see above.
	Type RecordType
	// Key is the record's key, at most 65535 bytes; nil for no key.
	Key []byte
	// Value is the payload.
	Value []byte
	// Timestamp is the record's own time (nanoseconds on the wire); the
	// zero Time means none.
	Timestamp time.Time
	// Offset is set by the consumer: the byte offset of the record in
	// the log. Records of a compressed batch all carry the offset of
	// the batch's envelope record.
	Offset Offset
	// BatchOffset is set by the consumer when the server reports batch
	// boundaries (the LANCE-Go server does): the offset of the first byte
	// of the batch the record was produced in. Zero otherwise.
	BatchOffset Offset
	// Topic is set by consumers: the topic the record was read from.
	Topic string
	// BatchKey is set by MergedReplay: the 128-bit sort key the server
	// gave the record's batch (big-endian: timestamp_ns, node, actor,
	// sequence), the key the replay is ordered by. Zero otherwise.
	BatchKey [16]byte

	// next is the commit-safe position once this record is handed out.
	next Offset
}

// errKeyNotAllowed refuses a Key or Timestamp on a type without fields
// for them.
var errKeyNotAllowed = errors.New("lance: record type carries neither key nor timestamp")

// appendRecord appends r as one TLV record.
func appendRecord(dst []byte, r *Record) ([]byte, error) {
	var ts uint64
	hasTS := !r.Timestamp.IsZero()
	if hasTS {
		ts = uint64(r.Timestamp.UnixNano())
	}
	t := r.Type
	if t == TypeAuto {
		switch {
		case r.Key != nil && hasTS:
			t = TypeKeyTimestamped
		case r.Key != nil:
			t = TypeKeyValue
		case hasTS:
			t = TypeTimestamped
		default:
			t = TypeRaw
		}
	}
	var out []byte
	var err error
	switch t {
	case TypeKeyTimestamped:
		out, err = tlv.AppendKeyTimestamped(dst, ts, r.Key, r.Value)
	case TypeKeyValue:
		if hasTS {
			return dst, fmt.Errorf("%w: %v has no timestamp", errKeyNotAllowed, t)
		}
		out, err = tlv.AppendKeyValue(dst, r.Key, r.Value)
	case TypeTimestamped:
		if r.Key != nil {
			return dst, fmt.Errorf("%w: %v has no key", errKeyNotAllowed, t)
		}
		out, err = tlv.AppendTimestamped(dst, ts, r.Value)
	case typeCompressed, typeProducer:
		return dst, fmt.Errorf("lance: record type %#x is reserved by this client", uint8(t))
	default:
		if r.Key != nil || hasTS {
			return dst, fmt.Errorf("%w: %v", errKeyNotAllowed, t)
		}
		out, err = tlv.Append(dst, t, r.Value)
	}
	if err != nil {
		return dst, fmt.Errorf("lance: encoding record: %w", err)
	}
	return out, nil
}

// recordSize returns the encoded size of r, header included, for
// budgeting before encoding (it assumes the auto encoding's fields).
func recordSize(r *Record) int {
	n := tlv.HeaderSize + len(r.Value)
	if r.Key != nil {
		n += 2 + len(r.Key)
	}
	if !r.Timestamp.IsZero() {
		n += 8
	}
	return n
}

// decodeRecord turns one TLV record into a Record.
func decodeRecord(tr tlv.Record) (Record, error) {
	r := Record{Type: tr.Type}
	switch tr.Type {
	case TypeKeyTimestamped:
		ts, k, v, err := tr.KeyTimestamped()
		if err != nil {
			return r, err
		}
		r.Timestamp, r.Key, r.Value = time.Unix(0, int64(ts)), k, v
	case TypeKeyValue:
		k, v, err := tr.KeyValue()
		if err != nil {
			return r, err
		}
		r.Key, r.Value = k, v
	case TypeTimestamped:
		ts, v, err := tr.Timestamped()
		if err != nil {
			return r, err
		}
		r.Timestamp, r.Value = time.Unix(0, int64(ts)), v
	case TypeNull:
	default:
		r.Value = tr.Value
	}
	return r, nil
}
