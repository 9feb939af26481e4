package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Daemon is an obmd process on loopback with an in-memory store, driven
// through its REST API (the contract HIL uses), the only way the daemon
// benchmarks touch it. Its own CPU and memory are read from /proc.
type Daemon struct {
	URL        string // http://127.0.0.1:PORT
	adminToken string
	Client     *http.Client // keep-alive connections, no proxy
	// usage and stop are the process's; a daemon run inside this process
	// for profiling (see the package's tests) has its own.
	usage func() (ProcUsage, error)
	stop  func() error
}

// newDaemon returns a Daemon client for obmd at addr.
func newDaemon(addr, adminToken string, usage func() (ProcUsage, error), stop func() error) *Daemon {
	return &Daemon{
		URL:        "http://" + addr,
		adminToken: adminToken,
		Client: &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: 4096,
			DisableCompression:  true,
			IdleConnTimeout:     time.Minute,
		}},
		usage: usage,
		stop:  stop,
	}
}

// newAdminToken makes a random 128-bit admin token, as obmd -gen-token.
func newAdminToken() (string, error) {
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return "", err
	}
	return hex.EncodeToString(tok), nil
}

// StartDaemon starts the obmd binary and waits until it listens.
func StartDaemon(ctx context.Context, bin string) (*Daemon, error) {
	adminToken, err := newAdminToken()
	if err != nil {
		return nil, err
	}
	// LISTEN_ADDR port 0: obmd picks a free port and logs it.
	env := []string{"LISTEN_ADDR=127.0.0.1:0", "ADMIN_TOKEN=" + adminToken,
		"DB_PATH=:memory:", "LOG_FORMAT=json"}
	c, addr, err := startObmd(ctx, "obmd", bin, env)
	if err != nil {
		return nil, err
	}
	usage := func() (ProcUsage, error) { return ReadProcUsage(c.PID()) }
	return newDaemon(addr, adminToken, usage, c.stop), nil
}

// startObmd starts an obmd process with env (LOG_FORMAT=json among it) and
// waits, at most 30 s, until it logs that it listens; it returns the
// process and the address it listens on.
func startObmd(ctx context.Context, name, bin string, env []string) (*child, string, error) {
	var addr string
	c, ready, err := startChild(name, bin, nil, env, func(line string) bool {
		var ev struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Msg == "listening" && ev.Addr != "" {
			addr = ev.Addr
			return true
		}
		return false
	})
	if err != nil {
		return nil, "", err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.wait(wctx, ready, "listening"); err != nil {
		_ = c.stop()
		return nil, "", err
	}
	return c, addr, nil
}

// Stop ends obmd (SIGTERM, as an operator would) and its connections.
func (d *Daemon) Stop() error {
	d.Client.CloseIdleConnections()
	return d.stop()
}

// Usage reads obmd's CPU time and memory.
func (d *Daemon) Usage() (ProcUsage, error) { return d.usage() }

// apiError is a non-2xx answer, with obmd's {"error": ...} text.
type apiError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("obmd %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// call sends one request and decodes a JSON answer into out (if not nil).
func (d *Daemon) call(ctx context.Context, method, path string, admin bool, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.URL+path, rd)
	if err != nil {
		return err
	}
	if admin {
		req.SetBasicAuth("admin", d.adminToken)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rsp, err := d.Client.Do(req)
	if err != nil {
		return fmt.Errorf("obmd %s %s: %w", method, redactPath(path), err)
	}
	defer rsp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(rsp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("obmd %s %s: reading the answer: %w", method, redactPath(path), err)
	}
	if rsp.StatusCode/100 != 2 {
		var e struct{ Error string }
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &apiError{Method: method, Path: redactPath(path), Status: rsp.StatusCode, Body: msg}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("obmd %s %s: answer %q is not the expected JSON: %w", method, redactPath(path), data, err)
		}
	}
	return nil
}

// redactPath keeps node tokens out of error messages.
func redactPath(p string) string {
	if i := strings.Index(p, "token="); i >= 0 {
		return p[:i] + "token=REDACTED"
	}
	return p
}

// RegisterIPMI registers node id as an IPMI node on the simulated BMC at
// addr (host:port), cipher suite 17 pinned.
func (d *Daemon) RegisterIPMI(ctx context.Context, id, addr string) error {
	body := map[string]any{"type": "ipmi", "info": map[string]any{
		"addr": addr, "user": benchUser, "pass": benchPassword, "cipher_suite": 17,
	}}
	return d.call(ctx, http.MethodPut, "/node/"+url.PathEscape(id), true, body, nil)
}

// NewToken makes node id's token.
func (d *Daemon) NewToken(ctx context.Context, id string) (string, error) {
	var out struct{ Token string }
	if err := d.call(ctx, http.MethodPost, "/node/"+url.PathEscape(id)+"/token", true, nil, &out); err != nil {
		return "", err
	}
	if len(out.Token) != 32 {
		return "", fmt.Errorf("obmd answered token %q, not 32 hex digits", out.Token)
	}
	return out.Token, nil
}

// PowerStatus asks obmd for node id's power state ("on" or "off").
func (d *Daemon) PowerStatus(ctx context.Context, id, token string) (string, error) {
	var out struct {
		PowerStatus string `json:"power_status"`
	}
	path := "/node/" + url.PathEscape(id) + "/power_status?token=" + url.QueryEscape(token)
	if err := d.call(ctx, http.MethodGet, path, false, nil, &out); err != nil {
		return "", err
	}
	return out.PowerStatus, nil
}

// OpenConsole starts streaming node id's console. Closing the body (or
// ending ctx) leaves.
func (d *Daemon) OpenConsole(ctx context.Context, id, token string) (io.ReadCloser, error) {
	path := "/node/" + url.PathEscape(id) + "/console?token=" + url.QueryEscape(token)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.URL+path, nil)
	if err != nil {
		return nil, err
	}
	rsp, err := d.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("obmd GET %s: %w", redactPath(path), err)
	}
	if rsp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(rsp.Body, 4096))
		rsp.Body.Close()
		return nil, &apiError{Method: http.MethodGet, Path: redactPath(path), Status: rsp.StatusCode, Body: strings.TrimSpace(string(data))}
	}
	return rsp.Body, nil
}

// consoleWSURL is node id's console as a WebSocket URL.
func (d *Daemon) consoleWSURL(id, token string) string {
	return "ws" + strings.TrimPrefix(d.URL, "http") + "/node/" + url.PathEscape(id) + "/console?token=" + url.QueryEscape(token)
}

// DialConsole opens node id's console as a WebSocket (binary messages both
// ways: console output in, typed bytes out).
func (d *Daemon) DialConsole(ctx context.Context, id, token string) (*websocket.Conn, error) {
	conn, _, err := websocket.Dial(ctx, d.consoleWSURL(id, token), &websocket.DialOptions{HTTPClient: d.Client})
	if err != nil {
		return nil, fmt.Errorf("obmd console WebSocket of %s: %s", id, strings.ReplaceAll(err.Error(), url.QueryEscape(token), "REDACTED"))
	}
	conn.SetReadLimit(-1)
	return conn, nil
}

// OpenConsoleWS streams node id's console through a WebSocket, as a byte
// stream like OpenConsole's: the binary messages' bytes in order. Closing
// it leaves.
func (d *Daemon) OpenConsoleWS(ctx context.Context, id, token string) (io.ReadCloser, error) {
	conn, err := d.DialConsole(ctx, id, token)
	if err != nil {
		return nil, err
	}
	return websocket.NetConn(context.Background(), conn, websocket.MessageBinary), nil
}
