package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"obmd/fakebmc"
)

// forEach runs f(0..n-1) on at most parallel goroutines and returns the
// first error (the rest still run to completion).
func forEach(n, parallel int, f func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range min(parallel, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}

// nodeID names the node of simulated BMC i.
func nodeID(i int) string { return "node" + strconv.Itoa(i) }

// registerFleet registers every BMC of fleet as an ipmi node and returns
// the node tokens.
func registerFleet(ctx context.Context, d *Daemon, fleet *fakebmc.Fleet) ([]string, error) {
	tokens := make([]string, fleet.Len())
	err := forEach(fleet.Len(), 32, func(i int) error {
		if err := d.RegisterIPMI(ctx, nodeID(i), fleet.Addr(i)); err != nil {
			return err
		}
		tok, err := d.NewToken(ctx, nodeID(i))
		tokens[i] = tok
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("registering %d ipmi nodes: %w", fleet.Len(), err)
	}
	return tokens, nil
}

// RESTPowerConfig sizes the REST power_status benchmark.
type RESTPowerConfig struct {
	Obmd        string // the obmd binary
	Ipmitool    string // the ipmitool binary; empty: FindIpmitool
	Nodes       int    // ipmi nodes on a simulated fleet (default 16)
	Concurrency int    // clients in parallel, client i on node i mod Nodes (default 16)
	// Requests is the number of obmd requests measured one at a time
	// (latency) and then again at Concurrency (throughput) (default
	// 20,000).
	Requests int
	// IpmitoolRequests is the number of ipmitool processes run at
	// Concurrency; a quarter of it (at least 4) runs one at a time
	// (default 64).
	IpmitoolRequests int
}

// RESTPowerResult compares GET /node/ID/power_status on obmd (warm BMC
// sessions) with what the original obmd did for it: run `ipmitool -I
// lanplus chassis power status` once per request, against the same
// simulated BMCs, one client at a time and with Concurrency clients.
type RESTPowerResult struct {
	Nodes, Concurrency int
	Requests           int
	// One client at a time: latency.
	P50, P99 time.Duration
	// Concurrency clients: throughput, and latency under that load.
	ReqPerSec                      float64
	LoadedP50, LoadedP99           time.Duration
	ObmdCPUPerReq                  time.Duration // obmd's CPU time per request, loaded phase
	IpmitoolP50, IpmitoolP99       time.Duration // one at a time
	IpmitoolReqPerSec              float64       // at Concurrency
	IpmitoolLoadedP50              time.Duration
	IpmitoolRequests, IpmitoolOnce int

	Ratio        float64 // ReqPerSec / IpmitoolReqPerSec
	LatencyRatio float64 // IpmitoolP50 / P50
}

// RESTPower runs the REST power_status benchmark.
func RESTPower(ctx context.Context, cfg RESTPowerConfig) (RESTPowerResult, error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 16
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Requests <= 0 {
		cfg.Requests = 20000
	}
	if cfg.IpmitoolRequests <= 0 {
		cfg.IpmitoolRequests = 64
	}
	if cfg.Ipmitool == "" {
		p, err := FindIpmitool()
		if err != nil {
			return RESTPowerResult{}, err
		}
		cfg.Ipmitool = p
	}
	fleet, err := startFleet(ctx, cfg.Nodes, fakebmc.DefaultBaud)
	if err != nil {
		return RESTPowerResult{}, err
	}
	defer fleet.Close()
	d, err := StartDaemon(ctx, cfg.Obmd)
	if err != nil {
		return RESTPowerResult{}, err
	}
	defer d.Stop()
	tokens, err := registerFleet(ctx, d, fleet)
	if err != nil {
		return RESTPowerResult{}, err
	}
	status := func(i int) error {
		st, err := d.PowerStatus(ctx, nodeID(i), tokens[i])
		if err == nil && st != "on" {
			err = fmt.Errorf("node %s power_status is %q; the simulated machine was started on", nodeID(i), st)
		}
		return err
	}
	// Warm-up: every node's BMC session opens, the HTTP connections too.
	if err := forEach(cfg.Concurrency*20, cfg.Concurrency, func(i int) error { return status(i % cfg.Nodes) }); err != nil {
		return RESTPowerResult{}, fmt.Errorf("warm-up: %w", err)
	}
	r := RESTPowerResult{Nodes: cfg.Nodes, Concurrency: cfg.Concurrency, Requests: cfg.Requests}

	var next int
	lat, _, err := closedLoop(cfg.Requests, 1, func(int) error {
		next++
		return status(next % cfg.Nodes)
	})
	if err != nil {
		return RESTPowerResult{}, err
	}
	r.P50, r.P99 = Percentile(lat, 50), Percentile(lat, 99)

	u0, err := d.Usage()
	if err != nil {
		return RESTPowerResult{}, err
	}
	lat, elapsed, err := closedLoop(cfg.Requests, cfg.Concurrency, func(worker int) error {
		return status(worker % cfg.Nodes)
	})
	if err != nil {
		return RESTPowerResult{}, err
	}
	u1, err := d.Usage()
	if err != nil {
		return RESTPowerResult{}, err
	}
	r.ReqPerSec = float64(cfg.Requests) / elapsed.Seconds()
	r.LoadedP50, r.LoadedP99 = Percentile(lat, 50), Percentile(lat, 99)
	r.ObmdCPUPerReq = (u1.CPU - u0.CPU) / time.Duration(cfg.Requests)

	tools := make([]Ipmitool, cfg.Nodes)
	for i := range tools {
		tools[i] = Ipmitool{Path: cfg.Ipmitool, Addr: fleet.Addr(i), Username: benchUser, Password: benchPassword, CipherSuite: 17}
	}
	r.IpmitoolOnce = max(cfg.IpmitoolRequests/4, 4)
	next = 0
	lat, _, err = closedLoop(r.IpmitoolOnce, 1, func(int) error {
		next++
		_, err := tools[next%cfg.Nodes].PowerStatus(ctx)
		return err
	})
	if err != nil {
		return RESTPowerResult{}, fmt.Errorf("baseline: %w", err)
	}
	r.IpmitoolP50, r.IpmitoolP99 = Percentile(lat, 50), Percentile(lat, 99)
	lat, elapsed, err = closedLoop(cfg.IpmitoolRequests, cfg.Concurrency, func(worker int) error {
		_, err := tools[worker%cfg.Nodes].PowerStatus(ctx)
		return err
	})
	if err != nil {
		return RESTPowerResult{}, fmt.Errorf("baseline: %w", err)
	}
	r.IpmitoolRequests = cfg.IpmitoolRequests
	r.IpmitoolReqPerSec = float64(cfg.IpmitoolRequests) / elapsed.Seconds()
	r.IpmitoolLoadedP50 = Percentile(lat, 50)
	r.Ratio = r.ReqPerSec / r.IpmitoolReqPerSec
	r.LatencyRatio = float64(r.IpmitoolP50) / float64(r.P50)
	return r, nil
}

// closedLoop runs total calls of op on concurrency workers, each starting
// its next call when the last one returns, and returns every call's
// latency and the wall time of the whole run.
func closedLoop(total, concurrency int, op func(worker int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, total)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for w := range concurrency {
		wg.Go(func() {
			for failed.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				t0 := time.Now()
				if err := op(w); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if e := failed.Load(); e != nil {
		return nil, 0, *e
	}
	return lat, elapsed, nil
}

// IdleConfig sizes the memory benchmark.
type IdleConfig struct {
	Obmd  string // the obmd binary
	Nodes int    // ipmi nodes, each with a warm idle session (default 10,000)
}

// IdleResult is obmd's memory with many registered nodes, each holding an
// established, idle RMCP+ session (opened by one power_status call).
type IdleResult struct {
	Nodes             int
	RSSBase           int64 // before any node
	RSS, HWM          int64 // with every node registered and its session warm
	RSSPerNode        int64 // (RSS - RSSBase) / Nodes
	Register, Connect time.Duration
}

// IdleSessions registers cfg.Nodes ipmi nodes on a fleet of simulated BMCs
// in this process, asks each for its power status once (which leaves a
// warm session behind) and reads obmd's resident memory.
func IdleSessions(ctx context.Context, cfg IdleConfig) (IdleResult, error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 10000
	}
	if _, err := RaiseFileLimit(uint64(cfg.Nodes) + 4096); err != nil {
		return IdleResult{}, err
	}
	fleet, err := startFleet(ctx, cfg.Nodes, fakebmc.DefaultBaud)
	if err != nil {
		return IdleResult{}, err
	}
	defer fleet.Close()
	d, err := StartDaemon(ctx, cfg.Obmd)
	if err != nil {
		return IdleResult{}, err
	}
	defer d.Stop()
	base, err := d.Usage()
	if err != nil {
		return IdleResult{}, err
	}
	t0 := time.Now()
	tokens, err := registerFleet(ctx, d, fleet)
	if err != nil {
		return IdleResult{}, err
	}
	t1 := time.Now()
	err = forEach(cfg.Nodes, 64, func(i int) error {
		st, err := d.PowerStatus(ctx, nodeID(i), tokens[i])
		if err == nil && st != "on" {
			err = fmt.Errorf("node %s power_status is %q; the simulated machine was started on", nodeID(i), st)
		}
		return err
	})
	if err != nil {
		return IdleResult{}, fmt.Errorf("opening a session per node: %w", err)
	}
	t2 := time.Now()
	u, err := d.Usage()
	if err != nil {
		return IdleResult{}, err
	}
	return IdleResult{
		Nodes:      cfg.Nodes,
		RSSBase:    base.RSS,
		RSS:        u.RSS,
		HWM:        u.HWM,
		RSSPerNode: (u.RSS - base.RSS) / int64(cfg.Nodes),
		Register:   t1.Sub(t0),
		Connect:    t2.Sub(t1),
	}, nil
}
