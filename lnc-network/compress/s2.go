package compress

import (
	"fmt"
	"slices"

	"github.com/klauspost/compress/s2"
)

// appendS2 appends an S2 envelope: the header and one S2 block. Room for
// the worst case is reserved first, so the block is written in place.
func appendS2(dst, src []byte) []byte {
	// Append caps src at MaxOriginalSize, far below the 4 GiB at which
	// MaxEncodedLen gives up and returns -1.
	bound := s2.MaxEncodedLen(len(src))
	out := appendHeader(slices.Grow(dst, HeaderSize+bound), S2, len(src))
	at := len(out)
	block := s2.Encode(out[at:at+bound], src)
	if len(block) > 0 && &block[0] != &out[at : at+1][0] {
		// s2.Encode wrote somewhere else after all: copy it in.
		return append(out, block...)
	}
	return out[:at+len(block)]
}

// decodeS2 checks the length in the block header against the declared one,
// then decodes the block into exactly n bytes.
func decodeS2(dst, body []byte, n int) ([]byte, error) {
	if len(body) == 0 {
		return dst, fmt.Errorf("%w: s2: empty body", ErrTruncated)
	}
	inner, err := s2.DecodedLen(body)
	if err != nil {
		return dst, fmt.Errorf("%w: s2: %w", ErrCorrupt, err)
	}
	if inner != n {
		return dst, fmt.Errorf("%w: s2: block header says %d bytes, %d declared", ErrSizeMismatch, inner, n)
	}
	out, window := grow(dst, n)
	got, err := s2.Decode(window, body)
	if err != nil {
		return dst, fmt.Errorf("%w: s2: %w", ErrCorrupt, err)
	}
	return settle("s2", dst, out, window, got)
}
