package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"obmd/bmc"
	"obmd/ipmi"
	"obmd/rmcpplus"
)

// errPoolClosed: an operation after Close.
var errPoolClosed = errors.New("ipmi driver closed")

// sessionPool is the one owner of a node's BMC sessions: it dials them,
// hands them out one user at a time (an operation, or a console for its
// life), keeps the idle ones warm, closes one not used for idleTimeout,
// and replaces one the BMC forgot. Below it, an rmcpplus.Session only
// retransmits its requests and ends when they go unanswered, and a
// bmc.Client is one session that never redials; how a session is
// negotiated is rmcpplus/policy.go's. Everything about when to open,
// reuse, retry on a fresh session or drop a session is in this file.
//
// A BMC may forget a session at any moment (it rebooted, or its session
// table was reset); it then ignores the session's packets (IPMI v2.0
// section 13.6), so a reused session that stops answering is given only
// part of the operation's time (reuseBudget) before the operation is
// retried, once, on a freshly dialled session. A BMC that is really down
// therefore still fails within the operation's deadline.
type sessionPool struct {
	dial         func(ctx context.Context) (*bmc.Client, error)
	idleTimeout  time.Duration
	reuseTimeout time.Duration // see reuseBudget
	maxIdle      int
	log          *slog.Logger
	// onIdleClose, if set, is called after the idle timer closed sessions
	// (tests await it).
	onIdleClose func(n int)

	dials   atomic.Int64 // sessions dialled
	redials atomic.Int64 // operations retried on a fresh session

	mu     sync.Mutex
	idle   []idleSession          // least recently used first
	inUse  map[*bmc.Client]string // handed out, and to what ("power on", "open console", ...)
	timer  *time.Timer            // the idle sweep, armed while sessions are idle
	closed bool
	bg     sync.WaitGroup // sessions being closed
}

type idleSession struct {
	c     *bmc.Client
	since time.Time
}

// withSession runs f on a pooled session for operation op. If the session
// was reused and fails at the session level (no answer within the reuse
// budget, or the session ended), f runs once more on a freshly dialled
// session. The caller gives the session back with d.release.
func withSession[T any](ctx context.Context, d *ipmiDriver, op string, f func(ctx context.Context, c *bmc.Client) (T, error)) (T, *bmc.Client, error) {
	v, c, err := runPooled(ctx, d.pool, op, f)
	return v, c, d.classify(op, err)
}

// runPooled is withSession without the error classification.
func runPooled[T any](ctx context.Context, p *sessionPool, op string, f func(ctx context.Context, c *bmc.Client) (T, error)) (T, *bmc.Client, error) {
	var zero T
	c, reused, err := p.get(ctx, op)
	if err != nil {
		return zero, nil, err
	}
	if reused {
		rctx, cancel := context.WithTimeout(ctx, p.reuseBudget(ctx))
		v, err := f(rctx, c)
		cancel()
		if !sessionFailed(ctx, c, err) {
			return v, c, err
		}
		p.log.Info("warm BMC session failed; retrying on a new session", "op", op, "cause", err.Error())
		p.discard(c)
		p.redials.Add(1)
		if c, err = p.dialFresh(ctx, op); err != nil {
			return zero, nil, err
		}
	}
	v, err := f(ctx, c)
	return v, c, err
}

// call runs one bmc request on a pooled session and gives the session back.
func (d *ipmiDriver) call(ctx context.Context, op string, f func(ctx context.Context, c *bmc.Client) error) error {
	_, c, err := withSession(ctx, d, op, func(ctx context.Context, c *bmc.Client) (struct{}, error) {
		return struct{}{}, f(ctx, c)
	})
	d.release(c, err)
	return err
}

// release gives a session back to the pool after an operation that ended
// with err.
func (d *ipmiDriver) release(c *bmc.Client, err error) { d.pool.release(c, err) }

// release gives c back, or drops it if err says the session failed.
func (p *sessionPool) release(c *bmc.Client, err error) {
	if c == nil {
		return
	}
	if errors.Is(err, ErrTimeout) {
		// The BMC stopped answering this session: do not offer it again.
		// (A canceled request leaves the session usable: a late answer
		// finds no waiter and is dropped.)
		p.discard(c)
		return
	}
	p.put(c)
}

// reuseBudget is the time a request on a reused session gets before the
// session is presumed lost: reuseTimeout, and at most half of what is
// left, so that a fresh session gets the other half.
func (p *sessionPool) reuseBudget(ctx context.Context) time.Duration {
	budget := p.reuseTimeout
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl)/2)
	}
	return budget
}

// sessionFailed reports whether err (from a request on c, under parent
// context ctx) means the session, not the request, failed: the BMC did not
// answer within the reuse budget, or the session ended. An answer with a
// completion code proves the session alive.
func sessionFailed(ctx context.Context, c *bmc.Client, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	if errors.Is(err, bmc.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, rmcpplus.ErrSessionClosed) || errors.Is(err, bmc.ErrClosed) {
		return true
	}
	var ce *ipmi.CompletionError
	if errors.As(err, &ce) {
		return false
	}
	return !c.Alive()
}

