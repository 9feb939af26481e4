package rmcpplus

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"obmd/ipmi"
)

// Test peers: a Server with a small Handler on 127.0.0.1 (real UDP), or on
// an in-memory datagram network for testing/synctest bubbles, where time
// is fake and blocking on channels is observable.

var testGUID = [16]byte{0xa1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xa1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}

// testUsers: admin/secret (Administrator), oper/operpw (Operator).
func testUsers(name string) ([]byte, ipmi.PrivilegeLevel, bool) {
	switch name {
	case "admin":
		return []byte("secret"), ipmi.PrivilegeAdministrator, true
	case "oper":
		return []byte("operpw"), ipmi.PrivilegeOperator, true
	}
	return nil, 0, false
}

// Test commands answered by testHandler.
const (
	netFnTest  = ipmi.NetFnOEM
	cmdEcho    = ipmi.Command(0x01) // answers its data reversed
	cmdCounter = ipmi.Command(0x02) // counts executions; answers the count
)

// deviceID is a Get Device ID answer (section 20.1): device ID 0x20,
// revision 1, firmware 1.02, IPMI 2.0, no additional devices, IANA 0.
var deviceID = []byte{0x20, 0x01, 0x01, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}

// chassisOn is a Get Chassis Status answer (section 28.2): power on.
var chassisOn = []byte{0x01, 0x00, 0x00}

// testHandler answers Get Device ID and the test commands, refuses the
// rest with 0xC1, and remembers the sessions it served.
type testHandler struct {
	executions atomic.Int64
	mu         sync.Mutex
	sessions   []*ServerSession
}

func (h *testHandler) ServeIPMI(s *ServerSession, req *ipmi.Message) (ipmi.CompletionCode, []byte) {
	h.mu.Lock()
	if len(h.sessions) == 0 || h.sessions[len(h.sessions)-1] != s {
		h.sessions = append(h.sessions, s)
	}
	h.mu.Unlock()
	switch {
	case req.NetFn == ipmi.NetFnApp && req.Cmd == ipmi.CmdGetDeviceID:
		return ipmi.CCOK, deviceID
	case req.NetFn == ipmi.NetFnChassis && req.Cmd == ipmi.CmdGetChassisStatus:
		return ipmi.CCOK, chassisOn
	case req.NetFn == netFnTest && req.Cmd == cmdEcho:
		out := make([]byte, len(req.Data))
		for i, c := range req.Data {
			out[len(out)-1-i] = c
		}
		return ipmi.CCOK, out
	case req.NetFn == netFnTest && req.Cmd == cmdCounter:
		return ipmi.CCOK, []byte{byte(h.executions.Add(1))}
	}
	return ipmi.CCInvalidCommand, nil
}

func (h *testHandler) lastSession() *ServerSession {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.sessions) == 0 {
		return nil
	}
	return h.sessions[len(h.sessions)-1]
}

func testServerConfig(h Handler) ServerConfig {
	return ServerConfig{GUID: testGUID, Users: testUsers, Handler: h, Logger: testLogger()}
}

// startServer serves srv on a fresh 127.0.0.1 UDP socket (wrapped by wrap
// when non-nil) until the test ends and returns its address.
func startServer(t testing.TB, srv *Server, wrap func(net.PacketConn) net.PacketConn) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	if wrap != nil {
		pc = wrap(pc)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(pc) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return addr
}

// silentBMC returns the address of a bound UDP socket that never answers.
func silentBMC(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// sessionCount is the number of sessions in srv's table, half-open ones
// included.
func sessionCount(srv *Server) int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}

func clientConfig(addr string) ClientConfig {
	return ClientConfig{Addr: addr, Username: "admin", Password: []byte("secret"), Timeout: 200 * time.Millisecond, Logger: testLogger()}
}

func dial(t testing.TB, cfg ClientConfig) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testLogger logs at debug level when RMCPPLUS_DEBUG is set.
func testLogger() *slog.Logger {
	if os.Getenv("RMCPPLUS_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// faultConn wraps a PacketConn: dropOut decides which outbound datagrams
// are lost, dupIn which inbound ones arrive twice, and sent records what
// went out.
type faultConn struct {
	net.PacketConn
	dropOut func(b []byte) bool
	dupIn   func(b []byte) bool

	mu       sync.Mutex
	sent     [][]byte
	received []byte // the last datagram read
	pending  []byte // a datagram to deliver again on the next read
	from     net.Addr
}

func (c *faultConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	c.sent = append(c.sent, append([]byte(nil), b...))
	c.mu.Unlock()
	if c.dropOut != nil && c.dropOut(b) {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

func (c *faultConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.mu.Lock()
	if c.pending != nil {
		n := copy(b, c.pending)
		c.pending = nil
		from := c.from
		c.mu.Unlock()
		return n, from, nil
	}
	c.mu.Unlock()
	n, from, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		c.mu.Lock()
		c.received = append(c.received[:0], b[:n]...)
		c.mu.Unlock()
	}
	if err == nil && c.dupIn != nil && c.dupIn(b[:n]) {
		c.mu.Lock()
		c.pending, c.from = append([]byte(nil), b[:n]...), from
		c.mu.Unlock()
	}
	return n, from, err
}

func (c *faultConn) lastReceived() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.received)
}

func (c *faultConn) lastSent() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent[len(c.sent)-1]
}

// ipmiCommand returns the command byte of a pre-session IPMI request
// datagram (v1.5 or RMCP+), or -1.
func ipmiCommand(b []byte) int {
	p, err := ParsePacket(b)
	if err != nil || p.ASF != nil || p.Encrypted {
		return -1
	}
	if p.IsV2() && p.PayloadType != PayloadIPMI {
		return -1
	}
	m, err := ipmi.ParseMessage(p.Payload)
	if err != nil {
		return -1
	}
	return int(m.Cmd)
}

// memNet is an in-memory datagram network: no sockets, so that tests run
// inside a testing/synctest bubble with fake time.
type memNet struct {
	mu    sync.Mutex
	conns map[string]*memConn
}

type memAddr string

func (a memAddr) Network() string { return "udp" }
func (a memAddr) String() string  { return string(a) }

type memDatagram struct {
	b    []byte
	from net.Addr
}

type memConn struct {
	net    *memNet
	addr   net.Addr
	in     chan memDatagram
	closed chan struct{}
	once   sync.Once
}

// listen returns a conn at addr ("127.0.0.1:623" style). A UDPAddr that
// prints the same reaches it.
func (n *memNet) listen(addr string) *memConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns == nil {
		n.conns = make(map[string]*memConn)
	}
	c := &memConn{net: n, addr: memAddr(addr), in: make(chan memDatagram, 256), closed: make(chan struct{})}
	n.conns[addr] = c
	return c
}

func (c *memConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-c.in:
		return copy(b, d.b), d.from, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *memConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.net.mu.Lock()
	peer := c.net.conns[addr.String()]
	c.net.mu.Unlock()
	if peer == nil {
		return len(b), nil // nobody there: lost, as with UDP
	}
	select {
	case peer.in <- memDatagram{b: append([]byte(nil), b...), from: c.addr}:
	default: // queue full: lost
	}
	return len(b), nil
}

func (c *memConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.net.mu.Lock()
		delete(c.net.conns, c.addr.String())
		c.net.mu.Unlock()
	})
	return nil
}

func (c *memConn) LocalAddr() net.Addr                { return c.addr }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }
