package sol

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// The Console against fake BMCs that bend IPMI as real ones do
// (BMC-QUIRKS.md, "Serial over LAN"), with no named quirk configured.

// adaptLog collects what a Console reports through OnAdapt.
type adaptLog struct {
	mu  sync.Mutex
	got []Adaptation
}

func (l *adaptLog) add(a Adaptation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, a)
}

func (l *adaptLog) quirks() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var q []string
	for _, a := range l.got {
		q = append(q, a.Quirk)
	}
	return q
}

func ccErr(cmd ipmi.Command, code ipmi.CompletionCode) error {
	return &ipmi.CompletionError{NetFn: ipmi.NetFnApp, Cmd: cmd, Code: code}
}

// activateCalls is the Activate Payload, Deactivate Payload and Set SOL
// Configuration Parameters requests in a call log.
func activateCalls(calls []string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, "Activate") || strings.HasPrefix(c, "Deactivate") || strings.HasPrefix(c, "Set SOL") {
			out = append(out, c)
		}
	}
	return out
}

// TestOpenTriesAuxAlternatives: a BMC that refuses the CTS/DCD/DSR
// handshake bit (an Intel board) or wants exactly 08h (Intel 82571
// pass-through) is activated with the alternatives, once each, where
// ipmitool and FreeIPMI need -o intelplus/-W intel20 or -o i82571spt.
func TestOpenTriesAuxAlternatives(t *testing.T) {
	tests := []struct {
		name    string
		accepts func(aux byte) bool
		opts    ConsoleOptions
		want    []string
		wantAux byte
		wantErr string
	}{
		{
			name:    "handshake bit must be clear",
			accepts: func(aux byte) bool { return aux&ipmi.SOLAuxHandshakeDeasserted == 0 },
			want:    []string{"Activate Payload 0101c6000000", "Activate Payload 0101c4000000"},
			wantAux: 0xC4,
		},
		{
			name:    "82571 wants 08h",
			accepts: func(aux byte) bool { return aux == 0x08 },
			want:    []string{"Activate Payload 0101c6000000", "Activate Payload 0101c4000000", "Activate Payload 010108000000"},
			wantAux: 0x08,
		},
		{
			name:    "what the BMC accepted before goes first",
			accepts: func(aux byte) bool { return aux == 0x08 },
			opts:    ConsoleOptions{Aux: &[4]byte{0x08}},
			want:    []string{"Activate Payload 010108000000"},
			wantAux: 0x08,
		},
		{
			name:    "nothing accepted: each alternative once, then the error",
			accepts: func(aux byte) bool { return false },
			want:    []string{"Activate Payload 0101c6000000", "Activate Payload 0101c4000000", "Activate Payload 010108000000"},
			wantErr: "auxiliary data C6 (CCh), C4 (CCh) refused",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(rigConfig{})
				r.bmc.setHook(func(ctx context.Context, cmd ipmi.Command, data []byte) ([]byte, error, bool) {
					if cmd == ipmi.CmdActivatePayload && !tc.accepts(data[2]) {
						return nil, ccErr(cmd, ipmi.CCInvalidDataField), true
					}
					return nil, nil, false
				})
				var log adaptLog
				tc.opts.OnAdapt = log.add
				c, err := Open(context.Background(), r.sess, tc.opts)
				if got := activateCalls(r.bmc.callLog()); !slices.Equal(got, tc.want) {
					t.Errorf("requests %q, want %q", got, tc.want)
				}
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("Open error %v, want one containing %q", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if got := c.Activation().Aux[0]; got != tc.wantAux {
					t.Errorf("Activation().Aux = %02X, want %02X", got, tc.wantAux)
				}
				wantQuirks := []string{QuirkCTSAux}
				if len(tc.want) == 1 {
					wantQuirks = nil // accepted at once: nothing learned
				}
				if got := log.quirks(); !slices.Equal(got, wantQuirks) {
					t.Errorf("adaptations %q, want %q", got, wantQuirks)
				}
			})
		})
	}
}

