package manager

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"obmd/bmc"
	"obmd/fakebmc"
	"obmd/internal/syncbuf"
	"obmd/ipmi"
	"obmd/rmcpplus"
	"obmd/sol"
)

// Tests of the ipmi driver against fakebmc, the only BMC here with cipher
// suite 17. The machine's state is read from fakebmc directly, never
// through the driver under test; session reuse is counted on the wire.

// testIPMIPass is distinctive so that a leak into logs or errors is found.
const testIPMIPass = "pw-Zq81xvK"

var ipmiTestUser = fakebmc.User{Name: "admin", Password: []byte(testIPMIPass)}

// recordingMachine is fakebmc's standard machine with a record of the
// chassis control actions it received, and optionally an operating system
// that ignores ACPI soft-off requests.
type recordingMachine struct {
	*fakebmc.SimMachine
	ignoreSoftOff bool

	mu    sync.Mutex
	calls []string
}

func (m *recordingMachine) record(call string) {
	m.mu.Lock()
	m.calls = append(m.calls, call)
	m.mu.Unlock()
}

// Calls returns the actions received since the last Calls.
func (m *recordingMachine) Calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.calls
	m.calls = nil
	return c
}

func (m *recordingMachine) PowerUp() error    { m.record("up"); return m.SimMachine.PowerUp() }
func (m *recordingMachine) PowerDown() error  { m.record("down"); return m.SimMachine.PowerDown() }
func (m *recordingMachine) PowerCycle() error { m.record("cycle"); return m.SimMachine.PowerCycle() }
func (m *recordingMachine) HardReset() error  { m.record("reset"); return m.SimMachine.HardReset() }
func (m *recordingMachine) SoftOff() error {
	m.record("soft")
	if m.ignoreSoftOff {
		return nil // a hung OS: the request is accepted and nothing happens
	}
	return m.SimMachine.SoftOff()
}

type fakeNode struct {
	bmc     *fakebmc.BMC
	machine *recordingMachine
	addr    string
}

// startFakeNode starts one fakebmc with a recording machine in the given
// power state.
func startFakeNode(t *testing.T, on, ignoreSoftOff bool) fakeNode {
	t.Helper()
	m := &recordingMachine{
		SimMachine:    fakebmc.NewSimMachine(fakebmc.PowerTiming{CycleOff: 20 * time.Millisecond, SoftShutdown: 20 * time.Millisecond}, on),
		ignoreSoftOff: ignoreSoftOff,
	}
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr: "127.0.0.1:0",
		BMC:  fakebmc.BMCConfig{Users: []fakebmc.User{ipmiTestUser}, Machine: m},
	})
	if err != nil {
		t.Fatalf("StartFleet: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return fakeNode{bmc: f.BMC(0), machine: m, addr: f.Addr(0)}
}

// wireCounter counts RMCP+ Open Session Requests (IPMI v2.0 section 13.17)
// sent by the driver's sessions: one per handshake.
type wireCounter struct {
	openSessions atomic.Int64
	dials        atomic.Int64
}

type countingConn struct {
	net.PacketConn
	w *wireCounter
}

// WriteTo counts Open Session Requests: RMCP class IPMI (byte 3 = 0x07),
// auth type RMCP+ (byte 4 = 0x06), payload type 0x10 (byte 5, IPMI v2.0
// section 13.27.3 Table 13-16).
func (c countingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if len(p) > 5 && p[3] == 0x07 && p[4] == 0x06 && p[5]&0x3F == 0x10 {
		c.w.openSessions.Add(1)
	}
	return c.PacketConn.WriteTo(p, addr)
}

// dial is bmc.Dial over a counting socket. A bmc.Client never redials, so
// every handshake the test counts is the driver's.
func (w *wireCounter) dial(ctx context.Context, cfg bmc.Config) (*bmc.Client, error) {
	w.dials.Add(1)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	cfg.PacketConn = countingConn{PacketConn: conn, w: w}
	c, err := bmc.Dial(ctx, cfg)
	if err != nil {
		conn.Close()
	}
	return c, err
}

// fastIPMIConfig keeps failures quick: a silent BMC fails a request after
// 4 x 150 ms.
func fastIPMIConfig() IPMIDriverConfig {
	return IPMIDriverConfig{
		AttemptTimeout:    150 * time.Millisecond,
		Retries:           3,
		ReuseTimeout:      300 * time.Millisecond,
		PowerPollInterval: 10 * time.Millisecond,
		SoftOffGrace:      5 * time.Second,
	}
}

// newTestIPMIDriver builds a driver for addr whose handshakes are counted
// and whose logs are checked for the password when the test ends.
func newTestIPMIDriver(t *testing.T, addr string, suite uint8, cfg IPMIDriverConfig, quirks ...string) (*ipmiDriver, *wireCounter) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	info := IPMIInfo{Addr: addr, User: ipmiTestUser.Name, Pass: testIPMIPass, CipherSuite: suite,
		Privilege: ipmi.PrivilegeAdministrator, Quirks: quirks}
	d, err := newIPMIDriver(info, DriverEnv{NodeID: "n1", Logger: log.With("node", "n1")}, cfg)
	if err != nil {
		t.Fatalf("newIPMIDriver: %v", err)
	}
	w := &wireCounter{}
	d.dialBMC = w.dial
	t.Cleanup(func() {
		d.Close()
		if strings.Contains(logs.String(), testIPMIPass) {
			t.Errorf("the password appears in the driver's logs:\n%s", logs.String())
		}
	})
	return d, w
}

func opCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustOp(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func awaitPower(t *testing.T, m *recordingMachine, on bool) {
	t.Helper()
	if err := m.WaitPower(opCtx(t, 5*time.Second), on); err != nil {
		t.Fatal(err)
	}
}

func TestIPMIDriverPower(t *testing.T) {
	t.Parallel()
	for _, suite := range []uint8{17, 0 /* negotiated */} {
		t.Run(fmt.Sprintf("suite%d", suite), func(t *testing.T) {
			t.Parallel()
			n := startFakeNode(t, false, false)
			d, w := newTestIPMIDriver(t, n.addr, suite, fastIPMIConfig())
			ctx := opCtx(t, 20*time.Second)

			status := func(want string) {
				t.Helper()
				got, err := d.PowerStatus(ctx)
				if err != nil || got != want {
					t.Fatalf("PowerStatus = %q, %v; want %q", got, err, want)
				}
				if machine := map[bool]string{true: "on", false: "off"}[n.machine.PowerOn()]; machine != want {
					t.Fatalf("fakebmc machine is %s, driver reports %s", machine, want)
				}
			}
			calls := func(want ...string) {
				t.Helper()
				if got := n.machine.Calls(); !slices.Equal(got, want) {
					t.Fatalf("chassis control actions %q, want %q", got, want)
				}
			}
			boots := func() int { return len(n.machine.Boots()) }

			status("off")
			mustOp(t, "PowerOn", d.PowerOn(ctx))
			calls("up")
			status("on")
			mustOp(t, "PowerOn while on", d.PowerOn(ctx))
			status("on")
			n.machine.Calls()

			mustOp(t, "PowerOff", d.PowerOff(ctx))
			calls("down")
			status("off")
			mustOp(t, "PowerOff while off", d.PowerOff(ctx))
			status("off")
			n.machine.Calls()

			// A node that is off is powered on by either kind of cycle.
			for _, force := range []bool{true, false} {
				mustOp(t, "PowerOff", d.PowerOff(ctx))
				n.machine.Calls()
				before := boots()
				mustOp(t, fmt.Sprintf("PowerCycle(force=%v) while off", force), d.PowerCycle(ctx, force))
				calls("up")
				status("on")
				if boots() != before+1 {
					t.Fatalf("boots %d, want %d", boots(), before+1)
				}
			}

			// Forced: a hard reset.
			before := boots()
			mustOp(t, "PowerCycle(force)", d.PowerCycle(ctx, true))
			calls("reset")
			status("on")
			if boots() != before+1 {
				t.Fatalf("boots after reset %d, want %d", boots(), before+1)
			}

			// Not forced: ACPI soft off, wait for off, power on.
			before = boots()
			mustOp(t, "PowerCycle(soft)", d.PowerCycle(ctx, false))
			calls("soft", "up")
			status("on")
			if boots() != before+1 {
				t.Fatalf("boots after soft cycle %d, want %d", boots(), before+1)
			}

			// All of it on one session.
			if got := w.openSessions.Load(); got != 1 {
				t.Errorf("%d Open Session Requests sent, want 1 (one warm session)", got)
			}
		})
	}
}

// TestIPMIDriverSoftCycleForcedAfterGrace: an OS that ignores ACPI is
// forced off once the grace period is over, then powered on.
func TestIPMIDriverSoftCycleForcedAfterGrace(t *testing.T) {
	t.Parallel()
	n := startFakeNode(t, true, true)
	cfg := fastIPMIConfig()
	cfg.SoftOffGrace = 100 * time.Millisecond
	d, _ := newTestIPMIDriver(t, n.addr, 17, cfg)
	start := time.Now()
	mustOp(t, "PowerCycle(soft)", d.PowerCycle(opCtx(t, 10*time.Second), false))
	if got, want := n.machine.Calls(), []string{"soft", "down", "up"}; !slices.Equal(got, want) {
		t.Fatalf("chassis control actions %q, want %q", got, want)
	}
	if el := time.Since(start); el < cfg.SoftOffGrace {
		t.Errorf("forced off after %v, before the %v grace period", el, cfg.SoftOffGrace)
	}
	if !n.machine.PowerOn() {
		t.Fatal("node off after the soft cycle")
	}
}

// TestIPMIDriverGraceLeavesRoom: the grace period ends early enough to
// force the node off and power it on before the operation's deadline.
func TestIPMIDriverGraceLeavesRoom(t *testing.T) {
	t.Parallel()
	d := &ipmiDriver{cfg: IPMIDriverConfig{SoftOffGrace: 30 * time.Second, AttemptTimeout: time.Second, Retries: 3}.withDefaults()}
	tests := []struct {
		name     string
		deadline time.Duration // 0: none
		want     time.Duration // from now, ±50 ms
	}{
		{"no deadline", 0, 30 * time.Second},
		{"deadline far off", time.Minute, 30 * time.Second},
		{"10 s operation: a third in reserve", 10 * time.Second, 10*time.Second - 10*time.Second/3},
		{"40 s operation: two silent requests in reserve", 40 * time.Second, 30 * time.Second},
		{"35 s operation", 35 * time.Second, 27 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			got := time.Until(d.graceEnd(ctx))
			if diff := got - tc.want; diff < -50*time.Millisecond || diff > 50*time.Millisecond {
				t.Errorf("grace ends in %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIPMIDriverBootDevice(t *testing.T) {
	t.Parallel()
	n := startFakeNode(t, true, false)
	d, w := newTestIPMIDriver(t, n.addr, 17, fastIPMIConfig())
	ctx := opCtx(t, 10*time.Second)
	tests := []struct {
		name string
		want ipmi.BootDevice
	}{
		{"pxe", ipmi.BootDevicePXE},
		{"disk", ipmi.BootDeviceDisk},
		{"none", ipmi.BootDeviceNone},
		{"pxe", ipmi.BootDevicePXE}, // after "none", so the change is visible
	}
	for _, tc := range tests {
		mustOp(t, "SetBootDevice "+tc.name, d.SetBootDevice(ctx, tc.name))
		f := n.bmc.BootFlags()
		if f.Device != tc.want || !f.Valid || !f.Persistent {
			t.Fatalf("after SetBootDevice(%q) the BMC holds %+v; want device %v, valid and persistent", tc.name, f, tc.want)
		}
	}

	dials := w.dials.Load()
	for _, bad := range []string{"", "PXE", "cdrom", "floppy", "A", "disk "} {
		err := d.SetBootDevice(ctx, bad)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "unknown boot device") {
			t.Errorf("SetBootDevice(%q) = %v; want ErrInvalid naming the unknown boot device", bad, err)
		}
	}
	if w.dials.Load() != dials {
		t.Error("an invalid boot device reached the BMC")
	}
	if f := n.bmc.BootFlags(); f.Device != ipmi.BootDevicePXE {
		t.Errorf("invalid requests changed the boot device to %v", f.Device)
	}
}

func TestParseBootDevice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    ipmi.BootDevice
		wantErr bool
	}{
		{"pxe", ipmi.BootDevicePXE, false},
		{"disk", ipmi.BootDeviceDisk, false},
		{"none", ipmi.BootDeviceNone, false},
		{"Pxe", 0, true},
		{"bios", 0, true},
		{"", 0, true},
	}
	for _, tc := range tests {
		got, err := parseBootDevice(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseBootDevice(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("parseBootDevice(%q) error %v is not ErrInvalid", tc.in, err)
		}
	}
}

// TestIPMIDriverSessionReuse: many operations, one handshake.
func TestIPMIDriverSessionReuse(t *testing.T) {
	t.Parallel()
	n := startFakeNode(t, false, false)
	d, w := newTestIPMIDriver(t, n.addr, 17, fastIPMIConfig())
	ctx := opCtx(t, 10*time.Second)
	for i := range 10 {
		if _, err := d.PowerStatus(ctx); err != nil {
			t.Fatalf("PowerStatus %d: %v", i, err)
		}
	}
	mustOp(t, "PowerOn", d.PowerOn(ctx))
	mustOp(t, "SetBootDevice", d.SetBootDevice(ctx, "disk"))
	if got := w.dials.Load(); got != 1 {
		t.Errorf("%d dials for 12 operations, want 1", got)
	}
	if got := w.openSessions.Load(); got != 1 {
		t.Errorf("%d Open Session Requests for 12 operations, want 1", got)
	}
}

// TestIPMIDriverRedialAfterBMCDroppedSessions: a BMC that forgets its
// sessions (as after a reset) ignores the warm session's packets; the
// operation succeeds anyway, on a new session, well within its deadline.
func TestIPMIDriverRedialAfterBMCDroppedSessions(t *testing.T) {
	t.Parallel()
	n := startFakeNode(t, false, false)
	cfg := fastIPMIConfig()
	d, w := newTestIPMIDriver(t, n.addr, 17, cfg)
	ctx := opCtx(t, 10*time.Second)
	if _, err := d.PowerStatus(ctx); err != nil {
		t.Fatal(err)
	}
	n.bmc.DropAllSessions()

	start := time.Now()
	mustOp(t, "PowerOn after the BMC dropped the session", d.PowerOn(ctx))
	elapsed := time.Since(start)
	if !n.machine.PowerOn() {
		t.Fatal("machine off after PowerOn")
	}
	if got := w.openSessions.Load(); got != 2 {
		t.Errorf("%d Open Session Requests, want 2 (the first session, and one re-dial)", got)
	}
	if got := d.pool.redials.Load(); got != 1 {
		t.Errorf("%d retries on a fresh session, want 1", got)
	}
	if limit := cfg.ReuseTimeout + time.Second; elapsed > limit {
		t.Errorf("PowerOn took %v after the drop; want under %v (reuse budget plus one handshake)", elapsed, limit)
	}
	// The new session is the warm one now.
	if _, err := d.PowerStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.openSessions.Load(); got != 2 {
		t.Errorf("%d Open Session Requests after one more operation, want still 2", got)
	}
}

// TestIPMIDriverIdleSessionClosed: a session unused for IdleTimeout is
// closed; the next operation dials again.
func TestIPMIDriverIdleSessionClosed(t *testing.T) {
	t.Parallel()
	n := startFakeNode(t, false, false)
	cfg := fastIPMIConfig()
	cfg.IdleTimeout = 50 * time.Millisecond
	d, w := newTestIPMIDriver(t, n.addr, 17, cfg)
	closed := make(chan int, 4)
	d.pool.onIdleClose = func(n int) { closed <- n }
	ctx := opCtx(t, 10*time.Second)

	start := time.Now()
	if _, err := d.PowerStatus(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-closed:
		if got != 1 {
			t.Errorf("idle timer closed %d sessions, want 1", got)
		}
	case <-ctx.Done():
		t.Fatal("the idle session was never closed")
	}
	if el := time.Since(start); el < cfg.IdleTimeout {
		t.Errorf("session closed after %v, before the %v idle time", el, cfg.IdleTimeout)
	}
	if _, err := d.PowerStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.openSessions.Load(); got != 2 {
		t.Errorf("%d Open Session Requests, want 2 (a new session after the idle close)", got)
	}
	if got := d.pool.redials.Load(); got != 0 {
		t.Errorf("%d retries; an idle-closed session must not cost a failed attempt", got)
	}
}

// blackHole is a UDP socket that reads and never answers. got is closed
// when the first datagram arrives.
func blackHole(t *testing.T) (addr string, got <-chan struct{}) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	first := make(chan struct{})
	go func() {
		buf := make([]byte, 1500)
		var once sync.Once
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				return
			}
			once.Do(func() { close(first) })
		}
	}()
	return conn.LocalAddr().String(), first
}

