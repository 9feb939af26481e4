package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"obmd/fakebmc"
	"obmd/ipmi"
)

// TestDaemonHILFlowIPMI: HIL's flow against a real obmd process with an
// ipmi node on fakebmc (cipher suite 17). Power and boot state are read from
// the simulated machine, never through obmd; a second token revokes the
// first; deleting the node ends its SOL session on the BMC; the BMC
// password never reaches the logs.
func TestDaemonHILFlowIPMI(t *testing.T) {
	t.Parallel()
	const bmcPass = "flow-Pw-4f8a"
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr: "127.0.0.1:0",
		BMC: fakebmc.BMCConfig{
			Users:  []fakebmc.User{{Name: "admin", Password: []byte(bmcPass)}},
			Timing: fakebmc.PowerTiming{CycleOff: 20 * time.Millisecond, SoftShutdown: 20 * time.Millisecond},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	bmc := f.BMC(0)

	d := startDaemon(t, baseEnv(":memory:"))
	node := fmt.Sprintf(`{"type": "ipmi", "info": {"addr": %q, "user": "admin", "pass": %q, "cipher_suite": 17}}`, f.Addr(0), bmcPass)
	d.expect("PUT", "/node/n1", node, true, 200)
	d.expect("PUT", "/node/n1", node, true, 409)
	d.expect("PUT", "/node/n2", `{"type": "ipmi", "info": {"addr": "127.0.0.1", "user": "admin"}}`, true, 400)
	q := "?token=" + d.token("n1")

	d.expect("POST", "/node/n1/power_off"+q, "", false, 200)
	if bmc.PowerOn() {
		t.Error("machine on after power_off")
	}
	if b := d.expect("GET", "/node/n1/power_status"+q, "", false, 200); string(b) != `{"power_status":"off"}` {
		t.Errorf("power_status after power_off: %s", b)
	}
	d.expect("POST", "/node/n1/power_on"+q, "", false, 200)
	if !bmc.PowerOn() {
		t.Error("machine off after power_on")
	}
	d.expect("POST", "/node/n1/power_cycle"+q, `{"force": true}`, false, 200)
	for _, dev := range []struct {
		name string
		want ipmi.BootDevice
	}{{"pxe", ipmi.BootDevicePXE}, {"disk", ipmi.BootDeviceDisk}, {"none", ipmi.BootDeviceNone}} {
		d.expect("PUT", "/node/n1/boot_device"+q, `{"bootdev": "`+dev.name+`"}`, false, 200)
		if fl := bmc.BootFlags(); fl.Device != dev.want || !fl.Valid || !fl.Persistent {
			t.Errorf("after bootdev %s the BMC holds %+v", dev.name, fl)
		}
	}
	d.expect("PUT", "/node/n1/boot_device"+q, `{"bootdev": "floppy"}`, false, 400)

	resp, err := http.Get(d.url + "/node/n1/console" + q)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("console: %d", resp.StatusCode)
	}
	r := bufio.NewReader(resp.Body)
	last := -1
	for range 20 {
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
	if !bmc.SOLActive() {
		t.Fatal("SOL not active on the BMC while a viewer watches")
	}

	// A new token revokes the old one: the viewer's stream ends, calls fail.
	q2 := "?token=" + d.token("n1")
	if _, err := r.ReadString(0); err == nil {
		t.Error("console stream still open after a new token")
	}
	d.expect("GET", "/node/n1/power_status"+q, "", false, 401)
	d.expect("GET", "/node/n1/power_status"+q2, "", false, 200)
	d.expect("DELETE", "/node/n1/token", "", true, 200)
	d.expect("GET", "/node/n1/power_status"+q2, "", false, 401)
	d.expect("DELETE", "/node/n1/token", "", true, 200)

	d.expect("DELETE", "/node/n1", "", true, 200)
	d.expect("DELETE", "/node/n1", "", true, 404)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bmc.WaitSOL(ctx, false); err != nil {
		t.Errorf("SOL still active on the BMC after the node was deleted: %v", err)
	}

	d.stop(syscall.SIGTERM, 6*time.Second)
	if strings.Contains(d.logs.String(), bmcPass) {
		t.Errorf("obmd logged the BMC password:\n%s", d.logs.String())
	}
}
