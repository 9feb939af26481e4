package sol

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// drainEvents collects a Console's events until the channel closes.
func drainEvents(c *Console) []Event {
	var evs []Event
	for ev := range c.Events() {
		evs = append(evs, ev)
	}
	return evs
}

func TestOpenActivatePayloadRequest(t *testing.T) {
	suite := func(id uint8) rmcpplus.CipherSuite {
		s, ok := rmcpplus.CipherSuiteByID(id)
		if !ok {
			t.Fatalf("cipher suite %d unknown to rmcpplus", id)
		}
		return s
	}
	tests := []struct {
		name string
		open func(r *rig) (*Console, error)
		want string // Activate Payload request data
	}{
		{
			name: "session without a suite: both bits, as ipmitool (captured C6)",
			open: func(r *rig) (*Console, error) { return Open(context.Background(), r.sess, ConsoleOptions{}) },
			want: "0101c6000000",
		},
		{
			name: "suite 17: encryption and authentication",
			open: func(r *rig) (*Console, error) {
				return Open(context.Background(), suiteSession{r.sess, suite(17)}, ConsoleOptions{})
			},
			want: "0101c6000000",
		},
		{
			name: "suite 0: neither",
			open: func(r *rig) (*Console, error) {
				return Open(context.Background(), suiteSession{r.sess, suite(0)}, ConsoleOptions{})
			},
			want: "010106000000",
		},
		{
			name: "instance 2",
			open: func(r *rig) (*Console, error) {
				return Open(context.Background(), r.sess, ConsoleOptions{Instance: 2})
			},
			want: "0102c6000000",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(rigConfig{})
				c, err := tc.open(r)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer c.Close()
				calls := r.bmc.callLog()
				if len(calls) == 0 || calls[0] != "Activate Payload "+tc.want {
					t.Fatalf("first command %q, want %q", calls, "Activate Payload "+tc.want)
				}
			})
		})
	}
}

func TestOpenUsesActivationResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(rigConfig{inbound: 32, outbound: 16384})
		r.bmc.port = 0x26F // a SOL port other than the session's
		c, err := Open(context.Background(), r.sess, ConsoleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		want := Activation{Instance: 1, InboundPayloadSize: 32, OutboundPayloadSize: 16384, Port: 0x26F, Aux: [4]byte{0xC6}}
		if got := c.Activation(); got != want {
			t.Fatalf("Activation = %+v, want %+v", got, want)
		}
		if r.sess.openedPort != 0x26F {
			t.Fatalf("OpenPayload port %d, want %d", r.sess.openedPort, 0x26F)
		}
		// 28 characters per packet towards a BMC that takes 32-byte payloads.
		r.toBMC.mu.Lock()
		r.toBMC.record = true
		r.toBMC.mu.Unlock()
		if _, err := c.Write([]byte(strings.Repeat("x", 60))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		var sizes []int
		for _, b := range r.toBMC.sentPackets() {
			if b[0] != 0 && len(b) > HeaderLen { // packets carrying characters
				sizes = append(sizes, len(b)-HeaderLen)
			}
		}
		if !slices.Equal(sizes, []int{28, 28, 4}) {
			t.Fatalf("data packet sizes %v, want [28 28 4]", sizes)
		}
	})
}

func TestOpenIgnorePayloadPort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(rigConfig{})
		r.bmc.port = 0x26F
		c, err := Open(context.Background(), r.sess, ConsoleOptions{IgnorePayloadPort: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if r.sess.openedPort != 0 {
			t.Fatalf("OpenPayload port %d, want 0 (the session's)", r.sess.openedPort)
		}
	})
}

