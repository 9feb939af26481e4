package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"obmd/fakebmc"
	"obmd/internal/peertest"
	"obmd/ipmi"
)

// TestDaemonHILFlowRedfish: HIL's flow against a real obmd process with a
// redfish node on fakebmc -redfish (certificate pinned with ca_cert, SOL
// through the node's IPMI console). What obmd did through Redfish is
// checked through the other protocol: ipmitool reads the chassis power
// and boot flags over IPMI, and the simulated machine counts its boots.
// Deleting the node deletes its Redfish session on the BMC; the password
// never reaches the logs.
func TestDaemonHILFlowRedfish(t *testing.T) {
	t.Parallel()
	const bmcPass = "rf-flow-Pw-61"
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr: "127.0.0.1:0",
		BMC: fakebmc.BMCConfig{
			Users:   []fakebmc.User{{Name: "admin", Password: []byte(bmcPass)}},
			StartOn: true,
			Timing:  fakebmc.PowerTiming{CycleOff: 20 * time.Millisecond, SoftShutdown: 20 * time.Millisecond},
			Redfish: &fakebmc.RedfishConfig{},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	bmc := f.BMC(0)
	tg := peertest.Target{Port: bmc.Addr().Port, Username: "admin", Password: bmcPass}
	ipmitool := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res := peertest.Ipmitool(t, ctx, tg, append([]string{"-I", "lanplus", "-C", "17"}, args...)...)
		if !res.OK() {
			t.Fatalf("ipmitool: %s", res)
		}
		return res.Stdout
	}

	d := startDaemon(t, baseEnv(":memory:"))
	info, _ := json.Marshal(map[string]any{
		"addr": bmc.RedfishURL(), "user": "admin", "pass": bmcPass,
		"ca_cert": string(f.RedfishCertPEM()),
		"console": map[string]any{"type": "ipmi", "addr": f.Addr(0), "cipher_suite": 17},
	})
	node := `{"type": "redfish", "info": ` + string(info) + `}`
	d.expect("PUT", "/node/rf1", node, true, 200)
	d.expect("PUT", "/node/rf1", node, true, 409)
	d.expect("PUT", "/node/rf2", `{"type": "redfish", "info": {"addr": "127.0.0.1", "user": "admin"}}`, true, 400)
	q := "?token=" + d.token("rf1")

	d.expect("POST", "/node/rf1/power_off"+q, "", false, 200)
	if got := ipmitool("chassis", "power", "status"); !strings.Contains(got, "Chassis Power is off") {
		t.Errorf("after power_off ipmitool says %q", got)
	}
	if b := d.expect("GET", "/node/rf1/power_status"+q, "", false, 200); string(b) != `{"power_status":"off"}` {
		t.Errorf("power_status after power_off: %s", b)
	}
	d.expect("POST", "/node/rf1/power_on"+q, "", false, 200)
	if got := ipmitool("chassis", "power", "status"); !strings.Contains(got, "Chassis Power is on") {
		t.Errorf("after power_on ipmitool says %q", got)
	}
	for _, force := range []bool{true, false} {
		boots := len(bmc.Sim().Boots())
		d.expect("POST", "/node/rf1/power_cycle"+q, fmt.Sprintf(`{"force": %t}`, force), false, 200)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := bmc.Sim().WaitPower(ctx, true)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if got := len(bmc.Sim().Boots()); got != boots+1 {
			t.Errorf("power_cycle force=%t: the machine booted %d times, want once", force, got-boots)
		}
	}
	for _, dev := range []struct {
		name, ipmitool string
		want           ipmi.BootDevice
	}{{"pxe", "Force PXE", ipmi.BootDevicePXE}, {"disk", "Force Boot from default Hard-Drive", ipmi.BootDeviceDisk}, {"none", "No override", ipmi.BootDeviceNone}} {
		d.expect("PUT", "/node/rf1/boot_device"+q, `{"bootdev": "`+dev.name+`"}`, false, 200)
		if fl := bmc.BootFlags(); fl.Device != dev.want || !fl.Valid || !fl.Persistent {
			t.Errorf("after bootdev %s the BMC holds %+v", dev.name, fl)
		}
		if got := ipmitool("chassis", "bootparam", "get", "5"); !strings.Contains(got, dev.ipmitool) || !strings.Contains(got, "Options apply to all future boots") {
			t.Errorf("after bootdev %s ipmitool reads:\n%s", dev.name, got)
		}
	}
	d.expect("PUT", "/node/rf1/boot_device"+q, `{"bootdev": "floppy"}`, false, 400)

	// The console is SOL over IPMI on the same BMC.
	resp, err := http.Get(d.url + "/node/rf1/console" + q)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("console: %d", resp.StatusCode)
	}
	r := bufio.NewReader(resp.Body)
	last := -1
	for range 10 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
		if err != nil || (last >= 0 && v != last+1) {
			t.Fatalf("console line %q after %d", line, last)
		}
		last = v
	}

	if st := bmc.RedfishStats(); st.Logins != 1 || st.Sessions != 1 {
		t.Errorf("Redfish logins %d, sessions %d: want one session for the whole flow", st.Logins, st.Sessions)
	}
	d.expect("DELETE", "/node/rf1", "", true, 200)
	if st := bmc.RedfishStats(); st.Sessions != 0 {
		t.Errorf("%d Redfish sessions left on the BMC after the node was deleted", st.Sessions)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bmc.WaitSOL(ctx, false); err != nil {
		t.Errorf("SOL still active after the node was deleted: %v", err)
	}

	d.stop(syscall.SIGTERM, 6*time.Second)
	if strings.Contains(d.logs.String(), bmcPass) {
		t.Errorf("obmd logged the BMC password:\n%s", d.logs.String())
	}
}

// TestDaemonShutdownDeletesRedfishSession: SIGTERM deletes the node's
// Redfish session on the BMC.
func TestDaemonShutdownDeletesRedfishSession(t *testing.T) {
	t.Parallel()
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr: "127.0.0.1:0",
		BMC:  fakebmc.BMCConfig{Users: []fakebmc.User{{Name: "admin", Password: []byte("pw")}}, StartOn: true, Redfish: &fakebmc.RedfishConfig{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	d := startDaemon(t, baseEnv(":memory:"))
	info, _ := json.Marshal(map[string]any{"addr": f.RedfishURL(0), "user": "admin", "pass": "pw", "ca_cert": string(f.RedfishCertPEM())})
	d.expect("PUT", "/node/rf", `{"type": "redfish", "info": `+string(info)+`}`, true, 200)
	d.expect("GET", "/node/rf/power_status?token="+d.token("rf"), "", false, 200)
	if got := f.BMC(0).RedfishStats().Sessions; got != 1 {
		t.Fatalf("%d sessions open after a call, want 1", got)
	}
	d.stop(syscall.SIGTERM, 6*time.Second)
	if got := f.BMC(0).RedfishStats().Sessions; got != 0 {
		t.Errorf("%d Redfish sessions left after obmd shut down", got)
	}
}
