package rmcpplus

import (
	"context"
	"time"
)

// attemptTimeout is how long attempt k (0-based) of n waits for an answer
// before the request is retransmitted (or, after the last, given up).
//
// RMCP+ runs over UDP without acknowledgements of its own: the remote
// console retransmits a request that got no response. The waits grow
// linearly (a short first wait recovers a lost datagram quickly; later,
// longer waits give a busy BMC time) and add up to base*n, so the operator's
// "timeout per attempt x attempts" is exactly when a request fails:
//
//	n=4: 0.4, 0.8, 1.2, 1.6 x base    n=2: 0.67, 1.33 x base    n=1: 1 x base
func attemptTimeout(base time.Duration, k, n int) time.Duration {
	if n <= 1 {
		return base
	}
	return time.Duration(int64(base) * 2 * int64(k+1) / int64(n+1))
}

// awaited is one request that retransmission drives until it is answered:
// an IPMI request held in the request table (requestSlot), or a
// pre-session RMCP+ handshake message (handshakeWait). Both answer through
// a ready channel that the reading goroutine signals.
type awaited interface {
	// transmit sends the request, again on every attempt.
	transmit() error
	// answered runs when the ready channel fires: it reports whether the
	// awaited answer is in (and keeps it), or an error that ends the wait.
	answered() (bool, error)
	// describe names the request for a timeout error.
	describe() string
}

// retransmit is the one retransmission loop of a Session (IPMI v2.0
// section 13.6 leaves retries to the requester): it transmits r, waits
// for its answer on ready with attemptTimeout's schedule, and retransmits
// until attempts run out. timer is the caller's reusable timer, stopped
// or expired. It returns the number of transmissions made, so that the
// handshake can tell an answer to a retransmitted message (see the
// "handshake-resend" rule in policy.go), and ErrTimeout after the last
// attempt.
func (s *Session) retransmit(ctx context.Context, r awaited, ready <-chan struct{}, timer *time.Timer, base time.Duration, attempts int) (sent int, err error) {
	for k := range attempts {
		if err := r.transmit(); err != nil {
			return k + 1, err
		}
		timer.Reset(attemptTimeout(base, k, attempts))
		for waiting := true; waiting; {
			select {
			case <-ready:
				done, err := r.answered()
				if err != nil || done {
					return k + 1, err
				}
			case <-timer.C:
				waiting = false
			case <-ctx.Done():
				return k + 1, ctx.Err()
			case <-s.done:
				return k + 1, s.err
			}
		}
	}
	return attempts, &timeoutError{addr: s.addrText, what: r.describe(), attempts: attempts}
}
