package fakebmc

import (
	"context"
	"errors"
	"sync"
	"time"

	"obmd/ipmi"
)

// Machine is the simulated computer behind a BMC: what the command handlers
// act on. SimMachine is the standard one; a test can put a machine with a
// quirk (one that refuses a command in some state, say) behind a BMC
// instead.
type Machine interface {
	// PowerOn reports whether the system is powered on (S0).
	PowerOn() bool
	// The chassis control actions of IPMI v2.0 section 28.3, Table 28-4.
	PowerDown() error
	PowerUp() error
	PowerCycle() error
	HardReset() error
	PulseDiagInterrupt() error
	SoftOff() error
	// LastPowerEvent is the Last Power Event byte of Get Chassis Status
	// (ipmi.LastPowerEvent* bits).
	LastPowerEvent() uint8
	// BootFlags and SetBootFlags hold the 5 data bytes of System Boot
	// Options parameter 5 (IPMI v2.0 section 28.13, Table 28-14), read back
	// as they were set until the system boots with them.
	BootFlags() [5]byte
	SetBootFlags(flags [5]byte) error
}

// ErrNotInPresentState is returned by a Machine that refuses an action in
// its current state; the handlers answer it with completion code 0xD5.
var ErrNotInPresentState = errors.New("fakebmc: action not supported in present state")

// Boot flag bits of parameter 5 data byte 1 (IPMI v2.0 Table 28-14).
const (
	BootFlagValid      uint8 = 1 << 7
	BootFlagPersistent uint8 = 1 << 6
	BootFlagEFI        uint8 = 1 << 5
)

// PowerTiming is how long the simulated machine takes for the actions that
// are not instantaneous.
type PowerTiming struct {
	// CycleOff is the off interval of a power cycle. IPMI v2.0 section
	// 28.3: "a power off interval of at least 1 second".
	CycleOff time.Duration
	// SoftShutdown is how long the operating system takes to turn the
	// machine off after an ACPI soft-shutdown request.
	SoftShutdown time.Duration
}

// DefaultPowerTiming is what a small server does.
var DefaultPowerTiming = PowerTiming{CycleOff: time.Second, SoftShutdown: 500 * time.Millisecond}

// Boot is one system start of a SimMachine: the boot flags it found
// (BootFlags[0]&BootFlagValid tells whether there was an override).
type Boot struct {
	Number    int
	BootFlags [5]byte
}

// SimMachine is the standard simulated machine: a power state machine with
// the timings of PowerTiming and a boot flags register consumed by the
// simulated firmware at boot.
//
// States and transitions (a later action supersedes a pending one):
//
//	off --PowerUp--> on (boot)
//	on --PowerDown--> off
//	on --PowerCycle--> off --CycleOff--> on (boot)
//	on --SoftOff--> on, shutting down --SoftShutdown--> off
//	on --HardReset--> on (boot)
//	off --PowerCycle, HardReset, SoftOff--> off: IPMI v2.0 section 28.3
//	    says no action should occur for a power cycle in S4/S5; a reset
//	    pulses a signal nothing listens to; there is no OS to shut down.
//
// At each boot the firmware reads parameter 5; a valid override that is not
// persistent applies to that boot only, so its valid bit is cleared (IPMI
// v2.0 section 28.12: "options apply to next boot only"). The 60-second
// automatic clearing of the valid bit (parameter 3) is not simulated: the
// flags stay valid until a boot consumes them.
type SimMachine struct {
	timing PowerTiming

	mu         sync.Mutex
	on         bool
	lastEvent  uint8
	bootFlags  [5]byte
	boots      []Boot // most recent last, at most maxBootHistory
	bootCount  int
	diagPulses int
	pending    *time.Timer // scheduled transition, nil if none
	pendingGen uint64      // identifies the pending timer's transition
	changed    chan struct{}
}

const maxBootHistory = 16

// NewSimMachine returns a machine in the given power state. A zero timing
// field takes the DefaultPowerTiming value.
func NewSimMachine(timing PowerTiming, on bool) *SimMachine {
	if timing.CycleOff <= 0 {
		timing.CycleOff = DefaultPowerTiming.CycleOff
	}
	if timing.SoftShutdown <= 0 {
		timing.SoftShutdown = DefaultPowerTiming.SoftShutdown
	}
	return &SimMachine{timing: timing, on: on, changed: make(chan struct{})}
}

// PowerOn reports whether the machine is on.
func (m *SimMachine) PowerOn() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.on
}

// PowerUp turns the machine on at once (chassis control 01h).
func (m *SimMachine) PowerUp() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cancelPendingLocked()
	if !m.on {
		m.powerOnLocked()
	}
	return nil
}

