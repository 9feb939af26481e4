package sol

import (
	"time"
)

// Role says which end of SOL an Engine plays. It decides how the
// operation/status byte is read and written (IPMI v2.0 section 15.9: Table
// 15-2 from the remote console, Table 15-3 from the BMC).
type Role uint8

// Roles.
const (
	ConsoleSide Role = iota + 1 // the remote console (obmd's client)
	BMCSide                     // the BMC (fakebmc)
)

func (r Role) String() string {
	switch r {
	case ConsoleSide:
		return "console"
	case BMCSide:
		return "bmc"
	}
	return "role(?)"
}

// signalBits are the operation/status bits a user may set: all but NACK,
// which the Engine owns, and the reserved bit 7.
const signalBits Op = 0x7F &^ OpNACK

// Engine defaults, used for zero Config fields.
const (
	DefaultRetryInterval = 500 * time.Millisecond
	DefaultRetries       = 6
	DefaultReceiveBuffer = 64 << 10
	// DefaultAssumeDeliveredAfter is Config.AssumeDeliveredAfter's
	// console-side default: two resends (BMC-QUIRKS.md). A packet whose
	// first copy and two resends all vanish while the BMC keeps talking is
	// far likelier to have been taken silently than lost three times.
	DefaultAssumeDeliveredAfter = 2
	// assumeDeliveredMinWait is the least time a packet goes unanswered
	// before AssumeDeliveredAfter may count it delivered. At the default
	// RetryInterval two resends take longer anyway.
	assumeDeliveredMinWait = 250 * time.Millisecond
)

// Config configures an Engine.
type Config struct {
	Role Role
	// MaxData is the most characters the peer accepts in one packet: its
	// maximum payload size from Activate Payload minus the 4-byte header
	// (see MaxDataForPayloadSize). Zero or out of range means
	// MaxCharacters.
	MaxData int
	// RetryInterval is how long a data packet waits for its ACK before it
	// is sent again, and how long a NACKed sender waits before offering
	// the data again.
	RetryInterval time.Duration
	// Retries is how many retransmissions of one packet go unanswered
	// before EventPeerNotAnswering (zero: report after the first
	// RetryInterval without an answer; negative means zero).
	Retries int
	// ReceiveBuffer bounds the characters delivered to the user and not yet
	// released with Consume. A full buffer NACKs the peer instead of
	// dropping anything.
	ReceiveBuffer int
	// FirstSeq is the sequence number of the first data packet (1..15;
	// anything else means 1).
	FirstSeq uint8
	// AcceptMax, if positive, accepts at most this many characters of each
	// data packet however much room there is: the rest is refused with a
	// partial accept (IPMI v2.0 section 15.9, "accepted character count"),
	// as BMCs with small serial buffers do. fakebmc uses it to test a
	// console against such a BMC; a real client leaves it zero.
	AcceptMax int
	// AssumeDeliveredAfter: a data packet still unacknowledged after this
	// many retransmissions counts as delivered if the peer has plainly been
	// alive since it was first sent (a SOL packet came from it, or the
	// shell reported life with Alive). Some BMCs never acknowledge a
	// retransmission: OpenBMC's phosphor-net-ipmid drops any packet whose
	// number is not the next one expected, so when its ACK of our packet
	// is lost every copy we send after it goes unanswered although the
	// first was taken (BMC-QUIRKS.md "strict SOL seq"). Zero means
	// DefaultAssumeDeliveredAfter on the console side and never on the
	// BMC side (fakebmc never drops console output); negative, never.
	AssumeDeliveredAfter int
}

// MaxDataForPayloadSize turns a payload size from the Activate Payload
// response (IPMI v2.0 section 24.1: "inbound/outbound payload size", the
// whole SOL payload) into the characters per packet: minus the 4-byte SOL
// header, at most MaxCharacters, at least 1.
func MaxDataForPayloadSize(size int) int {
	n := size - HeaderLen
	switch {
	case n > MaxCharacters:
		return MaxCharacters
	case n < 1:
		return 1
	}
	return n
}

