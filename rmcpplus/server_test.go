package rmcpplus

import (
	"bytes"
	"net"
	"runtime"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"obmd/ipmi"
)

// Datagrams captured from real consoles (tcpdump -X on loopback) talking to
// this server: ipmitool 1.8.19 ("-I lanplus -C 17") and FreeIPMI 1.6.10
// bmc-info ("-D LAN_2_0 -I 3").
var (
	// Get Channel Authentication Capabilities, IPMI v1.5 packet, channel
	// 0x0E with the v2.0 extended data bit, privilege Administrator.
	capIpmitoolAuthCaps = mustHex("0600ff07 00 00000000 00000000 09 2018c8 810038 8e04 b5")
	// The same from FreeIPMI: rqSeq 4, privilege User.
	capFreeIPMIAuthCaps = mustHex("0600ff07 00 00000000 00000000 09 2018c8 811038 8e02 a7")
	// Get Channel Cipher Suites in RMCP+ form (ipmitool without -C):
	// channel 0x0E, payload type IPMI, list index 0 by cipher suite.
	capIpmitoolCipherSuites = mustHex("0600ff07 06 00 00000000 00000000 0a00 2018c8 810454 0e0080 99")
	// Open Session Request, tag 0, maximum privilege 0 ("highest"),
	// console session ID 0xA0A2A3A4, algorithms of suite 17.
	capIpmitoolOpenSession = mustHex("0600ff07 06 10 00000000 00000000 2000" +
		"00 00 0000 a4a3a2a0 00000008 03000000 01000008 04000000 02000008 01000000")
	// Open Session Request from FreeIPMI, tag 0x5F, privilege 0, suite 3.
	capFreeIPMIOpenSession = mustHex("0600ff07 06 10 00000000 00000000 2000" +
		"5f 00 0000 419a7b33 00000008 01000000 01000008 01000000 02000008 01000000")
	// RAKP 1 from ipmitool for managed session 0x3EAF3365, role 0x14
	// (Administrator, name-only lookup), user "admin".
	capIpmitoolRAKP1 = mustHex("0600ff07 06 12 00000000 00000000 2100" +
		"00 000000 6533af3e d700170ca41aac3bb62fdf3faea6ccf3 14 0000 05 61646d696e")
	// An authenticated, encrypted (suite 3) IPMI request from FreeIPMI in
	// a session this server no longer knows.
	capFreeIPMISealed = mustHex("0600ff07 06 c0 f00b2a52 01000000 2000" +
		"6b334d58b57cf9bfd09533563f635169a94cc236c421e8ce245ced74ec11d368 ffff 02 07 7e82fc389a7e4399e998b118")
	// ASF presence ping, message tag 0x2A (IPMI v2.0 section 13.2.3).
	asfPing = mustHex("0600ff06 000011be 802a0000")
)

var testPeer = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

// answer feeds one datagram to the server, as Serve would.
func answer(srv *Server, b []byte) *Packet {
	reply := srv.handleDatagram(new(serveState), b, testPeer, nil)
	if reply == nil {
		return nil
	}
	p, err := ParsePacket(bytes.Clone(reply))
	if err != nil {
		panic("server sent an undecodable reply: " + err.Error())
	}
	return p
}

