package rmcpplus

// seqWindow is the inbound session sequence number check of IPMI v2.0
// section 6.12.13: a receiver accepts a window of recent sequence numbers so
// that reordered packets still get through, and rejects any number it has
// already accepted (a replay or a duplicate) and any number too far behind
// the highest one accepted. RMCP+ keeps one window for authenticated and one
// for unauthenticated packets.
//
// The zero value is ready: no packet accepted yet. A seqWindow is not safe
// for concurrent use; its owner serialises access.
type seqWindow struct {
	highest uint32 // highest sequence number accepted; 0 = none yet
	// seen has bit i set when highest-i has been accepted (bit 0 = highest).
	seen uint64
}

// seqWindowSize is how far behind the highest accepted number a packet may
// be and still be accepted (if not seen before): a packet overtaken by up to
// seqWindowSize-1 later ones gets through, one overtaken by more is dropped
// (the sender retransmits it under a new number if it still matters).
//
// The bound is what keeps Serial Over LAN sound. A SOL sender numbers its
// data packets 1..15 and repeats a number only on retransmission (IPMI v2.0
// section 15.9), so a receiver can tell a late copy from a new packet only
// while the sender has moved at most 7 numbers past it: package sol's engine
// takes the 7 numbers behind the last one it saw as late copies and the 7
// ahead as new. Every new SOL packet costs the sender at least one session
// sequence number, so a packet overtaken by at most 7 later ones is at most
// 7 SOL numbers late. With a wider window a late retransmission overtaken by
// 8 or more packets reached SOL looking new: its data was delivered twice
// and the engine, now numbering from the stale packet, ignored the peer's
// real packets as late copies until the console gave up. (FreeIPMI's
// default window is also 8.)
const seqWindowSize = 8

// check reports whether seq would be accepted, without recording it. Call it
// before the (costly) integrity check, then accept after the check passed.
func (w *seqWindow) check(seq uint32) bool {
	if seq == 0 {
		// Sequence number 0 is for packets outside a session only.
		return false
	}
	ahead := seq - w.highest
	if ahead != 0 && ahead < 1<<31 {
		return true // newer than anything seen
	}
	behind := w.highest - seq
	if behind >= seqWindowSize {
		return false // too old
	}
	return w.seen&(1<<behind) == 0
}

// accept records seq if check(seq) holds and reports whether it did.
func (w *seqWindow) accept(seq uint32) bool {
	if !w.check(seq) {
		return false
	}
	ahead := seq - w.highest
	if ahead != 0 && ahead < 1<<31 {
		if ahead >= 64 {
			w.seen = 0
		} else {
			w.seen <<= ahead
		}
		w.seen |= 1
		w.highest = seq
		return true
	}
	w.seen |= 1 << (w.highest - seq)
	return true
}
