package rmcpplus

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"obmd/ipmi"
)

func TestWireParsePacketGolden(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want Packet // Payload and AuthCode compared as hex below
		pl   string
		code string
	}{
		{"v1.5 request", v15RequestGolden,
			Packet{RMCPSeq: 0xff, Class: ClassIPMI, AuthType: AuthTypeNone}, "2018c88100388e04b5", ""},
		{"v1.5 MD5 auth code", v15MD5Golden,
			Packet{RMCPSeq: 0xff, Class: ClassIPMI, AuthType: 2, SessionID: 0x01020304, Seq: 1},
			"2000e08104017a", "00112233445566778899aabbccddeeff"},
		{"v2.0 Open Session Request", v2OpenSessionGolden,
			Packet{RMCPSeq: 0xff, Class: ClassIPMI, AuthType: AuthTypeRMCPPlus, PayloadType: PayloadOpenSessionReq},
			"00000000a4a3a2a0 0000000801000000 0100000801000000 0200000801000000", ""},
		{"v2.0 sealed", v2SealedGolden,
			Packet{RMCPSeq: 0xff, Class: ClassIPMI, AuthType: AuthTypeRMCPPlus, PayloadType: PayloadIPMI,
				Encrypted: true, Authenticated: true, SessionID: 2, Seq: 3},
			"4d0d38d84477445d9bc5a751459db6618ab6ad087526f84a64bffe8ca0c5875c", "a2a04355f579610377a4a5a6"},
		{"v2.0 OEM", v2OEMGolden,
			Packet{RMCPSeq: 0xff, Class: ClassIPMI, AuthType: AuthTypeRMCPPlus, PayloadType: PayloadOEM,
				OEMIANA: 0x02a2, OEMPayloadID: 0x0102, SessionID: 0x01020304, Seq: 5},
			"aabbcc", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePacket(mustHex(tt.hex))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.Payload, mustHex(tt.pl)) || !bytes.Equal(p.AuthCode, mustHex(tt.code)) {
				t.Fatalf("payload %x auth code %x, want %s and %s", p.Payload, p.AuthCode, tt.pl, tt.code)
			}
			got := *p
			got.Payload, got.AuthCode, got.signed = nil, nil, nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decoded %+v\nwant    %+v", got, tt.want)
			}
		})
	}
}

func TestWireParsePacketASF(t *testing.T) {
	p, err := ParsePacket(mustHex(asfPongGolden))
	if err != nil {
		t.Fatal(err)
	}
	want := ASFMessage{Type: ASFTypePong, Tag: 0x5a, IANA: ASFIANA, SupportedEntities: 0x81}
	if p.Class != ClassASF || p.ASF == nil || *p.ASF != want {
		t.Fatalf("decoded %+v, ASF %+v", p, p.ASF)
	}
}

func TestWireParsePacketRejects(t *testing.T) {
	tests := []struct {
		name      string
		hex       string
		truncated bool
	}{
		{"empty", "", true},
		{"RMCP header only", "0600ff07", true},
		{"RMCP version 07h", "0700ff07 00 00000000 00000000 00", false},
		{"RMCP ACK", "06000587", false},
		{"class 08h (OEM)", "0600ff08 00 00000000 00000000 00", false},
		{"v2.0 payload longer than datagram", "0600ff07 06 00 00000000 00000000 0800 2018c881", true},
		{"authenticated, no trailer", "0600ff07 06 40 82000000 03000000 0800 2018c881043b043c", false},
		{"authenticated, next header 06h", "0600ff07 06 40 82000000 03000000 0800 2018c881043b043c ffff0206 0871a28b83adf9c9c025ea14", false},
		{"authenticated, pad length lies", "0600ff07 06 40 82000000 03000000 0800 2018c881043b043c ffff0307 0871a28b83adf9c9c025ea14", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePacket(mustHex(tt.hex))
			if err == nil {
				t.Fatalf("accepted as %+v", p)
			}
			if errors.Is(err, ErrTruncated) != tt.truncated {
				t.Fatalf("error %v; truncated expected: %v", err, tt.truncated)
			}
		})
	}
}

