package rmcpplus

import "sync/atomic"

// Process-wide totals over every client Session, for the daemon's metrics.
// Each Session keeps its own counts too (tests read those); these only
// add them up, so that sessions that come and go are not forgotten.
var clientTotals struct {
	open              atomic.Int64
	rejectedSeq       atomic.Uint64
	rejectedIntegrity atomic.Uint64
	rejectedOversize  atomic.Uint64
}

// ClientCounters is a snapshot of the totals over every client Session of
// the process.
type ClientCounters struct {
	// SessionsOpen is the number of established sessions not yet ended.
	SessionsOpen int64
	// Inbound session packets dropped: outside the sequence window (a
	// duplicate or replay, IPMI v2.0 section 6.12.13), failing the
	// integrity check or decryption (section 13.28), or too long for the
	// read buffer.
	RejectedSequence  uint64
	RejectedIntegrity uint64
	RejectedOversize  uint64
}

// Counters returns the process-wide client session totals.
func Counters() ClientCounters {
	return ClientCounters{
		SessionsOpen:      clientTotals.open.Load(),
		RejectedSequence:  clientTotals.rejectedSeq.Load(),
		RejectedIntegrity: clientTotals.rejectedIntegrity.Load(),
		RejectedOversize:  clientTotals.rejectedOversize.Load(),
	}
}

// countOpen counts s as open once its handshake succeeded; end uncounts it.
// Whichever of the two sees the session both counted and ended uncounts
// it, so a session that ends during Dial is not left counted.
func (s *Session) countOpen() {
	clientTotals.open.Add(1)
	s.counted.Store(true)
	select {
	case <-s.done:
		s.uncount()
	default:
	}
}

func (s *Session) uncount() {
	if s.counted.Swap(false) {
		clientTotals.open.Add(-1)
	}
}
