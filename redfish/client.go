package redfish

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Client for one BMC. Zero values take the defaults
// noted.
type Config struct {
	// BaseURL is the service's https://host[:port]; the client appends
	// /redfish/v1/... (DSP0266 "Service root": the root is always at
	// /redfish/v1/).
	BaseURL  string
	User     string
	Password string // never logged
	// System chooses the ComputerSystem by its Id or its path; "" means
	// the only member of the Systems collection.
	System string
	// TLS is the TLS configuration (see TLSConfig); nil verifies the
	// service's certificate against the system's roots.
	TLS *tls.Config
	// MaxBody bounds every response body (default DefaultMaxBody).
	MaxBody int64
	// IdleTimeout deletes the session after this long without a request
	// (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// LoginHoldOff is how long a refusal of the credentials is remembered:
	// meanwhile requests fail at once without asking the BMC (default
	// DefaultLoginHoldOff).
	LoginHoldOff time.Duration
	// TaskPoll paces task monitor polling when the BMC sends no
	// Retry-After (default DefaultTaskPoll).
	TaskPoll time.Duration
	Logger   *slog.Logger
}

// Defaults.
const (
	// DefaultMaxBody: a ComputerSystem is a few KiB, a large collection a
	// few hundred; anything past 1 MiB is not an answer obmd can use.
	DefaultMaxBody = 1 << 20
	// DefaultIdleTimeout matches the IPMI driver's warm session: long
	// enough that HIL's polling reuses the session, short enough that an
	// idle node does not hold one of the BMC's few session slots (iDRAC
	// and XCC allow a handful) for the service's 30-minute default.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultLoginHoldOff: iDRAC locks an account for minutes after a few
	// failures within a short window; one attempt per 30 s stays clear.
	DefaultLoginHoldOff = 30 * time.Second
	DefaultTaskPoll     = 250 * time.Millisecond
	// maxRetryAfter caps a task monitor's Retry-After: the operation's
	// deadline, not the BMC, decides how long obmd waits.
	maxRetryAfter = 2 * time.Second
	// closeTimeout bounds deleting the session on Close.
	closeTimeout = 3 * time.Second
)

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("redfish: client closed")

// Client talks to one Redfish service. Its methods may be called from
// several goroutines; obmd's manager calls one at a time per node.
type Client struct {
	cfg  Config
	base string // scheme://host:port, no trailing slash
	host string // host:port, for Location checks
	hc   *http.Client
	log  *slog.Logger

	logins atomic.Int64 // login attempts (POSTs to Sessions)
	tasks  atomic.Int64 // 202 answers followed through a task monitor

	loginMu sync.Mutex // held while logging in (session.go)

	mu      sync.Mutex
	auth    authState      // (mu) see session.go
	root    *ServiceRoot   // (mu) cached service root
	sys     *systemInfo    // (mu) the chosen system, once discovered
	learned learnedQuirks  // (mu)
	busy    int            // (mu) calls in flight: the idle logout waits
	timer   *time.Timer    // (mu) idle logout, armed while a session is idle
	closed  bool           // (mu)
	bg      sync.WaitGroup // background logouts
}

// learnedQuirks are the BMC's deviations the client noticed on its own.
type learnedQuirks struct {
	etagRequired      bool      // a PATCH without If-Match got 412/428
	etagSince         time.Time //
	continuousRefused bool      // BootSourceOverrideEnabled Continuous refused
	continuousSince   time.Time //
	continuousWhy     string    // what showed it
}

