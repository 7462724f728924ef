package control

// LANCE-Go extensions (docs/LWP.md §7). They use codes the Rust server
// answers with InvalidClientCommand and the Rust client never sends, so a
// Rust peer never meets them. A LANCE-Go client learns whether a server has
// them by sending one: a reference server replies InvalidClientCommand.
const (
	// CodeFetchBatches (C→S): a fetch of whole batches only, which may
	// wait for new data. Answered with CodeBatchesResponse, CatchingUp or
	// an ErrorResponse.
	CodeFetchBatches Code = 0x13
	// CodeBatchesResponse (S→C): the reply to CodeFetchBatches.
	CodeBatchesResponse Code = 0x14
	// CodeOffsetForTime (C→S): the first batch at or after a timestamp.
	CodeOffsetForTime Code = 0x15
	// CodeOffsetResponse (S→C): the reply to CodeOffsetForTime.
	CodeOffsetResponse Code = 0x16
	// CodeKeyedBatchesResponse (S→C): the reply to a CodeFetchBatches
	// that set FetchWithKeys: a BatchesResponse with a directory of the
	// batches' offsets, lengths, record counts and sort keys.
	CodeKeyedBatchesResponse Code = 0x17
)

func init() {
	codeNames[CodeFetchBatches] = "FetchBatches"
	codeNames[CodeBatchesResponse] = "BatchesResponse"
	codeNames[CodeOffsetForTime] = "OffsetForTime"
	codeNames[CodeOffsetResponse] = "OffsetResponse"
	codeNames[CodeKeyedBatchesResponse] = "KeyedBatchesResponse"
}

// IsExtensionRequest reports whether c is a LANCE-Go extension request.
func (c Code) IsExtensionRequest() bool {
	return c == CodeFetchBatches || c == CodeOffsetForTime
}

// Texts of the extensions' errors.
const (
	InvalidFetchBatchesPayload  = "Invalid fetch batches payload"
	InvalidOffsetForTimePayload = "Invalid offset for time payload"
)

// FetchBatches is the payload of a CodeFetchBatches request, 20 bytes,
// or 24 with flags:
//
//	+0  u32 topic_id
//	+4  u64 start_offset  a batch boundary; inside a batch means from its start
//	+12 u32 max_bytes     whole batches up to this many bytes; the first
//	                      batch is returned whole even when it is larger
//	+16 u32 max_wait_ms   at the end of the log, wait up to this long for a
//	                      batch (0 = answer at once)
//	+20 u32 flags         optional; FetchWithKeys asks for a
//	                      KeyedBatchesResponse
type FetchBatches struct {
	TopicID     uint32
	StartOffset uint64
	MaxBytes    uint32
	MaxWaitMS   uint32
	Flags       uint32
}

// FetchBatches flags.
const (
	// FetchWithKeys asks for a CodeKeyedBatchesResponse, which adds a
	// directory entry per batch (BatchDirEntry).
	FetchWithKeys   uint32 = 1 << 0
	knownFetchFlags        = FetchWithKeys
)

// FetchBatchesSize is the size of a FetchBatches payload without flags;
// FetchBatchesFlagsSize with them.
const (
	FetchBatchesSize      = 20
	FetchBatchesFlagsSize = 24
)

// AppendTo appends the payload to dst: 20 bytes when Flags is 0 (what a
// server without flags understands), 24 otherwise.
func (m FetchBatches) AppendTo(dst []byte) []byte {
	dst = le.AppendUint32(dst, m.TopicID)
	dst = le.AppendUint64(dst, m.StartOffset)
	dst = le.AppendUint32(dst, m.MaxBytes)
	dst = le.AppendUint32(dst, m.MaxWaitMS)
	if m.Flags != 0 {
		dst = le.AppendUint32(dst, m.Flags)
	}
	return dst
}

// DecodeFetchBatches decodes a FetchBatches payload.
func DecodeFetchBatches(p []byte) (FetchBatches, error) {
	if len(p) < FetchBatchesSize {
		return FetchBatches{}, shortPayload(CodeFetchBatches, FetchBatchesSize, len(p), InvalidFetchBatchesPayload)
	}
	m := FetchBatches{
		TopicID:     le.Uint32(p),
		StartOffset: le.Uint64(p[4:]),
		MaxBytes:    le.Uint32(p[12:]),
		MaxWaitMS:   le.Uint32(p[16:]),
	}
	if len(p) >= FetchBatchesFlagsSize {
		m.Flags = le.Uint32(p[20:])
		if m.Flags&^knownFetchFlags != 0 {
			return FetchBatches{}, malformed(CodeFetchBatches, len(p), InvalidFetchBatchesPayload, "unknown flags")
		}
	}
	return m, nil
}