// TestOpenTogglesSOLEnableWhenDeactivateIsIgnored: Deactivate Payload
// answers 00h and changes nothing (Dell M6xx; OpenBMC keeping an instance
// whose session is gone): SOL Enable is turned off and on once, then the
// activation succeeds. Before, the Console gave up after three takeovers.
func TestOpenTogglesSOLEnableWhenDeactivateIsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(rigConfig{})
		held := true // by another session; only turning SOL off frees it
		var mu sync.Mutex
		r.bmc.setHook(func(ctx context.Context, cmd ipmi.Command, data []byte) ([]byte, error, bool) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case cmd == ipmi.CmdActivatePayload && held:
				return nil, ccErr(cmd, ipmi.CCPayloadAlreadyActive), true
			case cmd == ipmi.CmdDeactivatePayload && held:
				return nil, nil, true // 00h, no effect
			case cmd == ipmi.CmdSetSOLConfigParams:
				if data[1] == ipmi.SOLParamEnable && data[2] == 0 {
					held = false
				}
				return nil, nil, true
			}
			return nil, nil, false
		})
		var log adaptLog
		c, err := Open(context.Background(), r.sess, ConsoleOptions{OnAdapt: log.add})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		want := []string{"Activate Payload 0101c6000000", "Deactivate Payload 010100000000", "Activate Payload 0101c6000000",
			"Set SOL Configuration Parameters 0e0100", "Set SOL Configuration Parameters 0e0101", "Activate Payload 0101c6000000"}
		if got := activateCalls(r.bmc.callLog()); !slices.Equal(got, want) {
			t.Fatalf("requests %q, want %q", got, want)
		}
		if a := c.Activation(); !a.EnableToggled || a.TakeOvers != 1 {
			t.Errorf("Activation %+v, want EnableToggled after 1 takeover", a)
		}
		if got, want := log.quirks(), []string{QuirkDeactivateIgnored, QuirkStaleActivation}; !slices.Equal(got, want) {
			t.Errorf("adaptations %q, want %q", got, want)
		}
	})
}

// TestOpenNonsensePayloadSize: a BMC reporting a payload size of 1 (seen on
// several boards) gets SafePayloadSize's 28 characters per packet, not one.
func TestOpenNonsensePayloadSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(rigConfig{inbound: 1, outbound: 1})
		r.bmc.outbound = 259 // what its SOL really sends
		r.toBMC.record = true
		var log adaptLog
		c, err := Open(context.Background(), r.sess, ConsoleOptions{OnAdapt: log.add})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(strings.Repeat("x", 60))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		var sizes []int
		for _, b := range r.toBMC.sentPackets() {
			if b[0] != 0 && len(b) > HeaderLen {
				sizes = append(sizes, len(b)-HeaderLen)
			}
		}
		if !slices.Equal(sizes, []int{28, 28, 4}) {
			t.Fatalf("data packet sizes %v, want [28 28 4]", sizes)
		}
		if got := log.quirks(); !slices.Equal(got, []string{QuirkSOLPayloadSize}) {
			t.Errorf("adaptations %q", got)
		}
	})
}

// portSession is a fake session that knows its BMC port and can open a
// payload that tries two ports.
type portSession struct {
	*fakeSession
	port       int
	eitherPort int // the port OpenPayloadEither was called with
}

func (s *portSession) RemotePort() int { return s.port }

func (s *portSession) OpenPayloadEither(pt rmcpplus.PayloadType, port int, h func([]byte)) (*fakeConn, error) {
	s.eitherPort = port
	s.conn.decided = s.port // the fake answers on the session's port
	return s.OpenPayload(pt, 0)
}

