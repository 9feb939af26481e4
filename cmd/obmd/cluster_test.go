package main

// Cluster tests: three obmd processes (DB_TYPE=etcd) against a real etcd
// started here (the Debian etcd-server package's binary) and a fakebmc
// fleet, all on loopback. Light versions of the failure scenarios; the
// heavy ones (50 nodes) are in make bench.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"obmd/cluster"
	"obmd/fakebmc"
	"obmd/internal/etcdproc"
	"obmd/internal/freeport"
	"obmd/manager"
)

const clusterToken = "fedcba9876543210fedcba9876543210"

func freePort(t *testing.T) int {
	t.Helper()
	ports, err := freeport.TCP(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// clusterEnv is instance port's configuration in the cluster of etcd ec
// under prefix.
func clusterEnv(ec *etcdproc.Cluster, prefix string, port int) map[string]string {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return map[string]string{
		"LISTEN_ADDR": addr, "ADVERTISE_URL": "http://" + addr, "ADMIN_TOKEN": goodToken,
		"DB_TYPE": "etcd", "ETCD_ENDPOINTS": strings.Join(ec.Endpoints(), ","), "ETCD_PREFIX": prefix,
		"CLUSTER_TOKEN": clusterToken,
	}
}

// startInstances starts n obmd processes in one cluster and waits until
// each sees all n members.
func startInstances(t *testing.T, ec *etcdproc.Cluster, n int) []*daemon {
	t.Helper()
	prefix := "/obmd-" + t.Name() + "/"
	ds := make([]*daemon, n)
	var wg sync.WaitGroup
	for i := range n {
		port := freePort(t)
		wg.Go(func() { ds[i] = startDaemon(t, clusterEnv(ec, prefix, port)) })
	}
	wg.Wait()
	for _, d := range ds {
		if d == nil {
			t.FailNow() // startDaemon reported why
		}
	}
	for _, d := range ds {
		waitFor(t, 10*time.Second, d.url+" seeing every member", func() bool {
			_, b := d.do("GET", "/metrics", "", true)
			return strings.Contains(string(b), "obmd_cluster_members "+strconv.Itoa(n)+"\n")
		})
	}
	return ds
}

// waitFor polls cond every 20 ms until it holds or limit passes: for
// state other processes reach with no event to wait on.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ownerOf asks d which instance owns node.
func (d *daemon) ownerOf(node string) manager.OwnerStatus {
	d.t.Helper()
	var st manager.NodeStatus
	if err := json.Unmarshal(d.expect("GET", "/node/"+node, "", true, 200), &st); err != nil {
		d.t.Fatal(err)
	}
	if st.Owner == nil {
		d.t.Fatalf("GET /node/%s on %s names no owner", node, d.url)
	}
	return *st.Owner
}

// settledOwner waits until every instance names one owner for node, which
// says it is itself, and returns that instance's index.
func settledOwner(t *testing.T, ds []*daemon, node string) int {
	t.Helper()
	owner := -1
	waitFor(t, 10*time.Second, node+"'s owner settling", func() bool {
		owner = -1
		url := ""
		for i, d := range ds {
			o := d.ownerOf(node)
			if o.Instance == "" || (url != "" && o.Instance != url) || o.Self != (o.Instance == d.url) {
				return false
			}
			url = o.Instance
			if o.Self {
				owner = i
			}
		}
		return owner >= 0
	})
	return owner
}

func startFleet(t *testing.T, n int, pass string) *fakebmc.Fleet {
	t.Helper()
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr:  "127.0.0.1:0",
		Count: n,
		BMC: fakebmc.BMCConfig{
			Users:  []fakebmc.User{{Name: "admin", Password: []byte(pass)}},
			Timing: fakebmc.PowerTiming{CycleOff: 20 * time.Millisecond, SoftShutdown: 20 * time.Millisecond},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func ipmiNode(f *fakebmc.Fleet, i int, pass string) string {
	return fmt.Sprintf(`{"type": "ipmi", "info": {"addr": %q, "user": "admin", "pass": %q, "cipher_suite": 17}}`, f.Addr(i), pass)
}

// consoleLines reads a console stream line by line into a channel, closed
// when the stream ends.
func consoleLines(t *testing.T, d *daemon, node, tok string) <-chan string {
	t.Helper()
	resp, err := http.Get(d.url + "/node/" + node + "/console?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		t.Fatalf("console of %s on %s: %d", node, d.url, resp.StatusCode)
	}
	t.Cleanup(func() { resp.Body.Close() })
	lines := make(chan string, 1<<16)
	go func() {
		defer close(lines)
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- line
		}
	}()
	return lines
}

// TestClusterHILFlowIPMI: HIL's flow through each of three instances for
// ipmi nodes on fakebmc, whichever instance owns them. The BMC's state is
// read from the simulated machine, never through obmd.
func TestClusterHILFlowIPMI(t *testing.T) {
	t.Parallel()
	ec := etcdproc.ForTest(t, etcdproc.Options{})
	const pass = "cluster-Pw-7c1"
	f := startFleet(t, 3, pass)
	ds := startInstances(t, ec, 3)
	for i, d := range ds {
		node := fmt.Sprintf("n%d", i)
		// Registered on instance i, 409 on the next at once (its watch
		// may not have said so yet: it asks etcd), tokens from the third.
		d.expect("PUT", "/node/"+node, ipmiNode(f, i, pass), true, 200)
		ds[(i+1)%3].expect("PUT", "/node/"+node, ipmiNode(f, i, pass), true, 409)
		tok := ds[(i+2)%3].token(node)
		q := "?token=" + tok
		bmc := f.BMC(i)
		for j, via := range ds {
			via.expect("POST", "/node/"+node+"/power_off"+q, "", false, 200)
			if bmc.PowerOn() {
				t.Errorf("%s via instance %d: machine on after power_off", node, j)
			}
			via.expect("POST", "/node/"+node+"/power_on"+q, "", false, 200)
			if b := via.expect("GET", "/node/"+node+"/power_status"+q, "", false, 200); string(b) != `{"power_status":"on"}` {
				t.Errorf("%s via instance %d: power_status %s", node, j, b)
			}
			via.expect("PUT", "/node/"+node+"/boot_device"+q, `{"bootdev": "pxe"}`, false, 200)
			via.expect("PUT", "/node/"+node+"/boot_device"+q, `{"bootdev": "floppy"}`, false, 400)
			via.expect("POST", "/node/"+node+"/power_cycle"+q, `{"force": true}`, false, 200)
		}
		owner := settledOwner(t, ds, node)
		// The console through a non-owner: the owner's one SOL session.
		viewer := ds[(owner+1)%3]
		lines := consoleLines(t, viewer, node, tok)
		last := -1
		for range 20 {
			line := <-lines
			v, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
			if err != nil || (last >= 0 && v != last+1) {
				t.Fatalf("%s console on a non-owner: line %q after %d", node, line, last)
			}
			last = v
		}
		if !bmc.SOLActive() {
			t.Fatalf("%s: SOL not active while a viewer watches through another instance", node)
		}
		// Deleted through the third instance: the viewer's stream ends
		// and the owner deactivates SOL.
		ds[(owner+2)%3].expect("DELETE", "/node/"+node, "", true, 200)
		for range lines {
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := bmc.WaitSOL(ctx, false); err != nil {
			t.Errorf("%s: SOL still active after the node was deleted: %v", node, err)
		}
		cancel()
		for _, via := range ds {
			via.expect("GET", "/node/"+node+"/power_status"+q, "", false, 401)
		}
	}
	for _, d := range ds {
		if strings.Contains(d.logs.String(), pass) || strings.Contains(d.logs.String(), clusterToken) {
			t.Errorf("%s logged the BMC password or the cluster token", d.url)
		}
	}
}

// TestClusterFailover: the owner of several nodes is killed (SIGKILL, no
// goodbye) during a power-call loop and with viewers on the other two
// instances; power calls work again within 5 s, consoles reopen within
// 10 s with the gap marked, and every acknowledged registration and token
// is still there. The test's bounds leave room for a loaded machine; the
// figures are logged (make bench measures them over 50 nodes).
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	ec := etcdproc.ForTest(t, etcdproc.Options{})
	const pass = "failover-Pw-19"
	const nodes = 9
	f := startFleet(t, nodes, pass)
	ds := startInstances(t, ec, 3)
	toks := make([]string, nodes)
	owners := make([]int, nodes)
	for i := range nodes {
		node := fmt.Sprintf("n%d", i)
		ds[i%3].expect("PUT", "/node/"+node, ipmiNode(f, i, pass), true, 200)
		toks[i] = ds[(i+1)%3].token(node)
	}
	count := make([]int, 3)
	for i := range nodes {
		owners[i] = settledOwner(t, ds, fmt.Sprintf("n%d", i))
		count[owners[i]]++
	}
	victim := 0
	for i := range 3 {
		if count[i] > count[victim] {
			victim = i
		}
	}
	var theirs []int
	for i := range nodes {
		if owners[i] == victim {
			theirs = append(theirs, i)
		}
	}
	survivors := []*daemon{ds[(victim+1)%3], ds[(victim+2)%3]}
	t.Logf("killing instance %d, owner of %d of %d nodes", victim, len(theirs), nodes)

	// Viewers of the victim's nodes on both survivors, read up to a line.
	type view struct {
		node  int
		lines <-chan string
	}
	var views []view
	for _, i := range theirs {
		for _, s := range survivors {
			v := view{i, consoleLines(t, s, fmt.Sprintf("n%d", i), toks[i])}
			<-v.lines
			views = append(views, v)
		}
	}

	// Admin writes through every instance, the victim included, recording
	// what was acknowledged.
	var ackMu sync.Mutex
	acked := map[string]bool{}        // registrations answered 200
	lastTok := map[string]string{}    // node -> last token answered 200
	unsure := map[string]bool{}       // a token request that got no answer
	stopWrites := make(chan struct{}) //
	var writers sync.WaitGroup
	for w, d := range ds {
		writers.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for k := 0; ; k++ {
				select {
				case <-stopWrites:
					return
				default:
				}
				node := fmt.Sprintf("w%d-%d", w, k)
				req, _ := http.NewRequest("PUT", d.url+"/node/"+node, strings.NewReader(mockNode))
				req.SetBasicAuth("admin", goodToken)
				resp, err := client.Do(req)
				if err != nil {
					return // the victim died
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					continue
				}
				ackMu.Lock()
				acked[node] = true
				ackMu.Unlock()
				req, _ = http.NewRequest("POST", d.url+"/node/"+node+"/token", nil)
				req.SetBasicAuth("admin", goodToken)
				resp, err = client.Do(req)
				if err != nil {
					ackMu.Lock()
					unsure[node] = true
					ackMu.Unlock()
					return
				}
				var tr struct {
					Token string `json:"token"`
				}
				json.NewDecoder(resp.Body).Decode(&tr)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ackMu.Lock()
					lastTok[node] = tr.Token
					ackMu.Unlock()
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}

	// The power-call loop on the victim's nodes, through a survivor.
	type result struct {
		start, end time.Time
		ok         bool
	}
	stopCalls := make(chan struct{})
	results := make([][]result, nodes)
	var resultsMu sync.Mutex // the callers append while the test reads
	var callers sync.WaitGroup
	for k, i := range theirs {
		via := survivors[k%2]
		callers.Go(func() {
			client := &http.Client{Timeout: 15 * time.Second}
			for {
				select {
				case <-stopCalls:
					return
				default:
				}
				start := time.Now()
				resp, err := client.Get(fmt.Sprintf("%s/node/n%d/power_status?token=%s", via.url, i, toks[i]))
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					resp.Body.Close()
				}
				resultsMu.Lock()
				results[i] = append(results[i], result{start, time.Now(), ok})
				resultsMu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}

	time.Sleep(300 * time.Millisecond) // let the loops and the writers run against the intact cluster
	killedAt := time.Now()
	if err := ds[victim].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-ds[victim].exited

	// Consoles: each view shows the gap marker, then counter lines again.
	for _, v := range views {
		deadline := time.After(20 * time.Second)
		marked, after := false, 0
		for after < 5 {
			select {
			case line, ok := <-v.lines:
				if !ok {
					t.Fatalf("n%d: a viewer on a survivor was disconnected", v.node)
				}
				if strings.Contains(line, "[obmd: console reconnected after") {
					if !marked {
						t.Logf("n%d: console back %v after the kill: %s", v.node, time.Since(killedAt).Round(time.Millisecond), strings.TrimSpace(line))
					}
					marked = true
				} else if marked {
					if _, err := strconv.Atoi(strings.TrimSpace(line)); err == nil {
						after++
					}
				}
			case <-deadline:
				t.Fatalf("n%d: console not back within 20 s of the kill (contract: 10 s; marker seen: %t)", v.node, marked)
			}
		}
		if d := time.Since(killedAt); d > 15*time.Second {
			t.Errorf("n%d: console back %v after the kill, want within 10 s (15 s allowed for a loaded machine)", v.node, d)
		}
	}
	// Power calls: when the first call made after the kill succeeded,
	// for each node (a call waits in the forwarding instance for the new
	// owner, within its deadline).
	waitFor(t, 15*time.Second, "power calls working again on every node", func() bool {
		resultsMu.Lock()
		defer resultsMu.Unlock()
		for _, i := range theirs {
			rs := results[i]
			if len(rs) == 0 || !rs[len(rs)-1].ok || !rs[len(rs)-1].start.After(killedAt) {
				return false
			}
		}
		return true
	})
	close(stopCalls)
	callers.Wait()
	for _, i := range theirs {
		var back time.Duration
		failed := 0
		for _, r := range results[i] {
			if !r.start.After(killedAt) {
				continue
			}
			if !r.ok {
				failed++
				continue
			}
			back = r.end.Sub(killedAt)
			break
		}
		t.Logf("n%d: power calls back %v after the kill (%d failed meanwhile)", i, back.Round(time.Millisecond), failed)
		if back > 8*time.Second {
			t.Errorf("n%d: power calls back %v after the kill, want within 5 s (8 s allowed for a loaded machine)", i, back)
		}
	}
	close(stopWrites)
	writers.Wait()

	// Nothing acknowledged was lost.
	ackMu.Lock()
	defer ackMu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no registration was acknowledged during the test")
	}
	for node := range acked {
		survivors[0].expect("GET", "/node/"+node, "", true, 200)
	}
	for node, tok := range lastTok {
		if unsure[node] {
			continue // a later token request got no answer: either may hold
		}
		survivors[1].expect("GET", "/node/"+node+"/power_status?token="+tok, "", false, 200)
	}
	t.Logf("%d registrations and %d tokens acknowledged, all found after the kill", len(acked), len(lastTok))
}

// TestClusterEtcdDown: with etcd gone, the instances keep serving the
// nodes they own (power and console) and forwarding to each other, refuse
// admin writes with 503 and a clear error, and recover when etcd is back.
func TestClusterEtcdDown(t *testing.T) {
	t.Parallel()
	ec := etcdproc.ForTest(t, etcdproc.Options{})
	const pass = "etcd-down-Pw-3"
	f := startFleet(t, 2, pass)
	ds := startInstances(t, ec, 2)
	ds[0].expect("PUT", "/node/n0", ipmiNode(f, 0, pass), true, 200)
	ds[0].expect("PUT", "/node/n1", ipmiNode(f, 1, pass), true, 200)
	tok0, tok1 := ds[1].token("n0"), ds[1].token("n1")
	owner0 := settledOwner(t, ds, "n0")
	settledOwner(t, ds, "n1")
	lines := consoleLines(t, ds[owner0], "n0", tok0)
	<-lines

	ec.Members[0].Kill()
	start := time.Now()
	code, body := ds[0].do("PUT", "/node/n2", mockNode, true)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"error"`) || !strings.Contains(string(body), "etcd") {
		t.Fatalf("registration with etcd down: %d %s, want 503 with a JSON error naming etcd", code, body)
	}
	t.Logf("registration refused after %v: %s", time.Since(start).Round(time.Millisecond), body)
	if code, body := ds[1].do("POST", "/node/n0/token", "", true); code != http.StatusServiceUnavailable {
		t.Fatalf("token with etcd down: %d %s, want 503", code, body)
	}
	// Past the lease TTL, nothing has moved: every instance serves both
	// nodes, its own and (forwarded) the other's.
	for round := 0; time.Since(start) < 5*time.Second; round++ {
		for _, d := range ds {
			d.expect("GET", "/node/n0/power_status?token="+tok0, "", false, 200)
			d.expect("POST", "/node/n1/power_on?token="+tok1, "", false, 200)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The console went on throughout.
	for len(lines) > 0 {
		if line := <-lines; strings.Contains(line, "obmd:") {
			t.Errorf("console of an owned node interrupted while etcd was down: %q", line)
		}
	}
	select {
	case _, ok := <-lines:
		if !ok {
			t.Fatal("console stream ended while etcd was down")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("console silent while etcd was down")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ec.Members[0].Restart(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitFor(t, 15*time.Second, "registrations working again", func() bool {
		code, _ := ds[0].do("PUT", "/node/n2", mockNode, true)
		return code == 200
	})
	t.Logf("admin writes back %v after etcd", time.Since(back).Round(time.Millisecond))
	// Each instance reconnects on its own (gRPC's backoff): the second
	// too, before a token made on the first is checked there.
	waitFor(t, 15*time.Second, "the second instance writing again", func() bool {
		code, _ := ds[1].do("PUT", "/node/n3", mockNode, true)
		return code == 200
	})
	// The watches resumed: a token made on one instance works on the other.
	tok2 := ds[0].token("n2")
	ds[1].expect("GET", "/node/n2/power_status?token="+tok2, "", false, 200)
	for _, d := range ds {
		d.expect("GET", "/node/n0/power_status?token="+tok0, "", false, 200)
	}
}

// TestClusterEtcdMemberLoss: a 3-member etcd cluster losing its leader
// keeps serving: admin writes go on (after a new election), power calls
// never stop, and no node changes owner.
func TestClusterEtcdMemberLoss(t *testing.T) {
	t.Parallel()
	ec := etcdproc.ForTest(t, etcdproc.Options{Members: 3, Heartbeat: 50 * time.Millisecond, Election: 500 * time.Millisecond})
	ds := startInstances(t, ec, 2)
	ds[0].expect("PUT", "/node/n", mockNode, true, 200)
	tok := ds[1].token("n")
	owner := settledOwner(t, ds, "n")
	ownerURL := ds[owner].url

	leader, err := ec.Leader()
	if err != nil {
		t.Fatal(err)
	}
	ec.Members[leader].Kill()
	killed := time.Now()
	waitFor(t, 10*time.Second, "a registration after the etcd leader died", func() bool {
		code, _ := ds[1].do("PUT", "/node/m", mockNode, true)
		return code == 200 || code == 409
	})
	t.Logf("admin writes work %v after the etcd leader died", time.Since(killed).Round(time.Millisecond))
	// Past a lease TTL: no lease expired with the leader.
	for time.Since(killed) < cluster.LeaseTTL+time.Second {
		for _, d := range ds {
			d.expect("GET", "/node/n/power_status?token="+tok, "", false, 200)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tok2 := ds[0].token("m")
	ds[1].expect("GET", "/node/m/power_status?token="+tok2, "", false, 200)
	for _, d := range ds {
		if o := d.ownerOf("n"); o.Instance != ownerURL {
			t.Errorf("node moved from %s to %s when an etcd member died", ownerURL, o.Instance)
		}
	}
}

// TestClusterTLS: instances serving HTTPS call each other over HTTPS,
// verifying each other's certificate against CLUSTER_CA.
func TestClusterTLS(t *testing.T) {
	t.Parallel()
	ec := etcdproc.ForTest(t, etcdproc.Options{})
	dir := t.TempDir()
	certPEM, keyPEM := selfSignedCert(t)
	certFile, keyFile := dir+"/cert.pem", dir+"/key.pem"
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	prefix := "/obmd-" + t.Name() + "/"
	ds := make([]*daemon, 2)
	for i := range ds {
		env := clusterEnv(ec, prefix, freePort(t))
		env["ADVERTISE_URL"] = strings.Replace(env["ADVERTISE_URL"], "http://", "https://", 1)
		env["TLS_CERT"], env["TLS_KEY"], env["CLUSTER_CA"] = certFile, keyFile, certFile
		ds[i] = startDaemon(t, env)
		ds[i].client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	ds[0].expect("PUT", "/node/n", mockNode, true, 200)
	tok := ds[1].token("n")
	owner := settledOwner(t, ds, "n")
	other := ds[1-owner]
	if b := other.expect("GET", "/node/n/power_status?token="+tok, "", false, 200); string(b) != `{"power_status":"Mock Status"}` {
		t.Fatalf("power_status through the non-owner over TLS: %s", b)
	}
	resp, err := other.client.Get(other.url + "/node/n/console?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for i := range 10 {
		if !sc.Scan() || sc.Text() != strconv.Itoa(i) {
			t.Fatalf("console line %d through the non-owner over TLS: %q (%v)", i, sc.Text(), sc.Err())
		}
	}
}

// TestClusterConsoleInput: a tenant typing on the WebSocket console of an
// instance that does not own the node reaches the machine through the
// owner's one SOL session: the bytes arrive at the BMC's host in order, a
// break arrives, and every viewer on both instances sees the echo.
func TestClusterConsoleInput(t *testing.T) {
	t.Parallel()
	ec := etcdproc.ForTest(t, etcdproc.Options{})
	const pass = "input-Pw-5"
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr: "127.0.0.1:0",
		BMC: fakebmc.BMCConfig{
			Users:   []fakebmc.User{{Name: "admin", Password: []byte(pass)}},
			Console: fakebmc.ConsoleEcho,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	bmc := f.BMC(0)
	ds := startInstances(t, ec, 2)
	ds[0].expect("PUT", "/node/n", ipmiNode(f, 0, pass), true, 200)
	tok := ds[0].token("n")
	owner := settledOwner(t, ds, "n")
	other := ds[1-owner]

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(other.url, "http")+"/node/n/console?token="+tok, nil)
	if err != nil {
		t.Fatalf("WebSocket console on the non-owner: %v", err)
	}
	defer ws.CloseNow()
	echoed := make(chan string, 64)
	go func() {
		var got strings.Builder
		for {
			typ, msg, err := ws.Read(ctx)
			if err != nil {
				close(echoed)
				return
			}
			if typ == websocket.MessageBinary {
				got.Write(msg)
				echoed <- got.String()
			}
		}
	}()
	// A plain byte-stream viewer on the owner (the echo ends in \r, not a
	// line).
	resp, err := http.Get(ds[owner].url + "/node/n/console?token=" + tok)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("console on the owner: %v", err)
	}
	defer resp.Body.Close()
	ownerView := make(chan string, 64)
	go func() {
		defer close(ownerView)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				ownerView <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()

	const typed = "hello through another instance\r"
	for _, part := range []string{"hello ", "through ", "another instance\r"} {
		if err := ws.Write(ctx, websocket.MessageBinary, []byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if err := bmc.WaitHostInput(ctx, int64(len(typed))); err != nil {
		t.Fatalf("typed bytes did not reach the BMC's host: %v (got %q)", err, bmc.HostInput())
	}
	if got := string(bmc.HostInput()); got != typed {
		t.Fatalf("host input %q, want %q", got, typed)
	}
	for s := range echoed {
		if strings.Contains(s, typed) {
			break
		}
	}
	// The viewer on the owner sees the echo too (one SOL session).
	var seen strings.Builder
	for !strings.Contains(seen.String(), "another instance") {
		select {
		case chunk, ok := <-ownerView:
			if !ok {
				t.Fatal("the owner's viewer was disconnected")
			}
			seen.WriteString(chunk)
		case <-ctx.Done():
			t.Fatalf("the owner's viewer never saw the echo; it saw %q", seen.String())
		}
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"break"}`)); err != nil {
		t.Fatal(err)
	}
	if err := bmc.WaitBreaks(ctx, 1); err != nil {
		t.Fatalf("the break did not reach the BMC: %v", err)
	}
}
