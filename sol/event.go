package sol

import "fmt"

// Event is something a SOL peer or the session did that the user of an
// Engine, a Console or a BMCEndpoint may want to act on. Events are
// informational: bytes are never carried in them.
type Event uint8

// Events. The Engine reports the protocol-level ones; the Console adds the
// lifecycle ones (Activated, DeactivatedByBMC, SessionLost).
const (
	// EventActivated: the Console activated the SOL payload.
	EventActivated Event = iota + 1
	// EventDeactivatedByBMC: the BMC ended SOL (deactivating status bit, or
	// the payload is no longer active when the Console checked).
	EventDeactivatedByBMC
	// EventSessionLost: the RMCP+ session ended or stopped answering.
	EventSessionLost
	// EventPeerNotAnswering: a data packet went unacknowledged through
	// every retransmission (IPMI v2.0 section 15.9 retry rules). The
	// Engine keeps retransmitting; its user decides whether to give up.
	EventPeerNotAnswering

	// Status from the BMC (IPMI v2.0 section 15.9, Table 15-3), reported on
	// the console side.
	EventBreakDetected       // the system sent a serial break
	EventTransmitOverrun     // characters from the system were lost at the BMC
	EventTransferUnavailable // character transfer became unavailable
	EventTransferAvailable   // character transfer became available again
	EventDeactivating        // the BMC set "SOL deactivating"

	// Operations from the remote console (IPMI v2.0 section 15.9, Table
	// 15-2), reported on the BMC side.
	EventBreakRequested // generate a break on the system serial port
	EventRing           // assert ring indicator / wake on ring
	EventFlushInbound   // discard data queued towards the system (the engine has already forgotten it)
	EventFlushOutbound  // data queued towards the console was discarded
	EventCTSPause       // deassert CTS: the system must stop sending
	EventCTSResume      // reassert CTS
	EventDCDDSRDrop     // deassert DCD/DSR
	EventDCDDSRRestore  // reassert DCD/DSR

	// Adaptations to real BMCs (BMC-QUIRKS.md), reported by the Engine.
	EventAssumedDelivered // a packet unacknowledged through Config.AssumeDeliveredAfter resends of a live peer counted as delivered
	EventSeqRestart       // the peer restarted its sequence numbers; the packet was taken as new data
	EventProbeUnanswered  // nothing came from the peer within a Probe's time
)

var eventNames = map[Event]string{
	EventActivated:           "SOL payload activated",
	EventDeactivatedByBMC:    "SOL deactivated by the BMC",
	EventSessionLost:         "IPMI session lost",
	EventPeerNotAnswering:    "SOL peer not answering",
	EventBreakDetected:       "break detected on the system serial port",
	EventTransmitOverrun:     "BMC lost characters from the system (transmit overrun)",
	EventTransferUnavailable: "character transfer unavailable",
	EventTransferAvailable:   "character transfer available",
	EventDeactivating:        "BMC is deactivating SOL",
	EventBreakRequested:      "console requested a break",
	EventRing:                "console asserted ring/wake-on-ring",
	EventFlushInbound:        "console flushed data queued towards the system",
	EventFlushOutbound:       "console flushed data queued towards it",
	EventCTSPause:            "console paused the system (CTS deasserted)",
	EventCTSResume:           "console resumed the system (CTS asserted)",
	EventDCDDSRDrop:          "console dropped DCD/DSR",
	EventDCDDSRRestore:       "console restored DCD/DSR",
	EventAssumedDelivered:    "packet counted delivered: the live peer ignores retransmissions",
	EventSeqRestart:          "peer restarted its SOL sequence numbers",
	EventProbeUnanswered:     "no SOL packet from the peer in answer to a probe",
}

func (e Event) String() string {
	if s, ok := eventNames[e]; ok {
		return s
	}
	return fmt.Sprintf("sol event %d", uint8(e))
}
