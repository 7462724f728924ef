package histogram

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	check := func(v uint64) {
		t.Helper()
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside 0..%d", v, i, numBuckets-1)
		}
		low, width := bucketRange(i)
		if v < low || v-low >= width {
			t.Fatalf("value %d in bucket %d = [%d, %d+%d)", v, i, low, low, width)
		}
		if v >= linear && width > low/subCount {
			t.Fatalf("bucket %d of %d is %d wide: more than 1/%d of its low end", i, v, width, subCount)
		}
	}
	for v := range uint64(5000) {
		check(v)
	}
	for s := range 64 {
		p := uint64(1) << s
		for _, v := range []uint64{p - 1, p, p + 1} {
			check(v)
		}
	}
	check(math.MaxUint64)
	// Adjacent buckets must tile the range without gaps or overlap.
	for i := 1; i < numBuckets; i++ {
		pl, pw := bucketRange(i - 1)
		l, _ := bucketRange(i)
		if pl+pw != l {
			t.Fatalf("bucket %d ends at %d, bucket %d starts at %d", i-1, pl+pw, i, l)
		}
	}
}

// reference returns the nearest-rank percentile of sorted values.
func reference(sorted []uint64, p float64) uint64 {
	return sorted[Rank(p, uint64(len(sorted)))-1]
}

func TestPercentilesAgainstSortedReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sets := map[string]func() uint64{
		"uniform-small":  func() uint64 { return rng.Uint64N(300) },
		"uniform-wide":   func() uint64 { return rng.Uint64N(50_000_000) },
		"exponential":    func() uint64 { return uint64(rng.ExpFloat64() * 200_000) },
		"lognormal-tail": func() uint64 { return uint64(math.Exp(rng.NormFloat64()*1.5 + 11)) },
		"constant":       func() uint64 { return 123_456 },
		"huge":           func() uint64 { return rng.Uint64() },
	}
	percentiles := []float64{0, 0.1, 1, 10, 50, 90, 95, 99, 99.9, 99.99, 100}
	for name, gen := range sets {
		for _, n := range []int{1, 7, 1000, 100_000} {
			var h Histogram
			vals := make([]uint64, n)
			for i := range vals {
				vals[i] = gen()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(n) || h.Min() != vals[0] || h.Max() != vals[n-1] {
				t.Fatalf("%s/%d: count %d min %d max %d, want %d %d %d", name, n, h.Count(), h.Min(), h.Max(), n, vals[0], vals[n-1])
			}
			for _, p := range percentiles {
				want := reference(vals, p)
				got := h.Percentile(p)
				diff := max(got, want) - min(got, want)
				if diff > want/256+1 {
					t.Errorf("%s/%d: p%v = %d, reference %d (off by %d, allowed %d)", name, n, p, got, want, diff, want/256+1)
				}
			}
			var sum float64
			for _, v := range vals {
				sum += float64(v)
			}
			if mean := sum / float64(n); math.Abs(h.Mean()-mean) > mean*1e-9 {
				t.Errorf("%s/%d: mean %v, want %v", name, n, h.Mean(), mean)
			}
		}
	}
}

func TestRankIsNearestRank(t *testing.T) {
	cases := []struct {
		p    float64
		n    uint64
		want uint64
	}{
		{50, 1, 1}, {0, 10, 1}, {50, 10, 5}, {51, 10, 6}, {99.9, 1000, 999},
		{99.9, 1001, 1000}, {99, 100, 99}, {100, 100, 100}, {99.99, 10_000, 9999},
	}
	for _, c := range cases {
		if got := Rank(c.p, c.n); got != c.want {
			t.Errorf("Rank(%v, %d) = %d, want %d", c.p, c.n, got, c.want)
		}
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var a, b, all Histogram
	for i := range 20_000 {
		v := uint64(rng.ExpFloat64() * 1e6)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	if m.counts != all.counts || m.Count() != all.Count() || m.Min() != all.Min() || m.Max() != all.Max() {
		t.Fatal("merged histogram differs from the one recorded at once")
	}
	if math.Abs(m.Mean()-all.Mean()) > all.Mean()*1e-12 {
		t.Fatalf("merged mean %v, want %v", m.Mean(), all.Mean())
	}
}

func TestRecordN(t *testing.T) {
	var h, one Histogram
	h.RecordN(5000, 64)
	h.RecordN(7, 0)
	for range 64 {
		one.Record(5000)
	}
	if h.counts != one.counts || h.Count() != 64 || h.Min() != 5000 || h.Max() != 5000 || h.Mean() != 5000 {
		t.Fatalf("RecordN(5000, 64) differs from 64 Records: count %d min %d max %d", h.Count(), h.Min(), h.Max())
	}
}

func TestEmptyAndReset(t *testing.T) {
	var h Histogram
	if h.Percentile(50) != 0 || h.Mean() != 0 || h.Count() != 0 || h.Max() != 0 {
		t.Fatal("empty histogram reports values")
	}
	h.Record(10)
	h.Reset()
	if h.Count() != 0 || h.Percentile(99) != 0 {
		t.Fatal("Reset left values")
	}
	h.Record(1 << 40)
	if h.Min() != 1<<40 {
		t.Fatalf("min after reset %d", h.Min())
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	h := new(Histogram)
	v := uint64(1)
	if n := testing.AllocsPerRun(1000, func() {
		h.Record(v)
		v = v*3 + 1
	}); n != 0 {
		t.Fatalf("Record allocates %v times", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	h := new(Histogram)
	rng := rand.New(rand.NewPCG(5, 6))
	vals := make([]uint64, 1024)
	for i := range vals {
		vals[i] = uint64(rng.ExpFloat64() * 300_000)
	}
	b.ReportAllocs()
	for i := range b.N {
		h.Record(vals[i&1023])
	}
}
