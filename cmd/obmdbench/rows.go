package main

import (
	"fmt"
	"time"

	"obmd/bench"
)

// collector holds every run's results, per scenario.
type collector struct {
	warm        []bench.WarmResult
	cold        []bench.ColdResult
	sol         []bench.SOLResult
	rest        []bench.RESTPowerResult
	redfish     []bench.RedfishPowerResult
	fanViewers  []bench.FanoutResult
	fanNodes    []bench.FanoutResult
	idle        []bench.IdleResult
	typing      []bench.TypingResult
	fanWS       []bench.FanoutResult
	cluster     []bench.ClusterResult
	clusterEtcd []bench.ClusterEtcdResult
	failures    map[string][]string // scenario -> reasons
}

func newCollector() *collector { return &collector{failures: map[string][]string{}} }

func (c *collector) fail(name string, err error) {
	c.failures[name] = append(c.failures[name], err.Error())
}

func (c *collector) failed() bool { return len(c.failures) > 0 }

// series extracts one figure from every run.
func series[T any](rs []T, f func(T) float64) bench.Series {
	s := make(bench.Series, len(rs))
	for i, r := range rs {
		s[i] = f(r)
	}
	return s
}

func sec(d time.Duration) float64 { return d.Seconds() }

// perSec renders a rate.
func perSec(f func(float64) string) func(float64) string {
	return func(v float64) string { return f(v) + "/s" }
}

