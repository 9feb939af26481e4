package fakebmc

import (
	"context"
	"testing"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
	"obmd/sol"
)

// ipmitool sol activate on a suite with encryption: Activate Payload
// [01 01 c6 00 00 00] (SOL, instance 1, encrypt, authenticate, alerts
// deferred, handshake deasserted).
var ipmitoolActivateSOL = []byte{0x01, 0x01, 0xC6, 0x00, 0x00, 0x00}

// ipmitool sol deactivate: Deactivate Payload [01 01 00 00 00 00].
var ipmitoolDeactivateSOL = []byte{0x01, 0x01, 0x00, 0x00, 0x00, 0x00}

// Table 24-3: aux data 0, inbound payload 255 (FF 00), outbound 259
// (03 01), UDP port 623 (6F 02), no VLAN (FF FF); all LS byte first.
var activateSOLResponse = []byte{0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x00, 0x03, 0x01, 0x6F, 0x02, 0xFF, 0xFF}

func TestActivateDeactivateSOL(t *testing.T) {
	b := newTestBMC(t)
	first := newTestSession(1, "admin", ipmi.PrivilegeAdministrator)
	second := newTestSession(2, "admin", ipmi.PrivilegeUser)
	activate := exchange{ipmi.NetFnApp, ipmi.CmdActivatePayload, ipmitoolActivateSOL, activateSOLResponse}
	status := func(active byte) exchange {
		// Table 24-6: capacity 1 instance, then the instance bits.
		return exchange{ipmi.NetFnApp, ipmi.CmdGetPayloadActivationStatus, []byte{0x01}, []byte{0x00, 0x01, active, 0x00}}
	}
	runExchanges(t, b, first, []exchange{status(0x00), activate, status(0x01)})
	if !b.SOLActive() || first.handler(rmcpplus.PayloadSOL) == nil {
		t.Fatal("SOL not active, or no SOL payload handler on the session, after Activate Payload")
	}
	runExchanges(t, b, second, []exchange{
		// A second activation while the first holds the payload: 80h.
		{ipmi.NetFnApp, ipmi.CmdActivatePayload, ipmitoolActivateSOL, []byte{0x80}},
		// Any session of the same user may deactivate it (a client
		// clearing what its killed predecessor left).
		{ipmi.NetFnApp, ipmi.CmdDeactivatePayload, ipmitoolDeactivateSOL, []byte{0x00}},
		status(0x00),
		{ipmi.NetFnApp, ipmi.CmdDeactivatePayload, ipmitoolDeactivateSOL, []byte{0x80}},
		activate,
	})
	if first.handler(rmcpplus.PayloadSOL) != nil {
		t.Error("the deactivated session still routes SOL payloads")
	}
}

func TestActivatePayloadRefusals(t *testing.T) {
	cases := []struct {
		name    string
		solSets [][]byte // Set SOL Configuration Parameters requests first
		priv    ipmi.PrivilegeLevel
		req     []byte
		wantCC  byte
	}{
		{"not SOL", nil, ipmi.PrivilegeAdministrator, []byte{0x02, 0x01, 0, 0, 0, 0}, 0xCC},
		{"instance 2", nil, ipmi.PrivilegeAdministrator, []byte{0x01, 0x02, 0, 0, 0, 0}, 0xCC},
		{"short request", nil, ipmi.PrivilegeAdministrator, []byte{0x01, 0x01}, 0xC7},
		{"SOL disabled", [][]byte{{0x0E, 0x01, 0x00}}, ipmi.PrivilegeAdministrator, ipmitoolActivateSOL, 0x81},
		{"needs operator", [][]byte{{0x0E, 0x02, 0x03}}, ipmi.PrivilegeUser, ipmitoolActivateSOL, 0xD4},
		{"encryption forced", [][]byte{{0x0E, 0x02, 0x82}}, ipmi.PrivilegeUser, []byte{0x01, 0x01, 0x46, 0, 0, 0}, 0x83},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBMC(t)
			admin := newTestSession(1, "admin", ipmi.PrivilegeAdministrator)
			for _, set := range tc.solSets {
				runExchanges(t, b, admin, []exchange{{ipmi.NetFnTransport, ipmi.CmdSetSOLConfigParams, set, []byte{0x00}}})
			}
			s := newTestSession(2, "admin", tc.priv)
			runExchanges(t, b, s, []exchange{{ipmi.NetFnApp, ipmi.CmdActivatePayload, tc.req, []byte{tc.wantCC}}})
			if b.SOLActive() {
				t.Error("SOL active after a refused activation")
			}
		})
	}
}

func TestDeactivatePayloadOtherUserNeedsAdministrator(t *testing.T) {
	b := newTestBMC(t, func(c *BMCConfig) {
		c.Users = append(c.Users, User{Name: "viewer", Password: []byte("x"), MaxPrivilege: ipmi.PrivilegeUser})
	})
	owner := newTestSession(1, "viewer", ipmi.PrivilegeUser)
	runExchanges(t, b, owner, []exchange{{ipmi.NetFnApp, ipmi.CmdActivatePayload, ipmitoolActivateSOL, activateSOLResponse}})
	other := newTestSession(2, "admin", ipmi.PrivilegeOperator)
	runExchanges(t, b, other, []exchange{{ipmi.NetFnApp, ipmi.CmdDeactivatePayload, ipmitoolDeactivateSOL, []byte{0xD4}}})
	admin := newTestSession(3, "admin", ipmi.PrivilegeAdministrator)
	runExchanges(t, b, admin, []exchange{{ipmi.NetFnApp, ipmi.CmdDeactivatePayload, ipmitoolDeactivateSOL, []byte{0x00}}})
}

