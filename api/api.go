// Package api serves obmd's REST API (the original obmd's, which HIL calls)
// with Gin: it decodes requests, checks the admin credentials, hands node
// tokens to the manager and encodes answers and errors as JSON
// ({"error": "..."}), mapping the manager's error kinds to status codes.
//
// It must not know any BMC protocol, keep node state, or log request bodies,
// credentials or tokens: the access log redacts the token query parameter.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"obmd/internal/buildinfo"
	"obmd/manager"
	"obmd/metrics"
)

// consoleWriteTimeout drops a console client that accepts nothing for this
// long.
const consoleWriteTimeout = 30 * time.Second

// DefaultMaxBodyBytes bounds request bodies (node info is a few hundred
// bytes).
const DefaultMaxBodyBytes = 64 << 10

// Options configures the API.
type Options struct {
	// AdminToken is the password of the "admin" HTTP Basic user.
	AdminToken string
	Logger     *slog.Logger
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes);
	// larger ones get 413.
	MaxBodyBytes int64
	// MetricsToken, if set, is the scrape credential for GET /metrics
	// (bearer token, or Basic password of user "metrics"); the admin's
	// credentials work too.
	MetricsToken string
	// Metrics is the registry /metrics serves and the HTTP middleware
	// feeds; nil builds one that collects m's counters.
	Metrics *metrics.Metrics
	// Ready are the conditions /readyz requires besides a writable store
	// (for the daemon: its listener is serving).
	Ready []ReadinessCheck
}

type server struct {
	m       *manager.Manager
	log     *slog.Logger
	maxBody int64
	metrics *metrics.Metrics
	ready   []ReadinessCheck
	// refusals bounds the log lines about refused unauthenticated requests.
	refusals *refusalLimiter
	// SHA-256 of the admin credentials and of the scrape token, compared
	// in constant time whatever the length of what a client sends.
	adminUser, adminPass [sha256.Size]byte
	metricsPass          [sha256.Size]byte
	hasMetricsToken      bool
}

// New returns the HTTP handler for m: the contract's routes, the admin's
// additions, the probes (GET /livez, /readyz, /healthz: no auth), GET
// /metrics (scrape or admin credentials), GET /openapi.json and the console
// page's static files under /console-web/ (no auth: they hold nothing
// secret).
func New(m *manager.Manager, opts Options) *gin.Engine {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New(buildinfo.Get())
		opts.Metrics.CollectManager(m)
	}
	s := &server{
		m:               m,
		log:             opts.Logger,
		maxBody:         opts.MaxBodyBytes,
		metrics:         opts.Metrics,
		ready:           opts.Ready,
		refusals:        newRefusalLimiter(opts.Logger),
		adminUser:       sha256.Sum256([]byte("admin")),
		adminPass:       sha256.Sum256([]byte(opts.AdminToken)),
		metricsPass:     sha256.Sum256([]byte(opts.MetricsToken)),
		hasMetricsToken: opts.MetricsToken != "",
	}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Log the peer's address, not a client-supplied X-Forwarded-For.
	if err := r.SetTrustedProxies(nil); err != nil {
		panic(err) // nil is always accepted
	}
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.Use(bodyDeadline, s.observeHTTP, s.accessLog, s.recovery)
	r.NoRoute(func(c *gin.Context) { abortError(c, http.StatusNotFound, "no such route") })
	r.NoMethod(func(c *gin.Context) { abortError(c, http.StatusMethodNotAllowed, "method not allowed") })

	r.GET("/livez", livez)
	r.GET("/readyz", s.readyz)
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/metrics", s.scraper, gin.WrapH(s.metrics.Handler(opts.Logger)))
	r.GET("/openapi.json", serveOpenAPI)

	r.GET("/node", s.admin, s.listNodes)
	r.GET("/node/:node_id", s.admin, s.nodeStatus)
	r.PUT("/node/:node_id", s.admin, s.registerNode)
	r.DELETE("/node/:node_id", s.admin, s.deleteNode)
	r.POST("/node/:node_id/token", s.admin, s.newToken)
	r.DELETE("/node/:node_id/token", s.admin, s.revokeToken)
	r.GET("/node/:node_id/console_log", s.admin, s.consoleLog)

	r.GET("/node/:node_id/console", s.console)
	r.GET("/console-web/:file", s.consoleAsset)
	r.POST("/node/:node_id/power_cycle", s.powerCycle)
	r.POST("/node/:node_id/power_on", s.powerOn)
	r.POST("/node/:node_id/power_off", s.powerOff)
	r.PUT("/node/:node_id/boot_device", s.bootDevice)
	r.GET("/node/:node_id/power_status", s.powerStatus)
	return r
}

