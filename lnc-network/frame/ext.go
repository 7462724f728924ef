package frame

import (
	"encoding/binary"

	"github.com/lance-go/lance/lnc-core/checksum"
)

// ReservedAckOffset is a LANCE-Go extension bit in the reserved bytes
// (6..7) of an ingest frame: the sender asks for an ack that carries the
// batch's assigned offset (docs/LWP.md §7). The Rust client writes the
// reserved bytes as 0 and so never asks; a reference server ignores the
// bit and sends a plain ack.
const ReservedAckOffset uint16 = 0x0001

// AppendAckOffset appends an extended ack: flags 0x08, batch_id echoed,
// and an 8-byte payload holding the batch's offset (u64 little-endian).
func AppendAckOffset(dst []byte, d checksum.Dialect, batchID, offset uint64) []byte {
	var p [8]byte
	binary.LittleEndian.PutUint64(p[:], offset)
	h := Header{Flags: FlagAck, BatchID: batchID}
	return Append(dst, &h, p[:], d)
}
