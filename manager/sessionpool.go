package manager

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"obmd/bmc"
)

// errPoolClosed: an operation after Close.
var errPoolClosed = errors.New("ipmi driver closed")

// sessionPool keeps a node's idle BMC sessions warm. Sessions are handed
// out one user at a time (an operation, or a console for its life) and
// given back with put; the most recently used idle session is reused
// first; one not used for idleTimeout is closed.
type sessionPool struct {
	dial        func(ctx context.Context) (*bmc.Client, error)
	idleTimeout time.Duration
	maxIdle     int
	log         *slog.Logger
	// onIdleClose, if set, is called after the idle timer closed sessions
	// (tests await it).
	onIdleClose func(n int)

	mu     sync.Mutex
	idle   []idleSession // least recently used first
	timer  *time.Timer   // the idle sweep, armed while sessions are idle
	closed bool
	bg     sync.WaitGroup // sessions being closed
}

type idleSession struct {
	c     *bmc.Client
	since time.Time
}

// get returns an idle live session (reused) or dials a new one.
func (p *sessionPool) get(ctx context.Context) (c *bmc.Client, reused bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, errPoolClosed
	}
	var dead []*bmc.Client
	for len(p.idle) > 0 && c == nil {
		last := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if alive(last.c) {
			c = last.c
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
	c, err = p.dialFresh(ctx)
	return c, false, err
}

// dialFresh dials a new session for a caller that will put or discard it.
func (p *sessionPool) dialFresh(ctx context.Context) (*bmc.Client, error) {
	c, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		p.discard(c)
		return nil, errPoolClosed
	}
	return c, nil
}

func alive(c *bmc.Client) bool {
	s := c.Session()
	return s != nil && s.Err() == nil
}

// put makes c idle. A session that ended, one too many, or any after
// close is closed instead.
func (p *sessionPool) put(c *bmc.Client) {
	if c == nil {
		return
	}
	p.mu.Lock()
	if p.closed || !alive(c) {
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
