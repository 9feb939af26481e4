package rmcpplus

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"obmd/ipmi"
)

// Session lifetime with fake time: client and server on an in-memory
// network inside a synctest bubble, so minutes pass in microseconds.

const memBMC = "127.0.0.1:623"

// memPair starts a server on mn at memBMC and dials it. Call inside a
// bubble; both are closed when f returns.
func memPair(t *testing.T, scfg ServerConfig, ccfg ClientConfig, f func(srv *Server, s *Session, h *testHandler)) {
	t.Helper()
	var mn memNet
	h := scfg.Handler.(*testHandler)
	srv := NewServer(scfg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(mn.listen(memBMC)) }()
	ccfg.Addr = memBMC
	ccfg.PacketConn = mn.listen("127.0.0.1:40000")
	defer func() { // also after t.Fatal in f: the bubble must drain
		srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	s, err := Dial(context.Background(), ccfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer s.Close()
	f(srv, s, h)
}

// serverSession makes one request so the handler sees the session.
func serverSession(t *testing.T, s *Session, h *testHandler) *ServerSession {
	t.Helper()
	if _, err := s.Do(context.Background(), ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil); err != nil {
		t.Fatal(err)
	}
	return h.lastSession()
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestIdleExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		scfg := testServerConfig(&testHandler{})
		scfg.IdleTimeout = time.Minute
		ccfg := clientConfig("")
		ccfg.KeepAlive = time.Hour // no keepalive
		memPair(t, scfg, ccfg, func(srv *Server, s *Session, h *testHandler) {
			ss := serverSession(t, s, h)
			time.Sleep(59 * time.Second)
			synctest.Wait()
			if isClosed(ss.Done()) {
				t.Fatal("session expired before the idle timeout")
			}
			// Activity moves the deadline.
			serverSession(t, s, h)
			time.Sleep(59 * time.Second)
			synctest.Wait()
			if isClosed(ss.Done()) {
				t.Fatal("session expired although it was used 59 s ago")
			}
			time.Sleep(2 * time.Second)
			synctest.Wait()
			if !isClosed(ss.Done()) {
				t.Fatal("session still open after 61 s idle")
			}
			if n := sessionCount(srv); n != 0 {
				t.Fatalf("%d sessions left in the table", n)
			}
		})
	})
}

func TestKeepaliveKeepsSessionAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		scfg := testServerConfig(&testHandler{})
		scfg.IdleTimeout = time.Minute
		ccfg := clientConfig("")
		ccfg.KeepAlive = 20 * time.Second
		memPair(t, scfg, ccfg, func(srv *Server, s *Session, h *testHandler) {
			ss := serverSession(t, s, h)
			time.Sleep(10 * time.Minute)
			synctest.Wait()
			if isClosed(ss.Done()) {
				t.Fatal("server expired a session kept alive for 10 minutes")
			}
			if err := s.Err(); err != nil {
				t.Fatalf("client session ended: %v", err)
			}
			if _, err := s.Do(context.Background(), ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil); err != nil {
				t.Fatalf("Do after 10 minutes: %v", err)
			}
		})
	})
}

func TestDropAllSessionsEndsClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ccfg := clientConfig("")
		ccfg.KeepAlive = 20 * time.Second
		ccfg.Timeout = time.Second
		memPair(t, testServerConfig(&testHandler{}), ccfg, func(srv *Server, s *Session, h *testHandler) {
			ss := serverSession(t, s, h)
			start := time.Now()
			srv.DropAllSessions()
			if !isClosed(ss.Done()) {
				t.Fatal("server session Done not closed by DropAllSessions")
			}
			<-s.Done()
			// The next keepalive (20 s after the last answer) gets no
			// answer in 4 attempts of 1 s on average.
			if d := time.Since(start); d > 24*time.Second {
				t.Fatalf("client noticed after %v, want at most 24 s", d)
			}
			want := "rmcpplus: session to " + memBMC + " lost: keepalive: timeout: no answer from " + memBMC +
				" to Get Channel Authentication Capabilities after 4 attempts"
			if err := s.Err(); err == nil || err.Error() != want || !errors.Is(err, ErrTimeout) {
				t.Fatalf("Err = %v\nwant %s", err, want)
			}
		})
	})
}

func TestServerCloseEndsSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		memPair(t, testServerConfig(&testHandler{}), clientConfig(""), func(srv *Server, s *Session, h *testHandler) {
			ss := serverSession(t, s, h)
			srv.Close()
			if !isClosed(ss.Done()) {
				t.Fatal("Done not closed by Server.Close")
			}
			if err := ss.SendPayload(PayloadSOL, []byte("x")); !errors.Is(err, ErrSessionClosed) {
				t.Fatalf("SendPayload on an ended session: %v", err)
			}
		})
	})
}

// Every other datagram from the BMC is lost: the handshake and a request
// still succeed by retransmission, and the retransmitted request is
// answered from the server's cache rather than run twice.
func TestLossyLinkRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mn memNet
		h := &testHandler{}
		srv := NewServer(testServerConfig(h))
		sconn := mn.listen(memBMC)
		lossy := &faultConn{PacketConn: sconn}
		var n int
		lossy.dropOut = func([]byte) bool { n++; return n%2 == 1 } // every other datagram lost
		go srv.Serve(lossy)
		defer srv.Close()
		ccfg := clientConfig(memBMC)
		ccfg.PacketConn = mn.listen("127.0.0.1:40000")
		ccfg.CipherSuite = 17
		s, err := Dial(context.Background(), ccfg)
		if err != nil {
			t.Fatalf("Dial over a lossy link: %v", err)
		}
		defer s.Close()
		got, err := s.Do(context.Background(), netFnTest, cmdCounter, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != 1 || h.executions.Load() != 1 {
			t.Fatalf("counter answered %d after %d executions; a retransmission ran the command again", got[0], h.executions.Load())
		}
	})
}
