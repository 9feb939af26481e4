package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"obmd/bmc"
	"obmd/fakebmc"
	"obmd/internal/freeport"
)

// Benchmark credentials of every simulated BMC. Loopback only; they never
// appear on a command line.
const (
	benchUser     = "admin"
	benchPassword = "bench-secret"
)

// startFleet serves count simulated BMCs on loopback in this process,
// powered on, with the counter console at baud (fakebmc.UnlimitedBaud for
// as fast as SOL takes it).
//
// The BMCs need consecutive ports. Large fleets rarely find a free run in
// the kernel's ephemeral range, where every client socket on the machine
// takes a random port; below it (from port 10000 to the range's start,
// package freeport) nothing is handed out at random, so a random base
// there is retried until a run is free.
func startFleet(ctx context.Context, count, baud int, mutate ...func(*fakebmc.BMCConfig)) (*fakebmc.Fleet, error) {
	cfg := fakebmc.FleetConfig{
		Addr:  "127.0.0.1:0",
		Count: count,
		BMC: fakebmc.BMCConfig{
			Users:   []fakebmc.User{{Name: benchUser, Password: []byte(benchPassword)}},
			Console: fakebmc.ConsoleCounter,
			Baud:    baud,
			StartOn: true,
		},
	}
	for _, m := range mutate {
		m(&cfg.BMC)
	}
	low, high := 10000, freeport.EphemeralLow()
	var err error
	for range 30 {
		if count < high-low {
			cfg.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(low+rand.IntN(high-low-count)))
		}
		var f *fakebmc.Fleet
		if f, err = fakebmc.StartFleet(ctx, cfg); err == nil {
			return f, nil
		}
		var inUse *fakebmc.PortInUseError
		if !errors.As(err, &inUse) || cfg.Addr == "127.0.0.1:0" {
			break
		}
	}
	return nil, fmt.Errorf("starting %d simulated BMCs: %w", count, err)
}

// dialBMC opens obmd's client to addr with cipher suite 17 pinned (no
// suite negotiation round trip), as an obmd node with cipher_suite 17 does.
func dialBMC(ctx context.Context, addr string) (*bmc.Client, error) {
	return bmc.Dial(ctx, bmc.Config{
		Addr:        addr,
		Username:    benchUser,
		Password:    []byte(benchPassword),
		CipherSuite: 17,
	})
}

// WarmConfig sizes the warm-session benchmark.
type WarmConfig struct {
	Ops int // sequential Get Chassis Status requests (default 20,000)
}

// WarmResult is the latency of Get Chassis Status on one established
// session, obmd's client and fakebmc in one process over loopback UDP.
type WarmResult struct {
	Ops       int
	OpsPerSec float64
	P50, P99  time.Duration
}

// WarmPowerStatus measures PowerStatus (Get Chassis Status, IPMI v2.0
// section 28.2) on one warm session, one request at a time.
func WarmPowerStatus(ctx context.Context, cfg WarmConfig) (WarmResult, error) {
	if cfg.Ops <= 0 {
		cfg.Ops = 20000
	}
	fleet, err := startFleet(ctx, 1, fakebmc.DefaultBaud)
	if err != nil {
		return WarmResult{}, err
	}
	defer fleet.Close()
	c, err := dialBMC(ctx, fleet.Addr(0))
	if err != nil {
		return WarmResult{}, err
	}
	defer c.Close()
	// One request first, so allocation and caches are warm too.
	if _, err := c.PowerStatus(ctx); err != nil {
		return WarmResult{}, err
	}
	lat := make([]time.Duration, cfg.Ops)
	start := time.Now()
	for i := range lat {
		t0 := time.Now()
		on, err := c.PowerStatus(ctx)
		if err != nil {
			return WarmResult{}, fmt.Errorf("request %d: %w", i+1, err)
		}
		if !on {
			return WarmResult{}, errors.New("the simulated machine reads powered off; it was started on")
		}
		lat[i] = time.Since(t0)
	}
	total := time.Since(start)
	return WarmResult{
		Ops:       cfg.Ops,
		OpsPerSec: float64(cfg.Ops) / total.Seconds(),
		P50:       Percentile(lat, 50),
		P99:       Percentile(lat, 99),
	}, nil
}

// ColdConfig sizes the cold-handshake comparison.
type ColdConfig struct {
	Ops         int    // obmd client runs (default 300)
	IpmitoolOps int    // ipmitool runs (default 30)
	Ipmitool    string // the ipmitool binary; empty: FindIpmitool
}

// ColdResult compares "handshake + one command + close" done by obmd's
// client with an ipmitool process doing the same against the same BMC.
type ColdResult struct {
	Ops, IpmitoolOps int
	P50, P99         time.Duration // obmd client
	IpmitoolP50      time.Duration
	IpmitoolP99      time.Duration
	Ratio            float64 // IpmitoolP50 / P50
}

// ColdPowerStatus measures, against one simulated BMC: obmd's client doing
// Dial (RMCP+ handshake with suite 17 pinned, IPMI v2.0 sections
// 13.17-13.31, and Set Session Privilege Level), Get Chassis Status and
// Close Session; then `ipmitool -I lanplus -C 17 chassis power status`,
// which does the same plus its probes, as a process.
func ColdPowerStatus(ctx context.Context, cfg ColdConfig) (ColdResult, error) {
	if cfg.Ops <= 0 {
		cfg.Ops = 300
	}
	if cfg.IpmitoolOps <= 0 {
		cfg.IpmitoolOps = 30
	}
	if cfg.Ipmitool == "" {
		p, err := FindIpmitool()
		if err != nil {
			return ColdResult{}, err
		}
		cfg.Ipmitool = p
	}
	fleet, err := startFleet(ctx, 1, fakebmc.DefaultBaud)
	if err != nil {
		return ColdResult{}, err
	}
	defer fleet.Close()
	addr := fleet.Addr(0)

	ours := make([]time.Duration, cfg.Ops)
	for i := range ours {
		t0 := time.Now()
		if err := coldOnce(ctx, addr); err != nil {
			return ColdResult{}, fmt.Errorf("obmd client run %d: %w", i+1, err)
		}
		ours[i] = time.Since(t0)
	}

	tool := Ipmitool{Path: cfg.Ipmitool, Addr: addr, Username: benchUser, Password: benchPassword, CipherSuite: 17}
	theirs := make([]time.Duration, cfg.IpmitoolOps)
	for i := range theirs {
		d, err := tool.PowerStatus(ctx)
		if err != nil {
			return ColdResult{}, fmt.Errorf("ipmitool run %d: %w", i+1, err)
		}
		theirs[i] = d
	}
	r := ColdResult{
		Ops:         cfg.Ops,
		IpmitoolOps: cfg.IpmitoolOps,
		P50:         Percentile(ours, 50),
		P99:         Percentile(ours, 99),
		IpmitoolP50: Percentile(theirs, 50),
		IpmitoolP99: Percentile(theirs, 99),
	}
	r.Ratio = float64(r.IpmitoolP50) / float64(r.P50)
	return r, nil
}

// coldOnce is one cold run of obmd's client: handshake, one command, close.
func coldOnce(ctx context.Context, addr string) error {
	c, err := dialBMC(ctx, addr)
	if err != nil {
		return err
	}
	on, err := c.PowerStatus(ctx)
	if cerr := c.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing the session: %w", cerr)
	}
	if err == nil && !on {
		err = errors.New("the simulated machine reads powered off; it was started on")
	}
	return err
}
