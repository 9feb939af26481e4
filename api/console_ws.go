package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	"obmd/manager"
)

// The interactive console: /node/{id}/console?token=T[&replay=N][&mode=ro]
// answered as a WebSocket (RFC 6455) when the request asks for an upgrade.
//
// Server to client: binary messages holding the console's bytes, exactly
// the byte stream's (the [obmd: ...] marker lines included), one message
// per batch the viewer reads from the node's ring.
//
// Client to server: a binary message is typed into the console as one
// message: whole, in order, never interleaved with another viewer's (see
// manager.Viewer.WriteInput). A text message {"type":"break"} sends a
// serial break. Other text messages are ignored, so that later clients may
// send more kinds. A message larger than maxInputMessage closes the
// connection (1009). The handler reads the next message only once the
// previous one is in the node's bounded input buffer, so a client typing
// faster than the BMC accepts is slowed down by WebSocket (TCP) flow
// control and nothing typed is dropped. With mode=ro the viewer is
// read-only: its input is refused, and it is told so once, in band:
//
//	\r\n[obmd: input refused: this viewer is read-only (mode=ro)]\r\n
//
// A missing or wrong token, or a bad replay or mode, is refused before the
// upgrade with the HTTP status and {"error": ...} body of any other route
// (401, 400), and the connection closed: an unauthenticated client never
// holds a hijacked connection, which the server's connection guard no
// longer counts (see conns.go). obmd's page learns why by asking for
// itself again (console.js). After the upgrade, every ending says why in
// a close frame (the reason is at most 123 bytes of text a tenant may
// read):
//
//	1000  the client closed the connection
//	1001  obmd is shutting down
//	1009  a message larger than 64 KiB
//	1011  internal error
//	4400  bad request
//	4401  the token was replaced or revoked (also while the console opened)
//	4404  the node was deleted
//	4502  the console could not be opened: the BMC reported an error
//	4504  the console could not be opened: the BMC did not answer
//
// Origin: the page obmd serves connects from its own origin, and
// non-browser clients send no Origin header; both are accepted. A browser
// page from any other origin is refused (403) before the upgrade, so
// another site cannot drive a tenant's console with a token it got hold
// of through the victim's browser. The token in the query is the
// credential, as for the byte stream; access logs redact it. A reverse
// proxy in front of obmd must pass the Host header through unchanged.

// WebSocket close codes of the console (see above).
const (
	closeBadRequest   websocket.StatusCode = 4400
	closeUnauthorized websocket.StatusCode = 4401
	closeNodeDeleted  websocket.StatusCode = 4404
	closeBMCError     websocket.StatusCode = 4502
	closeBMCTimeout   websocket.StatusCode = 4504
)

const (
	// maxInputMessage bounds one client message: a paste larger than that
	// must be split by the client (obmd's page and client send at most
	// 4 KiB per message).
	maxInputMessage = 64 << 10
	// wsPingInterval: a ping keeps idle consoles alive through proxies and
	// finds clients that vanished without closing (an idle console writes
	// nothing that would fail).
	wsPingInterval = 30 * time.Second
	wsPingTimeout  = 15 * time.Second
	// stuckClientGrace: a write still blocked this long after the viewer
	// was disconnected is cut, closing the connection without a close
	// frame (a client that reads nothing cannot read one either).
	stuckClientGrace = time.Second
	// maxCloseReason is the longest close reason RFC 6455 allows (125
	// bytes of control frame payload less the 2-byte code).
	maxCloseReason = 123
)

// Markers sent to one viewer only, in band, as binary messages.
var (
	markerReadOnly    = []byte("\r\n[obmd: input refused: this viewer is read-only (mode=ro)]\r\n")
	markerNoInput     = []byte("\r\n[obmd: input refused: this node's console takes no input]\r\n")
	markerInputLost   = []byte("\r\n[obmd: typed input may be lost: the connection to the BMC dropped while it was being sent]\r\n")
	markerInputFailed = []byte("\r\n[obmd: typed input refused: internal error]\r\n")
)

// isWebSocket reports whether r asks for a WebSocket upgrade.
func isWebSocket(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// parseNonNegative parses a decimal count.
func parseNonNegative(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errors.New("not a non-negative number")
	}
	return n, nil
}

// consoleParams are the console's query parameters.
type consoleParams struct {
	replay   int
	readOnly bool
}

