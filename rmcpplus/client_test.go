package rmcpplus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"obmd/ipmi"
)

// End-to-end: the client Session against the Server over 127.0.0.1 UDP.

func TestHandshakeEachSuite(t *testing.T) {
	t.Parallel()
	for _, id := range []uint8{1, 2, 3, 15, 16, 17} {
		t.Run(fmt.Sprintf("suite %d", id), func(t *testing.T) {
			t.Parallel()
			h := &testHandler{}
			cfg := testServerConfig(h)
			cfg.CipherSuites = []uint8{17, 16, 15, 3, 2, 1}
			addr := startServer(t, NewServer(cfg), nil)
			ccfg := clientConfig(addr)
			ccfg.CipherSuite = id
			s := dial(t, ccfg)
			if got := s.sec.Load().keys.Suite.ID; got != id {
				t.Fatalf("session uses suite %d", got)
			}
			got, err := s.Do(context.Background(), ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil)
			if err != nil {
				t.Fatalf("Get Device ID: %v", err)
			}
			if !bytes.Equal(got, deviceID) {
				t.Fatalf("Get Device ID = % X, want % X", got, deviceID)
			}
			ss := h.lastSession()
			if ss == nil || ss.Privilege() != ipmi.PrivilegeAdministrator || ss.Username() != "admin" {
				t.Fatalf("server session %+v: want admin at administrator", ss)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ss.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("server session still open after Close (Close Session not handled)")
			}
		})
	}
}