// TestIPMIDriverTimeouts: a BMC that does not answer is ErrTimeout (504),
// within the operation's deadline or the retransmission budget, whichever
// is first.
func TestIPMIDriverTimeouts(t *testing.T) {
	t.Parallel()
	cfg := fastIPMIConfig() // a silent BMC fails a request after 600 ms
	const slack = 300 * time.Millisecond
	tests := []struct {
		name     string
		deadline time.Duration
		limit    time.Duration
	}{
		{"operation deadline first", 300 * time.Millisecond, 300 * time.Millisecond},
		{"retransmissions run out first", 5 * time.Second, 4 * cfg.AttemptTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, _ := blackHole(t)
			d, _ := newTestIPMIDriver(t, addr, 17, cfg)
			start := time.Now()
			_, err := d.PowerStatus(opCtx(t, tc.deadline))
			elapsed := time.Since(start)
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("PowerStatus against a black hole = %v; want ErrTimeout", err)
			}
			if elapsed > tc.limit+slack {
				t.Errorf("failed after %v; want within %v", elapsed, tc.limit)
			}
			if strings.Contains(err.Error(), testIPMIPass) {
				t.Errorf("error shows the password: %v", err)
			}
			t.Logf("error text: %v", err)
		})
	}
}

// TestIPMIDriverBMCGoneWithWarmSession: when the BMC behind a warm session
// goes silent for good, the retry on a fresh session must not stretch the
// operation past its deadline.
func TestIPMIDriverBMCGoneWithWarmSession(t *testing.T) {
	t.Parallel()
	m := &recordingMachine{SimMachine: fakebmc.NewSimMachine(fakebmc.PowerTiming{}, true)}
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr: "127.0.0.1:0",
		BMC:  fakebmc.BMCConfig{Users: []fakebmc.User{ipmiTestUser}, Machine: m},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastIPMIConfig()
	cfg.AttemptTimeout = time.Second // each attempt outlives the deadline below
	d, w := newTestIPMIDriver(t, f.Addr(0), 17, cfg)
	if _, err := d.PowerStatus(opCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.Close() // the BMC is gone; nothing answers on its port

	const deadline = 800 * time.Millisecond
	start := time.Now()
	_, err = d.PowerStatus(opCtx(t, deadline))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("PowerStatus after the BMC went away = %v; want ErrTimeout", err)
	}
	// A retry that ignored the deadline would take two 1 s attempts; the
	// margin is for a loaded 2-core machine.
	if elapsed > deadline+700*time.Millisecond {
		t.Errorf("failed after %v; want within the %v deadline (+700ms of scheduling margin)", elapsed, deadline)
	}
	if got := w.dials.Load(); got != 2 {
		t.Errorf("%d dials, want 2 (the warm session, and one retry)", got)
	}
}