func TestOpenSOLPortRules(t *testing.T) {
	const sess = 9623
	tests := []struct {
		name       string
		named      int
		wantOpen   int // OpenPayload's port (0: the session's)
		wantEither int // OpenPayloadEither's port (0: not used)
		wantQuirk  bool
	}{
		{"the session's port", sess, 0, 0, false},
		{"byte-swapped session port", 0x9725, 0, 0, true}, // 9623 = 0x2597
		{"zero", 0, 0, 0, false},
		{"another port: try both", 623, 0, 623, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(rigConfig{})
				r.bmc.port = uint16(tc.named)
				s := &portSession{fakeSession: r.sess, port: sess}
				var log adaptLog
				c, err := Open(context.Background(), s, ConsoleOptions{OnAdapt: log.add})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				time.Sleep(10 * time.Millisecond) // the startup packet's ACK
				if r.sess.openedPort != tc.wantOpen || s.eitherPort != tc.wantEither {
					t.Fatalf("opened port %d, either %d; want %d, %d", r.sess.openedPort, s.eitherPort, tc.wantOpen, tc.wantEither)
				}
				if got := slices.Contains(log.quirks(), QuirkSOLPort); got != tc.wantQuirk {
					t.Fatalf("solport adaptation %v, want %v (%+v)", got, tc.wantQuirk, log.got)
				}
			})
		})
	}
}

// TestConsoleIgnoresStatusThatSOLDisproves: Get Payload Activation Status
// says inactive while SOL flows (Quanta S99Q, Dell FS12-TY). Before, the
// Console ended at the first keepalive and was reopened in a loop; now the
// probe sent with the keepalive disproves the claim and the console stays.
func TestConsoleIgnoresStatusThatSOLDisproves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(rigConfig{})
		var log adaptLog
		c, err := Open(context.Background(), r.sess, ConsoleOptions{
			KeepaliveInterval: time.Second, KeepaliveTimeout: 2 * time.Second, OnAdapt: log.add})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r.bmc.setHook(func(ctx context.Context, cmd ipmi.Command, data []byte) ([]byte, error, bool) {
			if cmd == ipmi.CmdGetPayloadActivationStatus {
				rsp := ipmi.GetPayloadActivationStatusRsp{InstanceCapacity: 1} // "inactive"
				return rsp.Marshal(), nil, true
			}
			return nil, nil, false
		})
		time.Sleep(10 * time.Second)
		ep := r.bmc.endpoint()
		ep.Write([]byte("still here"))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "still here" {
			t.Fatalf("Read = %q, %v after 10 s of lying status", buf[:n], err)
		}
		if got := log.quirks(); !slices.Equal(got, []string{QuirkActivationStatusLies}) {
			t.Fatalf("adaptations %q, want [%s]", got, QuirkActivationStatusLies)
		}
	})
}

// idSession is a fake session that knows its session IDs, so the Console
// asks Get Payload Instance Info.
type idSession struct{ *fakeSession }

func (idSession) BMCSessionID() uint32     { return 0x1234 }
func (idSession) ConsoleSessionID() uint32 { return 0xA0A0 }

