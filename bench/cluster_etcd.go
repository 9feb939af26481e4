package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"obmd/fakebmc"
	"obmd/internal/etcdproc"
	"obmd/internal/freeport"
)

// The etcd side of the cluster scenario: what the instances do when etcd
// goes away. First a one-member etcd is killed for Outage while power
// calls and consoles run through both instances: calls must keep working
// (owned nodes locally, the others forwarded), consoles must not be cut,
// admin writes must be refused with 503, and all must resume when etcd is
// back. Then a three-member etcd loses its leader: how long admin writes
// stall (a new election), and whether anything else notices.

// ClusterEtcdConfig sizes the scenario.
type ClusterEtcdConfig struct {
	Obmd   string
	Nodes  int           // ipmi nodes (default 10)
	Outage time.Duration // how long etcd stays down (default 6 s: past the lease TTL)
}

// ClusterEtcdResult is one run.
type ClusterEtcdResult struct {
	Nodes int
	// During the outage: power calls made and failed, console gap markers
	// seen (none expected), and how long the first admin write took to be
	// refused (and with which status).
	OutageCalls, OutageFailed int
	OutageMarkers             int
	RefusedAfter              time.Duration
	RefusedStatus             int
	// After etcd is back: until an admin write succeeds, and until a token
	// made on one instance works on the other; nodes that changed owner.
	WritesBack, TokensBack time.Duration
	MovedByOutage          int
	// Three-member etcd, leader killed: until an admin write succeeds;
	// power calls failed meanwhile; nodes that changed owner.
	LeaderLossWritesBack time.Duration
	LeaderLossFailed     int
	MovedByLeaderLoss    int
}

// ClusterEtcdOutage runs the scenario once.
func ClusterEtcdOutage(ctx context.Context, cfg ClusterEtcdConfig) (ClusterEtcdResult, error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 10
	}
	if cfg.Outage <= 0 {
		cfg.Outage = 6 * time.Second
	}
	res := ClusterEtcdResult{Nodes: cfg.Nodes}
	fleet, err := startFleet(ctx, cfg.Nodes, fakebmc.DefaultBaud)
	if err != nil {
		return res, err
	}
	defer fleet.Close()

	// Part 1: a one-member etcd goes away and comes back.
	ins, ec, tokens, cleanup, err := startEtcdCluster(ctx, cfg.Obmd, fleet, etcdproc.Options{})
	defer cleanup()
	if err != nil {
		return res, err
	}
	before, err := owners(ctx, ins[0], cfg.Nodes)
	if err != nil {
		return res, err
	}
	var watchers []*watcher
	for i := range cfg.Nodes {
		rc, err := ins[i%2].OpenConsole(ctx, nodeID(i), tokens[i])
		if err != nil {
			return res, err
		}
		watchers = append(watchers, watch(rc, i))
	}
	if err := awaitReading(ctx, watchers, "every viewer reading"); err != nil {
		return res, err
	}

	ec.Members[0].Kill()
	down := time.Now()
	var calls, failed atomic.Int64
	stop := make(chan struct{})
	loops := callLoops(ctx, ins, cfg.Nodes, tokens, stop, &calls, &failed)
	start := time.Now()
	err = ins[0].call(ctx, http.MethodPut, "/node/extra", true, mockBody(), nil)
	res.RefusedAfter = time.Since(start)
	var api *apiError
	if !errors.As(err, &api) {
		close(stop)
		loops.Wait()
		return res, fmt.Errorf("registration with etcd down: %v, want a refusal", err)
	}
	res.RefusedStatus = api.Status
	sleepCtx(ctx, cfg.Outage-time.Since(down))
	close(stop)
	loops.Wait()
	res.OutageCalls, res.OutageFailed = int(calls.Load()), int(failed.Load())
	for _, w := range watchers {
		m, _, ended := w.state()
		res.OutageMarkers += len(m)
		if !ended.IsZero() {
			res.OutageMarkers++ // a cut console counts as a gap too
		}
	}

	if err := ec.Members[0].Restart(ctx); err != nil {
		return res, err
	}
	back := time.Now()
	if err := waitUntil(ctx, 30*time.Second, "an admin write after etcd came back", func() bool {
		return ins[0].call(ctx, http.MethodPut, "/node/extra", true, mockBody(), nil) == nil
	}); err != nil {
		return res, err
	}
	res.WritesBack = time.Since(back)
	tok, err := ins[0].NewToken(ctx, "extra")
	if err != nil {
		return res, err
	}
	var lastErr error
	if err := waitUntil(ctx, 30*time.Second, "a token made on one instance working on the other", func() bool {
		_, lastErr = ins[1].PowerStatus(ctx, "extra", tok)
		return lastErr == nil
	}); err != nil {
		return res, fmt.Errorf("%w (last answer: %v); the other instance's log ends:\n%s", err, lastErr, ins[1].proc.log.String())
	}
	res.TokensBack = time.Since(back)
	after, err := owners(ctx, ins[0], cfg.Nodes)
	if err != nil {
		return res, err
	}
	res.MovedByOutage = moved(before, after)
	cleanup()

	// Part 2: a three-member etcd loses its leader.
	ins, ec, tokens, cleanup2, err := startEtcdCluster(ctx, cfg.Obmd, fleet, etcdproc.Options{Members: 3})
	defer cleanup2()
	if err != nil {
		return res, err
	}
	if before, err = owners(ctx, ins[0], cfg.Nodes); err != nil {
		return res, err
	}
	leader, err := ec.Leader()
	if err != nil {
		return res, err
	}
	calls.Store(0)
	failed.Store(0)
	stop = make(chan struct{})
	loops = callLoops(ctx, ins, cfg.Nodes, tokens, stop, &calls, &failed)
	ec.Members[leader].Kill()
	killed := time.Now()
	werr := waitUntil(ctx, 30*time.Second, "an admin write after the etcd leader died", func() bool {
		err := ins[1].call(ctx, http.MethodPut, "/node/extra2", true, mockBody(), nil)
		return err == nil || errors.As(err, &api) && api.Status == http.StatusConflict
	})
	res.LeaderLossWritesBack = time.Since(killed)
	// Past a lease TTL, to see that no lease expired with the leader.
	sleepCtx(ctx, 4*time.Second-time.Since(killed))
	close(stop)
	loops.Wait()
	if werr != nil {
		return res, werr
	}
	res.LeaderLossFailed = int(failed.Load())
	if after, err = owners(ctx, ins[0], cfg.Nodes); err != nil {
		return res, err
	}
	res.MovedByLeaderLoss = moved(before, after)
	return res, nil
}

