package checksum

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestKnownValues(t *testing.T) {
	// Values from the LWP digest §4.1, computed there with a bitwise CRC.
	f := func(d Dialect, in string, want uint32) {
		t.Helper()
		if got := d.Sum([]byte(in)); got != want {
			t.Errorf("%v.Sum(%q) = %#08x, want %#08x", d, in, got, want)
		}
	}
	f(IEEE, "123456789", 0xCBF43926)
	f(IEEE, "a", 0xE8B7BE43)
	f(IEEE, "hello", 0x3610A686)
	f(IEEE, "", 0)
	f(Castagnoli, "123456789", 0xE3069283)
	f(Castagnoli, "a", 0xC1D04330)
	f(Castagnoli, "hello", 0x9A71BB4C)
	f(Castagnoli, "", 0)
}

func TestUpdateChains(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for _, d := range []Dialect{IEEE, Castagnoli} {
		whole := d.Sum(buf)
		for _, cut := range []int{0, 1, 7, 63, 64, 65, 1000, 4095, 4096} {
			if got := d.Update(d.Sum(buf[:cut]), buf[cut:]); got != whole {
				t.Errorf("%v: split at %d: %#08x != %#08x", d, cut, got, whole)
			}
		}
	}
}

func TestParseDialect(t *testing.T) {
	for _, d := range []Dialect{IEEE, Castagnoli} {
		got, err := ParseDialect(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDialect(%q) = %v, %v", d.String(), got, err)
		}
	}
	if _, err := ParseDialect("adler"); !errors.Is(err, ErrUnknownDialect) {
		t.Errorf("ParseDialect(adler) error = %v, want ErrUnknownDialect", err)
	}
	if Dialect(0).Valid() || Dialect(3).Valid() {
		t.Error("invalid dialects reported valid")
	}
}

func TestSumInvalidPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Sum on the zero Dialect did not panic")
		}
	}()
	Dialect(0).Sum(nil)
}

func BenchmarkSum(b *testing.B) {
	for _, d := range []Dialect{IEEE, Castagnoli} {
		for _, size := range []int{1 << 10, 64 << 10} {
			buf := make([]byte, size)
			b.Run(fmt.Sprintf("%v/%dKiB", d, size>>10), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					_ = d.Sum(buf)
				}
			})
		}
	}
}