// Suite 0 (no authentication) works only when the server allows it. A
// client cannot pin it through ClientConfig (0 means negotiate), so the
// test drives the handshake directly.
func TestSuite0(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("AllowSuite0=%v", allow), func(t *testing.T) {
			t.Parallel()
			cfg := testServerConfig(&testHandler{})
			cfg.AllowSuite0 = allow
			addr := startServer(t, NewServer(cfg), nil)
			s := newTestSession(t, clientConfig(addr).withDefaults())
			o := s.attempt(context.Background(), attemptSpec{Suite: 0, NameOnlyLookup: true})
			err := o.Err
			if !allow {
				want := "rmcpplus: " + addr + ": the BMC refused Open Session Request: 0x11 no cipher suite match with proposed security algorithms"
				if err == nil || err.Error() != want {
					t.Fatalf("Open Session with suite 0: %v\nwant %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Do(context.Background(), ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil)
			if err != nil || !bytes.Equal(got, deviceID) {
				t.Fatalf("Get Device ID over suite 0: % X, %v", got, err)
			}
		})
	}
}

// newTestSession is a Session with its reader running but no handshake.
func newTestSession(t *testing.T, cfg ClientConfig) *Session {
	t.Helper()
	addr, err := resolveBMCAddr(cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := listenUDPFor(addr)
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(cfg, addr, conn)
	go s.readLoop(conn, true)
	t.Cleanup(func() { s.end(ErrSessionClosed) })
	return s
}

func TestNegotiation(t *testing.T) {
	t.Parallel()
	dropCipherSuites := func(pc net.PacketConn) net.PacketConn {
		return &faultConn{PacketConn: pc, dropOut: func(b []byte) bool { return ipmiCommand(b) == int(ipmi.CmdGetChannelCipherSuites) }}
	}
	tests := []struct {
		name          string
		offered       []uint8
		wrap          func(net.PacketConn) net.PacketConn
		wantSuite     uint8
		wantHandshake int // Open Session exchanges
		wantErr       string
	}{
		{"prefers 17", []uint8{1, 2, 3, 17}, nil, 17, 1, ""},
		{"3 when 17 is not offered", []uint8{1, 2, 3}, nil, 3, 1, ""},
		// Issue 9 defect 4: a BMC offering only suites without
		// confidentiality used to get suite 2, in the clear.
		{"only suites without confidentiality", []uint8{1, 2}, nil, 0, 0,
			"offers cipher suites [1 2], none with confidentiality (17 or 3); obmd negotiates only encrypted sessions unless the node's cipher_suite pins one"},
		{"BMC ignores Get Channel Cipher Suites: 17", []uint8{17, 3}, dropCipherSuites, 17, 1, ""},
		{"BMC ignores Get Channel Cipher Suites: falls back to 3", []uint8{3}, dropCipherSuites, 3, 2, ""},
		{"BMC ignores the list and has neither 17 nor 3", []uint8{1, 2}, dropCipherSuites, 0, 0,
			"did not list its cipher suites and refuses [17 3]; obmd negotiates only encrypted sessions unless the node's cipher_suite pins one"},
		{"nothing usable offered", []uint8{15, 16}, nil, 0, 0,
			"offers cipher suites [15 16], none with confidentiality (17 or 3); obmd negotiates only encrypted sessions unless the node's cipher_suite pins one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testServerConfig(&testHandler{})
			cfg.CipherSuites = tt.offered
			srv := NewServer(cfg)
			addr := startServer(t, srv, tt.wrap)
			start := time.Now()
			s, err := Dial(context.Background(), clientConfig(addr))
			elapsed := time.Since(start)
			if tt.wantErr != "" {
				var nce *NoConfidentialityError
				if err == nil || !strings.HasSuffix(err.Error(), tt.wantErr) || !errors.As(err, &nce) {
					t.Fatalf("Dial: %v, want a NoConfidentialityError ending ...%s", err, tt.wantErr)
				}
				if strings.Contains(nce.BMCReason(), addr) || !strings.Contains(nce.BMCReason(), "cipher_suite") {
					t.Fatalf("BMCReason %q must name cipher_suite and not the address", nce.BMCReason())
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer s.Close()
			if got := s.sec.Load().keys.Suite.ID; got != tt.wantSuite {
				t.Fatalf("negotiated suite %d, want %d", got, tt.wantSuite)
			}
			// What SOL asks of its payloads (sol.Open) follows the suite.
			if got := s.CipherSuite(); got.ID != tt.wantSuite || got != s.sec.Load().keys.Suite {
				t.Fatalf("CipherSuite() = %v, want the session's suite %d", got, tt.wantSuite)
			}
			if got := srv.OpenSessionRequests(); got != uint64(tt.wantHandshake) {
				t.Fatalf("the BMC saw %d Open Session Requests, want %d", got, tt.wantHandshake)
			}
			// Never seconds of probing: an unanswered cipher suite list,
			// and a refused blind suite, cost the short timeout and a
			// round trip, no more.
			if limit := quickTimeout*quickAttempts + time.Second; elapsed > limit {
				t.Fatalf("Dial took %v, want under %v", elapsed, limit)
			}
		})
	}
}

// The client chooses among standard suites only. Records per IPMI v2.0
// Table 22-19: C0h, suite ID, then the tagged algorithms; an OEM record is
// C1h, suite ID, 3-byte IANA, then the algorithms.
func TestStandardSuiteIDs(t *testing.T) {
	tests := []struct {
		name    string
		records []byte
		want    []uint8
		wantErr bool
	}{
		{"suites 17 and 3", mustHex("c0 11 03 44 81 c0 03 01 41 81"), []uint8{17, 3}, false},
		{"OEM suite 17 (IANA 343) is left out", mustHex("c0 03 01 41 81 c1 11 570100 03 44 81"), []uint8{3}, false},
		{"empty list", nil, nil, false},
		{"no start of record", mustHex("11 03 44 81"), nil, true},
		{"record without a confidentiality algorithm", mustHex("c0 11 03 44"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := standardSuiteIDs(tt.records)
			if (err != nil) != tt.wantErr || !bytes.Equal(got, tt.want) {
				t.Fatalf("standardSuiteIDs(% X) = %v, %v; want %v, error %v", tt.records, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDialAuthenticationErrors(t *testing.T) {
	t.Parallel()
	addr := startServer(t, NewServer(testServerConfig(&testHandler{})), nil)
	tests := []struct {
		name    string
		user    string
		pass    string
		priv    ipmi.PrivilegeLevel
		wantIs  error
		wantErr string
	}{
		{"wrong password", "admin", "nope", 0, ErrWrongPassword,
			`rmcpplus: ` + addr + `: wrong password for user "admin" (the BMC's RAKP 2 auth code does not match)`},
		{"unknown user", "bob", "secret", 0, ErrUnknownUser,
			`rmcpplus: ` + addr + `: unknown user "bob" (RAKP 2 status 0x0D unauthorized name)`},
		{"privilege above the user's", "oper", "operpw", ipmi.PrivilegeAdministrator, nil,
			`rmcpplus: ` + addr + `: the BMC refused RAKP 1: 0x0A unauthorized role or privilege level requested`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := clientConfig(addr)
			cfg.Username, cfg.Password, cfg.Privilege = tt.user, []byte(tt.pass), tt.priv
			start := time.Now()
			s, err := Dial(context.Background(), cfg)
			if err == nil {
				s.Close()
				t.Fatal("Dial succeeded")
			}
			if err.Error() != tt.wantErr {
				t.Fatalf("error:\n got %s\nwant %s", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %v; authentication errors must be fast", d)
			}
		})
	}
}

func TestOperatorSession(t *testing.T) {
	t.Parallel()
	h := &testHandler{}
	addr := startServer(t, NewServer(testServerConfig(h)), nil)
	cfg := clientConfig(addr)
	cfg.Username, cfg.Password, cfg.Privilege = "oper", []byte("operpw"), ipmi.PrivilegeOperator
	s := dial(t, cfg)
	if _, err := s.Do(context.Background(), ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil); err != nil {
		t.Fatal(err)
	}
	if got := h.lastSession().Privilege(); got != ipmi.PrivilegeOperator {
		t.Fatalf("server session privilege %v, want operator", got)
	}
	// Raising the privilege beyond the user's maximum is refused (0x81).
	_, err := s.Do(context.Background(), ipmi.NetFnApp, ipmi.CmdSetSessionPrivilegeLevel, []byte{byte(ipmi.PrivilegeAdministrator)})
	var ce *ipmi.CompletionError
	if !errors.As(err, &ce) || ce.Code != ccPrivExceedsLimit {
		t.Fatalf("Set Session Privilege Level to administrator: %v, want completion code 0x81", err)
	}
}

func TestDialUnreachable(t *testing.T) {
	t.Parallel()
	addr := silentBMC(t)
	cfg := clientConfig(addr)
	cfg.Timeout, cfg.Retries = 100*time.Millisecond, 2
	start := time.Now()
	_, err := Dial(context.Background(), cfg)
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Dial: %v, want ErrTimeout", err)
	}
	want := "rmcpplus: timeout: no answer from " + addr + " to Get Channel Authentication Capabilities after 3 attempts"
	if err.Error() != want {
		t.Fatalf("error:\n got %s\nwant %s", err, want)
	}
	if budget := 3 * cfg.Timeout; elapsed < budget*9/10 || elapsed > budget+200*time.Millisecond {
		t.Fatalf("gave up after %v, want about %v (timeout x attempts)", elapsed, budget)
	}
}

func TestDialContextCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	cfg := clientConfig(silentBMC(t))
	cfg.Timeout = 10 * time.Second
	if _, err := Dial(ctx, cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial: %v, want context.DeadlineExceeded", err)
	}
}

func TestConcurrentDo(t *testing.T) {
	t.Parallel()
	addr := startServer(t, NewServer(testServerConfig(&testHandler{})), nil)
	s := dial(t, clientConfig(addr))
	const callers, each = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				req := []byte(fmt.Sprintf("caller %d request %d", c, i))
				got, err := s.Do(context.Background(), netFnTest, cmdEcho, req)
				if err != nil {
					errs <- fmt.Errorf("caller %d request %d: %w", c, i, err)
					return
				}
				want := bytes.Clone(req)
				for l, r := 0, len(want)-1; l < r; l, r = l+1, r-1 {
					want[l], want[r] = want[r], want[l]
				}
				if !bytes.Equal(got, want) {
					errs <- fmt.Errorf("caller %d request %d got %q, want %q", c, i, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCompletionError(t *testing.T) {
	t.Parallel()
	addr := startServer(t, NewServer(testServerConfig(&testHandler{})), nil)
	s := dial(t, clientConfig(addr))
	_, err := s.Do(context.Background(), ipmi.NetFnChassis, ipmi.CmdChassisControl, []byte{1})
	var ce *ipmi.CompletionError
	if !errors.As(err, &ce) || ce.Code != ipmi.CCInvalidCommand || ce.Cmd != ipmi.CmdChassisControl {
		t.Fatalf("Do: %v, want Chassis Control: 0xC1", err)
	}
	if want := "Chassis Control: 0xC1 invalid command"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if s.Err() != nil {
		t.Fatalf("a completion code ended the session: %v", s.Err())
	}
}

// A lost answer is retransmitted; the server answers the retransmission
// from its cache instead of running the command again.
func TestRetransmissionAnsweredOnce(t *testing.T) {
	t.Parallel()
	h := &testHandler{}
	var drops sync.Map // first answer to each rqSeq of cmdCounter is lost
	srv := NewServer(testServerConfig(h))
	addr := startServer(t, srv, func(pc net.PacketConn) net.PacketConn {
		return &faultConn{PacketConn: pc, dropOut: func(b []byte) bool {
			return h.executions.Load() > 0 && isCounterAnswer(srv, b) && func() bool {
				_, seen := drops.LoadOrStore("once", true)
				return !seen
			}()
		}}
	})
	cfg := clientConfig(addr)
	cfg.Timeout = 100 * time.Millisecond
	s := dial(t, cfg)
	got, err := s.Do(context.Background(), netFnTest, cmdCounter, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 1 || h.executions.Load() != 1 {
		t.Fatalf("answer %d after %d executions; want 1 and 1", got[0], h.executions.Load())
	}
	// The next request is executed normally.
	if got, err = s.Do(context.Background(), netFnTest, cmdCounter, nil); err != nil || got[0] != 2 {
		t.Fatalf("second request: % X, %v", got, err)
	}
}

// isCounterAnswer reports whether b is a sealed answer to cmdCounter, by
// opening it with the server session's keys.
func isCounterAnswer(srv *Server, b []byte) bool {
	p, err := ParsePacket(b)
	if err != nil || !p.IsV2() || p.SessionID == 0 || p.PayloadType != PayloadIPMI {
		return false
	}
	srv.mu.Lock()
	var keys *SessionKeys
	for _, ss := range srv.sessions {
		if ss.consoleID == p.SessionID {
			keys = ss.keys
		}
	}
	srv.mu.Unlock()
	if keys == nil {
		return false
	}
	plain, err := keys.Open(p)
	if err != nil {
		return false
	}
	m, err := ipmi.ParseMessage(plain)
	return err == nil && m.Cmd == cmdCounter
}

// A replayed request never reaches the handler: the server's window
// rejects it. Replayed answers are dropped by the client's window.
func TestReplayRejected(t *testing.T) {
	t.Parallel()
	h := &testHandler{}
	srv := NewServer(testServerConfig(h))
	addr := startServer(t, srv, nil)

	raddr, _ := net.ResolveUDPAddr("udp4", addr)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fc := &faultConn{PacketConn: pc, dupIn: func(b []byte) bool { return true }}
	cfg := clientConfig(addr)
	cfg.PacketConn = fc
	s := dial(t, cfg)

	ctx := context.Background()
	if _, err := s.Do(ctx, netFnTest, cmdCounter, nil); err != nil {
		t.Fatal(err)
	}
	request := fc.lastSent()
	// Replay the sealed request twice, then make a new request: the server
	// handles datagrams in order, so when the new one is answered the
	// replays have been seen.
	for range 2 {
		if _, err := pc.WriteTo(request, raddr); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Do(ctx, netFnTest, cmdCounter, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 2 || h.executions.Load() != 2 {
		t.Fatalf("counter %d after replays, %d executions; want 2, 2", got[0], h.executions.Load())
	}
	if n := srv.rejectedSeq.Load(); n != 2 {
		t.Fatalf("server rejected %d packets by sequence number, want 2", n)
	}
	// Every answer arrived twice (dupIn); the copies were rejected.
	if n := s.rejectedSeq.Load(); n == 0 {
		t.Fatal("client accepted duplicated answers")
	}
	if total := Counters().RejectedSequence; total < s.rejectedSeq.Load() {
		t.Fatalf("process-wide sequence rejections %d, fewer than this session's %d", total, s.rejectedSeq.Load())
	}
}

// A forged answer with a far-ahead sequence number fails the integrity
// check and must not move the window: the genuine answers that follow are
// still accepted.
func TestForgedPacketRejected(t *testing.T) {
	t.Parallel()
	addr := startServer(t, NewServer(testServerConfig(&testHandler{})), nil)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fc := &faultConn{PacketConn: pc}
	cfg := clientConfig(addr)
	cfg.PacketConn = fc
	s := dial(t, cfg)
	ctx := context.Background()
	if _, err := s.Do(ctx, ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil); err != nil {
		t.Fatal(err)
	}
	forged := fc.lastReceived()
	// RMCP (4), auth type, payload type, session ID (4), then the
	// sequence number: far ahead. The AuthCode no longer matches.
	binary.LittleEndian.PutUint32(forged[10:], 0x7FFFFF00)
	attacker, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	if _, err := attacker.WriteTo(forged, pc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); s.rejectedIntegrity.Load() == 0; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("forged packet not rejected by the integrity check (sequence rejections: %d)", s.rejectedSeq.Load())
		}
	}
	if total := Counters().RejectedIntegrity; total < s.rejectedIntegrity.Load() {
		t.Fatalf("process-wide integrity rejections %d, fewer than this session's %d", total, s.rejectedIntegrity.Load())
	}
	for i := range 3 {
		if _, err := s.Do(ctx, ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil); err != nil {
			t.Fatalf("request %d after the forged packet: %v", i, err)
		}
	}
}

func TestSessionLimit(t *testing.T) {
	t.Parallel()
	cfg := testServerConfig(&testHandler{})
	cfg.MaxSessions = 2
	addr := startServer(t, NewServer(cfg), nil)
	a := dial(t, clientConfig(addr))
	dial(t, clientConfig(addr))
	_, err := Dial(context.Background(), clientConfig(addr))
	want := "rmcpplus: " + addr + ": the BMC refused Open Session Request: 0x01 insufficient resources to create a session"
	if err == nil || err.Error() != want {
		t.Fatalf("third Dial: %v\nwant %s", err, want)
	}
	a.Close() // Close Session frees a slot
	dial(t, clientConfig(addr))
}

func TestCloseIsIdempotentAndEndsDo(t *testing.T) {
	t.Parallel()
	addr := startServer(t, NewServer(testServerConfig(&testHandler{})), nil)
	s := dial(t, clientConfig(addr))
	s.Close()
	s.Close()
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if !errors.Is(s.Err(), ErrSessionClosed) {
		t.Fatalf("Err = %v", s.Err())
	}
	if _, err := s.Do(context.Background(), ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
	if _, err := s.OpenPayload(PayloadSOL, 0); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("OpenPayload after Close: %v", err)
	}
}

// A request the BMC ignores (it dropped the session) ends the session.
func TestTimeoutEndsSession(t *testing.T) {
	t.Parallel()
	srv := NewServer(testServerConfig(&testHandler{}))
	addr := startServer(t, srv, nil)
	cfg := clientConfig(addr)
	cfg.Timeout, cfg.Retries = 50*time.Millisecond, 1
	s := dial(t, cfg)
	srv.DropAllSessions()
	_, err := s.Do(context.Background(), ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Do on a dropped session: %v", err)
	}
	<-s.Done()
	want := "rmcpplus: session to " + addr + " lost: timeout: no answer from " + addr + " to Get Device ID after 2 attempts"
	if s.Err() == nil || s.Err().Error() != want || !errors.Is(s.Err(), ErrTimeout) {
		t.Fatalf("Err = %v\nwant %s", s.Err(), want)
	}
}

func TestPayload(t *testing.T) {
	t.Parallel()
	h := &testHandler{}
	srv := NewServer(testServerConfig(h))
	addr := startServer(t, srv, nil)
	// A second socket of the same BMC, as a BMC with its SOL port apart.
	solPort, solAddr := 0, startServer(t, srv, nil)
	if _, p, err := net.SplitHostPort(solAddr); err == nil {
		fmt.Sscan(p, &solPort)
	}
	for _, port := range []int{0, solPort} {
		t.Run(fmt.Sprintf("port %d", port), func(t *testing.T) {
			s := dial(t, clientConfig(addr))
			if _, err := s.Do(context.Background(), ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil); err != nil {
				t.Fatal(err)
			}
			ss := h.lastSession()
			inbound := make(chan []byte, 4)
			ss.SetPayloadHandler(PayloadSOL, func(b []byte) { inbound <- b })

			pc, err := s.OpenPayload(PayloadSOL, port)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.OpenPayload(PayloadSOL, port); err == nil {
				t.Fatal("second OpenPayload of SOL succeeded")
			}
			if err := pc.Send([]byte("to the BMC")); err != nil {
				t.Fatal(err)
			}
			if got := <-inbound; string(got) != "to the BMC" {
				t.Fatalf("BMC got %q", got)
			}
			if err := ss.SendPayload(PayloadSOL, []byte("to the console")); err != nil {
				t.Fatal(err)
			}
			if got := <-pc.Recv(); string(got) != "to the console" {
				t.Fatalf("console got %q", got)
			}
			pc.Close()
			if _, ok := <-pc.Recv(); ok {
				t.Fatal("Recv not closed after Close")
			}
			if err := pc.Send([]byte("x")); !errors.Is(err, ErrPayloadClosed) {
				t.Fatalf("Send after Close: %v", err)
			}
			// The payload type can be opened again.
			pc2, err := s.OpenPayload(PayloadSOL, port)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if _, ok := <-pc2.Recv(); ok {
				t.Fatal("Recv not closed after the session closed")
			}
		})
	}
}

func TestResolveBMCAddr(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"127.0.0.1", "127.0.0.1:623", false},
		{"127.0.0.1:9623", "127.0.0.1:9623", false},
		{"::1", "[::1]:623", false},
		{"[::1]", "[::1]:623", false},
		{"[::1]:9623", "[::1]:9623", false},
		{"", "", true},
		{":623", "", true},
		{"127.0.0.1:notaport", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := resolveBMCAddr(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("resolved to %v, want an error", got)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestClientConfigValidate(t *testing.T) {
	cfg := ClientConfig{Username: strings.Repeat("u", 17), Password: make([]byte, 21), Privilege: 9, CipherSuite: 4}
	err := cfg.withDefaults().validate()
	want := "rmcpplus: invalid client configuration: no BMC address\n" +
		"user name is 17 bytes; RAKP allows at most 16\n" +
		"password is 21 bytes; IPMI v2.0 allows at most 20\n" +
		"privilege privilege(9) is not a session privilege level\n" +
		"cipher suite 4 is not supported (supported: [0 1 2 3 15 16 17])"
	if err == nil || err.Error() != want {
		t.Fatalf("validate:\n%v\nwant\n%s", err, want)
	}
	d := ClientConfig{Addr: "x"}.withDefaults()
	if d.Privilege != ipmi.PrivilegeAdministrator || d.Timeout != time.Second || d.Retries != 3 || d.KeepAlive != 20*time.Second {
		t.Fatalf("defaults: %+v", d)
	}
	if n := (ClientConfig{Retries: -1}).withDefaults().Retries; n != 0 {
		t.Fatalf("Retries -1 became %d, want 0 (no retransmission)", n)
	}
}

// FuzzClientDatagram feeds arbitrary datagrams to the client's reader with
// a session established (cipher suite 0, so mutations reach the in-session
// paths), a request waiting and a SOL payload connection open.
func FuzzClientDatagram(f *testing.F) {
	for _, b := range [][]byte{capIpmitoolAuthCaps, capIpmitoolCipherSuites, capIpmitoolOpenSession, capFreeIPMISealed, asfPing} {
		f.Add(b)
	}
	rsp := ipmi.Message{DstAddr: ipmi.AddrRemoteSW, NetFn: ipmi.NetFnApp.Response(), SrcAddr: ipmi.AddrBMC, Cmd: ipmi.CmdGetDeviceID, Data: append([]byte{0}, deviceID...)}
	f.Add(AppendV2(nil, PayloadIPMI, 0x0A0B0C0D, 1, rsp.Marshal()))
	f.Add(AppendV15(nil, 0, 0, rsp.Marshal()))
	f.Add(AppendV2(nil, PayloadSOL, 0x0A0B0C0D, 2, []byte{1, 0, 0, 0, 'x'}))
	f.Add(AppendV2(nil, PayloadRAKP2, 0, 0, mustHex("07 00 0000 0d0c0b0a")))
	suite, _ := CipherSuiteByID(0)
	f.Fuzz(func(t *testing.T, b []byte) {
		s := newSession(ClientConfig{Logger: slog.New(slog.DiscardHandler)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: DefaultPort}, nil)
		s.addrText = "fuzz"
		s.sec.Store(&sessionSecrets{keys: NewSessionKeys(suite, nil), consoleID: 0x0A0B0C0D, managedID: 0x01020304})
		pc := &PayloadConn{s: s, pt: PayloadSOL, recv: make(chan []byte, payloadQueue)}
		s.payloads[PayloadSOL].Store(pc)
		if _, _, err := s.table.acquire(context.Background(), nil, ipmi.NetFnApp, ipmi.CmdGetDeviceID, false); err != nil {
			t.Fatal(err)
		}
		var p Packet
		plain := s.handleDatagram(&p, b, nil)
		s.handleDatagram(&p, b, plain[:0])
	})
}
