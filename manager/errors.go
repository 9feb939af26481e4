package manager

import (
	"context"
	"errors"
	"fmt"
	"time"
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
)

// Error is an error of one of the kinds above with an operator-readable
// reason, and optionally the underlying cause.
type Error struct {
	Kind   error  // one of the Err* kinds above
	Reason string // what failed, in words an operator understands
	Err    error  // the underlying cause, or nil
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

// UnsupportedError is an ErrUnsupported (HTTP 501).
func UnsupportedError(reason string) error {
	return &Error{Kind: ErrUnsupported, Reason: reason}
}

var kinds = []error{ErrInvalid, ErrUnauthorized, ErrNotFound, ErrExists, ErrUnsupported, ErrBMC, ErrTimeout, ErrInternal}

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
	if err == nil || hasKind(err) {
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
