// Package compress implements the compression envelope that LANCE places
// inside an LWP payload.
//
// The header flag 0x01 of an LWP frame is lost once a payload is stored, so
// a compressed payload has to describe itself. It does so with a five-byte
// header followed by the compressed body:
//
//	+0  u8   algorithm      0x00 none, 0x01 LZ4, 0x02 Zstd, 0x03 S2
//	+1  u32  original_size  little-endian, length once decompressed
//	+5  body
//
// The bodies are:
//
//   - None: the bytes themselves; their length equals original_size. (The
//     Rust Compressor, asked for "none", returns the payload with no
//     envelope at all; this package always writes the header, which the
//     Rust decoder reads correctly.)
//   - LZ4: a u32 little-endian copy of the decompressed length, then one raw
//     LZ4 block. This is what lz4_flex::compress_prepend_size writes on the
//     Rust side.
//   - Zstd: a standard zstd frame. Frames written here carry their content
//     size; frames from the Rust encoder usually do not, and are accepted.
//   - S2: one S2 block (the Snappy block format with S2's extensions). This
//     algorithm is a LANCE-Go extension; the Rust reference knows only the
//     first three values.
//
// The values 0x00 to 0x02 and the layout come from lnc-network's
// compression.rs in the Rust reference, where the envelope is defined but
// never called.
//
// Decode treats every envelope as hostile: it checks original_size against
// a caller-supplied limit before allocating, and never lets a body make it
// allocate more output than original_size declares (see Decode for the one
// bounded exception, a zstd frame without a content size).
package compress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Algorithm is the first byte of an envelope: it names how the body is
// compressed. The values are written on the wire and must not change.
type Algorithm uint8

// The algorithms. None, LZ4 and Zstd have the values the Rust reference
// gives them; S2 is a LANCE-Go extension.
const (
	// None stores the bytes uncompressed.
	None Algorithm = 0x00
	// LZ4 stores a prepended size and one LZ4 block, as lz4_flex does.
	LZ4 Algorithm = 0x01
	// Zstd stores one zstd frame.
	Zstd Algorithm = 0x02
	// S2 stores one S2 block. A Rust peer cannot decode it: the reference
	// maps every byte it does not know to "none" and would hand the
	// compressed body back as if it were the data.
	S2 Algorithm = 0x03
)

// HeaderSize is the length of the envelope header: the algorithm byte and
// the u32 original size.
const HeaderSize = 5

// MaxOriginalSize is the largest input Append accepts and the limit Decode
// applies when its caller passes none: 16 MiB, the same as the Rust
// reference's MAX_DECOMPRESSED_SIZE and the LWP payload limit.
const MaxOriginalSize = 16 << 20

// Sentinel errors. Decode and Append wrap them with detail; test for them
// with errors.Is.
var (
	// ErrTruncated means an envelope shorter than its header, or a body too
	// short to hold what its algorithm requires.
	ErrTruncated = errors.New("compress: truncated envelope")
	// ErrUnknownAlgorithm means an algorithm byte or name this package
	// does not know.
	ErrUnknownAlgorithm = errors.New("compress: unknown algorithm")
	// ErrTooLarge means an original size over the limit: the caller's on
	// Decode, MaxOriginalSize on Append.
	ErrTooLarge = errors.New("compress: original size over limit")
	// ErrCorrupt means a body that its decompressor rejects. The library's
	// own error is wrapped with it.
	ErrCorrupt = errors.New("compress: corrupt body")
	// ErrSizeMismatch means a body that does not decompress to exactly
	// original_size bytes, or that declares another size itself.
	ErrSizeMismatch = errors.New("compress: size mismatch")
)

// Valid reports whether a names an algorithm this package implements.
func (a Algorithm) Valid() bool { return a <= S2 }

// String returns the name ParseAlgorithm accepts, or "algorithm(0xNN)" for
// an unknown value.
func (a Algorithm) String() string {
	switch a {
	case None:
		return "none"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	case S2:
		return "s2"
	default:
		return fmt.Sprintf("algorithm(0x%02x)", uint8(a))
	}
}

// ParseAlgorithm maps a configuration string to an Algorithm. It accepts
// "none", "lz4", "zstd" and "s2", in any letter case.
func ParseAlgorithm(s string) (Algorithm, error) {
	for a := None; a <= S2; a++ {
		if strings.EqualFold(s, a.String()) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: %q (want none, lz4, zstd or s2)", ErrUnknownAlgorithm, s)
}

// Append compresses src with alg and appends the whole envelope, header
// included, to dst. It returns the extended slice. On error dst is returned
// unchanged.
//
// It fails with ErrUnknownAlgorithm for an algorithm that is not valid, and
// with ErrTooLarge when src is longer than MaxOriginalSize. src must not
// share memory with the spare capacity of dst.
//
// Append is safe for concurrent use.
func Append(dst []byte, alg Algorithm, src []byte) ([]byte, error) {
	if !alg.Valid() {
		return dst, fmt.Errorf("%w: %v", ErrUnknownAlgorithm, alg)
	}
	if len(src) > MaxOriginalSize {
		return dst, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(src), MaxOriginalSize)
	}
	switch alg {
	case LZ4:
		return appendLZ4(dst, src)
	case Zstd:
		return appendZstd(dst, src)
	case S2:
		return appendS2(dst, src), nil
	default:
		out := appendHeader(slices.Grow(dst, HeaderSize+len(src)), None, len(src))
		return append(out, src...), nil
	}
}

