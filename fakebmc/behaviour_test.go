package fakebmc

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// Each misbehaviour observed through obmd's own rmcpplus client, in a
// synctest bubble (fake time: a 30 s reboot costs nothing, and every
// duration below is exact).

func wantCompletionCode(t *testing.T, what string, err error, code ipmi.CompletionCode) {
	t.Helper()
	ce, ok := errors.AsType[*ipmi.CompletionError](err)
	if !ok || ce.Code != code {
		t.Fatalf("%s: %v, want completion code %v", what, err, code)
	}
}

func wantTimeout(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, rmcpplus.ErrTimeout) {
		t.Fatalf("%s: %v, want no answer (rmcpplus.ErrTimeout)", what, err)
	}
}

func activateSOL(t *testing.T, s *rmcpplus.Session) error {
	t.Helper()
	_, err := s.Do(t.Context(), ipmi.NetFnApp, ipmi.CmdActivatePayload, ipmitoolActivateSOL)
	return err
}

func TestRebootEndsSessionsAndSOLThenServesAfresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startMemBMC(t)
		old := m.mustDial(t)
		if err := activateSOL(t, old); err != nil {
			t.Fatalf("Activate Payload: %v", err)
		}
		idle := m.mustDial(t) // a session that says nothing during the reboot

		const silence = 30 * time.Second
		start := time.Now()
		m.Reboot(silence)
		if m.SOLActive() {
			t.Fatal("SOL still active right after Reboot")
		}
		if !m.Rebooting() || m.Reboots() != 1 {
			t.Fatalf("Rebooting() = %v, Reboots() = %d; want true, 1", m.Rebooting(), m.Reboots())
		}
		// Silent: neither the old session nor a new login gets an answer.
		wantTimeout(t, "Get Device ID on a session from before the reboot", deviceID(t.Context(), old))
		_, err := m.dial(t)
		wantTimeout(t, "Dial during the reboot", err)
		if !m.Rebooting() {
			t.Fatal("the silence ended early")
		}

		if err := m.WaitRebooted(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != silence {
			t.Fatalf("silent for %v, want %v", got, silence)
		}
		// Back with an empty session table: the idle session is gone...
		wantTimeout(t, "Get Device ID on a session from before the reboot, after it", deviceID(t.Context(), idle))
		// ...a new one opens and SOL is free; the host was not touched.
		fresh := m.mustDial(t)
		if err := activateSOL(t, fresh); err != nil {
			t.Fatalf("Activate Payload after the reboot: %v", err)
		}
		if !m.PowerOn() {
			t.Fatal("the reboot of the BMC powered the host off")
		}
	})
}

func TestRebootResetsVolatileSettings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startMemBMC(t)
		s := m.mustDial(t)
		// SOL parameter 0 "set in progress" and parameter 6, the volatile
		// bit rate (IPMI v2.0 Table 26-5), then boot options parameter 0
		// (Table 28-14), and persistent PXE boot flags.
		for _, req := range []struct {
			netfn ipmi.NetFn
			cmd   ipmi.Command
			data  []byte
		}{
			{ipmi.NetFnTransport, ipmi.CmdSetSOLConfigParams, []byte{0x01, 0x00, 0x01}},
			{ipmi.NetFnTransport, ipmi.CmdSetSOLConfigParams, []byte{0x01, 0x06, ipmi.SOLBitRate9600}},
			{ipmi.NetFnChassis, ipmi.CmdSetSystemBootOptions, []byte{0x00, 0x01}},
			{ipmi.NetFnChassis, ipmi.CmdSetSystemBootOptions, []byte{0x05, 0xC0, 0x04, 0x00, 0x00, 0x00}},
		} {
			if _, err := s.Do(t.Context(), req.netfn, req.cmd, req.data); err != nil {
				t.Fatalf("%s % x: %v", ipmi.CommandName(req.netfn, req.cmd), req.data, err)
			}
		}
		m.Reboot(time.Second)
		if err := m.WaitRebooted(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		s = m.mustDial(t)
		get := func(netfn ipmi.NetFn, cmd ipmi.Command, data []byte) []byte {
			rsp, err := s.Do(t.Context(), netfn, cmd, data)
			if err != nil {
				t.Fatalf("%s % x: %v", ipmi.CommandName(netfn, cmd), data, err)
			}
			return rsp
		}
		// Get SOL Configuration Parameters: revision, then the data.
		if rsp := get(ipmi.NetFnTransport, ipmi.CmdGetSOLConfigParams, []byte{0x01, 0x00, 0x00, 0x00}); rsp[1] != ipmi.SetComplete {
			t.Errorf("SOL set in progress after a reboot: % x, want %#x", rsp, ipmi.SetComplete)
		}
		if rsp := get(ipmi.NetFnTransport, ipmi.CmdGetSOLConfigParams, []byte{0x01, 0x06, 0x00, 0x00}); rsp[1] != ipmi.SOLBitRate115200 {
			t.Errorf("volatile SOL bit rate after a reboot: % x, want the non-volatile %#x", rsp, ipmi.SOLBitRate115200)
		}
		// Get System Boot Options: version, parameter, then the data.
		if rsp := get(ipmi.NetFnChassis, ipmi.CmdGetSystemBootOptions, []byte{0x00, 0x00, 0x00}); rsp[2] != ipmi.SetComplete {
			t.Errorf("boot options set in progress after a reboot: % x", rsp)
		}
		if dev := m.BootDevice(); dev != ipmi.BootDevicePXE {
			t.Errorf("boot device after a BMC reboot %v, want PXE kept", dev)
		}
	})
}

func TestPeriodicRebootsAtTheirSeededPhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const every, silence = 10 * time.Minute, time.Minute
		start := time.Now()
		m := startMemBMC(t, func(c *BMCConfig) {
			c.Faults.Seed = 42
			c.Behaviour = BehaviourPlan{RebootEvery: every, RebootSilence: silence}
		})
		first := firstReboot(every, 42)
		if first <= 0 || first > every {
			t.Fatalf("first reboot after %v, want within (0, %v]", first, every)
		}
		if err := m.WaitRebooted(t.Context(), 3); err != nil {
			t.Fatal(err)
		}
		// Reboots at first, first+every, first+2*every; back a minute later.
		if got, want := time.Since(start), first+2*every+silence; got != want {
			t.Fatalf("back from the third reboot after %v, want %v", got, want)
		}
		if n := m.Reboots(); n != 3 {
			t.Fatalf("%d reboots, want 3", n)
		}
		m.mustDial(t)
	})
}

func TestFirstRebootSpreadsOverThePeriod(t *testing.T) {
	const every = time.Hour
	seen := map[time.Duration]bool{}
	var early, late int
	for seed := range int64(100) {
		d := firstReboot(every, seed)
		if d != firstReboot(every, seed) {
			t.Fatalf("seed %d: first reboot not reproducible", seed)
		}
		if d <= 0 || d > every {
			t.Fatalf("seed %d: first reboot after %v, outside (0, %v]", seed, d, every)
		}
		seen[d] = true
		if d < every/2 {
			early++
		} else {
			late++
		}
	}
	// 100 seeds: distinct times, both halves of the period used.
	if len(seen) < 100 || early < 20 || late < 20 {
		t.Fatalf("%d distinct first reboots, %d in the first half and %d in the second", len(seen), early, late)
	}
}

func TestStaleSOLRefusesActivationUntilDeactivated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startMemBMC(t)
		if err := m.LeaveStaleSOL(); err != nil {
			t.Fatal(err)
		}
		if !m.SOLActive() {
			t.Fatal("SOL inactive after LeaveStaleSOL")
		}
		if err := m.LeaveStaleSOL(); !errors.Is(err, ErrSOLAlreadyActive) {
			t.Fatalf("a second LeaveStaleSOL: %v, want ErrSOLAlreadyActive", err)
		}
		s := m.mustDial(t)
		wantCompletionCode(t, "Activate Payload over a stale SOL", activateSOL(t, s), ccPayloadActive)
		// Get Payload Activation Status (Table 24-6): instance 1 active.
		rsp, err := s.Do(t.Context(), ipmi.NetFnApp, ipmi.CmdGetPayloadActivationStatus, []byte{byte(ipmi.PayloadTypeSOL)})
		if err != nil || rsp[1]&1 == 0 {
			t.Fatalf("Get Payload Activation Status: % x, %v; want instance 1 active", rsp, err)
		}
		// Time does not heal it before the idle timeout.
		time.Sleep(rmcpplus.DefaultIdleTimeout / 2)
		wantCompletionCode(t, "Activate Payload over a stale SOL, later", activateSOL(t, s), ccPayloadActive)

		if _, err := s.Do(t.Context(), ipmi.NetFnApp, ipmi.CmdDeactivatePayload, ipmitoolDeactivateSOL); err != nil {
			t.Fatalf("Deactivate Payload: %v", err)
		}
		if err := activateSOL(t, s); err != nil {
			t.Fatalf("Activate Payload after Deactivate Payload: %v", err)
		}
	})
}

func TestStaleSOLEndsWithItsSessionsIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 30 * time.Second
		m := startMemBMC(t, func(c *BMCConfig) { c.IdleTimeout = idle })
		start := time.Now()
		if err := m.LeaveStaleSOL(); err != nil {
			t.Fatal(err)
		}
		if err := m.WaitSOL(t.Context(), false); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != idle {
			t.Fatalf("stale SOL freed after %v, want the idle timeout %v", got, idle)
		}
		s := m.mustDial(t)
		if err := activateSOL(t, s); err != nil {
			t.Fatalf("Activate Payload after the stale session expired: %v", err)
		}
	})
}

