package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"obmd/cluster"
	"obmd/fakebmc"
	"obmd/internal/etcdproc"
	"obmd/internal/freeport"
)

// The cluster scenario (issue 13): three obmd processes on one etcd and a
// fleet of simulated BMCs, and what happens when one instance dies with no
// goodbye (SIGKILL) while it owns VictimNodes nodes, a power-call loop runs
// on each of them through the survivors, two viewers (one per survivor)
// watch each of their consoles, and admin writes go to all three: how soon
// power calls work again, how soon the consoles come back (with the gap
// marked), whether any acknowledged registration or token was lost; then
// how fast a token replaced on one instance ends its viewers on another;
// then, the dead instance started again, how the nodes move back and how
// many reconnects that costs each console.

// ClusterConfig sizes the scenario.
type ClusterConfig struct {
	Obmd string // obmd binary
	// VictimNodes is the number of nodes the killed instance owns (default
	// 50); each instance owns as many.
	VictimNodes int
}

// ClusterResult is one run.
type ClusterResult struct {
	Nodes, VictimNodes int
	// PowerBack is, per victim node, from the kill to the end of the first
	// power call made after it that succeeded (calls made meanwhile wait
	// in the forwarding instance for the new owner).
	PowerBackP50, PowerBackMax time.Duration
	FailedCalls                int // power calls that failed after the kill
	// ConsoleBack is, per viewer, from the kill to the gap marker.
	ConsoleBackP50, ConsoleBackMax time.Duration
	ViewersMarked, Viewers         int
	// Admin writes acknowledged around the kill, and those not found after.
	AckedRegistrations, AckedTokens, LostWrites int
	// Revocation is from a new token's request to one survivor to the end
	// of the old token's viewer on the other (an upper bound: the viewer
	// often ends before the request's answer arrives).
	RevocationP50, RevocationMax time.Duration
	// After the killed instance is back: the time until it owns its share
	// again, and the most reconnect markers any watched console showed.
	RebalanceTime        time.Duration
	RebalanceReconnects  int
	RebalanceConsolesCut int // consoles that ended instead of reconnecting
}

const clusterToken = "fedcba9876543210fedcba9876543210"

// clusterInstance is one obmd process of the scenario.
type clusterInstance struct {
	*Daemon
	url  string
	port int
	proc *child
}

func startClusterInstance(ctx context.Context, bin, adminToken string, endpoints []string, prefix string, port int) (*clusterInstance, error) {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := []string{"LISTEN_ADDR=" + addr, "ADVERTISE_URL=http://" + addr, "ADMIN_TOKEN=" + adminToken,
		"DB_TYPE=etcd", "ETCD_ENDPOINTS=" + strings.Join(endpoints, ","), "ETCD_PREFIX=" + prefix,
		"CLUSTER_TOKEN=" + clusterToken, "LOG_FORMAT=json"}
	c, _, err := startObmd(ctx, "obmd "+addr, bin, env)
	if err != nil {
		return nil, err
	}
	usage := func() (ProcUsage, error) { return ReadProcUsage(c.PID()) }
	return &clusterInstance{Daemon: newDaemon(addr, adminToken, usage, c.stop), url: "http://" + addr, port: port, proc: c}, nil
}

// kill ends the instance with SIGKILL and waits for it to exit.
func (ci *clusterInstance) kill() {
	_ = ci.proc.cmd.Process.Kill()
	<-ci.proc.exited
	ci.Client.CloseIdleConnections()
}

// ownedNodes reads obmd_cluster_owned_nodes and obmd_cluster_members.
func (ci *clusterInstance) clusterGauges(ctx context.Context) (owned, members int, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ci.URL+"/metrics", nil)
	req.SetBasicAuth("admin", ci.adminToken)
	rsp, err := ci.Client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer rsp.Body.Close()
	sc := bufio.NewScanner(rsp.Body)
	owned, members = -1, -1
	for sc.Scan() {
		fmt.Sscanf(sc.Text(), "obmd_cluster_owned_nodes %d", &owned)
		fmt.Sscanf(sc.Text(), "obmd_cluster_members %d", &members)
	}
	if owned < 0 || members < 0 {
		return 0, 0, errors.New("no cluster gauges in /metrics")
	}
	return owned, members, nil
}

