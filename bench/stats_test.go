package bench

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", ms(7), 99, 7 * time.Millisecond},
		{"median of odd count, unsorted", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"nearest rank rounds up", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(seq(100)...), 99, 99 * time.Millisecond},
		{"p100 is the maximum", ms(4, 9, 2), 100, 9 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.samples, tc.p); got != tc.want {
				t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

// seq returns 1..n.
func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestMedian(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		xs   []float64
		want float64
	}{
		{"odd", []float64{3, 1, 2}, 2},
		{"even takes the mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"one", []float64{42}, 42},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.xs...)
			if got := Median(tc.xs); got != tc.want {
				t.Errorf("Median(%v) = %v, want %v", in, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.xs[i] {
					t.Fatalf("Median reordered its input: %v", tc.xs)
				}
			}
		})
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median of nothing is not NaN")
	}
}

func TestHistogramPercentileWithinResolution(t *testing.T) {
	t.Parallel()
	var h Histogram
	var exact []time.Duration
	// 1 µs .. 100 ms, spread over five decades.
	for i := range 5000 {
		d := time.Duration(float64(time.Microsecond) * math.Pow(10, float64(i)/1000))
		h.Record(d)
		exact = append(exact, d)
	}
	for _, p := range []float64{1, 50, 90, 99, 99.9, 100} {
		want := Percentile(exact, p)
		got := h.Percentile(p)
		if got < want || float64(got-want) > float64(want)/histSub {
			t.Errorf("p%v = %v; exact %v; want at most 1/%d above it", p, got, want, histSub)
		}
	}
	if h.Count() != 5000 || h.Max() != exact[len(exact)-1] {
		t.Errorf("count %d max %v; want 5000 and %v", h.Count(), h.Max(), exact[len(exact)-1])
	}
}

func TestHistogramSmallExactMergeMean(t *testing.T) {
	t.Parallel()
	var a, b Histogram
	for _, d := range []time.Duration{1, 2, 3} {
		a.Record(d)
	}
	b.Record(100)
	b.Record(-5) // counts as zero
	a.Merge(&b)
	if a.Count() != 5 {
		t.Errorf("count %d, want 5", a.Count())
	}
	if got := a.Percentile(20); got != 0 {
		t.Errorf("p20 = %v, want 0 (the negative sample)", got)
	}
	if got := a.Percentile(60); got != 2 {
		t.Errorf("p60 = %v, want 2 ns: values below %d ns are exact", got, histSub)
	}
	if got := a.Mean(); got != (0+1+2+3+100)/5 {
		t.Errorf("mean %v, want 21ns", got)
	}
	if got := a.Max(); got != 100 {
		t.Errorf("max %v, want 100ns", got)
	}
	var empty Histogram
	if empty.Percentile(50) != 0 || empty.Mean() != 0 {
		t.Error("an empty histogram reports a non-zero figure")
	}
}

func TestBucketBoundsAreContiguous(t *testing.T) {
	t.Parallel()
	// Every bucket's upper bound + 1 starts the next bucket, so no
	// duration falls between buckets or in two.
	last := bucketOf(math.MaxInt64)
	if last >= histBuckets {
		t.Fatalf("the largest duration falls in bucket %d of %d", last, histBuckets)
	}
	for b := range last {
		up := bucketUpper(b)
		if bucketOf(up) != b {
			t.Fatalf("bucketOf(bucketUpper(%d) = %d) = %d", b, up, bucketOf(up))
		}
		if bucketOf(up+1) != b+1 {
			t.Fatalf("bucketOf(%d) = %d, want %d", up+1, bucketOf(up+1), b+1)
		}
	}
	if bucketUpper(last) != math.MaxInt64 {
		t.Errorf("the last bucket ends at %d, not the largest duration", bucketUpper(last))
	}
}
