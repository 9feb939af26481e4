package fakebmc

import (
	"bytes"
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"obmd/rmcpplus"
	"obmd/sol"
)

// TestSOLAcceptMaxAndBreaks: with SOLAcceptMax the BMC accepts only part
// of each packet, so the console resends the rest many times over, and
// still every typed byte reaches the host once, in order; breaks are
// counted.
func TestSOLAcceptMaxAndBreaks(t *testing.T) {
	t.Parallel()
	const acceptMax, size = 7, 8 << 10
	f := startTestFleet(t, 1, func(c *FleetConfig) {
		c.BMC.Console, c.BMC.SOLAcceptMax, c.BMC.HostInputMax = ConsoleEcho, acceptMax, 2*size
	})
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	sess := dial(t, f, 0, func(c *rmcpplus.ClientConfig) { c.PacketConn = &countingConn{PacketConn: udp, n: &sent} })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	con, err := sol.Open(ctx, sess, sol.ConsoleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()

	typed := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz\r"), size/37+1)[:size]
	before := sent.Load()
	if _, err := con.Write(typed); err != nil {
		t.Fatal(err)
	}
	bmc := f.BMC(0)
	if err := bmc.WaitHostInput(ctx, size); err != nil {
		t.Fatalf("host got %d of %d bytes: %v", bmc.HostInputTotal(), size, err)
	}
	if got := bmc.HostInput(); !bytes.Equal(got, typed) {
		t.Fatalf("host input differs from what was typed at byte %d", firstDifference(typed, got))
	}
	// Whole packets would take size/251 = 33 data packets; 7 characters a
	// packet take at least size/7.
	if n := sent.Load() - before; n < size/acceptMax {
		t.Fatalf("the console sent %d datagrams for %d bytes: the BMC accepted more than %d characters a packet", n, size, acceptMax)
	}
	if err := con.SendBreak(); err != nil {
		t.Fatal(err)
	}
	if err := bmc.WaitBreaks(ctx, 1); err != nil {
		t.Fatalf("no break reached the BMC: %v", err)
	}
}
