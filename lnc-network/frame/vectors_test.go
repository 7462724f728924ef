package frame

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/lance-go/lance/lnc-core/checksum"
)

// unhex turns a hex dump (offsets, spaces and newlines allowed; an offset is
// a 4-digit column at the start of a line) into bytes.
func unhex(t testing.TB, dump string) []byte {
	t.Helper()
	var sb strings.Builder
	for _, line := range strings.Split(dump, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && len(fields[0]) == 4 {
			fields = fields[1:] // offset column
		}
		for _, f := range fields {
			sb.WriteString(f)
		}
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// zeros returns n zero bytes written as hex.
func zeros(n int) string { return strings.Repeat("00 ", n) }

// The vectors of the LWP digest §19, in both dialects. Only the CRC bytes
// differ between a frame's two dialects.
var (
	tlvHelloWorld = "01 05 00 00 00 68 65 6C 6C 6F 01 05 00 00 00 77 6F 72 6C 64"

	// §19.1 ingest, batch 1, ts 2024-02-03, 2 records, topic 1.
	ingestC = `
0000  4C 41 4E 43 01 04 00 00 05 D4 38 DC 01 00 00 00
0010  00 00 00 00 00 00 94 BC 3D 31 B0 17 02 00 00 00
0020  14 00 00 00 42 61 60 15 01 00 00 00 01 05 00 00
0030  00 68 65 6C 6C 6F 01 05 00 00 00 77 6F 72 6C 64`
	ingestI = `
0000  4C 41 4E 43 01 04 00 00 3A F0 D8 6C 01 00 00 00
0010  00 00 00 00 00 00 94 BC 3D 31 B0 17 02 00 00 00
0020  14 00 00 00 AC AD CC F2 01 00 00 00 01 05 00 00
0030  00 68 65 6C 6C 6F 01 05 00 00 00 77 6F 72 6C 64`

	// §19.2 ack of batch 1.
	ackC = "4C 41 4E 43 01 08 00 00 DA 4E B7 7A 01 00 00 00" + zeros(28)
	ackI = "4C 41 4E 43 01 08 00 00 5E 09 C2 65 01 00 00 00" + zeros(28)

	// §19.3 CreateTopic "my-events".
	createC = `
0000  4C 41 4E 43 01 40 00 00 C6 F0 83 85 01 00 00 00
0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
0020  09 00 00 00 39 66 E1 57 00 00 00 00 6D 79 2D 65
0030  76 65 6E 74 73`
	createI = `
0000  4C 41 4E 43 01 40 00 00 26 D5 4B 1B 01 00 00 00
0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
0020  09 00 00 00 53 56 15 B4 00 00 00 00 6D 79 2D 65
0030  76 65 6E 74 73`
	topicJSON = `{"created_at":1706918400,"id":1,"name":"my-events","topic_epoch":1}`
	// §19.3 TopicResponse header (the JSON follows it).
	topicRespC = "4C 41 4E 43 01 40 00 00 C6 F0 83 85 80 00 00 00" + zeros(16) + "43 00 00 00 35 29 06 CF 00 00 00 00"
	topicRespI = "4C 41 4E 43 01 40 00 00 26 D5 4B 1B 80 00 00 00" + zeros(16) + "43 00 00 00 6A 73 C6 F5 00 00 00 00"

	// §19.4 keepalive.
	keepaliveC = "4C 41 4E 43 01 20 00 00 0B 8B A2 A3" + zeros(32)
	keepaliveI = "4C 41 4E 43 01 20 00 00 06 1E 9C 53" + zeros(32)

	// §19.5 Fetch(topic 1, offset 0, max 65536) and its FetchResponse.
	fetchC = "4C 41 4E 43 01 40 00 00 C6 F0 83 85 10 00 00 00" + zeros(16) + "10 00 00 00 63 0F DE A3 00 00 00 00" +
		"01 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00"
	fetchI = "4C 41 4E 43 01 40 00 00 26 D5 4B 1B 10 00 00 00" + zeros(16) + "10 00 00 00 85 EB C8 5B 00 00 00 00" +
		"01 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00"
	fetchRespC = `
0000  4C 41 4E 43 01 40 00 00 C6 F0 83 85 11 00 00 00
0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
0020  24 00 00 00 1B 35 6C 92 00 00 00 00 14 00 00 00
0030  00 00 00 00 14 00 00 00 01 00 00 00 01 05 00 00
0040  00 68 65 6C 6C 6F 01 05 00 00 00 77 6F 72 6C 64`
	fetchRespI = `
0000  4C 41 4E 43 01 40 00 00 26 D5 4B 1B 11 00 00 00
0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
0020  24 00 00 00 BC FE 13 D2 00 00 00 00 14 00 00 00
0030  00 00 00 00 14 00 00 00 01 00 00 00 01 05 00 00
0040  00 68 65 6C 6C 6F 01 05 00 00 00 77 6F 72 6C 64`

	// §19.6 ErrorResponse "Topic not found".
	errorC = "4C 41 4E 43 01 40 00 00 C6 F0 83 85 FF 00 00 00" + zeros(16) + "0F 00 00 00 27 33 3F 2E 00 00 00 00" +
		"54 6F 70 69 63 20 6E 6F 74 20 66 6F 75 6E 64"
	errorI = "4C 41 4E 43 01 40 00 00 26 D5 4B 1B FF 00 00 00" + zeros(16) + "0F 00 00 00 D9 55 56 94 00 00 00 00" +
		"54 6F 70 69 63 20 6E 6F 74 20 66 6F 75 6E 64"
)

type vector struct {
	name     string
	d        checksum.Dialect
	want     string // full frame as hex
	kind     Kind
	encode   func(dst []byte, d checksum.Dialect) []byte
	wantHdr  Header // fields checked after parsing (CRC fields excluded)
	wantBody []byte
}

func vectors(t *testing.T) []vector {
	hw := unhex(t, tlvHelloWorld)
	fetchReq := unhex(t, "01 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00")
	fetchResp := unhex(t, "14 00 00 00 00 00 00 00 14 00 00 00 01 00 00 00 "+tlvHelloWorld)
	ts := uint64(1706918400000000000)
	var vs []vector
	for _, d := range []checksum.Dialect{checksum.Castagnoli, checksum.IEEE} {
		pick := func(c, i string) string {
			if d == checksum.Castagnoli {
				return c
			}
			return i
		}
		vs = append(vs,
			vector{"ingest", d, pick(ingestC, ingestI), KindIngest,
				func(dst []byte, d checksum.Dialect) []byte { return AppendIngest(dst, d, 1, ts, 2, 1, hw) },
				Header{Flags: FlagBatch, BatchID: 1, TimestampNS: ts, RecordCount: 2, PayloadLength: 20, TopicID: 1}, hw},
			vector{"ack", d, pick(ackC, ackI), KindAck,
				func(dst []byte, d checksum.Dialect) []byte { return AppendAck(dst, d, 1) },
				Header{Flags: FlagAck, BatchID: 1}, nil},
			vector{"create-topic", d, pick(createC, createI), KindControl,
				func(dst []byte, d checksum.Dialect) []byte { return AppendControl(dst, d, 0x01, []byte("my-events")) },
				Header{Flags: FlagControl, BatchID: 1, PayloadLength: 9}, []byte("my-events")},
			vector{"topic-response", d, pick(topicRespC, topicRespI) + hex.EncodeToString([]byte(topicJSON)), KindControl,
				func(dst []byte, d checksum.Dialect) []byte { return AppendControl(dst, d, 0x80, []byte(topicJSON)) },
				Header{Flags: FlagControl, BatchID: 0x80, PayloadLength: 67}, []byte(topicJSON)},
			vector{"keepalive", d, pick(keepaliveC, keepaliveI), KindKeepalive,
				func(dst []byte, d checksum.Dialect) []byte { return AppendKeepalive(dst, d) },
				Header{Flags: FlagKeepalive}, nil},
			vector{"fetch", d, pick(fetchC, fetchI), KindControl,
				func(dst []byte, d checksum.Dialect) []byte { return AppendControl(dst, d, 0x10, fetchReq) },
				Header{Flags: FlagControl, BatchID: 0x10, PayloadLength: 16}, fetchReq},
			vector{"fetch-response", d, pick(fetchRespC, fetchRespI), KindControl,
				func(dst []byte, d checksum.Dialect) []byte { return AppendControl(dst, d, 0x11, fetchResp) },
				Header{Flags: FlagControl, BatchID: 0x11, PayloadLength: 36}, fetchResp},
			vector{"error-response", d, pick(errorC, errorI), KindControl,
				func(dst []byte, d checksum.Dialect) []byte {
					return AppendControl(dst, d, 0xFF, []byte("Topic not found"))
				},
				Header{Flags: FlagControl, BatchID: 0xFF, PayloadLength: 15}, []byte("Topic not found")},
		)
	}
	return vs
}

func TestVectorsEncode(t *testing.T) {
	for _, v := range vectors(t) {
		want := unhex(t, v.want)
		prefix := []byte("prefix")
		got := v.encode(append([]byte(nil), prefix...), v.d)
		if !bytes.HasPrefix(got, prefix) {
			t.Fatalf("%s/%v: Append clobbered dst", v.name, v.d)
		}
		if got = got[len(prefix):]; !bytes.Equal(got, want) {
			t.Errorf("%s/%v:\n got % X\nwant % X", v.name, v.d, got, want)
		}
	}
}

func TestVectorsParse(t *testing.T) {
	for _, v := range vectors(t) {
		for _, cfg := range []Config{{}, {Dialect: v.d}} {
			p := NewParser(cfg)
			if _, err := p.Write(unhex(t, v.want)); err != nil {
				t.Fatal(err)
			}
			f, ok, err := p.Next()
			if err != nil || !ok {
				t.Fatalf("%s/%v: Next = %v, %v", v.name, v.d, ok, err)
			}
			if p.Dialect() != v.d {
				t.Errorf("%s/%v: detected dialect %v", v.name, v.d, p.Dialect())
			}
			if f.Kind() != v.kind {
				t.Errorf("%s/%v: kind %v, want %v", v.name, v.d, f.Kind(), v.kind)
			}
			got := f.Header
			got.HeaderCRC, got.PayloadCRC = 0, 0
			if got != v.wantHdr {
				t.Errorf("%s/%v: header\n got %+v\nwant %+v", v.name, v.d, got, v.wantHdr)
			}
			if !bytes.Equal(f.Payload, v.wantBody) {
				t.Errorf("%s/%v: payload % X, want % X", v.name, v.d, f.Payload, v.wantBody)
			}
			if f.HeaderCRC != HeaderCRC(v.d, f.Flags, 0) {
				t.Errorf("%s/%v: header CRC %#x", v.name, v.d, f.HeaderCRC)
			}
			if _, more, err := p.Next(); more || err != nil || p.Buffered() != 0 {
				t.Errorf("%s/%v: leftover after one frame: %v %v %d", v.name, v.d, more, err, p.Buffered())
			}
		}
	}
}

// TestHeaderCRCTable checks the constants of the digest §4.4: the header
// CRC depends on the flags byte only.
func TestHeaderCRCTable(t *testing.T) {
	f := func(flags Flags, c, i uint32) {
		t.Helper()
		if got := HeaderCRC(checksum.Castagnoli, flags, 0); got != c {
			t.Errorf("crc32c flags %#02x: %#08x, want %#08x", flags, got, c)
		}
		if got := HeaderCRC(checksum.IEEE, flags, 0); got != i {
			t.Errorf("ieee flags %#02x: %#08x, want %#08x", flags, got, i)
		}
	}
	f(0x04, 0xDC38D405, 0x6CD8F03A)
	f(0x05, 0x7979467B, 0x6D1A9A0D)
	f(0x08, 0x7AB74EDA, 0x65C2095E)
	f(0x10, 0x32440D95, 0x77F7FB96)
	f(0x20, 0xA3A28B0B, 0x539C1E06)
	f(0x40, 0x8583F0C6, 0x1B4BD526)
}

func TestKindPriority(t *testing.T) {
	f := func(flags Flags, payloadLen uint32, want Kind) {
		t.Helper()
		h := Header{Flags: flags, PayloadLength: payloadLen}
		if got := h.Kind(); got != want {
			t.Errorf("flags %#02x len %d: %v, want %v", flags, payloadLen, got, want)
		}
	}
	f(0x00, 0, KindUnknown)
	f(0x00, 1, KindIngest) // no flags but a payload: ingest
	f(0x01, 0, KindUnknown)
	f(0x02, 0, KindUnknown)
	f(0x80, 0, KindUnknown)
	f(0x04, 0, KindIngest)
	f(0x05, 10, KindIngest)
	f(0x10, 0, KindBackpressure)
	f(0x14, 5, KindBackpressure)
	f(0x08, 0, KindAck)
	f(0x18, 0, KindAck)
	f(0x20, 0, KindKeepalive)
	f(0x28, 0, KindKeepalive)
	f(0x40, 0, KindControl)
	f(0xFF, 9, KindControl)
	h := Header{Flags: FlagControl, BatchID: 0x0101}
	if h.Command() != 0x01 {
		t.Errorf("Command of batch_id 0x0101 = %#x, want 0x01", h.Command())
	}
}