// Output is what the user of an Engine must do after a call: send the
// packets in order, hand Deliver to the local reader, act on Events (before
// Deliver: EventFlushInbound discards what was buffered before the packet
// that carried it), and call Tick at Deadline (zero: no timer needed).
//
// Deliver may alias the Data of the packet passed to Receive. Packets in
// Send own their Data; the Engine never changes it afterwards.
//
// The methods returning an Output allocate its slices afresh. A shell that
// handles every packet can pass one Output of its own to ReceiveTo and
// ConsumeTo instead: they reuse its slices, so a received packet and its
// ACK cost no allocation.
type Output struct {
	Send     []Packet
	Deliver  []byte
	Events   []Event
	Deadline time.Time
}

// reset empties o for reuse, keeping the capacity of its slices.
func (o *Output) reset() {
	o.Send = o.Send[:0]
	o.Deliver = nil
	o.Events = o.Events[:0]
	o.Deadline = time.Time{}
}

// Engine is the SOL sequencing state machine of IPMI v2.0 section 15.9 for
// one direction pair (our data to the peer, the peer's data to us). It has
// no sockets, goroutines or clock: every input carries the time, every
// output is returned. It is not safe for concurrent use; its shell
// serialises calls.
//
// Sending: one data packet is outstanding at a time. Queued bytes are
// batched up to MaxData per packet under sequence numbers 1..15 (wrapping
// to 1). A packet is retransmitted unchanged (same sequence number, same
// bytes) every RetryInterval until the peer ACKs or NACKs it. The Engine
// never grows a retransmission: an ACK cannot say which copy it answers, so
// a grown copy would make a short ACK ambiguous between "partial accept"
// and "ACK of the shorter copy". A partial accept sends the rest under a
// new sequence number; a NACK pauses sending until the peer ACKs the
// NACKed packet again or RetryInterval passes, then offers the rest under
// a new sequence number.
//
// Receiving: a data packet with a new sequence number is delivered as far
// as the receive buffer allows and ACKed with the count accepted (NACKed
// with the NACK bit when the buffer is full). A copy of the last packet is
// ACKed again; if everything of the earlier copies was accepted and the
// copy is longer, only the new bytes are delivered. A packet whose
// sequence number lies up to 7 behind the last one (a late duplicate after
// wrap-around) is ignored; the session layer must drop anything later than
// that (see seqBehind). Sequence number 0 is an ACK-only packet and is
// never ACKed.
//
// Real BMCs bend these rules (BMC-QUIRKS.md), and the Engine adapts from
// the evidence alone: a packet under an old number whose bytes differ from
// those received under it is new data from a peer that restarted its
// numbering (EventSeqRestart); a packet the live peer never answers after
// AssumeDeliveredAfter resends was taken by a strict peer
// (EventAssumedDelivered); Probe asks a quiet peer for a SOL packet
// (EventProbeUnanswered).
type Engine struct {
	cfg Config

	// Sending side.
	queue      ring // written, not yet packetised; grows with what is pending
	nextSeq    uint8
	outSeq     uint8 // outstanding data packet; 0 = none
	outData    []byte
	outOps     Op // one-shot operations carried by the outstanding packet
	outDue     time.Time
	outFirst   time.Time // first transmission of the outstanding packet
	outSends   int       // transmissions of the outstanding packet so far
	resends    uint64    // retransmissions over the Engine's life
	reacks     bool      // an ACK came for a packet after it was retransmitted
	outIsProbe bool      // the outstanding packet is an empty one Probe sent
	probeSig   bool      // the pending signal is Probe's
	silent     bool      // EventPeerNotAnswering reported for the outstanding packet
	paused     bool      // the peer NACKed pausedSeq: wait for its ACK or pauseUntil
	pausedSeq  uint8
	pauseUntil time.Time
	signal     bool // a data packet carrying pendingOps is due (it may be empty)
	pendingOps Op   // one-shot operations for that packet
	opsAfter   int  // queued bytes that must go before it
	levels     Op   // level bits sent on every packet
	closed     bool

	// Receiving side.
	lastSeq      uint8 // last new data packet; 0 = none yet
	lastAccepted int   // characters of lastSeq accepted
	lastPartial  bool  // some copy of lastSeq was not accepted in full
	lastNACKed   bool  // our answer for lastSeq carries the NACK bit
	ackOwed      bool  // an ACK for lastSeq has not been sent since it was due
	buffered     int   // delivered, not yet consumed
	peerLevels   Op    // level bits last seen from the peer
	deactivating bool  // EventDeactivating already reported
	// recent holds, per sequence number, the start of the data last
	// received under it, to tell a late copy from a peer that restarted
	// its numbering (see isCopy).
	recent [16]seqRecord

	// Signs of life.
	heardAt  time.Time // last packet from the peer
	aliveAt  time.Time // last Alive
	probeDue time.Time // a Probe awaits a packet from the peer by then; zero: none
}

