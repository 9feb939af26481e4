package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"obmd/internal/buildinfo"
	"obmd/internal/syncbuf"
	"obmd/ipmi"
	"obmd/manager"
	"obmd/metrics"
	"obmd/store"
)

const adminToken = "0123456789abcdef0123456789abcdef"

// scriptedInfo configures the "scripted" test driver: {"mode": "..."}.
type scriptedInfo struct {
	Mode string `json:"mode"`
}

func (i scriptedInfo) LogValue() slog.Value { return slog.StringValue(i.Mode) }
func (i scriptedInfo) String() string       { return i.Mode }

// scriptedDriver fails every power call as its mode says: "bmc-error"
// (the BMC refuses), "hang" (the BMC never answers), "unavailable" (a
// cluster's owner of the node cannot be reached) or "ok".
type scriptedDriver struct{ mode string }

func (d scriptedDriver) call(ctx context.Context, op string) error {
	switch d.mode {
	case "bmc-error":
		return manager.BMCError(op+" (BMC 10.9.8.7:623, user \"ipmiadmin\")", &ipmi.CompletionError{NetFn: ipmi.NetFnChassis, Cmd: ipmi.CmdChassisControl, Code: 0xD5})
	case "hang":
		<-ctx.Done()
		return ctx.Err()
	case "unavailable":
		return manager.TenantError(manager.ErrUnavailable, op+": the owner at http://10.1.1.1:8080 did not answer", nil,
			"the obmd instance that drives this node is changing; retrying in a few seconds will help")
	}
	return nil
}
func (d scriptedDriver) PowerOn(ctx context.Context) error  { return d.call(ctx, "power on") }
func (d scriptedDriver) PowerOff(ctx context.Context) error { return d.call(ctx, "power off") }
func (d scriptedDriver) PowerCycle(ctx context.Context, _ bool) error {
	return d.call(ctx, "power cycle")
}
func (d scriptedDriver) SetBootDevice(ctx context.Context, _ string) error {
	return d.call(ctx, "boot")
}
func (d scriptedDriver) PowerStatus(ctx context.Context) (string, error) {
	return "on", d.call(ctx, "power status")
}
func (d scriptedDriver) OpenConsole(ctx context.Context) (io.ReadCloser, error) {
	if d.mode == "flood" {
		return &floodStream{}, nil
	}
	return nil, d.call(ctx, "activate SOL")
}

// floodStream is a console that prints as fast as it is read.
type floodStream struct{ closed atomic.Bool }

