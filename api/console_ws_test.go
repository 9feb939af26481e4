package api

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsURL turns an http(s) URL into its ws(s) form.
func wsURL(u string) string {
	return "ws" + strings.TrimPrefix(u, "http")
}

// dialConsole opens a console WebSocket; the connection is closed at the
// end of the test.
func dialConsole(t *testing.T, ctx context.Context, url string) *websocket.Conn {
	t.Helper()
	conn, resp, err := websocket.Dial(ctx, wsURL(url), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("WebSocket dial: %v (HTTP %d)", err, status)
	}
	conn.SetReadLimit(-1)
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

// wsReader collects a console WebSocket's output in the background.
type wsReader struct {
	out    chan []byte
	closed chan error // the read error, once, when the connection ends
}

func readWS(ctx context.Context, conn *websocket.Conn) *wsReader {
	r := &wsReader{out: make(chan []byte, 1024), closed: make(chan error, 1)}
	go func() {
		for {
			typ, msg, err := conn.Read(ctx)
			if err != nil {
				r.closed <- err
				close(r.out)
				return
			}
			if typ == websocket.MessageBinary {
				r.out <- msg
			}
		}
	}()
	return r
}

// until reads output until it contains want, and returns it all.
func (r *wsReader) until(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	var got bytes.Buffer
	for !bytes.Contains(got.Bytes(), []byte(want)) {
		select {
		case msg, ok := <-r.out:
			if !ok {
				t.Fatalf("connection ended before %q arrived (got %q)", want, tail(got.String()))
			}
			got.Write(msg)
		case <-ctx.Done():
			t.Fatalf("%q did not arrive (got %q)", want, tail(got.String()))
		}
	}
	return got.String()
}

// closeFrame drains output until the connection ends and returns the
// close frame's code and reason.
func (r *wsReader) closeFrame(t *testing.T, ctx context.Context) (websocket.StatusCode, string) {
	t.Helper()
	for {
		select {
		case _, ok := <-r.out:
			if ok {
				continue
			}
			err := <-r.closed
			var ce websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("connection ended without a close frame: %v", err)
			}
			return ce.Code, ce.Reason
		case <-ctx.Done():
			t.Fatal("connection still open")
		}
	}
}

func tail(s string) string {
	if len(s) > 200 {
		return "..." + s[len(s)-200:]
	}
	return s
}

func expectClose(t *testing.T, ctx context.Context, r *wsReader, code websocket.StatusCode, reason string) {
	t.Helper()
	gotCode, gotReason := r.closeFrame(t, ctx)
	if gotCode != code || !strings.Contains(gotReason, reason) {
		t.Fatalf("closed with %d %q, want %d %q", gotCode, gotReason, code, reason)
	}
}

// TestConsoleWSEndings: every way a WebSocket console ends closes it with
// its code and reason (mock and scripted drivers).
func TestConsoleWSEndings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := within(t, 30*time.Second)
	e.register("m", mockInfo)
	e.register("bmc-error", `{"type": "scripted", "info": {"mode": "bmc-error"}}`)
	e.register("hang", `{"type": "scripted", "info": {"mode": "hang"}}`)
	open := func(node, tok, query string) *wsReader {
		return readWS(ctx, dialConsole(t, ctx, e.srv.URL+"/node/"+node+"/console?token="+tok+query))
	}

	// Refused before the upgrade, as any route refuses: status and body.
	refused := func(t *testing.T, node, tok, query string, status int, msg string) {
		t.Helper()
		_, resp, err := websocket.Dial(ctx, wsURL(e.srv.URL+"/node/"+node+"/console?token="+tok+query), nil)
		if err == nil || resp == nil || resp.StatusCode != status {
			t.Fatalf("dial: %v, %v; want HTTP %d", err, resp, status)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), `{"error":"`+msg) {
			t.Fatalf("refusal body %q, want the error %q", body, msg)
		}
	}
	t.Run("wrong token", func(t *testing.T) {
		refused(t, "m", strings.Repeat("0", 32), "", http.StatusUnauthorized, "missing or invalid token")
	})
	t.Run("unknown node looks like a wrong token", func(t *testing.T) {
		refused(t, "nope", strings.Repeat("0", 32), "", http.StatusUnauthorized, "missing or invalid token")
	})
	t.Run("bad replay", func(t *testing.T) {
		refused(t, "m", e.token("m"), "&replay=-1", http.StatusBadRequest, "replay must be")
	})
	t.Run("bad mode", func(t *testing.T) {
		refused(t, "m", e.token("m"), "&mode=rw", http.StatusBadRequest, "mode must be")
	})
	t.Run("BMC error opening", func(t *testing.T) {
		r := open("bmc-error", e.token("bmc-error"), "")
		code, reason := r.closeFrame(t, ctx)
		if code != closeBMCError || !strings.Contains(reason, "0xD5") {
			t.Fatalf("closed with %d %q, want %d and the BMC's completion code", code, reason, closeBMCError)
		}
		for _, secret := range []string{"10.9.8.7", "ipmiadmin"} {
			if strings.Contains(reason, secret) {
				t.Fatalf("close reason %q reveals %q", reason, secret)
			}
		}
	})
	t.Run("BMC not answering", func(t *testing.T) {
		expectClose(t, ctx, open("hang", e.token("hang"), ""), closeBMCTimeout, "did not answer")
	})
	t.Run("token replaced", func(t *testing.T) {
		r := open("m", e.token("m"), "")
		r.until(t, ctx, "\n1\n")
		e.token("m")
		expectClose(t, ctx, r, closeUnauthorized, "the node's token was replaced or revoked")
	})
	t.Run("token revoked", func(t *testing.T) {
		r := open("m", e.token("m"), "")
		r.until(t, ctx, "\n")
		e.expect(req{method: "DELETE", path: "/node/m/token", admin: true}, 200)
		expectClose(t, ctx, r, closeUnauthorized, "the node's token was replaced or revoked")
	})
	t.Run("node deleted", func(t *testing.T) {
		e.register("gone", mockInfo)
		r := open("gone", e.token("gone"), "")
		r.until(t, ctx, "\n")
		e.expect(req{method: "DELETE", path: "/node/gone", admin: true}, 200)
		expectClose(t, ctx, r, closeNodeDeleted, "the node was deleted")
	})
	t.Run("foreign origin refused before the upgrade", func(t *testing.T) {
		h := http.Header{"Origin": {"https://evil.example"}}
		_, resp, err := websocket.Dial(ctx, wsURL(e.srv.URL+"/node/m/console?token="+e.token("m")), &websocket.DialOptions{HTTPHeader: h})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("dial from a foreign origin: %v, %v; want 403", err, resp)
		}
	})
	t.Run("same origin accepted", func(t *testing.T) {
		h := http.Header{"Origin": {e.srv.URL}}
		conn, _, err := websocket.Dial(ctx, wsURL(e.srv.URL+"/node/m/console?token="+e.token("m")), &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			t.Fatalf("dial from the page's own origin: %v", err)
		}
		conn.CloseNow()
	})
	// Last: shutting down refuses every later viewer.
	t.Run("shutdown", func(t *testing.T) {
		r := open("m", e.token("m"), "")
		r.until(t, ctx, "\n")
		e.m.EndConsoles()
		expectClose(t, ctx, r, websocket.StatusGoingAway, "obmd is shutting down")
	})
}

