// Package histogram is a log-linear histogram of non-negative integers
// (latencies in nanoseconds), in the manner of HdrHistogram: values below
// 256 have a bucket each, and every power of two above that is cut into
// 128 buckets of equal width. A percentile is therefore reported within
// 1/256 (0.4 %) of the recorded value it stands for, over the whole
// uint64 range, with a fixed table of 7,424 counters (58 KiB).
//
// Recording is a few arithmetic instructions and one increment: no
// allocation, no locking. A Histogram is not safe for concurrent use; give
// each goroutine its own and Merge them.
//
// Bucket layout, with S = 128 sub-buckets:
//
//	index 0 .. 2S-1          value = index (exact)
//	index 2S + (g-1)·S + m   values [(S+m)·2^g, (S+m+1)·2^g), g = 1 .. 56, m = 0 .. S-1
package histogram

import (
	"math"
	"math/bits"
)

const (
	subBits    = 7
	subCount   = 1 << subBits     // buckets per power of two
	linear     = 2 * subCount     // values below this have a bucket each
	groups     = 64 - subBits - 1 // powers of two above the linear range
	numBuckets = linear + groups*subCount
)

// Histogram counts values in log-linear buckets. The zero value is empty
// and ready to use.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64 // float: a sum of many large values may pass 2^64
	min    uint64
	max    uint64
}

// bucketOf returns the index of the bucket that holds v.
func bucketOf(v uint64) int {
	if v < linear {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // ≥ 1
	return linear + (shift-1)*subCount + int(v>>shift) - subCount
}

// bucketRange returns the lowest value of bucket i and its width.
func bucketRange(i int) (low, width uint64) {
	if i < linear {
		return uint64(i), 1
	}
	g := (i-linear)/subCount + 1
	m := uint64((i-linear)%subCount + subCount)
	return m << g, 1 << g
}

// Record counts one occurrence of v.
func (h *Histogram) Record(v uint64) { h.RecordN(v, 1) }

// RecordN counts n occurrences of v.
func (h *Histogram) RecordN(v, n uint64) {
	if n == 0 {
		return
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.counts[bucketOf(v)] += n
	h.n += n
	h.sum += float64(v) * float64(n)
}

// Merge adds every count of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest value recorded, exactly; 0 when empty.
func (h *Histogram) Min() uint64 { return h.min }

// Max returns the largest value recorded, exactly; 0 when empty.
func (h *Histogram) Max() uint64 { return h.max }

// Mean returns the mean of the values recorded, exactly up to float
// rounding; 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Rank returns the nearest rank of percentile p among n sorted values:
// the 1-based position of the smallest value that at least p percent of
// the values do not exceed. It is at least 1 and at most n.
func Rank(p float64, n uint64) uint64 {
	// The small slack keeps 99.9 % of 1000 at rank 999, not 1000, when
	// the product rounds up past an integer.
	r := uint64(math.Ceil(p/100*float64(n) - 1e-9))
	return min(max(r, 1), n)
}

// Percentile returns the value at percentile p (0..100) by nearest rank:
// the midpoint of the bucket holding the value of rank Rank(p, Count()),
// kept within [Min, Max]. It is within 1/256 of that value. Percentile
// 100 is Max, exactly. An empty histogram returns 0.
func (h *Histogram) Percentile(p float64) uint64 {
	if h.n == 0 {
		return 0
	}
	if p >= 100 {
		return h.max
	}
	rank := Rank(p, h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, width := bucketRange(i)
			v := low + (width-1)/2
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