func TestIPMIDriverWrongPassword(t *testing.T) {
	t.Parallel()
	n := startFakeNode(t, false, false)
	info := IPMIInfo{Addr: n.addr, User: "admin", Pass: "not-" + testIPMIPass, CipherSuite: 17, Privilege: ipmi.PrivilegeAdministrator}
	d, err := newIPMIDriver(info, DriverEnv{NodeID: "n1"}, fastIPMIConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.PowerStatus(opCtx(t, 5*time.Second))
	if !errors.Is(err, ErrBMC) || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("PowerStatus with a wrong password = %v; want ErrBMC saying \"wrong password\"", err)
	}
	if strings.Contains(err.Error(), info.Pass) {
		t.Errorf("error shows the password: %v", err)
	}
}

// counterConsole reads a counter console ("0\n1\n2\n...") and checks that
// the values count up by one, across calls.
type counterConsole struct {
	rc   io.ReadCloser
	br   *bufio.Reader
	last int // -1 before the first line
}

func newCounterConsole(rc io.ReadCloser) *counterConsole {
	return &counterConsole{rc: rc, br: bufio.NewReader(rc), last: -1}
}

// lines reads n whole lines within the time given (Close makes a pending
// Read return) and returns the last value.
func (c *counterConsole) lines(t *testing.T, n int, within time.Duration) int {
	t.Helper()
	timer := time.AfterFunc(within, func() { c.rc.Close() })
	defer timer.Stop()
	for i := range n {
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("console read after %d of %d lines: %v", i, n, err)
		}
		v, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
		if err != nil {
			t.Fatalf("console line %q is not a counter value", line)
		}
		if c.last >= 0 && v != c.last+1 {
			t.Fatalf("console line %d follows %d: bytes lost, duplicated or reordered", v, c.last)
		}
		c.last = v
	}
	return c.last
}

