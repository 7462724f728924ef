package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/lance-go/lance/lnc-core/checksum"
)

// Sentinel errors of the parser; each names the check that failed. Use
// errors.Is: the parser returns them wrapped in a *ParseError that says
// where in the stream the bad frame began.
var (
	ErrPayloadTooLarge = errors.New("lwp: payload length over limit")
	ErrBadMagic        = errors.New("lwp: bad magic")
	ErrBadVersion      = errors.New("lwp: unsupported version")
	ErrHeaderCRC       = errors.New("lwp: header CRC mismatch")
	ErrPayloadCRC      = errors.New("lwp: payload CRC mismatch")
)

// ParseError reports a frame that failed a check. Every ParseError is fatal
// to the stream: LWP answers it by closing the connection without a reply.
type ParseError struct {
	// Err is one of the parser's sentinel errors.
	Err error
	// Offset is the position in the stream of the bad frame's first byte.
	Offset uint64
	// Got and Want hold the offending and expected values where the check
	// compares two numbers (CRCs, version, payload length vs limit).
	Got, Want uint64
	// Dialect is the checksum dialect in force, for the CRC checks.
	Dialect checksum.Dialect
	// NotLWP is set on a length error when the magic is wrong as well: the
	// length check comes first, but the peer is likely not speaking LWP.
	NotLWP bool
}

func (e *ParseError) Error() string {
	switch {
	case errors.Is(e.Err, ErrHeaderCRC), errors.Is(e.Err, ErrPayloadCRC):
		if e.Dialect == 0 {
			return fmt.Sprintf("%v at stream offset %d: %#08x matches neither dialect", e.Err, e.Offset, e.Got)
		}
		return fmt.Sprintf("%v at stream offset %d: got %#08x, want %#08x (%v)", e.Err, e.Offset, e.Got, e.Want, e.Dialect)
	case errors.Is(e.Err, ErrPayloadTooLarge):
		msg := fmt.Sprintf("%v at stream offset %d: %d bytes, limit %d", e.Err, e.Offset, e.Got, e.Want)
		if e.NotLWP {
			msg += " (the magic is wrong too: the peer is probably not speaking LWP)"
		}
		return msg
	case errors.Is(e.Err, ErrBadVersion):
		return fmt.Sprintf("%v at stream offset %d: %d", e.Err, e.Offset, e.Got)
	case errors.Is(e.Err, ErrBadMagic):
		return fmt.Sprintf("%v at stream offset %d: % x", e.Err, e.Offset, binary.BigEndian.AppendUint32(nil, uint32(e.Got)))
	}
	return fmt.Sprintf("%v at stream offset %d", e.Err, e.Offset)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Frame is one parsed frame. Payload aliases the Parser's buffer: it stays
// valid until the next call to Write, Fill or Reset on that Parser, and must
// be copied to be kept longer.
type Frame struct {
	Header
	Payload []byte
}

// Config sets up a Parser. The zero value is usable: it detects the dialect
// and accepts payloads up to DefaultMaxPayload.
type Config struct {
	// Dialect, when set, is enforced from the first frame. When zero the
	// parser adopts the dialect in which the first frame's header CRC is
	// right, and enforces that one afterwards.
	Dialect checksum.Dialect
	// MaxPayload bounds payload_length; larger frames fail with
	// ErrPayloadTooLarge before any byte of their payload is buffered.
	// Zero means DefaultMaxPayload.
	MaxPayload uint32
	// BufferSize is the initial buffer and the chunk Fill asks the reader
	// for. Zero means 64 KiB. The buffer grows to hold one whole frame when
	// a frame is larger, never more.
	BufferSize int
	// Retain is the largest buffer the parser keeps once it has handed out
	// everything buffered; a larger one (grown for a large frame) is
	// dropped then, so that an idle connection costs little. Zero means
	// 4 × BufferSize. A receiver of many large frames (a consumer) sets
	// it above its frame size to reuse one buffer.
	Retain int
}

// Parser splits a byte stream into frames, checking each in the order the
// Rust server does: once 44 bytes are buffered, payload_length against the
// limit, then magic, version and header CRC; once the payload is complete,
// its CRC (only when it is not empty). It accepts input in pieces of any
// size, one byte at a time or many frames at once.
//
// A Parser is not safe for concurrent use; a connection owns one.
// After a ParseError every later call returns the same error.
type Parser struct {
	buf  []byte // buffered bytes are buf[r:w]
	r, w int
	off  uint64 // stream offset of buf[r]

	maxPayload uint32
	dialect    checksum.Dialect
	chunk      int
	retain     int

	// hdr caches the validated header of the frame starting at buf[r],
	// so that a frame arriving a byte at a time is checked once.
	hdr   Header
	hdrOK bool

	err error
}

// NewParser returns a Parser configured by cfg.
func NewParser(cfg Config) *Parser {
	p := &Parser{maxPayload: cfg.MaxPayload, dialect: cfg.Dialect, chunk: cfg.BufferSize}
	if p.maxPayload == 0 {
		p.maxPayload = DefaultMaxPayload
	}
	if p.chunk <= 0 {
		p.chunk = 64 << 10
	}
	p.retain = cfg.Retain
	if p.retain <= 0 {
		p.retain = 4 * p.chunk
	}
	return p
}

// Dialect returns the checksum dialect in force: the configured one, the
// one detected from the first frame, or zero while none is known yet.
func (p *Parser) Dialect() checksum.Dialect { return p.dialect }

// Buffered returns the number of bytes received but not yet returned as a
// frame: at the end of a stream, a non-zero value is a truncated frame.
func (p *Parser) Buffered() int { return p.w - p.r }

// Offset returns the stream offset of the first byte not yet returned as
// part of a frame.
func (p *Parser) Offset() uint64 { return p.off }

// Err returns the error that stopped the parser, if any.
func (p *Parser) Err() error { return p.err }

// Reset forgets all buffered bytes, the detected dialect (unless one was
// configured, which stays) and any error, keeping the buffer's memory.
func (p *Parser) Reset(cfg Config) {
	buf := p.buf[:0]
	*p = *NewParser(cfg)
	p.buf = buf[:cap(buf)]
}

// Write appends b to the stream. It copies b, so the caller may reuse it.
// It returns the parser's error, if it has stopped, and otherwise
// len(b), nil. Memory grows with what is written and not yet taken with
// Next; readers should prefer Fill, which bounds the buffer.
func (p *Parser) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	p.makeRoom(len(b), true)
	p.w += copy(p.buf[p.w:], b)
	return len(b), nil
}

