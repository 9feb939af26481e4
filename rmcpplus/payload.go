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
	s    *Session
	pt   PayloadType
	conn net.PacketConn
	addr net.Addr
	own  bool // conn is this PayloadConn's own socket (a different BMC port)

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
	sec := p.s.sec.Load()
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	var err error
	p.buf, err = sec.keys.AppendSealed(p.buf[:0], p.pt, sec.managedID, p.s.nextSeq(sec), payload)
	if err != nil {
		return fmt.Errorf("rmcpplus: sealing a %v payload: %w", p.pt, err)
	}
	if _, err := p.conn.WriteTo(p.buf, p.addr); err != nil {
		if serr := p.s.Err(); serr != nil {
			return serr
		}
		return fmt.Errorf("rmcpplus: sending a %v payload to %v: %w", p.pt, p.addr, err)
	}
	return nil
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
	if p.own {
		p.conn.Close()
	}
}

// deliver hands an inbound payload to the handler, or queues a copy of it,
// dropping it when the reader is behind. b is the reading goroutine's
// buffer, valid only during the call.
func (p *PayloadConn) deliver(b []byte) {
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
