package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"obmd/manager"
)

// Instance-to-instance calls. A non-owner forwards a node's call to the
// owner's advertised URL under /cluster/v1/node/{id}/..., with the cluster
// token as a bearer credential; the owner runs it through its Manager
// (serialised with its own calls on the node) and answers as the API
// would, plus the error's kind, so the forwarding instance answers its
// client exactly as the owner would have. The token never appears in a
// URL or a log.

// peerPathPrefix is where the instance-to-instance routes live.
const peerPathPrefix = "/cluster/v1"

type powerCycleBody struct {
	Force bool `json:"force"`
}

type bootDeviceBody struct {
	BootDev string `json:"bootdev"`
}

type powerStatusBody struct {
	PowerStatus string `json:"power_status"`
}

// peerError is an error answer between instances: the API's
// {"error": ...} plus what rebuilds the manager.Error on the other side.
type peerError struct {
	Error  string `json:"error"`
	Kind   string `json:"kind"`
	Op     string `json:"op,omitempty"`
	Tenant string `json:"tenant,omitempty"`
}

// kindNames names the manager's error kinds on the wire.
var kindNames = []struct {
	name string
	kind error
}{
	{"invalid", manager.ErrInvalid},
	{"unauthorized", manager.ErrUnauthorized},
	{"not_found", manager.ErrNotFound},
	{"exists", manager.ErrExists},
	{"unsupported", manager.ErrUnsupported},
	{"bmc", manager.ErrBMC},
	{"timeout", manager.ErrTimeout},
	{"unavailable", manager.ErrUnavailable},
	{"internal", manager.ErrInternal},
}

const kindNotOwner = "not_owner"

// encodePeerError is err as the owner sends it back. Tenant is the
// message a token holder would read on the owner (manager.TenantMessage,
// without the operation, which Op carries), since it may come from the
// cause (a completion code), which does not cross the wire.
func encodePeerError(err error) peerError {
	if errors.Is(err, errNotOwner) {
		return peerError{Error: err.Error(), Kind: kindNotOwner}
	}
	pe := peerError{Error: err.Error(), Kind: "internal"}
	for _, k := range kindNames {
		if errors.Is(err, k.kind) {
			pe.Kind = k.name
			break
		}
	}
	var me *manager.Error
	if errors.As(err, &me) {
		pe.Op = me.Op
	}
	// Tenant is sent only when the message was made of the operation and
	// a text of its own; otherwise (a request error, an internal one) the
	// other side makes the same from the kind and the reason.
	if msg := manager.TenantMessage(err); pe.Op != "" && strings.HasPrefix(msg, pe.Op+": ") {
		pe.Tenant = strings.TrimPrefix(msg, pe.Op+": ")
	}
	return pe
}

// decode rebuilds the owner's error.
func (pe peerError) decode() error {
	if pe.Kind == kindNotOwner {
		return errNotOwner
	}
	kind := manager.ErrInternal
	for _, k := range kindNames {
		if k.name == pe.Kind {
			kind = k.kind
		}
	}
	return &manager.Error{Kind: kind, Reason: pe.Error, Op: pe.Op, Tenant: pe.Tenant}
}

// peerUnreachable: the owner did not answer (dead, restarting, or the
// network): the call is tried again when the owner changes.
type peerUnreachable struct {
	url string
	err error
}

func (e *peerUnreachable) Error() string {
	return fmt.Sprintf("the owner at %s did not answer: %v", e.url, e.err)
}
func (e *peerUnreachable) Unwrap() error { return e.err }

// retryable: worth trying again at the driver's next move.
func retryable(err error) bool {
	var pu *peerUnreachable
	return errors.Is(err, errNotOwner) || errors.Is(err, errMovedMeanwhile) || errors.As(err, &pu)
}

type peerClient struct {
	auth string // "Bearer " + token
	tr   *http.Transport
	http *http.Client
}

func newPeerClient(token string, tlsConf *tls.Config) *peerClient {
	tr := peerTransport(tlsConf)
	return &peerClient{auth: "Bearer " + token, tr: tr, http: &http.Client{Transport: tr}}
}

func (p *peerClient) close() { p.tr.CloseIdleConnections() }

func (p *peerClient) request(ctx context.Context, method, base, id, op string, body any) (*http.Request, error) {
	return p.requestPath(ctx, method, base, "/node/"+url.PathEscape(id)+"/"+op, body)
}