// TestWireUnmarshalResets: a reused Packet keeps nothing from the
// previous datagram.
func TestWireUnmarshalResets(t *testing.T) {
	var p Packet
	if err := p.Unmarshal(mustHex(v2SealedGolden)); err != nil {
		t.Fatal(err)
	}
	if err := p.Unmarshal(mustHex(asfPingGolden)); err != nil {
		t.Fatal(err)
	}
	if p.Authenticated || p.Encrypted || p.AuthCode != nil || p.signed != nil || p.Payload != nil || p.SessionID != 0 {
		t.Fatalf("stale fields after reuse: %+v", p)
	}
}

// TestWireParsePacketAllocs: the hot path (reused Packet) allocates
// nothing.
func TestWireParsePacketAllocs(t *testing.T) {
	b := mustHex(v2SealedGolden)
	var p Packet
	if n := testing.AllocsPerRun(100, func() { _ = p.Unmarshal(b) }); n != 0 {
		t.Fatalf("Packet.Unmarshal allocates %v times", n)
	}
}

func FuzzParsePacket(f *testing.F) {
	for _, h := range []string{v15RequestGolden, v15ResponseGolden, v15MD5Golden, v2OpenSessionGolden,
		v2SealedGolden, v2AuthenticatedGolden, v2OEMGolden, asfPingGolden, asfPongGolden} {
		f.Add(mustHex(h))
	}
	for _, c := range wireCaptures(f, "testdata/ipmitool-suite3.pcap") {
		f.Add(c.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b)
		if err != nil {
			return
		}
		if p.Class == ClassIPMI && len(p.Payload) > len(b) {
			t.Fatalf("payload longer than the datagram")
		}
		if p.Authenticated && p.IsV2() {
			// The signed range and the AuthCode tile the session part.
			if len(p.signed)+len(p.AuthCode) != len(b)-4 {
				t.Fatalf("signed %d + AuthCode %d != %d", len(p.signed), len(p.AuthCode), len(b)-4)
			}
		}
	})
}

// wireDatagram is one UDP payload of a capture and its direction.
type wireDatagram struct {
	fromBMC bool
	data    []byte
}

// wireCaptures reads the UDP payloads of a pcap file. The BMC is the
// side that answers, i.e. the destination of the first datagram.
func wireCaptures(t testing.TB, path string) []wireDatagram {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("capture %s: %v", path, err)
	}
	var out []wireDatagram
	bmcPort := -1
	for {
		frame, _, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("capture %s: %v", path, err)
		}
		pkt := gopacket.NewPacket(frame, r.LinkType(), gopacket.Default)
		udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			continue
		}
		if bmcPort < 0 {
			bmcPort = int(udp.DstPort)
		}
		out = append(out, wireDatagram{fromBMC: int(udp.SrcPort) == bmcPort, data: bytes.Clone(udp.Payload)})
	}
}

// wireHandshake is what a passive observer learns from a captured RMCP+
// handshake: everything but the password.
type wireHandshake struct {
	req   OpenSessionRequest
	rsp   OpenSessionResponse
	rakp1 RAKP1
	rakp2 RAKP2
	rakp3 RAKP3
	rakp4 RAKP4
	seen  map[PayloadType]bool
	rest  []wireDatagram // session packets after RAKP 4
}

