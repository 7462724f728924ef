package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/lance-go/lance/lnc-core/checksum"
)

// randomStream builds n frames of random kinds and sizes in dialect d and
// returns the stream and the frames as they must come out.
func randomStream(r *rand.Rand, d checksum.Dialect, n, maxPayload int) ([]byte, []Frame) {
	var stream []byte
	var frames []Frame
	for range n {
		payload := make([]byte, r.IntN(maxPayload+1))
		for i := range payload {
			payload[i] = byte(r.Uint32())
		}
		h := Header{
			Flags:       Flags(r.Uint32()),
			Reserved:    uint16(r.Uint32() & 1), // mostly 0, sometimes not
			BatchID:     r.Uint64(),
			TimestampNS: r.Uint64(),
			RecordCount: r.Uint32(),
			TopicID:     r.Uint32(),
		}
		stream = Append(stream, &h, payload, d)
		if len(payload) == 0 {
			payload = nil
		}
		frames = append(frames, Frame{Header: h, Payload: payload})
	}
	return stream, frames
}

// drain takes every complete frame out of p, copying payloads.
func drain(t testing.TB, p *Parser, out []Frame) ([]Frame, error) {
	for {
		f, ok, err := p.Next()
		if err != nil {
			return out, err
		}
		if !ok {
			return out, nil
		}
		if f.Payload != nil {
			f.Payload = bytes.Clone(f.Payload)
		}
		out = append(out, f)
	}
}

func sameFrames(t *testing.T, got, want []Frame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Header != want[i].Header || !bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Fatalf("frame %d:\n got %+v\nwant %+v", i, got[i].Header, want[i].Header)
		}
	}
}

func TestStreamAnyChunking(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for _, d := range []checksum.Dialect{checksum.IEEE, checksum.Castagnoli} {
		stream, want := randomStream(r, d, 200, 3000)
		for _, maxChunk := range []int{1, 2, 43, 44, 45, 1000, 1 << 20} {
			p := NewParser(Config{BufferSize: 512})
			var got []Frame
			var err error
			for rest := stream; len(rest) > 0; {
				n := min(len(rest), 1+r.IntN(maxChunk))
				if _, err = p.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
				if got, err = drain(t, p, got); err != nil {
					t.Fatalf("%v chunk %d: %v", d, maxChunk, err)
				}
			}
			sameFrames(t, got, want)
			if p.Dialect() != d || p.Buffered() != 0 || p.Offset() != uint64(len(stream)) {
				t.Errorf("%v: dialect %v buffered %d offset %d", d, p.Dialect(), p.Buffered(), p.Offset())
			}
		}
	}
}

// chunkReader returns at most a random number of bytes per Read.
type chunkReader struct {
	r    *rand.Rand
	data []byte
	max  int
}

func (c *chunkReader) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(b), len(c.data), 1+c.r.IntN(c.max))
	copy(b, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func readAll(t testing.TB, p *Parser, rd io.Reader) ([]Frame, error) {
	var got []Frame
	for {
		var err error
		if got, err = drain(t, p, got); err != nil {
			return got, err
		}
		if _, err := p.Fill(rd); err != nil {
			if errors.Is(err, io.EOF) {
				got, err = drain(t, p, got)
				return got, err
			}
			return got, err
		}
	}
}

func TestFill(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	stream, want := randomStream(r, checksum.IEEE, 40, 20000)
	for _, rd := range []io.Reader{
		iotest.OneByteReader(bytes.NewReader(stream)),
		iotest.HalfReader(bytes.NewReader(stream)),
		&chunkReader{r: r, data: stream, max: 5000},
		bytes.NewReader(stream),
	} {
		p := NewParser(Config{Dialect: checksum.IEEE, BufferSize: 1024})
		got, err := readAll(t, p, rd)
		if err != nil {
			t.Fatal(err)
		}
		sameFrames(t, got, want)
		// The buffer holds at most one frame plus one chunk.
		if cap(p.buf) > HeaderSize+20000+1024 {
			t.Errorf("buffer grew to %d", cap(p.buf))
		}
	}
}

func TestBufferShrinksAfterLargeFrame(t *testing.T) {
	big := AppendIngest(nil, checksum.IEEE, 1, 0, 1, 1, make([]byte, 1<<20))
	small := AppendKeepalive(nil, checksum.IEEE)
	p := NewParser(Config{BufferSize: 4096})
	got, err := readAll(t, p, bytes.NewReader(append(big, small...)))
	if err != nil || len(got) != 2 {
		t.Fatalf("frames %d, err %v", len(got), err)
	}
	if _, err := p.Fill(bytes.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	if cap(p.buf) > 4096 {
		t.Errorf("idle buffer still %d bytes after a 1 MiB frame", cap(p.buf))
	}
}

func TestTruncatedFrameWaits(t *testing.T) {
	frame := AppendIngest(nil, checksum.IEEE, 9, 0, 1, 3, []byte("payload bytes"))
	for cut := range len(frame) {
		p := NewParser(Config{})
		p.Write(frame[:cut])
		if _, ok, err := p.Next(); ok || err != nil {
			t.Fatalf("cut %d: ok=%v err=%v", cut, ok, err)
		}
		if p.Buffered() != cut {
			t.Fatalf("cut %d: buffered %d", cut, p.Buffered())
		}
		p.Write(frame[cut:])
		if f, ok, err := p.Next(); !ok || err != nil || string(f.Payload) != "payload bytes" {
			t.Fatalf("cut %d: after completion ok=%v err=%v", cut, ok, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := AppendIngest(nil, checksum.IEEE, 1, 2, 3, 4, []byte("abc"))
	corrupt := func(mutate func(b []byte)) []byte {
		b := bytes.Clone(good)
		mutate(b)
		return b
	}
	type tc struct {
		name  string
		input []byte
		cfg   Config
		want  error
	}
	cases := []tc{
		{"magic", corrupt(func(b []byte) { b[0] = 'X' }), Config{}, ErrBadMagic},
		{"version", corrupt(func(b []byte) { b[4] = 2 }), Config{}, ErrBadVersion},
		{"header-crc", corrupt(func(b []byte) { b[8] ^= 1 }), Config{}, ErrHeaderCRC},
		{"flags-under-crc", corrupt(func(b []byte) { b[5] = 0x40 }), Config{}, ErrHeaderCRC},
		{"reserved-under-crc", corrupt(func(b []byte) { b[7] = 1 }), Config{}, ErrHeaderCRC},
		{"payload-crc", corrupt(func(b []byte) { b[HeaderSize] ^= 0x80 }), Config{}, ErrPayloadCRC},
		{"payload-crc-field", corrupt(func(b []byte) { b[36] ^= 1 }), Config{}, ErrPayloadCRC},
		{"too-large", corrupt(func(b []byte) { binary.LittleEndian.PutUint32(b[32:], DefaultMaxPayload+1) }), Config{}, ErrPayloadTooLarge},
		{"configured-limit", good, Config{MaxPayload: 2}, ErrPayloadTooLarge},
		// The length check runs before the magic check, as in the Rust server.
		{"too-large-before-magic", corrupt(func(b []byte) {
			b[0] = 'X'
			binary.LittleEndian.PutUint32(b[32:], 0xFFFFFFFF)
		}), Config{}, ErrPayloadTooLarge},
		{"wrong-dialect", good, Config{Dialect: checksum.Castagnoli}, ErrHeaderCRC},
		// Garbage whose bytes 32..35 read as a small length fails on magic.
		{"garbage", append([]byte("GET / HTTP/1.1\r\nHost: localhost:"), make([]byte, 12)...), Config{}, ErrBadMagic},
	}
	for _, c := range cases {
		p := NewParser(c.cfg)
		p.Write(c.input)
		_, ok, err := p.Next()
		if ok || !errors.Is(err, c.want) {
			t.Errorf("%s: ok=%v err=%v, want %v", c.name, ok, err, c.want)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Offset != 0 {
			t.Errorf("%s: %v is not a ParseError at offset 0", c.name, err)
		}
		if err.Error() == "" {
			t.Errorf("%s: empty message", c.name)
		}
		// Sticky.
		if _, err2 := p.Write(good); !errors.Is(err2, c.want) {
			t.Errorf("%s: Write after error = %v", c.name, err2)
		}
		if _, _, err2 := p.Next(); !errors.Is(err2, c.want) {
			t.Errorf("%s: Next after error = %v", c.name, err2)
		}
		if _, err2 := p.Fill(bytes.NewReader(good)); !errors.Is(err2, c.want) {
			t.Errorf("%s: Fill after error = %v", c.name, err2)
		}
	}
}

func TestErrorOffsetAndDialectLock(t *testing.T) {
	var stream []byte
	stream = AppendKeepalive(stream, checksum.Castagnoli)
	stream = AppendAck(stream, checksum.Castagnoli, 5)
	bad := len(stream)
	stream = AppendAck(stream, checksum.IEEE, 6) // valid, but in the other dialect
	p := NewParser(Config{})
	p.Write(stream)
	got, err := drain(t, p, nil)
	if len(got) != 2 || !errors.Is(err, ErrHeaderCRC) {
		t.Fatalf("frames %d err %v", len(got), err)
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Offset != uint64(bad) || pe.Dialect != checksum.Castagnoli {
		t.Fatalf("error %+v, want offset %d in crc32c", pe, bad)
	}
}

func TestHTTPIsNotLWP(t *testing.T) {
	p := NewParser(Config{})
	p.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n"))
	_, _, err := p.Next()
	var pe *ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPayloadTooLarge) || !pe.NotLWP {
		t.Fatalf("err = %v", err)
	}
}

func TestEmptyPayloadCRCIgnored(t *testing.T) {
	b := AppendKeepalive(nil, checksum.IEEE)
	binary.LittleEndian.PutUint32(b[36:], 0xDEADBEEF)
	p := NewParser(Config{})
	p.Write(b)
	f, ok, err := p.Next()
	if !ok || err != nil || f.Kind() != KindKeepalive || f.Payload != nil {
		t.Fatalf("ok=%v err=%v kind=%v", ok, err, f.Kind())
	}
}

func TestOversizeAllocatesNothing(t *testing.T) {
	h := Header{Flags: FlagBatch, PayloadLength: 0xFFFFFFF0}
	var b [HeaderSize]byte
	PutHeader(b[:], &h, checksum.IEEE)
	p := NewParser(Config{BufferSize: 128})
	_, err := p.Fill(bytes.NewReader(b[:]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Fill(bytes.NewReader(b[:])); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("Fill = %v", err)
	}
	if cap(p.buf) > 128 {
		t.Errorf("buffer grew to %d for a rejected header", cap(p.buf))
	}
}

func TestFramesStayValidUntilRefill(t *testing.T) {
	var stream []byte
	for i := range 10 {
		stream = AppendIngest(stream, checksum.IEEE, uint64(i), 0, 1, 1, []byte{byte(i), byte(i)})
	}
	p := NewParser(Config{})
	p.Write(stream)
	var frames []Frame
	for {
		f, ok, err := p.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		frames = append(frames, f)
	}
	for i, f := range frames {
		if f.BatchID != uint64(i) || f.Payload[0] != byte(i) || cap(f.Payload) != 2 {
			t.Fatalf("frame %d changed: %+v % x cap %d", i, f.Header, f.Payload, cap(f.Payload))
		}
	}
}

func TestReset(t *testing.T) {
	p := NewParser(Config{})
	p.Write(AppendKeepalive(nil, checksum.Castagnoli))
	p.Write([]byte("garbage that is long enough to be a whole header, surely"))
	drain(t, p, nil)
	if p.Err() == nil {
		t.Fatal("no error after garbage")
	}
	p.Reset(Config{})
	if p.Err() != nil || p.Dialect() != 0 || p.Buffered() != 0 || p.Offset() != 0 {
		t.Fatal("Reset kept state")
	}
	p.Write(AppendKeepalive(nil, checksum.IEEE))
	if _, ok, err := p.Next(); !ok || err != nil || p.Dialect() != checksum.IEEE {
		t.Fatalf("after Reset: %v %v %v", ok, err, p.Dialect())
	}
}

func TestHeadFrameSize(t *testing.T) {
	p := NewParser(Config{BufferSize: 128})
	if n := p.HeadFrameSize(); n != 0 {
		t.Fatalf("empty parser: %d", n)
	}
	f := AppendIngest(nil, checksum.IEEE, 1, 2, 3, 4, make([]byte, 1000))
	p.Write(f[:HeaderSize-1])
	if n := p.HeadFrameSize(); n != 0 {
		t.Fatalf("partial header: %d", n)
	}
	p.Write(f[HeaderSize-1 : HeaderSize+10])
	if n := p.HeadFrameSize(); n != len(f) {
		t.Fatalf("header in: %d, want %d", n, len(f))
	}
	p.Write(f[HeaderSize+10:])
	if _, ok, err := p.Next(); !ok || err != nil {
		t.Fatalf("Next: %v %v", ok, err)
	}
	if n := p.HeadFrameSize(); n != 0 {
		t.Fatalf("after the frame: %d", n)
	}
	bad := append([]byte(nil), f...)
	bad[0] = 'X'
	p.Write(bad)
	if n := p.HeadFrameSize(); n != 0 || p.Err() == nil {
		t.Fatalf("bad magic: size %d err %v", n, p.Err())
	}
	if p.ChunkSize() != 128 {
		t.Fatalf("chunk %d", p.ChunkSize())
	}
}