// appendHeader appends the five header bytes for an input of n bytes.
func appendHeader(dst []byte, alg Algorithm, n int) []byte {
	return binary.LittleEndian.AppendUint32(append(dst, byte(alg)), uint32(n))
}

// Header parses the five-byte header of env without decompressing
// anything. body is the rest of env; it aliases env.
//
// It fails with ErrTruncated when env is shorter than HeaderSize. For an
// algorithm byte it does not know it fails with ErrUnknownAlgorithm but
// still returns the three values, so that a caller may log them or handle
// the byte itself.
func Header(env []byte) (alg Algorithm, originalSize uint32, body []byte, err error) {
	if len(env) < HeaderSize {
		return 0, 0, nil, fmt.Errorf("%w: %d bytes, the header alone is %d", ErrTruncated, len(env), HeaderSize)
	}
	alg = Algorithm(env[0])
	originalSize = binary.LittleEndian.Uint32(env[1:HeaderSize])
	body = env[HeaderSize:]
	if !alg.Valid() {
		return alg, originalSize, body, fmt.Errorf("%w: %v", ErrUnknownAlgorithm, alg)
	}
	return alg, originalSize, body, nil
}

// Decode decompresses the envelope env and appends the original bytes to
// dst. It returns the extended slice. On error it returns dst with its
// length unchanged, although the spare capacity of dst may have been
// written to.
//
// limit caps original_size; a limit of zero or less means MaxOriginalSize.
// The declared size is compared with limit before anything is allocated,
// and an envelope over it fails with ErrTooLarge. Each algorithm then
// checks what its body claims against original_size before decoding:
//
//   - None: the body length must equal original_size.
//   - LZ4: the prepended size must equal original_size.
//   - S2: the length in the block header must equal original_size.
//   - Zstd: a content size in the frame header, when present, must equal
//     original_size, and the decoder may only fill a buffer of exactly
//     original_size bytes.
//
// Output is therefore allocated for original_size bytes: dst grows once, by
// that much, and not at all when it has the spare capacity. The exception
// is a zstd frame that does not record its content size (the Rust encoder
// writes such frames) and decodes to more than it should: the zstd library
// checks the output length after each block, so the block that overflows
// is appended first, and growing the slice for it costs one transient
// allocation of about 1.25 × original_size, or 128 KiB for small sizes,
// before Decode fails with ErrSizeMismatch.
//
// Every error wraps one of the package's sentinel errors. env and the
// spare capacity of dst must not overlap. Decode is safe for concurrent
// use.
func Decode(dst []byte, env []byte, limit int) ([]byte, error) {
	alg, size, body, err := Header(env)
	if err != nil {
		return dst, err
	}
	if limit <= 0 {
		limit = MaxOriginalSize
	}
	if uint64(size) > uint64(limit) {
		return dst, fmt.Errorf("%w: %d bytes declared, limit %d", ErrTooLarge, size, limit)
	}
	n := int(size)
	switch alg {
	case LZ4:
		return decodeLZ4(dst, body, n)
	case Zstd:
		return decodeZstd(dst, body, n)
	case S2:
		return decodeS2(dst, body, n)
	default:
		return decodeNone(dst, body, n)
	}
}

// decodeNone copies an uncompressed body.
func decodeNone(dst, body []byte, n int) ([]byte, error) {
	if len(body) < n {
		return dst, fmt.Errorf("%w: none: body is %d bytes, %d declared", ErrTruncated, len(body), n)
	}
	if len(body) > n {
		return dst, fmt.Errorf("%w: none: body is %d bytes, %d declared", ErrSizeMismatch, len(body), n)
	}
	return append(dst, body...), nil
}

// grow returns dst extended so that out[len(dst):len(dst)+n] is writable,
// together with that window. The window's capacity is exactly n, so a
// decoder handed it cannot spill past the declared size.
func grow(dst []byte, n int) (out, window []byte) {
	start := len(dst)
	out = slices.Grow(dst, n)[:start+n]
	return out, out[start : start+n : start+n]
}

// settle checks a decoder's result got against the window it was given
// and returns out, or dst on a length mismatch. Both libraries return a
// sub-slice of the window on success; should one ever return a fresh slice
// of the right length instead, its content is copied into the window.
func settle(name string, dst, out, window, got []byte) ([]byte, error) {
	if len(got) != len(window) {
		return dst, fmt.Errorf("%w: %s: body decodes to %d bytes, %d declared", ErrSizeMismatch, name, len(got), len(window))
	}
	if len(got) > 0 && &got[0] != &window[0] {
		copy(window, got)
	}
	return out, nil
}
