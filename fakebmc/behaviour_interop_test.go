package fakebmc

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// The misbehaviours as real clients meet them: ipmitool 1.8.19 and
// FreeIPMI 1.6.10 against BMCs served in-process on loopback UDP.

func TestIpmitoolSessionTableFull(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1, func(c *FleetConfig) { c.BMC.Behaviour.SessionTableFull = true })
	start := time.Now()
	out, err := ipmitool(t, f.Addr(0), 17, "mc", "info")
	if err == nil || !strings.Contains(out, "insufficient resources for session") {
		t.Fatalf("ipmitool mc info into a full session table: %v\n%s", err, out)
	}
	// A refusal is an answer: ipmitool gives up at once, no retries.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("ipmitool took %v to see the refusal", took)
	}
	f.BMC(0).SetSessionTableFull(false)
	mustIpmitool(t, f.Addr(0), 17, "Manufacturer ID", "mc", "info")
}

func TestFreeIPMISessionTableFull(t *testing.T) {
	needFreeIPMI(t, "ipmipower")
	t.Parallel()
	f := startTestFleet(t, 1, func(c *FleetConfig) { c.BMC.Behaviour.SessionTableFull = true })
	ctx, cancel := context.WithTimeout(t.Context(), toolTimeout)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "ipmipower", "-D", "LAN_2_0", "-h", f.Addr(0),
		"--config-file", freeipmiConfig(t), "-I", "17", "--stat").CombinedOutput()
	if !strings.Contains(string(out), "BMC busy") {
		t.Fatalf("ipmipower --stat into a full session table:\n%s\nwant \"BMC busy\"", out)
	}
}

func TestIpmitoolStaleSOL(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1, func(c *FleetConfig) { c.BMC.Behaviour.StaleSOL = true })
	if !f.BMC(0).SOLActive() {
		t.Fatal("SOL inactive on a BMC started with a stale SOL")
	}
	out, err := ipmitool(t, f.Addr(0), 17, "sol", "activate")
	if err == nil || !strings.Contains(out, "SOL payload already active on another session") {
		t.Fatalf("sol activate over a stale SOL: err %v, output:\n%s", err, out)
	}
	mustIpmitool(t, f.Addr(0), 17, "", "sol", "deactivate")
	p := startSOL(t, f.Addr(0), 17)
	p.waitLine(t, "[SOL Session operational")
	p.quit(t)
}

func TestIpmitoolBlackHoleAndReboot(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1)
	b := f.BMC(0)
	b.SetBlackHole(true)
	start := time.Now()
	out, err := ipmitool(t, f.Addr(0), 17, "-N", "1", "-R", "1", "mc", "info")
	if err == nil || errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("ipmitool mc info into a black hole succeeded:\n%s", out)
	}
	t.Logf("ipmitool gave up on the black hole after %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	b.SetBlackHole(false)
	mustIpmitool(t, f.Addr(0), 17, "Chassis Power is off", "chassis", "power", "status")

	b.Reboot(500 * time.Millisecond)
	if err := b.WaitRebooted(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	mustIpmitool(t, f.Addr(0), 17, "Manufacturer ID", "mc", "info")
}

// TestOwnClientAgainstAMisbehavingFleet starts a fleet on loopback UDP
// with a share of misbehaving BMCs and checks each BMC does what
// FaultSpread.Assign says.
func TestOwnClientAgainstAMisbehavingFleet(t *testing.T) {
	spread := FaultSpread{
		Plans:    []BehaviourPlan{{SessionTableFull: true}, {StaleSOL: true}},
		Fraction: 0.4,
		Seed:     7,
	}
	f := startTestFleet(t, 10, func(c *FleetConfig) { c.Misbehave = spread })
	assigned := spread.Assign(10)
	var full, stale int
	for i, k := range assigned {
		b := f.BMC(i)
		switch {
		case k >= 0 && spread.Plans[k].SessionTableFull:
			full++
			if b.cfg.Behaviour != spread.Plans[k] {
				t.Errorf("BMC %d has plan %v, want %v", i, b.cfg.Behaviour, spread.Plans[k])
			}
			err := dialErr(t, f, i)
			if err == nil || !strings.Contains(err.Error(), "insufficient resources") {
				t.Errorf("BMC %d (session table full): Dial: %v", i, err)
			}
		case k >= 0 && spread.Plans[k].StaleSOL:
			stale++
			s := dial(t, f, i)
			wantCompletionCode(t, "Activate Payload on BMC "+f.Addr(i), activateSOL(t, s), ccPayloadActive)
		default:
			if b.cfg.Behaviour.Active() {
				t.Errorf("BMC %d misbehaves (%v) but was not chosen", i, b.cfg.Behaviour)
			}
			s := dial(t, f, i)
			if b.SOLActive() {
				t.Errorf("BMC %d, not chosen, has SOL active", i)
			}
			do(t, s, ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil)
		}
	}
	if full != 2 || stale != 2 {
		t.Fatalf("%d BMCs with a full session table and %d with a stale SOL, want 2 and 2", full, stale)
	}
}

// dialErr dials BMC i with obmd's own client and returns the error.
func dialErr(t *testing.T, f *Fleet, i int) error {
	t.Helper()
	s, err := rmcpplus.Dial(t.Context(), rmcpplus.ClientConfig{
		Addr: f.Addr(i), Username: testUser, Password: []byte(testPass), CipherSuite: 17,
		Timeout: 200 * time.Millisecond, Retries: 2,
	})
	if err == nil {
		s.Close()
	}
	return err
}