func wireParseHandshake(t *testing.T, dgrams []wireDatagram) wireHandshake {
	t.Helper()
	var h wireHandshake
	for i, d := range dgrams {
		p, err := ParsePacket(d.data)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if !p.IsV2() {
			continue
		}
		msg := map[PayloadType]interface{ Unmarshal([]byte) error }{
			PayloadOpenSessionReq: &h.req, PayloadOpenSessionRsp: &h.rsp,
			PayloadRAKP1: &h.rakp1, PayloadRAKP2: &h.rakp2, PayloadRAKP3: &h.rakp3, PayloadRAKP4: &h.rakp4,
		}[p.PayloadType]
		if msg == nil {
			// Session traffic follows RAKP 4; anything before it (such as
			// ipmitool's unauthenticated Get Channel Cipher Suites) is not
			// part of the handshake.
			if h.seen[PayloadRAKP4] {
				h.rest = dgrams[i:]
				return h
			}
			continue
		}
		if err := msg.Unmarshal(p.Payload); err != nil {
			t.Fatalf("datagram %d (%v): %v", i, p.PayloadType, err)
		}
		if h.seen == nil {
			h.seen = map[PayloadType]bool{}
		}
		h.seen[p.PayloadType] = true
	}
	return h
}

// TestWireRealPeerCaptures is the real-peer vector: from each capture of
// ipmitool or FreeIPMI talking to OpenIPMI's ipmi_sim, and the password
// alone, it recomputes the RAKP 2 and RAKP 3 auth codes, the RAKP 4
// integrity check value, then verifies and decrypts every session packet,
// which must be a well-formed IPMI message.
func TestWireRealPeerCaptures(t *testing.T) {
	tests := []struct {
		file    string
		suiteID uint8
	}{
		{"ipmitool-suite3.pcap", 3},
		{"ipmitool-suite2.pcap", 2},
		{"freeipmi-suite3.pcap", 3},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			wireCheckCapture(t, wireCaptures(t, filepath.Join("testdata", tt.file)), []byte("secret"), tt.suiteID)
		})
	}
}

// wireTextCapture reads a capture in the project's text format
// (../testdata/captures/README.md): one datagram per line, "c2b <hex>"
// from the client, "b2c <hex>" from the BMC.
func wireTextCapture(t testing.TB, path string) []wireDatagram {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []wireDatagram
	for n, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
		dir, h, ok := strings.Cut(line, " ")
		b, err := hex.DecodeString(h)
		if !ok || err != nil || (dir != "c2b" && dir != "b2c") {
			t.Fatalf("%s line %d: not \"c2b|b2c <hex>\"", path, n+1)
		}
		out = append(out, wireDatagram{fromBMC: dir == "b2c", data: b})
	}
	return out
}

// TestWireSharedCaptures checks the project-wide captures of ipmitool and
// ipmi_sim (../testdata/captures, recorded by another tool): every
// datagram decodes; every completed RMCP+ session passes the same
// recomputation as TestWireRealPeerCaptures; the failed logins fail for
// the right reason.
func TestWireSharedCaptures(t *testing.T) {
	files, _ := filepath.Glob("../testdata/captures/*.txt")
	if len(files) == 0 {
		t.Skip("no shared captures in ../testdata/captures")
	}
	password := []byte("secret") // README.md: user admin, password secret, no Kg
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			d := wireTextCapture(t, f)
			for i, dg := range d {
				p, err := ParsePacket(dg.data)
				if err != nil {
					t.Fatalf("datagram %d does not decode: %v", i, err)
				}
				if p.Class == ClassIPMI && !p.IsV2() {
					// IPMI v1.5 (auth type none): the payload is a
					// plaintext IPMI message.
					m, err := ipmi.ParseMessage(p.Payload)
					if err != nil || m.NetFn.IsResponse() != dg.fromBMC {
						t.Fatalf("datagram %d: v1.5 payload %x: %v", i, p.Payload, err)
					}
				}
			}
			h := wireParseHandshake(t, d)
			switch {
			case !h.seen[PayloadRAKP2]:
				return // IPMI v1.5 session: decoding was the test
			case h.rakp2.Status != RAKPNoErrors:
				if h.rakp2.Status != RAKPUnauthorizedName {
					t.Fatalf("RAKP 2 status %v", h.rakp2.Status)
				}
				return
			case !h.seen[PayloadRAKP4]:
				// The client refused RAKP 2: its password was wrong, but
				// the BMC's auth code is made with the real one.
				if got := RAKP2AuthCode(h.rsp.Auth, password, h.req.ConsoleSessionID, h.rsp.ManagedSessionID,
					h.rakp1.ConsoleRandom, h.rakp2.ManagedRandom, h.rakp2.ManagedGUID, h.rakp1.Role, h.rakp1.Username); !bytes.Equal(got, h.rakp2.AuthCode) {
					t.Fatalf("RAKP 2 auth code %x, recomputed %x", h.rakp2.AuthCode, got)
				}
				return
			}
			suite, ok := CipherSuiteByAlgorithms(h.rsp.Auth, h.rsp.Integrity, h.rsp.Confidentiality)
			if !ok {
				t.Fatalf("suite %v/%v/%v not implemented", h.rsp.Auth, h.rsp.Integrity, h.rsp.Confidentiality)
			}
			wireCheckCapture(t, d, password, suite.ID)
		})
	}
}

