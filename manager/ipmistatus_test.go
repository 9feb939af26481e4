package manager

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"obmd/fakebmc"
)

// startQuirkyNode starts one fakebmc, machine off, reproducing quirks and
// offering suites (nil: the default).
func startQuirkyNode(t *testing.T, suites []uint8, quirks ...fakebmc.Quirk) *fakebmc.Fleet {
	t.Helper()
	qs := fakebmc.QuirkSet(quirks...)
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr: "127.0.0.1:0",
		BMC:  fakebmc.BMCConfig{Users: []fakebmc.User{ipmiTestUser}, CipherSuites: suites, Quirks: qs},
	})
	if err != nil {
		t.Fatalf("StartFleet: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// The driver reports what it learned: the suite, the deviation with its
// evidence, the quirks the operator named, and its sessions. A later
// session starts from what the first learned.
func TestIPMIDriverStatus(t *testing.T) {
	t.Parallel()
	f := startQuirkyNode(t, nil, fakebmc.QuirkSuite17ZeroAuthCode, fakebmc.QuirkAdminRefused)
	d, w := newTestIPMIDriver(t, f.Addr(0), 0, fastIPMIConfig(), "solport")
	if st := d.Status(); st.CipherSuite != 0 || len(st.Quirks) != 1 || st.Quirks[0].Source != QuirkConfigured {
		t.Fatalf("Status before any session: %+v", st)
	}
	ctx := opCtx(t, 10*time.Second)
	mustOp(t, "PowerOn", d.PowerOn(ctx))
	if !f.BMC(0).PowerOn() {
		t.Fatal("machine off after PowerOn at operator privilege")
	}
	st := d.Status()
	if st.CipherSuite != 3 {
		t.Errorf("cipher suite %d, want 3 (17 is broken on this BMC)", st.CipherSuite)
	}
	byName := map[string]QuirkStatus{}
	for _, q := range st.Quirks {
		byName[q.Name] = q
	}
	if q := byName["solport"]; q.Source != QuirkConfigured {
		t.Errorf("configured quirk solport: %+v", q)
	}
	for _, name := range []string{"broken-suite", "admin-refused"} {
		q, ok := byName[name]
		if !ok || q.Source != QuirkDetected || q.Evidence == "" || q.Since.IsZero() {
			t.Errorf("detected quirk %s: %+v (all: %+v)", name, q, st.Quirks)
		}
	}
	if !strings.Contains(byName["broken-suite"].Evidence, "cipher suite 17") {
		t.Errorf("broken-suite evidence does not name the suite: %q", byName["broken-suite"].Evidence)
	}
	if got := st.Details["privilege"]; got != "operator (administrator refused by the BMC)" {
		t.Errorf("privilege detail %v", got)
	}
	if got, ok := st.Details["offered_cipher_suites"].([]uint8); !ok || !slices.Equal(got, []uint8{17, 3, 2, 1}) {
		t.Errorf("offered suites detail %v", st.Details["offered_cipher_suites"])
	}
	if st.Sessions != "1 idle, 0 in use; 1 opened, 0 replaced after the BMC stopped answering" {
		t.Errorf("sessions %q", st.Sessions)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Fatalf("Status does not encode: %v", err)
	}
	// A new session (the warm one dropped) goes straight to what worked.
	d.pool.discardIdle()
	before := w.openSessions.Load()
	mustOp(t, "PowerOff", d.PowerOff(ctx))
	if got := w.openSessions.Load() - before; got != 1 {
		t.Errorf("the second session took %d Open Session Requests, want 1", got)
	}
}

// Issue 9 defect 4: a BMC that offers only suites without
// confidentiality gets a 502 that says so and names the opt-in, with
// nothing of the management network in the tenant's message; the old
// code negotiated suite 2 here, in the clear. Pinning the suite opts in.
func TestIPMIDriverRefusesUnencryptedSuites(t *testing.T) {
	t.Parallel()
	f := startQuirkyNode(t, []uint8{1, 2})
	d, w := newTestIPMIDriver(t, f.Addr(0), 0, fastIPMIConfig())
	start := time.Now()
	_, err := d.PowerStatus(opCtx(t, 10*time.Second))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the refusal took %v", took)
	}
	if !errors.Is(err, ErrBMC) || !strings.Contains(err.Error(), "cipher_suite") || !strings.Contains(err.Error(), "[1 2]") {
		t.Fatalf("PowerStatus = %v; want a BMC error naming the offered suites and cipher_suite", err)
	}
	msg := TenantMessage(withOp("power status", err))
	if !strings.Contains(msg, "cipher_suite") || !strings.Contains(msg, "encryption") ||
		strings.Contains(msg, f.Addr(0)) || strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, ipmiTestUser.Name) {
		t.Fatalf("tenant message %q: want cipher_suite and encryption named, not the address or user", msg)
	}
	if got := w.openSessions.Load(); got != 0 {
		t.Errorf("%d Open Session Requests; the list alone decides", got)
	}

	pinned, _ := newTestIPMIDriver(t, f.Addr(0), 2, fastIPMIConfig())
	if on, err := pinned.PowerStatus(opCtx(t, 10*time.Second)); err != nil || on != "off" {
		t.Fatalf("with cipher_suite 2 pinned: %q, %v", on, err)
	}
	if got := pinned.Status().CipherSuite; got != 2 {
		t.Errorf("pinned node reports suite %d", got)
	}
}
