// Command obmdbench runs obmd's benchmarks full size (package obmd/bench),
// several times, and appends a dated section with the medians, the
// baselines measured in the same runs, and the goals to bench/RESULTS.md.
//
//	obmdbench -runs 5 -results bench/RESULTS.md
//
// It builds cmd/obmd and cmd/fakebmc itself unless given binaries, so it
// must run inside the obmd module (`make bench` does). The baselines need
// ipmitool (and curl for the redfish row). A scenario that fails is reported as failed, with the reason:
// no figure is ever made up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"obmd/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// scenarios, in the order they run within each round.
var scenarioNames = []string{"warm", "cold", "sol", "rest", "redfish", "fanout-viewers", "fanout-nodes", "idle", "typing", "fanout-ws", "cluster", "cluster-etcd"}

type options struct {
	runs       int
	results    string
	only       map[string]bool
	obmd       string
	fakebmc    string
	cpuprofile string
	command    string // how the run was invoked, for the report

	warmOps, coldOps, ipmitoolOps        int
	solDuration                          time.Duration
	restNodes, restConc, restReqs, restN int
	fanoutDuration                       time.Duration
	fanoutViewers, fanoutNodes           int
	idleNodes                            int
	redfishReqs, redfishCurl             int
	typingSamples                        int
	clusterNodes                         int
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("obmdbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var only, command string
	fs.IntVar(&o.runs, "runs", 5, "rounds; every figure is the median over them")
	fs.StringVar(&o.results, "results", "bench/RESULTS.md", "append the report to this `file` (empty: print only)")
	fs.StringVar(&only, "only", strings.Join(scenarioNames, ","), "comma-separated scenarios to run: "+strings.Join(scenarioNames, ", "))
	fs.StringVar(&o.obmd, "obmd", "", "obmd `binary` (default: build cmd/obmd)")
	fs.StringVar(&o.fakebmc, "fakebmc", "", "fakebmc `binary` (default: build cmd/fakebmc)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write this process's CPU profile to `file`")
	fs.StringVar(&command, "command", "", "the command line to record in the report (default: this one)")
	fs.IntVar(&o.warmOps, "warm-ops", 20000, "warm-session Get Chassis Status requests per run")
	fs.IntVar(&o.coldOps, "cold-ops", 300, "cold handshakes of obmd's client per run")
	fs.IntVar(&o.ipmitoolOps, "ipmitool-ops", 30, "ipmitool processes per run (cold baseline)")
	fs.DurationVar(&o.solDuration, "sol-duration", 5*time.Second, "SOL throughput window")
	fs.IntVar(&o.restNodes, "rest-nodes", 16, "nodes for REST power_status")
	fs.IntVar(&o.restConc, "rest-concurrency", 16, "concurrent REST clients (and ipmitool processes)")
	fs.IntVar(&o.restReqs, "rest-requests", 20000, "REST requests per run")
	fs.IntVar(&o.restN, "rest-ipmitool", 64, "ipmitool processes per run (REST baseline)")
	fs.DurationVar(&o.fanoutDuration, "fanout-duration", 10*time.Second, "console fan-out window")
	fs.IntVar(&o.fanoutViewers, "fanout-viewers", 1000, "viewers of one node (fanout-viewers)")
	fs.IntVar(&o.fanoutNodes, "fanout-nodes", 1000, "nodes with one viewer each (fanout-nodes)")
	fs.IntVar(&o.idleNodes, "idle-nodes", 10000, "nodes with idle warm sessions (idle)")
	fs.IntVar(&o.redfishReqs, "redfish-requests", 5000, "power_status requests on a redfish node per run (redfish)")
	fs.IntVar(&o.redfishCurl, "redfish-curl", 40, "curl login-query-logout sequences per run (redfish baseline)")
	fs.IntVar(&o.typingSamples, "typing-samples", 500, "keys timed per client (typing)")
	fs.IntVar(&o.clusterNodes, "cluster-nodes", 50, "nodes each of the 3 instances owns; one instance is killed (cluster)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.runs < 1 {
		return nil, fmt.Errorf("-runs %d: need at least 1", o.runs)
	}
	o.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(scenarioNames, s) {
			return nil, fmt.Errorf("-only: unknown scenario %q (known: %s)", s, strings.Join(scenarioNames, ", "))
		}
		o.only[s] = true
	}
	o.command = command
	if o.command == "" {
		o.command = strings.Join(append([]string{"obmdbench"}, args...), " ")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "obmdbench: %v\n", err)
		return 2
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "obmdbench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "obmdbench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	// Viewers, BMC sockets and obmd's sessions need many descriptors; obmd
	// inherits the raised limit.
	if lim, err := bench.RaiseFileLimit(65536); err != nil {
		fmt.Fprintf(stderr, "obmdbench: %v\n", err)
	} else {
		fmt.Fprintf(stderr, "open-file limit: %d\n", lim)
	}
	if err := o.buildBinaries(ctx, stderr); err != nil {
		fmt.Fprintf(stderr, "obmdbench: %v\n", err)
		return 1
	}

	date := time.Now()
	loadBefore := bench.LoadAverage()
	c := newCollector()
	for round := 1; round <= o.runs; round++ {
		for _, name := range scenarioNames {
			if !o.only[name] || ctx.Err() != nil {
				continue
			}
			t0 := time.Now()
			err := o.runScenario(ctx, name, c)
			status := "ok"
			if err != nil {
				status = "FAILED: " + err.Error()
				c.fail(name, err)
			}
			fmt.Fprintf(stderr, "round %d/%d %-15s %6.1fs %s\n", round, o.runs, name, time.Since(t0).Seconds(), status)
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "obmdbench: interrupted; no report written")
		return 1
	}
	report := bench.Report{
		Date:    date,
		Machine: bench.DescribeMachine(ctx),
		Command: o.command,
		Runs:    o.runs,

		LoadBefore: loadBefore,
		LoadAfter:  bench.LoadAverage(),
	}
	c.rows(o, &report)
	fmt.Fprint(stdout, report.Markdown())
	if o.results != "" {
		if err := bench.AppendResults(o.results, report); err != nil {
			fmt.Fprintf(stderr, "obmdbench: writing %s: %v\n", o.results, err)
			return 1
		}
		fmt.Fprintf(stderr, "appended to %s\n", o.results)
	}
	if c.failed() {
		return 1
	}
	return 0
}