// Fill calls r.Read once into the parser's free space and returns what
// Read returned. The free space is at least the configured BufferSize, or
// what the frame at the head of the buffer still needs, whichever is
// larger, but the buffer never exceeds one frame plus one chunk. Call Next
// until it reports no frame before calling Fill again, or frames that were
// already returned become invalid sooner than needed.
func (p *Parser) Fill(r io.Reader) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if !p.hdrOK && p.w-p.r >= HeaderSize {
		// Validate the pending header before sizing the buffer by it.
		if err := p.checkHeader(p.buf[p.r : p.r+HeaderSize]); err != nil {
			p.err = err
			return 0, err
		}
		p.hdrOK = true
	}
	want := p.chunk
	if p.hdrOK {
		// The header was validated, so PayloadLength is within maxPayload
		// and this growth is bounded.
		if need := HeaderSize + int(p.hdr.PayloadLength) - (p.w - p.r); need > want {
			want = need
		}
	}
	p.makeRoom(want, false)
	n, err := r.Read(p.buf[p.w:])
	p.w += n
	return n, err
}

// HeadFrameSize returns the size (header and payload) of the frame at the
// head of the buffer once its header is in and valid, and 0 before that
// or after an error. A server charges a frame larger than the chunk size
// to a memory budget before the Fill calls that receive it.
func (p *Parser) HeadFrameSize() int {
	if p.err != nil {
		return 0
	}
	if !p.hdrOK && p.w-p.r >= HeaderSize {
		if err := p.checkHeader(p.buf[p.r : p.r+HeaderSize]); err != nil {
			p.err = err
			return 0
		}
		p.hdrOK = true
	}
	if !p.hdrOK {
		return 0
	}
	return HeaderSize + int(p.hdr.PayloadLength)
}

// ChunkSize returns the configured read chunk (BufferSize).
func (p *Parser) ChunkSize() int { return p.chunk }

