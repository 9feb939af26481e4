package api

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// Hostile clients (issue 9, defect 2). An HTTP connection costs obmd a file
// descriptor, and descriptors are shared with BMC sessions and the store:
// a client that opens connections and sends nothing, or declares a body it
// never sends, must not be able to take them all. The rules:
//
//   - request headers must arrive within the server's ReadHeaderTimeout,
//     and a body within BodyReadTimeout of its headers (bodyDeadline);
//   - a request refused before its client authenticated closes the
//     connection at once, instead of reading (draining) the rest of a body
//     that may never come (refuseConnection);
//   - the number of connections is bounded (ConnGuard): when the bound is
//     reached, a connection whose client has not authenticated is closed
//     to make room, taken from the address that holds the most such
//     connections (so a flood from one host evicts its own connections,
//     not other clients'), oldest first; an authenticated one, such as a
//     console viewer or HIL's keep-alive connection, is never closed for
//     room;
//   - at shutdown, connections of unauthenticated clients are closed at
//     once, so they cannot hold the graceful shutdown up.

// BodyReadTimeout bounds reading a request body once its headers are in.
const BodyReadTimeout = 5 * time.Second

// bodyDeadline gives a request that declares a body BodyReadTimeout to
// send it. (http.Server.ReadTimeout would do it for every request, but it
// would also cut long console streams short.) The server resets the
// deadline before reading the connection's next request.
func bodyDeadline(c *gin.Context) {
	if c.Request.ContentLength != 0 {
		http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(BodyReadTimeout))
	}
	c.Next()
}

// refuseConnection makes a refusal end the connection instead of waiting
// for the body the client declared: net/http would otherwise read it to
// reuse the connection, with no deadline of its own.
func refuseConnection(c *gin.Context) {
	c.Header("Connection", "close")
	if c.Request.ContentLength != 0 {
		http.NewResponseController(c.Writer).SetReadDeadline(time.Now())
	}
}

// connInfo is what ConnGuard knows of one connection.
type connInfo struct {
	g        *ConnGuard
	conn     net.Conn     // as the server sees it
	gc       *guardedConn // the accepted connection under it; nil if unknown
	host     string       // the client's address, without the port
	accepted time.Time
	state    atomic.Int32 // http.ConnState
	authed   bool         // a request on it passed authentication; guarded by g.mu
}

type connInfoKey struct{}

// markAuthenticated records that the request's client proved a credential:
// its connection is no longer a candidate for eviction.
func markAuthenticated(c *gin.Context) {
	ci, ok := c.Request.Context().Value(connInfoKey{}).(*connInfo)
	if !ok {
		return
	}
	g := ci.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if !ci.authed {
		ci.authed = true
		g.forgetUnauthLocked(ci)
	}
}

// ConnGuard bounds an http.Server's connections. Install it with Listener,
// and set the server's ConnContext and ConnState to its methods.
type ConnGuard struct {
	max int

	mu    sync.Mutex
	open  int                    // accepted and not yet closed
	conns map[net.Conn]*connInfo // as the server sees them (TLS or not)
	// unauth holds, per client address, the registered connections whose
	// client has not authenticated: the eviction candidates.
	unauth map[string]map[*connInfo]struct{}

	evicted  atomic.Int64
	rejected atomic.Int64
}

// NewConnGuard allows at most max connections at once.
func NewConnGuard(max int) *ConnGuard {
	return &ConnGuard{max: max, conns: make(map[net.Conn]*connInfo), unauth: make(map[string]map[*connInfo]struct{})}
}

// Max is the bound.
func (g *ConnGuard) Max() int { return g.max }

// Evicted and Rejected count connections closed to make room, and new ones
// closed because nothing could be evicted.
func (g *ConnGuard) Evicted() int64  { return g.evicted.Load() }
func (g *ConnGuard) Rejected() int64 { return g.rejected.Load() }

// Listener wraps ln so that accepting past the bound first evicts the
// oldest unauthenticated connection, or closes the new one.
func (g *ConnGuard) Listener(ln net.Listener) net.Listener {
	return &guardedListener{Listener: ln, g: g}
}

type guardedListener struct {
	net.Listener
	g *ConnGuard
}

func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.g.admit() {
			return &guardedConn{Conn: c, g: l.g}, nil
		}
		l.g.rejected.Add(1)
		c.Close()
	}
}

