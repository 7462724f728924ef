package compress

import (
	"fmt"
	"testing"
)

// benchSizes are the input sizes of the benchmarks: a small record batch
// and a large one.
var benchSizes = []int{1 << 10, 64 << 10}

// BenchmarkAppend compresses semi-compressible text into a reused buffer.
// SetBytes counts the uncompressed input.
func BenchmarkAppend(b *testing.B) {
	for _, alg := range algorithms {
		for _, size := range benchSizes {
			data := semiCompressible(uint64(size), size)
			b.Run(fmt.Sprintf("%v/%dKiB", alg, size>>10), func(b *testing.B) {
				buf, err := Append(nil, alg, data)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					buf, err = Append(buf[:0], alg, data)
					if err != nil {
						b.Fatal(err)
					}
				}
				// Envelope size over input size, header included.
				b.ReportMetric(float64(len(buf))/float64(size), "ratio")
			})
		}
	}
}

// BenchmarkDecode decompresses into a reused buffer that already has the
// capacity for the output. SetBytes counts the decompressed output.
func BenchmarkDecode(b *testing.B) {
	for _, alg := range algorithms {
		for _, size := range benchSizes {
			data := semiCompressible(uint64(size), size)
			env, err := Append(nil, alg, data)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%v/%dKiB", alg, size>>10), func(b *testing.B) {
				out := make([]byte, 0, size)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					out, err = Decode(out[:0], env, 0)
					if err != nil {
						b.Fatal(err)
					}
				}
				if len(out) != size {
					b.Fatalf("decoded %d bytes, want %d", len(out), size)
				}
			})
		}
	}
}
