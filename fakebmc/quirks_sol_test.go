package fakebmc

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
	"obmd/sol"
)

// Each SOL quirk at the command level: what the BMC answers, byte for
// byte where the catalogue row is about bytes. The peers' view is in
// compat_sol_test.go.

func withQuirks(qs ...Quirk) func(*BMCConfig) {
	return func(c *BMCConfig) {
		c.Quirks = Quirks{}
		for _, q := range qs {
			c.Quirks[q] = true
		}
	}
}

func activateRsp(t *testing.T, b *BMC, s session, aux byte) (ipmi.CompletionCode, ipmi.ActivatePayloadRsp) {
	t.Helper()
	got := call(b, s, ipmi.NetFnApp, ipmi.CmdActivatePayload, []byte{0x01, 0x01, aux, 0, 0, 0})
	var rsp ipmi.ActivatePayloadRsp
	if got[0] == 0 {
		if err := rsp.Unmarshal(got[1:]); err != nil {
			t.Fatal(err)
		}
	}
	return ipmi.CompletionCode(got[0]), rsp
}

func TestQuirkSOLPortAndSizes(t *testing.T) {
	cases := []struct {
		quirk    Quirk
		port     int // the BMC's
		wantPort func(b *BMC) uint16
		wantSize uint16
	}{
		{"", 9623, func(*BMC) uint16 { return 9623 }, solInboundPayloadSize},
		// 9623 = 0x2597, named 0x9725 (bytes 25 97 on the wire).
		{QuirkSOLPortSwapped, 9623, func(*BMC) uint16 { return 0x9725 }, solInboundPayloadSize},
		{QuirkSOLPort623, 9623, func(*BMC) uint16 { return 623 }, solInboundPayloadSize},
		{QuirkSOLPortBogus, 9623, func(b *BMC) uint16 { return uint16(b.bogusSOL.LocalAddr().(*net.UDPAddr).Port) }, solInboundPayloadSize},
		{QuirkSOLSize1, 9623, func(*BMC) uint16 { return 9623 }, 1},
	}
	for _, tc := range cases {
		t.Run(string(tc.quirk), func(t *testing.T) {
			b := newTestBMC(t, withQuirks(tc.quirk))
			b.addr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: tc.port}
			b.startQuirks()
			t.Cleanup(b.stopQuirks)
			cc, rsp := activateRsp(t, b, newTestSession(1, "admin", ipmi.PrivilegeAdministrator), 0xC6)
			if cc != 0 {
				t.Fatalf("Activate Payload: %v", cc)
			}
			if want := tc.wantPort(b); rsp.Port != want {
				t.Errorf("port %d, want %d", rsp.Port, want)
			}
			if rsp.InboundPayloadSize != tc.wantSize || (tc.wantSize == 1) != (rsp.OutboundPayloadSize == 1) {
				t.Errorf("sizes %d in, %d out; want %d in", rsp.InboundPayloadSize, rsp.OutboundPayloadSize, tc.wantSize)
			}
			if tc.quirk == QuirkSOLPortBogus && rsp.Port == uint16(tc.port) {
				t.Error("the bogus port is the session's")
			}
		})
	}
}

func TestQuirkCTSAux(t *testing.T) {
	b := newTestBMC(t, withQuirks(QuirkCTSAux))
	s := newTestSession(1, "admin", ipmi.PrivilegeAdministrator)
	for _, aux := range []byte{0xC6, 0x06, 0x02} { // handshake bit set: ipmitool's, FreeIPMI's
		if cc, _ := activateRsp(t, b, s, aux); cc != ipmi.CCInvalidDataField {
			t.Fatalf("aux %02X: %v, want CCh", aux, cc)
		}
	}
	if cc, _ := activateRsp(t, b, s, 0xC4); cc != 0 {
		t.Fatalf("aux C4 (handshake bit clear): %v, want success", cc)
	}
}

func TestQuirkActivationStatusLies(t *testing.T) {
	b := newTestBMC(t, withQuirks(QuirkActivationStatusLies))
	s := newTestSession(0x77, "admin", ipmi.PrivilegeAdministrator)
	if cc, _ := activateRsp(t, b, s, 0xC6); cc != 0 {
		t.Fatal(cc)
	}
	runExchanges(t, b, s, []exchange{
		// Table 24-6: capacity 1, no instance active: a lie.
		{ipmi.NetFnApp, ipmi.CmdGetPayloadActivationStatus, []byte{0x01}, []byte{0x00, 0x01, 0x00, 0x00}},
		// Table 24-7: Get Payload Instance Info tells the truth: session
		// 0x77, serial port 1.
		{ipmi.NetFnApp, ipmi.CmdGetPayloadInstanceInfo, []byte{0x01, 0x01},
			[]byte{0x00, 0x77, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0}},
	})
}