// admit takes a slot for a new connection, evicting if it must.
func (g *ConnGuard) admit() bool {
	g.mu.Lock()
	if g.open < g.max {
		g.open++
		g.mu.Unlock()
		return true
	}
	victim := g.victimLocked()
	if victim == nil {
		g.mu.Unlock()
		return false
	}
	g.forgetLocked(victim)
	g.open++ // the victim's slot, freed when its Close below runs
	g.mu.Unlock()
	g.evicted.Add(1)
	victim.conn.Close()
	return true
}

// victimLocked picks the connection to close for room: from the address
// with the most unauthenticated connections, the first in evictBefore's
// order; nil if no connection may be closed.
func (g *ConnGuard) victimLocked() *connInfo {
	var heaviest map[*connInfo]struct{}
	for _, set := range g.unauth {
		if len(set) > len(heaviest) {
			heaviest = set
		}
	}
	var victim *connInfo
	for ci := range heaviest {
		// A connection already closed gave its slot back: it is no victim.
		if ci.gc == nil || ci.gc.closed {
			continue
		}
		if victim == nil || evictBefore(ci, victim) {
			victim = ci
		}
	}
	return victim
}

func (g *ConnGuard) forgetUnauthLocked(ci *connInfo) {
	if set := g.unauth[ci.host]; set != nil {
		delete(set, ci)
		if len(set) == 0 {
			delete(g.unauth, ci.host)
		}
	}
}

func (g *ConnGuard) forgetLocked(ci *connInfo) {
	delete(g.conns, ci.conn)
	g.forgetUnauthLocked(ci)
}

// evictBefore orders eviction candidates: connections that have sent
// nothing or sit idle go before those in the middle of a request (which
// may be a legitimate client about to authenticate), the oldest first.
func evictBefore(a, b *connInfo) bool {
	busyA := http.ConnState(a.state.Load()) == http.StateActive
	busyB := http.ConnState(b.state.Load()) == http.StateActive
	if busyA != busyB {
		return busyB
	}
	return a.accepted.Before(b.accepted)
}

// guardedConn gives its slot back when closed.
type guardedConn struct {
	net.Conn
	g      *ConnGuard
	closed bool // guarded by g.mu
}

func (c *guardedConn) Close() error {
	c.g.mu.Lock()
	if !c.closed {
		c.closed = true
		c.g.open--
	}
	c.g.mu.Unlock()
	return c.Conn.Close()
}

// underlying finds the accepted connection under what the server sees (a
// *tls.Conn wraps it).
func underlying(c net.Conn) *guardedConn {
	for {
		switch t := c.(type) {
		case *guardedConn:
			return t
		case interface{ NetConn() net.Conn }:
			c = t.NetConn()
		default:
			return nil
		}
	}
}

// ConnContext is for http.Server.ConnContext: it registers the connection
// and puts its record in every request's context.
func (g *ConnGuard) ConnContext(ctx context.Context, c net.Conn) context.Context {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		host = c.RemoteAddr().String()
	}
	ci := &connInfo{g: g, conn: c, gc: underlying(c), host: host, accepted: time.Now()}
	g.mu.Lock()
	g.conns[c] = ci
	set := g.unauth[host]
	if set == nil {
		set = make(map[*connInfo]struct{})
		g.unauth[host] = set
	}
	set[ci] = struct{}{}
	g.mu.Unlock()
	return context.WithValue(ctx, connInfoKey{}, ci)
}

// ConnState is for http.Server.ConnState.
func (g *ConnGuard) ConnState(c net.Conn, st http.ConnState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ci, ok := g.conns[c]
	if !ok {
		return
	}
	ci.state.Store(int32(st))
	if st == http.StateClosed || st == http.StateHijacked {
		// A hijacked connection (a WebSocket) is the handler's to bound.
		g.forgetLocked(ci)
	}
}

// CloseUnauthenticated closes every connection whose client has not
// authenticated: at shutdown, they may only be stuck sending nothing.
func (g *ConnGuard) CloseUnauthenticated() {
	g.mu.Lock()
	var victims []net.Conn
	for _, set := range g.unauth {
		for ci := range set {
			victims = append(victims, ci.conn)
		}
	}
	g.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
}