// BatchDirEntry describes one batch of a KeyedBatchesResponse, 32 bytes:
//
//	+0  u64 offset        the batch's first byte
//	+8  u32 length
//	+12 u32 record_count  as the producer declared it
//	+16 [16] sort_key     the 128-bit key the server gave the batch,
//	                      big-endian (timestamp_ns, node, actor, sequence)
type BatchDirEntry struct {
	Offset      uint64
	Length      uint32
	RecordCount uint32
	SortKey     [16]byte
}

// BatchDirEntrySize is the size of a BatchDirEntry.
const BatchDirEntrySize = 32

// AppendTo appends the entry to dst.
func (e BatchDirEntry) AppendTo(dst []byte) []byte {
	dst = le.AppendUint64(dst, e.Offset)
	dst = le.AppendUint32(dst, e.Length)
	dst = le.AppendUint32(dst, e.RecordCount)
	return append(dst, e.SortKey[:]...)
}

// KeyedBatchesResponse is the payload of a CodeKeyedBatchesResponse: the
// 28-byte header of a BatchesResponse, then batch_count BatchDirEntry
// values in offset order, then data_len bytes of data.
type KeyedBatchesResponse struct {
	BatchesResponse
	Dir []BatchDirEntry
}

// DecodeKeyedBatchesResponse decodes a KeyedBatchesResponse, appending the
// directory to dir (which it may reuse); Data aliases p. The directory must
// tile the data exactly.
func DecodeKeyedBatchesResponse(p []byte, dir []BatchDirEntry) (KeyedBatchesResponse, error) {
	const what = "Invalid keyed batches response"
	if len(p) < BatchesResponseHeaderSize {
		return KeyedBatchesResponse{}, shortPayload(CodeKeyedBatchesResponse, BatchesResponseHeaderSize, len(p), what)
	}
	count := uint64(le.Uint32(p[16:]))
	n := uint64(le.Uint32(p[24:]))
	dirLen := count * BatchDirEntrySize
	if uint64(len(p)-BatchesResponseHeaderSize) != dirLen+n {
		return KeyedBatchesResponse{}, malformed(CodeKeyedBatchesResponse, len(p), what, "directory and data_len disagree with the payload length")
	}
	m := KeyedBatchesResponse{BatchesResponse: BatchesResponse{
		StartOffset: le.Uint64(p),
		NextOffset:  le.Uint64(p[8:]),
		BatchCount:  uint32(count),
		RecordCount: le.Uint32(p[20:]),
		Data:        p[BatchesResponseHeaderSize+dirLen:],
	}}
	if m.NextOffset-m.StartOffset != n {
		return KeyedBatchesResponse{}, malformed(CodeKeyedBatchesResponse, len(p), what, "offsets disagree with data_len")
	}
	d := p[BatchesResponseHeaderSize : BatchesResponseHeaderSize+dirLen]
	at := m.StartOffset
	for len(d) > 0 {
		e := BatchDirEntry{Offset: le.Uint64(d), Length: le.Uint32(d[8:]), RecordCount: le.Uint32(d[12:])}
		copy(e.SortKey[:], d[16:32])
		if e.Offset != at || e.Length == 0 || e.Offset+uint64(e.Length) > m.NextOffset {
			return KeyedBatchesResponse{}, malformed(CodeKeyedBatchesResponse, len(p), what, "directory does not tile the data")
		}
		at += uint64(e.Length)
		dir = append(dir, e)
		d = d[BatchDirEntrySize:]
	}
	if at != m.NextOffset {
		return KeyedBatchesResponse{}, malformed(CodeKeyedBatchesResponse, len(p), what, "directory does not tile the data")
	}
	m.Dir = dir
	return m, nil
}

// BatchesResponse is the payload of a CodeBatchesResponse reply: a
// 28-byte header, then the batches back to back as produced.
//
//	+0  u64 start_offset  offset of the first byte of data (a batch start;
//	                      later than requested when retention removed the
//	                      requested bytes, earlier when the request pointed
//	                      inside a batch)
//	+8  u64 next_offset   start_offset + len(data): where to fetch next
//	+16 u32 batch_count   batches in data
//	+20 u32 record_count  sum of the producers' record counts
//	+24 u32 data_len
//	+28 data
type BatchesResponse struct {
	StartOffset uint64
	NextOffset  uint64
	BatchCount  uint32
	RecordCount uint32
	Data        []byte
}

// BatchesResponseHeaderSize is the size of the fixed part.
const BatchesResponseHeaderSize = 28

// AppendBatchesResponseHeader appends the fixed part for n bytes of data.
func AppendBatchesResponseHeader(dst []byte, start, next uint64, batches, records, n uint32) []byte {
	dst = le.AppendUint64(dst, start)
	dst = le.AppendUint64(dst, next)
	dst = le.AppendUint32(dst, batches)
	dst = le.AppendUint32(dst, records)
	return le.AppendUint32(dst, n)
}

