package fakebmc

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// An in-memory datagram network, so that a BMC and obmd's own client run
// inside a testing/synctest bubble: every wait is on a channel or a timer,
// time is fake, and a 30-second reboot takes no real time.

// memAddr is an address on a memNet.
type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

// memNet connects one BMC port with any number of client ports. A
// datagram to an unknown address, or to a port whose queue is full, is
// lost, as on UDP.
type memNet struct {
	mu    sync.Mutex
	ports map[string]*memPort
	next  int
}

type memPort struct {
	net    *memNet
	addr   net.Addr
	in     chan memDatagram
	closed chan struct{}
	once   sync.Once
}

type memDatagram struct {
	data []byte
	from net.Addr
}

func newMemNet() *memNet { return &memNet{ports: make(map[string]*memPort)} }

// listen opens a port at addr; nil addr means a fresh client address.
func (n *memNet) listen(addr net.Addr) *memPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr == nil {
		n.next++
		addr = memAddr("client-" + strconv.Itoa(n.next))
	}
	p := &memPort{net: n, addr: addr, in: make(chan memDatagram, 64), closed: make(chan struct{})}
	n.ports[addr.String()] = p
	return p
}

func (p *memPort) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-p.in:
		return copy(b, d.data), d.from, nil
	case <-p.closed:
		return 0, nil, net.ErrClosed
	}
}

func (p *memPort) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-p.closed:
		return 0, net.ErrClosed
	default:
	}
	p.net.mu.Lock()
	to := p.net.ports[addr.String()]
	p.net.mu.Unlock()
	if to != nil {
		select {
		case to.in <- memDatagram{data: bytes.Clone(b), from: p.addr}:
		default:
		}
	}
	return len(b), nil
}

func (p *memPort) Close() error {
	p.once.Do(func() {
		close(p.closed)
		p.net.mu.Lock()
		delete(p.net.ports, p.addr.String())
		p.net.mu.Unlock()
	})
	return nil
}

func (p *memPort) LocalAddr() net.Addr                { return p.addr }
func (p *memPort) SetDeadline(t time.Time) error      { return nil }
func (p *memPort) SetReadDeadline(t time.Time) error  { return nil }
func (p *memPort) SetWriteDeadline(t time.Time) error { return nil }

// memBMCAddr is where the in-memory BMC listens, as its clients address it.
var memBMCAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 623}

// memBMC is a BMC served on a memNet; call it inside a synctest bubble.
type memBMC struct {
	*BMC
	net *memNet
}

// startMemBMC serves one BMC (machine on, admin/secret) on a fresh memNet;
// it is closed when the test ends.
func startMemBMC(t *testing.T, mutate ...func(*BMCConfig)) *memBMC {
	t.Helper()
	cfg := BMCConfig{
		Users:   []User{{Name: testUser, Password: []byte(testPass)}},
		StartOn: true,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	n := newMemNet()
	hub := newConsoleHub()
	b := newBMC(0, cfg, memBMCAddr, hub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.serve(n.listen(memBMCAddr))
	t.Cleanup(func() {
		b.close()
		hub.close()
	})
	return &memBMC{BMC: b, net: n}
}

// memClient is the configuration of obmd's client to a memBMC: suite 17,
// 1 s per attempt, 2 attempts.
func (m *memBMC) clientConfig() rmcpplus.ClientConfig {
	return rmcpplus.ClientConfig{
		Addr:        memBMCAddr.String(),
		Username:    testUser,
		Password:    []byte(testPass),
		CipherSuite: 17,
		Timeout:     time.Second,
		Retries:     1,
		PacketConn:  m.net.listen(nil),
	}
}

// dial opens a session with obmd's own client; the error is the client's.
func (m *memBMC) dial(t *testing.T, mutate ...func(*rmcpplus.ClientConfig)) (*rmcpplus.Session, error) {
	t.Helper()
	cfg := m.clientConfig()
	for _, f := range mutate {
		f(&cfg)
	}
	s, err := rmcpplus.Dial(t.Context(), cfg)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func (m *memBMC) mustDial(t *testing.T, mutate ...func(*rmcpplus.ClientConfig)) *rmcpplus.Session {
	t.Helper()
	s, err := m.dial(t, mutate...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return s
}

// deviceID sends Get Device ID, the cheapest command.
func deviceID(ctx context.Context, s *rmcpplus.Session) error {
	_, err := s.Do(ctx, ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil)
	return err
}
