package bench

import (
	"context"
	"testing"
	"time"
)

// TestTypingLatencySmoke: a few keys through obmd's WebSocket and through
// ipmitool sol activate each reach the machine, and both are timed.
func TestTypingLatencySmoke(t *testing.T) {
	t.Parallel()
	tool, err := FindIpmitool()
	if err != nil {
		t.Skip(err)
	}
	obmd := buildCmd(t, "obmd/cmd/obmd")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := TypingLatency(ctx, TypingConfig{Obmd: obmd, Ipmitool: tool, Samples: 30, Warmup: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("typed key -> machine: obmd p50 %v p99 %v; ipmitool sol activate p50 %v p99 %v", r.P50, r.P99, r.IpmitoolP50, r.IpmitoolP99)
	if r.P50 <= 0 || r.P50 > r.P99 || r.IpmitoolP50 <= 0 || r.IpmitoolP50 > r.IpmitoolP99 {
		t.Errorf("implausible result %+v", r)
	}
}

// TestConsoleFanoutWSSmoke: WebSocket viewers of one console, for a
// moment: no gaps, and each receives about what the console printed.
func TestConsoleFanoutWSSmoke(t *testing.T) {
	t.Parallel()
	obmd := buildCmd(t, "obmd/cmd/obmd")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := ConsoleFanout(ctx, FanoutConfig{Obmd: obmd, Nodes: 1, ViewersPerNode: 5, WebSocket: true,
		Warmup: 300 * time.Millisecond, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WebSocket fan-out: %d viewers, %d gaps, p50 %v p99 %v (direct %v %v), obmd %.2f cores",
		r.Viewers, r.Gaps, r.P50, r.P99, r.RefP50, r.RefP99, r.ObmdCores)
	if r.Viewers != 5 || r.Gaps != 0 || r.Untimed != 0 || r.Late != 0 {
		t.Errorf("%d viewers, %d gaps, %d untimed, %d late; want 5 and none", r.Viewers, r.Gaps, r.Untimed, r.Late)
	}
	if ratio := float64(r.Bytes) / float64(r.ExpectedBytes); ratio < 0.8 || ratio > 1.2 {
		t.Errorf("viewers received %d bytes, %.2f of the %d the console printed", r.Bytes, ratio, r.ExpectedBytes)
	}
}
