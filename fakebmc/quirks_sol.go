package fakebmc

import (
	"errors"
	"math/bits"
	"net"
	"sync"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
	"obmd/sol"
)

// Serial-over-LAN quirks: the "Serial over LAN" rows of BMC-QUIRKS.md,
// each reproduced as the real BMCs named there behave on the wire, so
// that what ipmitool, FreeIPMI and obmd do against them can be tested.
// Each combines with the others, with -fault and with the network faults.
var (
	QuirkSOLPortSwapped = registerQuirk("solport-swapped",
		"Activate Payload names the SOL port byte-swapped (Supermicro X8DTH-iF); SOL flows on the session's port")
	QuirkSOLPort623 = registerQuirk("solport-623",
		"Activate Payload names port 623 whatever port the BMC serves on (OpenBMC; wrong behind a NAT); SOL flows on the session's port")
	QuirkSOLPortBogus = registerQuirk("solport-bogus",
		"Activate Payload names a port of its own where nothing answers (Asus P5MT-R); SOL flows on the session's port")
	QuirkSOLSize1 = registerQuirk("solsize-1",
		"Activate Payload reports SOL payload sizes of 1 byte (several boards); SOL takes and sends full packets")
	QuirkActivationStatusLies = registerQuirk("activation-status-lies",
		"Get Payload Activation Status says SOL is inactive while it flows (Quanta S99Q, Dell FS12-TY)")
	QuirkCTSAux = registerQuirk("cts-aux",
		"Activate Payload refuses (CCh) auxiliary data with the CTS/DCD/DSR handshake bit set, the default of ipmitool and FreeIPMI (an Intel board)")
	QuirkSOLStrictSeq = registerQuirk("sol-strict-seq",
		"SOL drops any console packet whose number is not the next one expected, so a retransmission is never ACKed (OpenBMC)")
	QuirkSOLSteal = registerQuirk("sol-steal",
		"every -sol-steal-every, an active SOL instance silently stops sending and stays active for a phantom session (Supermicro, Dell, Quanta, AMI)")
	QuirkDeactivateIgnored = registerQuirk("deactivate-ignored",
		"Deactivate Payload answers 00h without effect and SOL outlives its session: Activate answers 80h until SOL Enable is toggled (Dell M6xx, OpenBMC)")
	QuirkSOLSeqRestart = registerQuirk("solseq-restart",
		"SOL sequence numbers restart at 1 when the host powers up or resets (Tyan S4811)")
)

// DefaultSOLStealEvery is BMCConfig.SOLStealEvery's default under
// sol-steal.
const DefaultSOLStealEvery = time.Minute

// solReportedPort is the UDP port Activate Payload names for SOL (IPMI
// v2.0 section 24.1, bytes 10:11): the BMC's own, unless a solport quirk
// says otherwise. SOL is served on the BMC's own port either way.
func (b *BMC) solReportedPort() uint16 {
	port := uint16(b.addr.Port)
	switch qs := b.cfg.Quirks; {
	case qs.Has(QuirkSOLPortSwapped):
		return bits.ReverseBytes16(port)
	case qs.Has(QuirkSOLPort623):
		return rmcpplus.DefaultPort
	case qs.Has(QuirkSOLPortBogus) && b.bogusSOL != nil:
		return uint16(b.bogusSOL.LocalAddr().(*net.UDPAddr).Port)
	}
	return port
}

// solPayloadSizes are the sizes Activate Payload reports (bytes 6:9):
// the real ones, or 1 and 1 under solsize-1.
func (b *BMC) solPayloadSizes() (inbound, outbound uint16) {
	if b.cfg.Quirks.Has(QuirkSOLSize1) {
		return 1, 1
	}
	return solInboundPayloadSize, solOutboundPayloadSize
}

// refusesSOLAux reports whether Activate Payload refuses aux under cts-aux:
// the board wants the handshake bit (Table 24-2, byte 1 bit 1) clear.
func (b *BMC) refusesSOLAux(aux [4]byte) bool {
	return b.cfg.Quirks.Has(QuirkCTSAux) && aux[0]&ipmi.SOLAuxHandshakeDeasserted != 0
}

// solStatusLies reports whether Get Payload Activation Status answers
// "inactive" whatever the truth (activation-status-lies).
func (b *BMC) solStatusLies() bool { return b.cfg.Quirks.Has(QuirkActivationStatusLies) }

// solPayloadPath is the SOL payload path between the session and the
// endpoint, with the strict sequencing of sol-strict-seq and the test
// hook that loses packets to the console.
type solPayloadPath struct {
	strict bool
	drop   func(sol.Packet) bool // BMCConfig.dropSOLToConsole

	mu       sync.Mutex
	expected uint8 // the next console sequence number taken (strict)
	current  uint8 // our outstanding packet's number, 0 before any (strict)
}

func newSOLPayloadPath(b *BMC) *solPayloadPath {
	return &solPayloadPath{strict: b.cfg.Quirks.Has(QuirkSOLStrictSeq), drop: b.cfg.dropSOLToConsole, expected: 1}
}

