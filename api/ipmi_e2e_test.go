package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"obmd/fakebmc"
	"obmd/internal/peertest"
	"obmd/ipmi"
	"obmd/manager"
	"obmd/store"
)

// End-to-end tests of "ipmi" nodes through the REST API: the router, a
// Manager with the built-in drivers on an in-memory store, and real UDP
// to fakebmc (cipher suite 17) and to OpenIPMI's ipmi_sim (a BMC nobody on
// this project wrote). Machine state is read from the simulators, never
// through obmd.

const (
	e2eAdmin     = "fedcba9876543210fedcba9876543210"
	e2eUser      = "admin"
	e2ePass      = "pw-e2e-Vq93"
	e2eOpTimeout = 3 * time.Second
)

type ipmiE2E struct {
	t   *testing.T
	srv *httptest.Server

	connMu sync.Mutex
	conns  map[net.Conn]struct{} // every connection the server accepted, upgraded ones too
}

// dropConnections cuts every client connection, WebSockets included, as
// a network failure would: no close frame, no answer.
func (e *ipmiE2E) dropConnections() {
	e.connMu.Lock()
	defer e.connMu.Unlock()
	for c := range e.conns {
		c.Close()
	}
	clear(e.conns)
}

// newIPMIE2E serves the API for a Manager with BuiltinDrivers (the ipmi
// driver as the daemon gets it) and a console hub that closes the console
// as soon as its last viewer leaves.
func newIPMIE2E(t *testing.T) *ipmiE2E {
	t.Helper()
	return newIPMIE2EWith(t, manager.BuiltinDrivers())
}

