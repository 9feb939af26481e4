package fakebmc

import (
	"encoding/binary"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"obmd/rmcpplus"
)

// The datagram side of a BMC's misbehaviour. A gateConn sits between the
// BMC's socket (behind any FaultPlan) and its rmcpplus.Server: while the
// BMC reboots or is a black hole it swallows every datagram both ways;
// while its session table is full it answers Open Session itself, with
// status 0x01, so the request never reaches the Server; and it holds
// every outbound datagram back by the slow-answers delay.
//
// The decisions are the pure methods of gateState; gateConn only applies
// them to the socket and runs the timer that lets held datagrams out.

// gateState is a BMC's misbehaviour at one moment.
type gateState struct {
	silentUntil time.Time // rebooting until then
	blackHole   bool
	tableFull   bool
	slow        time.Duration
}

// active reports whether the gate changes anything now or later.
func (g gateState) active(now time.Time) bool {
	return g.blackHole || g.tableFull || g.slow > 0 || now.Before(g.silentUntil)
}

// silent reports whether the BMC answers nothing at now.
func (g gateState) silent(now time.Time) bool {
	return g.blackHole || now.Before(g.silentUntil)
}

// inVerdict is what happens to an inbound datagram.
type inVerdict uint8

const (
	inPass   inVerdict = iota // to the session layer
	inDrop                    // nobody hears it
	inRefuse                  // answered by the gate (session table full)
)

// inbound decides the fate of a datagram from the network; for inRefuse
// it also returns the answer to send back.
func (g gateState) inbound(now time.Time, datagram []byte) (inVerdict, []byte) {
	if g.silent(now) {
		return inDrop, nil
	}
	if g.tableFull {
		if reply, ok := refuseOpenSession(datagram); ok {
			return inRefuse, reply
		}
	}
	return inPass, nil
}

// outbound decides when a datagram the BMC sends at now may leave: never
// (ok false) while silent, else after the slow-answers delay, and never
// before one sent earlier (notBefore), since a busy CPU answers in order.
func (g gateState) outbound(now, notBefore time.Time) (due time.Time, ok bool) {
	if g.silent(now) {
		return time.Time{}, false
	}
	due = now.Add(g.slow)
	if due.Before(notBefore) {
		due = notBefore
	}
	return due, true
}

// refuseOpenSession answers an RMCP+ Open Session Request (IPMI v2.0
// section 13.17) with an Open Session Response (section 13.18, Table
// 13-10) of status 0x01 "insufficient resources to create a session"
// (Table 13-15): what a BMC whose session slots are all taken answers.
// ok is false for any other datagram, which the gate lets through. The
// answer echoes the message tag and the console's session ID, as the
// session layer's own refusals do, so the client matches it to its
// request.
func refuseOpenSession(datagram []byte) (reply []byte, ok bool) {
	var p rmcpplus.Packet
	if err := p.Unmarshal(datagram); err != nil || !p.IsV2() || p.ASF != nil {
		return nil, false
	}
	if p.SessionID != 0 || p.Authenticated || p.Encrypted || p.PayloadType != rmcpplus.PayloadOpenSessionReq {
		return nil, false
	}
	// Byte 1 is the message tag, bytes 5:8 the console's session ID; the
	// rest does not matter to a refusal.
	if len(p.Payload) < 8 {
		return nil, false
	}
	rsp := rmcpplus.OpenSessionResponse{
		Tag:              p.Payload[0],
		Status:           rmcpplus.RAKPInsufficientResources,
		ConsoleSessionID: binary.LittleEndian.Uint32(p.Payload[4:8]),
	}
	return rmcpplus.AppendV2(nil, rmcpplus.PayloadOpenSessionRsp, 0, 0, rsp.Marshal()), true
}

// gateConn applies a BMC's gateState to its socket. A gate that changes
// nothing costs one atomic load per datagram.
type gateConn struct {
	conn net.PacketConn

	engaged atomic.Bool // state.active(now) may be true: take the slow path

	mu      sync.Mutex
	state   gateState
	held    []heldDatagram // outbound, in due order
	timer   *time.Timer    // lets held datagrams out
	wake    *time.Timer    // fires when a reboot's silence ends
	reboots int            // reboots begun
	changed chan struct{}  // closed and replaced on every change
	closed  bool
}

type heldDatagram struct {
	due  time.Time
	data []byte
	addr net.Addr
}

