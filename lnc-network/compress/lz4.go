package compress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// lz4SizeLen is the length of the decompressed size that lz4_flex writes
// in front of its block.
const lz4SizeLen = 4

// errLZ4Bound reports a compressor that did not fit its output in
// CompressBlockBound bytes, which the library promises never to happen.
var errLZ4Bound = errors.New("compress: lz4: block larger than its bound")

// lz4Compressors holds block compressors for reuse. A Compressor carries a
// 136 KiB hash table and may not be shared between goroutines, so each
// call borrows one.
var lz4Compressors = sync.Pool{New: func() any { return new(lz4.Compressor) }}

// appendLZ4 appends an LZ4 envelope: the header, the prepended size and one
// block. Room for the worst case is reserved first, so the block is written
// in place.
func appendLZ4(dst, src []byte) ([]byte, error) {
	bound := lz4.CompressBlockBound(len(src))
	out := slices.Grow(dst, HeaderSize+lz4SizeLen+bound)
	out = appendHeader(out, LZ4, len(src))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(src)))
	at := len(out)

	c := lz4Compressors.Get().(*lz4.Compressor)
	n, err := c.CompressBlock(src, out[at:at+bound])
	lz4Compressors.Put(c)
	if err != nil {
		return dst, fmt.Errorf("compress: lz4: %w", err)
	}
	if n == 0 {
		return dst, errLZ4Bound
	}
	return out[:at+n], nil
}

// decodeLZ4 checks the prepended size against the declared one, then
// decodes the block into exactly n bytes.
func decodeLZ4(dst, body []byte, n int) ([]byte, error) {
	// Even an empty input compresses to one token byte.
	if len(body) < lz4SizeLen+1 {
		return dst, fmt.Errorf("%w: lz4: body is %d bytes, need a %d-byte size and a block", ErrTruncated, len(body), lz4SizeLen)
	}
	if inner := binary.LittleEndian.Uint32(body); uint64(inner) != uint64(n) {
		return dst, fmt.Errorf("%w: lz4: prepended size %d, %d declared", ErrSizeMismatch, inner, n)
	}
	block := body[lz4SizeLen:]
	if n == 0 {
		// The library's decoder dereferences its empty destination (found
		// by FuzzDecode), so the one valid empty block, a single zero
		// token, is recognised here without calling it.
		if len(block) != 1 || block[0] != 0 {
			return dst, fmt.Errorf("%w: lz4: an empty block must be the single token 00, got %d bytes", ErrCorrupt, len(block))
		}
		return dst, nil
	}
	out, window := grow(dst, n)
	got, err := lz4.UncompressBlock(block, window)
	if err != nil {
		return dst, fmt.Errorf("%w: lz4: %w", ErrCorrupt, err)
	}
	if got != n {
		return dst, fmt.Errorf("%w: lz4: block decodes to %d bytes, %d declared", ErrSizeMismatch, got, n)
	}
	return out, nil
}