// newIPMIE2EWith is newIPMIE2E with the given drivers (a tuned ipmi
// driver, say).
func newIPMIE2EWith(t *testing.T, drivers *manager.Registry) *ipmiE2E {
	t.Helper()
	st, err := store.Open(store.InMemory, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(manager.Config{
		Store:     st,
		Drivers:   drivers,
		OpTimeout: e2eOpTimeout,
		Console:   manager.HubConfig{Linger: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &ipmiE2E{t: t, conns: map[net.Conn]struct{}{}}
	srv := httptest.NewUnstartedServer(New(m, Options{AdminToken: e2eAdmin}))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		e.connMu.Lock()
		e.conns[c] = struct{}{}
		e.connMu.Unlock()
		return ctx
	}
	srv.Start()
	e.srv = srv
	t.Cleanup(func() {
		m.EndConsoles()
		srv.Close()
		m.Close(context.Background())
		st.Close()
	})
	return e
}

// call sends a request (admin credentials when admin) and returns the
// status and body.
func (e *ipmiE2E) call(method, path, body string, admin bool) (int, string) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if admin {
		req.SetBasicAuth("admin", e2eAdmin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (e *ipmiE2E) must(method, path, body string, admin bool, want int) string {
	e.t.Helper()
	got, b := e.call(method, path, body, admin)
	if got != want {
		e.t.Fatalf("%s %s: %d %s; want %d", method, strings.Split(path, "?")[0], got, b, want)
	}
	return b
}

// register adds an ipmi node and returns a token for it.
func (e *ipmiE2E) register(id string, info map[string]any) string {
	e.t.Helper()
	body, err := json.Marshal(map[string]any{"type": "ipmi", "info": info})
	if err != nil {
		e.t.Fatal(err)
	}
	e.must("PUT", "/node/"+id, string(body), true, 200)
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(e.must("POST", "/node/"+id+"/token", "", true, 200)), &tok); err != nil {
		e.t.Fatal(err)
	}
	return tok.Token
}

// node is a token holder's view of one node.
type e2eNode struct {
	e       *ipmiE2E
	id, tok string
}

func (n e2eNode) path(route string) string { return "/node/" + n.id + "/" + route + "?token=" + n.tok }

func (n e2eNode) post(route, body string) {
	n.e.t.Helper()
	n.e.must("POST", n.path(route), body, false, 200)
}

func (n e2eNode) bootDevice(dev string) (int, string) {
	n.e.t.Helper()
	return n.e.call("PUT", n.path("boot_device"), fmt.Sprintf(`{"bootdev": %q}`, dev), false)
}

func (n e2eNode) powerStatus() string {
	n.e.t.Helper()
	var rsp struct {
		PowerStatus string `json:"power_status"`
	}
	if err := json.Unmarshal([]byte(n.e.must("GET", n.path("power_status"), "", false, 200)), &rsp); err != nil {
		n.e.t.Fatal(err)
	}
	return rsp.PowerStatus
}

// console opens GET /node/{id}/console; it returns once the response
// headers arrived, that is once the SOL console is up, and a function
// that leaves (cancels the request and closes the body).
func (n e2eNode) console(ctx context.Context) (*bufio.Reader, func()) {
	n.e.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, "GET", n.e.srv.URL+n.path("console"), nil)
	if err != nil {
		n.e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.e.t.Fatalf("GET console: %v", err)
	}
	leave := func() {
		cancel()
		resp.Body.Close()
	}
	n.e.t.Cleanup(leave)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		n.e.t.Fatalf("GET console: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		n.e.t.Errorf("console Content-Type %q, want application/octet-stream", ct)
	}
	return bufio.NewReader(resp.Body), leave
}

func startE2EFakeBMC(t *testing.T, count int, mutate ...func(*fakebmc.BMCConfig)) *fakebmc.Fleet {
	t.Helper()
	cfg := fakebmc.BMCConfig{
		Users:  []fakebmc.User{{Name: e2eUser, Password: []byte(e2ePass)}},
		Timing: fakebmc.PowerTiming{CycleOff: 20 * time.Millisecond, SoftShutdown: 20 * time.Millisecond},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr:  "127.0.0.1:0",
		Count: count,
		BMC:   cfg,
	})
	if err != nil {
		t.Fatalf("StartFleet: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func within(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestIPMINodeOnFakeBMC: the whole HIL flow for an ipmi node on fakebmc
// with cipher suite 17.
func TestIPMINodeOnFakeBMC(t *testing.T) {
	t.Parallel()
	e := newIPMIE2E(t)
	f := startE2EFakeBMC(t, 1)
	b, sim := f.BMC(0), f.BMC(0).Sim()
	n := e2eNode{e: e, id: "fake0"}
	n.tok = e.register(n.id, map[string]any{"addr": f.Addr(0), "user": e2eUser, "pass": e2ePass, "cipher_suite": 17})
	boots := func() int { return len(sim.Boots()) }
	state := func(want string) {
		t.Helper()
		if err := sim.WaitPower(within(t, 5*time.Second), want == "on"); err != nil {
			t.Fatal(err)
		}
		if got := n.powerStatus(); got != want {
			t.Fatalf("power_status %q, machine %s", got, want)
		}
	}

	state("off")
	n.post("power_on", "")
	if !b.PowerOn() {
		t.Fatal("machine off after power_on")
	}
	state("on")
	n.post("power_on", "") // idempotent
	state("on")
	n.post("power_off", "")
	if b.PowerOn() {
		t.Fatal("machine on after power_off")
	}
	state("off")
	n.post("power_off", "")
	state("off")

	before := boots()
	n.post("power_cycle", `{"force": true}`) // off: powered on
	state("on")
	n.post("power_cycle", `{"force": true}`) // on: hard reset
	state("on")
	n.post("power_cycle", `{"force": false}`) // on: soft off, then on
	state("on")
	if got := boots() - before; got != 3 {
		t.Errorf("%d boots from three power cycles, want 3", got)
	}

	for _, tc := range []struct {
		name string
		want ipmi.BootDevice
	}{{"pxe", ipmi.BootDevicePXE}, {"disk", ipmi.BootDeviceDisk}, {"none", ipmi.BootDeviceNone}} {
		if st, body := n.bootDevice(tc.name); st != 200 {
			t.Fatalf("boot_device %s: %d %s", tc.name, st, body)
		}
		if fl := b.BootFlags(); fl.Device != tc.want || !fl.Valid || !fl.Persistent {
			t.Fatalf("boot_device %s: BMC holds %+v", tc.name, fl)
		}
	}
	if st, body := n.bootDevice("floppy"); st != 400 || !strings.Contains(body, "unknown boot device") {
		t.Errorf("boot_device floppy: %d %s; want 400 naming the unknown device", st, body)
	}

	// Console: counter lines, in order, streamed as they come.
	r, leave := n.console(within(t, 20*time.Second))
	if !b.SOLActive() {
		t.Fatal("SOL not active while the console is streaming")
	}
	readCounter(t, r, 30)
	leave()
	// The console closes with its last viewer: SOL ends.
	if err := b.WaitSOL(within(t, 10*time.Second), false); err != nil {
		t.Fatalf("SOL still active after the viewer left: %v", err)
	}

	e.must("DELETE", "/node/"+n.id, "", true, 200)
	e.must("GET", n.path("power_status"), "", false, 401)
}

// readCounter reads n whole counter lines ("17\n") and checks they count
// up by one. The viewer joined before the console opened, and fakebmc
// starts a console at a line boundary, so the first line is whole too.
func readCounter(t *testing.T, r *bufio.Reader, n int) {
	t.Helper()
	last := -1
	for i := range n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("console stream after %d lines: %v", i, err)
		}
		v, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
		if err != nil {
			t.Fatalf("console line %q is not a counter value", line)
		}
		if last >= 0 && v != last+1 {
			t.Fatalf("console line %d follows %d", v, last)
		}
		last = v
	}
}

// TestIPMINodeOnIPMISim: the same through a real third-party BMC. ipmi_sim
// has no suite 17, so the driver negotiates (suite 3); power and boot
// state are the chassis program's; console bytes the host writes to its
// serial port reach the HTTP stream.
func TestIPMINodeOnIPMISim(t *testing.T) {
	t.Parallel()
	sim := peertest.StartIPMISim(t, peertest.IPMISimOptions{Password: e2ePass, SOL: true})
	host := sim.SOLHost(t)
	e := newIPMIE2E(t)
	n := e2eNode{e: e, id: "sim"}
	n.tok = e.register(n.id, map[string]any{"addr": sim.Addr, "user": sim.Username, "pass": sim.Password})

	called := func(since int, want string) {
		t.Helper()
		calls := sim.ChassisCalls(t)[since:]
		for _, c := range calls {
			if c == want {
				return
			}
		}
		t.Fatalf("chassis program calls %q lack %q", calls, want)
	}

	if got := n.powerStatus(); got != "off" || sim.Power(t) {
		t.Fatalf("power_status %q at start, chassis power %v", got, sim.Power(t))
	}
	n.post("power_on", "")
	if !sim.Power(t) {
		t.Fatal("chassis off after power_on")
	}
	if got := n.powerStatus(); got != "on" {
		t.Fatalf("power_status %q after power_on", got)
	}
	n.post("power_off", "")
	if sim.Power(t) {
		t.Fatal("chassis on after power_off")
	}
	if got := n.powerStatus(); got != "off" {
		t.Fatalf("power_status %q after power_off", got)
	}

	n.post("power_cycle", `{"force": true}`) // off: powered on
	if !sim.Power(t) {
		t.Fatal("chassis off after a forced cycle of an off node")
	}
	k := len(sim.ChassisCalls(t))
	n.post("power_cycle", `{"force": true}`)
	called(k, "set reset 1")
	k = len(sim.ChassisCalls(t))
	n.post("power_cycle", `{"force": false}`)
	called(k, "set shutdown 1")
	called(k, "set power 1")
	if !sim.Power(t) {
		t.Fatal("chassis off after a soft power cycle")
	}

	for _, tc := range []struct{ dev, state string }{{"pxe", "pxe"}, {"disk", "default"}, {"none", "none"}} {
		if st, body := n.bootDevice(tc.dev); st != 200 {
			t.Fatalf("boot_device %s: %d %s", tc.dev, st, body)
		}
		if got := sim.BootDevice(t); got != tc.state {
			t.Errorf("boot_device %s: chassis program holds %q, want %q", tc.dev, got, tc.state)
		}
	}

	// Console: what the host prints on its serial port reaches the viewer.
	r, _ := n.console(within(t, 20*time.Second))
	const banner = "obmd e2e: hello from the host"
	if _, err := io.WriteString(host, banner+"\r\n"); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	for !strings.Contains(seen.String(), banner) {
		line, err := r.ReadString('\n')
		seen.WriteString(line)
		if err != nil {
			t.Fatalf("console stream ended (%v) before the host's bytes arrived; got %q", err, seen.String())
		}
	}
}

// TestIPMIBadInfo: invalid ipmi info is a 400 that says what is wrong,
// never echoes the password, and stores nothing.
func TestIPMIBadInfo(t *testing.T) {
	t.Parallel()
	e := newIPMIE2E(t)
	tests := []struct {
		name, info, want string
	}{
		{"missing pass", `{"addr":"127.0.0.1","user":"u"}`, "pass is missing"},
		{"missing addr", `{"user":"u","pass":"` + e2ePass + `"}`, "addr is missing"},
		{"bad addr", `{"addr":"10.0.0.4:99999","user":"u","pass":"` + e2ePass + `"}`, "port"},
		{"unsupported cipher suite", `{"addr":"h","user":"u","pass":"` + e2ePass + `","cipher_suite":0}`, "cipher_suite 0 is not supported"},
		{"unknown privilege", `{"addr":"h","user":"u","pass":"` + e2ePass + `","privilege":"root"}`, `privilege "root"`},
		{"kg not hex", `{"addr":"h","user":"u","pass":"` + e2ePass + `","kg":"xyz"}`, "kg is not a hex string"},
		{"unknown quirk", `{"addr":"h","user":"u","pass":"` + e2ePass + `","quirks":["fastmode"]}`, `"fastmode"`},
		{"quirk obmd does not implement", `{"addr":"h","user":"u","pass":"` + e2ePass + `","quirks":["sun20"]}`, `"sun20"`},
		{"unknown field", `{"addr":"h","user":"u","pass":"` + e2ePass + `","password":"x"}`, "password"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("bad%d", i)
			st, body := e.call("PUT", "/node/"+id, `{"type":"ipmi","info":`+tc.info+`}`, true)
			if st != 400 {
				t.Fatalf("status %d %s; want 400", st, body)
			}
			var eb struct{ Error string }
			if err := json.Unmarshal([]byte(body), &eb); err != nil || !strings.Contains(eb.Error, tc.want) {
				t.Errorf("error body %s; want an \"error\" containing %q", body, tc.want)
			}
			if strings.Contains(body, e2ePass) {
				t.Errorf("error body echoes the password: %s", body)
			}
			e.must("DELETE", "/node/"+id, "", true, 404) // nothing was stored
		})
	}
}

// TestIPMIBlackHoledNodeIsolated: a node whose BMC never answers gets 504
// within the operation timeout, while a healthy node's power_status keeps
// its normal latency meanwhile.
func TestIPMIBlackHoledNodeIsolated(t *testing.T) {
	t.Parallel()
	e := newIPMIE2E(t)
	f := startE2EFakeBMC(t, 1)

	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hole.Close() })
	firstDatagram := make(chan struct{})
	go func() {
		buf := make([]byte, 1500)
		var once sync.Once
		for {
			if _, _, err := hole.ReadFrom(buf); err != nil {
				return
			}
			once.Do(func() { close(firstDatagram) })
		}
	}()

	healthy := e2eNode{e: e, id: "healthy"}
	healthy.tok = e.register(healthy.id, map[string]any{"addr": f.Addr(0), "user": e2eUser, "pass": e2ePass, "cipher_suite": 17})
	dead := e2eNode{e: e, id: "dead"}
	dead.tok = e.register(dead.id, map[string]any{"addr": hole.LocalAddr().String(), "user": e2eUser, "pass": e2ePass, "cipher_suite": 17})

	timed := func() time.Duration {
		start := time.Now()
		if got := healthy.powerStatus(); got != "off" {
			t.Fatalf("healthy power_status %q", got)
		}
		return time.Since(start)
	}
	timed() // opens the warm session
	var baseline time.Duration
	for range 5 {
		baseline = max(baseline, timed())
	}

	deadAnswer := dead.async("GET", "power_status")
	select {
	case <-firstDatagram: // the dead node's request is on the wire
	case <-within(t, 5*time.Second).Done():
		t.Fatal("the black-holed node's request never reached its address")
	}

	limit := max(20*baseline, 250*time.Millisecond)
	for i := range 5 {
		if d := timed(); d > limit {
			t.Errorf("healthy power_status %d took %v while the other node hangs (baseline %v)", i, d, baseline)
		}
	}
	select {
	case a := <-deadAnswer:
		t.Fatalf("the black-holed node answered %d %s before the healthy node's requests ended", a.status, a.body)
	default:
	}

	checkBlackHoleAnswer(t, <-deadAnswer)
}

