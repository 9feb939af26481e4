package rmcpplus

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// bmcPort is a UDP socket standing for a BMC port: it reads what the
// console sends there.
func bmcPort(t *testing.T) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readDatagram returns the next datagram c receives within d, and the
// sender's address, or nil.
func readDatagram(t *testing.T, c net.PacketConn, d time.Duration) ([]byte, net.Addr) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 2048)
	n, from, err := c.ReadFrom(buf)
	if err != nil {
		return nil, nil
	}
	return buf[:n], from
}

// eitherRig is a SOL payload opened with OpenPayloadEither for altPort (a
// socket of the test's) on a session whose own port is sink.
type eitherRig struct {
	sink    *sinkConn
	s       *Session
	alt     net.PacketConn
	altPort int
	got     chan []byte // what the payload's handler received
	pc      *PayloadConn
}

func openEither(t *testing.T) eitherRig {
	t.Helper()
	r := eitherRig{sink: &sinkConn{}, alt: bmcPort(t), got: make(chan []byte, 4)}
	r.s = newKeyedSession(t, 17, r.sink)
	r.altPort = r.alt.LocalAddr().(*net.UDPAddr).Port
	var err error
	r.pc, err = r.s.OpenPayloadEither(PayloadSOL, r.altPort, func(b []byte) { r.got <- bytes.Clone(b) })
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestOpenPayloadEitherKeepsThePortThatAnswers: a payload opened for a port
// other than the session's goes to both until a payload comes back; the
// socket it comes in on decides where everything after goes.
func TestOpenPayloadEitherKeepsThePortThatAnswers(t *testing.T) {
	t.Run("the session's port answers", func(t *testing.T) {
		r := openEither(t)
		sink, s, alt, got, pc := r.sink, r.s, r.alt, r.got, r.pc
		if pc.Port() != 0 {
			t.Fatalf("Port = %d before any answer, want 0", pc.Port())
		}
		if err := pc.Send([]byte("\x01\x00\x00\x00")); err != nil {
			t.Fatal(err)
		}
		if sink.writes.Load() != 1 {
			t.Fatalf("%d datagrams to the session's port, want 1", sink.writes.Load())
		}
		if d, _ := readDatagram(t, alt, 2*time.Second); d == nil {
			t.Fatal("nothing reached the alternative port")
		}
		var p Packet
		s.handleDatagramVia(&p, bmcSeal(t, s, PayloadSOL, 1, []byte("\x00\x01\x00\x00")), nil, true)
		if b := <-got; string(b) != "\x00\x01\x00\x00" {
			t.Fatalf("handler got %q", b)
		}
		if pc.Port() != DefaultPort {
			t.Fatalf("Port = %d after the session's port answered, want %d", pc.Port(), DefaultPort)
		}
		if err := pc.Send([]byte("\x02\x00\x00\x00x")); err != nil {
			t.Fatal(err)
		}
		if sink.writes.Load() != 2 {
			t.Fatalf("%d datagrams to the session's port, want 2", sink.writes.Load())
		}
		if d, _ := readDatagram(t, alt, 100*time.Millisecond); d != nil {
			t.Fatal("the alternative port still gets payloads after the session's port answered")
		}
	})
	t.Run("the named port answers", func(t *testing.T) {
		r := openEither(t)
		sink, s, alt, altPort, got, pc := r.sink, r.s, r.alt, r.altPort, r.got, r.pc
		if err := pc.Send([]byte("\x01\x00\x00\x00")); err != nil {
			t.Fatal(err)
		}
		_, console := readDatagram(t, alt, 2*time.Second)
		if console == nil {
			t.Fatal("nothing reached the named port")
		}
		// The BMC answers from the named port to the socket that wrote
		// there.
		if _, err := alt.WriteTo(bmcSeal(t, s, PayloadSOL, 1, []byte("\x00\x01\x00\x00")), console); err != nil {
			t.Fatal(err)
		}
		select {
		case b := <-got:
			if string(b) != "\x00\x01\x00\x00" {
				t.Fatalf("handler got %q", b)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the answer on the named port never reached the handler")
		}
		if pc.Port() != altPort {
			t.Fatalf("Port = %d, want the named %d", pc.Port(), altPort)
		}
		if err := pc.Send([]byte("\x02\x00\x00\x00x")); err != nil {
			t.Fatal(err)
		}
		if sink.writes.Load() != 1 {
			t.Fatalf("%d datagrams to the session's port, want only the first", sink.writes.Load())
		}
		if d, _ := readDatagram(t, alt, 2*time.Second); d == nil {
			t.Fatal("the named port did not get the next payload")
		}
		pc.Close()
	})
	t.Run("the session's own port named", func(t *testing.T) {
		s := newKeyedSession(t, 17, &sinkConn{})
		pc, err := s.OpenPayloadEither(PayloadSOL, DefaultPort, func([]byte) {})
		if err != nil {
			t.Fatal(err)
		}
		if pc.Port() != DefaultPort || pc.either.Load() {
			t.Fatalf("Port %d, either %v: want the session's port, decided", pc.Port(), pc.either.Load())
		}
	})
}