func TestOpenTakeOver(t *testing.T) {
	no := false
	tests := []struct {
		name      string
		stale     int // Activate Payload answers 0x80 this many times
		opts      ConsoleOptions
		wantErr   string
		wantCalls []string
		takeOvers int
	}{
		{
			name:  "stale activation is deactivated and activation retried",
			stale: 1,
			wantCalls: []string{"Activate Payload 0101c6000000", "Deactivate Payload 010100000000",
				"Activate Payload 0101c6000000"},
			takeOvers: 1,
		},
		{
			// After a Deactivate Payload that changed nothing, SOL Enable
			// is toggled once (this BMC does not know the command).
			name:  "bounded: gives up after MaxTakeOverAttempts",
			stale: 10,
			opts:  ConsoleOptions{MaxTakeOverAttempts: 2},
			wantCalls: []string{"Activate Payload 0101c6000000", "Deactivate Payload 010100000000",
				"Activate Payload 0101c6000000",
				"Set SOL Configuration Parameters 0e0100", "Set SOL Configuration Parameters 0e0101",
				"Activate Payload 0101c6000000", "Deactivate Payload 010100000000",
				"Activate Payload 0101c6000000"},
			wantErr: "Activate Payload: 0x80 payload already active on another session (after 2 takeover attempts; toggling SOL Enable failed",
		},
		{
			name:      "TakeOver false: no deactivation",
			stale:     1,
			opts:      ConsoleOptions{TakeOver: &no},
			wantCalls: []string{"Activate Payload 0101c6000000"},
			wantErr:   "payload already active",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(rigConfig{})
				stale := tc.stale
				r.bmc.setHook(func(ctx context.Context, cmd ipmi.Command, data []byte) ([]byte, error, bool) {
					switch {
					case cmd == ipmi.CmdActivatePayload && stale > 0:
						stale--
						return nil, &ipmi.CompletionError{NetFn: ipmi.NetFnApp, Cmd: cmd, Code: ipmi.CCPayloadAlreadyActive}, true
					case cmd == ipmi.CmdDeactivatePayload:
						return nil, nil, true
					}
					return nil, nil, false
				})
				c, err := Open(context.Background(), r.sess, tc.opts)
				if c != nil {
					r.bmc.setHook(nil)
					if got := c.Activation().TakeOvers; got != tc.takeOvers {
						t.Errorf("TakeOvers = %d, want %d", got, tc.takeOvers)
					}
					c.Close()
				}
				if tc.wantErr == "" && err != nil {
					t.Fatalf("Open: %v", err)
				}
				if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
					t.Fatalf("Open error %v, want one containing %q", err, tc.wantErr)
				}
				if calls := r.bmc.callLog(); !slices.Equal(calls[:min(len(calls), len(tc.wantCalls))], tc.wantCalls) {
					t.Fatalf("commands %q, want %q first", calls, tc.wantCalls)
				}
			})
		})
	}
}

func TestOpenActivationErrors(t *testing.T) {
	tests := []struct {
		name    string
		rsp     []byte
		err     error
		wantErr string
	}{
		{"payload disabled", nil, &ipmi.CompletionError{NetFn: ipmi.NetFnApp, Cmd: ipmi.CmdActivatePayload, Code: ipmi.CCPayloadDisabled},
			"Activate Payload: 0x81 payload type is disabled"},
		{"short response", []byte{0, 0, 0, 0, 0x20}, nil, "Activate Payload response"},
		{"no answer", nil, context.DeadlineExceeded, "activating SOL: context deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(rigConfig{})
				r.bmc.setHook(func(ctx context.Context, cmd ipmi.Command, data []byte) ([]byte, error, bool) {
					if cmd == ipmi.CmdActivatePayload {
						return tc.rsp, tc.err, true
					}
					return nil, nil, false
				})
				c, err := Open(context.Background(), r.sess, ConsoleOptions{})
				if err == nil {
					c.Close()
					t.Fatal("Open succeeded")
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
				}
			})
		})
	}
}

