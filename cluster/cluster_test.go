package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"obmd/ipmi"
	"obmd/manager"
)

// agreeOnOwner waits until every instance names the same owner of node,
// the one that says it is itself, and returns it.
func agreeOnOwner(t *testing.T, node string, ins ...*instance) *instance {
	t.Helper()
	var owner *instance
	eventually(t, 10*time.Second, "the instances agreeing on "+node+"'s owner", func() bool {
		owner = nil
		var url string
		for i, in := range ins {
			o := in.owner(node)
			if o.Instance == "" || (i > 0 && o.Instance != url) {
				return false
			}
			url = o.Instance
			if o.Self != (o.Instance == in.url) {
				return false
			}
			if o.Self {
				owner = in
			}
		}
		return owner != nil
	})
	return owner
}

// waitOwner waits until every instance names want as node's owner.
func waitOwner(t *testing.T, node string, want *instance, ins ...*instance) {
	t.Helper()
	eventually(t, 10*time.Second, node+" owned by "+want.url, func() bool {
		for _, in := range ins {
			if o := in.owner(node); o.Instance != want.url || o.Self != (in == want) {
				return false
			}
		}
		return true
	})
}

// TestAnyInstanceServesAnyNode: nodes registered through one instance are
// served by all, each owned by the member rendezvous hashing picks, with
// calls forwarded to it.
func TestAnyInstanceServesAnyNode(t *testing.T) {
	t.Parallel()
	eps, prefix := sharedEtcd(t), testPrefix(t)
	ins := startMembers(t, eps, prefix, 3)
	members := []string{ins[0].url, ins[1].url, ins[2].url}
	for i := range 6 {
		node := fmt.Sprintf("n%d", i)
		// Registered through one instance, tokened through the next:
		// the second finds the node although its watch may lag.
		ins[i%3].expect("PUT", "/node/"+node, mockNode, true, 200)
		ins[(i+1)%3].expect("PUT", "/node/"+node, mockNode, true, 409)
		tok := ins[(i+1)%3].token(node)
		for _, in := range ins {
			if b := in.expect("GET", "/node/"+node+"/power_status?token="+tok, "", false, 200); string(b) != `{"power_status":"Mock Status"}` {
				t.Fatalf("%s power_status: %s", in.url, b)
			}
			in.expect("PUT", "/node/"+node+"/boot_device?token="+tok, `{"bootdev": "pxe"}`, false, 400)
			in.expect("POST", "/node/"+node+"/power_cycle?token="+tok, `{"force": true}`, false, 200)
		}
		owner := agreeOnOwner(t, node, ins...)
		if want := OwnerOf(node, members); owner.url != want {
			t.Errorf("%s owned by %s, rendezvous hashing says %s", node, owner.url, want)
		}
	}
	// Metrics show the members and the owned nodes (6 in all).
	owned := 0
	for _, in := range ins {
		b := string(in.expect("GET", "/metrics", "", true, 200))
		if !strings.Contains(b, "obmd_cluster_members 3\n") || !strings.Contains(b, fmt.Sprintf("obmd_cluster_member{instance=%q,self=\"true\"} 1", in.url)) {
			t.Errorf("%s /metrics lacks the members:\n%s", in.url, b)
		}
		var n int
		for line := range strings.Lines(b) {
			fmt.Sscanf(line, "obmd_cluster_owned_nodes %d", &n)
		}
		owned += n
	}
	if owned != 6 {
		t.Errorf("instances own %d nodes in all, want 6", owned)
	}
}

