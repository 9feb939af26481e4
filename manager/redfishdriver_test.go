package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"obmd/fakebmc"
	"obmd/internal/syncbuf"
	"obmd/ipmi"
	"obmd/redfish"
)

// Tests of the redfish driver against fakebmc's Redfish service. The
// machine's state is read from fakebmc (the simulated machine, which IPMI
// also serves), never through the driver under test; logins, resets and
// refusals are counted by the service.

const testRFPass = "rf-Pw-93kq"

type rfNode struct {
	fleet *fakebmc.Fleet
	bmc   *fakebmc.BMC
	sim   *fakebmc.SimMachine
}

// startRFNode starts one fakebmc serving Redfish with the given quirks.
func startRFNode(t *testing.T, rc fakebmc.RedfishConfig) rfNode {
	t.Helper()
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr: "127.0.0.1:0",
		BMC: fakebmc.BMCConfig{
			Users:   []fakebmc.User{{Name: "admin", Password: []byte(testRFPass)}},
			StartOn: true,
			Timing:  fakebmc.PowerTiming{CycleOff: 30 * time.Millisecond, SoftShutdown: 30 * time.Millisecond},
			Redfish: &rc,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return rfNode{fleet: f, bmc: f.BMC(0), sim: f.BMC(0).Sim()}
}

// rfInfoJSON is a node's info for n, with extra fields.
func (n rfNode) infoJSON(extra map[string]any) json.RawMessage {
	info := map[string]any{"addr": n.bmc.RedfishURL(), "user": "admin", "pass": testRFPass,
		"ca_cert": string(n.fleet.RedfishCertPEM())}
	for k, v := range extra {
		if v == nil {
			delete(info, k)
		} else {
			info[k] = v
		}
	}
	raw, _ := json.Marshal(info)
	return raw
}

func fastRFConfig() RedfishDriverConfig {
	return RedfishDriverConfig{SoftOffGrace: 2 * time.Second, PowerPollInterval: 10 * time.Millisecond, TaskPoll: 20 * time.Millisecond}
}

// newTestRFDriver builds a driver for n; its log goes to the returned
// buffer.
func newTestRFDriver(t *testing.T, n rfNode, extra map[string]any, cfg RedfishDriverConfig) (*redfishDriver, *syncbuf.Buffer) {
	t.Helper()
	info, err := ParseRedfishInfo(n.infoJSON(extra))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	d, err := newRedfishDriver(info, DriverEnv{NodeID: "n", Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, logs
}

func awaitSim(t *testing.T, m *fakebmc.SimMachine, on bool) {
	t.Helper()
	if err := m.WaitPower(opCtx(t, 10*time.Second), on); err != nil {
		t.Fatal(err)
	}
}

// TestRedfishDriverPower: HIL's power and boot calls do what the ipmi
// driver does, on one session, and Close deletes it.
func TestRedfishDriverPower(t *testing.T) {
	t.Parallel()
	n := startRFNode(t, fakebmc.RedfishConfig{})
	d, logs := newTestRFDriver(t, n, nil, fastRFConfig())
	ctx := opCtx(t, 30*time.Second)
	resets := func() map[string]int { return n.bmc.RedfishStats().Resets }

	mustOp(t, "power off", d.PowerOff(ctx))
	if n.bmc.PowerOn() {
		t.Fatal("machine on after power off")
	}
	if st, err := d.PowerStatus(ctx); err != nil || st != "off" {
		t.Fatalf("power status after off: %q, %v", st, err)
	}
	mustOp(t, "power off again", d.PowerOff(ctx))
	if got := resets()["ForceOff"]; got != 1 {
		t.Errorf("ForceOff sent %d times for two power offs; a node already off is left alone", got)
	}

	mustOp(t, "power on", d.PowerOn(ctx))
	if !n.bmc.PowerOn() {
		t.Fatal("machine off after power on")
	}
	mustOp(t, "power on again", d.PowerOn(ctx))
	if got := resets()["On"]; got != 1 {
		t.Errorf("On sent %d times for two power ons", got)
	}

	boots := len(n.sim.Boots())
	mustOp(t, "forced cycle", d.PowerCycle(ctx, true))
	if got := resets()["PowerCycle"]; got != 1 {
		t.Errorf("forced cycle: resets %v, want one PowerCycle (offered by this BMC)", resets())
	}
	awaitSim(t, n.sim, true)
	if got := len(n.sim.Boots()); got != boots+1 {
		t.Errorf("forced cycle: %d boots, want %d", got, boots+1)
	}

	mustOp(t, "soft cycle", d.PowerCycle(ctx, false))
	if r := resets(); r["GracefulShutdown"] != 1 || r["On"] != 2 || r["ForceOff"] != 1 {
		t.Errorf("soft cycle: resets %v, want one GracefulShutdown then On, no ForceOff", r)
	}
	if !n.bmc.PowerOn() {
		t.Error("machine off after a soft cycle")
	}

	mustOp(t, "power off", d.PowerOff(ctx))
	mustOp(t, "cycle while off", d.PowerCycle(ctx, true))
	if r := resets(); r["On"] != 3 || r["PowerCycle"] != 1 {
		t.Errorf("a cycle of a node that is off powers it on: resets %v", r)
	}
	if !n.bmc.PowerOn() {
		t.Error("machine off after cycling it from off")
	}

	for _, dev := range []struct {
		name string
		want ipmi.BootDevice
	}{{"pxe", ipmi.BootDevicePXE}, {"disk", ipmi.BootDeviceDisk}, {"none", ipmi.BootDeviceNone}} {
		mustOp(t, "boot "+dev.name, d.SetBootDevice(ctx, dev.name))
		if fl := n.bmc.BootFlags(); fl.Device != dev.want || !fl.Valid || !fl.Persistent {
			t.Errorf("after boot device %s the machine holds %+v, want %v valid and persistent", dev.name, fl, dev.want)
		}
	}
	if err := d.SetBootDevice(ctx, "floppy"); !errors.Is(err, ErrInvalid) {
		t.Errorf("boot device floppy: %v, want ErrInvalid", err)
	}

	st := n.bmc.RedfishStats()
	if st.Logins != 1 || st.Sessions != 1 || st.BasicRequests != 0 {
		t.Errorf("after the calls: %d logins, %d sessions, %d Basic requests; want one session reused", st.Logins, st.Sessions, st.BasicRequests)
	}
	ds := d.Status()
	if !strings.Contains(ds.Sessions, "session open") || ds.Details["system"] != "/redfish/v1/Systems/1" {
		t.Errorf("status: %+v", ds)
	}
	d.Close()
	if st := n.bmc.RedfishStats(); st.Sessions != 0 {
		t.Errorf("%d sessions left on the BMC after Close", st.Sessions)
	}
	if strings.Contains(logs.String(), testRFPass) {
		t.Errorf("the driver logged the password:\n%s", logs)
	}
}

// TestRedfishDriverStatusMapping: PoweringOn and PoweringOff report the
// state the node is heading to.
func TestRedfishDriverStatusMapping(t *testing.T) {
	t.Parallel()
	for st, want := range map[string]string{"On": "on", "PoweringOn": "on", "Paused": "on", "Off": "off", "PoweringOff": "off"} {
		if got := powerStatusName(redfish.PowerState(st)); got != want {
			t.Errorf("PowerState %s is %q, want %q", st, got, want)
		}
	}
}

// TestRedfishDriverQuirks: each quirk of fakebmc -redfish-quirks is
// handled with no configuration, the effect checked on the machine.
func TestRedfishDriverQuirks(t *testing.T) {
	t.Parallel()
	t.Run("etag-required", func(t *testing.T) {
		t.Parallel()
		n := startRFNode(t, fakebmc.RedfishConfig{Quirks: fakebmc.RedfishQuirks{fakebmc.RedfishETagRequired: true}})
		d, _ := newTestRFDriver(t, n, nil, fastRFConfig())
		ctx := opCtx(t, 20*time.Second)
		mustOp(t, "boot pxe", d.SetBootDevice(ctx, "pxe"))
		mustOp(t, "boot disk", d.SetBootDevice(ctx, "disk"))
		if fl := n.bmc.BootFlags(); fl.Device != ipmi.BootDeviceDisk || !fl.Persistent {
			t.Errorf("boot flags %+v, want disk, persistent", fl)
		}
		if got := n.bmc.RedfishStats().PreconditionFailed; got != 1 {
			t.Errorf("%d PATCHes refused with 412, want 1 (then If-Match is sent from the start)", got)
		}
		if !hasQuirk(d.Status(), "etag-required") {
			t.Errorf("status does not report etag-required: %+v", d.Status())
		}
	})
	t.Run("no-continuous", func(t *testing.T) {
		t.Parallel()
		n := startRFNode(t, fakebmc.RedfishConfig{Quirks: fakebmc.RedfishQuirks{fakebmc.RedfishNoContinuous: true}})
		d, logs := newTestRFDriver(t, n, nil, fastRFConfig())
		ctx := opCtx(t, 30*time.Second)
		mustOp(t, "boot pxe", d.SetBootDevice(ctx, "pxe"))
		if fl := n.bmc.BootFlags(); fl.Device != ipmi.BootDevicePXE || !fl.Valid || fl.Persistent {
			t.Fatalf("boot flags %+v, want a one-time PXE override", fl)
		}
		// Every boot obmd causes finds the override: it is set again
		// before each.
		for i, cycle := range []func() error{
			func() error { return d.PowerCycle(ctx, true) },
			func() error { return d.PowerCycle(ctx, false) },
			func() error {
				if err := d.PowerOff(ctx); err != nil {
					return err
				}
				return d.PowerOn(ctx)
			},
		} {
			before := len(n.sim.Boots())
			mustOp(t, fmt.Sprintf("boot %d", i), cycle())
			awaitSim(t, n.sim, true)
			boots := n.sim.Boots()
			if len(boots) != before+1 {
				t.Fatalf("boot %d: %d boots, want %d", i, len(boots), before+1)
			}
			var fl ipmi.BootFlags
			_ = fl.Unmarshal(boots[len(boots)-1].BootFlags[:])
			if !fl.Valid || fl.Device != ipmi.BootDevicePXE {
				t.Errorf("boot %d found boot flags %+v, want the PXE override", i, fl)
			}
		}
		mustOp(t, "boot none", d.SetBootDevice(ctx, "none"))
		if fl := n.bmc.BootFlags(); fl.Valid {
			t.Errorf("after none the boot flags are %+v, want no override", fl)
		}
		if !hasQuirk(d.Status(), "no-continuous") || !strings.Contains(logs.String(), "Continuous") {
			t.Errorf("the fallback is not reported: status %+v\nlog:\n%s", d.Status(), logs)
		}
	})
	t.Run("no-powercycle", func(t *testing.T) {
		t.Parallel()
		n := startRFNode(t, fakebmc.RedfishConfig{Quirks: fakebmc.RedfishQuirks{fakebmc.RedfishNoPowerCycle: true}})
		d, _ := newTestRFDriver(t, n, nil, fastRFConfig())
		ctx := opCtx(t, 20*time.Second)
		before := len(n.sim.Boots())
		mustOp(t, "forced cycle", d.PowerCycle(ctx, true))
		if r := n.bmc.RedfishStats().Resets; r["ForceRestart"] != 1 || r["PowerCycle"] != 0 {
			t.Errorf("resets %v, want one ForceRestart", r)
		}
		if got := len(n.sim.Boots()); got != before+1 {
			t.Errorf("%d boots after the forced cycle, want %d", got, before+1)
		}
		if !hasQuirk(d.Status(), "no-powercycle") {
			t.Errorf("status: %+v", d.Status())
		}
	})
	t.Run("sessions-only", func(t *testing.T) {
		t.Parallel()
		n := startRFNode(t, fakebmc.RedfishConfig{Quirks: fakebmc.RedfishQuirks{fakebmc.RedfishSessionsOnly: true}})
		d, _ := newTestRFDriver(t, n, nil, fastRFConfig())
		ctx := opCtx(t, 20*time.Second)
		mustOp(t, "power off", d.PowerOff(ctx))
		if n.bmc.PowerOn() {
			t.Error("machine on after power off")
		}
		if st := n.bmc.RedfishStats(); st.Logins != 1 || st.BasicRequests != 0 || st.RefusedRequests != 0 {
			t.Errorf("stats %+v, want one login and no Basic", st)
		}
	})
	t.Run("no-sessions", func(t *testing.T) {
		t.Parallel()
		n := startRFNode(t, fakebmc.RedfishConfig{Quirks: fakebmc.RedfishQuirks{fakebmc.RedfishNoSessions: true}})
		d, _ := newTestRFDriver(t, n, nil, fastRFConfig())
		ctx := opCtx(t, 20*time.Second)
		mustOp(t, "power off", d.PowerOff(ctx))
		if n.bmc.PowerOn() {
			t.Error("machine on after power off")
		}
		if st := n.bmc.RedfishStats(); st.Logins != 0 || st.BasicRequests == 0 {
			t.Errorf("stats %+v, want Basic and no login attempt", st)
		}
		if !hasQuirk(d.Status(), "no-sessions") {
			t.Errorf("status: %+v", d.Status())
		}
	})
	t.Run("task-202", func(t *testing.T) {
		t.Parallel()
		n := startRFNode(t, fakebmc.RedfishConfig{Quirks: fakebmc.RedfishQuirks{fakebmc.RedfishTask202: true}, TaskDuration: 150 * time.Millisecond})
		d, _ := newTestRFDriver(t, n, nil, fastRFConfig())
		ctx := opCtx(t, 20*time.Second)
		mustOp(t, "power off", d.PowerOff(ctx))
		// The action happens when the task runs: power off returning means
		// the task was followed to its end.
		if n.bmc.PowerOn() {
			t.Error("power off returned before the BMC's task turned the machine off")
		}
		mustOp(t, "soft cycle from off", d.PowerCycle(ctx, false))
		if !n.bmc.PowerOn() {
			t.Error("power cycle returned before the BMC's task turned the machine on")
		}
		if st := n.bmc.RedfishStats(); st.TasksStarted != 2 {
			t.Errorf("%d tasks, want 2", st.TasksStarted)
		}
	})
	t.Run("slow-poweron", func(t *testing.T) {
		t.Parallel()
		n := startRFNode(t, fakebmc.RedfishConfig{Quirks: fakebmc.RedfishQuirks{fakebmc.RedfishSlowPowerOn: true}, SlowPowerOn: 500 * time.Millisecond})
		d, _ := newTestRFDriver(t, n, nil, fastRFConfig())
		ctx := opCtx(t, 20*time.Second)
		mustOp(t, "power off", d.PowerOff(ctx))
		mustOp(t, "power on", d.PowerOn(ctx))
		if st, err := d.PowerStatus(ctx); err != nil || st != "on" {
			t.Errorf("power status while PoweringOn: %q, %v; want on", st, err)
		}
		mustOp(t, "power on while powering on", d.PowerOn(ctx))
		if got := n.bmc.RedfishStats().Resets["On"]; got != 1 {
			t.Errorf("On sent %d times; a node powering on is left alone", got)
		}
		awaitSim(t, n.sim, true)
		mustOp(t, "soft cycle", d.PowerCycle(ctx, false))
		awaitSim(t, n.sim, true)
	})
}

func hasQuirk(ds DriverStatus, name string) bool {
	for _, q := range ds.Quirks {
		if q.Name == name && q.Source == QuirkDetected {
			return true
		}
	}
	return false
}

// TestRedfishDriverReloginAfterSessionLost: a BMC that forgot the session
// (restart, timeout) answers 401; the driver logs in again once and the
// call succeeds.
func TestRedfishDriverReloginAfterSessionLost(t *testing.T) {
	t.Parallel()
	n := startRFNode(t, fakebmc.RedfishConfig{})
	d, _ := newTestRFDriver(t, n, nil, fastRFConfig())
	ctx := opCtx(t, 20*time.Second)
	if _, err := d.PowerStatus(ctx); err != nil {
		t.Fatal(err)
	}
	n.bmc.DropRedfishSessions()
	if st, err := d.PowerStatus(ctx); err != nil || st != "on" {
		t.Fatalf("power status after the BMC forgot the session: %q, %v", st, err)
	}
	if st := n.bmc.RedfishStats(); st.Logins != 2 || st.Sessions != 1 {
		t.Errorf("stats %+v, want 2 logins and one session", st)
	}
}

// TestRedfishDriverIdleSessionDeleted: the session is deleted on the BMC
// after IdleTimeout without a call.
func TestRedfishDriverIdleSessionDeleted(t *testing.T) {
	t.Parallel()
	n := startRFNode(t, fakebmc.RedfishConfig{})
	cfg := fastRFConfig()
	cfg.IdleTimeout = 100 * time.Millisecond
	d, _ := newTestRFDriver(t, n, nil, cfg)
	if _, err := d.PowerStatus(opCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// No event tells when the BMC processed the DELETE: poll with a
	// deadline.
	deadline := time.Now().Add(10 * time.Second)
	for n.bmc.RedfishStats().Sessions != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the idle session was not deleted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := d.PowerStatus(opCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := n.bmc.RedfishStats().Logins; got != 2 {
		t.Errorf("%d logins, want 2 (one after the idle logout)", got)
	}
}

// TestRedfishDriverWrongPassword: a refused login is a 502 that tells the
// tenant to ask the operator, and further calls do not log in again
// (no retry storm that would lock the account).
func TestRedfishDriverWrongPassword(t *testing.T) {
	t.Parallel()
	n := startRFNode(t, fakebmc.RedfishConfig{})
	d, _ := newTestRFDriver(t, n, map[string]any{"pass": "wrong-pw"}, fastRFConfig())
	ctx := opCtx(t, 20*time.Second)
	for i := range 5 {
		_, err := d.PowerStatus(ctx)
		if !errors.Is(err, ErrBMC) {
			t.Fatalf("call %d: %v, want ErrBMC", i, err)
		}
		msg := TenantMessage(err)
		if !strings.Contains(msg, "credentials") || strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "admin") {
			t.Errorf("tenant message %q", msg)
		}
	}
	if st := n.bmc.RedfishStats(); st.Logins != 1 || st.FailedLogins != 1 {
		t.Errorf("stats %+v: want exactly one login attempt for five calls", st)
	}
	if ds := d.Status(); ds.Details["login_refused"] == nil {
		t.Errorf("status does not show the refusal: %+v", ds)
	}
}

// TestRedfishDriverTLS: without ca_cert the self-signed certificate is
// refused with a 502 naming TLS; verify_tls false is the explicit opt-out.
func TestRedfishDriverTLS(t *testing.T) {
	t.Parallel()
	n := startRFNode(t, fakebmc.RedfishConfig{})
	d, _ := newTestRFDriver(t, n, map[string]any{"ca_cert": nil}, fastRFConfig())
	_, err := d.PowerStatus(opCtx(t, 10*time.Second))
	if !errors.Is(err, ErrBMC) || !strings.Contains(err.Error(), "TLS") || !strings.Contains(err.Error(), "ca_cert") {
		t.Fatalf("without ca_cert: %v, want a 502 naming TLS and ca_cert", err)
	}
	if msg := TenantMessage(err); !strings.Contains(msg, "TLS") || strings.Contains(msg, "127.0.0.1") {
		t.Errorf("tenant message %q", msg)
	}
	if st := n.bmc.RedfishStats(); st.Logins != 0 {
		t.Errorf("the password went to an unverified service: %d logins", st.Logins)
	}
	d2, _ := newTestRFDriver(t, n, map[string]any{"ca_cert": nil, "verify_tls": false}, fastRFConfig())
	if _, err := d2.PowerStatus(opCtx(t, 10*time.Second)); err != nil {
		t.Errorf("verify_tls false: %v", err)
	}
}

// TestRedfishDriverConsole: without console the node has none (501);
// with {"type": "ipmi"} SOL comes from the same BMC, same credentials.
func TestRedfishDriverConsole(t *testing.T) {
	t.Parallel()
	n := startRFNode(t, fakebmc.RedfishConfig{})
	d, _ := newTestRFDriver(t, n, nil, fastRFConfig())
	if _, err := d.OpenConsole(opCtx(t, 5*time.Second)); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "no console") {
		t.Errorf("console without console info: %v, want ErrUnsupported saying so", err)
	}
	d2, _ := newTestRFDriver(t, n, map[string]any{"console": map[string]any{"type": "ipmi", "addr": n.fleet.Addr(0), "cipher_suite": 17}}, fastRFConfig())
	rc, err := d2.OpenConsole(opCtx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	newCounterConsole(rc).lines(t, 5, 10*time.Second)
	rc.Close()
}