func TestQuirkDeactivateIgnored(t *testing.T) {
	b := newTestBMC(t, withQuirks(QuirkDeactivateIgnored))
	first := newTestSession(1, "admin", ipmi.PrivilegeAdministrator)
	if cc, _ := activateRsp(t, b, first, 0xC6); cc != 0 {
		t.Fatal(cc)
	}
	close(first.done) // the client leaves: the instance stays (OpenBMC)
	next := newTestSession(2, "admin", ipmi.PrivilegeAdministrator)
	runExchanges(t, b, next, []exchange{
		{ipmi.NetFnApp, ipmi.CmdDeactivatePayload, ipmitoolDeactivateSOL, []byte{0x00}}, // answered...
		{ipmi.NetFnApp, ipmi.CmdActivatePayload, ipmitoolActivateSOL, []byte{0x80}},     // ...and ignored
		{ipmi.NetFnApp, ipmi.CmdDeactivatePayload, ipmitoolDeactivateSOL, []byte{0x00}},
		{ipmi.NetFnApp, ipmi.CmdActivatePayload, ipmitoolActivateSOL, []byte{0x80}},
		// SOL Enable off and on ends the instance.
		{ipmi.NetFnTransport, ipmi.CmdSetSOLConfigParams, []byte{0x0E, 0x01, 0x00}, []byte{0x00}},
		{ipmi.NetFnTransport, ipmi.CmdSetSOLConfigParams, []byte{0x0E, 0x01, 0x01}, []byte{0x00}},
	})
	if cc, _ := activateRsp(t, b, next, 0xC6); cc != 0 {
		t.Fatalf("Activate Payload after toggling SOL Enable: %v", cc)
	}
}

func TestSOLDisableEndsTheInstance(t *testing.T) {
	b := newTestBMC(t)
	owner := newTestSession(1, "admin", ipmi.PrivilegeAdministrator)
	if cc, _ := activateRsp(t, b, owner, 0xC6); cc != 0 {
		t.Fatal(cc)
	}
	admin := newTestSession(2, "admin", ipmi.PrivilegeAdministrator)
	runExchanges(t, b, admin, []exchange{{ipmi.NetFnTransport, ipmi.CmdSetSOLConfigParams, []byte{0x0E, 0x01, 0x00}, []byte{0x00}}})
	if b.SOLActive() {
		t.Fatal("SOL still active after SOL Enable was turned off")
	}
	waitSent(t, owner, func(p sol.Packet) bool { return p.Op&sol.StatusDeactivating != 0 })
}

func TestQuirkSOLStrictSeq(t *testing.T) {
	b := newTestBMC(t, withQuirks(QuirkSOLStrictSeq), func(c *BMCConfig) { c.Console = ConsoleEcho })
	s := newTestSession(1, "admin", ipmi.PrivilegeAdministrator)
	if cc, _ := activateRsp(t, b, s, 0xC6); cc != 0 {
		t.Fatal(cc)
	}
	in := s.handler(rmcpplus.PayloadSOL)
	in((&sol.Packet{Seq: 1, Data: []byte("a")}).Marshal())
	if ack := waitSent(t, s, func(p sol.Packet) bool { return p.AckSeq == 1 }); ack.Accepted != 1 {
		t.Fatalf("ACK of the first packet: %v", ack)
	}
	acks := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := 0
		for _, raw := range s.sent {
			if p, err := sol.ParsePacket(raw[1:]); err == nil && p.AckSeq == 1 {
				n++
			}
		}
		return n
	}
	before := acks()
	in((&sol.Packet{Seq: 1, Data: []byte("a")}).Marshal()) // a retransmission: dropped, not re-ACKed
	in((&sol.Packet{Seq: 3, Data: []byte("c")}).Marshal()) // not the next number: dropped
	in((&sol.Packet{Seq: 2, Data: []byte("b")}).Marshal()) // the next: taken
	waitSent(t, s, func(p sol.Packet) bool { return p.AckSeq == 2 })
	if after := acks(); after != before {
		t.Fatalf("%d more ACKs of packet 1 after its retransmission, want none", after-before)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.WaitHostInput(ctx, 2) // on a timeout, the check below says what came
	if got := string(b.HostInput()); got != "ab" {
		t.Fatalf("host received %q, want \"ab\"", got)
	}
}

