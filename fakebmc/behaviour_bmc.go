package fakebmc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"obmd/ipmi"
)

// A BMC's misbehaviour at run time: the switches behind BehaviourPlan,
// which tests and the fleet's timers flip while the BMC serves.

// Behaviour is the behaviour plan the BMC was configured with (the
// setters below change the BMC, not this).
func (b *BMC) Behaviour() BehaviourPlan { return b.cfg.Behaviour }

// SetBlackHole makes the BMC drop every datagram (on) or serve again
// (off). Sessions survive a black hole that ends before they expire, as
// they survive a pulled and replugged cable.
func (b *BMC) SetBlackHole(on bool) {
	b.gate.update(func(g *gateState) { g.blackHole = on })
	b.log.Info("black hole", "on", on)
}

// SetSessionTableFull makes the BMC refuse every Open Session with RMCP+
// status 0x01 "insufficient resources to create a session" (full) or take
// new sessions again. Established sessions are not touched.
func (b *BMC) SetSessionTableFull(full bool) {
	b.gate.update(func(g *gateState) { g.tableFull = full })
	b.log.Info("session table full", "on", full)
}

// SetSlowAnswers delays every datagram the BMC sends by d, keeping their
// order; zero answers at once again.
func (b *BMC) SetSlowAnswers(d time.Duration) {
	b.gate.update(func(g *gateState) { g.slow = max(d, 0) })
	b.log.Info("slow answers", "delay", d)
}

// Reboot reboots the BMC's firmware, as a watchdog, a firmware update or
// "mc reset cold" would: every session ends at once and without a word
// to its client, an active SOL payload with it; the BMC then answers
// nothing for silentFor and comes back with an empty session table. The
// host machine is not touched (power, boot flags and the console's
// output go on); the BMC's volatile settings (set-in-progress of the boot
// options and of the SOL parameters, IPMI v2.0 sections 28.13 and 26.3,
// and the volatile SOL bit rate) return to their power-on values. It
// returns at once; WaitRebooted waits for the BMC to be back.
func (b *BMC) Reboot(silentFor time.Duration) {
	b.gate.silence(time.Now().Add(max(silentFor, 0)))
	b.log.Info("BMC rebooting", "silent_for", silentFor)
	// The gate is silent already: SOL's "deactivating" never leaves.
	b.mu.Lock()
	p := b.active
	b.mu.Unlock()
	if p != nil {
		b.deactivate(p, "BMC rebooted")
	}
	b.server.DropAllSessions()
	b.mu.Lock()
	b.boot.setInProgress = ipmi.SetComplete
	b.sol.setInProgress = ipmi.SetComplete
	b.sol.vBitRate = b.sol.nvBitRate
	b.mu.Unlock()
}

// Rebooting reports whether the BMC is silent because of a reboot.
func (b *BMC) Rebooting() bool {
	st, _, _ := b.gate.snapshot()
	return time.Now().Before(st.silentUntil)
}

// Reboots is the number of reboots begun, by Reboot or periodically.
func (b *BMC) Reboots() int {
	_, n, _ := b.gate.snapshot()
	return n
}

// WaitRebooted waits until at least n reboots have begun and the BMC
// answers again, or ctx ends.
func (b *BMC) WaitRebooted(ctx context.Context, n int) error {
	for {
		st, reboots, changed := b.gate.snapshot()
		if reboots >= n && !time.Now().Before(st.silentUntil) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("fakebmc: BMC %s not back from reboot %d: %w", b.addr, n, ctx.Err())
		}
	}
}

// rebootPhaseStream keeps the first reboot's time independent of the
// other uses of the fault seed.
const rebootPhaseStream = 0x72626f74 // "rbot"

// firstReboot is when, after start, a BMC rebooting every period reboots
// first: a share of the period in (0, period] drawn from seed, so a
// fleet's BMCs (seeds seed+i) spread their reboots over the period.
func firstReboot(period time.Duration, seed int64) time.Duration {
	f := rand.New(rand.NewPCG(uint64(seed), rebootPhaseStream)).Float64() // [0, 1)
	return max(period-time.Duration(f*float64(period)), 1)
}

// startBehaviour puts the configured plan into effect, except StaleSOL
// (LeaveStaleSOL, which the fleet runs once every BMC serves).
func (b *BMC) startBehaviour() {
	plan := b.cfg.Behaviour
	b.gate.update(func(g *gateState) {
		g.blackHole = plan.BlackHole
		g.tableFull = plan.SessionTableFull
		g.slow = plan.SlowAnswers
	})
	if plan.RebootEvery <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rebootTimer = time.AfterFunc(firstReboot(plan.RebootEvery, b.cfg.Faults.Seed), b.periodicReboot)
}

// periodicReboot is the reboot timer's work.
func (b *BMC) periodicReboot() {
	b.Reboot(b.cfg.Behaviour.rebootSilence())
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.stopped {
		b.rebootTimer.Reset(b.cfg.Behaviour.RebootEvery)
	}
}

// stopBehaviour stops the periodic reboots.
func (b *BMC) stopBehaviour() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	if b.rebootTimer != nil {
		b.rebootTimer.Stop()
	}
}