func TestServerPreSession(t *testing.T) {
	srv := NewServer(testServerConfig(&testHandler{}))
	tests := []struct {
		name    string
		req     []byte
		v2      bool
		seq     uint8
		cmd     ipmi.Command
		wantMsg []byte // completion code and data
	}{
		// Section 22.13: channel 1; byte 2 = 80h (v2.0 extended data
		// present, no v1.5 auth types); byte 3 = 04h (non-null user
		// names); byte 4 = 02h (IPMI v2.0 connections); OEM ID 0.
		{"ipmitool auth capabilities", capIpmitoolAuthCaps, false, 0, ipmi.CmdGetChannelAuthCapabilities,
			mustHex("00 01 80 04 02 000000 00")},
		{"FreeIPMI auth capabilities", capFreeIPMIAuthCaps, false, 4, ipmi.CmdGetChannelAuthCapabilities,
			mustHex("00 01 80 04 02 000000 00")},
		// Section 22.15, Table 22-18: records C0h, suite ID, auth alg,
		// 40h|integrity alg, 80h|confidentiality alg; 16 bytes per index.
		// Suites 17 (SHA256, SHA256-128, AES), 3 (SHA1, SHA1-96, AES), 2, 1.
		{"ipmitool cipher suites, RMCP+ form", capIpmitoolCipherSuites, true, 1, ipmi.CmdGetChannelCipherSuites,
			mustHex("00 01 c0110344 81 c0030141 81 c0020141 80 c0")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := answer(srv, tt.req)
			if p == nil {
				t.Fatal("no answer")
			}
			if p.IsV2() != tt.v2 || p.SessionID != 0 || p.Seq != 0 || p.Authenticated || p.Encrypted {
				t.Fatalf("answer framed as %+v; want v2=%v, session 0, sequence 0, in the clear", p, tt.v2)
			}
			m, err := ipmi.ParseMessage(p.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if m.DstAddr != ipmi.AddrRemoteSW || m.SrcAddr != ipmi.AddrBMC || m.NetFn != ipmi.NetFnApp.Response() || m.Seq != tt.seq || m.Cmd != tt.cmd {
				t.Fatalf("answer header %+v", m)
			}
			if !bytes.Equal(m.Data, tt.wantMsg) {
				t.Fatalf("answer data % X\nwant        % X", m.Data, tt.wantMsg)
			}
		})
	}
}

// The whole record list, read 16 bytes at a time as ipmitool does, parses
// back to the offered suites.
func TestServerCipherSuiteList(t *testing.T) {
	cfg := testServerConfig(nil)
	cfg.CipherSuites = []uint8{17, 16, 15, 3, 2, 1}
	srv := NewServer(cfg)
	var records []byte
	for index := byte(0); ; index++ {
		cc, data := srv.cipherSuites([]byte{0x0E, 0, 0x80 | index})
		if cc != ipmi.CCOK || data[0] != 0x01 {
			t.Fatalf("index %d: %v % X", index, cc, data)
		}
		records = append(records, data[1:]...)
		if len(data[1:]) < 16 {
			break
		}
	}
	// Table 22-20: suite ID, authentication, integrity, confidentiality.
	var want []ipmi.CipherSuiteRecord
	for _, r := range [][4]uint8{{17, 3, 4, 1}, {16, 3, 4, 0}, {15, 3, 0, 0}, {3, 1, 1, 1}, {2, 1, 1, 0}, {1, 1, 0, 0}} {
		want = append(want, ipmi.CipherSuiteRecord{ID: r[0], Auth: r[1], Integrity: r[2], Confidentiality: r[3]})
	}
	if got, err := ipmi.ParseCipherSuiteRecords(records); err != nil || !slices.Equal(got, want) {
		t.Fatalf("suites %v, %v; want %v", got, err, want)
	}
	// Without bit 7: the algorithms, each once (Table 22-19).
	cc, data := srv.cipherSuites([]byte{0x0E, 0, 0})
	if cc != ipmi.CCOK || !bytes.Equal(data, mustHex("01 03 44 81 80 40 01 41")) {
		t.Fatalf("algorithm list: %v % X", cc, data)
	}
}

func TestServerASFPing(t *testing.T) {
	p := answer(NewServer(testServerConfig(nil)), asfPing)
	if p == nil || p.ASF == nil || p.ASF.Type != ASFTypePong || p.ASF.Tag != 0x2A || p.ASF.SupportedEntities&ASFEntitiesIPMI == 0 {
		t.Fatalf("pong %+v", p)
	}
}

