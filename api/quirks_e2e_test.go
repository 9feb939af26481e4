package api

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"obmd/fakebmc"
	"obmd/manager"
)

// startQuirkyE2EFakeBMC starts one fakebmc offering suites (nil: the
// default) and reproducing quirks.
func startQuirkyE2EFakeBMC(t *testing.T, suites []uint8, quirks ...fakebmc.Quirk) *fakebmc.Fleet {
	t.Helper()
	qs := fakebmc.QuirkSet(quirks...)
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr: "127.0.0.1:0",
		BMC: fakebmc.BMCConfig{
			Users:        []fakebmc.User{{Name: e2eUser, Password: []byte(e2ePass)}},
			CipherSuites: suites,
			Quirks:       qs,
		},
	})
	if err != nil {
		t.Fatalf("StartFleet: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// A node registered with no quirk on a BMC whose suite 17 is broken and
// which refuses administrator privilege: power works, and the admin's view
// shows the suite chosen and both deviations, detected, with evidence.
func TestIPMINodeShowsDetectedQuirks(t *testing.T) {
	t.Parallel()
	f := startQuirkyE2EFakeBMC(t, nil, fakebmc.QuirkSuite17ZeroAuthCode, fakebmc.QuirkAdminRefused)
	e := newIPMIE2E(t)
	n := e2eNode{e: e, id: "quirky"}
	n.tok = e.register(n.id, map[string]any{"addr": f.Addr(0), "user": e2eUser, "pass": e2ePass})
	n.post("power_on", "")
	if got := n.powerStatus(); got != "on" || !f.BMC(0).PowerOn() {
		t.Fatalf("power_status %q after power_on (machine on: %v)", got, f.BMC(0).PowerOn())
	}
	body := e.must("GET", "/node/quirky", "", true, 200)
	var st manager.NodeStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Driver == nil || st.Driver.CipherSuite != 3 {
		t.Fatalf("GET /node/quirky: %s; want the driver reporting cipher suite 3", body)
	}
	found := map[string]manager.QuirkStatus{}
	for _, q := range st.Driver.Quirks {
		found[q.Name] = q
	}
	for _, name := range []string{"broken-suite", "admin-refused"} {
		if q := found[name]; q.Source != manager.QuirkDetected || q.Evidence == "" {
			t.Errorf("quirk %s: %+v; want it detected with evidence (%s)", name, q, body)
		}
	}
	if strings.Contains(body, e2ePass) {
		t.Errorf("node status shows the password: %s", body)
	}
}

// Issue 9 defect 4 through the API: a BMC offering no encryption is a 502
// that names the opt-in and nothing of the management network; pinning
// cipher_suite opts in.
func TestIPMINodeWithoutEncryption(t *testing.T) {
	t.Parallel()
	f := startQuirkyE2EFakeBMC(t, []uint8{1, 2})
	e := newIPMIE2E(t)
	host, port, _ := net.SplitHostPort(f.Addr(0))
	n := e2eNode{e: e, id: "clear"}
	n.tok = e.register(n.id, map[string]any{"addr": f.Addr(0), "user": "opsuser", "pass": e2ePass})
	start := time.Now()
	st, body := e.call("GET", n.path("power_status"), "", false)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the refusal took %v", took)
	}
	if st != http.StatusBadGateway || !strings.Contains(body, "cipher_suite") || !strings.Contains(body, "encryption") {
		t.Fatalf("power_status: %d %s; want 502 naming encryption and cipher_suite", st, body)
	}
	for _, secret := range []string{host, port, "opsuser", e2ePass} {
		if strings.Contains(body, secret) {
			t.Errorf("tenant's error %s reveals %q", body, secret)
		}
	}
	admin := e.must("GET", "/node/clear", "", true, 200)
	if !strings.Contains(admin, "offers cipher suites [1 2]") {
		t.Errorf("the admin's last error does not say what the BMC offers: %s", admin)
	}

	pinned := e2eNode{e: e, id: "pinned"}
	pinned.tok = e.register(pinned.id, map[string]any{"addr": f.Addr(0), "user": "admin", "pass": e2ePass, "cipher_suite": 2})
	if got := pinned.powerStatus(); got != "off" {
		t.Fatalf("power_status with cipher_suite 2: %q", got)
	}
}
