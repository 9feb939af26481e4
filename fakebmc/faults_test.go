package fakebmc

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestFaultPlanValidate(t *testing.T) {
	cases := []struct {
		name    string
		plan    FaultPlan
		wantErr string
	}{
		{"zero plan", FaultPlan{}, ""},
		{"all faults at their limits", FaultPlan{Loss: 1, Dup: 1, Reorder: 1, Delay: time.Second}, ""},
		{"loss above one", FaultPlan{Loss: 1.5}, "loss probability 1.5 is not between 0 and 1"},
		{"negative dup", FaultPlan{Dup: -0.1}, "dup probability -0.1 is not between 0 and 1"},
		{"negative delay", FaultPlan{Delay: -time.Millisecond}, "delay -1ms is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.plan.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func decisions(plan FaultPlan, stream uint64, n int) []faultDecision {
	l := newFaultLine(plan, stream)
	out := make([]faultDecision, n)
	for i := range out {
		out[i] = l.decide()
	}
	return out
}

func TestFaultDecisionsDeterministicPerSeedAndDirection(t *testing.T) {
	plan := FaultPlan{Loss: 0.5, Dup: 0.5, Reorder: 0.5, Seed: 42}
	a := decisions(plan, faultStreamWrite, 200)
	b := decisions(plan, faultStreamWrite, 200)
	if !equalDecisions(a, b) {
		t.Fatal("same seed and direction gave different decisions")
	}
	other := plan
	other.Seed = 43
	if equalDecisions(a, decisions(other, faultStreamWrite, 200)) {
		t.Error("seeds 42 and 43 gave identical decisions")
	}
	if equalDecisions(a, decisions(plan, faultStreamRead, 200)) {
		t.Error("read and write directions gave identical decisions")
	}
}

func equalDecisions(a, b []faultDecision) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFaultDecisionRates(t *testing.T) {
	const n = 20000
	cases := []struct {
		name                         string
		plan                         FaultPlan
		wantLoss, wantDup, wantReord float64
	}{
		{"no faults", FaultPlan{Delay: time.Millisecond}, 0, 0, 0},
		{"everything lost", FaultPlan{Loss: 1}, 1, 0, 0},
		{"ten percent loss", FaultPlan{Loss: 0.1, Seed: 7}, 0.1, 0, 0},
		{"mixed", FaultPlan{Loss: 0.05, Dup: 0.2, Reorder: 0.3, Seed: 9}, 0.05, 0.2, 0.3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var loss, dup, reord int
			for _, d := range decisions(tc.plan, faultStreamWrite, n) {
				if d.drop {
					loss++
				}
				if d.duplicate {
					dup++
				}
				if d.reorder {
					reord++
				}
			}
			for _, r := range []struct {
				what      string
				got, want float64
			}{
				{"loss", float64(loss) / n, tc.wantLoss},
				{"dup", float64(dup) / n, tc.wantDup},
				{"reorder", float64(reord) / n, tc.wantReord},
			} {
				if r.got < r.want-0.015 || r.got > r.want+0.015 {
					t.Errorf("%s rate = %.3f, want %.3f ± 0.015", r.what, r.got, r.want)
				}
			}
		})
	}
}

// drain pops every datagram due at now.
func drain(l *faultLine, now time.Time) []string {
	var out []string
	for {
		q, ok := l.popDue(now)
		if !ok {
			return out
		}
		out = append(out, string(q.data))
	}
}

func TestFaultLineQueueing(t *testing.T) {
	t.Run("delay holds every datagram for Delay", func(t *testing.T) {
		l := newFaultLine(FaultPlan{Delay: 50 * time.Millisecond}, faultStreamWrite)
		l.push(epoch, []byte("a"), nil)
		l.push(epoch.Add(10*time.Millisecond), []byte("b"), nil)
		if got := drain(l, epoch.Add(49*time.Millisecond)); len(got) != 0 {
			t.Fatalf("released %q before the delay", got)
		}
		if got := drain(l, epoch.Add(50*time.Millisecond)); !equalStrings(got, "a") {
			t.Fatalf("at 50ms released %q, want [a]", got)
		}
		if due, ok := l.nextDue(); !ok || !due.Equal(epoch.Add(60*time.Millisecond)) {
			t.Fatalf("next due = %v %v, want 60ms", due, ok)
		}
		if got := drain(l, epoch.Add(60*time.Millisecond)); !equalStrings(got, "b") {
			t.Fatalf("at 60ms released %q, want [b]", got)
		}
	})
	t.Run("duplicate releases two copies", func(t *testing.T) {
		l := newFaultLine(FaultPlan{Dup: 1}, faultStreamWrite)
		l.push(epoch, []byte("a"), nil)
		l.push(epoch, []byte("b"), nil)
		if got := drain(l, epoch); !equalStrings(got, "a", "a", "b", "b") {
			t.Fatalf("released %q, want [a a b b]", got)
		}
	})
	t.Run("loss releases nothing", func(t *testing.T) {
		l := newFaultLine(FaultPlan{Loss: 1, Dup: 1}, faultStreamWrite)
		l.push(epoch, []byte("a"), nil)
		if got := drain(l, epoch.Add(time.Hour)); len(got) != 0 {
			t.Fatalf("released %q, want nothing", got)
		}
	})
	t.Run("reordered datagram is overtaken by the next", func(t *testing.T) {
		plan := FaultPlan{Reorder: 0.5, Seed: seedWithReorderPattern(t, true, false)}
		l := newFaultLine(plan, faultStreamWrite)
		l.push(epoch, []byte("first"), nil)
		if got := drain(l, epoch); len(got) != 0 {
			t.Fatalf("reordered datagram released at once: %q", got)
		}
		l.push(epoch.Add(time.Millisecond), []byte("second"), nil)
		if got := drain(l, epoch.Add(time.Millisecond)); !equalStrings(got, "second") {
			t.Fatalf("released %q, want [second]", got)
		}
		if got := drain(l, epoch.Add(plan.reorderHold())); !equalStrings(got, "first") {
			t.Fatalf("after the hold released %q, want [first]", got)
		}
	})
	t.Run("reordered datagram with no follower is released after the hold", func(t *testing.T) {
		plan := FaultPlan{Reorder: 1}
		l := newFaultLine(plan, faultStreamWrite)
		l.push(epoch, []byte("only"), nil)
		if got := drain(l, epoch.Add(plan.reorderHold()-time.Nanosecond)); len(got) != 0 {
			t.Fatalf("released %q before the hold ended", got)
		}
		if got := drain(l, epoch.Add(plan.reorderHold())); !equalStrings(got, "only") {
			t.Fatalf("released %q, want [only]", got)
		}
	})
}

func equalStrings(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// seedWithReorderPattern finds a seed whose first write decisions at
// Reorder 0.5 follow pattern, so conn-level tests can predict the order.
func seedWithReorderPattern(t *testing.T, pattern ...bool) int64 {
	t.Helper()
	for seed := int64(1); seed < 10000; seed++ {
		ds := decisions(FaultPlan{Reorder: 0.5, Seed: seed}, faultStreamWrite, len(pattern))
		match := true
		for i, d := range ds {
			if d.reorder != pattern[i] {
				match = false
				break
			}
		}
		if match {
			return seed
		}
	}
	t.Fatalf("no seed below 10000 gives reorder pattern %v", pattern)
	return 0
}

func udpPair(t *testing.T) (a, b net.PacketConn) {
	t.Helper()
	a, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err = net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func readOne(t *testing.T, c net.PacketConn, within time.Duration) (string, error) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(within)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	n, _, err := c.ReadFrom(buf)
	return string(buf[:n]), err
}

func TestNewFaultyConnZeroPlanIsIdentity(t *testing.T) {
	a, _ := udpPair(t)
	if got := NewFaultyConn(a, FaultPlan{Seed: 5}); got != a {
		t.Fatal("a plan with no faults wrapped the connection")
	}
}

func TestFaultyConnWriteReorderAndDuplicate(t *testing.T) {
	raw, peer := udpPair(t)
	seed := seedWithReorderPattern(t, true, false)
	c := NewFaultyConn(raw, FaultPlan{Reorder: 0.5, Seed: seed})
	for _, m := range []string{"first", "second"} {
		if _, err := c.WriteTo([]byte(m), peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"second", "first"} {
		got, err := readOne(t, peer, 5*time.Second)
		if err != nil || got != want {
			t.Fatalf("peer read %q, %v; want %q", got, err, want)
		}
	}

	dup := NewFaultyConn(peer, FaultPlan{Dup: 1})
	if _, err := dup.WriteTo([]byte("twice"), raw.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := readOne(t, c, 5*time.Second); err != nil || got != "twice" {
			t.Fatalf("read %q, %v; want a copy of %q", got, err, "twice")
		}
	}
}

func TestFaultyConnReadDelay(t *testing.T) {
	raw, peer := udpPair(t)
	const delay = 30 * time.Millisecond
	c := NewFaultyConn(raw, FaultPlan{Delay: delay})
	sent := time.Now()
	if _, err := peer.WriteTo([]byte("late"), raw.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got, err := readOne(t, c, 5*time.Second)
	if err != nil || got != "late" {
		t.Fatalf("read %q, %v", got, err)
	}
	if elapsed := time.Since(sent); elapsed < delay {
		t.Errorf("datagram delivered after %v, want at least %v", elapsed, delay)
	}
}

func TestFaultyConnReadLossAndDeadline(t *testing.T) {
	raw, peer := udpPair(t)
	c := NewFaultyConn(raw, FaultPlan{Loss: 1})
	if _, err := peer.WriteTo([]byte("lost"), raw.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got, err := readOne(t, c, 50*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %q, %v; want a deadline timeout", got, err)
	}
}

func TestFaultyConnDeadlineInterruptsBlockedRead(t *testing.T) {
	raw, _ := udpPair(t)
	c := NewFaultyConn(raw, FaultPlan{Delay: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		errc <- err
	}()
	if err := c.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("blocked read ended with %v, want deadline exceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SetReadDeadline did not interrupt a blocked ReadFrom")
	}
}

func TestFaultyConnClose(t *testing.T) {
	raw, peer := udpPair(t)
	c := NewFaultyConn(raw, FaultPlan{Delay: time.Millisecond})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo([]byte("x"), peer.LocalAddr()); err == nil {
		t.Error("write after Close succeeded")
	}
	if _, _, err := c.ReadFrom(make([]byte, 10)); err == nil {
		t.Error("read after Close succeeded")
	}
}

func TestFaultyConnLargeDatagramIntact(t *testing.T) {
	raw, peer := udpPair(t)
	c := NewFaultyConn(raw, FaultPlan{Delay: time.Millisecond})
	big := bytes.Repeat([]byte{0xA5, 0x5A}, 4000)
	if _, err := c.WriteTo(big, peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got, err := readOne(t, peer, 5*time.Second)
	if err != nil || got != string(big) {
		t.Fatalf("large datagram arrived with %d bytes, err %v; want %d intact bytes", len(got), err, len(big))
	}
}