func openSessionReply(t *testing.T, srv *Server, req []byte) *OpenSessionResponse {
	t.Helper()
	p := answer(srv, req)
	if p == nil || !p.IsV2() || p.PayloadType != PayloadOpenSessionRsp {
		t.Fatalf("answer %+v, want an Open Session Response", p)
	}
	var r OpenSessionResponse
	if err := r.Unmarshal(p.Payload); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestServerOpenSession(t *testing.T) {
	tests := []struct {
		name      string
		req       []byte
		tag       uint8
		consoleID uint32
		suite     uint8
	}{
		{"ipmitool, suite 17", capIpmitoolOpenSession, 0x00, 0xA0A2A3A4, 17},
		{"FreeIPMI, suite 3", capFreeIPMIOpenSession, 0x5F, 0x337B9A41, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := openSessionReply(t, NewServer(testServerConfig(nil)), tt.req)
			cs, _ := CipherSuiteByID(tt.suite)
			// Both ask for privilege 0, "highest": the answer names the
			// level granted (FreeIPMI rejects an echoed 0).
			if r.Status != RAKPNoErrors || r.Tag != tt.tag || r.MaxPrivilege != ipmi.PrivilegeAdministrator ||
				r.ConsoleSessionID != tt.consoleID || r.ManagedSessionID == 0 ||
				r.Auth != cs.Auth || r.Integrity != cs.Integrity || r.Confidentiality != cs.Confidentiality {
				t.Fatalf("response %+v", r)
			}
		})
	}
}

func TestServerSessionLimit(t *testing.T) {
	cfg := testServerConfig(nil)
	cfg.MaxSessions = 2
	srv := NewServer(cfg)
	first := openSessionReply(t, srv, capIpmitoolOpenSession)
	// A retransmitted request gets the same session, not a second one.
	if again := openSessionReply(t, srv, capIpmitoolOpenSession); again.ManagedSessionID != first.ManagedSessionID {
		t.Fatalf("retransmitted Open Session got session %08x, first %08x", again.ManagedSessionID, first.ManagedSessionID)
	}
	if r := openSessionReply(t, srv, capFreeIPMIOpenSession); r.Status != RAKPNoErrors {
		t.Fatalf("second session: %v", r.Status)
	}
	third := bytes.Clone(capIpmitoolOpenSession)
	third[20] ^= 0xFF // another console session ID
	if r := openSessionReply(t, srv, third); r.Status != RAKPInsufficientResources {
		t.Fatalf("third session: %v, want 0x01", r.Status)
	}
}

// Open Session for a suite the server does not offer.
func TestServerOpenSessionNoSuite(t *testing.T) {
	cfg := testServerConfig(nil)
	cfg.CipherSuites = []uint8{17}
	r := openSessionReply(t, NewServer(cfg), capFreeIPMIOpenSession)
	if r.Status != RAKPNoCipherSuiteMatch || r.Tag != 0x5F || r.ConsoleSessionID != 0x337B9A41 {
		t.Fatalf("response %+v, want status 0x11 addressed to the console", r)
	}
}

func TestServerRAKP1(t *testing.T) {
	tests := []struct {
		name     string
		user     string
		role     uint8
		want     RAKPStatus
		wantPriv ipmi.PrivilegeLevel
	}{
		{"admin as administrator", "admin", 0x14, RAKPNoErrors, ipmi.PrivilegeAdministrator},
		{"operator as operator", "oper", 0x13, RAKPNoErrors, ipmi.PrivilegeOperator},
		{"operator, username/privilege lookup", "oper", 0x03, RAKPNoErrors, ipmi.PrivilegeOperator},
		{"operator asking for highest gets its own", "oper", 0x10, RAKPNoErrors, ipmi.PrivilegeOperator},
		{"operator as administrator", "oper", 0x14, RAKPUnauthorizedRole, 0},
		{"unknown user", "bob", 0x14, RAKPUnauthorizedName, 0},
		{"reserved role bits", "admin", 0x54, RAKPInvalidRole, 0},
		{"privilege 6", "admin", 0x16, RAKPInvalidRole, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := NewServer(testServerConfig(nil))
			osr := openSessionReply(t, srv, capFreeIPMIOpenSession)
			r1 := RAKP1{Tag: 7, ManagedSessionID: osr.ManagedSessionID, Role: tt.role, Username: tt.user}
			p := answer(srv, AppendV2(nil, PayloadRAKP1, 0, 0, r1.Marshal()))
			var r2 RAKP2
			if p == nil || p.PayloadType != PayloadRAKP2 || r2.Unmarshal(p.Payload) != nil {
				t.Fatalf("answer %+v, want RAKP 2", p)
			}
			if r2.Status != tt.want || r2.Tag != 7 || r2.ConsoleSessionID != 0x337B9A41 {
				t.Fatalf("RAKP 2 %+v, want status %v", r2, tt.want)
			}
			srv.mu.Lock()
			ss := srv.sessions[osr.ManagedSessionID]
			srv.mu.Unlock()
			if tt.want != RAKPNoErrors {
				if ss != nil {
					t.Fatal("a refused handshake left its session in the table")
				}
				return
			}
			if ss.maxPriv != tt.wantPriv {
				t.Fatalf("session maximum privilege %v, want %v", ss.maxPriv, tt.wantPriv)
			}
			if len(r2.AuthCode) != 20 {
				t.Fatalf("RAKP 2 auth code of %d bytes, want 20 (HMAC-SHA1)", len(r2.AuthCode))
			}
		})
	}
}