func newGateConn(conn net.PacketConn) *gateConn {
	return &gateConn{conn: conn, changed: make(chan struct{})}
}

// update changes the state with f and tells waiters.
func (c *gateConn) update(f func(*gateState)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.state)
	c.changedLocked(time.Now())
}

// changedLocked settles the gate after a change: a silence drops the held
// datagrams (a rebooting BMC never sends what it was about to), the fast
// path is taken again once nothing is left to do, and waiters are told.
func (c *gateConn) changedLocked(now time.Time) {
	if c.state.silent(now) {
		clear(c.held)
		c.held = c.held[:0]
	}
	c.engaged.Store(c.state.active(now) || len(c.held) > 0)
	close(c.changed)
	c.changed = make(chan struct{})
}

// snapshot returns the state, the number of reboots begun and a channel
// closed at the next change.
func (c *gateConn) snapshot() (gateState, int, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state, c.reboots, c.changed
}

// silence makes the gate silent until at least until, counts a reboot,
// and arms the timer that announces the end of the silence.
func (c *gateConn) silence(until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until.After(c.state.silentUntil) {
		c.state.silentUntil = until
	}
	c.reboots++
	now := time.Now()
	c.changedLocked(now)
	if c.closed {
		return
	}
	d := c.state.silentUntil.Sub(now)
	if c.wake == nil {
		c.wake = time.AfterFunc(d, c.silenceOver)
	} else {
		c.wake.Reset(d)
	}
}

// silenceOver tells waiters that a reboot's silence has ended.
func (c *gateConn) silenceOver() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if d := c.state.silentUntil.Sub(now); d > 0 { // extended meanwhile
		c.wake.Reset(d)
		return
	}
	c.changedLocked(now)
}

func (c *gateConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.conn.ReadFrom(p)
		if err != nil || !c.engaged.Load() {
			return n, addr, err
		}
		c.mu.Lock()
		verdict, reply := c.state.inbound(time.Now(), p[:n])
		c.mu.Unlock()
		switch verdict {
		case inPass:
			return n, addr, nil
		case inRefuse:
			_, _ = c.WriteTo(reply, addr) // a lost refusal is the client's retry
		}
	}
}

// WriteTo sends p now, later (slow answers) or never (silent). A
// swallowed datagram reports success, as a datagram lost on the way
// would.
func (c *gateConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.engaged.Load() {
		return c.conn.WriteTo(p, addr)
	}
	c.mu.Lock()
	now := time.Now()
	var last time.Time
	if len(c.held) > 0 {
		last = c.held[len(c.held)-1].due
	}
	due, ok := c.state.outbound(now, last)
	if !ok || c.closed {
		c.mu.Unlock()
		return len(p), nil
	}
	if !due.After(now) {
		c.mu.Unlock()
		return c.conn.WriteTo(p, addr)
	}
	c.held = append(c.held, heldDatagram{due: due, data: slices.Clone(p), addr: addr})
	if len(c.held) == 1 {
		c.armLocked(due.Sub(now))
	}
	c.mu.Unlock()
	return len(p), nil
}

func (c *gateConn) armLocked(d time.Duration) {
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.release)
	} else {
		c.timer.Reset(d)
	}
}

// release sends the held datagrams that are due and re-arms for the
// rest. It writes with the lock held, so that nothing overtakes them.
func (c *gateConn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	n := 0
	for n < len(c.held) && !c.held[n].due.After(now) {
		if _, err := c.conn.WriteTo(c.held[n].data, c.held[n].addr); err != nil {
			c.held = nil // the socket is closed: the rest would fail too
			return
		}
		n++
	}
	c.held = slices.Delete(c.held, 0, n)
	if len(c.held) > 0 && !c.closed {
		c.armLocked(c.held[0].due.Sub(now))
	}
	c.engaged.Store(c.state.active(now) || len(c.held) > 0)
}

func (c *gateConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.held = nil
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.wake != nil {
		c.wake.Stop()
	}
	c.mu.Unlock()
	return c.conn.Close()
}

func (c *gateConn) LocalAddr() net.Addr                { return c.conn.LocalAddr() }
func (c *gateConn) SetDeadline(t time.Time) error      { return c.conn.SetDeadline(t) }
func (c *gateConn) SetReadDeadline(t time.Time) error  { return c.conn.SetReadDeadline(t) }
func (c *gateConn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