// parseConsoleParams validates replay and mode; the error is for the
// client.
func parseConsoleParams(c *gin.Context) (consoleParams, error) {
	var p consoleParams
	if r := c.Query("replay"); r != "" {
		n, err := parseNonNegative(r)
		if err != nil {
			return p, errors.New("replay must be a number of bytes (0 or more)")
		}
		p.replay = n
	}
	switch c.Query("mode") {
	case "":
	case "ro":
		p.readOnly = true
	default:
		return p, errors.New(`mode must be "ro" (read-only) or absent`)
	}
	return p, nil
}

// consoleWS serves the console over a WebSocket. Everything that can go
// wrong after the upgrade is told in the close frame, which is the one
// thing a browser's WebSocket shows its page.
func (s *server) consoleWS(c *gin.Context) {
	a, ok := s.authorize(c)
	if !ok {
		return
	}
	params, err := parseConsoleParams(c)
	if err != nil {
		abortError(c, http.StatusBadRequest, err.Error())
		return
	}
	// The viewer joins before the upgrade, so a client that sees the
	// upgrade sees every byte the console prints after it.
	j, err := a.JoinConsole(params.replay)
	if err != nil {
		s.fail(c, err)
		return
	}
	conn, err := websocket.Accept(c.Writer, c.Request, &websocket.AcceptOptions{
		CompressionMode: websocket.CompressionDisabled, // console bytes are few; 1,000 viewers' deflate is not
	})
	if err != nil {
		// Accept has answered (403 for a foreign Origin, 400 otherwise).
		j.Close()
		s.log.Info("console WebSocket refused", "node", c.Param("node_id"), "err", err)
		return
	}
	conn.SetReadLimit(maxInputMessage)
	// After the upgrade the request's context no longer follows the
	// connection: the handler's own context ends every goroutine below.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The first viewer waits for the console to open (at most the
	// operation timeout); input the client sends meanwhile waits in its
	// connection.
	v, err := j.Ready(ctx)
	if err != nil {
		s.closeWS(conn, err)
		return
	}
	defer v.Close()

	ws := &wsConsole{s: s, conn: conn, v: v, params: params, node: a.NodeID()}
	ws.run(ctx)
}

// wsConsole is one WebSocket viewer.
type wsConsole struct {
	s      *server
	conn   *websocket.Conn
	v      *manager.Viewer
	params consoleParams
	node   string
}

// run pumps the console to the client and the client's input to the
// console until either side ends, then closes with the reason.
func (w *wsConsole) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Writes to the client are bounded by writeCtx: cancelled a little
	// after the viewer is disconnected (a stuck client), or when the
	// client has gone.
	writeCtx, cutWrites := context.WithCancel(ctx)
	defer cutWrites()
	var graceTimer *time.Timer
	var graceMu sync.Mutex
	stopEnd := w.v.AfterEnd(func() {
		graceMu.Lock()
		graceTimer = time.AfterFunc(stuckClientGrace, cutWrites)
		graceMu.Unlock()
	})
	defer func() {
		stopEnd()
		graceMu.Lock()
		if graceTimer != nil {
			graceTimer.Stop()
		}
		graceMu.Unlock()
	}()

	clientGone := make(chan error, 1)
	go func() { clientGone <- w.readInput(ctx) }()
	w.ping(ctx)

	out := &wsWriter{ctx: writeCtx, conn: w.conn}
	_, err := w.v.WriteTo(out)
	select {
	case cerr := <-clientGone:
		// The client closed or broke the connection; the viewer's error
		// is then ErrViewerClosed or a write error.
		w.s.log.Debug("console WebSocket client left", "node", w.node, "err", cerr)
		w.conn.CloseNow()
		return
	default:
	}
	if verr := w.v.Err(); verr != nil {
		err = verr
	}
	if out.failed != nil && w.v.Err() == nil {
		w.conn.CloseNow() // the client stopped taking data
		return
	}
	if !errors.Is(err, manager.ErrViewerClosed) {
		w.s.log.Info("console stream ended", "node", w.node, "reason", err)
	}
	w.s.closeWS(w.conn, err)
}

