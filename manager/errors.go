package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"obmd/ipmi"
)

// Error kinds. Every error the Manager returns matches exactly one of these
// with errors.Is; package api maps them to HTTP status codes (in
// parentheses). Drivers return them too, through the constructors below.
var (
	ErrInvalid      = errors.New("invalid request")       // 400
	ErrUnauthorized = errors.New("unauthorized")          // 401
	ErrNotFound     = errors.New("no such node")          // 404
	ErrExists       = errors.New("node already exists")   // 409
	ErrUnsupported  = errors.New("not supported")         // 501
	ErrBMC          = errors.New("BMC error")             // 502
	ErrTimeout      = errors.New("BMC did not answer")    // 504
	ErrInternal     = errors.New("internal server error") // 500
	// ErrUnavailable: obmd cannot do it right now, and retrying later may
	// help: a shared node store (etcd) that does not acknowledge a write,
	// or a node whose owning instance of the cluster cannot be reached.
	ErrUnavailable = errors.New("service unavailable") // 503
)

// Error is an error of one of the kinds above with an operator-readable
// reason, and optionally the underlying cause.
//
// Reason and Err are for the operator (logs, admin answers): they may name
// the BMC's address, the IPMI user, a resolver. A token holder sees only
// TenantMessage's text, built from Op, Tenant and the kind.
type Error struct {
	Kind   error  // one of the Err* kinds above
	Reason string // what failed, in words an operator understands
	Err    error  // the underlying cause, or nil
	// Op names the operation that failed ("power on"), for tenants.
	Op string
	// Tenant, if set, is what a token holder is told instead of the
	// kind's generic text: it must hold no management detail.
	Tenant string
}

func (e *Error) Error() string {
	switch {
	case e.Reason == "" && e.Err == nil:
		return e.Kind.Error()
	case e.Reason == "":
		return e.Err.Error()
	case e.Err == nil:
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

// Is makes errors.Is(err, ErrBMC) and the like true for an *Error of that kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Invalidf is an ErrInvalid (HTTP 400) with a formatted reason, for a request
// with a bad value, such as an unknown boot device.
func Invalidf(format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Reason: fmt.Sprintf(format, args...)}
}

// BMCError is an ErrBMC (HTTP 502): the BMC answered, but with a failure.
// reason names the operation, cause says what the BMC said.
func BMCError(reason string, cause error) error {
	return &Error{Kind: ErrBMC, Reason: reason, Err: cause}
}

// TimeoutError is an ErrTimeout (HTTP 504): the BMC did not answer.
func TimeoutError(reason string, cause error) error {
	return &Error{Kind: ErrTimeout, Reason: reason, Err: cause}
}

// CredentialsError is an ErrBMC (HTTP 502) for a BMC that refused obmd's
// user name or password: the tenant is told to ask the operator, without
// the user name.
func CredentialsError(reason string, cause error) error {
	return &Error{Kind: ErrBMC, Reason: reason, Err: cause, Tenant: "the BMC rejected obmd's credentials for this node; retrying will not help, ask the operator"}
}

// TenantError is an error of kind with a reason for the operator and a
// message safe for a token holder.
func TenantError(kind error, reason string, cause error, tenant string) error {
	return &Error{Kind: kind, Reason: reason, Err: cause, Tenant: tenant}
}

// UnsupportedError is an ErrUnsupported (HTTP 501).
func UnsupportedError(reason string) error {
	return &Error{Kind: ErrUnsupported, Reason: reason}
}

// TenantMessage is what a node's token holder is told of err: what failed
// and whether retrying may help, never the BMC's address, port, user name
// or anything else of the management network. Request errors (400, 401,
// 404, 501) describe the request and are told as they are.
func TenantMessage(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return "internal server error"
	}
	var msg string
	switch {
	case e.Tenant != "":
		msg = e.Tenant
	case errors.Is(e, ErrBMC):
		msg = "the BMC reported an error; the operator can see the details"
		if r := bmcReason(e); r != "" {
			msg = r
		}
	case errors.Is(e, ErrTimeout):
		msg = "the BMC did not answer in time; retrying later may help"
	case errors.Is(e, ErrUnavailable):
		msg = "obmd cannot serve this node right now; retrying in a few seconds may help"
	case errors.Is(e, ErrInternal):
		return "internal server error"
	default:
		return e.Error()
	}
	if e.Op != "" {
		return e.Op + ": " + msg
	}
	return msg
}

// bmcReason is what the BMC itself said in err, when that can be told
// without naming anything of the management network: a completion code
// (which names the command and the code's meaning) or a protocol refusal
// that offers its text without the address (a BMCReason method).
func bmcReason(err error) string {
	var ce *ipmi.CompletionError
	if errors.As(err, &ce) {
		return "the BMC answered " + ce.Error()
	}
	var r interface{ BMCReason() string }
	if errors.As(err, &r) {
		return r.BMCReason()
	}
	return ""
}

// withOp records op as the failed operation of err, if it is an *Error
// that names none yet.
func withOp(op string, err error) error {
	var e *Error
	if errors.As(err, &e) && e.Op == "" {
		e.Op = op
	}
	return err
}

var kinds = []error{ErrInvalid, ErrUnauthorized, ErrNotFound, ErrExists, ErrUnsupported, ErrBMC, ErrTimeout, ErrInternal, ErrUnavailable}

// hasKind reports whether err already carries one of the Err* kinds.
func hasKind(err error) bool {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// classifyDriverError gives a driver's error a kind: errors that already
// have one keep it; a context deadline or a network timeout is ErrTimeout;
// anything else is ErrBMC. op names the operation for the reason.
func classifyDriverError(op string, timeout time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return withOp(op, classifyKind(op, timeout, err))
}

func classifyKind(op string, timeout time.Duration, err error) error {
	if hasKind(err) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return TimeoutError(fmt.Sprintf("%s: the BMC did not answer within %s", op, timeout), nil)
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return TimeoutError(op, err)
	}
	return BMCError(op, err)
}
