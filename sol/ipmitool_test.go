package sol

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"obmd/internal/peertest"
)

// lockedBuffer collects a process's output while the test reads it, and
// pokes grew after every write.
type lockedBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	grew chan struct{}
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.grew <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) contains(want []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Contains(b.buf.Bytes(), want)
}

// TestBMCEndpointAgainstIpmitool drives the BMC side with ipmitool 1.8's
// `sol activate` (cipher suite 17) through a real rmcpplus.Server: console
// output reaches ipmitool's stdout, its stdin reaches the host, and "~."
// deactivates the payload.
func TestBMCEndpointAgainstIpmitool(t *testing.T) {
	addr, h := startSOLServer(t)
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := peertest.IpmitoolCommand(t, ctx, peertest.Target{Port: port, Username: "admin", Password: "secret"},
		"-I", "lanplus", "-C", "17", "sol", "activate")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := lockedBuffer{grew: make(chan struct{}, 1)}
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var ep *BMCEndpoint
	select {
	case ep = <-h.eps:
	case err := <-exited:
		t.Fatalf("ipmitool exited before activating SOL: %v\n%s", err, out.String())
	}
	await := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case err := <-exited:
				t.Fatalf("ipmitool exited while waiting for %s: %v\n%s", what, err, out.String())
			case <-out.grew:
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s; ipmitool printed:\n%s", what, out.String())
			}
		}
	}

	hostOut := append([]byte("hello from host\r\n"), printableStream(11, 8<<10)...)
	if _, err := ep.Write(hostOut); err != nil {
		t.Fatal(err)
	}
	await("the console output on ipmitool's stdout", func() bool { return out.contains(hostOut) })

	typed := []byte("typed into ipmitool\r")
	stdin.Write(typed)
	atHost := make([]byte, len(typed))
	if _, err := io.ReadFull(ep, atHost); err != nil || !bytes.Equal(atHost, typed) {
		t.Fatalf("host read %q, %v; want %q", atHost, err, typed)
	}

	stdin.Write([]byte("~."))
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("ipmitool: %v\n%s", err, out.String())
		}
	case <-ctx.Done():
		t.Fatal("ipmitool did not exit after ~.")
	}
	if _, err := ep.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("host Read after ipmitool left: %v, want io.EOF (payload deactivated)", err)
	}
}