func TestConsoleCloseDeactivates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(rigConfig{})
		c, err := Open(context.Background(), r.sess, ConsoleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ep := r.bmc.endpoint()
		readErr := make(chan error)
		go func() {
			_, err := c.Read(make([]byte, 10))
			readErr <- err
		}()
		synctest.Wait()
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := <-readErr; err != ErrClosed {
			t.Fatalf("blocked Read returned %v, want ErrClosed", err)
		}
		if _, err := c.Write([]byte("x")); err != ErrClosed {
			t.Fatalf("Write after Close: %v, want ErrClosed", err)
		}
		if err := c.SendBreak(); err != ErrClosed {
			t.Fatalf("SendBreak after Close: %v, want ErrClosed", err)
		}
		calls := r.bmc.callLog()
		if calls[len(calls)-1] != "Deactivate Payload 010100000000" {
			t.Fatalf("last command %q, want Deactivate Payload", calls[len(calls)-1])
		}
		if !r.sess.conn.isClosed() {
			t.Fatal("payload connection left open")
		}
		if _, err := ep.Write([]byte("x")); err != ErrClosed {
			t.Fatalf("host Write after deactivation: %v, want ErrClosed", err)
		}
		if evs := drainEvents(c); !slices.Equal(evs, []Event{EventActivated}) {
			t.Fatalf("events %v, want [Activated]", evs)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestConsoleDeactivatedByBMC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(rigConfig{})
		c, err := Open(context.Background(), r.sess, ConsoleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ep := r.bmc.endpoint()
		ep.Write([]byte("last words"))
		synctest.Wait()
		time.Sleep(10 * time.Millisecond)
		ep.Close()
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if string(buf[:n]) != "last words" || err != nil {
			t.Fatalf("Read = %q, %v; want the output sent before deactivation", buf[:n], err)
		}
		if _, err = c.Read(buf); !errors.Is(err, ErrDeactivated) {
			t.Fatalf("Read error %v, want ErrDeactivated", err)
		}
		if evs := drainEvents(c); !slices.Contains(evs, EventDeactivatedByBMC) {
			t.Fatalf("events %v, want DeactivatedByBMC", evs)
		}
	})
}

func TestConsoleDetectsDeadBMC(t *testing.T) {
	tests := []struct {
		name    string
		act     func(r *rig, c *Console)
		within  time.Duration
		wantErr error
		wantEv  Event
		// wantResends: at least this many retransmissions counted in
		// Counters() (process-wide, so only a lower bound).
		wantResends uint64
	}{
		{
			name: "quiet console: keepalive gets no answer",
			act: func(r *rig, c *Console) {
				r.bmc.setHook(func(ctx context.Context, cmd ipmi.Command, data []byte) ([]byte, error, bool) {
					<-ctx.Done() // a BMC that never answers
					return nil, ctx.Err(), true
				})
				r.toConsole.dead.Store(true)
				r.toBMC.dead.Store(true)
			},
			within:  2*time.Second + 3*time.Second, // KeepaliveInterval + KeepaliveTimeout
			wantErr: ErrSessionLost,
			wantEv:  EventSessionLost,
		},
		{
			name: "data waiting: no acknowledgement",
			act: func(r *rig, c *Console) {
				r.toConsole.dead.Store(true)
				r.toBMC.dead.Store(true)
				c.Write([]byte("hello?"))
			},
			within:      4 * 100 * time.Millisecond, // RetryInterval * (Retries+1)
			wantErr:     ErrPeerNotAnswering,
			wantEv:      EventPeerNotAnswering,
			wantResends: 3,
		},
		{
			name:    "session ends",
			act:     func(r *rig, c *Console) { r.sess.end(errors.New("rmcpplus: session lost: keepalive timed out")) },
			within:  time.Millisecond,
			wantErr: ErrSessionLost,
			wantEv:  EventSessionLost,
		},
		{
			// The BMC ends SOL without the deactivating bit: its status
			// says inactive and SOL is silent. (Inactive while SOL answers
			// is a lie some BMCs tell: TestConsoleIgnoresStatusThatSOLDisproves.)
			name: "keepalive finds the payload inactive and SOL silent",
			act: func(r *rig, c *Console) {
				r.bmc.mu.Lock()
				r.bmc.active = false
				r.bmc.mu.Unlock()
				r.toConsole.dead.Store(true)
				r.toBMC.dead.Store(true)
			},
			within:  2*time.Second + 3*time.Second, // KeepaliveInterval + KeepaliveTimeout
			wantErr: ErrDeactivated,
			wantEv:  EventDeactivatedByBMC,
		},
		{
			// SOL stolen silently: the session answers, the status says
			// active, SOL says nothing.
			name: "SOL stops answering on a live session",
			act: func(r *rig, c *Console) {
				r.toConsole.dead.Store(true)
				r.toBMC.dead.Store(true)
			},
			within:  2*time.Second + 3*time.Second, // KeepaliveInterval + KeepaliveTimeout
			wantErr: ErrSOLStolen,
			wantEv:  EventProbeUnanswered,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(rigConfig{})
				c, err := Open(context.Background(), r.sess, ConsoleOptions{
					RetryInterval: 100 * time.Millisecond, Retries: 3,
					KeepaliveInterval: 2 * time.Second, KeepaliveTimeout: 3 * time.Second,
				})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				time.Sleep(10 * time.Millisecond) // the initial empty packet and its ACK
				resendsBefore := Counters().Retransmits
				start := time.Now()
				tc.act(r, c)
				_, err = c.Read(make([]byte, 10))
				took := time.Since(start)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Read error %v, want %v", err, tc.wantErr)
				}
				if took > tc.within {
					t.Fatalf("noticed after %v, want within %v", took, tc.within)
				}
				if evs := drainEvents(c); !slices.Contains(evs, tc.wantEv) {
					t.Fatalf("events %v, want %v", evs, tc.wantEv)
				}
				if n := Counters().Retransmits - resendsBefore; n < tc.wantResends {
					t.Fatalf("%d retransmissions counted, want at least %d", n, tc.wantResends)
				}
			})
		})
	}
}

func TestConsoleSessionLostNamesTheCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(rigConfig{})
		c, err := Open(context.Background(), r.sess, ConsoleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r.sess.end(errors.New("keepalive timed out after 3 attempts"))
		_, err = c.Read(make([]byte, 1))
		if !errors.Is(err, ErrSessionLost) || !strings.Contains(err.Error(), "keepalive timed out after 3 attempts") {
			t.Fatalf("Read error %q, want ErrSessionLost naming the cause", err)
		}
	})
}

func TestConsoleKeepsQuietSessionAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(rigConfig{})
		c, err := Open(context.Background(), r.sess, ConsoleOptions{KeepaliveInterval: 15 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		time.Sleep(time.Minute + time.Second)
		n := 0
		for _, call := range r.bmc.callLog() {
			if call == "Get Payload Activation Status 01" {
				n++
			}
		}
		if n != 4 {
			t.Fatalf("%d keepalives in a quiet minute, want 4 (one per 15 s)", n)
		}
	})
}

func TestConsoleSendBreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan Event, 10)
		r := newRig(rigConfig{endpoint: EndpointConfig{OnEvent: func(ev Event) { events <- ev }}})
		c, err := Open(context.Background(), r.sess, ConsoleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ep := r.bmc.endpoint()
		c.Write([]byte("before"))
		if err := c.SendBreak(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		buf := make([]byte, 10)
		n, _ := ep.Read(buf)
		if string(buf[:n]) != "before" {
			t.Fatalf("host read %q, want \"before\"", buf[:n])
		}
		select {
		case ev := <-events:
			if ev != EventBreakRequested {
				t.Fatalf("host saw %v, want BreakRequested", ev)
			}
		default:
			t.Fatal("host saw no break")
		}
	})
}

func TestConsoleReportsBMCStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(rigConfig{})
		c, err := Open(context.Background(), r.sess, ConsoleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ep := r.bmc.endpoint()
		ep.Break()
		ep.Signal(StatusTransmitOverrun)
		ep.SetTransferUnavailable(true)
		time.Sleep(100 * time.Millisecond)
		c.Close()
		want := []Event{EventActivated, EventBreakDetected, EventTransmitOverrun, EventTransferUnavailable}
		evs := drainEvents(c)
		slices.Sort(evs)
		slices.Sort(want)
		if !slices.Equal(evs, want) {
			t.Fatalf("events %v, want %v", evs, want)
		}
	})
}

func TestConsoleStartupPacket(t *testing.T) {
	tests := []struct {
		name string
		skip bool
		want []string // SOL payloads to the BMC, hex
	}{
		{"empty data packet first, then the keystroke", false, []string{"01000000", "02000000" + hexOf("x")}},
		{"SkipStartupPacket: the keystroke first", true, []string{"01000000" + hexOf("x")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(rigConfig{})
				r.toBMC.record = true
				c, err := Open(context.Background(), r.sess, ConsoleOptions{SkipStartupPacket: tc.skip})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				time.Sleep(10 * time.Millisecond)
				c.Write([]byte("x"))
				time.Sleep(10 * time.Millisecond)
				var got []string
				for _, b := range r.toBMC.sentPackets() {
					if b[0] != 0 { // data packets
						got = append(got, hexOf(string(b)))
					}
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("data packets %q, want %q", got, tc.want)
				}
			})
		})
	}
}