// waitGauges waits until every instance sees members members and owns
// want[i] nodes.
func waitGauges(ctx context.Context, ins []*clusterInstance, members int, want []int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ok := true
		var last string
		for i, ci := range ins {
			o, m, err := ci.clusterGauges(ctx)
			if err != nil || o != want[i] || m != members {
				ok = false
				last = fmt.Sprintf("instance %d: owns %d (want %d), sees %d members (want %d), %v", i, o, want[i], m, members, err)
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ownership did not settle within %v: %s", limit, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// watcher reads one console stream: when the gap marker came, how many,
// and whether counter lines flow after it.
type watcher struct {
	node    int
	mu      sync.Mutex
	markers []time.Time
	after   int // counter lines since the last marker
	ended   time.Time
	done    chan struct{}
}

func watch(rc io.ReadCloser, node int) *watcher {
	w := &watcher{node: node, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer rc.Close()
		r := bufio.NewReader(rc)
		for {
			line, err := r.ReadString('\n')
			now := time.Now()
			w.mu.Lock()
			if err != nil {
				w.ended = now
				w.mu.Unlock()
				return
			}
			if strings.Contains(line, "[obmd: console reconnected after") {
				w.markers = append(w.markers, now)
				w.after = 0
			} else if _, err := strconv.Atoi(strings.TrimSpace(line)); err == nil {
				w.after++
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *watcher) state() (markers []time.Time, after int, ended time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.markers), w.after, w.ended
}

// ClusterFailover runs the scenario once.
func ClusterFailover(ctx context.Context, cfg ClusterConfig) (ClusterResult, error) {
	if cfg.VictimNodes <= 0 {
		cfg.VictimNodes = 50
	}
	per := cfg.VictimNodes
	total := 3 * per
	res := ClusterResult{Nodes: total, VictimNodes: per}

	dir, err := etcdproc.TempDir("obmdbench-etcd-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	ec, err := etcdproc.Start(ctx, dir, etcdproc.Options{})
	if err != nil {
		return res, err
	}
	defer ec.Close()
	fleet, err := startFleet(ctx, total, fakebmc.DefaultBaud)
	if err != nil {
		return res, err
	}
	defer fleet.Close()

	// Ports first: the members' URLs decide, by rendezvous hashing, which
	// node names each instance owns; names are picked so each owns per.
	ports, err := freeport.TCP(3)
	if err != nil {
		return res, err
	}
	urls := make([]string, 3)
	for i, p := range ports {
		urls[i] = "http://127.0.0.1:" + strconv.Itoa(p)
	}
	var names []string
	owner := map[string]int{}
	count := make([]int, 3)
	for k := 0; len(names) < total; k++ {
		id := "node" + strconv.Itoa(k)
		o := slices.Index(urls, cluster.OwnerOf(id, urls))
		if count[o] < per {
			count[o]++
			names = append(names, id)
			owner[id] = o
		}
	}
	adminToken, err := newAdminToken()
	if err != nil {
		return res, err
	}
	prefix := "/obmdbench/"
	ins := make([]*clusterInstance, 3)
	for i := range 3 {
		if ins[i], err = startClusterInstance(ctx, cfg.Obmd, adminToken, ec.Endpoints(), prefix, ports[i]); err != nil {
			return res, err
		}
		defer ins[i].Stop()
	}
	tokens := make([]string, total)
	err = forEach(total, 16, func(i int) error {
		d := ins[i%3]
		if err := d.RegisterIPMI(ctx, names[i], fleet.Addr(i)); err != nil {
			return err
		}
		tok, err := ins[(i+1)%3].NewToken(ctx, names[i])
		tokens[i] = tok
		return err
	})
	if err != nil {
		return res, err
	}
	if err := waitGauges(ctx, ins, 3, []int{per, per, per}, 30*time.Second); err != nil {
		return res, err
	}

	const victim = 0
	survivors := []*clusterInstance{ins[1], ins[2]}
	var theirs []int
	for i, id := range names {
		if owner[id] == victim {
			theirs = append(theirs, i)
		}
	}
	// Two viewers per victim node, one on each survivor.
	var watchers []*watcher
	for _, i := range theirs {
		for _, s := range survivors {
			rc, err := s.OpenConsole(ctx, names[i], tokens[i])
			if err != nil {
				return res, err
			}
			watchers = append(watchers, watch(rc, i))
		}
	}
	res.Viewers = len(watchers)
	if err := awaitReading(ctx, watchers, "every viewer reading"); err != nil {
		return res, err
	}

	// Admin writes through all three, recording what was acknowledged.
	var ackMu sync.Mutex
	acked := map[string]string{} // node -> last token acknowledged ("" registered only)
	unsure := map[string]bool{}
	stopWrites := make(chan struct{})
	var writers sync.WaitGroup
	for w, d := range ins {
		writers.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stopWrites:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, k)
				body := map[string]any{"type": "mock", "info": map[string]any{"addr": "x", "NumWrites": 0}}
				if err := d.call(ctx, http.MethodPut, "/node/"+id, true, body, nil); err != nil {
					if isConnError(err) {
						return // the victim died
					}
					continue
				}
				ackMu.Lock()
				acked[id] = ""
				ackMu.Unlock()
				tok, err := d.NewToken(ctx, id)
				ackMu.Lock()
				if err != nil {
					unsure[id] = true
				} else {
					acked[id] = tok
				}
				ackMu.Unlock()
				if err != nil && isConnError(err) {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}

	// The power-call loop on the victim's nodes, through the survivors.
	type call struct {
		start, end time.Time
		ok         bool
	}
	calls := make([][]call, total)
	var callMu sync.Mutex
	stopCalls := make(chan struct{})
	var callers sync.WaitGroup
	for k, i := range theirs {
		via := survivors[k%2]
		callers.Go(func() {
			for {
				select {
				case <-stopCalls:
					return
				default:
				}
				start := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				_, err := via.PowerStatus(cctx, names[i], tokens[i])
				cancel()
				callMu.Lock()
				calls[i] = append(calls[i], call{start, time.Now(), err == nil})
				callMu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	killedAt := time.Now()
	ins[victim].kill()

	allBack := func() bool {
		callMu.Lock()
		defer callMu.Unlock()
		for _, i := range theirs {
			cs := calls[i]
			if len(cs) == 0 || !cs[len(cs)-1].ok || !cs[len(cs)-1].start.After(killedAt) {
				return false
			}
		}
		for _, w := range watchers {
			if m, after, ended := w.state(); len(m) == 0 || after < 3 || !ended.IsZero() {
				return false
			}
		}
		return true
	}
	waitErr := waitUntil(ctx, 30*time.Second, "power calls and consoles back after the kill", allBack)
	close(stopCalls)
	callers.Wait()
	close(stopWrites)
	writers.Wait()

	var powerBack []float64
	for _, i := range theirs {
		for _, c := range calls[i] {
			if !c.start.After(killedAt) {
				continue
			}
			if !c.ok {
				res.FailedCalls++
				continue
			}
			powerBack = append(powerBack, c.end.Sub(killedAt).Seconds())
			break
		}
	}
	var consoleBack []float64
	for _, w := range watchers {
		if m, _, _ := w.state(); len(m) > 0 {
			res.ViewersMarked++
			consoleBack = append(consoleBack, m[0].Sub(killedAt).Seconds())
		}
	}
	res.PowerBackP50, res.PowerBackMax = secs(Median(powerBack)), secs(slices.Max(append(powerBack, 0)))
	res.ConsoleBackP50, res.ConsoleBackMax = secs(Median(consoleBack)), secs(slices.Max(append(consoleBack, 0)))
	if waitErr != nil {
		return res, fmt.Errorf("%w (%d of %d nodes' power back, %d of %d viewers marked)", waitErr, len(powerBack), len(theirs), res.ViewersMarked, res.Viewers)
	}

	// Nothing acknowledged lost: every registration is there, and every
	// node's last acknowledged token works (unless a later token request
	// got no answer: it may have replaced it).
	for id, tok := range acked {
		res.AckedRegistrations++
		if err := survivors[1].call(ctx, http.MethodGet, "/node/"+url.PathEscape(id), true, nil, nil); err != nil {
			res.LostWrites++
		}
		if tok == "" || unsure[id] {
			continue
		}
		res.AckedTokens++
		if _, err := survivors[0].PowerStatus(ctx, id, tok); err != nil {
			res.LostWrites++
		}
	}

	// The written nodes go, so that each instance's share is per again.
	var listed struct {
		Nodes []string `json:"nodes"`
	}
	if err := survivors[0].call(ctx, http.MethodGet, "/node", true, nil, &listed); err != nil {
		return res, err
	}
	var extra []string
	for _, id := range listed.Nodes {
		if _, ours := owner[id]; !ours {
			extra = append(extra, id)
		}
	}
	if err := forEach(len(extra), 16, func(k int) error {
		return survivors[k%2].call(ctx, http.MethodDelete, "/node/"+url.PathEscape(extra[k]), true, nil, nil)
	}); err != nil {
		return res, fmt.Errorf("deleting the nodes written during the kill: %w", err)
	}

	// Revocation across instances: a new token asked of survivor 0 ends
	// the old token's viewers, on survivor 0 itself and on survivor 1,
	// whose end is timed from the request. watchers[2k] and [2k+1] watch theirs[k] on survivors 0, 1.
	var revocations []float64
	newTokens := map[int]string{}
	for k, i := range theirs[:min(len(theirs), 20)] {
		asked := time.Now()
		tok, err := survivors[0].NewToken(ctx, names[i])
		if err != nil {
			return res, err
		}
		newTokens[i] = tok
		for _, w := range watchers[2*k : 2*k+2] {
			select {
			case <-w.done:
			case <-time.After(5 * time.Second):
				return res, fmt.Errorf("a viewer of %s outlived its token by 5 s", names[i])
			}
		}
		_, _, ended := watchers[2*k+1].state()
		revocations = append(revocations, ended.Sub(asked).Seconds())
	}
	res.RevocationP50, res.RevocationMax = secs(Median(revocations)), secs(slices.Max(append(revocations, 0)))

	// The victim comes back: its nodes move back to it, one reconnect per
	// console at most.
	var rewatch []*watcher
	for _, i := range theirs {
		tok, ok := newTokens[i]
		if !ok {
			tok = tokens[i]
		}
		for _, s := range survivors {
			rc, err := s.OpenConsole(ctx, names[i], tok)
			if err != nil {
				return res, err
			}
			rewatch = append(rewatch, watch(rc, i))
		}
	}
	if err := awaitReading(ctx, rewatch, "every new viewer reading"); err != nil {
		return res, err
	}
	back := time.Now()
	if ins[victim], err = startClusterInstance(ctx, cfg.Obmd, adminToken, ec.Endpoints(), prefix, ports[victim]); err != nil {
		return res, err
	}
	if err := waitGauges(ctx, ins, 3, []int{per, per, per}, 30*time.Second); err != nil {
		return res, fmt.Errorf("after the killed instance came back: %w", err)
	}
	res.RebalanceTime = time.Since(back)
	// Let the consoles settle, then count.
	if err := waitUntil(ctx, 30*time.Second, "consoles flowing after the rebalance", func() bool {
		for _, w := range rewatch {
			if _, after, ended := w.state(); after < 3 || !ended.IsZero() {
				return !ended.IsZero() // an ended console is counted below
			}
		}
		return true
	}); err != nil {
		return res, err
	}
	for _, w := range rewatch {
		m, _, ended := w.state()
		res.RebalanceReconnects = max(res.RebalanceReconnects, len(m))
		if !ended.IsZero() {
			res.RebalanceConsolesCut++
		}
	}
	return res, nil
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// waitUntil polls cond every 20 ms: the processes under test give no event
// to wait on.
func waitUntil(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// isConnError: the request did not reach a live obmd.
func isConnError(err error) bool {
	var api *apiError
	return err != nil && !errors.As(err, &api)
}

// awaitReading waits until every watcher has read console output.
func awaitReading(ctx context.Context, watchers []*watcher, what string) error {
	return waitUntil(ctx, 30*time.Second, what, func() bool {
		for _, w := range watchers {
			if _, after, _ := w.state(); after == 0 {
				return false
			}
		}
		return true
	})
}
