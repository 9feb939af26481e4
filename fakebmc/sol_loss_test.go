package fakebmc

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
	"obmd/sol"
)

// lossyLink is the fault plan of the SOL loss tests: applied by the client's
// socket to every datagram in both directions, so it also exercises
// NewFaultyConn in front of obmd's own client.
var lossyLink = FaultPlan{Loss: 0.20, Dup: 0.05, Reorder: 0.05, Seed: 1}

// openLossyConsole dials BMC i of f through a lossy socket and activates
// SOL, with the BMC's SOL retry interval cut to 1 ms (SOL configuration
// parameter 4, IPMI v2.0 section 26.3, Table 26-5, set to 1 unit, and the
// unit set to 1 ms) so that losses cost a millisecond, not the default
// half second. Faster retries put more copies in flight per reorder hold,
// so this is a harder test, not a weaker one.
func openLossyConsole(t *testing.T, f *Fleet, i int) (*sol.Console, *linkCounts) {
	t.Helper()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counts := &linkCounts{}
	plan := lossyLink
	plan.Seed += int64(i)
	sess := dial(t, f, i, func(c *rmcpplus.ClientConfig) {
		wire := &countingConn{PacketConn: udp, n: &counts.wire}
		c.PacketConn = &countingConn{PacketConn: NewFaultyConn(wire, plan), n: &counts.sent}
		c.Timeout = 50 * time.Millisecond
		c.Retries = 20
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	retry := ipmi.SetSOLConfigParamsReq{Channel: ipmi.ChannelCurrent, Param: ipmi.SOLParamRetry, Data: []byte{7, 1}}
	if _, err := sess.Do(ctx, ipmi.NetFnTransport, ipmi.CmdSetSOLConfigParams, retry.Marshal()); err != nil {
		t.Fatalf("Set SOL Configuration Parameters (retry): %v", err)
	}
	con, err := sol.Open(ctx, sess, sol.ConsoleOptions{RetryInterval: 5 * time.Millisecond, Retries: 80})
	if err != nil {
		t.Fatalf("sol.Open through a lossy link: %v", err)
	}
	t.Cleanup(func() { con.Close() })
	return con, counts
}

// linkCounts counts the client's datagrams: sent by the client, and put on
// the wire after the fault plan dropped or duplicated some.
type linkCounts struct{ sent, wire atomic.Int64 }

// countingConn counts the datagrams written through it.
type countingConn struct {
	net.PacketConn
	n *atomic.Int64
}

func (c *countingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.n.Add(1)
	return c.PacketConn.WriteTo(b, addr)
}

// TestSOLCounterThroughLossyLink: 1 MiB of counter output crosses a link
// losing 20% and duplicating and reordering 5% of datagrams both ways, and
// arrives complete and in order: every line is the previous one plus one.
func TestSOLCounterThroughLossyLink(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 1 MiB through a lossy link")
	}
	t.Parallel()
	f := startTestFleet(t, 1, func(c *FleetConfig) { c.BMC.Baud, c.BMC.SOLRetryUnit = UnlimitedBaud, time.Millisecond })
	con, counts := openLossyConsole(t, f, 0)

	const want = 1 << 20
	r := bufio.NewReader(con)
	if _, err := r.ReadString('\n'); err != nil { // the first line may be partial
		t.Fatal(err)
	}
	prev, got := int64(-1), 0
	for got < want {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		got += len(line)
		n, err := strconv.ParseInt(line[:len(line)-1], 10, 64)
		if err != nil {
			t.Fatalf("after %d bytes: garbled line %q", got, line)
		}
		if prev >= 0 && n != prev+1 {
			t.Fatalf("after %d bytes: line %d follows %d (lost, duplicated or reordered output)", got, n, prev)
		}
		prev = n
	}
	checkFaultsApplied(t, counts)
	t.Logf("%d bytes of counter output, up to line %d, in order through %+v; client datagrams: %d sent, %d reached the wire",
		got, prev, lossyLink, counts.sent.Load(), counts.wire.Load())
}

// TestSOLEchoThroughLossyLink: 64 KiB typed into the console reach the
// host in order and come back (echo mode) complete, through the same lossy
// link, with the writer and the reader running at once.
func TestSOLEchoThroughLossyLink(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 KiB both ways through a lossy link")
	}
	t.Parallel()
	f := startTestFleet(t, 1, func(c *FleetConfig) { c.BMC.Console, c.BMC.SOLRetryUnit = ConsoleEcho, time.Millisecond })
	con, counts := openLossyConsole(t, f, 0)

	typed := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(4, 2))
	for i := range typed {
		typed[i] = byte('!' + rng.IntN(94)) // printable, as a person types
	}
	writeErr := make(chan error, 1)
	go func() {
		for rest := typed; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(300))
			if _, err := con.Write(rest[:n]); err != nil {
				writeErr <- err
				return
			}
			rest = rest[n:]
		}
		writeErr <- nil
	}()
	echoed := make([]byte, len(typed))
	if _, err := io.ReadFull(con, echoed); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("typing: %v", err)
	}
	if i := firstDifference(typed, echoed); i >= 0 {
		t.Fatalf("echo differs from what was typed at byte %d of %d", i, len(typed))
	}
	checkFaultsApplied(t, counts)
	t.Logf("64 KiB typed and echoed in order; client datagrams: %d sent, %d reached the wire", counts.sent.Load(), counts.wire.Load())
}

// checkFaultsApplied: with 20% loss and 5% duplication, clearly fewer of
// the client's datagrams reach the wire than it sent, so the data above
// crossed a link that really lost packets.
func checkFaultsApplied(t *testing.T, c *linkCounts) {
	t.Helper()
	sent, wire := c.sent.Load(), c.wire.Load()
	if sent < 100 || float64(wire) > 0.9*float64(sent) {
		t.Errorf("client sent %d datagrams and %d reached the wire: the fault plan was not applied", sent, wire)
	}
}

func firstDifference(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
