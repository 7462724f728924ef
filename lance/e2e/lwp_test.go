package e2e

// An LWP client written from the protocol digest (shared/reference/lwp.md)
// and the extension table of docs/LWP.md §7, independent of the server's
// own codec packages: the point of these tests is to hold the server to
// the document, so nothing here may come from lance-go code.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"time"
)

// dialect is the CRC-32 variant a connection checksums its frames with.
type dialect uint8

const (
	// ieee is CRC-32/ISO-HDLC, what the Rust reference actually computes.
	ieee dialect = iota
	// castagnoli is CRC-32C, what the published specification asks for.
	castagnoli
)

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

func (d dialect) String() string {
	if d == castagnoli {
		return "CRC-32C"
	}
	return "IEEE"
}

func (d dialect) sum(p []byte) uint32 {
	if d == castagnoli {
		return crc32.Checksum(p, castagnoliTable)
	}
	return crc32.Checksum(p, crc32.IEEETable)
}

// Wire constants (lwp.md §2, §3).
const (
	headerSize = 44

	flagCompressed   = 0x01
	flagBatch        = 0x04
	flagAck          = 0x08
	flagBackpressure = 0x10
	flagKeepalive    = 0x20
	flagControl      = 0x40

	// reservedAckOffset is the extension bit in bytes 6..7 of an ingest
	// header that asks for an ack carrying the batch's offset.
	reservedAckOffset = 0x0001

	maxPayload = 16 << 20
	tailOffset = math.MaxUint64
)

var magic = [4]byte{'L', 'A', 'N', 'C'}

// Control codes (lwp.md §6.2, docs/LWP.md §7).
const (
	codeCreateTopic              = 0x01
	codeDeleteTopic              = 0x02
	codeListTopics               = 0x03
	codeGetTopic                 = 0x04
	codeSetRetention             = 0x05
	codeCreateTopicWithRetention = 0x06
	codeGetClusterStatus         = 0x07
	codeAuthenticate             = 0x08
	codeAuthenticateResponse     = 0x09
	codeFetch                    = 0x10
	codeFetchResponse            = 0x11
	codeCatchingUp               = 0x12
	codeFetchBatches             = 0x13
	codeBatchesResponse          = 0x14
	codeOffsetForTime            = 0x15
	codeOffsetResponse           = 0x16
	codeSubscribe                = 0x20
	codeUnsubscribe              = 0x21
	codeCommitOffset             = 0x22
	codeSubscribeAck             = 0x23
	codeCommitAck                = 0x24
	codeTopicResponse            = 0x80
	codeClusterStatusResponse    = 0x81
	codeErrorResponse            = 0xFF
)

// frame is one LWP frame, as built or as received.
type frame struct {
	Flags       byte
	Reserved    uint16
	HeaderCRC   uint32
	BatchID     uint64
	TimestampNS uint64
	RecordCount uint32
	PayloadLen  uint32
	PayloadCRC  uint32
	TopicID     uint32
	Payload     []byte
	// Raw is the whole frame as it was on the wire (received frames only).
	Raw []byte
}

// encode builds a frame in dialect d. Magic, version, both CRCs and the
// payload length are filled in from f; the other header fields are taken
// as given. The payload CRC of an empty payload is written as 0.
func encode(d dialect, f frame) []byte {
	b := make([]byte, headerSize, headerSize+len(f.Payload))
	copy(b, magic[:])
	b[4] = 1
	b[5] = f.Flags
	binary.LittleEndian.PutUint16(b[6:], f.Reserved)
	binary.LittleEndian.PutUint32(b[8:], d.sum(b[:8]))
	binary.LittleEndian.PutUint64(b[12:], f.BatchID)
	binary.LittleEndian.PutUint64(b[20:], f.TimestampNS)
	binary.LittleEndian.PutUint32(b[28:], f.RecordCount)
	binary.LittleEndian.PutUint32(b[32:], uint32(len(f.Payload)))
	if len(f.Payload) > 0 {
		binary.LittleEndian.PutUint32(b[36:], d.sum(f.Payload))
	}
	binary.LittleEndian.PutUint32(b[40:], f.TopicID)
	return append(b, f.Payload...)
}

