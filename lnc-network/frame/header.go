// Package frame encodes and parses LWP v1 frames: the fixed 44-byte header
// and the payload that follows it.
//
// # Header layout
//
// Every integer is little-endian. The frame is the header followed by exactly
// PayloadLength bytes.
//
//	off size field          notes
//	  0    4 magic          "LANC" (4C 41 4E 43)
//	  4    1 version        1; anything else closes the connection
//	  5    1 flags          see Flags; decides the frame's Kind
//	  6    2 reserved       written as 0, not checked, but covered by header_crc
//	  8    4 header_crc     CRC of bytes 0..7 only
//	 12    8 batch_id       ingest: client tag echoed in the ack;
//	                        control: command or response code in the low byte
//	 20    8 timestamp_ns   ingest: producer wall clock; 0 elsewhere
//	 28    4 record_count   ingest: records claimed by the producer; 0 elsewhere
//	 32    4 payload_length bytes after the header
//	 36    4 payload_crc    CRC of the payload; 0 and unchecked when empty
//	 40    4 topic_id       ingest: target topic; 0 elsewhere
//
// These offsets and values are part of the wire format shared with the Rust
// client and must not change.
//
// # Checksums
//
// A frame is checksummed in one of two dialects (see lnc-core/checksum): the
// Rust client's CRC-32/IEEE or the specification's CRC-32C. A Parser either
// enforces one dialect or detects it from the header CRC of the first frame
// of a stream and enforces it from then on. Bytes 12..35 and 40..43 are
// protected by no checksum at all; that is the protocol's, not ours to fix.
package frame

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/lance-go/lance/lnc-core/checksum"
)

// Wire constants. They are part of the format and must not change.
const (
	// HeaderSize is the fixed length of every frame header.
	HeaderSize = 44
	// Version is the only protocol version that exists.
	Version = 1
	// DefaultMaxPayload is the largest payload a peer accepts unless
	// configured otherwise (16 MiB, as the Rust server).
	DefaultMaxPayload = 16 << 20
	// MaxClientFrame is the largest whole frame (header included) that the
	// Rust client accepts; replies to it must stay within this size.
	MaxClientFrame = 16 << 20
)

// Magic is the first four bytes of every frame.
var Magic = [4]byte{'L', 'A', 'N', 'C'}

// Flags is the header's flag byte.
type Flags uint8

// Flag bits.
const (
	// FlagCompressed is informational: servers store the payload as sent.
	FlagCompressed Flags = 0x01
	// FlagEncrypted is reserved and ignored.
	FlagEncrypted Flags = 0x02
	// FlagBatch marks an ingest frame.
	FlagBatch Flags = 0x04
	// FlagAck marks a server acknowledgement.
	FlagAck Flags = 0x08
	// FlagBackpressure marks a server slow-down signal.
	FlagBackpressure Flags = 0x10
	// FlagKeepalive marks a keepalive in either direction.
	FlagKeepalive Flags = 0x20
	// FlagControl marks a control frame; the command is the low byte of
	// batch_id.
	FlagControl Flags = 0x40
	// FlagReserved must be written as 0 and is not checked on receipt.
	FlagReserved Flags = 0x80
)

// Kind is a frame's type, derived from its flags (and payload length).
type Kind uint8

// Frame kinds.
const (
	// KindUnknown is a frame that matches no rule; receivers ignore it.
	KindUnknown Kind = iota
	KindControl
	KindKeepalive
	KindAck
	KindBackpressure
	KindIngest
)