// errorBody is every error answer: {"error": "..."}.
type errorBody struct {
	Error string `json:"error"`
}

func abortError(c *gin.Context, status int, msg string) {
	if !authenticated(c) {
		refuseConnection(c)
	}
	c.AbortWithStatusJSON(status, errorBody{Error: msg})
}

// authenticated reports whether the request carried valid admin
// credentials, a valid node token, or a credential another package's route
// checked (MarkAuthenticated).
func authenticated(c *gin.Context) bool {
	return c.GetBool(adminKey) || c.GetBool(tokenKey) || c.GetBool(peerKey)
}

// statusOf maps a manager error kind to its HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, manager.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, manager.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, manager.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, manager.ErrExists):
		return http.StatusConflict
	case errors.Is(err, manager.ErrUnsupported):
		return http.StatusNotImplemented
	case errors.Is(err, manager.ErrBMC):
		return http.StatusBadGateway
	case errors.Is(err, manager.ErrTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, manager.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable // the client left; nobody reads this
	}
	return http.StatusInternalServerError
}

// adminKey and tokenKey mark a request whose admin credentials, or node
// token, were checked.
const (
	adminKey = "obmd.admin"
	tokenKey = "obmd.token"
)

// fail answers err; internal errors are logged and answered vaguely. The
// admin reads the whole reason; a token holder reads only
// manager.TenantMessage's, which never names the BMC's address, user or
// anything else of the management network (the log has the detail).
func (s *server) fail(c *gin.Context, err error) {
	status := statusOf(err)
	msg := err.Error()
	switch {
	case status == http.StatusInternalServerError:
		s.log.Error("internal error", "node", c.Param("node_id"), "route", c.FullPath(), "err", err)
		msg = "internal server error"
	case !c.GetBool(adminKey):
		msg = manager.TenantMessage(err)
	}
	abortError(c, status, msg)
}

// admin checks HTTP Basic credentials: user "admin", password the admin
// token. Both are compared as SHA-256 digests in constant time, so neither
// their content nor their length shows in the timing.
func (s *server) admin(c *gin.Context) {
	user, pass, _ := c.Request.BasicAuth()
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(pass))
	ok := subtle.ConstantTimeCompare(u[:], s.adminUser[:]) & subtle.ConstantTimeCompare(p[:], s.adminPass[:])
	if ok != 1 {
		c.Header("WWW-Authenticate", `Basic realm="obmd"`)
		abortError(c, http.StatusUnauthorized, "admin credentials missing or wrong")
		return
	}
	c.Set(adminKey, true)
	markAuthenticated(c)
	c.Next()
}

// readBody reads the request body within the size limit: 413 when larger.
func (s *server) readBody(c *gin.Context) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		abortError(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", s.maxBody))
		return nil, false
	case err != nil:
		abortError(c, http.StatusBadRequest, "reading request body: "+err.Error())
		return nil, false
	}
	return body, true
}

// decodeBody reads and strictly decodes a JSON object body into v.
func (s *server) decodeBody(c *gin.Context, what string, v any) bool {
	body, ok := s.readBody(c)
	if !ok {
		return false
	}
	if err := manager.DecodeStrict(what, body, v); err != nil {
		s.fail(c, err)
		return false
	}
	return true
}

type registerRequest struct {
	Type *string         `json:"type"`
	Info json.RawMessage `json:"info"`
}