// buildBinaries builds obmd and fakebmc into a temporary directory unless
// given.
func (o *options) buildBinaries(ctx context.Context, stderr io.Writer) error {
	if o.obmd != "" && o.fakebmc != "" {
		return nil
	}
	dir, err := os.MkdirTemp("", "obmdbench-")
	if err != nil {
		return err
	}
	// The binaries are small; the directory is left for the OS to clean,
	// since the processes using them may outlive a deferred removal on a
	// signal.
	for _, b := range []struct {
		path *string
		pkg  string
	}{{&o.obmd, "obmd/cmd/obmd"}, {&o.fakebmc, "obmd/cmd/fakebmc"}} {
		if *b.path != "" {
			continue
		}
		fmt.Fprintf(stderr, "building %s\n", b.pkg)
		p, err := bench.BuildCommand(ctx, dir, b.pkg)
		if err != nil {
			return err
		}
		*b.path = p
	}
	return nil
}

// runScenario runs one scenario once and records its result.
func (o *options) runScenario(ctx context.Context, name string, c *collector) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	switch name {
	case "warm":
		r, err := bench.WarmPowerStatus(ctx, bench.WarmConfig{Ops: o.warmOps})
		if err == nil {
			c.warm = append(c.warm, r)
		}
		return err
	case "cold":
		r, err := bench.ColdPowerStatus(ctx, bench.ColdConfig{Ops: o.coldOps, IpmitoolOps: o.ipmitoolOps})
		if err == nil {
			c.cold = append(c.cold, r)
		}
		return err
	case "sol":
		r, err := bench.SOLThroughput(ctx, bench.SOLConfig{FakeBMC: o.fakebmc, Duration: o.solDuration})
		if err == nil {
			c.sol = append(c.sol, r)
		}
		return err
	case "rest":
		r, err := bench.RESTPower(ctx, bench.RESTPowerConfig{Obmd: o.obmd, Nodes: o.restNodes,
			Concurrency: o.restConc, Requests: o.restReqs, IpmitoolRequests: o.restN})
		if err == nil {
			c.rest = append(c.rest, r)
		}
		return err
	case "redfish":
		r, err := bench.RedfishPower(ctx, bench.RedfishPowerConfig{Obmd: o.obmd, Requests: o.redfishReqs, CurlRequests: o.redfishCurl})
		if err == nil {
			c.redfish = append(c.redfish, r)
		}
		return err
	case "fanout-viewers":
		r, err := bench.ConsoleFanout(ctx, bench.FanoutConfig{Obmd: o.obmd, Nodes: 1,
			ViewersPerNode: o.fanoutViewers, Duration: o.fanoutDuration})
		if err == nil {
			c.fanViewers = append(c.fanViewers, r)
		}
		return err
	case "fanout-nodes":
		r, err := bench.ConsoleFanout(ctx, bench.FanoutConfig{Obmd: o.obmd, Nodes: o.fanoutNodes,
			ViewersPerNode: 1, Duration: o.fanoutDuration})
		if err == nil {
			c.fanNodes = append(c.fanNodes, r)
		}
		return err
	case "idle":
		r, err := bench.IdleSessions(ctx, bench.IdleConfig{Obmd: o.obmd, Nodes: o.idleNodes})
		if err == nil {
			c.idle = append(c.idle, r)
		}
		return err
	case "typing":
		r, err := bench.TypingLatency(ctx, bench.TypingConfig{Obmd: o.obmd, Samples: o.typingSamples})
		if err == nil {
			c.typing = append(c.typing, r)
		}
		return err
	case "fanout-ws":
		r, err := bench.ConsoleFanout(ctx, bench.FanoutConfig{Obmd: o.obmd, Nodes: 1,
			ViewersPerNode: o.fanoutViewers, Duration: o.fanoutDuration, WebSocket: true})
		if err == nil {
			c.fanWS = append(c.fanWS, r)
		}
		return err
	case "cluster-etcd":
		r, err := bench.ClusterEtcdOutage(ctx, bench.ClusterEtcdConfig{Obmd: o.obmd})
		if err == nil {
			c.clusterEtcd = append(c.clusterEtcd, r)
		}
		return err
	case "cluster":
		r, err := bench.ClusterFailover(ctx, bench.ClusterConfig{Obmd: o.obmd, VictimNodes: o.clusterNodes})
		if err == nil {
			c.cluster = append(c.cluster, r)
		}
		return err
	}
	return fmt.Errorf("unknown scenario %q", name)
}