func TestSOLFreedWhenSessionEnds(t *testing.T) {
	b := newTestBMC(t)
	s := newTestSession(1, "admin", ipmi.PrivilegeAdministrator)
	runExchanges(t, b, s, []exchange{{ipmi.NetFnApp, ipmi.CmdActivatePayload, ipmitoolActivateSOL, activateSOLResponse}})
	close(s.done) // idle timeout, Close Session, or a dropped session
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := b.WaitSOL(ctx, false); err != nil {
		t.Fatal(err)
	}
	next := newTestSession(2, "admin", ipmi.PrivilegeAdministrator)
	runExchanges(t, b, next, []exchange{{ipmi.NetFnApp, ipmi.CmdActivatePayload, ipmitoolActivateSOL, activateSOLResponse}})
}

// waitSent waits until the session has sent a SOL payload that pred
// accepts, and returns it.
func waitSent(t *testing.T, s *testSession, pred func(sol.Packet) bool) sol.Packet {
	t.Helper()
	deadline := time.After(5 * time.Second)
	seen := 0
	for {
		s.mu.Lock()
		sent := s.sent[seen:]
		ch := s.sentCh
		s.mu.Unlock()
		for _, raw := range sent {
			seen++
			if rmcpplus.PayloadType(raw[0]) != rmcpplus.PayloadSOL {
				continue
			}
			p, err := sol.ParsePacket(raw[1:])
			if err != nil {
				t.Fatalf("BMC sent a malformed SOL payload % x: %v", raw[1:], err)
			}
			if pred(p) {
				return p
			}
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("timed out waiting for a SOL packet from the BMC")
		}
	}
}

func TestSOLCounterOutputOverSession(t *testing.T) {
	b := newTestBMC(t)
	s := newTestSession(1, "admin", ipmi.PrivilegeAdministrator)
	runExchanges(t, b, s, []exchange{{ipmi.NetFnApp, ipmi.CmdActivatePayload, ipmitoolActivateSOL, activateSOLResponse}})
	p := waitSent(t, s, func(p sol.Packet) bool { return p.Seq != 0 && len(p.Data) > 0 })
	if p.Seq != 1 || len(p.Data) < 2 || p.Data[len(p.Data)-1] == 0 {
		t.Fatalf("first data packet %v, want sequence 1 with counter text", p)
	}
	// The host's output starts at a whole line.
	if p.Data[0] < '0' || p.Data[0] > '9' {
		t.Fatalf("first character %q is not a digit", p.Data[0])
	}
	// ACK it in full, as ipmitool does: the next packet follows.
	s.handler(rmcpplus.PayloadSOL)((&sol.Packet{AckSeq: 1, Accepted: uint8(len(p.Data))}).Marshal())
	waitSent(t, s, func(p sol.Packet) bool { return p.Seq == 2 })

	runExchanges(t, b, s, []exchange{{ipmi.NetFnApp, ipmi.CmdDeactivatePayload, ipmitoolDeactivateSOL, []byte{0x00}}})
	// Deactivation tells the console: "SOL deactivating" (Table 15-3).
	waitSent(t, s, func(p sol.Packet) bool { return p.Op&sol.StatusDeactivating != 0 })
}

func TestSOLEchoOverSession(t *testing.T) {
	b := newTestBMC(t, func(c *BMCConfig) { c.Console = ConsoleEcho })
	s := newTestSession(1, "admin", ipmi.PrivilegeAdministrator)
	runExchanges(t, b, s, []exchange{{ipmi.NetFnApp, ipmi.CmdActivatePayload, ipmitoolActivateSOL, activateSOLResponse}})
	in := s.handler(rmcpplus.PayloadSOL)
	in((&sol.Packet{Seq: 1, Data: []byte("hello\r")}).Marshal())
	ack := waitSent(t, s, func(p sol.Packet) bool { return p.AckSeq == 1 })
	if ack.Accepted != 6 || ack.Op&sol.OpNACK != 0 {
		t.Fatalf("ACK %v, want all 6 characters accepted", ack)
	}
	echo := waitSent(t, s, func(p sol.Packet) bool { return p.Seq != 0 && len(p.Data) > 0 })
	if string(echo.Data) != "hello\r" {
		t.Fatalf("echo %q, want %q", echo.Data, "hello\r")
	}
	// A retransmission of the same packet is not typed twice.
	in((&sol.Packet{Seq: 1, Data: []byte("hello\r")}).Marshal())
	in((&sol.Packet{Seq: 2, AckSeq: echo.Seq, Accepted: uint8(len(echo.Data)), Data: []byte("!")}).Marshal())
	waitSent(t, s, func(p sol.Packet) bool { return p.AckSeq == 2 })
	waitSent(t, s, func(p sol.Packet) bool { return string(p.Data) == "!" }) // echoed, so read
	if got := string(b.HostInput()); got != "hello\r!" {
		t.Errorf("host input %q, want %q", got, "hello\r!")
	}
	in([]byte{0x01}) // a runt payload is ignored
}
