package manager

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// DriverCounters are what drivers count for the daemon's metrics, shared by
// every node of a Manager (DriverEnv.Counters). Drivers only add to them.
type DriverCounters struct {
	// BMC sessions dialled, by result (DialResult).
	dials [numDialResults]atomic.Int64
	// SOLTakeovers counts stale SOL activations deactivated so that a
	// console could open (IPMI v2.0 section 24.1, completion code 80h).
	SOLTakeovers atomic.Int64
}

// DialResult is how one BMC session dial ended.
type DialResult int

// Dial results.
const (
	DialOK       DialResult = iota
	DialTimeout             // the BMC did not answer
	DialAuth                // the BMC refused the user name or password
	DialCanceled            // the caller gave up first
	DialError               // anything else
	numDialResults
)

var dialResultNames = [numDialResults]string{"ok", "timeout", "auth", "canceled", "error"}

func (r DialResult) String() string {
	if r < 0 || r >= numDialResults {
		return "error"
	}
	return dialResultNames[r]
}

// CountDial counts one dial with its result; a nil receiver counts nothing
// (a driver built outside a Manager).
func (c *DriverCounters) CountDial(r DialResult) {
	if c == nil || r < 0 || r >= numDialResults {
		return
	}
	c.dials[r].Add(1)
}

// Dials returns the dial counts by result name.
func (c *DriverCounters) Dials() map[string]int64 {
	out := make(map[string]int64, numDialResults)
	for r := range numDialResults {
		out[r.String()] = c.dials[r].Load()
	}
	return out
}

// OperationObserver is told of every BMC operation the Manager runs for a
// token holder, and of every console open: the operation's name ("power
// on", "open console", from a fixed set, never a node ID), how it ended
// (Outcome) and how long it took, the wait for the node's earlier
// operation included. It must not block.
type OperationObserver func(op, outcome string, took time.Duration)

// Outcome names how an operation ended, for metrics: "ok", "timeout",
// "bmc_error", "invalid", "unauthorized", "not_found", "unsupported",
// "canceled" or "internal".
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrBMC):
		return "bmc_error"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrUnsupported):
		return "unsupported"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "internal"
}

// observe reports one operation to the configured observer, if any.
func (m *Manager) observe(op string, err error, start time.Time) {
	if m.cfg.Observe != nil {
		m.cfg.Observe(op, Outcome(err), time.Since(start))
	}
}
