package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// cuttableProxy relays TCP to one etcd endpoint until cut: then every
// relayed connection is closed and new ones are refused, as a network
// partition between one instance and etcd would.
type cuttableProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func startCuttableProxy(t *testing.T, endpoint string) *cuttableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{ln: ln, target: strings.TrimPrefix(endpoint, "http://"), conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setCut(true)
	})
	return p
}

func (p *cuttableProxy) endpoint() string { return "http://" + p.ln.Addr().String() }

func (p *cuttableProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.relay(c)
	}
}

func (p *cuttableProxy) relay(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// setCut cuts (true) or heals (false) the link.
func (p *cuttableProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// TestPartitionedOwnerStopsDriving: an instance cut off from etcd alone
// loses its lease; the survivor takes its nodes and tells it, so it stops
// driving their BMCs at once instead of when etcd answers again (two
// owners of one BMC otherwise). A notice etcd contradicts, or for another
// lease, changes nothing; and when the link heals the instance joins
// again and the two agree on every node.
func TestPartitionedOwnerStopsDriving(t *testing.T) {
	t.Parallel()
	eps, prefix := sharedEtcd(t), testPrefix(t)
	proxy := startCuttableProxy(t, eps[0])
	a := startInstance(t, []string{proxy.endpoint()}, prefix)
	b := startInstance(t, eps, prefix)
	// Both see both before any node exists, so no node is handed over
	// while the test picks a's (as startMembers does).
	eventually(t, 10*time.Second, "each instance seeing 2 members", func() bool {
		return len(a.c.own.memberNames()) == 2 && len(b.c.own.memberNames()) == 2
	})
	const n = 16
	nodes := make([]string, n)
	var ofA []string
	for i := range nodes {
		nodes[i] = fmt.Sprintf("p%d", i)
		b.expect("PUT", "/node/"+nodes[i], mockNode, true, 200)
		if OwnerOf(nodes[i], []string{a.url, b.url}) == a.url {
			ofA = append(ofA, nodes[i])
		}
	}
	if len(ofA) == 0 {
		t.Fatalf("rendezvous hashing gave %s none of %d nodes", a.url, n)
	}
	for _, node := range nodes {
		agreeOnOwner(t, node, a, b)
	}
	for _, node := range ofA {
		eventually(t, 10*time.Second, "a driving "+node, func() bool { return a.c.own.localDriver(node) != nil })
	}

	// Notices a's etcd contradicts, or for a lease not its own, are ignored.
	lease := a.c.member.current()
	for _, body := range []leaseGoneBody{
		{Member: a.url, Lease: leaseHex(lease)},      // etcd says it lives
		{Member: a.url, Lease: leaseHex(lease + 1)},  // not its lease
		{Member: b.url, Lease: leaseHex(lease)},      // not its name
		{Member: a.url, Lease: "not a lease number"}, // nonsense
	} {
		if fenced := sendLeaseGone(t, a, body); fenced {
			t.Fatalf("notice %+v fenced a", body)
		}
	}
	if a.c.own.localDriver(ofA[0]) == nil {
		t.Fatalf("a stopped driving %s after notices it should have ignored", ofA[0])
	}

	proxy.setCut(true)
	cutAt := time.Now()
	for _, node := range ofA {
		eventually(t, 3*LeaseTTL, "b taking "+node+" after a's lease expired", func() bool {
			return b.c.own.localDriver(node) != nil
		})
	}
	tookAt := time.Now()
	for _, node := range ofA {
		eventually(t, 2*time.Second, "a stopping driving "+node+" once b took it", func() bool {
			return a.c.own.localDriver(node) == nil
		})
	}
	t.Logf("cut at 0; b drove a's %d nodes after %v; a stopped within %v of that",
		len(ofA), tookAt.Sub(cutAt).Round(time.Millisecond), time.Since(tookAt).Round(time.Millisecond))

	proxy.setCut(false)
	for _, node := range nodes {
		agreeOnOwner(t, node, a, b)
	}
	eventually(t, 10*time.Second, "a owning nodes again after joining again", func() bool {
		return a.c.own.ownedCount() > 0
	})
}

func sendLeaseGone(t *testing.T, to *instance, body leaseGoneBody) bool {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", to.url+peerPathPrefix+leaseGonePath, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+testCluster)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans leaseGoneAnswer
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&ans) != nil {
		t.Fatalf("lease_gone notice: HTTP %d", resp.StatusCode)
	}
	return ans.Fenced
}

// TestFenceEtcdContradictsIsUndone: a lease dropped on a peer's word while
// etcd did not answer, which etcd then says lives (a slow etcd, and a
// member key deleted by hand), is taken back with the nodes it holds:
// nothing else would, since its keepalive never broke.
func TestFenceEtcdContradictsIsUndone(t *testing.T) {
	t.Parallel()
	eps, prefix := sharedEtcd(t), testPrefix(t)
	a := startInstance(t, eps, prefix)
	a.expect("PUT", "/node/f", mockNode, true, 200)
	eventually(t, 10*time.Second, "a driving f", func() bool { return a.c.own.localDriver("f") != nil })

	lease := a.c.member.current()
	if !a.c.own.fence(lease) {
		t.Fatal("fence refused a's own lease")
	}
	if a.c.own.localDriver("f") != nil {
		t.Fatal("a still drives f after its lease was dropped")
	}
	go a.c.reverify(a.c.member, lease)
	eventually(t, 5*time.Second, "a driving f again once etcd says its lease lives", func() bool {
		return a.c.own.localDriver("f") != nil
	})
}
