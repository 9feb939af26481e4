package sol

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"obmd/internal/peertest"
	"obmd/rmcpplus"
)

// printableStream avoids 0xFF, which a telnet-speaking serial backend
// would escape.
func printableStream(seed uint64, n int) []byte {
	b := randomStream(seed, n)
	for i := range b {
		b[i] = ' ' + b[i]%95
	}
	return b
}

// TestConsoleAgainstIPMISim runs the Console against OpenIPMI's ipmi_sim, a
// SOL implementation nobody on this project wrote, over cipher suite 3
// (ipmi_sim has no SHA-256 suites). ipmi_sim takes 32-byte payloads and
// accepts only what fits its 32-byte buffer, so typing 4 KiB exercises
// batching at 28 characters and partial accepts; its output packets carry
// up to 255 characters.
func TestConsoleAgainstIPMISim(t *testing.T) {
	sim := peertest.StartIPMISim(t, peertest.IPMISimOptions{SOL: true})
	host := sim.SOLHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess, err := rmcpplus.Dial(ctx, rmcpplus.ClientConfig{Addr: sim.Addr, Username: sim.Username,
		Password: []byte(sim.Password), CipherSuite: 3})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer sess.Close()
	c, err := Open(ctx, sess, ConsoleOptions{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer c.Close()
	if a := c.Activation(); a.InboundPayloadSize != 32 || a.OutboundPayloadSize != 16384 {
		t.Fatalf("Activation %+v, want ipmi_sim's sizes 32 and 16384", a)
	}

	hostOut := printableStream(7, 32<<10)
	go host.Write(hostOut)
	got := make([]byte, len(hostOut))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("console Read: %v", err)
	}
	if !bytes.Equal(got, hostOut) {
		t.Fatalf("host to console: %s", firstDifference(got, hostOut))
	}

	typed := printableStream(8, 4<<10)
	go c.Write(typed)
	host.SetReadDeadline(time.Now().Add(15 * time.Second))
	atHost := make([]byte, len(typed))
	if _, err := io.ReadFull(host, atHost); err != nil {
		t.Fatalf("host read: %v", err)
	}
	if !bytes.Equal(atHost, typed) {
		t.Fatalf("console to host: %s", firstDifference(atHost, typed))
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