// rows turns the results into the report's table, in scenario order.
func (c *collector) rows(o *options, r *bench.Report) {
	add := func(row bench.Row) { r.Rows = append(r.Rows, row) }
	failedRow := func(name, title string) {
		if reasons := c.failures[name]; len(reasons) > 0 {
			add(benchRow(title, "runs failed", fmt.Sprintf("%d of %d", len(reasons), o.runs)))
			r.Notes = append(r.Notes, fmt.Sprintf("%s failed: %s", title, reasons[0]))
		}
	}

	if o.only["warm"] {
		name := "RMCP+ engine, warm session (client + fakebmc in one process, loopback)"
		if len(c.warm) > 0 {
			p50 := series(c.warm, func(x bench.WarmResult) float64 { return sec(x.P50) })
			add(bench.Row{Benchmark: name, Metric: "Get Chassis Status p50", Value: p50.Spread(bench.FmtDuration),
				Goal: "< 100 µs", Met: bench.Judge(p50.Median() < 100e-6)})
			add(bench.Row{Benchmark: name, Metric: "p99",
				Value: series(c.warm, func(x bench.WarmResult) float64 { return sec(x.P99) }).Spread(bench.FmtDuration)})
			add(bench.Row{Benchmark: name, Metric: "requests/s, one at a time",
				Value: series(c.warm, func(x bench.WarmResult) float64 { return x.OpsPerSec }).Spread(perSec(bench.FmtCount))})
		}
		failedRow("warm", name)
	}

	if o.only["cold"] {
		name := "RMCP+ engine, cold: handshake (suite 17) + Get Chassis Status + close"
		if len(c.cold) > 0 {
			ratio := series(c.cold, func(x bench.ColdResult) float64 { return x.Ratio })
			add(bench.Row{Benchmark: name, Metric: "p50; baseline `ipmitool -I lanplus -C 17 chassis power status` process",
				Value:    series(c.cold, func(x bench.ColdResult) float64 { return sec(x.P50) }).Spread(bench.FmtDuration),
				Baseline: series(c.cold, func(x bench.ColdResult) float64 { return sec(x.IpmitoolP50) }).Spread(bench.FmtDuration),
				Ratio:    ratio.Spread(bench.FmtRatio), Goal: ">= 20x", Met: bench.Judge(ratio.Median() >= 20)})
			add(bench.Row{Benchmark: name, Metric: "p99",
				Value:    series(c.cold, func(x bench.ColdResult) float64 { return sec(x.P99) }).Spread(bench.FmtDuration),
				Baseline: series(c.cold, func(x bench.ColdResult) float64 { return sec(x.IpmitoolP99) }).Spread(bench.FmtDuration)})
		}
		failedRow("cold", name)
	}

	if o.only["sol"] {
		name := "SOL engine, 1 session, `fakebmc -baud 0` in its own process"
		if len(c.sol) > 0 {
			ratio := series(c.sol, func(x bench.SOLResult) float64 { return x.Ratio })
			add(bench.Row{Benchmark: name, Metric: "throughput; baseline: stop-and-wait limit of the link (255 chars / mean link round trip)",
				Value:    series(c.sol, func(x bench.SOLResult) float64 { return x.BytesPerSec }).Spread(perSec(bench.FmtBytes)),
				Baseline: series(c.sol, func(x bench.SOLResult) float64 { return x.LimitBytesPerSec }).Spread(perSec(bench.FmtBytes)),
				Ratio:    ratio.Spread(bench.FmtPercent), Goal: ">= 80% of the limit", Met: bench.Judge(ratio.Median() >= 0.8)})
			add(bench.Row{Benchmark: name, Metric: "throughput / (255 chars per full cycle: client turnaround + link round trip)",
				Ratio: series(c.sol, func(x bench.SOLResult) float64 { return x.CycleRatio }).Spread(bench.FmtPercent)})
			add(bench.Row{Benchmark: name, Metric: "client turnaround (packet read -> ACK written), mean; link round trip (ACK written -> next packet read), mean",
				Value:    series(c.sol, func(x bench.SOLResult) float64 { return sec(x.Turnaround) }).Spread(bench.FmtDuration),
				Baseline: series(c.sol, func(x bench.SOLResult) float64 { return sec(x.LinkRTT) }).Spread(bench.FmtDuration)})
			add(bench.Row{Benchmark: name, Metric: "client CPU per MB (getrusage); fakebmc's CPU per MB",
				Value:    series(c.sol, func(x bench.SOLResult) float64 { return x.CPUPerMB }).Spread(bench.FmtDuration),
				Baseline: series(c.sol, func(x bench.SOLResult) float64 { return x.FakeBMCCPUPerMB }).Spread(bench.FmtDuration)})
			gaps := series(c.sol, func(x bench.SOLResult) float64 { return float64(x.Gaps) })
			add(bench.Row{Benchmark: name, Metric: "counter gaps", Value: gaps.Spread(bench.FmtInt),
				Goal: "0", Met: bench.Judge(maxOf(gaps) == 0)})
		}
		failedRow("sol", name)
	}

	if o.only["rest"] {
		name := fmt.Sprintf("Daemon: GET power_status via REST, %d ipmi nodes", o.restNodes)
		if len(c.rest) > 0 {
			ratio := series(c.rest, func(x bench.RESTPowerResult) float64 { return x.Ratio })
			p50 := series(c.rest, func(x bench.RESTPowerResult) float64 { return sec(x.P50) })
			add(bench.Row{Benchmark: name, Metric: fmt.Sprintf("requests/s, %d concurrent clients; baseline: one `ipmitool -I lanplus -C 17 chassis power status` process per request, same concurrency", o.restConc),
				Value:    series(c.rest, func(x bench.RESTPowerResult) float64 { return x.ReqPerSec }).Spread(perSec(bench.FmtCount)),
				Baseline: series(c.rest, func(x bench.RESTPowerResult) float64 { return x.IpmitoolReqPerSec }).Spread(perSec(bench.FmtCount)),
				Ratio:    ratio.Spread(bench.FmtRatio), Goal: ">= 200x", Met: bench.Judge(ratio.Median() >= 200)})
			add(bench.Row{Benchmark: name, Metric: "latency p50, one client at a time; baseline: ipmitool process",
				Value:    p50.Spread(bench.FmtDuration),
				Baseline: series(c.rest, func(x bench.RESTPowerResult) float64 { return sec(x.IpmitoolP50) }).Spread(bench.FmtDuration),
				Ratio:    series(c.rest, func(x bench.RESTPowerResult) float64 { return x.LatencyRatio }).Spread(bench.FmtRatio),
				Goal:     "< 0.5 ms", Met: bench.Judge(p50.Median() < 0.5e-3)})
			add(bench.Row{Benchmark: name, Metric: "latency p99, one client at a time",
				Value:    series(c.rest, func(x bench.RESTPowerResult) float64 { return sec(x.P99) }).Spread(bench.FmtDuration),
				Baseline: series(c.rest, func(x bench.RESTPowerResult) float64 { return sec(x.IpmitoolP99) }).Spread(bench.FmtDuration)})
			add(bench.Row{Benchmark: name, Metric: fmt.Sprintf("latency p50 / p99 with %d concurrent clients (queueing: clients / throughput)", o.restConc),
				Value: series(c.rest, func(x bench.RESTPowerResult) float64 { return sec(x.LoadedP50) }).Spread(bench.FmtDuration) + " / " +
					series(c.rest, func(x bench.RESTPowerResult) float64 { return sec(x.LoadedP99) }).Spread(bench.FmtDuration),
				Baseline: series(c.rest, func(x bench.RESTPowerResult) float64 { return sec(x.IpmitoolLoadedP50) }).Spread(bench.FmtDuration) + " (p50)"})
			add(bench.Row{Benchmark: name, Metric: "obmd CPU per request (loaded)",
				Value: series(c.rest, func(x bench.RESTPowerResult) float64 { return sec(x.ObmdCPUPerReq) }).Spread(bench.FmtDuration)})
		}
		failedRow("rest", name)
	}

	if o.only["redfish"] {
		name := "Daemon: GET power_status via REST, 1 redfish node (fakebmc -redfish, certificate pinned)"
		if len(c.redfish) > 0 {
			ratio := series(c.redfish, func(x bench.RedfishPowerResult) float64 { return x.Ratio })
			add(bench.Row{Benchmark: name, Metric: "requests/s, one client at a time (obmd's Redfish session and TLS connection warm); baseline: `curl` login + GET system + logout (3 processes) per request",
				Value:    series(c.redfish, func(x bench.RedfishPowerResult) float64 { return x.ReqPerSec }).Spread(perSec(bench.FmtCount)),
				Baseline: series(c.redfish, func(x bench.RedfishPowerResult) float64 { return x.CurlPerSec }).Spread(perSec(bench.FmtCount)),
				Ratio:    ratio.Spread(bench.FmtRatio), Goal: ">= 20x", Met: bench.Judge(ratio.Median() >= 20)})
			add(bench.Row{Benchmark: name, Metric: "latency p50; baseline: the curl sequence",
				Value:    series(c.redfish, func(x bench.RedfishPowerResult) float64 { return sec(x.P50) }).Spread(bench.FmtDuration),
				Baseline: series(c.redfish, func(x bench.RedfishPowerResult) float64 { return sec(x.CurlP50) }).Spread(bench.FmtDuration),
				Ratio:    series(c.redfish, func(x bench.RedfishPowerResult) float64 { return x.LatencyRatio }).Spread(bench.FmtRatio)})
			add(bench.Row{Benchmark: name, Metric: "latency p99",
				Value:    series(c.redfish, func(x bench.RedfishPowerResult) float64 { return sec(x.P99) }).Spread(bench.FmtDuration),
				Baseline: series(c.redfish, func(x bench.RedfishPowerResult) float64 { return sec(x.CurlP99) }).Spread(bench.FmtDuration)})
			logins := series(c.redfish, func(x bench.RedfishPowerResult) float64 { return float64(x.LoginsWhileTimed) })
			add(bench.Row{Benchmark: name, Metric: "BMC logins while timed (one warm session); obmd CPU per request",
				Value: logins.Spread(bench.FmtInt) + "; " + series(c.redfish, func(x bench.RedfishPowerResult) float64 { return sec(x.ObmdCPUPerRequest) }).Spread(bench.FmtDuration),
				Goal:  "0 logins", Met: bench.Judge(maxOf(logins) == 0)})
		}
		failedRow("redfish", name)
	}

	if o.only["fanout-viewers"] {
		name := fmt.Sprintf("Daemon: console fan-out, 1 node x %d viewers, 115200 baud", o.fanoutViewers)
		fanoutRows(add, name, c.fanViewers, false)
		failedRow("fanout-viewers", name)
	}
	if o.only["fanout-nodes"] {
		name := fmt.Sprintf("Daemon: console fan-out, %d nodes x 1 viewer, 115200 baud", o.fanoutNodes)
		fanoutRows(add, name, c.fanNodes, true)
		failedRow("fanout-nodes", name)
	}

	if o.only["idle"] {
		name := fmt.Sprintf("Daemon: %d ipmi nodes, each with a warm idle session", o.idleNodes)
		if len(c.idle) > 0 {
			rss := series(c.idle, func(x bench.IdleResult) float64 { return float64(x.RSS) })
			add(bench.Row{Benchmark: name, Metric: "obmd RSS (VmRSS)", Value: rss.Spread(bench.FmtBytes),
				Goal: "< 512 MiB", Met: bench.Judge(rss.Median() < 512<<20)})
			add(bench.Row{Benchmark: name, Metric: "RSS per node (above the empty daemon)",
				Value: series(c.idle, func(x bench.IdleResult) float64 { return float64(x.RSSPerNode) }).Spread(bench.FmtBytes)})
			add(bench.Row{Benchmark: name, Metric: "time to register all; to open every session",
				Value:    series(c.idle, func(x bench.IdleResult) float64 { return sec(x.Register) }).Spread(bench.FmtDuration),
				Baseline: series(c.idle, func(x bench.IdleResult) float64 { return sec(x.Connect) }).Spread(bench.FmtDuration)})
		}
		failedRow("idle", name)
	}

	if o.only["typing"] {
		name := "Interactive console: a typed key -> the machine's serial port (WebSocket -> obmd -> SOL -> fakebmc), one key at a time"
		if len(c.typing) > 0 {
			add(bench.Row{Benchmark: name, Metric: "latency p50; baseline: a byte written to `ipmitool -I lanplus -C 17 sol activate`'s stdin, same fleet, same run",
				Value:    series(c.typing, func(x bench.TypingResult) float64 { return sec(x.P50) }).Spread(bench.FmtDuration),
				Baseline: series(c.typing, func(x bench.TypingResult) float64 { return sec(x.IpmitoolP50) }).Spread(bench.FmtDuration),
				Ratio:    series(c.typing, func(x bench.TypingResult) float64 { return x.IpmitoolP50.Seconds() / x.P50.Seconds() }).Spread(bench.FmtRatio)})
			add(bench.Row{Benchmark: name, Metric: "latency p99; baseline: ipmitool sol activate",
				Value:    series(c.typing, func(x bench.TypingResult) float64 { return sec(x.P99) }).Spread(bench.FmtDuration),
				Baseline: series(c.typing, func(x bench.TypingResult) float64 { return sec(x.IpmitoolP99) }).Spread(bench.FmtDuration),
				Ratio:    series(c.typing, func(x bench.TypingResult) float64 { return x.IpmitoolP99.Seconds() / x.P99.Seconds() }).Spread(bench.FmtRatio)})
		}
		failedRow("typing", name)
	}
	if o.only["fanout-ws"] {
		name := fmt.Sprintf("Daemon: console fan-out over WebSocket, 1 node x %d viewers, 115200 baud", o.fanoutViewers)
		fanoutRows(add, name, c.fanWS, false)
		failedRow("fanout-ws", name)
	}

	if o.only["cluster"] {
		name := fmt.Sprintf("Cluster: 3 obmd on one etcd, %d ipmi nodes each; the owner of %d is SIGKILLed during a power-call loop, 2 viewers per console on the survivors", o.clusterNodes, o.clusterNodes)
		if len(c.cluster) > 0 {
			pb := series(c.cluster, func(x bench.ClusterResult) float64 { return sec(x.PowerBackMax) })
			add(bench.Row{Benchmark: name, Metric: "power calls work again after the kill: p50 / slowest node",
				Value: series(c.cluster, func(x bench.ClusterResult) float64 { return sec(x.PowerBackP50) }).Spread(bench.FmtDuration) + " / " + pb.Spread(bench.FmtDuration),
				Goal:  "< 5 s", Met: bench.Judge(pb.Median() < 5)})
			add(bench.Row{Benchmark: name, Metric: "power calls that failed after the kill (the others waited for the new owner)",
				Value: series(c.cluster, func(x bench.ClusterResult) float64 { return float64(x.FailedCalls) }).Spread(bench.FmtInt)})
			cb := series(c.cluster, func(x bench.ClusterResult) float64 { return sec(x.ConsoleBackMax) })
			add(bench.Row{Benchmark: name, Metric: "consoles back (gap marked) after the kill: p50 / slowest viewer",
				Value: series(c.cluster, func(x bench.ClusterResult) float64 { return sec(x.ConsoleBackP50) }).Spread(bench.FmtDuration) + " / " + cb.Spread(bench.FmtDuration),
				Goal:  "< 10 s", Met: bench.Judge(cb.Median() < 10)})
			lost := series(c.cluster, func(x bench.ClusterResult) float64 { return float64(x.LostWrites) })
			add(bench.Row{Benchmark: name, Metric: "acknowledged registrations / tokens lost (admin writes to all 3 instances around the kill)",
				Value:    lost.Spread(bench.FmtInt),
				Baseline: series(c.cluster, func(x bench.ClusterResult) float64 { return float64(x.AckedRegistrations) }).Spread(bench.FmtInt) + " registrations, " + series(c.cluster, func(x bench.ClusterResult) float64 { return float64(x.AckedTokens) }).Spread(bench.FmtInt) + " tokens acknowledged",
				Goal:     "0", Met: bench.Judge(lost.Median() == 0 && slicesMax(lost) == 0)})
			rv := series(c.cluster, func(x bench.ClusterResult) float64 { return sec(x.RevocationMax) })
			add(bench.Row{Benchmark: name, Metric: "token replaced on one instance: its viewer on another ends, from the request: p50 / max of 20",
				Value: series(c.cluster, func(x bench.ClusterResult) float64 { return sec(x.RevocationP50) }).Spread(bench.FmtDuration) + " / " + rv.Spread(bench.FmtDuration),
				Goal:  "< 200 ms", Met: bench.Judge(rv.Median() < 0.2)})
			rc := series(c.cluster, func(x bench.ClusterResult) float64 { return float64(x.RebalanceReconnects) })
			add(bench.Row{Benchmark: name, Metric: "killed instance restarted: time until it owns its share again; most reconnects any watched console saw",
				Value: series(c.cluster, func(x bench.ClusterResult) float64 { return sec(x.RebalanceTime) }).Spread(bench.FmtDuration) + "; " + rc.Spread(bench.FmtInt),
				Goal:  "<= 1 reconnect", Met: bench.Judge(slicesMax(rc) <= 1 && slicesMax(series(c.cluster, func(x bench.ClusterResult) float64 { return float64(x.RebalanceConsolesCut) })) == 0)})
		}
		failedRow("cluster", name)
	}

	if o.only["cluster-etcd"] {
		name := "Cluster: 2 obmd, 10 ipmi nodes, a power-call loop on each node through both instances and a viewer per console; etcd (1 member) killed for 6 s, then a 3-member etcd's leader killed"
		if len(c.clusterEtcd) > 0 {
			s := func(f func(bench.ClusterEtcdResult) float64) bench.Series { return series(c.clusterEtcd, f) }
			failed := s(func(x bench.ClusterEtcdResult) float64 { return float64(x.OutageFailed) })
			gaps := s(func(x bench.ClusterEtcdResult) float64 { return float64(x.OutageMarkers) })
			add(bench.Row{Benchmark: name, Metric: "etcd down: power calls failed / made (owned nodes served locally, the others forwarded); console gaps",
				Value: failed.Spread(bench.FmtInt) + " / " + s(func(x bench.ClusterEtcdResult) float64 { return float64(x.OutageCalls) }).Spread(bench.FmtInt) + "; " + gaps.Spread(bench.FmtInt),
				Goal:  "0 failed, 0 gaps", Met: bench.Judge(slicesMax(failed) == 0 && slicesMax(gaps) == 0)})
			status := s(func(x bench.ClusterEtcdResult) float64 { return float64(x.RefusedStatus) })
			add(bench.Row{Benchmark: name, Metric: "etcd down: an admin write is refused (status) after",
				Value: status.Spread(bench.FmtInt) + " after " + s(func(x bench.ClusterEtcdResult) float64 { return sec(x.RefusedAfter) }).Spread(bench.FmtDuration),
				Goal:  "503", Met: bench.Judge(status.Median() == 503 && slicesMax(status) == 503)})
			mv := s(func(x bench.ClusterEtcdResult) float64 { return float64(x.MovedByOutage) })
			add(bench.Row{Benchmark: name, Metric: "etcd back: admin writes work / a token made on one instance works on the other, after; nodes moved by the outage",
				Value: s(func(x bench.ClusterEtcdResult) float64 { return sec(x.WritesBack) }).Spread(bench.FmtDuration) + " / " +
					s(func(x bench.ClusterEtcdResult) float64 { return sec(x.TokensBack) }).Spread(bench.FmtDuration) + "; " + mv.Spread(bench.FmtInt),
				Goal: "0 moved", Met: bench.Judge(slicesMax(mv) == 0)})
			lf := s(func(x bench.ClusterEtcdResult) float64 {
				return float64(x.LeaderLossFailed) + float64(x.MovedByLeaderLoss)
			})
			add(bench.Row{Benchmark: name, Metric: "3-member etcd, leader killed: admin writes work again after; power calls failed + nodes moved",
				Value: s(func(x bench.ClusterEtcdResult) float64 { return sec(x.LeaderLossWritesBack) }).Spread(bench.FmtDuration) + "; " + lf.Spread(bench.FmtInt),
				Goal:  "0", Met: bench.Judge(slicesMax(lf) == 0)})
		}
		failedRow("cluster-etcd", name)
	}
}