// in filters a console packet. Strict as OpenBMC's sol_context.cpp: a
// packet whose number is not the one expected is dropped without an answer
// (a retransmission of a packet taken is one), and so is a packet that
// acknowledges anything but our current packet.
func (sp *solPayloadPath) in(payload []byte) bool {
	if !sp.strict {
		return true
	}
	p, err := sol.ParsePacket(payload)
	if err != nil {
		return true // the endpoint drops it
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if p.Seq != 0 && p.Seq&0x0F != sp.expected {
		return false
	}
	if p.AckSeq != 0 && p.AckSeq&0x0F != sp.current {
		return false
	}
	if p.Seq != 0 {
		sp.expected = sp.expected%15 + 1
	}
	return true
}

// out notes a packet to the console and reports whether it leaves.
func (sp *solPayloadPath) out(payload []byte) bool {
	if !sp.strict && sp.drop == nil {
		return true
	}
	p, err := sol.ParsePacket(payload)
	if err != nil {
		return true
	}
	if sp.strict && p.Seq != 0 {
		sp.mu.Lock()
		sp.current = p.Seq & 0x0F
		sp.mu.Unlock()
	}
	return sp.drop == nil || !sp.drop(p)
}

// startQuirks starts what a quirk does over time: the bogus SOL port's
// socket, the steal timer and the watch for host boots.
func (b *BMC) startQuirks() {
	qs := b.cfg.Quirks
	if qs.Has(QuirkSOLPortBogus) {
		// A real socket on the BMC's host, never read: a client that
		// believes the answer sends into it, and nothing comes back (not
		// even an ICMP port unreachable).
		if c, err := net.ListenPacket("udp", net.JoinHostPort(b.addr.IP.String(), "0")); err == nil {
			b.bogusSOL = c
		} else {
			b.log.Warn("solport-bogus: no port to name", "err", err)
		}
	}
	b.quirkStop = make(chan struct{})
	if qs.Has(QuirkSOLSteal) {
		every := b.cfg.SOLStealEvery
		if every <= 0 {
			every = DefaultSOLStealEvery
		}
		go b.stealLoop(every)
	}
	if qs.Has(QuirkSOLSeqRestart) && b.sim != nil {
		go b.watchBoots()
	}
}

// stopQuirks stops them.
func (b *BMC) stopQuirks() {
	if b.quirkStop != nil {
		close(b.quirkStop)
	}
	if b.bogusSOL != nil {
		b.bogusSOL.Close()
	}
}

// stealLoop steals the SOL instance every period while a client holds it.
func (b *BMC) stealLoop(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.quirkStop:
			return
		case <-t.C:
			if err := b.StealSOL(); err != nil && !errors.Is(err, errNothingToSteal) {
				b.log.Warn("sol-steal", "err", err)
			}
		}
	}
}

var errNothingToSteal = errors.New("fakebmc: no client holds SOL")

// StealSOL does what sol-steal does every period, now: the active SOL
// instance stops sending to its client without a word (no "SOL
// deactivating" status; the client's session goes on and its SOL packets
// are ignored) and is activated for a phantom session that then vanishes
// (see LeaveStaleSOL), so Get Payload Activation Status still says active
// and Get Payload Instance Info names the phantom's session. What the host
// prints meanwhile goes to the phantom: lost for the client, as on the
// real BMCs.
func (b *BMC) StealSOL() error {
	b.mu.Lock()
	p := b.active
	b.mu.Unlock()
	if p == nil || p.phantom {
		return errNothingToSteal
	}
	// Between the abandon and the phantom's activation the instance is
	// nobody's for a moment; the status commands go on naming the victim
	// meanwhile, so no client can read the steal in them.
	b.mu.Lock()
	b.stealing = p.sess.ID()
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.stealing = 0
		b.mu.Unlock()
	}()
	b.abandon(p)
	b.log.Info("SOL stolen silently", "from_session", p.sess.ID())
	return b.LeaveStaleSOL()
}

// abandon ends activation p without telling its client.
func (b *BMC) abandon(p *solPayload) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active != p {
		return
	}
	p.sess.SetPayloadHandler(rmcpplus.PayloadSOL, nil)
	p.port.Abandon()
	b.console.detach(p.port, time.Now())
	b.active = nil
	close(p.ended)
	b.notifySOLLocked()
}

// watchBoots restarts the active SOL instance's numbering at each boot of
// the host (solseq-restart).
func (b *BMC) watchBoots() {
	last := len(b.sim.Boots())
	lastNum := 0
	if bs := b.sim.Boots(); last > 0 {
		lastNum = bs[last-1].Number
	}
	for {
		ch := b.sim.Changed()
		bs := b.sim.Boots()
		if n := len(bs); n > 0 && bs[n-1].Number != lastNum {
			lastNum = bs[n-1].Number
			b.mu.Lock()
			p := b.active
			b.mu.Unlock()
			if p != nil {
				p.port.RestartNumbering()
				b.log.Debug("SOL numbering restarted at host boot", "boot", lastNum)
			}
		}
		select {
		case <-b.quirkStop:
			return
		case <-ch:
		}
	}
}