// RAKP 1 (ipmitool's) and RAKP 3 for sessions the server does not know.
func TestServerUnknownSession(t *testing.T) {
	srv := NewServer(testServerConfig(nil))
	p := answer(srv, capIpmitoolRAKP1)
	var r2 RAKP2
	if p == nil || r2.Unmarshal(p.Payload) != nil || r2.Status != RAKPInvalidSessionID {
		t.Fatalf("RAKP 1 for an unknown session: %+v", p)
	}
	r3 := RAKP3{Tag: 3, ManagedSessionID: 0x3EAF3365, AuthCode: make([]byte, 20)}
	p = answer(srv, AppendV2(nil, PayloadRAKP3, 0, 0, r3.Marshal()))
	var r4 RAKP4
	if p == nil || r4.Unmarshal(p.Payload) != nil || r4.Status != RAKPInvalidSessionID || r4.Tag != 3 {
		t.Fatalf("RAKP 3 for an unknown session: %+v", p)
	}
	// A sealed packet of an unknown session is ignored (section 13.6).
	if p := answer(srv, capFreeIPMISealed); p != nil {
		t.Fatalf("answered a packet of an unknown session: %+v", p)
	}
}

// Sessions cost no goroutine and no timer of their own: a fakebmc process
// runs thousands of Servers.
func TestServerNoGoroutinePerSession(t *testing.T) {
	cfg := testServerConfig(nil)
	cfg.MaxSessions = 64
	srv := NewServer(cfg)
	defer srv.Close()
	before := runtime.NumGoroutine()
	for i := range 64 {
		req := bytes.Clone(capIpmitoolOpenSession)
		req[20] = byte(i) // console session ID
		if r := openSessionReply(t, srv, req); r.Status != RAKPNoErrors {
			t.Fatalf("session %d: %v", i, r.Status)
		}
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines for 64 sessions, %d before", after, before)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.sessions) != 64 || srv.expiry == nil {
		t.Fatalf("%d sessions, expiry timer %v", len(srv.sessions), srv.expiry)
	}
}

// A console that gets no further than Open Session loses its slot after
// handshakeTimeout, not after the full idle timeout.
func TestServerHalfOpenExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := NewServer(testServerConfig(nil))
		defer srv.Close()
		openSessionReply(t, srv, capIpmitoolOpenSession)
		time.Sleep(handshakeTimeout - time.Second)
		synctest.Wait()
		if n := sessionCount(srv); n != 1 {
			t.Fatalf("%d sessions before the handshake timeout, want 1", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := sessionCount(srv); n != 0 {
			t.Fatalf("%d sessions after the handshake timeout, want 0", n)
		}
	})
}

