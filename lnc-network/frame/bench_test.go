package frame

import (
	"fmt"
	"testing"

	"github.com/lance-go/lance/lnc-core/checksum"
)

// ingestStream returns n ingest frames of size-byte payloads back to back.
func ingestStream(d checksum.Dialect, n, size int) []byte {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	var s []byte
	for i := range n {
		s = AppendIngest(s, d, uint64(i+1), 1706918400000000000, 10, 1, payload)
	}
	return s
}

// BenchmarkParseIngest measures the parser on a stream of ingest frames
// written in 64-frame pieces; one op is one frame, CRCs included.
func BenchmarkParseIngest(b *testing.B) {
	for _, d := range []checksum.Dialect{checksum.IEEE, checksum.Castagnoli} {
		for _, size := range []int{1 << 10, 64 << 10} {
			const perWrite = 64
			stream := ingestStream(d, perWrite, size)
			b.Run(fmt.Sprintf("%v/%dKiB", d, size>>10), func(b *testing.B) {
				p := NewParser(Config{Dialect: d})
				b.ReportAllocs()
				b.SetBytes(int64(len(stream) / perWrite))
				n := 0
				for b.Loop() {
					if n == 0 {
						if _, err := p.Write(stream); err != nil {
							b.Fatal(err)
						}
						n = perWrite
					}
					if _, ok, err := p.Next(); !ok || err != nil {
						b.Fatal(ok, err)
					}
					n--
				}
			})
		}
	}
}

// repeatReader serves the same bytes forever, in reads of at most chunk.
type repeatReader struct {
	data  []byte
	pos   int
	chunk int
}

func (r *repeatReader) Read(b []byte) (int, error) {
	n := copy(b[:min(len(b), r.chunk)], r.data[r.pos:])
	r.pos = (r.pos + n) % len(r.data)
	return n, nil
}

// BenchmarkParseIngestFill is the connection path: Fill from a reader
// that returns at most 16 KiB a call, so frames straddle reads.
func BenchmarkParseIngestFill(b *testing.B) {
	stream := ingestStream(checksum.IEEE, 64, 1<<10)
	rd := &repeatReader{data: stream, chunk: 16 << 10}
	p := NewParser(Config{})
	b.ReportAllocs()
	b.SetBytes(int64(len(stream) / 64))
	for b.Loop() {
		for {
			_, ok, err := p.Next()
			if err != nil {
				b.Fatal(err)
			}
			if ok {
				break
			}
			if _, err := p.Fill(rd); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkAppendIngest(b *testing.B) {
	payload := make([]byte, 1<<10)
	buf := make([]byte, 0, 2<<10)
	b.ReportAllocs()
	b.SetBytes(int64(HeaderSize + len(payload)))
	for b.Loop() {
		buf = AppendIngest(buf[:0], checksum.IEEE, 1, 2, 3, 4, payload)
	}
}

func BenchmarkAppendAck(b *testing.B) {
	buf := make([]byte, 0, 64*HeaderSize)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i := range 64 {
			buf = AppendAck(buf, checksum.IEEE, uint64(i))
		}
	}
}