// readInput reads the client's messages until the connection ends, typing
// binary ones into the console. It returns the read error.
func (w *wsConsole) readInput(ctx context.Context) error {
	defer w.v.Close() // the client has gone: so has the viewer
	refusedOnce := false
	refuse := func(marker []byte) {
		if !refusedOnce {
			refusedOnce = true
			w.send(ctx, marker)
		}
	}
	for {
		typ, msg, err := w.conn.Read(ctx)
		if err != nil {
			return err
		}
		switch typ {
		case websocket.MessageBinary:
			if len(msg) == 0 {
				continue
			}
			if w.params.readOnly {
				refuse(markerReadOnly)
				continue
			}
			w.inputDone(ctx, w.v.WriteInput(ctx, msg), refuse)
		case websocket.MessageText:
			var m struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(msg, &m) != nil || m.Type != "break" {
				continue // not ours: ignored (see above)
			}
			if w.params.readOnly {
				refuse(markerReadOnly)
				continue
			}
			w.inputDone(ctx, w.v.SendBreak(ctx), refuse)
		}
	}
}

// inputDone tells the viewer what became of its input, if it failed for a
// reason the viewer can act on; a disconnected viewer learns why from the
// close frame instead.
func (w *wsConsole) inputDone(ctx context.Context, err error, refuse func([]byte)) {
	switch {
	case err == nil, w.v.Err() != nil, ctx.Err() != nil:
	case errors.Is(err, manager.ErrUnsupported):
		refuse(markerNoInput)
	case errors.Is(err, manager.ErrInputLost):
		w.send(ctx, markerInputLost)
	default:
		w.s.log.Warn("console input failed", "node", w.node, "err", err)
		w.send(ctx, markerInputFailed)
	}
}

// send writes one marker message to this client only.
func (w *wsConsole) send(ctx context.Context, p []byte) {
	ctx, cancel := context.WithTimeout(ctx, consoleWriteTimeout)
	defer cancel()
	_ = w.conn.Write(ctx, websocket.MessageBinary, p)
}

// ping checks the client every wsPingInterval and drops it when it does
// not answer. A timer, not a goroutine, waits between pings: a thousand
// idle viewers hold no stack for it.
func (w *wsConsole) ping(ctx context.Context) {
	var t *time.Timer
	t = time.AfterFunc(wsPingInterval, func() {
		pctx, cancel := context.WithTimeout(ctx, wsPingTimeout)
		err := w.conn.Ping(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
		case err != nil:
			w.s.log.Info("console WebSocket client stopped answering pings", "node", w.node, "err", err)
			w.conn.CloseNow()
		default:
			t.Reset(wsPingInterval)
		}
	})
	context.AfterFunc(ctx, func() { t.Stop() })
}

// wsWriter is the client as Viewer.WriteTo sees it: each batch one binary
// message, each bounded by consoleWriteTimeout.
type wsWriter struct {
	ctx    context.Context
	conn   *websocket.Conn
	failed error
}

func (ww *wsWriter) Write(p []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ww.ctx, consoleWriteTimeout)
	defer cancel()
	if err := ww.conn.Write(ctx, websocket.MessageBinary, p); err != nil {
		ww.failed = err
		return 0, err
	}
	return len(p), nil
}

// closeWS closes conn with the code and tenant-safe reason for err.
func (s *server) closeWS(conn *websocket.Conn, err error) {
	code, reason := wsCloseFor(err)
	conn.Close(code, reason)
}

// wsCloseFor maps why a console ended to its close code and reason.
func wsCloseFor(err error) (websocket.StatusCode, string) {
	reason := manager.ConsoleEndReason(err)
	code := websocket.StatusInternalError
	switch {
	case errors.Is(err, manager.ErrViewerClosed):
		code = websocket.StatusNormalClosure
	case errors.Is(err, manager.ErrShuttingDown):
		code = websocket.StatusGoingAway
	case errors.Is(err, manager.ErrTokenRevoked), errors.Is(err, manager.ErrUnauthorized):
		code = closeUnauthorized
		if !errors.Is(err, manager.ErrTokenRevoked) {
			reason = "missing or invalid token"
		}
	case errors.Is(err, manager.ErrNodeDeleted), errors.Is(err, manager.ErrNotFound):
		code = closeNodeDeleted
	case errors.Is(err, manager.ErrBMC):
		code = closeBMCError
	case errors.Is(err, manager.ErrTimeout):
		code = closeBMCTimeout
	case errors.Is(err, manager.ErrInvalid):
		code = closeBadRequest
	}
	return code, truncateReason(reason)
}

// truncateReason fits a reason into a close frame, at a rune boundary.
func truncateReason(s string) string {
	if len(s) <= maxCloseReason {
		return s
	}
	const ellipsis = "..."
	cut := maxCloseReason - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