// TestRevocationIsClusterWide: a token replaced through one instance ends
// that token's viewers on the others (the contract: within 200 ms; the
// test allows for a loaded machine and logs what it saw).
func TestRevocationIsClusterWide(t *testing.T) {
	t.Parallel()
	eps, prefix := sharedEtcd(t), testPrefix(t)
	ins := startMembers(t, eps, prefix, 3)
	a, b, c := ins[0], ins[1], ins[2]
	a.expect("PUT", "/node/n", mockNode, true, 200)
	tok := a.token("n")
	agreeOnOwner(t, "n", a, b, c)
	ended := make(chan time.Time, 2)
	for _, in := range []*instance{b, c} {
		resp := in.console("n", tok)
		r := bufio.NewReader(resp.Body)
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatalf("%s console: %v", in.url, err)
		}
		go func() {
			io.Copy(io.Discard, r)
			ended <- time.Now()
		}()
	}
	start := time.Now()
	a.token("n")
	for range 2 {
		select {
		case at := <-ended:
			lag := at.Sub(start)
			t.Logf("viewer ended %v after the new token was issued", lag)
			if lag > time.Second {
				t.Errorf("viewer ended %v after the new token, want well under 1 s (contract: 200 ms)", lag)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a viewer on another instance outlived its token by 5 s")
		}
	}
	c.expect("GET", "/node/n/power_status?token="+tok, "", false, 401)
}

// TestConsoleFanOutAcrossInstances: viewers on every instance share the
// owner's one console stream.
func TestConsoleFanOutAcrossInstances(t *testing.T) {
	t.Parallel()
	owner, other := ownerAndOther(t)
	tok := other.token("n")
	for _, in := range []*instance{other, owner} {
		r := bufio.NewReader(in.console("n", tok).Body)
		var last = -1
		for range 50 {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			var v int
			if _, err := fmt.Sscanf(line, "%d\n", &v); err != nil || (last >= 0 && v != last+1) {
				t.Fatalf("%s console line %q after %d", in.url, line, last)
			}
			last = v
		}
	}
	// One stream on the owner's hub serves both: the owner's console has
	// two viewers (its own and the other instance's stream).
	var st, ost manager.NodeStatus
	json.Unmarshal(owner.expect("GET", "/node/n", "", true, 200), &st)
	json.Unmarshal(other.expect("GET", "/node/n", "", true, 200), &ost)
	if st.Console.Viewers != 2 || st.Console.Reconnects != 0 || ost.Console.Reconnects != 0 || ost.Console.State != "open" {
		t.Errorf("owner's console: %+v, want 2 viewers (its own, the other instance's stream); the other's: %+v, want open, no reconnect",
			st.Console, ost.Console)
	}
}

// TestHandoverWhenAMemberJoins: a member that joins takes its share of the
// nodes; a console watched elsewhere reconnects once, with the gap marked.
func TestHandoverWhenAMemberJoins(t *testing.T) {
	t.Parallel()
	eps, prefix := sharedEtcd(t), testPrefix(t)
	a := startInstance(t, eps, prefix)
	const n = 8
	toks := make([]string, n)
	for i := range n {
		node := fmt.Sprintf("n%d", i)
		a.expect("PUT", "/node/"+node, mockNode, true, 200)
		toks[i] = a.token(node)
	}
	type view struct {
		r     *bufio.Reader
		lines chan string
	}
	views := make([]view, n)
	for i := range n {
		r := bufio.NewReader(a.console(fmt.Sprintf("n%d", i), toks[i]).Body)
		views[i] = view{r: r, lines: make(chan string, 1<<16)}
		go func() {
			defer close(views[i].lines)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				views[i].lines <- line
			}
		}()
	}
	b := startInstance(t, eps, prefix)
	members := []string{a.url, b.url}
	moved := 0
	for i := range n {
		node := fmt.Sprintf("n%d", i)
		if OwnerOf(node, members) == b.url {
			moved++
			waitOwner(t, node, b, a, b)
		}
	}
	if moved == 0 {
		t.Fatal("rendezvous hashing gave the new member none of 8 nodes; pick other names")
	}
	// Every console keeps flowing; those that moved show exactly one gap.
	for i := range n {
		node := fmt.Sprintf("n%d", i)
		wantGaps := 0
		if OwnerOf(node, members) == b.url {
			wantGaps = 1
		}
		gaps, after := 0, 0
		deadline := time.After(10 * time.Second)
	read:
		for {
			select {
			case line, ok := <-views[i].lines:
				if !ok {
					t.Fatalf("%s console ended", node)
				}
				if strings.Contains(line, "[obmd: console reconnected") {
					gaps++
					continue
				}
				if gaps == wantGaps {
					after++
					if after > 20 {
						break read
					}
				}
			case <-deadline:
				t.Fatalf("%s: console did not go on with %d gap(s) within 10 s (saw %d)", node, wantGaps, gaps)
			}
		}
		// Drain what is buffered: no second gap.
		for len(views[i].lines) > 0 {
			if strings.Contains(<-views[i].lines, "reconnected") {
				gaps++
			}
		}
		if gaps != wantGaps {
			t.Errorf("%s: %d reconnects, want %d", node, gaps, wantGaps)
		}
	}
}