func (f *floodStream) Read(p []byte) (int, error) {
	if f.closed.Load() {
		return 0, io.EOF
	}
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func (f *floodStream) Close() error   { f.closed.Store(true); return nil }
func (d scriptedDriver) Close() error { return nil }

type env struct {
	t       *testing.T
	srv     *httptest.Server
	engine  *gin.Engine
	m       *manager.Manager
	st      *store.Store
	metrics *metrics.Metrics
	logs    *syncbuf.Buffer

	mu    sync.Mutex
	mocks map[string]*manager.MockDriver
}

// metricsToken is the test servers' scrape credential.
const metricsToken = "fedcba9876543210fedcba9876543210"

func newEnv(t *testing.T, tune ...func(*manager.Config)) *env {
	t.Helper()
	return newEnvWith(t, Options{MetricsToken: metricsToken}, tune...)
}

// newEnvWith is newEnv with opts, whose AdminToken, Logger, Metrics and
// MaxBodyBytes newEnvWith fills in.
func newEnvWith(t *testing.T, opts Options, tune ...func(*manager.Config)) *env {
	t.Helper()
	e := &env{t: t, logs: &syncbuf.Buffer{}, mocks: make(map[string]*manager.MockDriver)}
	reg := manager.NewRegistry()
	mock := manager.MockDriverType()
	newMock := mock.New
	mock.New = func(info manager.DriverInfo, env manager.DriverEnv) (manager.Driver, error) {
		d, err := newMock(info, env)
		if err == nil {
			e.mu.Lock()
			e.mocks[env.NodeID] = d.(*manager.MockDriver)
			e.mu.Unlock()
		}
		return d, err
	}
	// "ipmi" as it is in a build without the ipmi driver: info validated,
	// registration refused.
	ipmi, _ := manager.BuiltinDrivers().Type("ipmi")
	ipmi.New = nil
	for name, dt := range map[string]manager.DriverType{
		"mock": mock,
		"ipmi": ipmi,
		"scripted": {
			ParseInfo: func(raw json.RawMessage) (manager.DriverInfo, error) {
				var si scriptedInfo
				if err := manager.DecodeStrict("scripted info", raw, &si); err != nil {
					return nil, err
				}
				return si, nil
			},
			New: func(info manager.DriverInfo, _ manager.DriverEnv) (manager.Driver, error) {
				return scriptedDriver{mode: info.(scriptedInfo).Mode}, nil
			},
		},
	} {
		if err := reg.Register(name, dt); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(store.InMemory, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))
	e.metrics = metrics.New(buildinfo.Get())
	cfg := manager.Config{Store: st, Drivers: reg, Logger: logger, OpTimeout: 100 * time.Millisecond,
		Observe: e.metrics.ObserveOperation}
	for _, f := range tune {
		f(&cfg)
	}
	e.m, err = manager.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.metrics.CollectManager(e.m)
	opts.AdminToken, opts.Logger, opts.Metrics, opts.MaxBodyBytes = adminToken, logger, e.metrics, 4096
	e.engine = New(e.m, opts)
	e.srv = httptest.NewServer(e.engine)
	t.Cleanup(func() {
		e.m.EndConsoles()
		e.srv.Close()
		e.m.Close(context.Background())
		st.Close() // once more is harmless (a test may close it first)
	})
	return e
}

type req struct {
	method, path, body string
	admin              bool   // send the admin credentials
	user, pass         string // or these
	bearer             string // or this bearer token
}

func (e *env) do(r req) (int, []byte, http.Header) {
	e.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	switch {
	case r.admin:
		hr.SetBasicAuth("admin", adminToken)
	case r.user != "" || r.pass != "":
		hr.SetBasicAuth(r.user, r.pass)
	case r.bearer != "":
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// expect performs r and checks the status; error answers must be
// {"error": "<non-empty>"} in JSON.
func (e *env) expect(r req, status int) []byte {
	e.t.Helper()
	got, body, hdr := e.do(r)
	if got != status {
		e.t.Fatalf("%s %s: status %d (%s), want %d", r.method, r.path, got, body, status)
	}
	if status >= 400 {
		var eb errorBody
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error == "" || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			e.t.Fatalf("%s %s: error body %q (%s) is not {\"error\": \"...\"}", r.method, r.path, body, hdr.Get("Content-Type"))
		}
	}
	return body
}

func (e *env) register(id, body string) {
	e.t.Helper()
	e.expect(req{method: "PUT", path: "/node/" + id, body: body, admin: true}, 200)
}

func (e *env) token(id string) string {
	e.t.Helper()
	body := e.expect(req{method: "POST", path: "/node/" + id + "/token", admin: true}, 200)
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		e.t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(tr.Token) {
		e.t.Fatalf("token %q is not 32 hex digits", tr.Token)
	}
	return tr.Token
}

func (e *env) lastAction(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mocks[id].LastAction()
}

const mockInfo = `{"type": "mock", "info": {"addr": "10.0.0.4", "NumWrites": 0}}`

// TestHILFlow replays what HIL's integration tests do against obmd with
// the mock driver.
func TestHILFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("node-99", mockInfo)
	tok := e.token("node-99")
	q := "?token=" + tok

	e.expect(req{method: "POST", path: "/node/node-99/power_off" + q}, 200)
	if a := e.lastAction("node-99"); a != manager.MockActionOff {
		t.Errorf("after power_off the mock's last action is %q", a)
	}
	e.expect(req{method: "PUT", path: "/node/node-99/boot_device" + q, body: `{"bootdev": "A"}`}, 200)
	if a := e.lastAction("node-99"); a != manager.MockActionBootDevA {
		t.Errorf("after boot_device A the mock's last action is %q", a)
	}
	for _, force := range []bool{true, false} {
		e.expect(req{method: "POST", path: "/node/node-99/power_cycle" + q, body: `{"force": ` + strconv.FormatBool(force) + `}`}, 200)
		want := manager.MockActionSoftReboot
		if force {
			want = manager.MockActionForceReboot
		}
		if a := e.lastAction("node-99"); a != want {
			t.Errorf("after power_cycle force=%t the mock's last action is %q", force, a)
		}
	}
	e.expect(req{method: "POST", path: "/node/node-99/power_on" + q}, 200)
	body := e.expect(req{method: "GET", path: "/node/node-99/power_status" + q}, 200)
	if string(body) != `{"power_status":"Mock Status"}` {
		t.Errorf("power_status body %s", body)
	}

	resp, err := e.srv.Client().Get(e.srv.URL + "/node/node-99/console" + q)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("console: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	for i := range 50 {
		if !sc.Scan() {
			t.Fatalf("console ended after %d lines: %v", i, sc.Err())
		}
		if sc.Text() != strconv.Itoa(i) {
			t.Fatalf("console line %d = %q", i, sc.Text())
		}
	}
	resp.Body.Close()

	// HIL disables the OBM: the token is revoked, and the node deleted.
	e.expect(req{method: "DELETE", path: "/node/node-99/token", admin: true}, 200)
	e.expect(req{method: "POST", path: "/node/node-99/power_on" + q}, 401)
	e.expect(req{method: "DELETE", path: "/node/node-99", admin: true}, 200)
	e.expect(req{method: "DELETE", path: "/node/node-99", admin: true}, 404)
}

func TestAdminRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("n", mockInfo)
	big := `{"type":"mock","info":{"addr":"` + strings.Repeat("a", 5000) + `"}}`
	cases := []struct {
		name string
		r    req
		want int
	}{
		{"no credentials", req{method: "PUT", path: "/node/m", body: mockInfo}, 401},
		{"wrong password", req{method: "PUT", path: "/node/m", body: mockInfo, user: "admin", pass: "ffffffffffffffffffffffffffffffff"}, 401},
		{"wrong user", req{method: "PUT", path: "/node/m", body: mockInfo, user: "root", pass: adminToken}, 401},
		{"no credentials, unknown node", req{method: "DELETE", path: "/node/nope"}, 401},
		{"re-registration", req{method: "PUT", path: "/node/n", body: mockInfo, admin: true}, 409},
		{"bad JSON", req{method: "PUT", path: "/node/m", body: `{"type": "mock",`, admin: true}, 400},
		{"empty body", req{method: "PUT", path: "/node/m", admin: true}, 400},
		{"unknown top-level field", req{method: "PUT", path: "/node/m", body: `{"type":"mock","info":{"addr":"a"},"owner":"x"}`, admin: true}, 400},
		{"duplicate key", req{method: "PUT", path: "/node/m", body: `{"type":"mock","type":"ipmi","info":{"addr":"a"}}`, admin: true}, 400},
		{"duplicate info key", req{method: "PUT", path: "/node/m", body: `{"type":"mock","info":{"addr":"a","addr":"b"}}`, admin: true}, 400},
		{"node id ..", req{method: "PUT", path: "/node/..", body: mockInfo, admin: true}, 400},
		{"node id of a space", req{method: "PUT", path: "/node/%20", body: mockInfo, admin: true}, 400},
		{"node id with a trailing space", req{method: "PUT", path: "/node/n%20", body: mockInfo, admin: true}, 400},
		{"node id with a bidi override", req{method: "PUT", path: "/node/n%E2%80%AEx", body: mockInfo, admin: true}, 400},
		{"unknown info field", req{method: "PUT", path: "/node/m", body: `{"type":"mock","info":{"addr":"a","extra":1}}`, admin: true}, 400},
		{"missing type", req{method: "PUT", path: "/node/m", body: `{"info":{"addr":"a"}}`, admin: true}, 400},
		{"missing info", req{method: "PUT", path: "/node/m", body: `{"type":"mock"}`, admin: true}, 400},
		{"unknown type", req{method: "PUT", path: "/node/m", body: `{"type":"ilo","info":{}}`, admin: true}, 400},
		{"bad ipmi info", req{method: "PUT", path: "/node/m", body: `{"type":"ipmi","info":{"addr":"10.0.0.4","user":"u"}}`, admin: true}, 400},
		{"body too large", req{method: "PUT", path: "/node/m", body: big, admin: true}, 413},
		{"delete unknown node", req{method: "DELETE", path: "/node/nope", admin: true}, 404},
		{"token for unknown node", req{method: "POST", path: "/node/nope/token", admin: true}, 404},
		{"revoke for unknown node", req{method: "DELETE", path: "/node/nope/token", admin: true}, 404},
		{"revoke without a token", req{method: "DELETE", path: "/node/n/token", admin: true}, 200},
		{"metrics need a credential", req{method: "GET", path: "/metrics"}, 401},
		{"node list needs admin", req{method: "GET", path: "/node"}, 401},
		{"node status needs admin", req{method: "GET", path: "/node/n"}, 401},
		{"status of an unknown node", req{method: "GET", path: "/node/nope", admin: true}, 404},
		{"unknown route", req{method: "GET", path: "/nodes"}, 404},
		{"wrong method", req{method: "GET", path: "/node/n/power_on"}, 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.expect(tc.r, tc.want)
		})
	}
	_, _, hdr := e.do(req{method: "PUT", path: "/node/m", body: mockInfo})
	if hdr.Get("WWW-Authenticate") == "" {
		t.Error("401 without a WWW-Authenticate challenge")
	}
}