// decodeHeader reads the fixed fields of a 44-byte header without
// checking them.
func decodeHeader(b []byte) frame {
	return frame{
		Flags:       b[5],
		Reserved:    binary.LittleEndian.Uint16(b[6:]),
		HeaderCRC:   binary.LittleEndian.Uint32(b[8:]),
		BatchID:     binary.LittleEndian.Uint64(b[12:]),
		TimestampNS: binary.LittleEndian.Uint64(b[20:]),
		RecordCount: binary.LittleEndian.Uint32(b[28:]),
		PayloadLen:  binary.LittleEndian.Uint32(b[32:]),
		PayloadCRC:  binary.LittleEndian.Uint32(b[36:]),
		TopicID:     binary.LittleEndian.Uint32(b[40:]),
	}
}

// readFrame reads one frame from r and checks it the way lwp.md §1.1 says a
// receiver must: magic, version, header CRC in dialect d, length limit,
// payload CRC.
func readFrame(r io.Reader, d dialect) (frame, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, err
	}
	if !bytes.Equal(h[:4], magic[:]) {
		return frame{}, fmt.Errorf("reply has bad magic % X", h[:4])
	}
	if h[4] != 1 {
		return frame{}, fmt.Errorf("reply has version %d", h[4])
	}
	f := decodeHeader(h[:])
	if want := d.sum(h[:8]); f.HeaderCRC != want {
		return frame{}, fmt.Errorf("reply header CRC %08X, want %08X in the %v dialect (header % X)", f.HeaderCRC, want, d, h[:])
	}
	if f.PayloadLen > maxPayload {
		return frame{}, fmt.Errorf("reply payload_length %d over the 16 MiB limit", f.PayloadLen)
	}
	raw := make([]byte, headerSize+int(f.PayloadLen))
	copy(raw, h[:])
	if _, err := io.ReadFull(r, raw[headerSize:]); err != nil {
		return frame{}, fmt.Errorf("reading a %d-byte reply payload: %w", f.PayloadLen, err)
	}
	f.Raw = raw
	f.Payload = raw[headerSize:]
	if f.PayloadLen > 0 {
		if want := d.sum(f.Payload); f.PayloadCRC != want {
			return frame{}, fmt.Errorf("reply payload CRC %08X, want %08X in the %v dialect", f.PayloadCRC, want, d)
		}
	} else if f.PayloadCRC != 0 {
		return frame{}, fmt.Errorf("reply without payload has payload_crc %08X, want 0", f.PayloadCRC)
	}
	return f, nil
}

// describe summarises a frame for failure messages.
func (f frame) describe() string {
	switch {
	case f.Flags&flagControl != 0:
		code := byte(f.BatchID)
		if code == codeErrorResponse {
			return fmt.Sprintf("ErrorResponse %q", f.Payload)
		}
		p := f.Payload
		if len(p) > 96 {
			p = p[:96]
		}
		if code == codeTopicResponse || code == codeClusterStatusResponse {
			return fmt.Sprintf("control 0x%02X %s", code, p)
		}
		return fmt.Sprintf("control 0x%02X payload(%d) % X", code, f.PayloadLen, p)
	case f.Flags&flagKeepalive != 0:
		return "keepalive"
	case f.Flags&flagAck != 0:
		return fmt.Sprintf("ack batch_id=%d payload(%d) % X", f.BatchID, f.PayloadLen, f.Payload)
	case f.Flags&flagBackpressure != 0:
		return "backpressure"
	}
	return fmt.Sprintf("frame flags=0x%02X batch_id=%d payload(%d)", f.Flags, f.BatchID, f.PayloadLen)
}

// Frame builders.

func controlFrame(d dialect, code uint64, payload []byte) []byte {
	return encode(d, frame{Flags: flagControl, BatchID: code, Payload: payload})
}

func keepaliveFrame(d dialect) []byte { return encode(d, frame{Flags: flagKeepalive}) }

func ackFrame(d dialect, batchID uint64) []byte {
	return encode(d, frame{Flags: flagAck, BatchID: batchID})
}

// ackOffsetFrame is the extended ack: flags 0x08, batch_id, and an 8-byte
// offset payload.
func ackOffsetFrame(d dialect, batchID, offset uint64) []byte {
	return encode(d, frame{Flags: flagAck, BatchID: batchID, Payload: le64(nil, offset)})
}

func errorFrame(d dialect, text string) []byte {
	return controlFrame(d, codeErrorResponse, []byte(text))
}

