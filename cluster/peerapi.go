package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"obmd/manager"
)

// peerWriteTimeout drops a forwarding instance whose console stream
// accepts nothing for this long (as the API does for a client).
const peerWriteTimeout = 30 * time.Second

// RouteHooks tell the API's engine what the cluster's routes found of a
// request's credential (api.MarkAuthenticated, api.RefuseUnauthenticated):
// its connection guard and its log treat the request accordingly.
type RouteHooks struct {
	Authenticated func(*gin.Context)
	Refused       func(*gin.Context)
}

// Routes adds the instance-to-instance routes (under /cluster/v1) to the
// API's engine. They answer only calls carrying the cluster token, and
// only for nodes this instance drives: anything else is "not the owner"
// (421), and the caller looks again.
func (c *Cluster) Routes(r gin.IRouter, hooks RouteHooks) {
	tokenHash := sha256.Sum256([]byte(c.cfg.Token))
	g := r.Group(peerPathPrefix, func(g *gin.Context) { c.authPeer(g, tokenHash, hooks) })
	g.POST("/node/:node_id/power_on", c.peerOp(func(ctx context.Context, a *manager.Access, _ *gin.Context) (any, error) {
		return nil, a.PowerOn(ctx)
	}))
	g.POST("/node/:node_id/power_off", c.peerOp(func(ctx context.Context, a *manager.Access, _ *gin.Context) (any, error) {
		return nil, a.PowerOff(ctx)
	}))
	g.POST("/node/:node_id/power_cycle", c.peerOp(func(ctx context.Context, a *manager.Access, g *gin.Context) (any, error) {
		var b powerCycleBody
		if err := decodePeerBody(g, &b); err != nil {
			return nil, err
		}
		return nil, a.PowerCycle(ctx, b.Force)
	}))
	g.PUT("/node/:node_id/boot_device", c.peerOp(func(ctx context.Context, a *manager.Access, g *gin.Context) (any, error) {
		var b bootDeviceBody
		if err := decodePeerBody(g, &b); err != nil {
			return nil, err
		}
		return nil, a.SetBootDevice(ctx, b.BootDev)
	}))
	g.GET("/node/:node_id/power_status", c.peerOp(func(ctx context.Context, a *manager.Access, _ *gin.Context) (any, error) {
		st, err := a.PowerStatus(ctx)
		return powerStatusBody{PowerStatus: st}, err
	}))
	g.GET("/node/:node_id/console", c.peerConsole)
	g.POST("/node/:node_id/console/input", c.peerInput(func(ctx context.Context, v *manager.Viewer, p []byte) error {
		return v.WriteInput(ctx, p)
	}))
	g.POST("/node/:node_id/console/break", c.peerInput(func(ctx context.Context, v *manager.Viewer, _ []byte) error {
		return v.SendBreak(ctx)
	}))
	g.POST(leaseGonePath, c.peerLeaseGone)
}

// authPeer checks the bearer token: SHA-256 digests compared in constant
// time, so neither its content nor its length shows in the timing.
func (c *Cluster) authPeer(g *gin.Context, want [sha256.Size]byte, hooks RouteHooks) {
	h := g.GetHeader("Authorization")
	tok, isBearer := strings.CutPrefix(h, "Bearer ")
	got := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !isBearer {
		if hooks.Refused != nil {
			hooks.Refused(g)
		}
		g.AbortWithStatusJSON(http.StatusUnauthorized, peerError{Error: "cluster token missing or wrong", Kind: "unauthorized"})
		return
	}
	if hooks.Authenticated != nil {
		hooks.Authenticated(g)
	}
	g.Next()
}

func decodePeerBody(g *gin.Context, v any) error {
	b, err := io.ReadAll(io.LimitReader(g.Request.Body, 64<<10))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return manager.Invalidf("forwarded request body: %v", err)
	}
	return nil
}

// forwardedAccess is the Manager's handle on the node for a forwarded
// call, if this instance drives the node.
func (c *Cluster) forwardedAccess(id string) (*manager.Access, *Driver, error) {
	m := c.manager()
	if m == nil {
		return nil, nil, errNotOwner
	}
	d := c.own.localDriver(id)
	if d == nil {
		return nil, nil, errNotOwner
	}
	a, err := m.Forwarded(id)
	return a, d, err
}

func peerFail(g *gin.Context, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, errNotOwner):
		status = http.StatusMisdirectedRequest
	case errors.Is(err, manager.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, manager.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, manager.ErrUnsupported):
		status = http.StatusNotImplemented
	case errors.Is(err, manager.ErrBMC):
		status = http.StatusBadGateway
	case errors.Is(err, manager.ErrTimeout):
		status = http.StatusGatewayTimeout
	case errors.Is(err, manager.ErrUnavailable), errors.Is(err, context.Canceled):
		status = http.StatusServiceUnavailable
	}
	g.AbortWithStatusJSON(status, encodePeerError(err))
}

