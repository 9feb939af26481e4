package sol

import "sync/atomic"

// Process-wide totals over every client Console, for the daemon's metrics.
var consoleTotals struct {
	retransmits atomic.Uint64
}

// ConsoleCounters is a snapshot of the totals over every client Console of
// the process.
type ConsoleCounters struct {
	// Retransmits counts SOL data packets the console side resent because
	// the BMC did not acknowledge them within the retry interval (IPMI
	// v2.0 section 15.9).
	Retransmits uint64
}

// Counters returns the process-wide client console totals.
func Counters() ConsoleCounters {
	return ConsoleCounters{Retransmits: consoleTotals.retransmits.Load()}
}