// TestIPMIDriverConsole: the console streams the counter in order on its
// own session, power operations keep working meanwhile, and Close
// deactivates SOL and keeps the session warm.
func TestIPMIDriverConsole(t *testing.T) {
	t.Parallel()
	for _, suite := range []uint8{17, 0} {
		t.Run(fmt.Sprintf("suite%d", suite), func(t *testing.T) {
			t.Parallel()
			n := startFakeNode(t, true, false)
			d, w := newTestIPMIDriver(t, n.addr, suite, fastIPMIConfig())
			ctx := opCtx(t, 20*time.Second)
			if _, err := d.PowerStatus(ctx); err != nil {
				t.Fatal(err)
			}

			rc, err := d.OpenConsole(ctx)
			if err != nil {
				t.Fatalf("OpenConsole: %v", err)
			}
			if !n.bmc.SOLActive() {
				t.Fatal("SOL not active on the BMC after OpenConsole")
			}
			cc := newCounterConsole(rc)
			cc.lines(t, 50, 10*time.Second)

			// The console holds its own session: power still works.
			mustOp(t, "PowerOff with the console open", d.PowerOff(ctx))
			if n.machine.PowerOn() {
				t.Fatal("machine on after PowerOff")
			}
			cc.lines(t, 20, 10*time.Second)
			if got := w.openSessions.Load(); got != 2 {
				t.Errorf("%d Open Session Requests, want 2 (power, console)", got)
			}

			if err := rc.Close(); err != nil {
				t.Fatalf("console Close: %v", err)
			}
			if err := n.bmc.WaitSOL(ctx, false); err != nil {
				t.Fatalf("SOL still active after the console closed: %v", err)
			}
			// The console's session went back to the pool: a second
			// console and power operations need no new handshake.
			rc2, err := d.OpenConsole(ctx)
			if err != nil {
				t.Fatalf("OpenConsole again: %v", err)
			}
			newCounterConsole(rc2).lines(t, 10, 10*time.Second)
			mustOp(t, "PowerOn", d.PowerOn(ctx))
			rc2.Close()
			if got := w.openSessions.Load(); got != 2 {
				t.Errorf("%d Open Session Requests after reopening, want still 2", got)
			}
		})
	}
}

