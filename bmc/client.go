// Package bmc is the power and boot-device client obmd's node manager calls
// for one IPMI node: power on, hard off, ACPI soft off, reset, cycle, power
// status, and the persistent boot device, each one IPMI command (IPMI v2.0
// chapter 28) over an RMCP+ session from package rmcpplus. It also owns the
// node's named quirks (see Quirks).
//
// A Client is one session: it does not redial when the session ends. The
// session's owner (the node manager's session pool) decides when to open
// another, so recovery happens in one place.
//
// It knows nothing of HTTP, node ids or tokens, and never touches a
// packet: framing, cryptography, negotiation and retransmission live in
// rmcpplus, the command codecs in ipmi. It never logs a password or key.
package bmc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// Config says how to reach one BMC.
type Config struct {
	Addr     string // host or host:port (default port 623)
	Username string
	Password []byte // never logged
	Kg       []byte // BMC key (K_g); empty: the password keys the session
	// CipherSuite pins the RMCP+ cipher suite; 0 negotiates one with
	// confidentiality (17, then 3).
	CipherSuite uint8
	// Profile carries what was learned about the BMC from one session to
	// the next (rmcpplus.Profile); nil: a fresh one.
	Profile *rmcpplus.Profile
	// Privilege is the session privilege; 0 means Administrator. Power
	// and boot control need Operator at least.
	Privilege ipmi.PrivilegeLevel
	// Timeout is the per-attempt timeout and Retries the retransmissions
	// after the first attempt (0: rmcpplus defaults, 1 s and 3). A BMC
	// that never answers fails after Timeout x (Retries+1).
	Timeout time.Duration
	Retries int
	// Quirks are workaround names (see Quirks); an unknown name fails Dial.
	Quirks []string
	// PacketConn, if set, carries the session instead of a fresh UDP
	// socket (tests put a fault injector here). The session owns it.
	PacketConn net.PacketConn
	Logger     *slog.Logger
}

// Errors a caller can test for with errors.Is. The manager maps
// ErrTimeout to "BMC did not answer" and the others to "BMC error".
var (
	ErrTimeout       = rmcpplus.ErrTimeout       // no answer after every attempt
	ErrWrongPassword = rmcpplus.ErrWrongPassword // RAKP 2 proves a different password
	ErrUnknownUser   = rmcpplus.ErrUnknownUser   // the BMC does not know the user
	ErrClosed        = errors.New("bmc: client closed")
)

// Client controls one BMC over one RMCP+ session. It is safe for
// concurrent use: requests from several goroutines share the session,
// whose request table matches each answer to its caller.
//
// A session the BMC stops answering ends (rmcpplus closes it after the
// retransmissions run out); from then on every call fails at once with
// the reason, and the Client's owner dials a new one.
type Client struct {
	addr   string
	quirks Quirks
	log    *slog.Logger
	sess   *rmcpplus.Session

	// do sends one request; it is c.sessionDo except in unit tests.
	do func(ctx context.Context, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) ([]byte, error)

	closed atomic.Bool
}

// Dial validates cfg, establishes an RMCP+ session and returns a Client.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	quirks, err := ParseQuirks(cfg.Quirks)
	if err != nil {
		if cfg.PacketConn != nil {
			cfg.PacketConn.Close() // the session would have owned it
		}
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := rmcpplus.Dial(ctx, rmcpplus.ClientConfig{
		Addr:        cfg.Addr,
		Username:    cfg.Username,
		Password:    bytes.Clone(cfg.Password),
		Kg:          bytes.Clone(cfg.Kg),
		Privilege:   cfg.Privilege,
		CipherSuite: cfg.CipherSuite,
		Workarounds: quirks.Workarounds(),
		Profile:     cfg.Profile,
		Timeout:     cfg.Timeout,
		Retries:     cfg.Retries,
		PacketConn:  cfg.PacketConn,
		Logger:      log, // rmcpplus adds the "bmc" attribute itself
	})
	if err != nil {
		return nil, &OpError{Addr: cfg.Addr, Op: "connect", Err: err}
	}
	c := &Client{addr: cfg.Addr, quirks: quirks, log: log.With("bmc", cfg.Addr), sess: s}
	c.do = c.sessionDo
	return c, nil
}

// Session returns the RMCP+ session, for SOL payloads on it.
func (c *Client) Session() *rmcpplus.Session { return c.sess }

// Quirks returns the node's parsed quirks.
func (c *Client) Quirks() Quirks { return c.quirks }

// Alive reports whether the session is still up.
func (c *Client) Alive() bool {
	return !c.closed.Load() && c.sess != nil && c.sess.Err() == nil
}

// Close ends the session (Close Session, best effort). Calls after Close
// fail with ErrClosed.
func (c *Client) Close() error {
	if c.closed.Swap(true) || c.sess == nil {
		return nil
	}
	return c.sess.Close()
}

// sessionDo sends one request on the session.
func (c *Client) sessionDo(ctx context.Context, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) ([]byte, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	return c.sess.Do(ctx, netfn, cmd, data)
}

// run sends one command for operation op and wraps any failure in an
// *OpError naming the BMC and the operation.
func (c *Client) run(ctx context.Context, op string, netfn ipmi.NetFn, cmd ipmi.Command, req ipmi.Codec) ([]byte, error) {
	rsp, err := c.do(ctx, netfn, cmd, req.Marshal())
	if err != nil {
		return nil, &OpError{Addr: c.addr, Op: op, Err: err}
	}
	return rsp, nil
}

// OpError is a failed Client operation.
type OpError struct {
	Addr string // the BMC
	Op   string // "power on", "set boot device pxe (persistent)", ...
	Err  error  // an *ipmi.CompletionError, ErrTimeout, a session error...
}

// Error reads "bmc ADDR: OP: cause". The cause's own "rmcpplus: ADDR: "
// prefix is dropped so the address appears once.
func (e *OpError) Error() string {
	cause := strings.TrimPrefix(e.Err.Error(), "rmcpplus: ")
	cause = strings.TrimPrefix(cause, e.Addr+": ")
	return fmt.Sprintf("bmc %s: %s: %s", e.Addr, e.Op, cause)
}

func (e *OpError) Unwrap() error { return e.Err }

// completionCode returns the completion code inside err, if it is one.
func completionCode(err error) (ipmi.CompletionCode, bool) {
	var ce *ipmi.CompletionError
	if errors.As(err, &ce) {
		return ce.Code, true
	}
	return 0, false
}
