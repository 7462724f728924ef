package e2e

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// unhex turns a dump written with spaces, line breaks and "00*16" runs
// into bytes.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	var sb strings.Builder
	for _, tok := range strings.Fields(s) {
		if rep, ok := strings.CutPrefix(tok, "00*"); ok {
			sb.WriteString(strings.Repeat("00", atoi(t, rep)))
			continue
		}
		sb.WriteString(tok)
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatalf("bad vector %q: %v", s, err)
	}
	return b
}

func atoi(t *testing.T, s string) int {
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			t.Fatalf("bad count %q", s)
		}
		n = n*10 + int(r-'0')
	}
	return n
}

// The two TLV records of lwp.md §19.1.
var helloWorld = []byte{
	0x01, 0x05, 0, 0, 0, 'h', 'e', 'l', 'l', 'o',
	0x01, 0x05, 0, 0, 0, 'w', 'o', 'r', 'l', 'd',
}

// ts19 is the timestamp of the §19.1 example, 2024-02-03 00:00:00 UTC.
const ts19 = 1706918400000000000

func TestChecksumCheckValues(t *testing.T) {
	// lwp.md §4.1.
	for _, c := range []struct {
		in        string
		c32c, iee uint32
	}{
		{"123456789", 0xE3069283, 0xCBF43926},
		{"a", 0xC1D04330, 0xE8B7BE43},
		{"hello", 0x9A71BB4C, 0x3610A686},
		{"", 0, 0},
	} {
		if got := castagnoli.sum([]byte(c.in)); got != c.c32c {
			t.Errorf("CRC-32C(%q) = %08X, want %08X", c.in, got, c.c32c)
		}
		if got := ieee.sum([]byte(c.in)); got != c.iee {
			t.Errorf("IEEE(%q) = %08X, want %08X", c.in, got, c.iee)
		}
	}
}

func TestHeaderCRCTable(t *testing.T) {
	// lwp.md §4.4: bytes 8..11 for each flags value.
	for _, c := range []struct {
		flags      byte
		c32c, ieee string
	}{
		{0x04, "05 D4 38 DC", "3A F0 D8 6C"},
		{0x05, "7B 46 79 79", "0D 9A 1A 6D"},
		{0x08, "DA 4E B7 7A", "5E 09 C2 65"},
		{0x10, "95 0D 44 32", "96 FB F7 77"},
		{0x20, "0B 8B A2 A3", "06 1E 9C 53"},
		{0x40, "C6 F0 83 85", "26 D5 4B 1B"},
	} {
		for d, want := range map[dialect]string{castagnoli: c.c32c, ieee: c.ieee} {
			got := encode(d, frame{Flags: c.flags})[8:12]
			if !bytes.Equal(got, unhex(t, want)) {
				t.Errorf("flags 0x%02X %v: header CRC bytes % X, want %s", c.flags, d, got, want)
			}
		}
	}
}

