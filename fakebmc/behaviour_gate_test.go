package fakebmc

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "|", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ipmitoolOpenSession is ipmitool 1.8.19's Open Session Request for suite
// 3 as captured against ipmi_sim (rmcpplus/testdata/ipmitool-suite3.pcap):
// RMCP header (section 13.1.3), RMCP+ session header with payload type
// 10h, session ID 0, sequence 0, length 32 (section 13.6), then the
// request (Table 13-9): tag 0, privilege 0, console session ID a0a2a3a4,
// HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128.
const ipmitoolOpenSession = "06 00 ff 07 | 06 10 00000000 00000000 2000 |" +
	"00 00 0000 a4a3a2a0 | 00 0000 08 01 000000 | 01 0000 08 01 000000 | 02 0000 08 01 000000"

// tableFullRefusal is the answer written from Table 13-10: RMCP header,
// session header with payload type 11h and length 36, then tag 0, status
// 01h, privilege 0, reserved, the console's session ID echoed, managed
// session ID 0 and three algorithm payloads naming no algorithm.
const tableFullRefusal = "06 00 ff 07 | 06 11 00000000 00000000 2400 |" +
	"00 01 00 00 a4a3a2a0 00000000 | 00 0000 08 00 000000 | 01 0000 08 00 000000 | 02 0000 08 00 000000"

func TestRefuseOpenSession(t *testing.T) {
	cases := []struct {
		name     string
		datagram string
		want     string // "" for let through
	}{
		{"ipmitool Open Session Request", ipmitoolOpenSession, tableFullRefusal},
		{"only tag and console ID", "06 00 ff 07 | 06 10 00000000 00000000 0800 | 5a 04 0000 01020304",
			"06 00 ff 07 | 06 11 00000000 00000000 2400 | 5a 01 00 00 01020304 00000000 | 00 0000 08 00 000000 | 01 0000 08 00 000000 | 02 0000 08 00 000000"},
		{"too short to answer", "06 00 ff 07 | 06 10 00000000 00000000 0400 | 5a 04 0000", ""},
		// RAKP 1 (payload type 12h) belongs to a session already opened.
		{"RAKP 1", "06 00 ff 07 | 06 12 00000000 00000000 0800 | 00 00 0000 01020304", ""},
		// v1.5 Get Channel Authentication Capabilities: discovery goes on.
		{"IPMI v1.5 packet", "06 00 ff 07 | 00 00000000 00000000 09 | 20 18 c8 81 00 38 8e 04 b5", ""},
		{"ASF presence ping", "06 00 ff 06 | 000011be 80 00 00 00", ""},
		{"garbage", "de ad be ef", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := refuseOpenSession(unhex(t, tc.datagram))
			if tc.want == "" {
				if ok {
					t.Fatalf("refused % x", got)
				}
				return
			}
			if want := unhex(t, tc.want); !ok || !bytes.Equal(got, want) {
				t.Fatalf("refusal % x\nwant       % x", got, want)
			}
		})
	}
}

func FuzzRefuseOpenSession(f *testing.F) {
	f.Add(unhex(f, ipmitoolOpenSession))
	f.Add(unhex(f, tableFullRefusal))
	f.Add([]byte{0x06, 0x00, 0xff, 0x07, 0x06, 0x10})
	f.Fuzz(func(t *testing.T, b []byte) {
		reply, ok := refuseOpenSession(b)
		if ok != (reply != nil) {
			t.Fatalf("ok %v with reply % x", ok, reply)
		}
	})
}