func TestIPMIWithoutDriverIsNotImplemented(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := e.expect(req{method: "PUT", path: "/node/i", body: `{"type":"ipmi","info":{"addr":"10.0.0.4","user":"u","pass":"p"}}`, admin: true}, 501)
	if !strings.Contains(string(body), "not available") {
		t.Errorf("501 body %s does not say the driver is unavailable", body)
	}
	e.expect(req{method: "DELETE", path: "/node/i", admin: true}, 404) // nothing was stored
}

func TestTokenRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("n", mockInfo)
	e.register("bmc-error", `{"type":"scripted","info":{"mode":"bmc-error"}}`)
	e.register("hang", `{"type":"scripted","info":{"mode":"hang"}}`)
	q := "?token=" + e.token("n")
	qe := "?token=" + e.token("bmc-error")
	qh := "?token=" + e.token("hang")
	e.register("unavailable", `{"type":"scripted","info":{"mode":"unavailable"}}`)
	qu := "?token=" + e.token("unavailable")
	wrong := "?token=ffffffffffffffffffffffffffffffff"
	cases := []struct {
		name string
		r    req
		want int
	}{
		{"power_on", req{method: "POST", path: "/node/n/power_on" + q}, 200},
		{"power_off with an ignored body", req{method: "POST", path: "/node/n/power_off" + q, body: "whatever"}, 200},
		{"power_cycle", req{method: "POST", path: "/node/n/power_cycle" + q, body: `{"force":false}`}, 200},
		{"power_cycle without force", req{method: "POST", path: "/node/n/power_cycle" + q, body: `{}`}, 400},
		{"power_cycle with a null force", req{method: "POST", path: "/node/n/power_cycle" + q, body: `{"force": null}`}, 400},
		{"power_cycle with force twice", req{method: "POST", path: "/node/n/power_cycle" + q, body: `{"force": true, "force": false}`}, 400},
		{"boot_device with bootdev twice", req{method: "PUT", path: "/node/n/boot_device" + q, body: `{"bootdev": "A", "bootdev": "B"}`}, 400},
		{"power_cycle without body", req{method: "POST", path: "/node/n/power_cycle" + q}, 400},
		{"power_cycle bad JSON", req{method: "POST", path: "/node/n/power_cycle" + q, body: `{"force":`}, 400},
		{"power_cycle force not a bool", req{method: "POST", path: "/node/n/power_cycle" + q, body: `{"force":"yes"}`}, 400},
		{"power_cycle unknown field", req{method: "POST", path: "/node/n/power_cycle" + q, body: `{"force":true,"delay":3}`}, 400},
		{"boot_device B", req{method: "PUT", path: "/node/n/boot_device" + q, body: `{"bootdev":"B"}`}, 200},
		{"boot_device unknown device", req{method: "PUT", path: "/node/n/boot_device" + q, body: `{"bootdev":"pxe"}`}, 400},
		{"boot_device missing bootdev", req{method: "PUT", path: "/node/n/boot_device" + q, body: `{}`}, 400},
		{"boot_device unknown field", req{method: "PUT", path: "/node/n/boot_device" + q, body: `{"bootdev":"A","persist":true}`}, 400},
		{"power_status", req{method: "GET", path: "/node/n/power_status" + q}, 200},
		{"console bad replay", req{method: "GET", path: "/node/n/console" + q + "&replay=-1"}, 400},
		{"wrong token", req{method: "POST", path: "/node/n/power_on" + wrong}, 401},
		{"missing token", req{method: "POST", path: "/node/n/power_on"}, 401},
		{"malformed token", req{method: "GET", path: "/node/n/power_status?token=abc"}, 401},
		{"wrong token, unknown node", req{method: "POST", path: "/node/nope/power_on" + wrong}, 401},
		{"another node's token", req{method: "POST", path: "/node/nope/power_on" + q}, 401},
		{"console wrong token", req{method: "GET", path: "/node/n/console" + wrong}, 401},
		{"BMC error", req{method: "POST", path: "/node/bmc-error/power_on" + qe}, 502},
		{"BMC error on console", req{method: "GET", path: "/node/bmc-error/console" + qe}, 502},
		{"BMC silent", req{method: "GET", path: "/node/hang/power_status" + qh}, 504},
		{"BMC silent on console", req{method: "GET", path: "/node/hang/console" + qh}, 504},
		{"no owner reachable", req{method: "POST", path: "/node/unavailable/power_on" + qu}, 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.expect(tc.r, tc.want)
		})
	}

	// 401 bodies are identical whether or not the node exists.
	_, b1, _ := e.do(req{method: "POST", path: "/node/n/power_on" + wrong})
	_, b2, _ := e.do(req{method: "POST", path: "/node/nope/power_on" + wrong})
	if !bytes.Equal(b1, b2) {
		t.Errorf("401 for an existing node %s differs from an unknown node's %s", b1, b2)
	}
	if body := e.expect(req{method: "POST", path: "/node/unavailable/power_on" + qu}, 503); strings.Contains(string(body), "10.1.1.1") || !strings.Contains(string(body), "retrying") {
		t.Errorf("503 body %s names the owner or does not say retrying helps", body)
	}
	body := e.expect(req{method: "POST", path: "/node/bmc-error/power_on" + qe}, 502)
	if !strings.Contains(string(body), "0xD5") {
		t.Errorf("502 body %s does not carry the BMC's reason", body)
	}
	// ... but a tenant never learns the BMC's address or IPMI user name.
	for _, secret := range []string{"10.9.8.7", "623", "ipmiadmin"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("tenant's 502 body %s reveals %q", body, secret)
		}
	}
}

