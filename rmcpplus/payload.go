package rmcpplus

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// PayloadConn carries one payload type's packets on a session: Serial Over
// LAN (IPMI v2.0 section 15) and other non-IPMI payloads (section 13.27.3).
// Packets are sealed with the session's keys and numbered from the
// session's sequence counter, like IPMI requests.
type PayloadConn struct {
	s  *Session
	pt PayloadType

	// Where Send sends, guarded by sendMu (deliver changes it once when
	// an OpenPayloadEither connection learns which port answers).
	conn net.PacketConn
	addr net.Addr
	own  bool // conn is this PayloadConn's own socket (a different BMC port)
	// While either is set (OpenPayloadEither, until the first inbound
	// payload), Send also sends to altAddr on altConn, this
	// PayloadConn's own socket.
	either  atomic.Bool
	altConn net.PacketConn
	altAddr *net.UDPAddr
	port    atomic.Int32 // the BMC port Send uses once decided (Port)

	// handler, if set (OpenPayloadFunc), receives inbound payloads on the
	// reading goroutine instead of recv.
	handler func(payload []byte)

	sendMu sync.Mutex
	buf    []byte

	closed atomic.Bool
	mu     sync.RWMutex // guards sending on recv against closing it
	recv   chan []byte
}

// payloadQueue bounds the inbound payloads waiting for the reader; more are
// dropped (SOL retransmits what is not acknowledged).
const payloadQueue = 64

// ErrPayloadClosed is returned by Send after Close.
var ErrPayloadClosed = errors.New("rmcpplus: payload connection closed")

// OpenPayload returns a channel for a non-IPMI payload type (SOL) carried
// on this session, at port (0 = the session's own port). A port other than
// the session's gets a socket of its own (Activate Payload may name one,
// section 24.1); keys and sequence numbers stay the session's, and the BMC
// learns that socket's address from the first packet sent on it. One
// PayloadConn per payload type may be open at a time. Inbound payloads
// arrive on Recv.
func (s *Session) OpenPayload(pt PayloadType, port int) (*PayloadConn, error) {
	return s.openPayload(pt, port, nil)
}

// OpenPayloadFunc is OpenPayload that hands every inbound payload to
// handler instead of queueing it on Recv: one goroutine hop and one copy
// less per packet, for a consumer that can act on a payload at once (the
// SOL Console acknowledges it from there).
//
// handler runs on the goroutine that reads the session's socket (or the
// payload's own socket), one payload at a time per socket. The payload is
// decrypted and verified, and valid only until handler returns: the
// buffer is reused for the next datagram. handler must not block, since
// every packet of the session (IPMI responses included) waits for it; it
// may call Send. It is not called for datagrams read after Close or after
// the session ended, but a call already running may still be running when
// Close returns. Recv yields nothing and is closed when the PayloadConn or
// its session ends.
func (s *Session) OpenPayloadFunc(pt PayloadType, port int, handler func(payload []byte)) (*PayloadConn, error) {
	if handler == nil {
		return nil, errors.New("rmcpplus: OpenPayloadFunc needs a handler")
	}
	return s.openPayload(pt, port, handler)
}

// OpenPayloadEither is OpenPayloadFunc for a BMC whose Activate Payload
// named a port other than the session's that may or may not be where it
// serves the payload (BMC-QUIRKS.md "solport": some report a bogus port,
// others a port valid only on their side of a NAT, and the specification
// lets a BMC use a port of its own). Until the first inbound payload
// arrives, Send sends every payload twice, sealed under two session
// sequence numbers: to the session's port on the session's socket, and to
// port on a socket of its own. The socket the first inbound payload comes
// in on wins: Send uses only its route from then on, Port reports its BMC
// port, and the other socket (if it is the PayloadConn's own) is closed.
func (s *Session) OpenPayloadEither(pt PayloadType, port int, handler func(payload []byte)) (*PayloadConn, error) {
	if handler == nil {
		return nil, errors.New("rmcpplus: OpenPayloadEither needs a handler")
	}
	if port <= 0 || port > 0xFFFF || port == s.addr.Port {
		return s.openPayload(pt, port, handler)
	}
	return s.openPayloadEither(pt, port, handler)
}

// RemotePort is the BMC's UDP port this session runs on.
func (s *Session) RemotePort() int { return s.addr.Port }

// BMCSessionID is the session ID the BMC gave this session (the managed
// system session ID, IPMI v2.0 section 13.17), which the BMC names in
// answers such as Get Payload Instance Info; 0 before the handshake.
func (s *Session) BMCSessionID() uint32 {
	if sec := s.sec.Load(); sec != nil {
		return sec.managedID
	}
	return 0
}

// ConsoleSessionID is this side's session ID (the remote console session
// ID); 0 before the handshake.
func (s *Session) ConsoleSessionID() uint32 {
	if sec := s.sec.Load(); sec != nil {
		return sec.consoleID
	}
	return 0
}

// Port is the BMC's UDP port this PayloadConn sends to: the one it was
// opened for, or for OpenPayloadEither the one that answered (0 while
// none has).
func (p *PayloadConn) Port() int { return int(p.port.Load()) }

func (s *Session) openPayloadEither(pt PayloadType, port int, handler func([]byte)) (*PayloadConn, error) {
	pc, err := s.openPayload(pt, 0, handler)
	if err != nil {
		return nil, err
	}
	c, err := listenUDPFor(s.addr)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("rmcpplus: opening a UDP socket for %v to port %d: %w", pt, port, err)
	}
	pc.sendMu.Lock()
	pc.altConn, pc.altAddr = c, &net.UDPAddr{IP: s.addr.IP, Port: port, Zone: s.addr.Zone}
	pc.sendMu.Unlock()
	pc.port.Store(0)
	pc.either.Store(true)
	if pc.closed.Load() { // closed meanwhile: shutdown may have missed c
		c.Close()
		return nil, ErrPayloadClosed
	}
	go s.readLoop(c, false)
	return pc, nil
}