// makeRoom makes at least n bytes free after p.w, moving buffered bytes to
// the front first and growing the buffer only if that is not enough. With
// amortize, growth at least doubles the buffer (Write's many small calls);
// without, it is exact (Fill knows what the frame needs). An empty buffer
// left large by an earlier big frame is given back, so that an idle
// connection holds one chunk, not its largest frame.
func (p *Parser) makeRoom(n int, amortize bool) {
	if p.r == p.w {
		p.r, p.w = 0, 0
		if len(p.buf) > p.retain && n <= p.chunk {
			p.buf = nil
		}
	}
	if len(p.buf)-p.w >= n {
		return
	}
	pending := p.w - p.r
	if len(p.buf)-pending >= n {
		copy(p.buf, p.buf[p.r:p.w])
	} else {
		size := max(pending+n, p.chunk)
		if amortize {
			size = max(size, 2*len(p.buf))
		}
		nb := make([]byte, size)
		copy(nb, p.buf[p.r:p.w])
		p.buf = nb
	}
	p.r, p.w = 0, pending
}

// Next returns the next complete frame. When the buffered bytes do not hold
// a whole frame yet it returns ok == false and a nil error: feed more with
// Write or Fill. Frames returned by successive calls to Next stay valid
// together until the next Write, Fill or Reset.
func (p *Parser) Next() (f Frame, ok bool, err error) {
	if p.err != nil {
		return Frame{}, false, p.err
	}
	if !p.hdrOK {
		if p.w-p.r < HeaderSize {
			return Frame{}, false, nil
		}
		if err := p.checkHeader(p.buf[p.r : p.r+HeaderSize]); err != nil {
			p.err = err
			return Frame{}, false, err
		}
		p.hdrOK = true
	}
	total := HeaderSize + int(p.hdr.PayloadLength)
	if p.w-p.r < total {
		return Frame{}, false, nil
	}
	payload := p.buf[p.r+HeaderSize : p.r+total : p.r+total]
	if len(payload) > 0 {
		if sum := p.dialect.Sum(payload); sum != p.hdr.PayloadCRC {
			p.err = &ParseError{Err: ErrPayloadCRC, Offset: p.off, Got: uint64(p.hdr.PayloadCRC), Want: uint64(sum), Dialect: p.dialect}
			return Frame{}, false, p.err
		}
	} else {
		payload = nil
	}
	f = Frame{Header: p.hdr, Payload: payload}
	p.r += total
	p.off += uint64(total)
	p.hdrOK = false
	return f, true, nil
}

// checkHeader validates b (44 bytes) into p.hdr and fixes the dialect on the
// first frame.
func (p *Parser) checkHeader(b []byte) error {
	decodeHeader(b, &p.hdr)
	h := &p.hdr
	if h.PayloadLength > p.maxPayload {
		return &ParseError{Err: ErrPayloadTooLarge, Offset: p.off, Got: uint64(h.PayloadLength), Want: uint64(p.maxPayload),
			NotLWP: !bytes.Equal(b[0:4], Magic[:])}
	}
	if !bytes.Equal(b[0:4], Magic[:]) {
		return &ParseError{Err: ErrBadMagic, Offset: p.off, Got: uint64(binary.BigEndian.Uint32(b[0:4]))}
	}
	if b[4] != Version {
		return &ParseError{Err: ErrBadVersion, Offset: p.off, Got: uint64(b[4]), Want: Version}
	}
	if p.dialect != 0 {
		if sum := HeaderCRC(p.dialect, h.Flags, h.Reserved); sum != h.HeaderCRC {
			return &ParseError{Err: ErrHeaderCRC, Offset: p.off, Got: uint64(h.HeaderCRC), Want: uint64(sum), Dialect: p.dialect}
		}
		return nil
	}
	// First frame of an undetected stream: IEEE first, since the Rust
	// client speaks it.
	for _, d := range [...]checksum.Dialect{checksum.IEEE, checksum.Castagnoli} {
		if HeaderCRC(d, h.Flags, h.Reserved) == h.HeaderCRC {
			p.dialect = d
			return nil
		}
	}
	return &ParseError{Err: ErrHeaderCRC, Offset: p.off, Got: uint64(h.HeaderCRC)}
}
