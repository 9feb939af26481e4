package rmcpplus

import (
	"context"
	"slices"
	"testing"
	"time"

	"obmd/ipmi"
)

// BenchmarkDoRoundTrip is a warm Get Chassis Status ("power status") over
// loopback UDP with cipher suite 17: seal, send, the server opens, answers
// and seals, the client opens and matches. Target: p50 under 100 µs.
func BenchmarkDoRoundTrip(b *testing.B) {
	s := benchSession(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if _, err := s.Do(ctx, ipmi.NetFnChassis, ipmi.CmdGetChassisStatus, nil); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}

// BenchmarkDoParallel: many callers share one session.
func BenchmarkDoParallel(b *testing.B) {
	s := benchSession(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Do(ctx, ipmi.NetFnChassis, ipmi.CmdGetChassisStatus, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchSession is a cipher suite 17 session to a test server on loopback.
func benchSession(b *testing.B) *Session {
	cfg := clientConfig(startServer(b, NewServer(testServerConfig(&testHandler{})), nil))
	cfg.CipherSuite = 17
	return dial(b, cfg)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkDialCold is a whole session per iteration over loopback UDP:
// Get Channel Authentication Capabilities, (cipher suite list when not
// pinned), Open Session, RAKP 1-4, Set Session Privilege Level, one Get
// Chassis Status and Close Session. "pinned17" is bench/'s cold figure
// (suite 17 configured); "negotiated" is a first session to a node
// registered without a cipher_suite; "learned" a later one, which starts
// from the Profile the driver keeps per node.
func BenchmarkDialCold(b *testing.B) {
	for _, bc := range []struct {
		name    string
		suite   uint8
		profile *Profile
	}{{"pinned17", 17, nil}, {"negotiated", 0, nil}, {"learned", 0, NewProfile()}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := clientConfig(startServer(b, NewServer(testServerConfig(&testHandler{})), nil))
			cfg.CipherSuite, cfg.Profile = bc.suite, bc.profile
			ctx := context.Background()
			lat := make([]time.Duration, 0, 1<<12)
			for b.Loop() {
				start := time.Now()
				s, err := Dial(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Do(ctx, ipmi.NetFnChassis, ipmi.CmdGetChassisStatus, nil); err != nil {
					b.Fatal(err)
				}
				s.Close()
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat)
		})
	}
}