func (s *server) registerNode(c *gin.Context) {
	var req registerRequest
	if !s.decodeBody(c, "node registration", &req) {
		return
	}
	switch {
	case req.Type == nil || *req.Type == "":
		abortError(c, http.StatusBadRequest, `invalid node registration: "type" is missing`)
		return
	case len(req.Info) == 0 || string(req.Info) == "null":
		abortError(c, http.StatusBadRequest, `invalid node registration: "info" is missing`)
		return
	}
	if err := s.m.Register(c.Param("node_id"), *req.Type, req.Info); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// listNodes answers {"nodes": [ids, sorted]} (an obmd addition).
func (s *server) listNodes(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"nodes": s.m.NodeIDs()})
}

// nodeStatus answers what obmd knows of a node, without its secrets (an
// obmd addition): type, info, driver state, console, last error.
func (s *server) nodeStatus(c *gin.Context) {
	st, err := s.m.Status(c.Param("node_id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, st)
}

func (s *server) deleteNode(c *gin.Context) {
	if err := s.m.Delete(c.Request.Context(), c.Param("node_id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

type tokenResponse struct {
	Token string `json:"token"`
}

func (s *server) newToken(c *gin.Context) {
	tok, err := s.m.NewToken(c.Param("node_id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, tokenResponse{Token: tok})
}

func (s *server) revokeToken(c *gin.Context) {
	if err := s.m.RevokeToken(c.Param("node_id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// authorize checks ?token= for the node; every failure is the same 401.
func (s *server) authorize(c *gin.Context) (*manager.Access, bool) {
	a, err := s.m.Authorize(c.Param("node_id"), c.Query("token"))
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	c.Set(tokenKey, true)
	markAuthenticated(c)
	return a, true
}

type powerCycleRequest struct {
	Force *bool `json:"force"`
}

func (s *server) powerCycle(c *gin.Context) {
	a, ok := s.authorize(c)
	if !ok {
		return
	}
	// As in the original obmd, the body is required: {"force": bool}.
	var req powerCycleRequest
	if !s.decodeBody(c, "power_cycle request", &req) {
		return
	}
	if req.Force == nil {
		abortError(c, http.StatusBadRequest, `invalid power_cycle request: "force" is missing; send {"force": true} (reset) or {"force": false} (soft power cycle)`)
		return
	}
	if err := a.PowerCycle(c.Request.Context(), *req.Force); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// powerOn and powerOff take no body (HIL sends none); any body is ignored.
func (s *server) powerOn(c *gin.Context) {
	a, ok := s.authorize(c)
	if !ok {
		return
	}
	if err := a.PowerOn(c.Request.Context()); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

func (s *server) powerOff(c *gin.Context) {
	a, ok := s.authorize(c)
	if !ok {
		return
	}
	if err := a.PowerOff(c.Request.Context()); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

type bootDeviceRequest struct {
	BootDev *string `json:"bootdev"`
}

func (s *server) bootDevice(c *gin.Context) {
	a, ok := s.authorize(c)
	if !ok {
		return
	}
	var req bootDeviceRequest
	if !s.decodeBody(c, "boot_device request", &req) {
		return
	}
	if req.BootDev == nil {
		abortError(c, http.StatusBadRequest, `invalid boot_device request: "bootdev" is missing`)
		return
	}
	if err := a.SetBootDevice(c.Request.Context(), *req.BootDev); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

type powerStatusResponse struct {
	PowerStatus string `json:"power_status"`
}

func (s *server) powerStatus(c *gin.Context) {
	a, ok := s.authorize(c)
	if !ok {
		return
	}
	st, err := a.PowerStatus(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, powerStatusResponse{PowerStatus: st})
}

// console serves the node's console: a WebSocket (console_ws.go) when
// the client asks for an upgrade, the terminal page (console_page.go) to
// a browser, and otherwise the byte stream HIL's client reads, until the
// client leaves, the token changes or the node is deleted. ?replay=N
// (bytes) first sends up to N bytes of recent output, bounded by the
// node's scrollback. A stream that obmd ends gets a last line saying why:
//
//	\r\n[obmd: console closed: the node's token was replaced or revoked]\r\n
func (s *server) console(c *gin.Context) {
	if isWebSocket(c.Request) {
		s.consoleWS(c)
		return
	}
	if wantsHTML(c.Request) {
		s.consolePage(c)
		return
	}
	a, ok := s.authorize(c)
	if !ok {
		return
	}
	params, err := parseConsoleParams(c)
	if err != nil {
		abortError(c, http.StatusBadRequest, err.Error())
		return
	}
	replay := params.replay
	ctx := c.Request.Context()
	v, err := a.OpenConsole(ctx, replay)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer v.Close()
	stop := context.AfterFunc(ctx, func() { v.Close() })
	defer stop()

	c.Header("Content-Type", "application/octet-stream")
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Status(http.StatusOK)
	c.Writer.WriteHeaderNow()
	c.Writer.Flush()

	// A client that stops reading blocks our writes, not the console (the
	// viewer is a cursor into the node's ring, which overwrites). Bound each
	// write, and cut a blocked write short when the viewer is disconnected
	// (token revoked, node deleted).
	rc := http.NewResponseController(c.Writer)
	var cut struct {
		sync.Mutex
		finished bool
	}
	stopCut := v.AfterEnd(func() {
		cut.Lock()
		defer cut.Unlock()
		if !cut.finished {
			rc.SetWriteDeadline(time.Now())
		}
	})
	defer func() {
		stopCut()
		cut.Lock()
		cut.finished = true
		cut.Unlock()
		// The connection may serve further requests: no deadline left behind.
		rc.SetWriteDeadline(time.Time{})
	}()
	// The viewer copies out of the ring through a small pooled buffer held
	// only while writing; each wake-up is one write and one flush.
	out := &consoleWriter{w: c.Writer, rc: rc, ended: v.Done()}
	_, err = v.WriteTo(out)
	if errors.Is(err, errViewerEnded) {
		err = v.Err()
	}
	if out.failed == nil && !errors.Is(err, manager.ErrViewerClosed) {
		s.log.Info("console stream ended", "node", a.NodeID(), "reason", err)
		// Say why, in band: the client is still reading (no write
		// failed), so the line goes out at once or not at all. The cut
		// above must not fire after the deadline below is set.
		stopCut()
		cut.Lock()
		cut.finished = true
		cut.Unlock()
		rc.SetWriteDeadline(time.Now().Add(closingLineTimeout))
		if _, werr := c.Writer.Write(closingLine(err)); werr == nil {
			rc.Flush()
		}
	}
}

// closingLineTimeout bounds the write of a stream's closing line.
const closingLineTimeout = time.Second

// closingLine is the byte stream's last line when obmd ends it.
func closingLine(err error) []byte {
	return []byte("\r\n[obmd: console closed: " + manager.ConsoleEndReason(err) + "]\r\n")
}

// errViewerEnded stops a console write whose viewer was disconnected
// before it started.
var errViewerEnded = errors.New("console viewer disconnected")

// consoleWriter is a console response as Viewer.WriteTo sees it: every
// write gets consoleWriteTimeout, and Flush sends the batch to the client.
type consoleWriter struct {
	w      io.Writer
	rc     *http.ResponseController
	ended  <-chan struct{} // the viewer's Done
	failed error           // the client connection's first error
}

func (cw *consoleWriter) Write(p []byte) (int, error) {
	cw.rc.SetWriteDeadline(time.Now().Add(consoleWriteTimeout))
	// Checked after the deadline is set: a disconnection that came first
	// stops here, and a later one cuts the write short (AfterEnd).
	select {
	case <-cw.ended:
		return 0, errViewerEnded
	default:
	}
	n, err := cw.w.Write(p)
	if err != nil {
		cw.failed = err
	}
	return n, err
}

func (cw *consoleWriter) Flush() error {
	if err := cw.rc.Flush(); err != nil {
		cw.failed = err
		return err
	}
	return nil
}