// get returns an idle live session (reused) or dials a new one, for op.
func (p *sessionPool) get(ctx context.Context, op string) (c *bmc.Client, reused bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, errPoolClosed
	}
	var dead []*bmc.Client
	for len(p.idle) > 0 && c == nil {
		last := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if last.c.Alive() {
			c = last.c
			p.lendLocked(c, op)
		} else {
			dead = append(dead, last.c)
		}
	}
	p.mu.Unlock()
	for _, d := range dead {
		p.discard(d)
	}
	if c != nil {
		return c, true, nil
	}
	c, err = p.dialFresh(ctx, op)
	return c, false, err
}

// dialFresh dials a new session for a caller (op) that will put or discard
// it.
func (p *sessionPool) dialFresh(ctx context.Context, op string) (*bmc.Client, error) {
	p.dials.Add(1)
	c, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.lendLocked(c, op)
	}
	p.mu.Unlock()
	if closed {
		p.discard(c)
		return nil, errPoolClosed
	}
	return c, nil
}

// lendLocked marks c handed out for op; p.mu is held.
func (p *sessionPool) lendLocked(c *bmc.Client, op string) {
	if p.inUse == nil {
		p.inUse = make(map[*bmc.Client]string)
	}
	p.inUse[c] = op
}

// put makes c idle. A session that ended, one too many, or any after
// close is closed instead.
func (p *sessionPool) put(c *bmc.Client) {
	if c == nil {
		return
	}
	p.mu.Lock()
	delete(p.inUse, c)
	if p.closed || !c.Alive() {
		p.mu.Unlock()
		p.discard(c)
		return
	}
	p.idle = append(p.idle, idleSession{c: c, since: time.Now()})
	var extra []idleSession
	if n := len(p.idle) - p.maxIdle; n > 0 {
		extra = append(extra, p.idle[:n]...)
		p.idle = append(p.idle[:0], p.idle[n:]...)
	}
	if p.timer == nil {
		p.timer = time.AfterFunc(p.idleTimeout, p.sweep)
	}
	p.mu.Unlock()
	for _, s := range extra {
		p.discard(s.c)
	}
}

// sweep closes sessions idle for idleTimeout and re-arms for the next.
func (p *sessionPool) sweep() {
	p.mu.Lock()
	p.timer = nil
	if p.closed {
		p.mu.Unlock()
		return
	}
	now := time.Now()
	var expired []*bmc.Client
	keep := p.idle[:0]
	for _, s := range p.idle {
		if now.Sub(s.since) >= p.idleTimeout {
			expired = append(expired, s.c)
		} else {
			keep = append(keep, s)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	if len(p.idle) > 0 {
		p.timer = time.AfterFunc(p.idleTimeout-now.Sub(p.idle[0].since), p.sweep)
	}
	hook := p.onIdleClose
	p.mu.Unlock()
	for _, c := range expired {
		p.discard(c)
	}
	if len(expired) > 0 {
		p.log.Debug("closed idle BMC sessions", "count", len(expired))
		if hook != nil {
			hook(len(expired))
		}
	}
}

// discardIdle closes every idle session and returns how many there were.
func (p *sessionPool) discardIdle() int {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	for _, s := range idle {
		p.discard(s.c)
	}
	return len(idle)
}

// discard closes c in the background (Close Session may wait for a BMC
// that no longer answers); close waits for it. Once the pool is closed,
// discard closes c itself.
func (p *sessionPool) discard(c *bmc.Client) {
	p.mu.Lock()
	delete(p.inUse, c)
	closed := p.closed
	if !closed {
		p.bg.Add(1) // under mu: close's Wait cannot have started
	}
	p.mu.Unlock()
	if closed {
		c.Close()
		return
	}
	go func() {
		defer p.bg.Done()
		c.Close()
	}()
}

// close closes every idle session, refuses new ones and waits until every
// discarded session is closed.
func (p *sessionPool) close() {
	p.mu.Lock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range idle {
		wg.Go(func() { s.c.Close() })
	}
	wg.Wait()
	p.bg.Wait()
}

// describe is the pool's state for the operator (DriverStatus.Sessions).
func (p *sessionPool) describe() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return "closed"
	}
	var ops []string
	for _, op := range p.inUse {
		ops = append(ops, op)
	}
	state := fmt.Sprintf("%d idle, %d in use", len(p.idle), len(p.inUse))
	if len(ops) > 0 {
		slices.Sort(ops)
		state += " (" + strings.Join(ops, ", ") + ")"
	}
	return fmt.Sprintf("%s; %d opened, %d replaced after the BMC stopped answering", state, p.dials.Load(), p.redials.Load())
}