// batch is one ingest as a test sends it.
type batch struct {
	Topic     uint32
	ID        uint64
	Timestamp uint64
	Records   uint32
	Data      []byte
	// AckOffset asks for the extended ack.
	AckOffset bool
}

func ingestFrame(d dialect, b batch) []byte {
	f := frame{Flags: flagBatch, BatchID: b.ID, TimestampNS: b.Timestamp, RecordCount: b.Records, TopicID: b.Topic, Payload: b.Data}
	if b.AckOffset {
		f.Reserved = reservedAckOffset
	}
	return encode(d, f)
}

// Little-endian payload helpers.

func le16(dst []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(dst, v) }
func le32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }
func le64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }

func topicIDPayload(id uint32) []byte { return le32(nil, id) }

func fetchPayload(topic uint32, start uint64, maxBytes uint32) []byte {
	return le32(le64(le32(nil, topic), start), maxBytes)
}

func fetchBatchesPayload(topic uint32, start uint64, maxBytes, waitMS uint32) []byte {
	return le32(fetchPayload(topic, start, maxBytes), waitMS)
}

func offsetForTimePayload(topic uint32, ts uint64) []byte {
	return le64(le32(nil, topic), ts)
}

func setRetentionPayload(topic uint32, maxAge, maxBytes uint64) []byte {
	return le64(le64(le32(nil, topic), maxAge), maxBytes)
}

func createWithRetentionPayload(name string, maxAge, maxBytes uint64) []byte {
	p := le16(nil, uint16(len(name)))
	p = append(p, name...)
	return le64(le64(p, maxAge), maxBytes)
}

func subscribePayload(topic uint32, start uint64, maxBatch uint32, consumer uint64) []byte {
	return le64(le32(le64(le32(nil, topic), start), maxBatch), consumer)
}

func unsubscribePayload(topic uint32, consumer uint64) []byte {
	return le64(le32(nil, topic), consumer)
}

func commitPayload(topic uint32, consumer, offset uint64) []byte {
	return le64(le64(le32(nil, topic), consumer), offset)
}

// pairPayload is the layout of SubscribeAck and CommitAck.
func pairPayload(a, b uint64) []byte { return le64(le64(nil, a), b) }

func fetchResponsePayload(next uint64, data []byte) []byte {
	var count uint32
	if len(data) > 0 {
		count = 1
	}
	p := le32(le32(le64(nil, next), uint32(len(data))), count)
	return append(p, data...)
}

// Reply decoders.

type fetchReply struct {
	Next    uint64
	N       uint32
	Records uint32
	Data    []byte
}

func decodeFetchReply(p []byte) (fetchReply, error) {
	if len(p) < 16 {
		return fetchReply{}, fmt.Errorf("FetchResponse payload of %d bytes, want at least 16", len(p))
	}
	r := fetchReply{
		Next:    binary.LittleEndian.Uint64(p),
		N:       binary.LittleEndian.Uint32(p[8:]),
		Records: binary.LittleEndian.Uint32(p[12:]),
		Data:    p[16:],
	}
	if int(r.N) != len(r.Data) {
		return r, fmt.Errorf("FetchResponse bytes_returned %d but %d data bytes follow", r.N, len(r.Data))
	}
	return r, nil
}

type batchesReply struct {
	Start, Next      uint64
	Batches, Records uint32
	N                uint32
	Data             []byte
}

func decodeBatchesReply(p []byte) (batchesReply, error) {
	if len(p) < 28 {
		return batchesReply{}, fmt.Errorf("BatchesResponse payload of %d bytes, want at least 28", len(p))
	}
	r := batchesReply{
		Start:   binary.LittleEndian.Uint64(p),
		Next:    binary.LittleEndian.Uint64(p[8:]),
		Batches: binary.LittleEndian.Uint32(p[16:]),
		Records: binary.LittleEndian.Uint32(p[20:]),
		N:       binary.LittleEndian.Uint32(p[24:]),
		Data:    p[28:],
	}
	if int(r.N) != len(r.Data) {
		return r, fmt.Errorf("BatchesResponse data_len %d but %d data bytes follow", r.N, len(r.Data))
	}
	if r.Next-r.Start != uint64(r.N) {
		return r, fmt.Errorf("BatchesResponse start %d next %d disagree with data_len %d", r.Start, r.Next, r.N)
	}
	return r, nil
}

// client is one LWP connection.
type client struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
	d  dialect
	// backpressure counts backpressure frames seen (and skipped) by next:
	// they are signals, not replies.
	backpressure int
}