// TestIPMIDriverConsoleTakesOverStalePayload: a SOL activation left by
// another client (its session still open) is deactivated and taken over.
func TestIPMIDriverConsoleTakesOverStalePayload(t *testing.T) {
	t.Parallel()
	n := startFakeNode(t, true, false)
	ctx := opCtx(t, 20*time.Second)
	other, err := rmcpplus.Dial(ctx, rmcpplus.ClientConfig{Addr: n.addr, Username: ipmiTestUser.Name,
		Password: ipmiTestUser.Password, CipherSuite: 17})
	if err != nil {
		t.Fatalf("dialling the other client: %v", err)
	}
	t.Cleanup(func() { other.Close() })
	req := ipmi.ActivatePayloadReq{PayloadType: ipmi.PayloadTypeSOL, Instance: 1, Aux: ipmi.SOLActivationAux(true, true)}
	if _, err := other.Do(ctx, ipmi.NetFnApp, ipmi.CmdActivatePayload, req.Marshal()); err != nil {
		t.Fatalf("the other client's Activate Payload: %v", err)
	}
	if !n.bmc.SOLActive() {
		t.Fatal("the other client's SOL is not active")
	}

	d, _ := newTestIPMIDriver(t, n.addr, 17, fastIPMIConfig())
	counters := &DriverCounters{}
	d.counters = counters
	rc, err := d.OpenConsole(ctx)
	if err != nil {
		t.Fatalf("OpenConsole over a stale activation: %v", err)
	}
	defer rc.Close()
	if got := rc.(*ipmiConsole).con.Activation().TakeOvers; got != 1 {
		t.Errorf("%d takeovers, want 1", got)
	}
	if got, dials := counters.SOLTakeovers.Load(), counters.Dials(); got != 1 || dials["ok"] != 1 {
		t.Errorf("counted %d takeovers and dials %v, want 1 takeover and 1 ok dial", got, dials)
	}
	newCounterConsole(rc).lines(t, 10, 10*time.Second)
}

// TestIPMIDriverConsoleQuirks: "solport" and "solpayloadsize" reach the
// SOL options, and a console with both still works.
func TestIPMIDriverConsoleQuirks(t *testing.T) {
	t.Parallel()
	n := startFakeNode(t, true, false)
	d, _ := newTestIPMIDriver(t, n.addr, 17, fastIPMIConfig(), "solport", "solpayloadsize")
	opts := d.consoleOptions()
	if !opts.IgnorePayloadPort {
		t.Error(`quirk "solport" did not set IgnorePayloadPort`)
	}
	if want := sol.MaxDataForPayloadSize(bmc.DefaultSOLPayloadSize); opts.MaxData != want {
		t.Errorf(`quirk "solpayloadsize": MaxData %d, want %d`, opts.MaxData, want)
	}
	plain, _ := newTestIPMIDriver(t, n.addr, 17, fastIPMIConfig())
	if o := plain.consoleOptions(); o.IgnorePayloadPort || o.MaxData != 0 {
		t.Errorf("no quirks, yet options %+v", o)
	}

	rc, err := d.OpenConsole(opCtx(t, 10*time.Second))
	if err != nil {
		t.Fatalf("OpenConsole with quirks: %v", err)
	}
	defer rc.Close()
	newCounterConsole(rc).lines(t, 10, 10*time.Second)
}