func TestQuirkSOLSteal(t *testing.T) {
	b := newTestBMC(t, withQuirks(QuirkSOLSteal))
	s := newTestSession(0x42, "admin", ipmi.PrivilegeAdministrator)
	if cc, _ := activateRsp(t, b, s, 0xC6); cc != 0 {
		t.Fatal(cc)
	}
	waitSent(t, s, func(p sol.Packet) bool { return p.Seq != 0 }) // output flows
	if err := b.StealSOL(); err != nil {
		t.Fatalf("StealSOL: %v", err)
	}
	if s.handler(rmcpplus.PayloadSOL) != nil {
		t.Error("the victim's SOL packets are still handled")
	}
	s.mu.Lock()
	for _, raw := range s.sent {
		if p, err := sol.ParsePacket(raw[1:]); err == nil && p.Op&sol.StatusDeactivating != 0 {
			t.Error("the victim was told SOL is deactivating: the steal must be silent")
		}
	}
	s.mu.Unlock()
	got := call(b, s, ipmi.NetFnApp, ipmi.CmdGetPayloadInstanceInfo, []byte{0x01, 0x01})
	var info ipmi.GetPayloadInstanceInfoRsp
	if got[0] != 0 || info.Unmarshal(got[1:]) != nil || !info.Active() || info.SessionID == 0x42 {
		t.Fatalf("Get Payload Instance Info [% x]: want active for another session", got)
	}
	runExchanges(t, b, s, []exchange{
		{ipmi.NetFnApp, ipmi.CmdGetPayloadActivationStatus, []byte{0x01}, []byte{0x00, 0x01, 0x01, 0x00}},
		{ipmi.NetFnApp, ipmi.CmdActivatePayload, ipmitoolActivateSOL, []byte{0x80}},
	})
	if err := b.StealSOL(); err == nil {
		t.Error("StealSOL stole from the phantom")
	}
	// Taking it over works, as from a stale activation.
	runExchanges(t, b, s, []exchange{{ipmi.NetFnApp, ipmi.CmdDeactivatePayload, ipmitoolDeactivateSOL, []byte{0x00}}})
	if cc, _ := activateRsp(t, b, s, 0xC6); cc != 0 {
		t.Fatalf("Activate Payload after the takeover: %v", cc)
	}
}

func TestQuirkSOLSeqRestart(t *testing.T) {
	b := newTestBMC(t, withQuirks(QuirkSOLSeqRestart), func(c *BMCConfig) {
		c.StartOn = true
		c.Timing = PowerTiming{CycleOff: time.Millisecond, SoftShutdown: time.Millisecond}
	})
	b.quirkStop = make(chan struct{})
	go b.watchBoots()
	t.Cleanup(func() { close(b.quirkStop) })
	s := newTestSession(1, "admin", ipmi.PrivilegeAdministrator)
	if cc, _ := activateRsp(t, b, s, 0xC6); cc != 0 {
		t.Fatal(cc)
	}
	in := s.handler(rmcpplus.PayloadSOL)
	for seq := uint8(1); seq <= 4; seq++ {
		p := waitSent(t, s, func(p sol.Packet) bool { return p.Seq == seq })
		in((&sol.Packet{AckSeq: seq, Accepted: uint8(len(p.Data))}).Marshal())
	}
	s.mu.Lock()
	mark := len(s.sent)
	s.mu.Unlock()
	before := len(b.sim.Boots())
	if err := b.sim.HardReset(); err != nil {
		t.Fatal(err)
	}
	if len(b.sim.Boots()) != before+1 {
		t.Fatal("no boot")
	}
	// A packet numbered 5 may have left before the boot; ACK what comes
	// until a new packet numbered 1 shows the restart.
	deadline := time.After(5 * time.Second)
	for seen := mark; ; {
		s.mu.Lock()
		sent, ch := s.sent[seen:], s.sentCh
		s.mu.Unlock()
		for _, raw := range sent {
			seen++
			p, err := sol.ParsePacket(raw[1:])
			if err != nil || p.Seq == 0 {
				continue
			}
			if p.Seq == 1 {
				return
			}
			if p.Seq != 5 {
				t.Fatalf("packet %d after the reset, want 5 at most, then 1", p.Seq)
			}
			in((&sol.Packet{AckSeq: p.Seq, Accepted: uint8(len(p.Data))}).Marshal())
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("no packet numbered 1 after the reset")
		}
	}
}

// TestSOLPortSwappedNeedsNoQuirk is issue 10's headline case: Activate
// Payload names the session's port byte-swapped (Supermicro X8DTH-iF), and
// obmd's console, opened with no quirk, streams. Before, it sent SOL to
// the swapped port, heard nothing and ended with "BMC stopped acknowledging
// SOL data" unless the node named the "solport" quirk.
func TestSOLPortSwappedNeedsNoQuirk(t *testing.T) {
	t.Parallel()
	f := startTestFleet(t, 1, func(c *FleetConfig) { c.BMC.Quirks = Quirks{QuirkSOLPortSwapped: true} })
	con, err := sol.Open(t.Context(), dial(t, f, 0), sol.ConsoleOptions{})
	if err != nil {
		t.Fatalf("sol.Open: %v", err)
	}
	defer con.Close()
	if a := con.Activation(); a.Port == f.BMC(0).Addr().Port {
		t.Fatalf("Activate Payload named port %d, the session's: the quirk is not in effect", a.Port)
	}
	r := bufio.NewReader(con)
	timer := time.AfterFunc(10*time.Second, func() { con.Close() })
	defer timer.Stop()
	if _, err := r.ReadString('\n'); err != nil { // may start mid-line
		t.Fatal(err)
	}
	last := -1
	for range 2000 { // about a second at 115200 baud, well past the retry budget
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("console after line %d: %v", last, err)
		}
		v, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
		if err != nil || (last >= 0 && v != last+1) {
			t.Fatalf("line %q after %d: not the next counter value", line, last)
		}
		last = v
	}
}