// installSession puts an active session with known keys into srv, as if a
// handshake had completed.
func installSession(srv *Server, id, consoleID uint32, suiteID uint8, sik []byte) *ServerSession {
	suite, _ := CipherSuiteByID(suiteID)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	ss := &ServerSession{srv: srv, id: id, consoleID: consoleID, suite: suite, openPriv: ipmi.PrivilegeAdministrator,
		remote: testPeer, state: stateActive, lastActive: time.Now(), done: make(chan struct{}),
		username: "admin", maxPriv: ipmi.PrivilegeAdministrator, priv: ipmi.PrivilegeUser,
		keys: NewSessionKeys(suite, sik)}
	srv.sessions[id] = ss
	return ss
}

func TestServerSessionCommands(t *testing.T) {
	srv := NewServer(testServerConfig(&testHandler{}))
	ss := installSession(srv, 0x01020304, 0x0A0B0C0D, 3, bytes.Repeat([]byte{7}, 20))
	other := installSession(srv, 0x11111111, 0x22222222, 3, bytes.Repeat([]byte{8}, 20))
	console := NewSessionKeys(ss.suite, ss.keys.SIK)
	var seq uint32
	do := func(netfn ipmi.NetFn, cmd ipmi.Command, data ...byte) []byte {
		t.Helper()
		seq++
		m := ipmi.Message{DstAddr: ipmi.AddrBMC, NetFn: netfn, SrcAddr: ipmi.AddrRemoteSW, Seq: uint8(seq), Cmd: cmd, Data: data}
		pkt, err := console.AppendSealed(nil, PayloadIPMI, ss.id, seq, m.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		p := answer(srv, pkt)
		if p == nil {
			t.Fatalf("no answer to %s", ipmi.CommandName(netfn, cmd))
		}
		if p.SessionID != ss.consoleID || !p.Authenticated || !p.Encrypted {
			t.Fatalf("answer framed as %+v", p)
		}
		plain, err := console.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		rsp, err := ipmi.ParseMessage(plain)
		if err != nil || rsp.Cmd != cmd || rsp.Seq != uint8(seq) {
			t.Fatalf("answer %+v, %v", rsp, err)
		}
		return rsp.Data
	}
	steps := []struct {
		name  string
		netfn ipmi.NetFn
		cmd   ipmi.Command
		data  []byte
		want  []byte
	}{
		{"present privilege", ipmi.NetFnApp, ipmi.CmdSetSessionPrivilegeLevel, []byte{0}, []byte{0x00, 0x02}},
		{"bytes after the privilege are ignored", ipmi.NetFnApp, ipmi.CmdSetSessionPrivilegeLevel, []byte{0, 0xAA}, []byte{0x00, 0x02}},
		{"closing another session needs administrator", ipmi.NetFnApp, ipmi.CmdCloseSession, mustHex("11111111"), []byte{0xD4}},
		{"raise to administrator", ipmi.NetFnApp, ipmi.CmdSetSessionPrivilegeLevel, []byte{4}, []byte{0x00, 0x04}},
		{"privilege 6 is invalid", ipmi.NetFnApp, ipmi.CmdSetSessionPrivilegeLevel, []byte{6}, []byte{0xCC}},
		{"empty Set Session Privilege Level", ipmi.NetFnApp, ipmi.CmdSetSessionPrivilegeLevel, nil, []byte{0xC7}},
		{"auth capabilities inside the session", ipmi.NetFnApp, ipmi.CmdGetChannelAuthCapabilities, []byte{0x8E, 4}, mustHex("00 01 80 04 02 000000 00")},
		{"auth capabilities, bad channel", ipmi.NetFnApp, ipmi.CmdGetChannelAuthCapabilities, []byte{0x85, 4}, []byte{0xCC}},
		{"auth capabilities, short", ipmi.NetFnApp, ipmi.CmdGetChannelAuthCapabilities, []byte{0x8E}, []byte{0xC7}},
		{"auth capabilities, extra byte ignored", ipmi.NetFnApp, ipmi.CmdGetChannelAuthCapabilities, []byte{0x8E, 4, 0}, mustHex("00 01 80 04 02 000000 00")},
		{"cipher suites, short", ipmi.NetFnApp, ipmi.CmdGetChannelCipherSuites, []byte{0x0E, 0}, []byte{0xC7}},
		{"handler", ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil, append([]byte{0}, deviceID...)},
		{"unknown command", ipmi.NetFnChassis, ipmi.CmdChassisControl, []byte{1}, []byte{0xC1}},
		{"close an unknown session", ipmi.NetFnApp, ipmi.CmdCloseSession, mustHex("99999999"), []byte{0x87}},
		{"close by handle", ipmi.NetFnApp, ipmi.CmdCloseSession, mustHex("00000000 05"), []byte{0x88}},
		{"close session 0 without a handle", ipmi.NetFnApp, ipmi.CmdCloseSession, mustHex("00000000"), []byte{0x87}},
		{"short Close Session", ipmi.NetFnApp, ipmi.CmdCloseSession, mustHex("111111"), []byte{0xC7}},
		{"close another session", ipmi.NetFnApp, ipmi.CmdCloseSession, mustHex("11111111"), []byte{0x00}},
	}
	for _, st := range steps {
		if got := do(st.netfn, st.cmd, st.data...); !bytes.Equal(got, st.want) {
			t.Fatalf("%s: % X, want % X", st.name, got, st.want)
		}
	}
	if !isClosed(other.Done()) {
		t.Fatal("the other session is still open")
	}
	if got := do(ipmi.NetFnApp, ipmi.CmdCloseSession, mustHex("04030201")...); !bytes.Equal(got, []byte{0}) {
		t.Fatalf("Close Session of itself: % X", got)
	}
	if !isClosed(ss.Done()) {
		t.Fatal("session still open after its own Close Session")
	}
}

// FuzzServerDatagram feeds arbitrary datagrams to the server's handler, no
// socket involved. The server has an active cipher suite 0 session (ID
// 01020304h) so that mutated datagrams also reach the in-session paths.
func FuzzServerDatagram(f *testing.F) {
	for _, b := range [][]byte{capIpmitoolAuthCaps, capFreeIPMIAuthCaps, capIpmitoolCipherSuites,
		capIpmitoolOpenSession, capFreeIPMIOpenSession, capIpmitoolRAKP1, capFreeIPMISealed, asfPing} {
		f.Add(b)
	}
	for _, m := range []ipmi.Message{
		{DstAddr: ipmi.AddrBMC, NetFn: ipmi.NetFnApp, SrcAddr: ipmi.AddrRemoteSW, Seq: 1, Cmd: ipmi.CmdGetDeviceID},
		{DstAddr: ipmi.AddrBMC, NetFn: ipmi.NetFnApp, SrcAddr: ipmi.AddrRemoteSW, Seq: 2, Cmd: ipmi.CmdSetSessionPrivilegeLevel, Data: []byte{4}},
		{DstAddr: ipmi.AddrBMC, NetFn: ipmi.NetFnApp, SrcAddr: ipmi.AddrRemoteSW, Seq: 3, Cmd: ipmi.CmdCloseSession, Data: mustHex("04030201")},
		{DstAddr: ipmi.AddrBMC, NetFn: netFnTest, SrcAddr: ipmi.AddrRemoteSW, Seq: 4, Cmd: cmdEcho, Data: []byte("abc")},
	} {
		f.Add(AppendV2(nil, PayloadIPMI, 0x01020304, 1, m.Marshal()))
	}
	f.Add(AppendV2(nil, PayloadSOL, 0x01020304, 1, []byte{1, 0, 0, 0, 'x'}))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := testServerConfig(&testHandler{})
		cfg.AllowSuite0 = true
		srv := NewServer(cfg)
		defer srv.Close()
		ss := installSession(srv, 0x01020304, 0x0A0B0C0D, 0, nil)
		ss.SetPayloadHandler(PayloadSOL, func([]byte) {})
		st := new(serveState)
		for range 2 { // twice: the second copy meets the state the first left
			reply := srv.handleDatagram(st, b, testPeer, nil)
			if reply != nil {
				if _, err := ParsePacket(reply); err != nil {
					t.Fatalf("undecodable reply % X to % X: %v", reply, b, err)
				}
			}
		}
	})
}