func (c *Cluster) peerOp(f func(ctx context.Context, a *manager.Access, g *gin.Context) (any, error)) gin.HandlerFunc {
	return func(g *gin.Context) {
		a, _, err := c.forwardedAccess(g.Param("node_id"))
		if err != nil {
			peerFail(g, err)
			return
		}
		out, err := f(withForwarded(g.Request.Context()), a, g)
		if err != nil {
			peerFail(g, err)
			return
		}
		if out == nil {
			out = struct{}{}
		}
		g.JSON(http.StatusOK, out)
	}
}

// peerConsole streams the node's console to a forwarding instance, from
// now on (no replay: that instance keeps its own scrollback, and its
// viewers' tenancy), until either side leaves or this instance stops
// driving the node.
func (c *Cluster) peerConsole(g *gin.Context) {
	a, d, err := c.forwardedAccess(g.Param("node_id"))
	if err != nil {
		peerFail(g, err)
		return
	}
	ctx := g.Request.Context()
	v, err := a.OpenConsole(withForwarded(ctx), 0)
	if err != nil {
		peerFail(g, err)
		return
	}
	defer v.Close()
	stopServe, ok := d.servePeer(func() { v.Close() })
	if !ok {
		peerFail(g, errNotOwner)
		return
	}
	defer stopServe()
	// The stream's name, for the input the other instance forwards.
	name := c.served.add(g.Param("node_id"), v)
	defer c.served.remove(name)
	g.Header(streamHeader, name)
	stopCtx := context.AfterFunc(ctx, func() { v.Close() })
	defer stopCtx()

	g.Header("Content-Type", "application/octet-stream")
	g.Header("Cache-Control", "no-store")
	g.Status(http.StatusOK)
	g.Writer.WriteHeaderNow()
	g.Writer.Flush()

	rc := http.NewResponseController(g.Writer)
	var cut sync.Mutex
	finished := false
	stopCut := v.AfterEnd(func() {
		cut.Lock()
		defer cut.Unlock()
		if !finished {
			rc.SetWriteDeadline(time.Now()) // end a write blocked on a stalled peer
		}
	})
	defer func() {
		stopCut()
		cut.Lock()
		finished = true
		cut.Unlock()
		rc.SetWriteDeadline(time.Time{})
	}()
	_, _ = v.WriteTo(&peerWriter{w: g.Writer, rc: rc})
}

// peerWriter bounds each write and flushes each batch.
type peerWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (p *peerWriter) Write(b []byte) (int, error) {
	p.rc.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
	return p.w.Write(b)
}

func (p *peerWriter) Flush() error { return p.rc.Flush() }

// maxPeerInput bounds one forwarded input message.
const maxPeerInput = 1 << 20

// peerInput serves input a forwarding instance's viewers typed into a
// console stream this instance serves it: it goes to the owner's console
// as that stream's viewer's input (whole, never interleaved with other
// viewers' messages, dropped if the tenancy ends), and the answer comes
// once the console has taken it.
func (c *Cluster) peerInput(f func(ctx context.Context, v *manager.Viewer, p []byte) error) gin.HandlerFunc {
	return func(g *gin.Context) {
		v := c.served.get(g.Query("stream"), g.Param("node_id"))
		if v == nil {
			peerFail(g, errNotOwner) // the stream ended: the other side reopens
			return
		}
		p, err := io.ReadAll(io.LimitReader(g.Request.Body, maxPeerInput+1))
		if err != nil {
			peerFail(g, err)
			return
		}
		if len(p) > maxPeerInput {
			peerFail(g, manager.Invalidf("console input message larger than %d bytes", maxPeerInput))
			return
		}
		if err := f(withForwarded(g.Request.Context()), v, p); err != nil {
			peerFail(g, err)
			return
		}
		g.JSON(http.StatusOK, struct{}{})
	}
}

// servedStreams names the console streams this instance serves to others.
type servedStreams struct {
	mu      sync.Mutex
	streams map[string]servedStream
}

type servedStream struct {
	node string
	v    *manager.Viewer
}

func (s *servedStreams) add(node string, v *manager.Viewer) string {
	var b [16]byte
	rand.Read(b[:])
	name := hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams == nil {
		s.streams = map[string]servedStream{}
	}
	s.streams[name] = servedStream{node: node, v: v}
	return name
}

func (s *servedStreams) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, name)
}

func (s *servedStreams) get(name, node string) *manager.Viewer {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.streams[name]
	if !ok || st.node != node {
		return nil
	}
	return st.v
}
