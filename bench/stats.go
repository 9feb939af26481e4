package bench

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of samples by the
// nearest-rank method: the smallest sample at or above p percent of them.
// It sorts samples in place; an empty slice gives 0.
func Percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	slices.Sort(samples)
	return samples[nearestRank(len(samples), p)]
}

// nearestRank is the 0-based index of the p-th percentile among n sorted
// samples.
func nearestRank(n int, p float64) int {
	rank := int(math.Ceil(p / 100 * float64(n)))
	return min(max(rank, 1), n) - 1
}

// Median returns the median of xs (the mean of the middle two for an even
// count), leaving xs unchanged; NaN for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return (s[mid-1] + s[mid]) / 2
}

// Histogram records durations in log-linear buckets (every power of two of
// nanoseconds split into histSub buckets, so a percentile read back is at
// most 1/histSub, under 1%, above the true value), in constant memory. The
// console benchmarks record millions of per-line latencies with it; one
// Histogram per goroutine, merged at the end, needs no locking.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	// Durations below histSub ns fall in bucket d itself; above, 64
	// exponents of histSub buckets each cover the rest of int64.
	histBuckets = 64 * histSub
)

// bucketOf maps a non-negative duration to its bucket.
func bucketOf(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < histSub {
		return int(v)
	}
	exp := bits.Len64(v) - histSubBits // >= 1
	sub := int(v>>(exp-1)) - histSub   // the histSubBits bits below the top one
	return exp*histSub + sub
}

// bucketUpper is the largest duration that falls in bucket b.
func bucketUpper(b int) time.Duration {
	if b < histSub {
		return time.Duration(b)
	}
	exp, sub := b/histSub, b%histSub
	lower := uint64(histSub+sub) << (exp - 1)
	return time.Duration(lower + (uint64(1) << (exp - 1)) - 1)
}

// Record adds one sample; a negative one counts as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(d)]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is the number of samples recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Mean is the exact mean of the samples; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Max is the largest sample recorded, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Percentile returns the upper bound of the bucket holding the p-th
// percentile (nearest rank), never more than Max; 0 when empty.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	want := uint64(nearestRank(int(h.n), p)) + 1
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= want {
			return min(bucketUpper(b), h.max)
		}
	}
	return h.max
}
