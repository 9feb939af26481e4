package sol

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func randomStream(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// firstDifference describes where got departs from want, for failures that
// do not dump megabytes.
func firstDifference(got, want []byte) string {
	n := min(len(got), len(want))
	for i := range n {
		if got[i] != want[i] {
			return fmt.Sprintf("byte %d differs (got %d bytes, want %d)", i, len(got), len(want))
		}
	}
	return fmt.Sprintf("got %d bytes, want %d", len(got), len(want))
}

// TestConsoleEndpointOverLossyPipe is the whole SOL path: a Console against
// a BMCEndpoint through an in-memory network that loses, duplicates and
// reorders datagrams in both directions, with small buffers and a reader
// that stalls so that NACK backpressure is exercised. 1 MiB flows host to
// console and 64 KiB console to host; both must arrive complete, in order,
// without duplicates. Time is synctest's fake clock, so retransmission
// timeouts cost nothing.
func TestConsoleEndpointOverLossyPipe(t *testing.T) {
	tests := []struct {
		name      string
		seed      uint64
		loss, dup float64
		inbound   uint16
	}{
		{"clean network", 1, 0, 0, 259},
		{"10% loss 5% duplicates, ipmi_sim payload sizes", 2, 0.10, 0.05, 32},
		{"20% loss 10% duplicates", 3, 0.20, 0.10, 259},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				wholePath(t, tc.seed, tc.loss, tc.dup, tc.inbound)
			})
		})
	}
}

func wholePath(t *testing.T, seed uint64, loss, dup float64, inbound uint16) {
	const (
		hostToConsole = 1 << 20
		consoleToHost = 64 << 10
	)
	r := newRig(rigConfig{
		seed: seed, loss: loss, dup: dup,
		latency: time.Millisecond, jitter: 1500 * time.Microsecond,
		inbound: inbound, outbound: 16384,
		endpoint: EndpointConfig{RetryInterval: 20 * time.Millisecond, Retries: 1000,
			ReceiveBuffer: 512, MaxPending: 2048},
	})
	c, err := Open(context.Background(), r.sess, ConsoleOptions{
		RetryInterval: 20 * time.Millisecond, Retries: 1000, ReadBuffer: 1024, MaxPending: 4096,
		KeepaliveInterval: time.Second,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ep := r.bmc.endpoint()
	watchdog := time.AfterFunc(10*time.Minute, func() {
		t.Errorf("transfer not complete after 10 minutes of fake time")
		c.Close()
		ep.Close()
	})
	defer watchdog.Stop()
	hostOut := randomStream(seed, hostToConsole)
	consoleOut := randomStream(seed+1, consoleToHost)
	var (
		wg                      sync.WaitGroup
		atConsole, atHost       []byte
		consoleReadErr, hostErr error
	)
	wg.Add(4)
	go func() { // the host prints
		defer wg.Done()
		rng := rand.New(rand.NewPCG(seed, 1))
		for off := 0; off < len(hostOut); {
			n := min(1+rng.IntN(4096), len(hostOut)-off)
			if _, err := ep.Write(hostOut[off : off+n]); err != nil {
				hostErr = err
				return
			}
			off += n
		}
	}()
	go func() { // the host reads what was typed
		defer wg.Done()
		buf := make([]byte, 300)
		next := 16 << 10
		for len(atHost) < consoleToHost {
			n, err := ep.Read(buf)
			atHost = append(atHost, buf[:n]...)
			if err != nil {
				return
			}
			if len(atHost) >= next {
				next += 16 << 10
				time.Sleep(100 * time.Millisecond) // a slow host, in fake time
			}
		}
	}()
	go func() { // the console user types
		defer wg.Done()
		rng := rand.New(rand.NewPCG(seed, 2))
		for off := 0; off < len(consoleOut); {
			n := min(1+rng.IntN(100), len(consoleOut)-off)
			if _, err := c.Write(consoleOut[off : off+n]); err != nil {
				return
			}
			off += n
		}
	}()
	go func() { // the console user reads, stalling now and then
		defer wg.Done()
		buf := make([]byte, 700)
		next := 128 << 10
		for len(atConsole) < hostToConsole {
			n, err := c.Read(buf)
			atConsole = append(atConsole, buf[:n]...)
			if err != nil {
				consoleReadErr = err
				return
			}
			if len(atConsole) >= next {
				next += 128 << 10
				time.Sleep(200 * time.Millisecond) // a slow reader, in fake time
			}
		}
	}()
	wg.Wait()
	if hostErr != nil || consoleReadErr != nil {
		t.Fatalf("host write error %v, console read error %v", hostErr, consoleReadErr)
	}
	if !bytes.Equal(atConsole, hostOut) {
		t.Fatalf("host to console: %s", firstDifference(atConsole, hostOut))
	}
	if !bytes.Equal(atHost, consoleOut) {
		t.Fatalf("console to host: %s", firstDifference(atHost, consoleOut))
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); err != ErrClosed {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
	if _, err := ep.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("host Read after deactivation: %v, want io.EOF", err)
	}
	if r.toBMC.nacks.Load() == 0 || r.toConsole.nacks.Load() == 0 {
		t.Errorf("NACKs: console %d, BMC %d; the slow readers did not exercise backpressure both ways",
			r.toBMC.nacks.Load(), r.toConsole.nacks.Load())
	}
	t.Logf("console sent %d packets (%d lost, %d NACKs), BMC sent %d (%d lost, %d NACKs), fake time %v",
		r.toBMC.sent.Load(), r.toBMC.dropped.Load(), r.toBMC.nacks.Load(),
		r.toConsole.sent.Load(), r.toConsole.dropped.Load(), r.toConsole.nacks.Load(), time.Since(t0Bubble(t)))
}

// t0Bubble is the start of a synctest bubble's clock (midnight UTC 2000-01-01).
func t0Bubble(*testing.T) time.Time { return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) }