// AppendTo appends the payload to dst.
func (m BatchesResponse) AppendTo(dst []byte) []byte {
	dst = AppendBatchesResponseHeader(dst, m.StartOffset, m.NextOffset, m.BatchCount, m.RecordCount, uint32(len(m.Data)))
	return append(dst, m.Data...)
}

// DecodeBatchesResponse decodes a BatchesResponse; Data aliases p.
func DecodeBatchesResponse(p []byte) (BatchesResponse, error) {
	if len(p) < BatchesResponseHeaderSize {
		return BatchesResponse{}, shortPayload(CodeBatchesResponse, BatchesResponseHeaderSize, len(p), "Invalid batches response")
	}
	n := le.Uint32(p[24:])
	if uint64(len(p)-BatchesResponseHeaderSize) != uint64(n) {
		return BatchesResponse{}, malformed(CodeBatchesResponse, len(p), "Invalid batches response", "data_len disagrees with the payload length")
	}
	m := BatchesResponse{
		StartOffset: le.Uint64(p),
		NextOffset:  le.Uint64(p[8:]),
		BatchCount:  le.Uint32(p[16:]),
		RecordCount: le.Uint32(p[20:]),
		Data:        p[BatchesResponseHeaderSize:],
	}
	if m.NextOffset-m.StartOffset != uint64(n) {
		return BatchesResponse{}, malformed(CodeBatchesResponse, len(p), "Invalid batches response", "offsets disagree with data_len")
	}
	return m, nil
}

// OffsetForTime is the payload of a CodeOffsetForTime request, 12 bytes:
// topic_id u32, timestamp_ns u64.
type OffsetForTime struct {
	TopicID     uint32
	TimestampNS uint64
}

// OffsetForTimeSize is the size of an OffsetForTime payload.
const OffsetForTimeSize = 12

// AppendTo appends the payload to dst.
func (m OffsetForTime) AppendTo(dst []byte) []byte {
	dst = le.AppendUint32(dst, m.TopicID)
	return le.AppendUint64(dst, m.TimestampNS)
}

// DecodeOffsetForTime decodes an OffsetForTime payload.
func DecodeOffsetForTime(p []byte) (OffsetForTime, error) {
	if len(p) < OffsetForTimeSize {
		return OffsetForTime{}, shortPayload(CodeOffsetForTime, OffsetForTimeSize, len(p), InvalidOffsetForTimePayload)
	}
	return OffsetForTime{TopicID: le.Uint32(p), TimestampNS: le.Uint64(p[4:])}, nil
}

// OffsetResponse is the payload of a CodeOffsetResponse reply, 24 bytes:
// offset u64 (the first batch whose timestamp is at or after the
// requested one, or end when none is), start u64 (the first retained
// offset) and end u64 (the durable end of the log).
type OffsetResponse struct {
	Offset uint64
	Start  uint64
	End    uint64
}

// OffsetResponseSize is the size of an OffsetResponse payload.
const OffsetResponseSize = 24

// AppendTo appends the payload to dst.
func (m OffsetResponse) AppendTo(dst []byte) []byte {
	dst = le.AppendUint64(dst, m.Offset)
	dst = le.AppendUint64(dst, m.Start)
	return le.AppendUint64(dst, m.End)
}

// DecodeOffsetResponse decodes an OffsetResponse.
func DecodeOffsetResponse(p []byte) (OffsetResponse, error) {
	if len(p) < OffsetResponseSize {
		return OffsetResponse{}, shortPayload(CodeOffsetResponse, OffsetResponseSize, len(p), "Invalid offset response")
	}
	return OffsetResponse{Offset: le.Uint64(p), Start: le.Uint64(p[8:]), End: le.Uint64(p[16:])}, nil
}

// AckOffsetSize is the payload of an extended ack: when an ingest frame
// sets frame.ReservedAckOffset in its reserved bits, the server's ack
// carries the batch's assigned offset as a u64.
const AckOffsetSize = 8

// InvalidProducerRecord is the reply to an ingest that sets
// frame.ReservedIdempotent without a valid producer record at the start
// of its payload.
const InvalidProducerRecord = "Invalid data: idempotent ingest without a valid producer record"

// EmptyIngest is the reply to an ingest frame without payload (the
// reference drops such frames silently).
const EmptyIngest = "Invalid data: empty ingest payload"

// StorageUnavailable is the reply to writes after the storage engine
// failed (an fsync or write error): nothing more is acknowledged.
const StorageUnavailable = "Storage unavailable: the node stopped accepting writes after a storage error"