// TestConsoleClosingLine: a byte stream obmd ends says why in its last
// line; one the client leaves does not need to.
func TestConsoleClosingLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		name string
		end  func(node string)
		want string
	}{
		{"token replaced", func(n string) { e.token(n) }, "the node's token was replaced or revoked"},
		{"token revoked", func(n string) {
			e.expect(req{method: "DELETE", path: "/node/" + n + "/token", admin: true}, 200)
		}, "the node's token was replaced or revoked"},
		{"node deleted", func(n string) {
			e.expect(req{method: "DELETE", path: "/node/" + n, admin: true}, 200)
		}, "the node was deleted"},
		{"shutdown", func(string) { e.m.EndConsoles() }, "obmd is shutting down"}, // last
	}
	for i, tc := range cases {
		node := "n" + string(rune('0'+i))
		e.register(node, mockInfo)
		resp, err := e.srv.Client().Get(e.srv.URL + "/node/" + node + "/console?token=" + e.token(node))
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		tc.end(node)
		rest, err := io.ReadAll(br)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: stream ended with %v, want a clean end", tc.name, err)
		}
		want := "\r\n[obmd: console closed: " + tc.want + "]\r\n"
		if !strings.HasSuffix(string(rest), want) {
			t.Fatalf("%s: stream ended with %q, want the line %q", tc.name, tail(string(rest)), want)
		}
	}
}

// TestConsoleWSMockInput: the mock's console takes input (and discards
// it), a read-only viewer is refused once in band, and unknown text
// messages are ignored.
func TestConsoleWSMockInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := within(t, 30*time.Second)
	e.register("m", mockInfo)
	tok := e.token("m")
	ro := dialConsole(t, ctx, e.srv.URL+"/node/m/console?mode=ro&token="+tok)
	r := readWS(ctx, ro)
	if err := ro.Write(ctx, websocket.MessageBinary, []byte("x")); err != nil {
		t.Fatal(err)
	}
	r.until(t, ctx, string(markerReadOnly))
	rw := dialConsole(t, ctx, e.srv.URL+"/node/m/console?token="+tok)
	rr := readWS(ctx, rw)
	for _, m := range []struct {
		typ websocket.MessageType
		p   string
	}{{websocket.MessageText, `{"type":"resize","cols":80}`}, {websocket.MessageBinary, "typed"}, {websocket.MessageText, `{"type":"break"}`}} {
		if err := rw.Write(ctx, m.typ, []byte(m.p)); err != nil {
			t.Fatal(err)
		}
	}
	// Several lines later, nothing was refused and the connection stands.
	var out string
	for range 5 {
		out += rr.until(t, ctx, "\n")
	}
	if strings.Contains(out, "refused") {
		t.Fatalf("the mock's input was refused: %q", out)
	}
	rw.Close(websocket.StatusNormalClosure, "")
	if err := <-rr.closed; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("client close: %v", err)
	}
}

// TestConsoleAcceptSelectsTheAnswer: a browser gets the page, curl and
// HIL's client the byte stream.
func TestConsoleAcceptSelectsTheAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("m", mockInfo)
	tok := e.token("m")
	for _, tc := range []struct {
		accept, want string
	}{
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"},
		{"*/*", "application/octet-stream"},
		{"", "application/octet-stream"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/node/m/console?token="+tok, nil)
		if tc.accept != "" {
			r.Header.Set("Accept", tc.accept)
		}
		resp, err := e.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		ct := resp.Header.Get("Content-Type")
		cancel()
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(ct, tc.want) {
			t.Errorf("Accept %q: %d %s, want 200 %s", tc.accept, resp.StatusCode, ct, tc.want)
		}
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