// TestPeerRoutesNeedTheClusterToken: the instance-to-instance routes
// refuse a missing or wrong token, and a right one for a node the
// instance does not own gets "not the owner".
func TestPeerRoutesNeedTheClusterToken(t *testing.T) {
	t.Parallel()
	owner, other := ownerAndOther(t)
	call := func(in *instance, auth string) (int, peerError) {
		req, _ := http.NewRequest("POST", in.url+peerPathPrefix+"/node/n/power_on", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var pe peerError
		json.NewDecoder(resp.Body).Decode(&pe)
		return resp.StatusCode, pe
	}
	for _, auth := range []string{"", "Bearer " + testAdmin, "Basic " + testCluster, testCluster, "Bearer " + testCluster + "0"} {
		if code, _ := call(owner, auth); code != 401 {
			t.Errorf("Authorization %q: %d, want 401", auth, code)
		}
	}
	if code, pe := call(owner, "Bearer "+testCluster); code != 200 {
		t.Errorf("owner with the cluster token: %d %+v", code, pe)
	}
	if code, pe := call(other, "Bearer "+testCluster); code != 421 || pe.Kind != kindNotOwner {
		t.Errorf("non-owner with the cluster token: %d %+v, want 421 not_owner", code, pe)
	}
}

// TestPeerErrorsKeepTheirMeaning: an error crosses between instances with
// its kind, its admin detail and the very message a tenant would read on
// the owner.
func TestPeerErrorsKeepTheirMeaning(t *testing.T) {
	t.Parallel()
	cases := []error{
		manager.BMCError("power on", &ipmi.CompletionError{Code: 0xC1}),
		manager.TimeoutError("power status: the BMC did not answer within 10s", nil),
		manager.Invalidf("unknown boot device %q", "floppy"),
		manager.CredentialsError("opening a session: RAKP 2 rejected user admin at 10.0.0.4", errors.New("unauthorized name")),
		&manager.Error{Kind: manager.ErrInternal, Reason: "storing", Err: errors.New("disk")},
		errNotOwner,
	}
	for _, orig := range cases {
		if me, ok := orig.(*manager.Error); ok && me.Op == "" {
			me.Op = "power on"
		}
		var buf bytes.Buffer
		json.NewEncoder(&buf).Encode(encodePeerError(orig))
		var pe peerError
		if err := json.Unmarshal(buf.Bytes(), &pe); err != nil {
			t.Fatal(err)
		}
		got := pe.decode()
		for _, k := range kindNames {
			if errors.Is(orig, k.kind) != errors.Is(got, k.kind) {
				t.Errorf("%v: kind %s lost or gained across the wire: %v", orig, k.name, got)
			}
		}
		if errors.Is(orig, errNotOwner) {
			if !errors.Is(got, errNotOwner) {
				t.Errorf("not-owner became %v", got)
			}
			continue
		}
		if manager.TenantMessage(got) != manager.TenantMessage(orig) {
			t.Errorf("tenant message %q became %q", manager.TenantMessage(orig), manager.TenantMessage(got))
		}
		if got.Error() != orig.Error() {
			t.Errorf("admin detail %q became %q", orig.Error(), got.Error())
		}
	}
}