// TestIPMIDriverSOLKeepalive: the console's keepalive defaults to the
// driver's fast one (a dead BMC noticed within 3 s), and configured values
// are kept.
func TestIPMIDriverSOLKeepalive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                      string
		sol                       sol.ConsoleOptions
		wantInterval, wantTimeout time.Duration
	}{
		{"defaults", sol.ConsoleOptions{}, DefaultIPMISOLKeepaliveInterval, DefaultIPMISOLKeepaliveTimeout},
		{"configured", sol.ConsoleOptions{KeepaliveInterval: 7 * time.Second, KeepaliveTimeout: 3 * time.Second},
			7 * time.Second, 3 * time.Second},
		{"interval only", sol.ConsoleOptions{KeepaliveInterval: 500 * time.Millisecond},
			500 * time.Millisecond, DefaultIPMISOLKeepaliveTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := newIPMIDriver(IPMIInfo{Addr: "127.0.0.1:623", User: "u", Pass: "p"}, DriverEnv{NodeID: "n"},
				IPMIDriverConfig{SOL: tc.sol})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			o := d.consoleOptions()
			if o.KeepaliveInterval != tc.wantInterval || o.KeepaliveTimeout != tc.wantTimeout {
				t.Errorf("SOL keepalive every %v with a %v timeout; want %v and %v",
					o.KeepaliveInterval, o.KeepaliveTimeout, tc.wantInterval, tc.wantTimeout)
			}
		})
	}
}

// TestConsoleReconnectBudget: the worst case of the time from a rebooted
// BMC answering again to its console being back, from the constants that
// make it, stays inside the 5 s the issue allows (the e2e test
// TestFaultBMCRebootConsoleReconnects measures typical cases):
//   - a short reboot: the console notices only by its keepalive, at most
//     interval + timeout after the BMC went silent, and the hub reopens
//     after backoffMin;
//   - a long one: the BMC comes back just after an open attempt's last
//     retransmission; the attempt waits out its last timeout (rmcpplus
//     spreads attempt k of n over base*2*(k+1)/(n+1), retransmit.go), and
//     the next one follows after at most backoffMax.
func TestConsoleReconnectBudget(t *testing.T) {
	t.Parallel()
	const bound = 5 * time.Second
	const handshake = 500 * time.Millisecond // dial and activation on a slow network
	n := rmcpplus.DefaultRetries + 1
	lastWait := rmcpplus.DefaultTimeout * time.Duration(2*n) / time.Duration(n+1)
	cases := []struct {
		name  string
		worst time.Duration
	}{
		{"short reboot, noticed by the SOL keepalive", DefaultIPMISOLKeepaliveInterval + DefaultIPMISOLKeepaliveTimeout + backoffMin + handshake},
		{"long reboot, back after an attempt's last retransmission", lastWait + backoffMax + handshake},
	}
	for _, c := range cases {
		if c.worst > bound {
			t.Errorf("%s: the console may be back only %v after the BMC answers; want within %v", c.name, c.worst, bound)
		}
	}
	if got := nextBackoff(time.Hour); got != backoffMax {
		t.Errorf("backoff after a long wait %v, want the cap %v", got, backoffMax)
	}
}

// TestIPMIDriverConsoleLostAfterBMCReboot: a BMC reboot ends the console
// through its SOL keepalive, even though the session itself looks alive;
// neither that session nor the node's idle one is reused afterwards, so
// the next console dials at once instead of first waiting out a session
// the BMC has forgotten.
func TestIPMIDriverConsoleLostAfterBMCReboot(t *testing.T) {
	t.Parallel()
	n := startFakeNode(t, true, false)
	cfg := fastIPMIConfig()
	cfg.SOL.KeepaliveInterval = 50 * time.Millisecond
	cfg.SOL.KeepaliveTimeout = 200 * time.Millisecond
	d, w := newTestIPMIDriver(t, n.addr, 17, cfg)
	ctx := opCtx(t, 10*time.Second)
	if _, err := d.PowerStatus(ctx); err != nil { // a warm idle session
		t.Fatal(err)
	}
	rc, err := d.OpenConsole(ctx)
	if err != nil {
		t.Fatalf("OpenConsole: %v", err)
	}
	newCounterConsole(rc).lines(t, 10, 5*time.Second)
	dials := w.dials.Load()

	n.bmc.Reboot(300 * time.Millisecond)
	start := time.Now()
	_, err = io.Copy(io.Discard, rc)
	lostAfter := time.Since(start)
	if !errors.Is(err, sol.ErrSessionLost) {
		t.Fatalf("console after the BMC rebooted ended with %v; want sol.ErrSessionLost", err)
	}
	if limit := cfg.SOL.KeepaliveInterval + cfg.SOL.KeepaliveTimeout + 300*time.Millisecond; lostAfter > limit {
		t.Errorf("console noticed the reboot after %v; want within %v", lostAfter, limit)
	}
	rc.Close()
	d.pool.mu.Lock()
	idle := len(d.pool.idle)
	d.pool.mu.Unlock()
	if idle != 0 {
		t.Errorf("%d idle sessions kept after the console's session was lost; want none", idle)
	}

	if err := n.bmc.WaitRebooted(ctx, 1); err != nil {
		t.Fatal(err)
	}
	rc2, err := d.OpenConsole(ctx)
	if err != nil {
		t.Fatalf("OpenConsole after the reboot: %v", err)
	}
	defer rc2.Close()
	newCounterConsole(rc2).lines(t, 10, 5*time.Second)
	if got := d.pool.redials.Load(); got != 0 {
		t.Errorf("%d operations first tried a session the BMC had forgotten; want 0", got)
	}
	if got := w.dials.Load() - dials; got != 1 {
		t.Errorf("%d dials for the console after the reboot, want 1", got)
	}
}