func (s *Session) openPayload(pt PayloadType, port int, handler func([]byte)) (*PayloadConn, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	if pt == PayloadIPMI || pt&payloadTypeMask != pt || (pt >= PayloadOpenSessionReq && pt <= PayloadRAKP4) {
		return nil, fmt.Errorf("rmcpplus: payload type %v cannot be opened as a payload connection", pt)
	}
	if port < 0 || port > 0xFFFF {
		return nil, fmt.Errorf("rmcpplus: payload port %d out of range", port)
	}
	pc := &PayloadConn{s: s, pt: pt, conn: s.conn, addr: s.addr, handler: handler}
	pc.port.Store(int32(s.addr.Port))
	if handler != nil {
		pc.recv = make(chan []byte) // only closed: payloads go to handler
	} else {
		pc.recv = make(chan []byte, payloadQueue)
	}
	if port != 0 && port != s.addr.Port {
		c, err := listenUDPFor(s.addr)
		if err != nil {
			return nil, fmt.Errorf("rmcpplus: opening a UDP socket for %v to port %d: %w", pt, port, err)
		}
		pc.conn, pc.own = c, true
		pc.addr = &net.UDPAddr{IP: s.addr.IP, Port: port, Zone: s.addr.Zone}
		pc.port.Store(int32(port))
	}
	if !s.payloads[pt].CompareAndSwap(nil, pc) {
		pc.shutdown()
		return nil, fmt.Errorf("rmcpplus: payload type %v is already open on this session", pt)
	}
	if err := s.Err(); err != nil { // ended meanwhile: end() may have missed pc
		s.payloads[pt].CompareAndSwap(pc, nil)
		pc.shutdown()
		return nil, err
	}
	if pc.own {
		go s.readLoop(pc.conn, false)
	}
	return pc, nil
}

// Send seals one payload and sends it. payload is not retained.
func (p *PayloadConn) Send(payload []byte) error {
	if p.closed.Load() {
		if err := p.s.Err(); err != nil {
			return err
		}
		return ErrPayloadClosed
	}
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	err := p.sendTo(p.conn, p.addr, payload)
	if p.either.Load() {
		// Not decided yet: the alternative port gets its own copy. Either
		// copy arriving is enough.
		if aerr := p.sendTo(p.altConn, p.altAddr, payload); err != nil && aerr == nil {
			err = nil
		}
	}
	return err
}

// sendTo seals payload under a fresh session sequence number and sends it;
// sendMu is held.
func (p *PayloadConn) sendTo(conn net.PacketConn, addr net.Addr, payload []byte) error {
	sec := p.s.sec.Load()
	var err error
	p.buf, err = sec.keys.AppendSealed(p.buf[:0], p.pt, sec.managedID, p.s.nextSeq(sec), payload)
	if err != nil {
		return fmt.Errorf("rmcpplus: sealing a %v payload: %w", p.pt, err)
	}
	if _, err := conn.WriteTo(p.buf, addr); err != nil {
		if serr := p.s.Err(); serr != nil {
			return serr
		}
		return fmt.Errorf("rmcpplus: sending a %v payload to %v: %w", p.pt, addr, err)
	}
	return nil
}

// decide settles an OpenPayloadEither connection on the route its first
// inbound payload came by (viaSession: the session's socket).
func (p *PayloadConn) decide(viaSession bool) {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if !p.either.CompareAndSwap(true, false) {
		return // decided already, by another socket's first payload
	}
	if viaSession {
		p.port.Store(int32(p.s.addr.Port))
		p.altConn.Close() // its reader ends
		p.altConn = nil
		return
	}
	p.port.Store(int32(p.altAddr.Port))
	p.conn, p.addr, p.own = p.altConn, p.altAddr, true
	p.altConn = nil
}

// Recv yields the decrypted inbound payloads of this type (none when
// opened with OpenPayloadFunc). It is closed when the PayloadConn or its
// session is closed.
func (p *PayloadConn) Recv() <-chan []byte { return p.recv }

// Close stops delivery and closes Recv. It is idempotent.
func (p *PayloadConn) Close() error {
	p.s.payloads[p.pt].CompareAndSwap(p, nil)
	p.shutdown()
	return nil
}

func (p *PayloadConn) shutdown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return
	}
	p.closed.Store(true)
	close(p.recv)
	p.sendMu.Lock()
	if p.own {
		p.conn.Close()
	}
	if p.altConn != nil {
		p.altConn.Close()
	}
	p.sendMu.Unlock()
}

// deliver hands an inbound payload to the handler, or queues a copy of it,
// dropping it when the reader is behind. b is the reading goroutine's
// buffer, valid only during the call; viaSession says whether it came in
// on the session's socket.
func (p *PayloadConn) deliver(b []byte, viaSession bool) {
	if p.either.Load() {
		p.decide(viaSession)
	}
	if p.handler != nil {
		// No lock is held while the handler runs: it may Send, and Send
		// must never wait for a reader of p.mu behind a closing writer.
		if !p.closed.Load() {
			p.handler(b)
		}
		return
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed.Load() {
		return
	}
	select {
	case p.recv <- bytes.Clone(b):
	default:
	}
}