func TestSection19Vectors(t *testing.T) {
	type vec struct {
		name string
		d    dialect
		got  []byte
		want string
	}
	ing := batch{Topic: 1, ID: 1, Timestamp: ts19, Records: 2, Data: helloWorld}
	fetchReq := fetchPayload(1, 0, 65536)
	fetchResp := fetchResponsePayload(20, helloWorld)
	vecs := []vec{
		// §19.1
		{"ingest", castagnoli, ingestFrame(castagnoli, ing), `
			4C 41 4E 43 01 04 00 00 05 D4 38 DC 01 00 00 00
			00 00 00 00 00 00 94 BC 3D 31 B0 17 02 00 00 00
			14 00 00 00 42 61 60 15 01 00 00 00 01 05 00 00
			00 68 65 6C 6C 6F 01 05 00 00 00 77 6F 72 6C 64`},
		{"ingest", ieee, ingestFrame(ieee, ing), `
			4C 41 4E 43 01 04 00 00 3A F0 D8 6C 01 00 00 00
			00 00 00 00 00 00 94 BC 3D 31 B0 17 02 00 00 00
			14 00 00 00 AC AD CC F2 01 00 00 00 01 05 00 00
			00 68 65 6C 6C 6F 01 05 00 00 00 77 6F 72 6C 64`},
		// §19.2
		{"ack", castagnoli, ackFrame(castagnoli, 1), `4C 41 4E 43 01 08 00 00 DA 4E B7 7A 01 00 00 00 00*28`},
		{"ack", ieee, ackFrame(ieee, 1), `4C 41 4E 43 01 08 00 00 5E 09 C2 65 01 00 00 00 00*28`},
		// §19.3 request
		{"create topic", castagnoli, controlFrame(castagnoli, codeCreateTopic, []byte("my-events")), `
			4C 41 4E 43 01 40 00 00 C6 F0 83 85 01 00 00 00
			00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
			09 00 00 00 39 66 E1 57 00 00 00 00 6D 79 2D 65
			76 65 6E 74 73`},
		{"create topic", ieee, controlFrame(ieee, codeCreateTopic, []byte("my-events")), `
			4C 41 4E 43 01 40 00 00 26 D5 4B 1B 01 00 00 00
			00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
			09 00 00 00 53 56 15 B4 00 00 00 00 6D 79 2D 65
			76 65 6E 74 73`},
		// §19.4
		{"keepalive", castagnoli, keepaliveFrame(castagnoli), `4C 41 4E 43 01 20 00 00 0B 8B A2 A3 00*32`},
		{"keepalive", ieee, keepaliveFrame(ieee), `4C 41 4E 43 01 20 00 00 06 1E 9C 53 00*32`},
		// §19.5
		{"fetch", castagnoli, controlFrame(castagnoli, codeFetch, fetchReq), `
			4C 41 4E 43 01 40 00 00 C6 F0 83 85 10 00 00 00  00*16  10 00 00 00 63 0F DE A3 00 00 00 00
			01 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00`},
		{"fetch", ieee, controlFrame(ieee, codeFetch, fetchReq), `
			4C 41 4E 43 01 40 00 00 26 D5 4B 1B 10 00 00 00  00*16  10 00 00 00 85 EB C8 5B 00 00 00 00
			01 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00`},
		{"fetch response", castagnoli, controlFrame(castagnoli, codeFetchResponse, fetchResp), `
			4C 41 4E 43 01 40 00 00 C6 F0 83 85 11 00 00 00
			00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
			24 00 00 00 1B 35 6C 92 00 00 00 00 14 00 00 00
			00 00 00 00 14 00 00 00 01 00 00 00 01 05 00 00
			00 68 65 6C 6C 6F 01 05 00 00 00 77 6F 72 6C 64`},
		{"fetch response", ieee, controlFrame(ieee, codeFetchResponse, fetchResp), `
			4C 41 4E 43 01 40 00 00 26 D5 4B 1B 11 00 00 00
			00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
			24 00 00 00 BC FE 13 D2 00 00 00 00 14 00 00 00
			00 00 00 00 14 00 00 00 01 00 00 00 01 05 00 00
			00 68 65 6C 6C 6F 01 05 00 00 00 77 6F 72 6C 64`},
		// §19.6
		{"error", castagnoli, errorFrame(castagnoli, "Topic not found"), `
			4C 41 4E 43 01 40 00 00 C6 F0 83 85 FF 00 00 00  00*16  0F 00 00 00 27 33 3F 2E 00 00 00 00
			54 6F 70 69 63 20 6E 6F 74 20 66 6F 75 6E 64`},
		{"error", ieee, errorFrame(ieee, "Topic not found"), `
			4C 41 4E 43 01 40 00 00 26 D5 4B 1B FF 00 00 00  00*16  0F 00 00 00 D9 55 56 94 00 00 00 00
			54 6F 70 69 63 20 6E 6F 74 20 66 6F 75 6E 64`},
	}
	for _, v := range vecs {
		want := unhex(t, v.want)
		if !bytes.Equal(v.got, want) {
			t.Errorf("§19 %s (%v):\n%swant\n%s", v.name, v.d, hexDump(v.got), hexDump(want))
		}
	}

	// §19.3 response: the first 44 bytes of the TopicResponse.
	js := []byte(`{"created_at":1706918400,"id":1,"name":"my-events","topic_epoch":1}`)
	for d, want := range map[dialect]string{
		castagnoli: `4C 41 4E 43 01 40 00 00 C6 F0 83 85 80 00 00 00  00*16  43 00 00 00 35 29 06 CF 00 00 00 00`,
		ieee:       `4C 41 4E 43 01 40 00 00 26 D5 4B 1B 80 00 00 00  00*16  43 00 00 00 6A 73 C6 F5 00 00 00 00`,
	} {
		got := controlFrame(d, codeTopicResponse, js)
		if !bytes.Equal(got[:headerSize], unhex(t, want)) || !bytes.Equal(got[headerSize:], js) {
			t.Errorf("§19.3 topic response (%v):\n%s", d, hexDump(got))
		}
	}

	// §19.7 payload layouts.
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"SetRetention", setRetentionPayload(1, 86400, 1<<30), "01000000 8051010000000000 0000004000000000"},
		{"CreateTopicWithRetention", createWithRetentionPayload("events", 86400, 0), "0600 6576656E7473 8051010000000000 0000000000000000"},
		{"Subscribe", subscribePayload(42, 1000, 65536, 0xDEADBEEF12345678), "2A000000 E803000000000000 00000100 78563412EFBEADDE"},
		{"Unsubscribe", unsubscribePayload(7, 0xCAFEBABE00000001), "07000000 01000000BEBAFECA"},
		{"CommitOffset", commitPayload(99, 0x1234567890ABCDEF, 50000), "63000000 EFCDAB9078563412 50C3000000000000"},
		{"CatchingUp", le64(nil, 42), "2A00000000000000"},
		{"AuthenticateResponse", append([]byte{1}, "Authenticated"...), "01 41 75 74 68 65 6E 74 69 63 61 74 65 64"},
	} {
		if want := unhex(t, c.want); !bytes.Equal(c.got, want) {
			t.Errorf("§19.7 %s: % X, want % X", c.name, c.got, want)
		}
	}
}