// requestPath is a call to path under peerPathPrefix at base, with the
// cluster token and body (if not nil) as JSON.
func (p *peerClient) requestPath(ctx context.Context, method, base, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := strings.TrimSuffix(base, "/") + peerPathPrefix + path
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", p.auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// call forwards one power or boot call to the owner at base and decodes
// its answer into out (if not nil).
func (p *peerClient) call(ctx context.Context, base, id, op string, body, out any) error {
	method := http.MethodPost
	switch op {
	case "power_status":
		method = http.MethodGet
	case "boot_device":
		method = http.MethodPut
	}
	req, err := p.request(ctx, method, base, id, op, body)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &peerUnreachable{url: base, err: err}
	}
	defer resp.Body.Close()
	return readAnswer(resp, base, out)
}

func readAnswer(resp *http.Response, base string, out any) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &peerUnreachable{url: base, err: err}
	}
	if resp.StatusCode == http.StatusOK {
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("cluster: the owner at %s answered %q: %w", base, b, err)
			}
		}
		return nil
	}
	var pe peerError
	if err := json.Unmarshal(b, &pe); err != nil || pe.Kind == "" {
		// Not an instance's answer: a proxy, or an instance being
		// replaced by something else at that URL.
		return &peerUnreachable{url: base, err: fmt.Errorf("HTTP %d %q", resp.StatusCode, bytes.TrimSpace(b))}
	}
	return pe.decode()
}

// openConsole opens the node's console stream on the owner at base. ctx
// bounds the opening only (as manager.ConsoleDriver says): the stream
// lives until it is closed or the owner ends it.
func (p *peerClient) openConsole(ctx context.Context, base, id string) (io.ReadCloser, error) {
	streamCtx, cancel := context.WithCancel(context.Background())
	req, err := p.request(streamCtx, http.MethodGet, base, id, "console", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	stop := context.AfterFunc(ctx, cancel)
	resp, err := p.http.Do(req)
	if !stop() {
		// ctx ended first: the request was cancelled (or is being).
		if err == nil {
			resp.Body.Close()
		}
		cancel()
		return nil, ctx.Err()
	}
	if err != nil {
		cancel()
		return nil, &peerUnreachable{url: base, err: err}
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		return nil, readAnswer(resp, base, nil)
	}
	ps := &peerStream{p: p, base: base, id: id, stream: resp.Header.Get(streamHeader), body: resp.Body, ctx: streamCtx, cancel: cancel}
	ps.inputCtx, ps.inputCancel = context.WithCancel(streamCtx)
	return ps, nil
}

// streamHeader names, in the owner's answer to a console request, the
// stream the input calls refer to.
const streamHeader = "X-Obmd-Console-Stream"

// peerStream is a console stream from the owner. Its input side
// (manager.ConsoleWriter) forwards what this instance's viewers type to
// the owner, one call per message, each answered once the owner's console
// has taken it, so a slow BMC slows the typist down here too.
type peerStream struct {
	p                *peerClient
	base, id, stream string
	body             io.ReadCloser
	ctx              context.Context
	cancel           context.CancelFunc

	mu          sync.Mutex
	inputCtx    context.Context // cancelled by DiscardInput: the input in flight is dropped
	inputCancel context.CancelFunc
}

var _ manager.ConsoleWriter = (*peerStream)(nil)

func (s *peerStream) Read(p []byte) (int, error) { return s.body.Read(p) }

// Close cancels the request (a pending Read returns at once) and releases
// the connection.
func (s *peerStream) Close() error {
	s.cancel()
	return s.body.Close()
}

// Write types p on the owner's console.
func (s *peerStream) Write(p []byte) (int, error) {
	if err := s.input("console/input", p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// SendBreak sends a serial break through the owner's console.
func (s *peerStream) SendBreak() error { return s.input("console/break", nil) }

// DiscardInput drops the input call in flight, if any: the owner's
// console may have taken part of it. The owner ends its own tenancy's
// input when the token changes (the change reaches every instance).
func (s *peerStream) DiscardInput() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inputCancel()
	s.inputCtx, s.inputCancel = context.WithCancel(s.ctx)
	return 0
}

func (s *peerStream) input(op string, p []byte) error {
	s.mu.Lock()
	ctx := s.inputCtx
	s.mu.Unlock()
	if s.stream == "" {
		// An owner that names no stream takes no input through it.
		return manager.UnsupportedError("the owning instance's console takes no input")
	}
	u := strings.TrimSuffix(s.base, "/") + peerPathPrefix + "/node/" + url.PathEscape(s.id) + "/" + op + "?stream=" + url.QueryEscape(s.stream)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(p))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", s.p.auth)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := s.p.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &peerUnreachable{url: s.base, err: err}
	}
	defer resp.Body.Close()
	return readAnswer(resp, s.base, nil)
}
