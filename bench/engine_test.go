package bench

import (
	"context"
	"testing"
	"time"
)

// TestWarmPowerStatusSmoke runs the warm-session benchmark small: the
// figures must be plausible (every request answered, p50 <= p99, a
// positive rate).
func TestWarmPowerStatusSmoke(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := WarmPowerStatus(ctx, WarmConfig{Ops: 300})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("warm: %.0f ops/s, p50 %v, p99 %v", r.OpsPerSec, r.P50, r.P99)
	if r.Ops != 300 || r.OpsPerSec <= 0 || r.P50 <= 0 || r.P50 > r.P99 {
		t.Errorf("implausible warm result %+v", r)
	}
}

// TestColdPowerStatusSmoke compares a few cold runs with a few ipmitool
// processes: obmd's client must come out faster.
func TestColdPowerStatusSmoke(t *testing.T) {
	t.Parallel()
	tool, err := FindIpmitool()
	if err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := ColdPowerStatus(ctx, ColdConfig{Ops: 20, IpmitoolOps: 3, Ipmitool: tool})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cold: obmd p50 %v, ipmitool p50 %v, ratio %.1fx", r.P50, r.IpmitoolP50, r.Ratio)
	if r.P50 <= 0 || r.IpmitoolP50 <= 0 || r.Ratio <= 1 {
		t.Errorf("obmd's cold run is not faster than ipmitool's: %+v", r)
	}
}
