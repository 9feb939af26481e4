package sol

// Adaptation is something a Console did differently from the
// specification because its BMC bends it (BMC-QUIRKS.md, "Serial over
// LAN"), with the evidence on the wire that made it do so. A Console
// learns them by itself; its user may show them to an operator, and pass
// what helps back in the next ConsoleOptions (Aux).
type Adaptation struct {
	Quirk    string // one of the Quirk* names
	Evidence string // what the BMC did, in words an operator can check
}

// The adaptations a Console reports. The names are BMC-QUIRKS.md's rows
// (and fakebmc's -quirks names where one reproduces the row).
const (
	// Activate Payload named a port other than the session's.
	QuirkSOLPort = "solport"
	// Activate Payload reported a payload size SOL cannot have.
	QuirkSOLPayloadSize = "solpayloadsize"
	// Activate Payload refused the default auxiliary data (the CTS/DCD/DSR
	// handshake bit); an alternative was accepted.
	QuirkCTSAux = "cts-aux"
	// Deactivate Payload answered but the instance stayed active; SOL
	// Enable was toggled.
	QuirkDeactivateIgnored = "deactivate-ignored"
	// The instance was active for another session and was taken over.
	QuirkStaleActivation = "stale-activation"
	// The BMC said the instance was not ours while it answered our SOL
	// packets (Get Payload Activation Status or Instance Info).
	QuirkActivationStatusLies = "activation-status-lies"
	// A SOL packet the live BMC never acknowledged was counted delivered
	// (the BMC drops retransmissions).
	QuirkStrictSeq = "sol-strict-seq"
	// The BMC restarted its SOL sequence numbers.
	QuirkSeqRestart = "solseq-restart"
	// SOL stopped answering on a live session: the BMC gave the instance
	// to another session without a word.
	QuirkSOLStolen = "sol-stolen"
)
