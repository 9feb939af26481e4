package fakebmc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// FaultPlan describes the network faults applied to every datagram, in both
// directions: each datagram is independently lost with probability Loss,
// duplicated with probability Dup, and held back so that later datagrams
// overtake it with probability Reorder; every datagram that is delivered is
// delayed by Delay. The same Seed gives the same decisions for the same
// sequence of datagrams, separately for each direction.
type FaultPlan struct {
	Loss, Dup, Reorder float64
	Delay              time.Duration
	Seed               int64
}

// Active reports whether the plan changes anything.
func (p FaultPlan) Active() bool {
	return p.Loss > 0 || p.Dup > 0 || p.Reorder > 0 || p.Delay > 0
}

// Validate reports every field out of range, in words.
func (p FaultPlan) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    float64
	}{{"loss", p.Loss}, {"dup", p.Dup}, {"reorder", p.Reorder}} {
		if !(f.v >= 0 && f.v <= 1) { // also rejects NaN
			errs = append(errs, fmt.Errorf("%s probability %v is not between 0 and 1", f.name, f.v))
		}
	}
	if p.Delay < 0 {
		errs = append(errs, fmt.Errorf("delay %v is negative", p.Delay))
	}
	return errors.Join(errs...)
}

// reorderHold is how long, beyond Delay, a reordered datagram is held back:
// every datagram that arrives meanwhile overtakes it. A hold rather than a
// swap with "the next datagram" means a held datagram is never stuck when
// no next one comes.
func (p FaultPlan) reorderHold() time.Duration { return 10*time.Millisecond + p.Delay }

// faultDecision is what happens to one datagram.
type faultDecision struct {
	drop, duplicate, reorder bool
}

// faultLine is the pure fault logic for one direction: it decides each
// datagram's fate from a seeded generator and queues the survivors by the
// time they are due. It does no I/O and reads no clock.
type faultLine struct {
	plan  FaultPlan
	rng   *rand.Rand
	queue []queuedDatagram // ordered by due; equal dues in arrival order
}

type queuedDatagram struct {
	due  time.Time
	data []byte
	addr net.Addr
}

// Stream identifiers keep the two directions' decisions independent of how
// reads and writes interleave.
const (
	faultStreamRead  = 0x72656164 // "read"
	faultStreamWrite = 0x77726974 // "writ"
)

func newFaultLine(plan FaultPlan, stream uint64) *faultLine {
	return &faultLine{plan: plan, rng: rand.New(rand.NewPCG(uint64(plan.Seed), stream))}
}

// decide draws the fate of the next datagram. It always draws three numbers
// so that each datagram consumes the same amount of the stream.
func (l *faultLine) decide() faultDecision {
	loss, dup, reorder := l.rng.Float64(), l.rng.Float64(), l.rng.Float64()
	return faultDecision{
		drop:      loss < l.plan.Loss,
		duplicate: dup < l.plan.Dup,
		reorder:   reorder < l.plan.Reorder,
	}
}

// push decides the fate of a datagram that arrived at now and queues what
// survives. It keeps data; the caller must not reuse it.
func (l *faultLine) push(now time.Time, data []byte, addr net.Addr) faultDecision {
	d := l.decide()
	if d.drop {
		return d
	}
	due := now.Add(l.plan.Delay)
	if d.reorder {
		due = now.Add(l.plan.reorderHold())
	}
	l.insert(queuedDatagram{due: due, data: data, addr: addr})
	if d.duplicate {
		l.insert(queuedDatagram{due: due, data: data, addr: addr})
	}
	return d
}

func (l *faultLine) insert(q queuedDatagram) {
	i, _ := slices.BinarySearchFunc(l.queue, q.due, func(e queuedDatagram, due time.Time) int {
		if e.due.After(due) {
			return 1
		}
		return -1 // equal dues: after the existing ones
	})
	l.queue = slices.Insert(l.queue, i, q)
}

// popDue removes and returns the first datagram due at now.
func (l *faultLine) popDue(now time.Time) (queuedDatagram, bool) {
	if len(l.queue) == 0 || l.queue[0].due.After(now) {
		return queuedDatagram{}, false
	}
	q := l.queue[0]
	l.queue[0] = queuedDatagram{}
	l.queue = l.queue[1:]
	if len(l.queue) == 0 {
		l.queue = nil // let the backing array go
	}
	return q, true
}

