package fakebmc

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"obmd/ipmi"
)

var testTiming = PowerTiming{CycleOff: time.Second, SoftShutdown: 300 * time.Millisecond}

// TestSimMachinePowerTransitions runs each chassis control action from each
// power state in fake time and checks the state right after the action and
// once every transition has finished.
func TestSimMachinePowerTransitions(t *testing.T) {
	cases := []struct {
		name       string
		startOn    bool
		action     func(*SimMachine) error
		onAtOnce   bool
		onAtEnd    bool
		settleTime time.Duration // when the final state is reached
		bootsAdded int
	}{
		{"power up from off", false, (*SimMachine).PowerUp, true, true, 0, 1},
		{"power up when on", true, (*SimMachine).PowerUp, true, true, 0, 0},
		{"power down from on", true, (*SimMachine).PowerDown, false, false, 0, 0},
		{"power down when off", false, (*SimMachine).PowerDown, false, false, 0, 0},
		{"cycle from on", true, (*SimMachine).PowerCycle, false, true, time.Second, 1},
		{"cycle when off does nothing", false, (*SimMachine).PowerCycle, false, false, 0, 0},
		{"reset when on reboots", true, (*SimMachine).HardReset, true, true, 0, 1},
		{"reset when off does nothing", false, (*SimMachine).HardReset, false, false, 0, 0},
		{"soft off from on", true, (*SimMachine).SoftOff, true, false, 300 * time.Millisecond, 0},
		{"soft off when off", false, (*SimMachine).SoftOff, false, false, 0, 0},
		{"diag interrupt keeps power on", true, (*SimMachine).PulseDiagInterrupt, true, true, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := NewSimMachine(testTiming, tc.startOn)
				start := time.Now()
				if err := tc.action(m); err != nil {
					t.Fatalf("action: %v", err)
				}
				if got := m.PowerOn(); got != tc.onAtOnce {
					t.Fatalf("power right after action = %v, want %v", got, tc.onAtOnce)
				}
				if err := m.WaitPower(t.Context(), tc.onAtEnd); err != nil {
					t.Fatal(err)
				}
				if got := time.Since(start); got != tc.settleTime {
					t.Errorf("final state reached after %v, want %v", got, tc.settleTime)
				}
				if got := len(m.Boots()); got != tc.bootsAdded {
					t.Errorf("boots = %d, want %d", got, tc.bootsAdded)
				}
			})
		})
	}
}

func TestSimMachineCycleOffIntervalIsObservable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewSimMachine(testTiming, true)
		if err := m.PowerCycle(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(999 * time.Millisecond) // fake time inside the bubble
		if m.PowerOn() || !m.Transitioning() {
			t.Fatalf("999ms into a cycle: on=%v transitioning=%v, want off and transitioning", m.PowerOn(), m.Transitioning())
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if !m.PowerOn() || m.Transitioning() {
			t.Fatalf("1s into a cycle: on=%v transitioning=%v, want on and settled", m.PowerOn(), m.Transitioning())
		}
		if got := m.LastPowerEvent(); got != ipmi.LastPowerEventCommand {
			t.Errorf("last power event = %#x, want power on via command", got)
		}
	})
}

func TestSimMachineLaterActionSupersedesPending(t *testing.T) {
	cases := []struct {
		name  string
		first func(*SimMachine) error
		then  func(*SimMachine) error
		want  bool
	}{
		{"off during cycle cancels the power on", (*SimMachine).PowerCycle, (*SimMachine).PowerDown, false},
		{"on during cycle powers on at once", (*SimMachine).PowerCycle, (*SimMachine).PowerUp, true},
		{"on during soft off cancels the shutdown", (*SimMachine).SoftOff, (*SimMachine).PowerUp, true},
		{"cycle during soft off ends on", (*SimMachine).SoftOff, (*SimMachine).PowerCycle, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := NewSimMachine(testTiming, true)
				if err := tc.first(m); err != nil {
					t.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond)
				if err := tc.then(m); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Second) // long after every timer
				synctest.Wait()
				if got := m.PowerOn(); got != tc.want {
					t.Errorf("power = %v, want %v", got, tc.want)
				}
				if m.Transitioning() {
					t.Error("still transitioning")
				}
			})
		})
	}
}

func TestSimMachineBootFlagsConsumedAtBoot(t *testing.T) {
	cases := []struct {
		name      string
		flags     [5]byte
		wantAfter [5]byte
	}{
		{"one-time PXE override is consumed", [5]byte{0x80, 0x04}, [5]byte{0x00, 0x04}},
		{"persistent disk override stays valid", [5]byte{0xC0, 0x08}, [5]byte{0xC0, 0x08}},
		{"persistent EFI PXE stays valid", [5]byte{0xE0, 0x04}, [5]byte{0xE0, 0x04}},
		{"invalid flags untouched", [5]byte{0x00, 0x04}, [5]byte{0x00, 0x04}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewSimMachine(testTiming, false)
			if err := m.SetBootFlags(tc.flags); err != nil {
				t.Fatal(err)
			}
			if got := m.BootFlags(); got != tc.flags {
				t.Fatalf("read back before boot = % x, want % x", got, tc.flags)
			}
			if err := m.PowerUp(); err != nil {
				t.Fatal(err)
			}
			if got := m.BootFlags(); got != tc.wantAfter {
				t.Errorf("after boot = % x, want % x", got, tc.wantAfter)
			}
			boots := m.Boots()
			if len(boots) != 1 || boots[0].BootFlags != tc.flags {
				t.Errorf("boots = %+v, want one boot that saw % x", boots, tc.flags)
			}
		})
	}
}

func TestSimMachineWaitPowerHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewSimMachine(testTiming, false)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := m.WaitPower(ctx, true); err == nil {
			t.Fatal("WaitPower(on) on a machine left off returned nil")
		}
	})
}

func TestSimMachineDiagInterruptCounted(t *testing.T) {
	m := NewSimMachine(testTiming, true)
	ch := m.Changed()
	if err := m.PulseDiagInterrupt(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Changed not signalled by a diagnostic interrupt")
	}
	if got := m.DiagInterrupts(); got != 1 {
		t.Errorf("diag interrupts = %d, want 1", got)
	}
}