func TestStaleSOLAtStartAndAfterAReboot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startMemBMC(t)
		if err := m.LeaveStaleSOL(); err != nil {
			t.Fatal(err)
		}
		m.Reboot(time.Second)
		if err := m.LeaveStaleSOL(); err == nil || !strings.Contains(err.Error(), "rebooting") {
			t.Fatalf("LeaveStaleSOL while rebooting: %v, want a refusal naming the reboot", err)
		}
		if err := m.WaitRebooted(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		if m.SOLActive() {
			t.Fatal("a reboot left the stale SOL active")
		}
		if err := m.LeaveStaleSOL(); err != nil {
			t.Fatalf("LeaveStaleSOL after the reboot: %v", err)
		}
	})
}

func TestSessionTableFullRefusesNewSessionsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startMemBMC(t)
		established := m.mustDial(t)
		m.SetSessionTableFull(true)
		_, err := m.dial(t)
		if err == nil || !strings.Contains(err.Error(), "0x01 insufficient resources to create a session") {
			t.Fatalf("Dial with the session table full: %v, want status 0x01 insufficient resources", err)
		}
		if errors.Is(err, rmcpplus.ErrTimeout) {
			t.Fatalf("Dial with the session table full timed out (%v): the refusal must be an answer", err)
		}
		if err := deviceID(t.Context(), established); err != nil {
			t.Fatalf("an established session with the table full: %v", err)
		}
		m.SetSessionTableFull(false)
		m.mustDial(t)
	})
}

func TestBlackHoleAnswersNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startMemBMC(t)
		used := m.mustDial(t)
		spared := m.mustDial(t) // says nothing during the black hole
		m.SetBlackHole(true)
		start := time.Now()
		wantTimeout(t, "Get Device ID into a black hole", deviceID(t.Context(), used))
		if got := time.Since(start); got < time.Second {
			t.Fatalf("gave up after %v, before the client's attempts ran out", got)
		}
		_, err := m.dial(t)
		wantTimeout(t, "Dial into a black hole", err)
		m.SetBlackHole(false)
		// Nothing was forgotten: a session not used meanwhile goes on.
		if err := deviceID(t.Context(), spared); err != nil {
			t.Fatalf("a session after the black hole ended: %v", err)
		}
		m.mustDial(t)
	})
}

func TestSlowAnswersArriveAfterTheDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startMemBMC(t)
		const slow = 700 * time.Millisecond
		// Attempts of 1.33 s and 2.67 s: the first waits long enough, so
		// no retransmission muddles the timing.
		patient := func(c *rmcpplus.ClientConfig) { c.Timeout = 2 * time.Second }
		s := m.mustDial(t, patient)
		m.SetSlowAnswers(slow)
		for range 3 {
			start := time.Now()
			if err := deviceID(t.Context(), s); err != nil {
				t.Fatalf("Get Device ID from a slow BMC: %v", err)
			}
			if got := time.Since(start); got != slow {
				t.Fatalf("answer after %v, want exactly %v", got, slow)
			}
		}
		// A login is five exchanges (Get Channel Authentication
		// Capabilities, Open Session, RAKP 1, RAKP 3, Set Session
		// Privilege Level), each answered late.
		start := time.Now()
		m.mustDial(t, patient)
		if got := time.Since(start); got != 5*slow {
			t.Fatalf("login took %v, want 5 × %v", got, slow)
		}
		m.SetSlowAnswers(0)
		start = time.Now()
		if err := deviceID(t.Context(), s); err != nil || time.Since(start) != 0 {
			t.Fatalf("Get Device ID after slow answers ended: %v after %v", err, time.Since(start))
		}
	})
}

func TestBehaviourPlanAtStart(t *testing.T) {
	cases := []struct {
		name  string
		plan  BehaviourPlan
		check func(t *testing.T, m *memBMC)
	}{
		{"black hole", BehaviourPlan{BlackHole: true}, func(t *testing.T, m *memBMC) {
			_, err := m.dial(t)
			wantTimeout(t, "Dial", err)
		}},
		{"session table full", BehaviourPlan{SessionTableFull: true}, func(t *testing.T, m *memBMC) {
			if _, err := m.dial(t); err == nil || !strings.Contains(err.Error(), "insufficient resources") {
				t.Fatalf("Dial: %v, want insufficient resources", err)
			}
		}},
		{"slow answers", BehaviourPlan{SlowAnswers: time.Second}, func(t *testing.T, m *memBMC) {
			start := time.Now()
			m.mustDial(t, func(c *rmcpplus.ClientConfig) { c.Timeout = 3 * time.Second })
			if got := time.Since(start); got != 5*time.Second {
				t.Fatalf("login took %v, want 5 s", got)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc.check(t, startMemBMC(t, func(c *BMCConfig) { c.Behaviour = tc.plan }))
			})
		})
	}
}
