package redfish

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// The authentication lifecycle, in one place (DSP0266 section 13.3
// "Authentication" and "Session management"):
//
//	none --first call--> GET service root (unauthenticated)
//	  root lists Links.Sessions: POST {UserName, Password} to it
//	      201 + X-Auth-Token          -> session (token, Location kept)
//	      401/403                     -> refused (held off LoginHoldOff)
//	      404/405/501                 -> basic (the service has no sessions)
//	  root lists no Sessions          -> basic
//	session --401 to a reused token--> none, log in again at once, retry
//	                                   the request once
//	session --IdleTimeout without a call--> DELETE Location -> none
//	session --Close--> DELETE Location -> closed
//	basic --401--> refused
//	refused --LoginHoldOff elapsed--> none
//
// A fresh login that gets 401 on the very next request is not retried: a
// service that accepts a login and then refuses its token would otherwise
// loop. The session token and the password are never logged.

type authKind int

const (
	authNone    authKind = iota // not decided yet, or session ended
	authSession                 // X-Auth-Token
	authBasic                   // HTTP Basic on every request
)

func (k authKind) String() string {
	switch k {
	case authSession:
		return "session"
	case authBasic:
		return "basic"
	}
	return "none"
}

// authState is the client's authentication state; guarded by Client.mu.
type authState struct {
	kind     authKind
	token    string    // X-Auth-Token of the session
	location string    // the session's path, for DELETE
	since    time.Time // session start
	lastUsed time.Time
	refused  *LoginRefusedError // a recent refusal of the credentials
}

// takeSession clears the session and returns its token and path.
func (a *authState) takeSession() (token, location string) {
	token, location = a.token, a.location
	a.token, a.location = "", ""
	if a.kind == authSession {
		a.kind = authNone
	}
	return token, location
}

// credential is what one request is sent with.
type credential struct {
	kind  authKind
	token string
	fresh bool // the session was opened for this request
}

// apply adds the credential to a copy of hdr.
func (cr credential) apply(hdr http.Header, user, pass string) http.Header {
	out := make(http.Header, len(hdr)+1)
	for k, v := range hdr {
		out[k] = v
	}
	switch cr.kind {
	case authSession:
		out.Set("X-Auth-Token", cr.token)
	case authBasic:
		r := http.Request{Header: out}
		r.SetBasicAuth(user, pass)
	}
	return out
}

// begin marks a call in flight (the idle logout waits for it).
func (c *Client) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.busy++
	return nil
}

// end marks a call done and arms the idle logout.
func (c *Client) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy--
	c.auth.lastUsed = time.Now()
	if c.auth.token != "" && c.timer == nil && !c.closed {
		c.timer = time.AfterFunc(c.cfg.IdleTimeout, c.idleCheck)
	}
}

// idleCheck deletes a session unused for IdleTimeout, or re-arms.
func (c *Client) idleCheck() {
	c.mu.Lock()
	c.timer = nil
	if c.closed || c.auth.token == "" {
		c.mu.Unlock()
		return
	}
	if idle := time.Since(c.auth.lastUsed); c.busy > 0 || idle < c.cfg.IdleTimeout {
		c.timer = time.AfterFunc(max(c.cfg.IdleTimeout-idle, time.Millisecond), c.idleCheck)
		c.mu.Unlock()
		return
	}
	token, loc := c.auth.takeSession()
	c.bg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := c.logout(ctx, token, loc); err != nil {
			c.log.Debug("deleting the idle Redfish session", "err", err)
		} else {
			c.log.Debug("idle Redfish session deleted")
		}
	}()
}

// credentials returns what the next request goes with, logging in if need
// be.
func (c *Client) credentials(ctx context.Context) (credential, error) {
	c.mu.Lock()
	if r := c.auth.refused; r != nil {
		if time.Now().Before(r.Until) {
			c.mu.Unlock()
			return credential{}, r
		}
		c.auth.refused = nil
	}
	switch {
	case c.auth.kind == authBasic:
		c.mu.Unlock()
		return credential{kind: authBasic}, nil
	case c.auth.kind == authSession && c.auth.token != "":
		cr := credential{kind: authSession, token: c.auth.token}
		c.mu.Unlock()
		return cr, nil
	}
	c.mu.Unlock()

	// One login at a time: a second caller waits and uses the session the
	// first one opened, rather than opening (and leaking) one of its own.
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	refused := c.auth.refused
	cr := credential{kind: c.auth.kind, token: c.auth.token}
	c.mu.Unlock()
	switch {
	case refused != nil && time.Now().Before(refused.Until):
		return credential{}, refused
	case cr.kind == authBasic, cr.kind == authSession && cr.token != "":
		return cr, nil
	}

	root, err := c.serviceRoot(ctx)
	if err != nil {
		return credential{}, err
	}
	if root.Sessions == "" {
		c.useBasic("the service root lists no Sessions collection")
		return credential{kind: authBasic}, nil
	}
	return c.login(ctx, root.Sessions)
}