// New builds a client; it does no I/O. BaseURL must be an https URL with a
// host and no path beyond "/".
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("redfish: base URL: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("redfish: base URL %q must be https://host[:port] with nothing after the host", cfg.BaseURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.LoginHoldOff <= 0 {
		cfg.LoginHoldOff = DefaultLoginHoldOff
	}
	if cfg.TaskPoll <= 0 {
		cfg.TaskPoll = DefaultTaskPoll
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tlsCfg := cfg.TLS
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr := &http.Transport{
		// A BMC is on the management network: never through a proxy
		// named in the daemon's environment.
		Proxy:               nil,
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     cfg.IdleTimeout,
	}
	c := &Client{
		cfg:  cfg,
		base: "https://" + u.Host,
		host: host,
		log:  log,
		hc: &http.Client{
			Transport: tr,
			// Redirects come back as 3xx answers and are refused in
			// exchange (see RedirectError).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	return c, nil
}

// TLSConfig builds the TLS configuration for a service: verified against
// the certificates in caPEM only (when given; the system's roots
// otherwise), or not verified at all when verify is false (an explicit
// opt-out).
func TLSConfig(caPEM []byte, verify bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if !verify {
		if len(caPEM) > 0 {
			return nil, errors.New("redfish: a CA certificate and no verification contradict each other")
		}
		cfg.InsecureSkipVerify = true // the operator's explicit choice (verify_tls: false)
		return cfg, nil
	}
	if len(caPEM) > 0 {
		certs, err := ParseCertificates(caPEM)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// ParseCertificates parses every CERTIFICATE block of a PEM text; there
// must be at least one and nothing else.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("redfish: PEM block %q is not a CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("redfish: certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("redfish: text that is not PEM after the certificates")
	}
	if len(certs) == 0 {
		return nil, errors.New("redfish: no PEM CERTIFICATE block")
	}
	return certs, nil
}

// response is one bounded answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// exchange sends one request and reads its answer, bounded by ctx and by
// MaxBody. It does no authentication and no retry; a redirect is a
// *RedirectError, a TLS failure a *TLSError, an answer >= 400 is returned
// as is.
func (c *Client) exchange(ctx context.Context, method, path string, body []byte, hdr http.Header) (*response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("redfish: %s %s: %w", method, path, err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	// DSP0266 "Request headers": clients shall send OData-Version 4.0.
	req.Header.Set("OData-Version", "4.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	rsp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the whole URL
		}
		return nil, fmt.Errorf("redfish: %s %s: %w", method, path, asTLSError(err))
	}
	defer rsp.Body.Close()
	if rsp.StatusCode >= 300 && rsp.StatusCode < 400 && rsp.StatusCode != http.StatusNotModified {
		return nil, &RedirectError{Method: method, Resource: path, Status: rsp.StatusCode, Location: rsp.Header.Get("Location")}
	}
	if rsp.ContentLength > c.cfg.MaxBody {
		return nil, &BodyTooLargeError{Method: method, Resource: path, Limit: c.cfg.MaxBody}
	}
	data, err := io.ReadAll(io.LimitReader(rsp.Body, c.cfg.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("redfish: %s %s: reading the answer: %w", method, path, err)
	}
	if int64(len(data)) > c.cfg.MaxBody {
		return nil, &BodyTooLargeError{Method: method, Resource: path, Limit: c.cfg.MaxBody}
	}
	return &response{status: rsp.StatusCode, header: rsp.Header, body: data}, nil
}

// httpError turns an error answer into an *HTTPError.
func httpError(method, path string, r *response) *HTTPError {
	body, _ := DecodeErrorBody(r.body)
	return &HTTPError{Method: method, Resource: path, Status: r.status, Body: body}
}

// call sends an authenticated request (see session.go for the policy) and
// returns an *HTTPError for an answer >= 400.
func (c *Client) call(ctx context.Context, method, path string, body any, hdr http.Header) (*response, error) {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("redfish: encoding the %s %s body: %w", method, path, err)
		}
	}
	if err := c.begin(); err != nil {
		return nil, err
	}
	defer c.end()
	cred, err := c.credentials(ctx)
	if err != nil {
		return nil, err
	}
	r, err := c.exchange(ctx, method, path, data, cred.apply(hdr, c.cfg.User, c.cfg.Password))
	if err != nil {
		return nil, err
	}
	if r.status == http.StatusUnauthorized && cred.kind == authSession && !cred.fresh {
		// DSP0266 "Session lifecycle management": the service ends idle
		// sessions on its own (and forgets all of them when it
		// restarts); a 401 to a session that worked before means log in
		// again, once.
		c.log.Info("Redfish session no longer accepted; logging in again", "resource", path)
		c.forgetSession(cred.token)
		if cred, err = c.credentials(ctx); err != nil {
			return nil, err
		}
		if r, err = c.exchange(ctx, method, path, data, cred.apply(hdr, c.cfg.User, c.cfg.Password)); err != nil {
			return nil, err
		}
	}
	if r.status >= 400 {
		herr := httpError(method, path, r)
		if r.status == http.StatusUnauthorized {
			c.credentialsRefused(cred, herr)
		}
		return r, herr
	}
	return r, nil
}

// get reads a resource and decodes it with decode.
func get[T any](ctx context.Context, c *Client, path string, decode func([]byte) (T, error)) (T, *response, error) {
	var zero T
	r, err := c.call(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return zero, nil, err
	}
	v, err := decode(r.body)
	if err != nil {
		return zero, nil, &ResourceError{Method: http.MethodGet, Resource: path, Err: err}
	}
	return v, r, nil
}

// servicePath turns a Location header (a path, or an absolute URL on this
// service) into a path, refusing anything on another host.
func (c *Client) servicePath(loc string) (string, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("location %q: %w", loc, err)
	}
	if u.IsAbs() || u.Host != "" {
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "443")
		}
		if u.Scheme != "https" || !strings.EqualFold(host, c.host) {
			return "", fmt.Errorf("location %q is not on this service", loc)
		}
	}
	p := u.EscapedPath()
	if err := checkPath(p); err != nil {
		return "", fmt.Errorf("location %q: %w", loc, err)
	}
	return p, nil
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), within
// [0, maxRetryAfter]; def if absent or unreadable.
func retryAfter(h http.Header, def time.Duration) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return def
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	} else {
		return def
	}
	return max(0, min(d, maxRetryAfter))
}

// Logins is the number of login attempts so far (POSTs to Sessions).
func (c *Client) Logins() int64 { return c.logins.Load() }

// Close deletes the session (best effort, within a few seconds or ctx)
// and closes idle connections. Later calls fail with ErrClosed.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	token, loc := c.auth.takeSession()
	c.mu.Unlock()
	var err error
	if token != "" {
		ctx, cancel := context.WithTimeout(ctx, closeTimeout)
		err = c.logout(ctx, token, loc)
		cancel()
	}
	c.bg.Wait()
	c.hc.CloseIdleConnections()
	return err
}