// TestDecodeOwnFrames checks that the reader accepts what the encoder
// writes and refuses the corruptions the server must refuse too.
func TestDecodeOwnFrames(t *testing.T) {
	for _, d := range []dialect{ieee, castagnoli} {
		b := ingestFrame(d, batch{Topic: 3, ID: 9, Timestamp: 5, Records: 2, Data: helloWorld, AckOffset: true})
		f, err := readFrame(bytes.NewReader(b), d)
		if err != nil {
			t.Fatalf("%v: %v", d, err)
		}
		if f.Flags != flagBatch || f.Reserved != reservedAckOffset || f.BatchID != 9 || f.TimestampNS != 5 ||
			f.RecordCount != 2 || f.TopicID != 3 || !bytes.Equal(f.Payload, helloWorld) || !bytes.Equal(f.Raw, b) {
			t.Errorf("%v: decoded %+v", d, f)
		}
		other := ieee
		if d == ieee {
			other = castagnoli
		}
		if _, err := readFrame(bytes.NewReader(b), other); err == nil {
			t.Errorf("%v frame accepted in the %v dialect", d, other)
		}
		for i, what := range map[int]string{0: "magic", 4: "version", 9: "header CRC", 37: "payload CRC"} {
			bad := bytes.Clone(b)
			bad[i] ^= 0x10
			if _, err := readFrame(bytes.NewReader(bad), d); err == nil {
				t.Errorf("%v: frame with a bad %s accepted", d, what)
			}
		}
	}
}
