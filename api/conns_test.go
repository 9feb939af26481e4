package api

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// fakeAddrConn is a net.Conn with a chosen remote address.
type fakeAddrConn struct {
	net.Conn
	remote string
	closed bool
}

func (c *fakeAddrConn) RemoteAddr() net.Addr {
	addr, _ := net.ResolveTCPAddr("tcp", c.remote)
	return addr
}
func (c *fakeAddrConn) Close() error { c.closed = true; return nil }

// accept runs one connection through the guard as the listener and the
// server would, and returns it.
func accept(t *testing.T, g *ConnGuard, remote string, at time.Time) (*guardedConn, bool) {
	t.Helper()
	if !g.admit() {
		return nil, false
	}
	gc := &guardedConn{Conn: &fakeAddrConn{remote: remote}, g: g}
	ctx := g.ConnContext(t.Context(), gc)
	ci := ctx.Value(connInfoKey{}).(*connInfo)
	ci.accepted = at
	g.ConnState(gc, http.StateNew)
	return gc, true
}

func TestConnGuardEvictsFromTheFloodingHost(t *testing.T) {
	g := NewConnGuard(4)
	t0 := time.Now()
	tenant, _ := accept(t, g, "127.0.0.1:1000", t0)
	var flood []*guardedConn
	for i := range 3 {
		c, _ := accept(t, g, "127.0.0.2:2000", t0.Add(time.Duration(i+1)*time.Second))
		flood = append(flood, c)
	}
	// Full: a newcomer evicts the flooding host's oldest connection, not
	// the tenant's (older still).
	if _, ok := accept(t, g, "127.0.0.2:2001", t0.Add(10*time.Second)); !ok {
		t.Fatal("newcomer refused while unauthenticated connections could be evicted")
	}
	if !flood[0].Conn.(*fakeAddrConn).closed || tenant.Conn.(*fakeAddrConn).closed {
		t.Fatalf("evicted the wrong connection: flood[0] closed=%v, tenant closed=%v",
			flood[0].Conn.(*fakeAddrConn).closed, tenant.Conn.(*fakeAddrConn).closed)
	}
	flood[0].Close() // as the server would after the eviction
	if g.open != 4 {
		t.Fatalf("%d slots taken, want 4", g.open)
	}

	// A connection in the middle of a request goes after idle ones.
	g.ConnState(flood[1], http.StateActive)
	if _, ok := accept(t, g, "127.0.0.2:2002", t0.Add(11*time.Second)); !ok {
		t.Fatal("newcomer refused")
	}
	if flood[1].Conn.(*fakeAddrConn).closed || !flood[2].Conn.(*fakeAddrConn).closed {
		t.Fatal("evicted an active connection before an idle one")
	}
	flood[2].Close()

	// Authenticated connections are never evicted: with every slot held by
	// them, a newcomer is refused.
	g2 := NewConnGuard(1)
	c, _ := accept(t, g2, "127.0.0.1:1", t0)
	g2.mu.Lock()
	for ci := range g2.unauth["127.0.0.1"] {
		ci.authed = true
		g2.forgetUnauthLocked(ci)
	}
	g2.mu.Unlock()
	if _, ok := accept(t, g2, "127.0.0.2:1", t0.Add(time.Second)); ok || c.Conn.(*fakeAddrConn).closed {
		t.Fatal("an authenticated connection was evicted for room")
	}
}