// replyTimeout bounds every wait for a reply, so that a server that never
// answers fails the test instead of hanging it.
const replyTimeout = 30 * time.Second

func dial(t testing.TB, addr string, d dialect) *client {
	t.Helper()
	c, err := dialErr(addr, d)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.nc.Close() })
	c.t = t
	return c
}

// dialErr connects without a test (for goroutines); the caller closes.
func dialErr(addr string, d dialect) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &client{nc: nc, r: bufio.NewReaderSize(nc, 256<<10), d: d}, nil
}

func (c *client) close() { c.nc.Close() }

func (c *client) send(frames ...[]byte) {
	c.t.Helper()
	if err := c.sendErr(frames...); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) sendErr(frames ...[]byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(replyTimeout))
	_, err := c.nc.Write(bytes.Join(frames, nil))
	return err
}

// next returns the next reply, skipping backpressure signals.
func (c *client) next() (frame, error) {
	for {
		c.nc.SetReadDeadline(time.Now().Add(replyTimeout))
		f, err := readFrame(c.r, c.d)
		if err != nil {
			return f, err
		}
		if f.Flags == flagBackpressure {
			c.backpressure++
			continue
		}
		return f, nil
	}
}

func (c *client) recv() frame {
	c.t.Helper()
	f, err := c.next()
	if err != nil {
		c.t.Fatalf("waiting for a reply: %v", err)
	}
	return f
}

// call sends one frame and returns its reply.
func (c *client) call(b []byte) frame {
	c.t.Helper()
	c.send(b)
	return c.recv()
}

// control sends a control request and returns the reply.
func (c *client) control(code uint64, payload []byte) frame {
	c.t.Helper()
	return c.call(controlFrame(c.d, code, payload))
}

// expectClosed asserts that the server closes the connection without
// sending a single byte.
func (c *client) expectClosed(what string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(replyTimeout))
	var buf [512]byte
	n, err := c.r.Read(buf[:])
	switch {
	case n > 0:
		c.t.Errorf("%s: the server sent %d bytes (% X…) instead of closing without a reply", what, n, buf[:min(n, 64)])
	case isClosed(err):
	case err != nil:
		c.t.Errorf("%s: waiting for the close: %v", what, err)
	}
}

// isClosed reports whether err is what reading a connection the peer
// closed returns.
func isClosed(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe")
}

// Assertions on replies.

// hexDump formats b 16 bytes a line for failure messages.
func hexDump(b []byte) string {
	if len(b) > 512 {
		return hex.Dump(b[:512]) + fmt.Sprintf("… (%d bytes in all)\n", len(b))
	}
	return hex.Dump(b)
}

// expectBytes asserts that the reply is exactly want, byte for byte.
func expectBytes(t testing.TB, what string, got frame, want []byte) {
	t.Helper()
	if !bytes.Equal(got.Raw, want) {
		t.Errorf("%s: got %s\n%swant\n%s", what, got.describe(), hexDump(got.Raw), hexDump(want))
	}
}

// expectError asserts that the reply is the ErrorResponse carrying text,
// byte for byte in dialect d.
func expectError(t testing.TB, d dialect, what string, got frame, text string) {
	t.Helper()
	if byte(got.BatchID) == codeErrorResponse && got.Flags == flagControl && string(got.Payload) != text {
		t.Errorf("%s: error text %q, want %q", what, got.Payload, text)
		return
	}
	expectBytes(t, what, got, errorFrame(d, text))
}

// expectControl asserts that the reply is a control frame with code and
// every header field a reply must have (flags exactly 0x40, batch_id the
// code, zero reserved, timestamp, record count and topic), and returns its
// payload.
func expectControl(t testing.TB, what string, got frame, code byte) ([]byte, bool) {
	t.Helper()
	if got.Flags != flagControl || got.BatchID != uint64(code) {
		t.Errorf("%s: got %s, want control 0x%02X", what, got.describe(), code)
		return nil, false
	}
	if got.Reserved != 0 || got.TimestampNS != 0 || got.RecordCount != 0 || got.TopicID != 0 {
		t.Errorf("%s: reply header has non-zero fields: reserved %d timestamp %d record_count %d topic_id %d",
			what, got.Reserved, got.TimestampNS, got.RecordCount, got.TopicID)
	}
	return got.Payload, true
}