var kindNames = [...]string{"unknown", "control", "keepalive", "ack", "backpressure", "ingest"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Header is the decoded 44-byte frame header. Magic and version are not
// stored: a Header only exists for frames whose magic and version were right.
type Header struct {
	Flags Flags
	// Reserved holds bytes 6..7 as received. Encoders write it as given, so
	// that it stays covered by the header CRC; senders should leave it 0.
	Reserved      uint16
	HeaderCRC     uint32
	BatchID       uint64
	TimestampNS   uint64
	RecordCount   uint32
	PayloadLength uint32
	PayloadCRC    uint32
	TopicID       uint32
}

// Kind classifies the frame with the priority the Rust code uses: control,
// then keepalive, ack, backpressure, then ingest (the batch bit or any
// payload), else unknown. A frame whose flags are 0 but that carries a
// payload is therefore an ingest.
func (h *Header) Kind() Kind {
	switch {
	case h.Flags&FlagControl != 0:
		return KindControl
	case h.Flags&FlagKeepalive != 0:
		return KindKeepalive
	case h.Flags&FlagAck != 0:
		return KindAck
	case h.Flags&FlagBackpressure != 0:
		return KindBackpressure
	case h.Flags&FlagBatch != 0 || h.PayloadLength > 0:
		return KindIngest
	}
	return KindUnknown
}

// Command returns the control command or response code: the low byte of
// batch_id. Higher bytes are ignored, as the Rust server does.
func (h *Header) Command() uint8 { return uint8(h.BatchID) }

// headerCRCs caches the header CRC of every flags byte with reserved bytes
// of 0, per dialect: a frame's header CRC then costs one load.
var headerCRCs = func() (t [3][256]uint32) {
	for _, d := range [...]checksum.Dialect{checksum.IEEE, checksum.Castagnoli} {
		for f := range 256 {
			t[d][f] = computeHeaderCRC(d, Flags(f), 0)
		}
	}
	return t
}()

// HeaderCRC returns the header checksum for a frame with the given flags and
// reserved bytes: the CRC of bytes 0..7.
func HeaderCRC(d checksum.Dialect, flags Flags, reserved uint16) uint32 {
	if reserved == 0 && d.Valid() {
		return headerCRCs[d][flags]
	}
	return computeHeaderCRC(d, flags, reserved)
}

func computeHeaderCRC(d checksum.Dialect, flags Flags, reserved uint16) uint32 {
	var b [8]byte
	copy(b[:4], Magic[:])
	b[4] = Version
	b[5] = byte(flags)
	binary.LittleEndian.PutUint16(b[6:], reserved)
	return d.Sum(b[:])
}

// PutHeader writes h into b[:HeaderSize], computing header_crc in dialect d.
// PayloadLength and PayloadCRC are written as given: the caller computes
// them (Append does). It panics if b is shorter than HeaderSize.
func PutHeader(b []byte, h *Header, d checksum.Dialect) {
	_ = b[HeaderSize-1] // one bounds check for the whole header
	copy(b[0:4], Magic[:])
	b[4] = Version
	b[5] = byte(h.Flags)
	binary.LittleEndian.PutUint16(b[6:], h.Reserved)
	binary.LittleEndian.PutUint32(b[8:], HeaderCRC(d, h.Flags, h.Reserved))
	binary.LittleEndian.PutUint64(b[12:], h.BatchID)
	binary.LittleEndian.PutUint64(b[20:], h.TimestampNS)
	binary.LittleEndian.PutUint32(b[28:], h.RecordCount)
	binary.LittleEndian.PutUint32(b[32:], h.PayloadLength)
	binary.LittleEndian.PutUint32(b[36:], h.PayloadCRC)
	binary.LittleEndian.PutUint32(b[40:], h.TopicID)
}

// decodeHeader reads every field of b[:HeaderSize] without checking any of
// them.
func decodeHeader(b []byte, h *Header) {
	_ = b[HeaderSize-1]
	h.Flags = Flags(b[5])
	h.Reserved = binary.LittleEndian.Uint16(b[6:])
	h.HeaderCRC = binary.LittleEndian.Uint32(b[8:])
	h.BatchID = binary.LittleEndian.Uint64(b[12:])
	h.TimestampNS = binary.LittleEndian.Uint64(b[20:])
	h.RecordCount = binary.LittleEndian.Uint32(b[28:])
	h.PayloadLength = binary.LittleEndian.Uint32(b[32:])
	h.PayloadCRC = binary.LittleEndian.Uint32(b[36:])
	h.TopicID = binary.LittleEndian.Uint32(b[40:])
}

// Append appends a whole frame (header and payload) to dst. It sets
// h.PayloadLength and h.PayloadCRC from payload (payload_crc is 0 for an empty
// payload, as the reference writes it) and h.HeaderCRC, and returns the
// extended slice. It panics if payload is longer than math.MaxUint32, which
// no caller may produce: limits are checked where the payload is built.
func Append(dst []byte, h *Header, payload []byte, d checksum.Dialect) []byte {
	if uint64(len(payload)) > math.MaxUint32 {
		panic("frame: payload longer than 4 GiB")
	}
	h.PayloadLength = uint32(len(payload))
	h.PayloadCRC = 0
	if len(payload) > 0 {
		h.PayloadCRC = d.Sum(payload)
	}
	h.HeaderCRC = HeaderCRC(d, h.Flags, h.Reserved)
	n := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...) // no allocation when cap suffices
	PutHeader(dst[n:], h, d)
	return append(dst, payload...)
}

// AppendIngest appends an ingest frame (flags 0x04) carrying payload for
// topicID.
func AppendIngest(dst []byte, d checksum.Dialect, batchID, timestampNS uint64, recordCount, topicID uint32, payload []byte) []byte {
	h := Header{Flags: FlagBatch, BatchID: batchID, TimestampNS: timestampNS, RecordCount: recordCount, TopicID: topicID}
	return Append(dst, &h, payload, d)
}

// AppendAck appends the acknowledgement of batchID: flags exactly 0x08,
// every other field 0, no payload.
func AppendAck(dst []byte, d checksum.Dialect, batchID uint64) []byte {
	h := Header{Flags: FlagAck, BatchID: batchID}
	return Append(dst, &h, nil, d)
}

// AppendKeepalive appends a keepalive: flags 0x20, every other field 0.
func AppendKeepalive(dst []byte, d checksum.Dialect) []byte {
	h := Header{Flags: FlagKeepalive}
	return Append(dst, &h, nil, d)
}

// AppendBackpressure appends a backpressure signal: flags 0x10, every other
// field 0.
func AppendBackpressure(dst []byte, d checksum.Dialect) []byte {
	h := Header{Flags: FlagBackpressure}
	return Append(dst, &h, nil, d)
}

// AppendControl appends a control frame (flags 0x40) whose batch_id is code
// and whose payload is payload (which may be empty).
func AppendControl(dst []byte, d checksum.Dialect, code uint8, payload []byte) []byte {
	h := Header{Flags: FlagControl, BatchID: uint64(code)}
	return Append(dst, &h, payload, d)
}
