package fakebmc

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"obmd/sol"
)

// TestConsoleTakesOverAfterIpmitoolKilled: ipmitool is SIGKILLed with SOL
// active, leaving the payload active on its dead session (as a crashed
// client does on real BMCs). obmd's Console, on a new session, answers the
// 0x80 "already active" refusal by deactivating the stale instance and
// activating again, then streams consecutive counter lines.
func TestConsoleTakesOverAfterIpmitoolKilled(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1)
	killSOLClient(t, f, 0)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	con, err := sol.Open(ctx, dial(t, f, 0), sol.ConsoleOptions{})
	if err != nil {
		t.Fatalf("sol.Open over the stale payload: %v", err)
	}
	defer con.Close()
	if n := con.Activation().TakeOvers; n != 1 {
		t.Errorf("Activation().TakeOvers = %d, want 1 (the payload ipmitool left)", n)
	}
	r := bufio.NewReader(con)
	if _, err := r.ReadString('\n'); err != nil { // may start mid-line
		t.Fatal(err)
	}
	last := -1
	for range 50 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
		if err != nil || (last >= 0 && v != last+1) {
			t.Fatalf("line %q after %d: not the next counter value", line, last)
		}
		last = v
	}
}