func wireCheckCapture(t *testing.T, dgrams []wireDatagram, password []byte, suiteID uint8) {
	t.Helper()
	h := wireParseHandshake(t, dgrams)
	if len(h.rest) == 0 {
		t.Fatal("capture has no session traffic after RAKP 4")
	}
	suite, ok := CipherSuiteByAlgorithms(h.rsp.Auth, h.rsp.Integrity, h.rsp.Confidentiality)
	if !ok || suite.ID != suiteID {
		t.Fatalf("negotiated %v/%v/%v, want suite %d", h.rsp.Auth, h.rsp.Integrity, h.rsp.Confidentiality, suiteID)
	}
	sidm, sidc := h.req.ConsoleSessionID, h.rsp.ManagedSessionID // console's, BMC's
	if h.rsp.ConsoleSessionID != sidm || h.rakp1.ManagedSessionID != sidc || h.rakp2.ConsoleSessionID != sidm ||
		h.rakp3.ManagedSessionID != sidc || h.rakp4.ConsoleSessionID != sidm {
		t.Fatalf("session IDs do not line up: SIDm %#x SIDc %#x", sidm, sidc)
	}
	a := suite.Auth
	rm, rc, guid := h.rakp1.ConsoleRandom, h.rakp2.ManagedRandom, h.rakp2.ManagedGUID
	role, user := h.rakp1.Role, h.rakp1.Username

	if got := RAKP2AuthCode(a, password, sidm, sidc, rm, rc, guid, role, user); !bytes.Equal(got, h.rakp2.AuthCode) {
		t.Fatalf("RAKP2 auth code: computed %x, BMC sent %x", got, h.rakp2.AuthCode)
	}
	if got := RAKP3AuthCode(a, password, rc, sidm, role, user); !bytes.Equal(got, h.rakp3.AuthCode) {
		t.Fatalf("RAKP3 auth code: computed %x, console sent %x", got, h.rakp3.AuthCode)
	}
	sik := DeriveSIK(a, SIKKey(nil, password), rm, rc, role, user)
	if got := RAKP4IntegrityCheck(a, sik, rm, sidc, guid); !bytes.Equal(got, h.rakp4.IntegrityCheck) {
		t.Fatalf("RAKP4 ICV: computed %x, BMC sent %x", got, h.rakp4.IntegrityCheck)
	}
	if RAKP2AuthCode(a, []byte("wrong"), sidm, sidc, rm, rc, guid, role, user) == nil {
		t.Fatal("no auth code for a wrong password")
	}

	keys := NewSessionKeys(suite, sik)
	for i, d := range h.rest {
		p, err := ParsePacket(d.data)
		if err != nil {
			t.Fatalf("session packet %d: %v", i, err)
		}
		wantSID := sidc // the receiver's ID: the BMC's on requests
		if d.fromBMC {
			wantSID = sidm
		}
		if p.SessionID != wantSID || p.Authenticated != (suite.Integrity != IntegrityNone) || p.Encrypted != (suite.Confidentiality != ConfNone) {
			t.Fatalf("session packet %d header: %+v", i, p)
		}
		plain, err := keys.Open(p)
		if err != nil {
			t.Fatalf("session packet %d (from BMC: %v): %v", i, d.fromBMC, err)
		}
		if p.PayloadType == PayloadSOL {
			// SOL payload (section 15.9): sequence, ack sequence,
			// accepted count, operation/status, then characters.
			if len(plain) < 4 {
				t.Fatalf("session packet %d: SOL payload of %d bytes", i, len(plain))
			}
			continue
		}
		m, err := ipmi.ParseMessage(plain)
		if err != nil {
			t.Fatalf("session packet %d decrypts to %x, not an IPMI message: %v", i, plain, err)
		}
		if m.NetFn.IsResponse() != d.fromBMC {
			t.Fatalf("session packet %d: %v message in the wrong direction", i, m.NetFn)
		}
		if i == 0 && (m.Cmd != ipmi.CmdSetSessionPrivilegeLevel || m.NetFn != ipmi.NetFnApp) {
			t.Fatalf("first session packet is netfn %v cmd %v, want Set Session Privilege Level", m.NetFn, m.Cmd)
		}
		// Tampering with any captured byte must be caught.
		if suite.Integrity != IntegrityNone {
			bad := bytes.Clone(d.data)
			bad[len(bad)/2] ^= 0x80
			if bp, err := ParsePacket(bad); err == nil {
				if _, err := keys.Open(bp); err == nil {
					t.Fatalf("session packet %d: altered copy accepted", i)
				}
			}
		}
	}
}

