package compress

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

const (
	// zstdMaxWindow is the largest window a frame may ask for: 128 MiB,
	// the default limit of the reference zstd library, so that every frame
	// a Rust peer can decode with default settings (up to level 22) is
	// decodable here too. DecodeAll writes straight into the caller's
	// buffer and does not allocate a window, so this costs no memory.
	zstdMaxWindow = 1 << 27

	// zstdMaxMemory is the decoder-wide cap on one DecodeAll call's
	// output. The bound that matters is per call and tighter:
	// WithDecodeAllCapLimit makes the capacity of the buffer we pass,
	// exactly original_size, the limit. The decoder-wide cap must not get
	// in its way: the library lowers the window limit to it, and it must
	// admit whatever original_size a caller's limit allows. 4 GiB is more
	// than any u32 original_size.
	zstdMaxMemory = 1 << 32
)

// The zstd encoder and decoder are built on first use and then shared by
// every goroutine. Building them is expensive (match tables, block
// decoders and their buffers), while the two methods used here,
// Encoder.EncodeAll and Decoder.DecodeAll, are documented as safe for
// concurrent use: each call borrows one of an internal set of states
// (GOMAXPROCS of them) and returns it, waiting if all are busy. The
// streaming methods, which are not safe to share, are never called.
var (
	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			// Encode empty input as a real frame, as libzstd does:
			// without this option EncodeAll writes nothing at all.
			zstd.WithZeroFrames(true),
		)
		if err != nil {
			// The options are constants: an error is a bug here.
			panic("compress: zstd encoder: " + err.Error())
		}
		return e
	})
	zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderMaxMemory(zstdMaxMemory),
			zstd.WithDecodeAllCapLimit(true),
		)
		if err != nil {
			panic("compress: zstd decoder: " + err.Error())
		}
		return d
	})
)

// appendZstd appends a Zstd envelope: the header and one frame, which
// records its content size.
func appendZstd(dst, src []byte) ([]byte, error) {
	enc := zstdEncoder()
	out := appendHeader(slices.Grow(dst, HeaderSize+enc.MaxEncodedSize(len(src))), Zstd, len(src))
	return enc.EncodeAll(src, out), nil
}

// decodeZstd checks the frame header's content size, when there is one,
// against the declared size, then decodes into a buffer whose capacity is
// exactly n bytes; the decoder refuses to produce more. Like the Rust
// side's zstd::decode_all it accepts what the zstd format allows after the
// first frame (further frames, skippable frames), as long as the total is
// exactly n bytes.
func decodeZstd(dst, body []byte, n int) ([]byte, error) {
	if len(body) == 0 {
		return dst, fmt.Errorf("%w: zstd: empty body", ErrTruncated)
	}
	var h zstd.Header
	if err := h.Decode(body); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return dst, fmt.Errorf("%w: zstd: frame header: %w", ErrTruncated, err)
		}
		return dst, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
	}
	if h.HasFCS && h.FrameContentSize != uint64(n) {
		return dst, fmt.Errorf("%w: zstd: frame says %d bytes, %d declared", ErrSizeMismatch, h.FrameContentSize, n)
	}
	out, window := grow(dst, n)
	got, err := zstdDecoder().DecodeAll(body, window[:0])
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return dst, fmt.Errorf("%w: zstd: body decodes to more than %d bytes: %w", ErrSizeMismatch, n, err)
		}
		return dst, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
	}
	return settle("zstd", dst, out, window, got)
}
