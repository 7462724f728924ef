package checksum

import (
	"math/rand/v2"
	"testing"
)

func TestCombine(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, d := range []Dialect{IEEE, Castagnoli} {
		for range 500 {
			a := make([]byte, r.IntN(3000))
			b := make([]byte, r.IntN(3000))
			for i := range a {
				a[i] = byte(r.Uint32())
			}
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			want := d.Sum(append(append([]byte(nil), a...), b...))
			if got := d.Combine(d.Sum(a), d.Sum(b), uint64(len(b))); got != want {
				t.Fatalf("%v: len %d+%d: got %08x want %08x", d, len(a), len(b), got, want)
			}
		}
	}
}

func BenchmarkCombine(b *testing.B) {
	b.ReportAllocs()
	var x uint32
	for i := range b.N {
		x = IEEE.Combine(x, uint32(i), 1<<20)
	}
	_ = x
}
