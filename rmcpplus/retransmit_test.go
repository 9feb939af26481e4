package rmcpplus

import (
	"testing"
	"time"
)

func TestAttemptTimeout(t *testing.T) {
	tests := []struct {
		name string
		base time.Duration
		n    int
		want []time.Duration
	}{
		{"single attempt waits the base", time.Second, 1, []time.Duration{time.Second}},
		{"default 1s x 4 attempts", time.Second, 4, []time.Duration{400 * time.Millisecond, 800 * time.Millisecond, 1200 * time.Millisecond, 1600 * time.Millisecond}},
		{"cipher suite probe 300ms x 2", 300 * time.Millisecond, 2, []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		{"zero attempts behaves as one", time.Second, 0, []time.Duration{time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sum time.Duration
			for k, want := range tt.want {
				got := attemptTimeout(tt.base, k, tt.n)
				if got != want {
					t.Errorf("attempt %d: %v, want %v", k, got, want)
				}
				sum += got
			}
			if n := max(tt.n, 1); sum > tt.base*time.Duration(n) {
				t.Errorf("total %v exceeds base x attempts %v", sum, tt.base*time.Duration(n))
			}
		})
	}
}

// The waits never shrink and never sum past base x n, for any n.
func TestAttemptTimeoutMonotonicAndBounded(t *testing.T) {
	base := 700 * time.Millisecond
	for n := 1; n <= 12; n++ {
		var sum, prev time.Duration
		for k := range n {
			d := attemptTimeout(base, k, n)
			if d < prev {
				t.Fatalf("n=%d: attempt %d waits %v, less than previous %v", n, k, d, prev)
			}
			prev = d
			sum += d
		}
		if sum > base*time.Duration(n) || sum < base*time.Duration(n)-time.Duration(n) {
			t.Fatalf("n=%d: total %v, want %v", n, sum, base*time.Duration(n))
		}
	}
}