// TestConsoleNoticesSilentSteal: the BMC hands the SOL instance to another
// session without a word: its output stops, the session answers, and Get
// Payload Instance Info names the other session. The Console fails with
// ErrSOLStolen naming it within KeepaliveInterval + KeepaliveTimeout.
// Before, it stayed silent forever. The same answer while SOL flows is
// ignored.
func TestConsoleNoticesSilentSteal(t *testing.T) {
	owner := uint32(0x1234)
	var mu sync.Mutex
	hook := func(ctx context.Context, cmd ipmi.Command, data []byte) ([]byte, error, bool) {
		if cmd != ipmi.CmdGetPayloadInstanceInfo {
			return nil, nil, false
		}
		mu.Lock()
		defer mu.Unlock()
		rsp := ipmi.GetPayloadInstanceInfoRsp{SessionID: owner, Info: [8]byte{1}}
		return rsp.Marshal(), nil, true
	}
	t.Run("stolen", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(rigConfig{})
			r.bmc.setHook(hook)
			var log adaptLog
			c, err := Open(context.Background(), idSession{r.sess}, ConsoleOptions{
				KeepaliveInterval: time.Second, KeepaliveTimeout: 2 * time.Second, OnAdapt: log.add})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			time.Sleep(2500 * time.Millisecond) // two quiet keepalives
			start := time.Now()
			mu.Lock()
			owner = 0xBEEF
			mu.Unlock()
			r.toConsole.dead.Store(true) // the instance now talks to the other session
			r.toBMC.dead.Store(true)
			_, err = c.Read(make([]byte, 10))
			if !errors.Is(err, ErrSOLStolen) || !strings.Contains(err.Error(), "session 0000beef") {
				t.Fatalf("Read error %v, want ErrSOLStolen naming session 0000beef", err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("noticed after %v, want within KeepaliveInterval + KeepaliveTimeout (3 s)", took)
			}
			if !slices.Contains(log.quirks(), QuirkSOLStolen) {
				t.Fatalf("adaptations %q lack %s", log.quirks(), QuirkSOLStolen)
			}
		})
	})
	t.Run("claim disproved by SOL", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			mu.Lock()
			owner = 0xBEEF // a BMC that names the wrong session
			mu.Unlock()
			r := newRig(rigConfig{})
			r.bmc.setHook(hook)
			c, err := Open(context.Background(), idSession{r.sess}, ConsoleOptions{
				KeepaliveInterval: time.Second, KeepaliveTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			time.Sleep(10 * time.Second)
			r.bmc.endpoint().Write([]byte("ok"))
			buf := make([]byte, 8)
			if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ok" {
				t.Fatalf("Read = %q, %v", buf[:n], err)
			}
		})
	})
}

// TestConsoleStrictBMCKeepsTyping: a BMC that never ACKs a retransmission
// (OpenBMC) loses our first ACK: the keystrokes were taken, so after two
// resends the Console moves on instead of ending with ErrPeerNotAnswering,
// and what is typed next arrives once.
func TestConsoleStrictBMCKeepsTyping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(rigConfig{})
		// The strict BMC: it takes a packet once and drops every other
		// copy of it; and its ACK of "one" is lost.
		var mu sync.Mutex
		seen := map[uint8]bool{}
		lostOne := false
		r.toBMC.deliver = func(b []byte) {
			p, err := ParsePacket(b)
			mu.Lock()
			dup := err == nil && p.Seq != 0 && seen[p.Seq]
			if err == nil && p.Seq != 0 {
				seen[p.Seq] = true
			}
			mu.Unlock()
			if !dup {
				r.bmc.handle(b)
			}
		}
		r.toConsole.deliver = func(b []byte) {
			p, err := ParsePacket(b)
			mu.Lock()
			drop := err == nil && !lostOne && p.AckSeq != 0 && p.Accepted == 3
			lostOne = lostOne || drop
			mu.Unlock()
			if !drop {
				r.sess.conn.deliver(b)
			}
		}
		var log adaptLog
		c, err := Open(context.Background(), r.sess, ConsoleOptions{
			RetryInterval: 100 * time.Millisecond, Retries: 3, OnAdapt: log.add})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		time.Sleep(10 * time.Millisecond)
		ep := r.bmc.endpoint()
		c.Write([]byte("one"))
		time.Sleep(50 * time.Millisecond)
		ep.Write([]byte("host output")) // the BMC is plainly alive
		time.Sleep(time.Second)
		c.Write([]byte("two"))
		time.Sleep(time.Second)
		got := make([]byte, 16)
		n, _ := ep.Read(got)
		if string(got[:n]) != "onetwo" {
			t.Fatalf("host read %q, want \"onetwo\"", got[:n])
		}
		mu.Lock()
		dropped := lostOne
		mu.Unlock()
		if !dropped {
			t.Fatal("the ACK was never dropped: the test did not test")
		}
		if !slices.Contains(log.quirks(), QuirkStrictSeq) {
			t.Fatalf("adaptations %q lack %s", log.quirks(), QuirkStrictSeq)
		}
	})
}
