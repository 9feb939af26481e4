package bench

import (
	"context"
	"testing"
	"time"

	"obmd/fakebmc"
)

// The Benchmark functions run each scenario with `go test -bench`, the
// full-size runs and RESULTS.md being cmd/obmdbench's job (make bench).
// Whole-system benchmarks state their baseline and report the ratio.

// BenchmarkWarmPowerStatus: one Get Chassis Status on a warm session per
// iteration, obmd's client and fakebmc in this process over loopback.
func BenchmarkWarmPowerStatus(b *testing.B) {
	ctx := context.Background()
	fleet, err := startFleet(ctx, 1, fakebmc.DefaultBaud)
	if err != nil {
		b.Fatal(err)
	}
	defer fleet.Close()
	c, err := dialBMC(ctx, fleet.Addr(0))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var lat []time.Duration
	start := time.Now()
	for b.Loop() {
		t0 := time.Now()
		if _, err := c.PowerStatus(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.ReportMetric(float64(len(lat))/time.Since(start).Seconds(), "ops/s")
	b.ReportMetric(float64(Percentile(lat, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(Percentile(lat, 99).Microseconds()), "p99-µs")
}

// BenchmarkColdPowerStatus: handshake (suite 17) + Get Chassis Status +
// Close per iteration; baseline: ipmitool doing the same as a process,
// measured in the same run against the same BMC.
func BenchmarkColdPowerStatus(b *testing.B) {
	tool, err := FindIpmitool()
	if err != nil {
		b.Skip(err)
	}
	ctx := context.Background()
	fleet, err := startFleet(ctx, 1, fakebmc.DefaultBaud)
	if err != nil {
		b.Fatal(err)
	}
	defer fleet.Close()
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := coldOnce(ctx, fleet.Addr(0)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	it := Ipmitool{Path: tool, Addr: fleet.Addr(0), Username: benchUser, Password: benchPassword, CipherSuite: 17}
	var base []time.Duration
	for range 10 {
		d, err := it.PowerStatus(ctx)
		if err != nil {
			b.Fatal(err)
		}
		base = append(base, d)
	}
	p50, ip50 := Percentile(lat, 50), Percentile(base, 50)
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(ip50.Microseconds()), "ipmitool-p50-µs")
	b.ReportMetric(float64(ip50)/float64(p50), "x-faster")
}

// BenchmarkSOLThroughput: one second of an unthrottled console per
// iteration; baseline: the link's stop-and-wait limit.
func BenchmarkSOLThroughput(b *testing.B) {
	fb := buildCmd(b, "obmd/cmd/fakebmc")
	var r SOLResult
	for b.Loop() {
		var err error
		if r, err = SOLThroughput(context.Background(), SOLConfig{FakeBMC: fb, Duration: time.Second}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.BytesPerSec, "B/s")
	b.ReportMetric(r.LimitBytesPerSec, "limit-B/s")
	b.ReportMetric(100*r.Ratio, "%-of-limit")
	b.ReportMetric(r.CPUPerMB, "CPU-s/MB")
}

// BenchmarkRESTPowerStatus: power_status through an obmd process, 4
// nodes, 1 and 4 clients; baseline: an ipmitool process per request.
func BenchmarkRESTPowerStatus(b *testing.B) {
	obmd := buildCmd(b, "obmd/cmd/obmd")
	var r RESTPowerResult
	for b.Loop() {
		var err error
		if r, err = RESTPower(context.Background(), RESTPowerConfig{Obmd: obmd, Nodes: 4, Concurrency: 4, Requests: 2000, IpmitoolRequests: 16}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.ReqPerSec, "req/s")
	b.ReportMetric(float64(r.P50.Microseconds()), "p50-µs")
	b.ReportMetric(r.IpmitoolReqPerSec, "ipmitool-req/s")
	b.ReportMetric(r.Ratio, "x-faster")
}

// BenchmarkConsoleFanout: 10 nodes x 10 viewers at 115200 baud for two
// seconds per iteration.
func BenchmarkConsoleFanout(b *testing.B) {
	obmd := buildCmd(b, "obmd/cmd/obmd")
	var r FanoutResult
	for b.Loop() {
		var err error
		if r, err = ConsoleFanout(context.Background(), FanoutConfig{Obmd: obmd, Nodes: 10, ViewersPerNode: 10, Warmup: time.Second, Duration: 2 * time.Second}); err != nil {
			b.Fatal(err)
		}
		if r.Gaps != 0 {
			b.Fatalf("%d gaps", r.Gaps)
		}
	}
	b.ReportMetric(float64(r.P99.Microseconds()), "p99-µs")
	b.ReportMetric(r.ObmdCores, "obmd-cores")
	b.ReportMetric(float64(r.RSSPerNode)/1024, "RSS-KiB/node")
}