// seqRecord is what an Engine remembers of the data packet last received
// under one sequence number: its length and first bytes.
type seqRecord struct {
	valid bool
	n     int
	head  [seqRecordHead]byte
}

// seqRecordHead is how many leading bytes a seqRecord keeps: enough that
// unrelated console output (a restarted peer's) almost never matches, small
// enough to cost nothing per packet.
const seqRecordHead = 16

func (r *seqRecord) set(data []byte) {
	r.valid, r.n = true, len(data)
	copy(r.head[:], data)
}

// isCopy reports whether data can be a copy of the packet recorded under
// its number: the bytes both hold agree (a sender may grow a retransmission
// but never changes what it sent). Nothing recorded counts as a copy, the
// cautious answer.
func (r *seqRecord) isCopy(data []byte) bool {
	if !r.valid {
		return true
	}
	n := min(len(data), r.n, seqRecordHead)
	return string(data[:n]) == string(r.head[:n])
}

// NewEngine returns an Engine with cfg's zero fields defaulted.
func NewEngine(cfg Config) *Engine {
	if cfg.Role != BMCSide {
		cfg.Role = ConsoleSide
	}
	if cfg.MaxData <= 0 || cfg.MaxData > MaxCharacters {
		cfg.MaxData = MaxCharacters
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.ReceiveBuffer <= 0 {
		cfg.ReceiveBuffer = DefaultReceiveBuffer
	}
	if cfg.FirstSeq < 1 || cfg.FirstSeq > 15 {
		cfg.FirstSeq = 1
	}
	if cfg.AssumeDeliveredAfter == 0 && cfg.Role == ConsoleSide {
		cfg.AssumeDeliveredAfter = DefaultAssumeDeliveredAfter
	}
	return &Engine{cfg: cfg, nextSeq: cfg.FirstSeq}
}

// Config returns the Engine's configuration with defaults applied.
func (e *Engine) Config() Config { return e.cfg }

// nextSeqAfter steps a sequence number through 1..15, wrapping to 1 (IPMI
// v2.0 section 15.9: 0 is reserved for ACK-only packets).
func nextSeqAfter(s uint8) uint8 {
	if s >= 15 {
		return 1
	}
	return s + 1
}

// seqBehind reports whether s lies in the half of the sequence space behind
// last, i.e. is a late copy of an old packet rather than a new one. With one
// packet outstanding a sender is never more than a few numbers ahead of
// what the receiver last saw, so the 7 numbers after last count as new and
// the 7 before it as old.
//
// Fifteen numbers cannot say more: a copy that arrives after the sender has
// moved 8 or more numbers past it looks new. The session layer must keep
// such copies away, and rmcpplus does: its sequence window drops a packet
// overtaken by 8 or more later ones (rmcpplus seqWindowSize), and each new
// SOL packet takes at least one session sequence number. The two bounds
// must stay in step.
func seqBehind(s, last uint8) bool {
	d := (int(s) - int(last) + 15) % 15
	return d > 7
}

// Pending is the number of bytes written and not yet acknowledged by the
// peer (queued plus in flight). Shells use it to block writers.
func (e *Engine) Pending() int { return e.queue.len() + len(e.outData) }

// Buffered is the number of bytes delivered and not yet consumed.
func (e *Engine) Buffered() int { return e.buffered }

// Retransmissions is how many times Tick has resent an unacknowledged
// data packet over the Engine's life.
func (e *Engine) Retransmissions() uint64 { return e.resends }

// Closed reports whether Close was called.
func (e *Engine) Closed() bool { return e.closed }

// Write queues data for the peer. The Engine copies it.
func (e *Engine) Write(now time.Time, data []byte) Output {
	var o Output
	if e.closed {
		return o
	}
	e.queue.write(data)
	e.finish(now, &o)
	return o
}

// DropQueued discards the bytes written and not yet put in a packet, and
// an operation (a break) not yet sent, and returns how many bytes it
// dropped: the packet in flight, if any, still goes. A console drops a
// tenant's typed-ahead input this way when the tenancy ends, so that none
// of it reaches the machine afterwards.
func (e *Engine) DropQueued() int {
	n := e.queue.len()
	e.queue.reset()
	e.signal, e.pendingOps, e.opsAfter = false, 0, 0
	return n
}

// Break signals a serial break to the peer: from the console the "generate
// break" operation, from the BMC the "break detected" status. It travels in
// a data packet (so it is acknowledged and retransmitted like data), after
// every byte already written.
func (e *Engine) Break(now time.Time) Output {
	if e.cfg.Role == BMCSide {
		return e.Signal(now, StatusBreakDetected)
	}
	return e.Signal(now, OpGenerateBreak)
}

// Signal sends one-shot operation or status bits (for example
// OpFlushOutbound, or StatusTransmitOverrun from the BMC) in the next data
// packet after every byte already written. Signal(now, 0) sends an empty
// data packet that the peer must ACK: the Console uses it first so that a
// BMC remembering a sequence number from an earlier session (ipmi_sim does)
// cannot mistake our first data for a duplicate, and as a SOL-level probe.
func (e *Engine) Signal(now time.Time, ops Op) Output {
	var o Output
	if e.closed {
		return o
	}
	if !e.signal {
		e.signal = true
		e.opsAfter = e.queue.len()
	}
	e.pendingOps |= ops & signalBits
	e.finish(now, &o)
	return o
}

// SetLevel sets or clears level bits sent on every packet from now on (the
// console's OpCTSPause and OpDropDCDDSR, the BMC's
// StatusTransferUnavailable). A change travels at once in a data packet.
func (e *Engine) SetLevel(now time.Time, bits Op, on bool) Output {
	bits &= signalBits
	old := e.levels
	if on {
		e.levels |= bits
	} else {
		e.levels &^= bits
	}
	if e.levels == old {
		var o Output
		if !e.closed {
			o.Deadline = e.deadline()
		}
		return o
	}
	return e.Signal(now, 0)
}

// Consume tells the Engine that the user took n delivered bytes out of the
// receive buffer. If the Engine had NACKed the peer for want of room and
// enough room is free again, it ACKs the NACKed packet (without the NACK
// bit) so the peer resumes at once instead of after its retry interval.
func (e *Engine) Consume(now time.Time, n int) Output {
	var o Output
	e.ConsumeTo(&o, now, n)
	return o
}

// ConsumeTo is Consume writing into *o, reusing its slices (see Output).
func (e *Engine) ConsumeTo(o *Output, now time.Time, n int) {
	o.reset()
	if e.closed {
		return
	}
	e.buffered -= n
	if e.buffered < 0 {
		e.buffered = 0
	}
	if e.lastNACKed && e.room() >= e.resumeRoom() {
		e.lastNACKed = false
		e.ackOwed = true
	}
	e.finish(now, o)
}

// resumeRoom is the free space that ends a NACK: a full packet's worth, or
// half the buffer when the buffer is small.
func (e *Engine) resumeRoom() int {
	return min(e.cfg.MaxData, MaxCharacters, (e.cfg.ReceiveBuffer+1)/2)
}

func (e *Engine) room() int { return e.cfg.ReceiveBuffer - e.buffered }

// Tick runs the timers: retransmission of the outstanding packet, and the
// end of a NACK pause.
func (e *Engine) Tick(now time.Time) Output {
	var o Output
	if e.closed {
		return o
	}
	if e.outSeq != 0 && !now.Before(e.outDue) {
		if e.assumeDelivered(now) {
			// Strict SOL sequencing (see Config.AssumeDeliveredAfter):
			// the peer is alive and ignores our copies, so it took the
			// first one.
			if !e.outIsProbe {
				// An unanswered probe proves nothing about the peer's
				// sequencing (a silently stolen SOL instance answers no
				// packet at all): only data is worth reporting.
				o.Events = append(o.Events, EventAssumedDelivered)
			}
			e.outSeq, e.outData, e.outOps, e.outSends = 0, nil, 0, 0
			e.silent, e.outIsProbe = false, false
			if !e.probeDue.IsZero() && e.queue.len() == 0 && !e.signal {
				// A probe is still waiting for an answer: ask again
				// under the next number, which a strict peer takes.
				e.signal, e.probeSig, e.opsAfter = true, true, 0
			}
		} else {
			// A probe's empty packet is not data: Probe's deadline, not
			// the retry count, says when its silence matters.
			if e.outSends > e.cfg.Retries && !e.silent && !e.outIsProbe {
				e.silent = true
				o.Events = append(o.Events, EventPeerNotAnswering)
			}
			e.resends++
			e.transmit(now, &o)
		}
	}
	if e.paused && !now.Before(e.pauseUntil) {
		e.paused = false
	}
	if !e.probeDue.IsZero() && !now.Before(e.probeDue) {
		e.probeDue = time.Time{}
		o.Events = append(o.Events, EventProbeUnanswered)
	}
	e.finish(now, &o)
	return o
}

// assumeDelivered reports whether the outstanding packet, due for another
// retransmission, has gone unanswered through AssumeDeliveredAfter
// retransmissions and for at least assumeDeliveredMinWait while the peer
// showed life after its first copy left, and the peer has never answered
// a retransmission. The wait keeps a fast RetryInterval from taking an
// acknowledgement merely delayed (a busy machine, a slow BMC) for a
// strict peer's silence, which would lose the packet's unaccepted part. The last condition
// keeps the rule from losing data on a lossy link: a BMC that re-ACKs
// copies (as the specification asks) shows it the first time a copy is
// needed, and from then on a packet is retransmitted until it is answered
// or Retries run out, as before. A strict BMC never shows it.
func (e *Engine) assumeDelivered(now time.Time) bool {
	n := e.cfg.AssumeDeliveredAfter
	if n <= 0 || e.outSends-1 < n || e.reacks || now.Sub(e.outFirst) < assumeDeliveredMinWait {
		return false
	}
	return e.AliveSince(e.outFirst)
}

// Alive tells the Engine that the peer showed life outside SOL (it
// answered an IPMI request on the session). It feeds the
// AssumeDeliveredAfter rule; it sends nothing.
func (e *Engine) Alive(now time.Time) {
	if now.After(e.aliveAt) {
		e.aliveAt = now
	}
}

// LastHeard is when the last packet from the peer arrived (zero: none
// yet).
func (e *Engine) LastHeard() time.Time { return e.heardAt }

// AliveSince reports whether the peer showed life (a packet, or Alive) at
// or after t.
func (e *Engine) AliveSince(t time.Time) bool {
	return !e.heardAt.Before(t) || !e.aliveAt.Before(t)
}

// Probe asks the peer for a sign of life on SOL itself: unless a data
// packet is outstanding (which the peer must answer anyway) or the peer
// has paused us, it sends an empty data packet, which the peer must ACK.
// If no packet at all arrives from the peer by now+within, Tick reports
// EventProbeUnanswered, once. A BMC that handed the SOL instance to
// another session without a word (BMC-QUIRKS.md "SOL stolen silently")
// answers IPMI requests as before but no SOL packet of ours.
func (e *Engine) Probe(now time.Time, within time.Duration) Output {
	var o Output
	if e.closed {
		return o
	}
	if e.outSeq == 0 && !e.paused && e.queue.len() == 0 && !e.signal {
		e.signal, e.probeSig, e.opsAfter = true, true, 0
	}
	if e.probeDue.IsZero() {
		e.probeDue = now.Add(within)
	}
	e.finish(now, &o)
	return o
}

// RestartNumbering makes the next new data packet take sequence number 1
// again, as some BMCs do when the host power-cycles (BMC-QUIRKS.md "seq
// restart after host reboot"; fakebmc reproduces it with this). The
// packet outstanding, if any, keeps its number.
func (e *Engine) RestartNumbering() { e.nextSeq = 1 }

// Close ends the Engine. On the BMC side it sends the "SOL deactivating"
// status once (IPMI v2.0 section 15.9, Table 15-3) in an ACK-only packet;
// the console side sends nothing (it deactivates with the Deactivate
// Payload command). Every later call returns an empty Output.
func (e *Engine) Close(now time.Time) Output {
	var o Output
	if e.closed {
		return o
	}
	e.closed = true
	if e.cfg.Role == BMCSide {
		p := Packet{Op: e.levels | StatusDeactivating}
		if e.lastSeq != 0 {
			p.AckSeq, p.Accepted = e.lastSeq, uint8(e.lastAccepted)
			if e.lastNACKed {
				p.Op |= OpNACK
			}
		}
		o.Send = append(o.Send, p)
	}
	return o
}

// Receive handles one packet from the peer.
func (e *Engine) Receive(now time.Time, p Packet) Output {
	var o Output
	e.ReceiveTo(&o, now, p)
	return o
}

// ReceiveTo is Receive writing into *o, reusing its slices (see Output).
func (e *Engine) ReceiveTo(o *Output, now time.Time, p Packet) {
	o.reset()
	if e.closed {
		return
	}
	p.Seq &= 0x0F
	p.AckSeq &= 0x0F
	e.heardAt = now
	e.probeDue = time.Time{} // any packet answers a probe
	if p.Seq != 0 {
		old := e.lastSeq != 0 && (p.Seq == e.lastSeq || seqBehind(p.Seq, e.lastSeq))
		switch {
		case old && !e.recent[p.Seq].isCopy(p.Data):
			// An old number carrying other bytes than we took under it:
			// the peer restarted its numbering (a BMC does when the host
			// power-cycles), so this is new data. Waiting for the number
			// to come round again would lose up to 7 packets of output.
			o.Events = append(o.Events, EventSeqRestart)
			e.receiveNew(p, o)
		case old && p.Seq != e.lastSeq:
			// A late copy of a packet we have moved past: its data, its
			// operations and its ACK are all stale.
			e.finish(now, o)
			return
		case old:
			e.receiveCopy(p, o)
		default:
			e.receiveNew(p, o)
		}
	} else {
		e.peerOps(p.Op, true, o)
	}
	if p.AckSeq != 0 {
		e.receiveAck(now, p)
	}
	e.finish(now, o)
}

// receiveNew accepts a data packet with a new sequence number.
func (e *Engine) receiveNew(p Packet, o *Output) {
	e.lastSeq = p.Seq
	e.recent[p.Seq].set(p.Data)
	e.lastAccepted = 0
	e.lastPartial = false
	// Operations act before the characters of the same packet (a flush
	// discards what came earlier, not this packet's data).
	e.peerOps(p.Op, true, o)
	e.accept(p.Data, o)
	e.ackOwed = true
}

// receiveCopy answers a retransmission of the last packet: ACK it again and
// deliver only characters beyond what earlier copies delivered, and only if
// every earlier copy was accepted in full (after a partial accept the
// sender resends the rest under a new sequence number, so delivering it
// here would duplicate it).
func (e *Engine) receiveCopy(p Packet, o *Output) {
	e.peerOps(p.Op, false, o)
	data := p.Data
	if len(data) > MaxCharacters {
		data = data[:MaxCharacters]
	}
	if !e.lastPartial && len(data) > e.lastAccepted {
		e.accept(data[e.lastAccepted:], o)
	} else if e.lastPartial {
		e.lastNACKed = e.room() == 0
	}
	e.ackOwed = true
}

// accept delivers as much of data as the receive buffer holds and records
// the answer: partial when something was left, NACK when the buffer is full
// and something was left.
func (e *Engine) accept(data []byte, o *Output) {
	if n := e.lastAccepted + len(data); n > MaxCharacters {
		data = data[:MaxCharacters-e.lastAccepted]
	}
	k := min(len(data), e.room())
	if e.cfg.AcceptMax > 0 {
		k = min(k, max(e.cfg.AcceptMax-e.lastAccepted, 0))
	}
	if k > 0 {
		o.Deliver = data[:k]
		e.buffered += k
		e.lastAccepted += k
	}
	if k < len(data) {
		e.lastPartial = true
	}
	e.lastNACKed = k < len(data) && e.room() == 0
}

// peerOps turns the peer's operation/status bits into events. Level bits are
// compared with the last seen levels; one-shot bits count only on a packet
// seen for the first time (fresh), so a retransmission does not repeat a
// break or a flush.
func (e *Engine) peerOps(op Op, fresh bool, o *Output) {
	if e.cfg.Role == ConsoleSide {
		// The peer is the BMC: Table 15-3.
		e.levelEvent(op, StatusTransferUnavailable, EventTransferUnavailable, EventTransferAvailable, o)
		if op&StatusDeactivating != 0 && !e.deactivating {
			e.deactivating = true
			o.Events = append(o.Events, EventDeactivating)
		}
		if fresh && op&StatusBreakDetected != 0 {
			o.Events = append(o.Events, EventBreakDetected)
		}
		if fresh && op&StatusTransmitOverrun != 0 {
			o.Events = append(o.Events, EventTransmitOverrun)
		}
		return
	}
	// The peer is the remote console: Table 15-2.
	e.levelEvent(op, OpCTSPause, EventCTSPause, EventCTSResume, o)
	e.levelEvent(op, OpDropDCDDSR, EventDCDDSRDrop, EventDCDDSRRestore, o)
	if !fresh {
		return
	}
	if op&OpFlushInbound != 0 {
		// Discard what the system has not read yet: the user drops its
		// buffer on the event, the Engine forgets the count.
		e.buffered = 0
		o.Events = append(o.Events, EventFlushInbound)
	}
	if op&OpFlushOutbound != 0 {
		e.queue.reset()
		e.opsAfter = 0
		o.Events = append(o.Events, EventFlushOutbound)
	}
	if op&OpGenerateBreak != 0 {
		o.Events = append(o.Events, EventBreakRequested)
	}
	if op&OpRingWOR != 0 {
		o.Events = append(o.Events, EventRing)
	}
}

func (e *Engine) levelEvent(op, bit Op, on, off Event, o *Output) {
	was, is := e.peerLevels&bit != 0, op&bit != 0
	switch {
	case is && !was:
		e.peerLevels |= bit
		o.Events = append(o.Events, on)
	case was && !is:
		e.peerLevels &^= bit
		o.Events = append(o.Events, off)
	}
}

// receiveAck handles the ACK/NACK fields for our outstanding packet.
func (e *Engine) receiveAck(now time.Time, p Packet) {
	nack := p.Op&OpNACK != 0
	switch {
	case e.outSeq != 0 && p.AckSeq == e.outSeq:
		if e.outSends > 1 {
			// The peer answers retransmissions: it is not one of the
			// strict BMCs AssumeDeliveredAfter is for.
			e.reacks = true
		}
		accepted := min(int(p.Accepted), len(e.outData))
		rest := e.outData[accepted:]
		e.outSeq, e.outData, e.outOps, e.outSends = 0, nil, 0, 0
		e.silent, e.outIsProbe = false, false
		if len(rest) > 0 {
			// Partial accept or NACK: the rest goes again, ahead of
			// everything queued after it, under a new sequence number.
			// The packet's operations were seen by the peer either way.
			e.queue.unread(rest)
			if e.signal {
				e.opsAfter += len(rest)
			}
		}
		if nack {
			e.paused, e.pausedSeq, e.pauseUntil = true, p.AckSeq, now.Add(e.cfg.RetryInterval)
		}
	case e.paused && p.AckSeq == e.pausedSeq && !nack:
		// The peer ACKs the packet it NACKed: it has room again.
		e.paused = false
	}
}

// finish sends what may be sent and sets the deadline.
func (e *Engine) finish(now time.Time, o *Output) {
	e.startPacket(now, o)
	if e.ackOwed {
		o.Send = append(o.Send, e.withAck(Packet{Op: e.levels}))
	}
	o.Deadline = e.deadline()
}

// startPacket sends a new data packet if none is outstanding, the peer has
// not paused us, and there is data or an operation to send.
func (e *Engine) startPacket(now time.Time, o *Output) {
	if e.outSeq != 0 || e.paused || e.closed {
		return
	}
	n := min(e.queue.len(), e.cfg.MaxData)
	var ops Op
	carriesSignal := false
	if e.signal {
		if e.opsAfter == 0 {
			// The signal goes now, with bytes written after it (the peer
			// acts on operations before the characters of the same packet).
			carriesSignal, ops = true, e.pendingOps
		} else {
			n = min(n, e.opsAfter)
		}
	}
	if n == 0 && !carriesSignal {
		return
	}
	data := make([]byte, n)
	e.queue.read(data)
	e.outIsProbe = false
	if carriesSignal {
		e.outIsProbe = e.probeSig && n == 0 && ops == 0
		e.signal, e.pendingOps, e.probeSig = false, 0, false
	} else if e.signal {
		e.opsAfter -= n
	}
	e.outSeq, e.outData, e.outOps = e.nextSeq, data, ops
	e.nextSeq = nextSeqAfter(e.nextSeq)
	e.outSends = 0
	e.outFirst = now
	e.transmit(now, o)
}

// transmit sends (or resends) the outstanding packet, piggy-backing an owed
// ACK.
func (e *Engine) transmit(now time.Time, o *Output) {
	p := Packet{Seq: e.outSeq, Op: e.outOps | e.levels, Data: e.outData}
	if e.ackOwed {
		p = e.withAck(p)
	}
	o.Send = append(o.Send, p)
	e.outSends++
	e.outDue = now.Add(e.cfg.RetryInterval)
}

// withAck fills p's ACK fields for the last received packet.
func (e *Engine) withAck(p Packet) Packet {
	p.AckSeq, p.Accepted = e.lastSeq, uint8(e.lastAccepted)
	if e.lastNACKed {
		p.Op |= OpNACK
	}
	e.ackOwed = false
	return p
}

func (e *Engine) deadline() time.Time {
	var d time.Time
	if e.outSeq != 0 {
		d = e.outDue
	}
	if e.paused && (d.IsZero() || e.pauseUntil.Before(d)) {
		d = e.pauseUntil
	}
	if !e.probeDue.IsZero() && (d.IsZero() || e.probeDue.Before(d)) {
		d = e.probeDue
	}
	return d
}
