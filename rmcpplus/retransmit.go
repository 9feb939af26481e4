package rmcpplus

import "time"

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
