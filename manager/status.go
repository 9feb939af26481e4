package manager

import (
	"fmt"
	"log/slog"
	"time"
)

// NodeStatus is what the admin sees of one node (GET /node/{node_id}):
// everything obmd knows and learned about it, without the password or Kg.
// HIL does not use it; an operator reads it to see why a node misbehaves.
type NodeStatus struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// Info is the node's registration without secrets (the info's
	// LogValue, which never holds them).
	Info     any  `json:"info"`
	HasToken bool `json:"has_token"`
	// Driver is what the driver learned (negotiated cipher suite, quirks,
	// sessions); absent for drivers that report nothing.
	Driver    *DriverStatus `json:"driver,omitempty"`
	Console   ConsoleStatus `json:"console"`
	LastError *ErrorRecord  `json:"last_error,omitempty"`
	// Owner says which instance of a cluster drives the node's BMC; absent
	// for a single obmd.
	Owner *OwnerStatus `json:"owner,omitempty"`
}

// OwnerStatus is a node's owner in a cluster of obmd instances: the one
// instance that holds its BMC sessions and console, to which the others
// forward its calls.
type OwnerStatus struct {
	// Instance is the owner's advertised URL; empty while no instance
	// holds the node (its owner just died or is handing it over).
	Instance string `json:"instance"`
	// Self: the instance answering is the owner.
	Self  bool      `json:"self"`
	Since time.Time `json:"since,omitzero"`
}

// OwnerReporter is implemented by drivers that know the node's owner in a
// cluster (package cluster's).
type OwnerReporter interface {
	Owner() OwnerStatus
}

// DriverStatus is a driver's own report, for drivers that implement
// StatusReporter.
type DriverStatus struct {
	// CipherSuite is the RMCP+ cipher suite of the last session opened (0:
	// none opened yet).
	CipherSuite int `json:"cipher_suite,omitempty"`
	// Quirks are the BMC deviations in effect: configured by the operator
	// or detected on the wire.
	Quirks []QuirkStatus `json:"quirks,omitempty"`
	// Sessions describes the BMC sessions the driver holds.
	Sessions string `json:"sessions,omitempty"`
	// Details holds anything else a driver wants the operator to see.
	Details map[string]any `json:"details,omitempty"`
}

// QuirkStatus is one BMC deviation obmd works around for a node.
type QuirkStatus struct {
	Name string `json:"name"`
	// Source is "configured" (named in the node's info) or "detected"
	// (learned from the BMC's answers).
	Source string `json:"source"`
	// Evidence says what on the wire showed it, for detected quirks.
	Evidence string    `json:"evidence,omitempty"`
	Since    time.Time `json:"since,omitzero"`
}

// Quirk sources.
const (
	QuirkConfigured = "configured"
	QuirkDetected   = "detected"
)

// StatusReporter is implemented by drivers with something to report.
type StatusReporter interface {
	Status() DriverStatus
}

// ConsoleStatus is the state of a node's console hub.
type ConsoleStatus struct {
	// State is "closed" (nobody watching, nothing open), "opening", "open"
	// or "reconnecting" (the stream ended and is being reopened).
	State   string `json:"state"`
	Viewers int    `json:"viewers"`
	// Bytes is the console output read since the node was loaded.
	Bytes         uint64    `json:"bytes"`
	Reconnects    int64     `json:"reconnects"`
	LastReconnect time.Time `json:"last_reconnect,omitzero"`
}

// ErrorRecord is the last failed operation on a node, with the whole
// reason (which may name the BMC's address: admin only).
type ErrorRecord struct {
	Op    string    `json:"op"`
	Error string    `json:"error"`
	At    time.Time `json:"at"`
}

// Status reports one node to the admin; ErrNotFound if it is not
// registered.
func (m *Manager) Status(id string) (NodeStatus, error) {
	n := m.lookup(id)
	if n == nil {
		m.refresh(id)
		n = m.lookup(id)
	}
	if n == nil {
		return NodeStatus{}, &Error{Kind: ErrNotFound, Reason: fmt.Sprintf("node %q is not registered", id)}
	}
	st := NodeStatus{ID: n.id, Type: n.typ, Console: n.hub.status()}
	if n.info != nil {
		st.Info = publicValue(n.info.LogValue())
	}
	if r, ok := n.driver.(StatusReporter); ok {
		ds := r.Status()
		st.Driver = &ds
	}
	if r, ok := n.driver.(OwnerReporter); ok {
		o := r.Owner()
		st.Owner = &o
	}
	n.mu.Lock()
	st.HasToken = n.hasToken
	if n.lastErr.Op != "" {
		rec := n.lastErr
		st.LastError = &rec
	}
	n.mu.Unlock()
	return st, nil
}

// noteError records a failed operation for Status.
func (n *node) noteError(op string, err error) {
	n.mu.Lock()
	n.lastErr = ErrorRecord{Op: op, Error: err.Error(), At: time.Now().UTC()}
	n.mu.Unlock()
}

// publicValue turns a LogValue into JSON-friendly data: groups become
// objects.
func publicValue(v slog.Value) any {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		out := make(map[string]any, len(v.Group()))
		for _, a := range v.Group() {
			out[a.Key] = publicValue(a.Value)
		}
		return out
	case slog.KindDuration:
		return v.Duration().String()
	case slog.KindTime:
		return v.Time()
	}
	return v.Any()
}