func TestIPMIDriverRejectsUnknownQuirk(t *testing.T) {
	t.Parallel()
	info := IPMIInfo{Addr: "127.0.0.1:623", User: "u", Pass: "p", Quirks: []string{"solport", "fastmode"}}
	_, err := NewIPMIDriver(info, DriverEnv{NodeID: "n"}, IPMIDriverConfig{})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"fastmode"`) {
		t.Fatalf("NewIPMIDriver with an unknown quirk = %v; want ErrInvalid naming it", err)
	}
}

// TestBuiltinIPMIDriverWired: BuiltinDrivers' "ipmi" type builds this
// driver (the init in ipmidriver.go ran).
func TestBuiltinIPMIDriverWired(t *testing.T) {
	t.Parallel()
	typ, err := BuiltinDrivers().lookup("ipmi")
	if err != nil {
		t.Fatal(err)
	}
	if typ.New == nil {
		t.Fatal(`"ipmi" has no constructor`)
	}
	info, err := typ.ParseInfo([]byte(`{"addr":"127.0.0.1","user":"u","pass":"p"}`))
	if err != nil {
		t.Fatal(err)
	}
	drv, err := typ.New(info, DriverEnv{NodeID: "n"})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	d, ok := drv.(*ipmiDriver)
	if !ok {
		t.Fatalf(`"ipmi" built a %T`, drv)
	}
	if d.cfg.IdleTimeout != DefaultIPMIIdleTimeout || d.cfg.SoftOffGrace != DefaultIPMISoftOffGrace {
		t.Errorf("built-in driver config %+v; want the defaults", d.cfg)
	}
}

// timeoutNetError is a net.Error that timed out.
type timeoutNetError struct{}

func (timeoutNetError) Error() string   { return "i/o timeout" }
func (timeoutNetError) Timeout() bool   { return true }
func (timeoutNetError) Temporary() bool { return true }

func TestIPMIDriverClassify(t *testing.T) {
	t.Parallel()
	d := &ipmiDriver{info: IPMIInfo{Addr: "10.0.0.4:623"}}
	const addr = "10.0.0.4:623"
	tests := []struct {
		name     string
		err      error
		kind     error // nil: returned unchanged
		contains string
	}{
		{"no answer after retransmissions",
			&bmc.OpError{Addr: addr, Op: "power on", Err: fmt.Errorf("rmcpplus: %s: %w", addr, rmcpplus.ErrTimeout)},
			ErrTimeout, "power on"},
		{"operation deadline", fmt.Errorf("sol: activating SOL: %w", context.DeadlineExceeded), ErrTimeout, "did not answer"},
		{"socket timeout", timeoutNetError{}, ErrTimeout, "i/o timeout"},
		{"completion code",
			&bmc.OpError{Addr: addr, Op: "power on", Err: &ipmi.CompletionError{NetFn: ipmi.NetFnChassis, Cmd: ipmi.CmdChassisControl, Code: ipmi.CCInsufficientPrivilege}},
			ErrBMC, "bmc 10.0.0.4:623: power on"},
		{"wrong password", &bmc.OpError{Addr: addr, Op: "connect", Err: rmcpplus.ErrWrongPassword}, ErrBMC, "wrong password"},
		{"SOL refused", errors.New("sol: SOL payload already active"), ErrBMC, "BMC 10.0.0.4:623"},
		{"driver closed", bmc.ErrClosed, ErrInternal, "closed"},
		{"already classified", Invalidf("bad"), ErrInvalid, "bad"},
		{"client went away", context.Canceled, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := d.classify("op", tc.err)
			if tc.kind == nil {
				if got != tc.err {
					t.Fatalf("classify(%v) = %v; want it unchanged", tc.err, got)
				}
				return
			}
			if !errors.Is(got, tc.kind) {
				t.Fatalf("classify(%v) = %v; want kind %v", tc.err, got, tc.kind)
			}
			if !strings.Contains(got.Error(), tc.contains) {
				t.Errorf("classify(%v) says %q; want it to contain %q", tc.err, got, tc.contains)
			}
		})
	}
}
