package manager

import (
	"context"
	"errors"
	"io"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestMockConsoleCountContinues: the count carries on from the last line a
// reader took whole, as in the original obmd's mock driver.
func TestMockConsoleCountContinues(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		d := NewMockDriver(MockInfo{Addr: "x", NumWrites: 7})
		defer d.Close()
		for conn, first := range []int{7, 17, 27} {
			rc, err := d.OpenConsole(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range readLines(t, rc, 10) {
				if want := strconv.Itoa(first + i); line != want {
					t.Fatalf("connection %d line %d = %q, want %q", conn, i, line, want)
				}
			}
			rc.Close()
			synctest.Wait() // the generator sees the close and commits its count
		}
	})
}

// TestMockConsolePace: the mock prints about MockBaud/10 bytes a second.
func TestMockConsolePace(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		d := NewMockDriver(MockInfo{Addr: "x"})
		rc, err := d.OpenConsole(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		n, err := io.CopyN(io.Discard, rc, MockBaud/10)
		if err != nil || n != MockBaud/10 {
			t.Fatal(n, err)
		}
		// Paced, not faster; the upper margin is for a loaded 2-core machine.
		if el := time.Since(start); el < 900*time.Millisecond || el > 1500*time.Millisecond {
			t.Errorf("one second of output took %v", el)
		}
		d.Close()
		if _, err := rc.Read(make([]byte, 1)); err == nil {
			t.Error("console still readable after the driver closed")
		}
		synctest.Wait()
	})
}

func TestMockPowerActions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := NewMockDriver(MockInfo{Addr: "x"})
	cases := []struct {
		name string
		do   func() error
		want string
	}{
		{"power on", func() error { return d.PowerOn(ctx) }, MockActionOn},
		{"power off", func() error { return d.PowerOff(ctx) }, MockActionOff},
		{"forced cycle", func() error { return d.PowerCycle(ctx, true) }, MockActionForceReboot},
		{"soft cycle", func() error { return d.PowerCycle(ctx, false) }, MockActionSoftReboot},
		{"boot A", func() error { return d.SetBootDevice(ctx, "A") }, MockActionBootDevA},
		{"boot B", func() error { return d.SetBootDevice(ctx, "B") }, MockActionBootDevB},
	}
	for _, tc := range cases {
		if err := tc.do(); err != nil || d.LastAction() != tc.want {
			t.Errorf("%s: err %v, last action %q, want %q", tc.name, err, d.LastAction(), tc.want)
		}
	}
	if err := d.SetBootDevice(ctx, "pxe"); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetBootDevice(pxe) = %v, want ErrInvalid", err)
	}
	if s, err := d.PowerStatus(ctx); s != "Mock Status" || err != nil {
		t.Errorf("PowerStatus = %q, %v", s, err)
	}
}