func TestConsoleEndsWhenTokenRevoked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("n", mockInfo)
	tok := e.token("n")
	resp, err := e.srv.Client().Get(e.srv.URL + "/node/n/console?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	e.token("n") // a new token replaces the old one
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, br); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("console stream ended with %v, want a clean end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("console stream still running 5s after its token was replaced")
	}
}

// stallListener hands out connections that accept budget bytes of writes
// and then block, as a client that stopped reading does once the TCP
// windows are full, until the write deadline passes or the connection
// closes. stalled is closed when a write first blocks.
type stallListener struct {
	net.Listener
	budget  int
	stalled chan struct{}
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c, budget: l.budget, stalled: l.stalled, wake: make(chan struct{}, 1), closed: make(chan struct{})}, nil
}

type stallConn struct {
	net.Conn
	stalled chan struct{}
	wake    chan struct{} // the deadline changed
	closed  chan struct{}
	once    sync.Once

	mu       sync.Mutex
	budget   int
	deadline time.Time
}

func (c *stallConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *stallConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *stallConn) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return c.Conn.Close()
}

func (c *stallConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.budget >= len(p) {
		c.budget -= len(p)
		c.mu.Unlock()
		return c.Conn.Write(p)
	}
	c.mu.Unlock()
	c.once.Do(func() { close(c.stalled) })
	for {
		c.mu.Lock()
		d := c.deadline
		c.mu.Unlock()
		if !d.IsZero() && !time.Now().Before(d) {
			return 0, os.ErrDeadlineExceeded
		}
		var expire <-chan time.Time
		if !d.IsZero() {
			t := time.NewTimer(time.Until(d))
			defer t.Stop()
			expire = t.C
		}
		select {
		case <-c.wake:
		case <-expire:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
}

// TestStuckClientCutOffOnRevoke: a console client that stops reading
// blocks only its own handler's writes, and revoking the token still ends
// its request at once rather than after the 30 s write timeout.
func TestStuckClientCutOffOnRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stalled := make(chan struct{})
	srv := httptest.NewUnstartedServer(e.engine)
	srv.Listener = &stallListener{Listener: srv.Listener, budget: 8 << 10, stalled: stalled}
	srv.Start()
	defer srv.Close()

	e.register("f", `{"type":"scripted","info":{"mode":"flood"}}`)
	tok := e.token("f")
	resp, err := srv.Client().Get(srv.URL + "/node/f/console?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // never read
	select {
	case <-stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("the console handler never blocked writing")
	}
	start := time.Now()
	e.expect(req{method: "DELETE", path: "/node/f/token", admin: true}, 200)
	eventually(t, "the console request to end", func() bool {
		return strings.Contains(e.logs.String(), `"path":"/node/f/console"`)
	})
	if el := time.Since(start); el > time.Second {
		t.Errorf("the stuck console request ended %v after the revocation", el)
	}
}

func TestConsoleViewerLeaves(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("n", mockInfo)
	tok := e.token("n")
	ctx, cancel := context.WithCancel(context.Background())
	hr, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/node/n/console?token="+tok, nil)
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if v := e.m.Stats().Viewers; v != 1 {
		t.Fatalf("viewers = %d, want 1", v)
	}
	cancel()
	resp.Body.Close()
	eventually(t, "the viewer to be detached", func() bool { return e.m.Stats().Viewers == 0 })
}

// eventually polls cond until it holds, failing after 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestConsoleReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("n", mockInfo)
	tok := e.token("n")
	first, err := e.srv.Client().Get(e.srv.URL + "/node/n/console?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	sc := bufio.NewScanner(first.Body)
	for range 20 {
		sc.Scan()
	}
	second, err := e.srv.Client().Get(e.srv.URL + "/node/n/console?replay=65536&token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Body.Close()
	sc2 := bufio.NewScanner(second.Body)
	if !sc2.Scan() || sc2.Text() != "0" {
		t.Fatalf("with replay the second viewer's first line is %q, want \"0\" (the whole scrollback)", sc2.Text())
	}
}

// TestLogsHoldNoSecrets makes requests carrying a token, the admin token
// and a BMC-style password, then searches the log.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("n", `{"type":"mock","info":{"addr":"10.0.0.4"}}`)
	tok := e.token("n")
	e.expect(req{method: "GET", path: "/node/n/power_status?token=" + tok}, 200)
	e.expect(req{method: "GET", path: "/node/n/power_status?x=1&TOKEN=" + tok}, 401)
	e.expect(req{method: "PUT", path: "/node/i", body: `{"type":"ipmi","info":{"addr":"h","user":"u","pass":"sup3rs3cretpw","cipher_suite":9}}`, admin: true}, 400)
	logs := e.logs.String()
	for _, secret := range []string{tok, adminToken, "sup3rs3cretpw"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a secret %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, "token=REDACTED") || !strings.Contains(logs, `"node":"n"`) {
		t.Errorf("log lacks the redacted query or the node attribute:\n%s", logs)
	}
}

func TestRecoveryAnswers500(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.engine.GET("/boom", func(*gin.Context) { panic("boom") })
	e.expect(req{method: "GET", path: "/boom"}, 500)
	e.expect(req{method: "GET", path: "/healthz"}, 200) // still serving
	if !strings.Contains(e.logs.String(), "handler panic") {
		t.Error("the panic was not logged")
	}
}

func TestRedactedQuery(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"", ""},
		{"token=abc", "token=REDACTED"},
		{"replay=10&token=abc", "replay=10&token=REDACTED"},
		{"Token=abc&token=def", "Token=REDACTED&token=REDACTED"},
		{"token=%zz", "[unparsable query not logged]"},
	}
	for _, tc := range cases {
		if got := redactedQuery(tc.in); got != tc.want {
			t.Errorf("redactedQuery(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// GET /node lists the nodes and GET /node/{id} shows one to the admin,
// without its secrets (obmd's additions; HIL does not use them).
func TestNodeListAndStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("b", mockInfo)
	e.register("a", `{"type": "mock", "info": {"addr": "10.0.0.9", "NumWrites": 3}}`)
	e.token("b")
	body := e.expect(req{method: "GET", path: "/node", admin: true}, 200)
	if string(body) != `{"nodes":["a","b"]}` {
		t.Errorf("GET /node = %s", body)
	}
	body = e.expect(req{method: "GET", path: "/node/a", admin: true}, 200)
	var st manager.NodeStatus
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info.(map[string]any)
	if st.ID != "a" || st.Type != "mock" || info["addr"] != "10.0.0.9" || info["NumWrites"] != 3.0 || st.HasToken || st.Console.State != "closed" {
		t.Errorf("node status = %+v", st)
	}

	// The last failure is kept, with the whole reason, for the admin.
	e.register("err", `{"type":"scripted","info":{"mode":"bmc-error"}}`)
	e.expect(req{method: "POST", path: "/node/err/power_on?token=" + e.token("err")}, 502)
	body = e.expect(req{method: "GET", path: "/node/err", admin: true}, 200)
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.LastError == nil || st.LastError.Op != "power on" || !strings.Contains(st.LastError.Error, "10.9.8.7") || st.LastError.At.IsZero() || !st.HasToken {
		t.Errorf("node status after a BMC error: %s", body)
	}
}

// TestConsoleNewTenantSeesNoEarlierOutput: tenant A watches the counter
// console; the token is replaced (HIL gives the node to another project);
// tenant B, asking for all the scrollback, sees no line A saw, whether the
// console stayed open or closed by linger in between (issue 9, defect 1).
func TestConsoleNewTenantSeesNoEarlierOutput(t *testing.T) {
	t.Parallel()
	for _, linger := range []bool{false, true} {
		t.Run(fmt.Sprintf("linger_close=%t", linger), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *manager.Config) { c.Console.Linger = 50 * time.Millisecond })
			e.register("n", mockInfo)
			tokA := e.token("n")
			a, err := e.srv.Client().Get(e.srv.URL + "/node/n/console?token=" + tokA)
			if err != nil {
				t.Fatal(err)
			}
			sa := bufio.NewScanner(a.Body)
			maxA := -1
			for range 200 {
				if !sa.Scan() {
					t.Fatalf("A's console ended: %v", sa.Err())
				}
				maxA, _ = strconv.Atoi(sa.Text())
			}
			if linger {
				a.Body.Close()
				eventually(t, "the console to close by linger", func() bool {
					st, err := e.m.Status("n")
					return err == nil && st.Console.State == "closed"
				})
			}
			tokB := e.token("n")
			b, err := e.srv.Client().Get(e.srv.URL + "/node/n/console?replay=65536&token=" + tokB)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Body.Close()
			sb := bufio.NewScanner(b.Body)
			var lines []string
			for range 20 {
				if !sb.Scan() {
					t.Fatalf("B's console ended: %v", sb.Err())
				}
				lines = append(lines, sb.Text())
			}
			// B's first line may be the tail of a line cut at the tenancy
			// boundary; every later one is whole and consecutive.
			second, err := strconv.Atoi(lines[1])
			if err != nil || second <= maxA || !strings.HasSuffix(strconv.Itoa(second-1), lines[0]) {
				t.Fatalf("A saw lines up to %d; B, with replay, starts %q: it reads output from before its token", maxA, lines[:3])
			}
			a.Body.Close()
		})
	}
}