// fanoutRows adds a console fan-out benchmark's rows. perNode: the
// memory goal is per node (many nodes), else it is reported per viewer.
func fanoutRows(add func(bench.Row), name string, rs []bench.FanoutResult, perNode bool) {
	if len(rs) == 0 {
		return
	}
	gaps := series(rs, func(x bench.FanoutResult) float64 { return float64(x.Gaps) })
	untimed := series(rs, func(x bench.FanoutResult) float64 { return float64(x.Untimed + x.TapAnomalies + uint64(x.Late)) })
	delivered := series(rs, func(x bench.FanoutResult) float64 { return float64(x.Bytes) / float64(x.ExpectedBytes) })
	add(bench.Row{Benchmark: name, Metric: "bytes delivered to all viewers in the window / printed by the consoles",
		Value: series(rs, func(x bench.FanoutResult) float64 { return float64(x.Bytes) }).Spread(bench.FmtBytes),
		Ratio: delivered.Spread(bench.FmtPercent)})
	add(bench.Row{Benchmark: name, Metric: "gaps: missing, duplicate, reordered or marker lines, all viewers",
		Value: gaps.Spread(bench.FmtInt), Goal: "0", Met: bench.Judge(maxOf(gaps) == 0)})
	add(bench.Row{Benchmark: name, Metric: "timing failures: lines no tap saw, tap anomalies, late viewers",
		Value: untimed.Spread(bench.FmtInt), Goal: "0", Met: bench.Judge(maxOf(untimed) == 0)})
	add(bench.Row{Benchmark: name, Metric: "lines timed (viewers of tapped nodes)",
		Value:    series(rs, func(x bench.FanoutResult) float64 { return float64(x.Samples) }).Spread(bench.FmtCount),
		Baseline: series(rs, func(x bench.FanoutResult) float64 { return float64(x.TimedViewers) }).Spread(bench.FmtInt) + " viewers"})
	p99 := series(rs, func(x bench.FanoutResult) float64 { return sec(x.P99) })
	add(bench.Row{Benchmark: name, Metric: "line latency p99, left the BMC -> read by the viewer; baseline: direct SOL client, same fleet, same run",
		Value:    p99.Spread(bench.FmtDuration),
		Baseline: series(rs, func(x bench.FanoutResult) float64 { return sec(x.RefP99) }).Spread(bench.FmtDuration),
		Goal:     "< 20 ms", Met: bench.Judge(p99.Median() < 20e-3)})
	add(bench.Row{Benchmark: name, Metric: "line latency p50; baseline: direct SOL client",
		Value:    series(rs, func(x bench.FanoutResult) float64 { return sec(x.P50) }).Spread(bench.FmtDuration),
		Baseline: series(rs, func(x bench.FanoutResult) float64 { return sec(x.RefP50) }).Spread(bench.FmtDuration)})
	add(bench.Row{Benchmark: name, Metric: "obmd CPU, cores busy at the rate achieved; baseline: this process (simulated BMCs, viewers, taps)",
		Value:    series(rs, func(x bench.FanoutResult) float64 { return x.ObmdCores }).Spread(fmtCores),
		Baseline: series(rs, func(x bench.FanoutResult) float64 { return x.BenchCores }).Spread(fmtCores)})
	projected := series(rs, func(x bench.FanoutResult) float64 {
		return x.ObmdCores * float64(x.ExpectedBytes) / float64(max(x.Bytes, 1))
	})
	add(bench.Row{Benchmark: name, Metric: "obmd CPU projected to the full console rate (cores x printed / delivered)",
		Value: projected.Spread(fmtCores), Goal: "< 1 core", Met: bench.Judge(projected.Median() < 1)})
	add(bench.Row{Benchmark: name, Metric: "obmd SOL turnaround p50 / p99 (BMC packet -> obmd's ACK, seen at the tap); BMC retransmissions",
		Value: series(rs, func(x bench.FanoutResult) float64 { return sec(x.ACKP50) }).Spread(bench.FmtDuration) + " / " +
			series(rs, func(x bench.FanoutResult) float64 { return sec(x.ACKP99) }).Spread(bench.FmtDuration),
		Baseline: series(rs, func(x bench.FanoutResult) float64 { return float64(x.Retransmits) }).Spread(bench.FmtInt) + " retransmitted"})
	add(bench.Row{Benchmark: name, Metric: "console output leaving the tapped BMCs / their baud rate",
		Value: series(rs, func(x bench.FanoutResult) float64 { return x.EmittedRate }).Spread(bench.FmtPercent)})
	add(bench.Row{Benchmark: name, Metric: "obmd RSS",
		Value: series(rs, func(x bench.FanoutResult) float64 { return float64(x.ObmdRSS) }).Spread(bench.FmtBytes)})
	if perNode {
		per := series(rs, func(x bench.FanoutResult) float64 { return float64(x.RSSPerNode) })
		add(bench.Row{Benchmark: name, Metric: "RSS per node (above the empty daemon)", Value: per.Spread(bench.FmtBytes),
			Goal: "< 32 KiB + 64 KiB scrollback", Met: bench.Judge(per.Median() < 32<<10+bench.ObmdScrollback)})
	} else {
		add(bench.Row{Benchmark: name, Metric: "RSS per viewer (above the empty daemon)",
			Value: series(rs, func(x bench.FanoutResult) float64 { return float64(x.RSSPerViewer) }).Spread(bench.FmtBytes)})
	}
}

func fmtCores(v float64) string { return fmt.Sprintf("%.2f", v) }

func maxOf(s bench.Series) float64 {
	m := s[0]
	for _, v := range s[1:] {
		m = max(m, v)
	}
	return m
}

// benchRow is a row with only a value.
func benchRow(name, metric, value string) bench.Row {
	return bench.Row{Benchmark: name, Metric: metric, Value: value, Met: bench.Missed}
}

func slicesMax(s bench.Series) float64 {
	m := 0.0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}