// A token holder learns what failed and whether retrying helps, never the
// BMC's address, port, IPMI user name or the resolver obmd uses (issue 9,
// defect 5).
func TestTenantErrorsHideManagementDetails(t *testing.T) {
	t.Parallel()
	f := startE2EFakeBMC(t, 1)
	e := newIPMIE2E(t)
	host, port, _ := net.SplitHostPort(f.Addr(0))
	cases := []struct {
		name   string
		info   map[string]any
		status int
		says   string
	}{
		{"wrong password", map[string]any{"addr": f.Addr(0), "user": "opsuser", "pass": "not-the-password", "cipher_suite": 17},
			http.StatusBadGateway, "rejected obmd's credentials"},
		{"unknown user", map[string]any{"addr": f.Addr(0), "user": "opsuser2", "pass": e2ePass, "cipher_suite": 17},
			http.StatusBadGateway, "rejected obmd's credentials"},
		{"unresolvable host", map[string]any{"addr": "bmc-17.no-such-domain.invalid:" + port, "user": "opsuser3", "pass": e2ePass, "cipher_suite": 17},
			0, "power status"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := e2eNode{e: e, id: strings.ReplaceAll(tc.name, " ", "-")}
			n.tok = e.register(n.id, tc.info)
			st, body := e.call("GET", n.path("power_status"), "", false)
			if (tc.status != 0 && st != tc.status) || st < 500 || !strings.Contains(body, tc.says) {
				t.Fatalf("power_status: %d %s; want %d saying %q", st, body, tc.status, tc.says)
			}
			for _, secret := range []string{host, port, tc.info["user"].(string), "no-such-domain", e2ePass, "lookup"} {
				if strings.Contains(body, secret) {
					t.Errorf("tenant's error %s reveals %q", body, secret)
				}
			}
		})
	}
}