// TestWireRealPeerFailedLogins: the error-path captures. A wrong password
// is visible to the console as a RAKP 2 auth code that only the right
// password reproduces; an unknown user gets status 0Dh.
func TestWireRealPeerFailedLogins(t *testing.T) {
	t.Run("wrong password", func(t *testing.T) {
		var req OpenSessionRequest
		var rsp OpenSessionResponse
		var r1 RAKP1
		var r2 RAKP2
		for _, d := range wireCaptures(t, "testdata/ipmitool-badpass.pcap") {
			p, err := ParsePacket(d.data)
			if err != nil {
				t.Fatal(err)
			}
			var err2 error
			switch p.PayloadType {
			case PayloadOpenSessionReq:
				err2 = req.Unmarshal(p.Payload)
			case PayloadOpenSessionRsp:
				err2 = rsp.Unmarshal(p.Payload)
			case PayloadRAKP1:
				err2 = r1.Unmarshal(p.Payload)
			case PayloadRAKP2:
				err2 = r2.Unmarshal(p.Payload)
			case PayloadRAKP3:
				t.Fatal("ipmitool sent RAKP 3 after a RAKP 2 it cannot verify")
			}
			if err2 != nil {
				t.Fatal(err2)
			}
		}
		if r2.Status != RAKPNoErrors {
			t.Fatalf("RAKP 2 status %v", r2.Status)
		}
		code := func(pw string) []byte {
			return RAKP2AuthCode(AuthHMACSHA1, []byte(pw), req.ConsoleSessionID, rsp.ManagedSessionID,
				r1.ConsoleRandom, r2.ManagedRandom, r2.ManagedGUID, r1.Role, r1.Username)
		}
		if bytes.Equal(code("wrong"), r2.AuthCode) {
			t.Fatal("the client's wrong password reproduces the BMC's auth code")
		}
		if !bytes.Equal(code("secret"), r2.AuthCode) {
			t.Fatal("the BMC's password does not reproduce its auth code")
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		d := wireCaptures(t, "testdata/ipmitool-baduser.pcap")
		p, err := ParsePacket(d[len(d)-1].data)
		if err != nil {
			t.Fatal(err)
		}
		var r2 RAKP2
		if p.PayloadType != PayloadRAKP2 || r2.Unmarshal(p.Payload) != nil {
			t.Fatalf("last datagram is %v, want a RAKP 2", p.PayloadType)
		}
		if r2.Status != RAKPUnauthorizedName || r2.Status.String() != "0x0D unauthorized name" {
			t.Fatalf("RAKP 2 status %v", r2.Status)
		}
	})
}