// TestRefusedRequestsCannotFloodTheLog: 300 unauthenticated requests with
// a 60 KB node ID grew the log by 36 MB before; now each line's fields are
// cut and a burst of refusals costs a bounded number of lines, with one
// summary for the rest (issue 9, defect 3). Authenticated requests are
// all logged.
func TestRefusedRequestsCannotFloodTheLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("n", mockInfo)
	tok := e.token("n")
	before := e.logs.Len()
	long := strings.Repeat("x", 60<<10)
	for i := range 300 {
		path := "/node/" + long + "/power_on?token=bad"
		if i%2 == 1 {
			path = "/node/" + long // admin route, no credentials
		}
		if st, _, _ := e.do(req{method: "POST", path: path}); st != 401 && st != 404 && st != 405 {
			t.Fatalf("request %d: status %d", i, st)
		}
	}
	grown := e.logs.Len() - before
	if grown > 64<<10 {
		t.Errorf("300 refused requests with a 60 KB node ID grew the log by %d bytes (bound 64 KiB)", grown)
	}
	logs := e.logs.String()[before:]
	if !strings.Contains(logs, "more bytes]") {
		t.Errorf("the log does not mark cut fields:\n%.2000s", logs)
	}
	// Authenticated requests are never held back.
	before = e.logs.Len()
	for range 30 {
		e.expect(req{method: "GET", path: "/node/n/power_status?token=" + tok}, 200)
	}
	if n := strings.Count(e.logs.String()[before:], `"path":"/node/n/power_status"`); n != 30 {
		t.Errorf("%d of 30 authenticated requests logged", n)
	}
	t.Logf("300 refusals with 60 KB paths: %d log bytes", grown)
}
