package bench

import (
	"context"
	"testing"
	"time"
)

// TestRESTPowerSmoke: power_status through a real obmd process on a small
// fleet, against ipmitool processes. Every request must succeed and obmd
// must beat a process per request.
func TestRESTPowerSmoke(t *testing.T) {
	t.Parallel()
	tool, err := FindIpmitool()
	if err != nil {
		t.Skip(err)
	}
	obmd := buildCmd(t, "obmd/cmd/obmd")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := RESTPower(ctx, RESTPowerConfig{Obmd: obmd, Ipmitool: tool, Nodes: 2, Concurrency: 2, Requests: 200, IpmitoolRequests: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("REST power_status: %.0f req/s, p50 %v p99 %v (loaded %v %v, obmd CPU %v/req); ipmitool %.1f req/s p50 %v; ratios %.0fx, %.0fx",
		r.ReqPerSec, r.P50, r.P99, r.LoadedP50, r.LoadedP99, r.ObmdCPUPerReq, r.IpmitoolReqPerSec, r.IpmitoolP50, r.Ratio, r.LatencyRatio)
	if r.P50 <= 0 || r.P50 > r.P99 || r.LoadedP50 <= 0 || r.Ratio <= 1 || r.LatencyRatio <= 1 {
		t.Errorf("implausible result %+v", r)
	}
}

// TestConsoleFanoutSmoke: two nodes with three viewers each, for a
// moment: no gaps, every viewer receives about what the consoles printed,
// and lines are timed.
func TestConsoleFanoutSmoke(t *testing.T) {
	t.Parallel()
	obmd := buildCmd(t, "obmd/cmd/obmd")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := ConsoleFanout(ctx, FanoutConfig{Obmd: obmd, Nodes: 2, ViewersPerNode: 3,
		Warmup: 300 * time.Millisecond, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fan-out: %+v", r)
	t.Logf("latency through obmd p50 %v p99 %v; direct reference p50 %v p99 %v", r.P50, r.P99, r.RefP50, r.RefP99)
	if r.Viewers != 6 {
		t.Errorf("%d viewers, want 6", r.Viewers)
	}
	if r.Gaps != 0 || r.Untimed != 0 || r.TapAnomalies != 0 || r.Late != 0 {
		t.Errorf("%d gaps, %d untimed lines, %d tap anomalies, %d late viewers; want none", r.Gaps, r.Untimed, r.TapAnomalies, r.Late)
	}
	if r.TimedViewers != 6 {
		t.Errorf("%d viewers timed, want all 6", r.TimedViewers)
	}
	if r.Samples == 0 || r.P50 <= 0 || r.P50 > r.P99 {
		t.Errorf("no plausible latency figures: %+v", r)
	}
	// Each viewer gets what the console prints, give or take the bytes in
	// flight at the window's edges.
	if ratio := float64(r.Bytes) / float64(r.ExpectedBytes); ratio < 0.8 || ratio > 1.2 {
		t.Errorf("viewers received %d bytes, %.2f of the %d the consoles printed", r.Bytes, ratio, r.ExpectedBytes)
	}
}

// TestIdleSessionsSmoke: a few nodes with warm sessions; obmd's memory is
// read and grows with them.
func TestIdleSessionsSmoke(t *testing.T) {
	t.Parallel()
	obmd := buildCmd(t, "obmd/cmd/obmd")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := IdleSessions(ctx, IdleConfig{Obmd: obmd, Nodes: 50})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("idle: %+v", r)
	if r.RSSBase <= 0 || r.RSS <= r.RSSBase || r.HWM < r.RSS {
		t.Errorf("implausible memory figures %+v", r)
	}
}

// TestRedfishPowerSmoke: power_status on a redfish node through a real
// obmd process, against curl login-query-logout sequences; obmd keeps
// one session (no login while timed) and beats the sequence.
func TestRedfishPowerSmoke(t *testing.T) {
	t.Parallel()
	curl, err := FindCurl()
	if err != nil {
		t.Skip(err)
	}
	obmd := buildCmd(t, "obmd/cmd/obmd")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := RedfishPower(ctx, RedfishPowerConfig{Obmd: obmd, Curl: curl, Requests: 100, CurlRequests: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("redfish power_status: %.0f req/s, p50 %v p99 %v; curl sequence %.1f/s p50 %v; ratios %.0fx, %.0fx",
		r.ReqPerSec, r.P50, r.P99, r.CurlPerSec, r.CurlP50, r.Ratio, r.LatencyRatio)
	if r.P50 <= 0 || r.P50 > r.P99 || r.CurlP50 <= 0 || r.Ratio <= 1 || r.LoginsWhileTimed != 0 {
		t.Errorf("implausible result %+v", r)
	}
}