// nextDue is when the first queued datagram is due.
func (l *faultLine) nextDue() (time.Time, bool) {
	if len(l.queue) == 0 {
		return time.Time{}, false
	}
	return l.queue[0].due, true
}

// NewFaultyConn returns conn with plan's faults applied to every datagram
// read from it and written to it. A plan that changes nothing returns conn
// itself. The returned conn owns conn: closing it closes conn.
//
// Reads are served by the calling goroutine (no goroutine is started): it
// queues what the socket delivers and returns each datagram when it is due.
// Concurrent ReadFrom calls are serialised. Delayed writes go out from a
// timer. Deadlines work as on a net.UDPConn.
func NewFaultyConn(conn net.PacketConn, plan FaultPlan) net.PacketConn {
	if !plan.Active() {
		return conn
	}
	return &faultyConn{
		conn:    conn,
		in:      newFaultLine(plan, faultStreamRead),
		out:     newFaultLine(plan, faultStreamWrite),
		readBuf: make([]byte, 65536),
	}
}

type faultyConn struct {
	conn net.PacketConn

	readMu  sync.Mutex // serialises readers; guards readBuf
	readBuf []byte

	mu           sync.Mutex // guards everything below
	in, out      *faultLine
	readDeadline time.Time
	flushTimer   *time.Timer
	closed       bool
}

var errFaultyConnClosed = errors.New("fakebmc: use of closed faulty connection")

func (c *faultyConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		c.mu.Lock()
		now := time.Now()
		if q, ok := c.in.popDue(now); ok {
			c.mu.Unlock()
			return copy(p, q.data), q.addr, nil
		}
		if !c.readDeadline.IsZero() && !now.Before(c.readDeadline) {
			c.mu.Unlock()
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Source: c.conn.LocalAddr(), Err: os.ErrDeadlineExceeded}
		}
		c.armReadDeadlineLocked()
		c.mu.Unlock()

		n, addr, err := c.conn.ReadFrom(c.readBuf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // a datagram fell due, or the caller's deadline passed
			}
			return 0, nil, err
		}
		c.mu.Lock()
		c.in.push(time.Now(), slices.Clone(c.readBuf[:n]), addr)
		c.mu.Unlock()
	}
}

// armReadDeadlineLocked sets the socket's deadline to the earlier of the
// caller's deadline and the next queued datagram's due time.
func (c *faultyConn) armReadDeadlineLocked() {
	dl := c.readDeadline
	if due, ok := c.in.nextDue(); ok && (dl.IsZero() || due.Before(dl)) {
		dl = due
	}
	_ = c.conn.SetReadDeadline(dl)
}

func (c *faultyConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: errFaultyConnClosed}
	}
	c.out.push(time.Now(), slices.Clone(p), addr)
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flushLocked writes every due datagram and arms the timer for the next.
// It returns the first write error.
func (c *faultyConn) flushLocked() error {
	var first error
	for {
		q, ok := c.out.popDue(time.Now())
		if !ok {
			break
		}
		if _, err := c.conn.WriteTo(q.data, q.addr); err != nil && first == nil {
			first = err
		}
	}
	if due, ok := c.out.nextDue(); ok && !c.closed {
		wait := time.Until(due)
		if c.flushTimer == nil {
			c.flushTimer = time.AfterFunc(wait, c.flushFromTimer)
		} else {
			c.flushTimer.Reset(wait)
		}
	}
	return first
}

func (c *faultyConn) flushFromTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		_ = c.flushLocked() // a lossy network has no one to report to
	}
}

func (c *faultyConn) Close() error {
	c.mu.Lock()
	c.closed = true
	if c.flushTimer != nil {
		c.flushTimer.Stop()
	}
	c.mu.Unlock()
	return c.conn.Close()
}

func (c *faultyConn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

func (c *faultyConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.conn.SetWriteDeadline(t)
}

func (c *faultyConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
	c.armReadDeadlineLocked()
	return nil
}

func (c *faultyConn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