func TestGateStateDecisions(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	open := unhex(t, ipmitoolOpenSession)
	other := unhex(t, "06 00 ff 06 | 000011be 80 00 00 00")
	cases := []struct {
		name      string
		g         gateState
		datagram  []byte
		wantIn    inVerdict
		notBefore time.Time
		wantOut   time.Duration // after now; -1: never
	}{
		{"behaving", gateState{}, open, inPass, time.Time{}, 0},
		{"rebooting", gateState{silentUntil: now.Add(time.Second)}, other, inDrop, time.Time{}, -1},
		{"reboot over", gateState{silentUntil: now}, other, inPass, time.Time{}, 0},
		{"black hole", gateState{blackHole: true}, other, inDrop, time.Time{}, -1},
		{"black hole beats table full", gateState{blackHole: true, tableFull: true}, open, inDrop, time.Time{}, -1},
		{"table full, Open Session", gateState{tableFull: true}, open, inRefuse, time.Time{}, 0},
		{"table full, other", gateState{tableFull: true}, other, inPass, time.Time{}, 0},
		{"slow", gateState{slow: time.Second}, other, inPass, time.Time{}, time.Second},
		{"slow, behind a later one", gateState{slow: time.Second}, other, inPass, now.Add(3 * time.Second), 3 * time.Second},
		{"not slow, behind a held one", gateState{}, other, inPass, now.Add(2 * time.Second), 2 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, reply := tc.g.inbound(now, tc.datagram)
			if v != tc.wantIn || (v == inRefuse) != (reply != nil) {
				t.Errorf("inbound = %v (reply % x), want %v", v, reply, tc.wantIn)
			}
			due, ok := tc.g.outbound(now, tc.notBefore)
			switch {
			case tc.wantOut < 0 && ok:
				t.Errorf("outbound leaves at %v, want never", due)
			case tc.wantOut >= 0 && (!ok || !due.Equal(now.Add(tc.wantOut))):
				t.Errorf("outbound = %v, %v; want after %v", due, ok, tc.wantOut)
			}
		})
	}
}

// TestGateConnHoldsAnswersInOrder drives a gateConn over the in-memory
// network: held datagrams leave at their time and in order, a silence
// discards what is held, and a refusal goes back to the sender.
func TestGateConnHoldsAnswersInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		bmcPort := n.listen(memBMCAddr)
		client := n.listen(nil)
		g := newGateConn(bmcPort)
		defer g.Close()
		recv := func() (string, time.Duration) {
			start := time.Now()
			buf := make([]byte, 100)
			k, _, err := client.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			return string(buf[:k]), time.Since(start)
		}

		g.update(func(s *gateState) { s.slow = time.Second })
		g.WriteTo([]byte("first"), client.addr)
		time.Sleep(300 * time.Millisecond)
		g.update(func(s *gateState) { s.slow = 0 }) // must not overtake
		g.WriteTo([]byte("second"), client.addr)
		if got, after := recv(); got != "first" || after != 700*time.Millisecond {
			t.Fatalf("got %q after %v, want \"first\" after 700ms", got, after)
		}
		if got, after := recv(); got != "second" || after != 0 {
			t.Fatalf("got %q after %v, want \"second\" at once", got, after)
		}

		g.update(func(s *gateState) { s.slow = time.Second })
		g.WriteTo([]byte("lost in the reboot"), client.addr)
		g.silence(time.Now().Add(2 * time.Second))
		g.update(func(s *gateState) { s.slow = 0 })
		g.WriteTo([]byte("during the silence"), client.addr)
		time.Sleep(2 * time.Second)
		g.WriteTo([]byte("after"), client.addr)
		if got, _ := recv(); got != "after" {
			t.Fatalf("first datagram after a silence %q, want \"after\"", got)
		}

		// An Open Session Request into a full table is answered by the
		// gate and never reaches the reader.
		g.update(func(s *gateState) { s.tableFull = true })
		client.WriteTo(unhex(t, ipmitoolOpenSession), memBMCAddr)
		client.WriteTo([]byte("next"), memBMCAddr)
		buf := make([]byte, 100)
		k, _, err := g.ReadFrom(buf)
		if err != nil || string(buf[:k]) != "next" {
			t.Fatalf("reader got %q, %v; want only \"next\"", buf[:k], err)
		}
		if got, _ := recv(); got != string(unhex(t, tableFullRefusal)) {
			t.Fatalf("sender got % x, want the refusal", got)
		}
	})
}