func mockBody() map[string]any {
	return map[string]any{"type": "mock", "info": map[string]any{"addr": "x", "NumWrites": 0}}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// startEtcdCluster starts an etcd (opts) and two obmd instances on it, and
// registers the fleet (node i through instance i%2, its token through the
// other).
func startEtcdCluster(ctx context.Context, bin string, fleet *fakebmc.Fleet, opts etcdproc.Options) ([]*clusterInstance, *etcdproc.Cluster, []string, func(), error) {
	var undo []func()
	cleanup := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		undo = nil
	}
	dir, err := etcdproc.TempDir("obmdbench-etcd-")
	if err != nil {
		return nil, nil, nil, cleanup, err
	}
	undo = append(undo, func() { os.RemoveAll(dir) })
	ec, err := etcdproc.Start(ctx, dir, opts)
	if err != nil {
		return nil, nil, nil, cleanup, err
	}
	undo = append(undo, ec.Close)
	ports, err := freeport.TCP(2)
	if err != nil {
		return nil, nil, nil, cleanup, err
	}
	adminToken, err := newAdminToken()
	if err != nil {
		return nil, nil, nil, cleanup, err
	}
	ins := make([]*clusterInstance, 2)
	for i := range ins {
		if ins[i], err = startClusterInstance(ctx, bin, adminToken, ec.Endpoints(), "/obmdbench/", ports[i]); err != nil {
			return nil, nil, nil, cleanup, err
		}
		ci := ins[i]
		undo = append(undo, func() { ci.Stop() })
	}
	tokens := make([]string, fleet.Len())
	err = forEach(fleet.Len(), 8, func(i int) error {
		if err := ins[i%2].RegisterIPMI(ctx, nodeID(i), fleet.Addr(i)); err != nil {
			return err
		}
		tok, err := ins[(i+1)%2].NewToken(ctx, nodeID(i))
		tokens[i] = tok
		return err
	})
	if err != nil {
		return nil, nil, nil, cleanup, err
	}
	err = waitUntil(ctx, 30*time.Second, "every node owned", func() bool {
		o0, m0, err0 := ins[0].clusterGauges(ctx)
		o1, m1, err1 := ins[1].clusterGauges(ctx)
		return err0 == nil && err1 == nil && m0 == 2 && m1 == 2 && o0+o1 == fleet.Len()
	})
	return ins, ec, tokens, cleanup, err
}

// callLoops calls power_status on every node through both instances until
// stop is closed.
func callLoops(ctx context.Context, ins []*clusterInstance, nodes int, tokens []string, stop chan struct{}, calls, failed *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range nodes {
		for _, ci := range ins {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
					_, err := ci.PowerStatus(cctx, nodeID(i), tokens[i])
					cancel()
					calls.Add(1)
					if err != nil {
						failed.Add(1)
					}
					time.Sleep(100 * time.Millisecond)
				}
			})
		}
	}
	return &wg
}

// owners reads each node's owner from one instance (GET /node/{id}).
func owners(ctx context.Context, ci *clusterInstance, nodes int) ([]string, error) {
	out := make([]string, nodes)
	for i := range nodes {
		var st struct {
			Owner *struct {
				Instance string `json:"instance"`
			} `json:"owner"`
		}
		if err := ci.call(ctx, http.MethodGet, "/node/"+nodeID(i), true, nil, &st); err != nil {
			return nil, err
		}
		if st.Owner == nil || st.Owner.Instance == "" {
			return nil, fmt.Errorf("%s has no owner", nodeID(i))
		}
		out[i] = st.Owner.Instance
	}
	return out, nil
}

func moved(before, after []string) int {
	n := 0
	for i := range before {
		if before[i] != after[i] {
			n++
		}
	}
	return n
}
