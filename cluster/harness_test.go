package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"obmd/api"
	"obmd/internal/buildinfo"
	"obmd/internal/etcdproc"
	"obmd/manager"
	"obmd/metrics"
)

// The package's tests run instances in this process (each a Cluster, a
// Manager and the API on its own loopback listener) against a real etcd
// started here, one for the whole package unless a test must kill it.
// Each test uses its own key prefix.

const (
	testAdmin   = "0123456789abcdef0123456789abcdef"
	testCluster = "fedcba9876543210fedcba9876543210"
)

var shared struct {
	once sync.Once
	etcd *etcdproc.Cluster
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.etcd != nil {
		shared.etcd.Close()
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// sharedEtcd is the package's etcd; the test skips if etcd is not
// installed.
func sharedEtcd(t *testing.T) []string {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = etcdproc.TempDir("obmd-cluster-test-")
		if shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shared.etcd, shared.err = etcdproc.Start(ctx, shared.dir, etcdproc.Options{})
	})
	if shared.err == etcdproc.ErrNotInstalled {
		t.Skip(shared.err.Error())
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.etcd.Endpoints()
}

var prefixSeq atomic.Int64

func testPrefix(t *testing.T) string {
	return fmt.Sprintf("/obmd-test/%s-%d/", t.Name(), prefixSeq.Add(1))
}

// instance is one obmd instance of a test cluster, in this process.
type instance struct {
	t      *testing.T
	c      *Cluster
	m      *manager.Manager
	srv    *http.Server
	url    string
	client *http.Client
	once   sync.Once
}

func startInstance(t *testing.T, endpoints []string, prefix string) *instance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{t: t, url: "http://" + ln.Addr().String(), client: &http.Client{Timeout: 20 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in.c, err = Open(ctx, Config{Endpoints: endpoints, Prefix: prefix, Token: testCluster, AdvertiseURL: in.url})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	reg, err := in.c.Drivers(manager.BuiltinDrivers())
	if err != nil {
		t.Fatal(err)
	}
	in.m, err = manager.New(manager.Config{Store: in.c.Store(), Refresh: in.c.Store().Refresh, Drivers: reg,
		OpTimeout: 10 * time.Second, Console: manager.HubConfig{Linger: -1}})
	if err != nil {
		t.Fatal(err)
	}
	mt := metrics.New(buildinfo.Get())
	mt.CollectManager(in.m)
	mt.Registry().MustRegister(in.c.Collector())
	h := api.New(in.m, api.Options{AdminToken: testAdmin, Metrics: mt})
	in.c.Routes(h, RouteHooks{Authenticated: api.MarkAuthenticated, Refused: api.RefuseUnauthenticated})
	in.srv = &http.Server{Handler: h}
	in.srv.RegisterOnShutdown(in.m.EndConsoles)
	go in.srv.Serve(ln)
	if err := in.c.Start(in.m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.stop)
	return in
}

// startMembers starts n instances and waits until each sees all n as
// members, so that no node registered next is first taken by an instance
// that has not yet seen the others and then handed over (which a test
// picking the node's owner would race).
func startMembers(t *testing.T, endpoints []string, prefix string, n int) []*instance {
	t.Helper()
	ins := make([]*instance, n)
	for i := range ins {
		ins[i] = startInstance(t, endpoints, prefix)
	}
	eventually(t, 10*time.Second, fmt.Sprintf("every instance seeing %d members", n), func() bool {
		for _, in := range ins {
			if len(in.c.own.memberNames()) != n {
				return false
			}
		}
		return true
	})
	return ins
}

// ownerAndOther starts two members, registers mock node "n" through the
// first, and returns the one the two agree owns it and the other.
func ownerAndOther(t *testing.T) (owner, other *instance) {
	t.Helper()
	ins := startMembers(t, sharedEtcd(t), testPrefix(t), 2)
	ins[0].expect("PUT", "/node/n", mockNode, true, 200)
	owner = agreeOnOwner(t, "n", ins...)
	other = ins[0]
	if other == owner {
		other = ins[1]
	}
	return owner, other
}

// stop shuts the instance down as obmd does on SIGTERM.
func (in *instance) stop() {
	in.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		in.srv.Shutdown(ctx)
		in.c.Leaving()
		in.m.Close(ctx)
		in.c.Close(ctx)
	})
}

func (in *instance) do(method, path, body string, admin bool) (int, []byte) {
	in.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, in.url+path, rd)
	if err != nil {
		in.t.Fatal(err)
	}
	if admin {
		req.SetBasicAuth("admin", testAdmin)
	}
	resp, err := in.client.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (in *instance) expect(method, path, body string, admin bool, want int) []byte {
	in.t.Helper()
	got, b := in.do(method, path, body, admin)
	if got != want {
		in.t.Fatalf("%s %s%s: %d %s, want %d", in.url, method, path, got, b, want)
	}
	return b
}

func (in *instance) token(node string) string {
	in.t.Helper()
	var tr struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(in.expect("POST", "/node/"+node+"/token", "", true, 200), &tr); err != nil {
		in.t.Fatal(err)
	}
	return tr.Token
}

func (in *instance) owner(node string) manager.OwnerStatus {
	in.t.Helper()
	var st manager.NodeStatus
	if err := json.Unmarshal(in.expect("GET", "/node/"+node, "", true, 200), &st); err != nil {
		in.t.Fatal(err)
	}
	if st.Owner == nil {
		in.t.Fatalf("%s: GET /node/%s has no owner", in.url, node)
	}
	return *st.Owner
}

// console opens a console stream through the instance.
func (in *instance) console(node, tok string) *http.Response {
	in.t.Helper()
	resp, err := http.Get(in.url + "/node/" + node + "/console?token=" + tok)
	if err != nil {
		in.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		in.t.Fatalf("%s console of %s: %d %s", in.url, node, resp.StatusCode, b)
	}
	in.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// eventually polls cond every 20 ms until it holds or limit passes: for
// state other processes (etcd, the instances' watches) reach with no event
// the test can wait on.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const mockNode = `{"type": "mock", "info": {"addr": "10.0.0.4", "NumWrites": 0}}`
