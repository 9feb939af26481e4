package redfish

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// HTTPError is a BMC's answer with an error status (4xx, 5xx) to one
// request, with what the BMC said in its error response (DSP0266 "Error
// responses": code, message and @Message.ExtendedInfo).
type HTTPError struct {
	Method   string
	Resource string // the path requested
	Status   int
	Body     ErrorBody // zero if the body was not a Redfish error
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "redfish: %s %s: HTTP %d %s", e.Method, e.Resource, e.Status, http.StatusText(e.Status))
	if detail := e.Detail(); detail != "" {
		b.WriteString(": ")
		b.WriteString(detail)
	}
	return b.String()
}

// Detail is what the BMC said: each ExtendedInfo message, or the error's
// code and message when it gave no ExtendedInfo.
func (e *HTTPError) Detail() string {
	var parts []string
	for _, m := range e.Body.Info {
		if s := m.String(); s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		for _, s := range []string{e.Body.Code, e.Body.Message} {
			if s != "" {
				parts = append(parts, s)
			}
		}
	}
	return strings.Join(parts, "; ")
}

// MessageIDs lists the ExtendedInfo MessageIds (or the error code).
func (e *HTTPError) MessageIDs() []string {
	var ids []string
	for _, m := range e.Body.Info {
		if m.MessageID != "" {
			ids = append(ids, m.MessageID)
		}
	}
	if len(ids) == 0 && e.Body.Code != "" {
		ids = append(ids, e.Body.Code)
	}
	return ids
}

// BMCReason is what a node's tenant may be told: the status and the
// registry MessageIds, which name a standard message and nothing of the
// management network. The messages themselves may hold the user name
// (MessageArgs) and are for the operator only.
func (e *HTTPError) BMCReason() string {
	s := fmt.Sprintf("the BMC answered HTTP %d %s", e.Status, http.StatusText(e.Status))
	if ids := e.MessageIDs(); len(ids) > 0 {
		s += " (" + strings.Join(ids, ", ") + ")"
	}
	return s
}

// Unauthorized reports whether the BMC refused the credentials or their
// privilege (401, 403).
func (e *HTTPError) Unauthorized() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// LoginRefusedError is returned without asking the BMC while a refusal of
// the credentials is recent: BMCs lock an account after a few failed
// logins (iDRAC, iLO, XCC), and HIL polling a misconfigured node must not
// cause that.
type LoginRefusedError struct {
	At    time.Time  // when the BMC refused
	Until time.Time  // when obmd will try again
	Err   *HTTPError // the refusal
}

func (e *LoginRefusedError) Error() string {
	return fmt.Sprintf("redfish: the BMC refused the credentials %s ago (%v); not trying again before %s, so that the BMC does not lock the account",
		time.Since(e.At).Round(time.Second), e.Err, e.Until.Format(time.TimeOnly))
}

func (e *LoginRefusedError) Unwrap() error { return e.Err }

// TLSError is a TLS handshake with the BMC that failed: an untrusted or
// mismatched certificate, or a service that does not speak TLS.
type TLSError struct {
	Err error
}

func (e *TLSError) Error() string {
	return "redfish: TLS handshake with the BMC failed: " + e.Err.Error()
}

func (e *TLSError) Unwrap() error { return e.Err }

// CertificateRejected reports whether the handshake failed because obmd
// did not accept the BMC's certificate (as opposed to a protocol failure).
func (e *TLSError) CertificateRejected() bool {
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(e.Err, &ve) || errors.As(e.Err, &ua) || errors.As(e.Err, &he) || errors.As(e.Err, &ci)
}

// asTLSError wraps err in a *TLSError if it is a TLS failure.
func asTLSError(err error) error {
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	if errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) ||
		errors.As(err, &rh) || errors.As(err, &ae) {
		return &TLSError{Err: err}
	}
	return err
}

// RedirectError is a redirect the client refused. DSP0266 lets services
// redirect, but following one would send the session token or the Basic
// credentials to wherever it points: obmd talks to the address it was
// given, or to nobody.
type RedirectError struct {
	Method   string
	Resource string
	Status   int
	Location string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("redfish: %s %s: the BMC answered HTTP %d, a redirect to %q; redirects are refused (the credentials would follow it): register the node with the address the service really answers on",
		e.Method, e.Resource, e.Status, e.Location)
}

// BMCReason is what a tenant may be told (not the redirect's target).
func (e *RedirectError) BMCReason() string {
	return fmt.Sprintf("the BMC answered with a redirect (HTTP %d), which obmd refuses", e.Status)
}

// BodyTooLargeError is a response body over the client's limit.
type BodyTooLargeError struct {
	Method   string
	Resource string
	Limit    int64
}

func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("redfish: %s %s: the answer is larger than %d bytes; refused", e.Method, e.Resource, e.Limit)
}

// BMCReason is what a tenant may be told.
func (e *BodyTooLargeError) BMCReason() string {
	return fmt.Sprintf("the BMC's answer was larger than %d bytes and was refused", e.Limit)
}

// ResourceError is an answer that could not be read as the resource it
// should be.
type ResourceError struct {
	Method   string
	Resource string
	Err      error
}

func (e *ResourceError) Error() string {
	return fmt.Sprintf("redfish: %s %s: %v", e.Method, e.Resource, e.Err)
}

func (e *ResourceError) Unwrap() error { return e.Err }

// AmbiguousSystemError: the Systems collection has several members and the
// node does not say which one it is.
type AmbiguousSystemError struct {
	Members []string
}

func (e *AmbiguousSystemError) Error() string {
	return fmt.Sprintf("redfish: the BMC manages %d systems (%s): say which one this node is with the \"system\" info field (its Id or path)",
		len(e.Members), strings.Join(e.Members, ", "))
}

// NoSuchSystemError: the configured system is not a member of the Systems
// collection.
type NoSuchSystemError struct {
	Want    string
	Members []string
}

func (e *NoSuchSystemError) Error() string {
	return fmt.Sprintf("redfish: the BMC has no system %q (its systems: %s): fix the \"system\" info field",
		e.Want, strings.Join(e.Members, ", "))
}

// ServiceError is a service that lacks something obmd needs (no Systems
// collection, a system without a Reset action, no reset type that does
// what was asked).
type ServiceError struct {
	Problem string
}

func (e *ServiceError) Error() string { return "redfish: " + e.Problem }

// BMCReason is what a tenant may be told.
func (e *ServiceError) BMCReason() string { return "the BMC cannot do this: " + e.Problem }

// TaskError is an action the BMC accepted (202) whose task ended badly.
type TaskError struct {
	Resource string // the action
	State    TaskState
	Status   string
	Messages []Message
}

func (e *TaskError) Error() string {
	var msgs []string
	for _, m := range e.Messages {
		msgs = append(msgs, m.String())
	}
	s := fmt.Sprintf("redfish: POST %s: the BMC's task ended %s", e.Resource, e.State)
	if e.Status != "" {
		s += " (status " + e.Status + ")"
	}
	if len(msgs) > 0 {
		s += ": " + strings.Join(msgs, "; ")
	}
	return s
}

// BMCReason is what a tenant may be told.
func (e *TaskError) BMCReason() string {
	return fmt.Sprintf("the BMC accepted the request but its task ended %s", e.State)
}