// PowerDown turns the machine off at once (chassis control 00h).
func (m *SimMachine) PowerDown() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cancelPendingLocked()
	m.setOnLocked(false)
	return nil
}

// PowerCycle turns a running machine off, then on CycleOff later (chassis
// control 02h).
func (m *SimMachine) PowerCycle() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.on && m.pending == nil {
		return nil // section 28.3: no action in S4/S5
	}
	m.cancelPendingLocked()
	m.setOnLocked(false)
	m.scheduleLocked(m.timing.CycleOff, func() {
		m.powerOnLocked()
	})
	return nil
}

// HardReset reboots a running machine at once (chassis control 03h).
func (m *SimMachine) HardReset() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.on {
		return nil
	}
	m.cancelPendingLocked()
	m.bootLocked()
	m.notifyLocked()
	return nil
}

// PulseDiagInterrupt records a diagnostic interrupt (NMI), chassis control
// 04h. The simulated OS ignores it.
func (m *SimMachine) PulseDiagInterrupt() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.diagPulses++
	m.notifyLocked()
	return nil
}

// SoftOff asks the OS to shut down (chassis control 05h, ACPI overtemp
// emulation); the machine turns off SoftShutdown later.
func (m *SimMachine) SoftOff() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.on {
		return nil
	}
	if m.pending != nil {
		return nil // already shutting down (or cycling)
	}
	m.scheduleLocked(m.timing.SoftShutdown, func() {
		m.setOnLocked(false)
	})
	return nil
}

// LastPowerEvent is byte 2 of Get Chassis Status (IPMI v2.0 section 28.2).
func (m *SimMachine) LastPowerEvent() uint8 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastEvent
}

// BootFlags returns parameter 5's data as stored.
func (m *SimMachine) BootFlags() [5]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bootFlags
}

// SetBootFlags stores parameter 5's data.
func (m *SimMachine) SetBootFlags(flags [5]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bootFlags = flags
	m.notifyLocked()
	return nil
}

// DiagInterrupts counts the diagnostic interrupts pulsed so far.
func (m *SimMachine) DiagInterrupts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.diagPulses
}

// Boots returns the most recent boots (up to 16), oldest first.
func (m *SimMachine) Boots() []Boot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Boot(nil), m.boots...)
}

// Transitioning reports whether a power cycle or soft shutdown is under way.
func (m *SimMachine) Transitioning() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending != nil
}

// Changed returns a channel closed at the next change of the machine's
// state (power, boot flags, boots, diagnostic interrupts). Take it before
// reading the state, then wait on it, to miss nothing.
func (m *SimMachine) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// WaitPower waits until the machine's power state is on, with no
// transition pending, or ctx ends.
func (m *SimMachine) WaitPower(ctx context.Context, on bool) error {
	for {
		m.mu.Lock()
		done := m.on == on && m.pending == nil
		ch := m.changed
		m.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			want := "off"
			if on {
				want = "on"
			}
			return errors.New("fakebmc: machine did not power " + want + ": " + ctx.Err().Error())
		}
	}
}

func (m *SimMachine) powerOnLocked() {
	m.lastEvent = ipmi.LastPowerEventCommand
	m.setOnLocked(true)
	m.bootLocked()
}

// bootLocked is the firmware starting: it reads the boot flags and clears
// the valid bit of a one-time override.
func (m *SimMachine) bootLocked() {
	m.bootCount++
	m.boots = append(m.boots, Boot{Number: m.bootCount, BootFlags: m.bootFlags})
	if len(m.boots) > maxBootHistory {
		m.boots = m.boots[len(m.boots)-maxBootHistory:]
	}
	if m.bootFlags[0]&BootFlagValid != 0 && m.bootFlags[0]&BootFlagPersistent == 0 {
		m.bootFlags[0] &^= BootFlagValid
	}
}

func (m *SimMachine) setOnLocked(on bool) {
	m.on = on
	m.notifyLocked()
}

func (m *SimMachine) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *SimMachine) scheduleLocked(d time.Duration, transition func()) {
	m.pendingGen++
	gen := m.pendingGen
	m.pending = time.AfterFunc(d, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.pendingGen != gen || m.pending == nil {
			return // superseded by a later action
		}
		m.pending = nil
		transition()
		m.notifyLocked()
	})
	m.notifyLocked()
}

func (m *SimMachine) cancelPendingLocked() {
	if m.pending != nil {
		m.pending.Stop()
		m.pending = nil
		m.pendingGen++
		m.notifyLocked()
	}
}
