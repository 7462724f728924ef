package frame

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/lance-go/lance/lnc-core/checksum"
)

const (
	fuzzMaxPayload = 1 << 16
	fuzzChunk      = 256
)

// FuzzParser feeds arbitrary bytes in random pieces and checks that
// chunking changes nothing, that memory stays within one frame plus one
// chunk, and that what was parsed re-encodes to the bytes it came from.
func FuzzParser(f *testing.F) {
	for _, v := range vectors(&testing.T{}) {
		f.Add(unhex(f, v.want), uint64(1), uint16(7))
	}
	r := rand.New(rand.NewPCG(1, 1))
	s, _ := randomStream(r, checksum.IEEE, 5, 300)
	f.Add(s, uint64(2), uint16(1))
	s, _ = randomStream(r, checksum.Castagnoli, 5, 300)
	f.Add(s, uint64(3), uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, maxChunk uint16) {
		cfg := Config{MaxPayload: fuzzMaxPayload, BufferSize: fuzzChunk}

		whole := NewParser(cfg)
		whole.Write(data)
		want, wantErr := drain(t, whole, nil)

		pieces := NewParser(cfg)
		rd := &chunkReader{r: rand.New(rand.NewPCG(seed, seed)), data: data, max: int(maxChunk) + 1}
		got, gotErr := readAll(t, pieces, rd)

		sameFrames(t, got, want)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("errors differ: whole %v, pieces %v", wantErr, gotErr)
		}
		if wantErr != nil {
			var a, b *ParseError
			if !errors.As(wantErr, &a) || !errors.As(gotErr, &b) || a.Err != b.Err || a.Offset != b.Offset {
				t.Fatalf("errors differ: whole %v, pieces %v", wantErr, gotErr)
			}
		}
		if c := cap(pieces.buf); c > HeaderSize+fuzzMaxPayload+fuzzChunk {
			t.Fatalf("buffer grew to %d", c)
		}

		// Re-encode what was parsed: it must be the consumed prefix.
		var enc []byte
		for _, fr := range want {
			n := len(enc)
			enc = append(enc, make([]byte, HeaderSize)...)
			PutHeader(enc[n:], &fr.Header, whole.Dialect())
			enc = append(enc, fr.Payload...)
		}
		if !bytes.Equal(enc, data[:whole.Offset()]) {
			t.Fatalf("re-encoding differs from the consumed input")
		}
		again := NewParser(Config{Dialect: whole.Dialect(), MaxPayload: fuzzMaxPayload})
		again.Write(enc)
		frames, err := drain(t, again, nil)
		if err != nil || again.Buffered() != 0 {
			t.Fatalf("re-encoded stream: %v, %d left", err, again.Buffered())
		}
		sameFrames(t, frames, want)
	})
}