// The admin's view of an ipmi node shows its registration without the
// password (IPMIInfo's LogValue, tested in manager, leaves out Kg too).
func TestIPMINodeStatusHidesSecrets(t *testing.T) {
	t.Parallel()
	f := startE2EFakeBMC(t, 1)
	e := newIPMIE2E(t)
	n := e2eNode{e: e, id: "st"}
	n.tok = e.register(n.id, map[string]any{"addr": f.Addr(0), "user": e2eUser, "pass": e2ePass, "cipher_suite": 17})
	if got := n.powerStatus(); got == "" {
		t.Fatal("no power status")
	}
	body := e.must("GET", "/node/st", "", true, 200)
	if strings.Contains(body, e2ePass) {
		t.Errorf("node status %s shows the password", body)
	}
	var st manager.NodeStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info.(map[string]any)
	if st.Type != "ipmi" || info["addr"] != f.Addr(0) || info["user"] != e2eUser || info["kg_set"] != false || !st.HasToken {
		t.Errorf("node status = %s", body)
	}
}

// A node pinned to a suite without confidentiality (the explicit opt-in)
// still gets its console: SOL then asks the BMC for neither encryption nor
// authentication it cannot give (sol.Open follows the session's suite).
func TestIPMIConsoleOnSuiteWithoutEncryption(t *testing.T) {
	t.Parallel()
	f := startE2EFakeBMC(t, 1)
	e := newIPMIE2E(t)
	n := e2eNode{e: e, id: "s2", tok: e.register("s2", map[string]any{
		"addr": f.Addr(0), "user": e2eUser, "pass": e2ePass, "cipher_suite": 2,
	})}
	r, stop := n.console(within(t, 20*time.Second))
	defer stop()
	readCounter(t, r, 50)
}