// useBasic switches to HTTP Basic for good.
func (c *Client) useBasic(why string) {
	c.mu.Lock()
	first := c.auth.kind != authBasic
	c.auth.kind = authBasic
	c.mu.Unlock()
	if first {
		c.log.Info("Redfish service offers no sessions; using HTTP Basic authentication", "why", why)
	}
}

// login opens a session (DSP0266 "Session login": POST to the Sessions
// collection, token in the X-Auth-Token header, session in Location).
func (c *Client) login(ctx context.Context, sessions string) (credential, error) {
	c.logins.Add(1)
	body := []byte(`{}`)
	if b, err := json.Marshal(map[string]string{"UserName": c.cfg.User, "Password": c.cfg.Password}); err == nil {
		body = b
	}
	r, err := c.exchange(ctx, http.MethodPost, sessions, body, nil)
	if err != nil {
		return credential{}, err
	}
	switch {
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		herr := httpError(http.MethodPost, sessions, r)
		c.credentialsRefused(credential{kind: authSession, fresh: true}, herr)
		return credential{}, herr
	case r.status == http.StatusNotFound || r.status == http.StatusMethodNotAllowed || r.status == http.StatusNotImplemented:
		c.useBasic("login answered HTTP " + http.StatusText(r.status))
		return credential{kind: authBasic}, nil
	case r.status >= 400:
		return credential{}, httpError(http.MethodPost, sessions, r)
	}
	token := r.header.Get("X-Auth-Token")
	if token == "" {
		return credential{}, &ServiceError{Problem: "the login to " + sessions + " succeeded without an X-Auth-Token header"}
	}
	loc := ""
	if l := r.header.Get("Location"); l != "" {
		if p, err := c.servicePath(l); err == nil {
			loc = p
		} else {
			c.log.Warn("ignoring the session's Location; the session will expire on the BMC instead of being deleted", "err", err)
		}
	}
	if loc == "" {
		// Some services omit Location; the Session's @odata.id is its
		// path too.
		var s struct {
			ID string `json:"@odata.id"`
		}
		if json.Unmarshal(r.body, &s) == nil && checkPath(s.ID) == nil {
			loc = s.ID
		}
	}
	c.mu.Lock()
	c.auth.kind = authSession
	c.auth.token = token
	c.auth.location = loc
	c.auth.since = time.Now()
	c.mu.Unlock()
	c.log.Debug("Redfish session opened")
	return credential{kind: authSession, token: token, fresh: true}, nil
}

// forgetSession drops token if it is still the current session (the BMC
// forgot it: nothing to delete).
func (c *Client) forgetSession(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.auth.token == token {
		c.auth.takeSession()
	}
}

// credentialsRefused records a refusal of the credentials: a 401 to a
// login, to Basic, or to a session opened for this very request.
func (c *Client) credentialsRefused(cr credential, herr *HTTPError) {
	if cr.kind == authSession && !cr.fresh {
		return // handled by the one re-login in call
	}
	now := time.Now()
	c.mu.Lock()
	c.auth.refused = &LoginRefusedError{At: now, Until: now.Add(c.cfg.LoginHoldOff), Err: herr}
	if cr.kind == authSession {
		c.auth.takeSession()
	}
	c.mu.Unlock()
	c.log.Warn("the BMC refused obmd's Redfish credentials; not trying again for a while", "hold_off", c.cfg.LoginHoldOff, "err", herr.Error())
}

// logout deletes a session (DSP0266 "Session termination": DELETE the
// session resource with its own token).
func (c *Client) logout(ctx context.Context, token, location string) error {
	if location == "" {
		return nil
	}
	r, err := c.exchange(ctx, http.MethodDelete, location, nil, credential{kind: authSession, token: token}.apply(nil, "", ""))
	if err != nil {
		return err
	}
	if r.status >= 400 && r.status != http.StatusNotFound && r.status != http.StatusUnauthorized {
		return httpError(http.MethodDelete, location, r)
	}
	return nil
}

// serviceRoot returns the service root, read once (DSP0266: it answers
// without authentication).
func (c *Client) serviceRoot(ctx context.Context) (ServiceRoot, error) {
	c.mu.Lock()
	if c.root != nil {
		r := *c.root
		c.mu.Unlock()
		return r, nil
	}
	c.mu.Unlock()
	const path = "/redfish/v1/"
	r, err := c.exchange(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return ServiceRoot{}, err
	}
	if r.status >= 400 {
		return ServiceRoot{}, httpError(http.MethodGet, path, r)
	}
	root, err := DecodeServiceRoot(r.body)
	if err != nil {
		return ServiceRoot{}, &ResourceError{Method: http.MethodGet, Resource: path, Err: err}
	}
	c.mu.Lock()
	c.root = &root
	c.mu.Unlock()
	return root, nil
}
