package e2e

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// Extensions of docs/LWP.md §7 beyond those of the protocol test: the
// idempotent ingest (reserved bit 0x0002 and a producer record) and
// FetchBatches with the sort-key directory (flags bit 0, reply 0x17).
const (
	reservedIdempotent       = 0x0002
	codeKeyedBatchesResponse = 0x17
)

// producerRecord is the TLV record (type 0x0E, 16 bytes) that starts an
// idempotent batch: producer id and sequence, little-endian.
func producerRecord(pid, seq uint64) []byte {
	b := append([]byte{0x0E}, le32(nil, 16)...)
	return le64(le64(b, pid), seq)
}

func idempotentIngest(d dialect, topic uint32, id uint64, payload []byte) []byte {
	return encode(d, frame{Flags: flagBatch, Reserved: reservedAckOffset | reservedIdempotent, BatchID: id,
		TimestampNS: 1_700_000_000_000_000_000 + id, RecordCount: 1, TopicID: topic, Payload: payload})
}

func TestIdempotentIngest(t *testing.T) {
	s := startServer(t)
	c := s.dialT(t, ieee)
	defer c.close()
	tp := createTopic(t, c, "idem")
	rec := append([]byte{0x01}, le32(nil, 5)...)
	rec = append(rec, "hello"...)
	payload := append(producerRecord(0xABCDEF, 1), rec...)

	first := c.call(idempotentIngest(ieee, tp.ID, 1, payload))
	off1, err := checkAck(first, batch{ID: 1, AckOffset: true})
	if err != nil {
		t.Fatal(err)
	}
	// The retry (same producer and sequence, new batch id) is acked with
	// the first copy's offset and not stored again.
	again := c.call(idempotentIngest(ieee, tp.ID, 2, payload))
	off2, err := checkAck(again, batch{ID: 2, AckOffset: true})
	if err != nil || off2 != off1 {
		t.Fatalf("retry: offset %d (first %d), %v", off2, off1, err)
	}
	// The next sequence is stored after it.
	next := c.call(idempotentIngest(ieee, tp.ID, 3, append(producerRecord(0xABCDEF, 2), rec...)))
	off3, err := checkAck(next, batch{ID: 3, AckOffset: true})
	if err != nil || off3 != off1+uint64(len(payload)) {
		t.Fatalf("next sequence: offset %d, %v", off3, err)
	}
	if end := logEnd(t, c, tp.ID); end != 2*uint64(len(payload)) {
		t.Fatalf("log end %d, want %d: a retry was stored", end, 2*len(payload))
	}
	// The producer record is stored as sent: the log holds the payloads
	// back to back.
	got := readLog(t, c, tp.ID, 0, 2*uint64(len(payload)), 1<<20)
	if !bytes.Equal(got[:len(payload)], payload) {
		t.Fatalf("stored bytes % x", got[:len(payload)])
	}

	// Bad producer records: the bit without the record, a zero id, a zero
	// sequence; the connection stays usable.
	for name, p := range map[string][]byte{
		"no record": rec,
		"pid 0":     append(producerRecord(0, 1), rec...),
		"seq 0":     append(producerRecord(9, 0), rec...),
		"short":     producerRecord(9, 1)[:20],
	} {
		expectError(t, ieee, name, c.call(idempotentIngest(ieee, tp.ID, 9, p)),
			"Invalid data: idempotent ingest without a valid producer record")
	}
	if end := logEnd(t, c, tp.ID); end != 2*uint64(len(payload)) {
		t.Fatalf("log end %d after refused batches", end)
	}

	// After a restart the server still knows the producer's sequences.
	c.close()
	s.kill()
	s.restart()
	c2 := s.dialT(t, ieee)
	defer c2.close()
	retry := c2.call(idempotentIngest(ieee, tp.ID, 4, append(producerRecord(0xABCDEF, 2), rec...)))
	if off, err := checkAck(retry, batch{ID: 4, AckOffset: true}); err != nil || off != off3 {
		t.Fatalf("retry after restart: offset %d (want %d), %v", off, off3, err)
	}
}

func TestFetchBatchesWithKeys(t *testing.T) {
	s := startServer(t)
	c := s.dialT(t, ieee)
	defer c.close()
	tp := createTopic(t, c, "keys")
	sizes := []int{10, 25, 7}
	var offs []uint64
	for i, n := range sizes {
		b := batch{Topic: tp.ID, ID: uint64(i + 1), Timestamp: uint64(1000 * (i + 1)), Records: uint32(i + 1),
			Data: bytes.Repeat([]byte{byte('a' + i)}, n), AckOffset: true}
		offs = append(offs, ingest(t, c, b))
	}
	req := le32(fetchBatchesPayload(tp.ID, 0, 1<<20, 0), 1)
	p, ok := expectControl(t, "keyed FetchBatches", c.control(codeFetchBatches, req), codeKeyedBatchesResponse)
	if !ok {
		return
	}
	le := binary.LittleEndian
	if len(p) != 28+3*32+42 || le.Uint32(p[16:]) != 3 || le.Uint32(p[20:]) != 6 || le.Uint32(p[24:]) != 42 {
		t.Fatalf("reply % x", p)
	}
	var lastKey []byte
	for i := range sizes {
		e := p[28+32*i:]
		key := e[16:32]
		if le.Uint64(e) != offs[i] || le.Uint32(e[8:]) != uint32(sizes[i]) || le.Uint32(e[12:]) != uint32(i+1) {
			t.Fatalf("entry %d: % x", i, e[:16])
		}
		// The key's top 64 bits are the batch's timestamp, big-endian.
		if binary.BigEndian.Uint64(key) != uint64(1000*(i+1)) || bytes.Compare(lastKey, key) >= 0 {
			t.Fatalf("entry %d: key % x after % x", i, key, lastKey)
		}
		lastKey = key
	}
	if data := p[28+96:]; !bytes.Equal(data[:10], bytes.Repeat([]byte{'a'}, 10)) {
		t.Fatalf("data % x", data)
	}
	// Unknown flags are refused.
	expectError(t, ieee, "unknown flags", c.control(codeFetchBatches, le32(fetchBatchesPayload(tp.ID, 0, 1<<20, 0), 2)),
		"Invalid fetch batches payload")
}
