package fakebmc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// A stale SOL payload, made the way it happens in real life: a client
// opens a session, activates SOL, and vanishes without a word. The client
// is obmd's own rmcpplus client, talking to the BMC's own Server over an
// in-process link instead of the network (so network faults, a black hole
// or a full session table do not stand in its way, and no port is used);
// the session it leaves is a real one in the BMC's session table, holding
// a slot, expiring after the idle timeout, and closable by Close Session
// or Deactivate Payload like any other.

// staleSOLActivate is the Activate Payload request ipmitool's `sol
// activate` sends (IPMI v2.0 section 24.1, Table 24-2): SOL, instance 1,
// encryption and authentication, serial alerts deferred, handshake
// deasserted.
var staleSOLActivate = []byte{byte(ipmi.PayloadTypeSOL), solInstance, 0xC6, 0x00, 0x00, 0x00}

// staleSOLTimeout bounds the vanishing client's whole visit. The link
// loses nothing, so only a BMC that is not serving takes this long.
const staleSOLTimeout = 5 * time.Second

// ErrSOLAlreadyActive is LeaveStaleSOL's error when SOL is active
// already: Activate Payload answered 0x80.
var ErrSOLAlreadyActive = errors.New("fakebmc: SOL payload already active")

// LeaveStaleSOL activates the SOL payload from a client that then
// vanishes, as if it had been killed with SIGKILL: no Deactivate Payload,
// no Close Session. Until someone deactivates the payload (Deactivate
// Payload from any session of the first configured user, or an
// administrator's) or the BMC's idle timeout ends the forgotten session,
// Activate Payload answers 0x80 "payload already active", and the
// console's output goes to the vanished client (the host waits for it,
// as with hardware flow control). The client logs in as the BMC's first
// configured user.
//
// It fails if the BMC is rebooting or closed, if SOL is already active
// (ErrSOLAlreadyActive), or if Activate Payload is refused (SOL
// disabled, not enough privilege).
func (b *BMC) LeaveStaleSOL() error {
	if b.Rebooting() {
		return fmt.Errorf("fakebmc: cannot leave a stale SOL on %s: the BMC is rebooting", b.addr)
	}
	user := b.cfg.Users[0]
	priv := user.MaxPrivilege
	if priv == 0 {
		priv = ipmi.PrivilegeAdministrator
	}
	bmcEnd, clientEnd := newPhantomLink()
	go func() { _ = b.server.Serve(bmcEnd) }() // returns when the link goes
	ctx, cancel := context.WithTimeout(context.Background(), staleSOLTimeout)
	defer cancel()
	s, err := rmcpplus.Dial(ctx, rmcpplus.ClientConfig{
		Addr:       b.addr.String(),
		Username:   user.Name,
		Password:   user.Password,
		Kg:         b.cfg.Kg,
		Privilege:  priv,
		Timeout:    staleSOLTimeout / 4,
		Retries:    -1,
		KeepAlive:  time.Hour, // it never gets to send one
		PacketConn: clientEnd,
	})
	if err != nil {
		return fmt.Errorf("fakebmc: leaving a stale SOL on %s: logging in: %w", b.addr, err)
	}
	if _, err := s.Do(ctx, ipmi.NetFnApp, ipmi.CmdActivatePayload, staleSOLActivate); err != nil {
		s.Close() // a polite client after all: nothing was left
		if ce, ok := errors.AsType[*ipmi.CompletionError](err); ok && ce.Code == ccPayloadActive {
			return fmt.Errorf("%w on %s", ErrSOLAlreadyActive, b.addr)
		}
		return fmt.Errorf("fakebmc: leaving a stale SOL on %s: %w", b.addr, err)
	}
	b.mu.Lock()
	if b.active != nil && b.active.sess.ID() == s.BMCSessionID() {
		b.active.phantom = true
	}
	b.mu.Unlock()
	// The kill: from here on the client can send nothing (its Close
	// Session never leaves) and the BMC's packets to it go nowhere.
	clientEnd.vanish()
	s.Close()
	b.log.Info("SOL left active by a vanished client")
	return nil
}

// phantomAddr is the vanishing client's address as the BMC sees it.
type phantomAddr struct{}

func (phantomAddr) Network() string { return "phantom" }
func (phantomAddr) String() string  { return "vanished-client" }

// phantomLink is an in-process datagram link between the vanishing client
// and the BMC's Server. Until vanish it carries datagrams both ways (a
// full queue drops, as UDP would); afterwards the client's end fails
// every call, and the BMC's end swallows what the BMC sends and ends its
// Serve loop.
type phantomLink struct {
	toBMC, toClient chan []byte
	gone            chan struct{}
	once            sync.Once
}

// phantomEnd is one end of a phantomLink.
type phantomEnd struct {
	link *phantomLink
	bmc  bool // the BMC's end
}

// phantomQueue is the datagrams in flight per direction: a handshake and
// one request need a few; SOL output beyond it is dropped.
const phantomQueue = 16

func newPhantomLink() (bmcEnd, clientEnd *phantomEnd) {
	l := &phantomLink{
		toBMC:    make(chan []byte, phantomQueue),
		toClient: make(chan []byte, phantomQueue),
		gone:     make(chan struct{}),
	}
	return &phantomEnd{link: l, bmc: true}, &phantomEnd{link: l}
}

// vanish cuts the link, once.
func (e *phantomEnd) vanish() { e.link.once.Do(func() { close(e.link.gone) }) }

func (e *phantomEnd) ReadFrom(p []byte) (int, net.Addr, error) {
	in := e.link.toClient
	if e.bmc {
		in = e.link.toBMC
	}
	select {
	case d := <-in:
		return copy(p, d), phantomAddr{}, nil
	case <-e.link.gone:
		return 0, nil, net.ErrClosed
	}
}

func (e *phantomEnd) WriteTo(p []byte, _ net.Addr) (int, error) {
	select {
	case <-e.link.gone:
		if e.bmc {
			return len(p), nil // to a client that is no more
		}
		return 0, net.ErrClosed
	default:
	}
	out := e.link.toBMC
	if e.bmc {
		out = e.link.toClient
	}
	select {
	case out <- bytes.Clone(p):
	default: // the queue is full: lost
	}
	return len(p), nil
}

// Close cuts the link: the client's session ending (a failed login), or
// the BMC's Server closing.
func (e *phantomEnd) Close() error {
	e.vanish()
	return nil
}

func (e *phantomEnd) LocalAddr() net.Addr                { return phantomAddr{} }
func (e *phantomEnd) SetDeadline(t time.Time) error      { return nil }
func (e *phantomEnd) SetReadDeadline(t time.Time) error  { return nil }
func (e *phantomEnd) SetWriteDeadline(t time.Time) error { return nil }
