package bench

import (
	"context"
	"testing"
	"time"
)

// TestSOLThroughputSmoke reads an unthrottled console for a moment: no
// counter gaps, data flowing, a measured round trip, and a throughput that
// cannot exceed the stop-and-wait limit by more than measurement noise.
func TestSOLThroughputSmoke(t *testing.T) {
	t.Parallel()
	fakebmc := buildCmd(t, "obmd/cmd/fakebmc")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := SOLThroughput(ctx, SOLConfig{FakeBMC: fakebmc, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SOL: %.0f B/s, %.3f CPU s/MB, link RTT mean %v p50 %v, turnaround mean %v p50 %v, %d packets, limit %.0f B/s, ratio %.2f",
		r.BytesPerSec, r.CPUPerMB, r.LinkRTT, r.LinkRTTP50, r.Turnaround, r.TurnaroundP50, r.Packets, r.LimitBytesPerSec, r.Ratio)
	if r.Gaps != 0 {
		t.Errorf("%d counter gaps in the console stream", r.Gaps)
	}
	if r.Bytes == 0 || r.Packets == 0 || r.PacketChars == 0 {
		t.Errorf("no data: %+v", r)
	}
	if r.Ratio <= 0 || r.Ratio > 1.5 {
		t.Errorf("throughput is %.2f of the stop-and-wait limit; a figure outside (0, 1.5] means the round trip is mismeasured", r.Ratio)
	}
}
