package bench

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"obmd/rmcpplus"
	"obmd/sol"
)

// A SOL tap times console lines at the moment they leave a simulated BMC,
// so that latency to a viewer is measured from the real emission, not
// from an ideal schedule the simulator may lag behind.
//
// It is a UDP relay in front of one BMC: obmd is pointed at the tap, the
// tap forwards every datagram unchanged both ways. Because it knows the
// benchmark's BMC password, it derives each session's keys from the
// handshake it forwards (Open Session, RAKP 1 and 2 carry everything but
// the password in clear: IPMI v2.0 sections 13.17-13.20 and 13.31-13.32)
// and decrypts the SOL packets coming from the BMC (section 15.9). For
// every new packet it notes the last counter line the packet completes
// and the time it passed.
//
// The tap listens on 127.0.0.2 at the BMC's own port number: Activate
// Payload reports the BMC's port, and since it equals the port obmd
// already talks to, obmd keeps SOL on the same path through the tap.

// emission is one SOL packet from the BMC: every counter line up to Line
// had left the BMC at At (Unix nanoseconds).
type emission struct {
	Line uint64
	At   int64
}

// emissionLog is the append-only list of a console's emissions, written
// by the tap and read concurrently by viewers without locks: entries
// below n are immutable once n is published.
type emissionLog struct {
	recs []emission // preallocated; never reallocated
	n    atomic.Int64
	// Overflow counts packets not recorded because recs was full.
	overflow atomic.Int64
}

func newEmissionLog(capacity int) *emissionLog {
	return &emissionLog{recs: make([]emission, capacity)}
}

// add records one emission (single writer).
func (l *emissionLog) add(e emission) {
	n := l.n.Load()
	if int(n) == len(l.recs) {
		l.overflow.Add(1)
		return
	}
	l.recs[n] = e
	l.n.Store(n + 1)
}

// rate is the console's output in characters per second between from and
// to, from the first and last packets recorded in that span.
func (l *emissionLog) rate(from, to time.Time) (float64, bool) {
	recs := l.recs[:l.n.Load()]
	lo, hi := -1, -1
	for i, e := range recs {
		if e.At < from.UnixNano() {
			continue
		}
		if e.At >= to.UnixNano() {
			break
		}
		if lo < 0 {
			lo = i
		}
		hi = i
	}
	if lo < 0 || hi == lo {
		return 0, false
	}
	chars := CounterOffset(recs[hi].Line+1) - CounterOffset(recs[lo].Line+1)
	return float64(chars) / (float64(recs[hi].At-recs[lo].At) / 1e9), true
}

// emissionCursor finds lines' emission times for one reader, whose lines
// come in increasing order: each lookup resumes where the last stopped.
type emissionCursor struct {
	log *emissionLog
	i   int64
}

// at returns when line v left the BMC: the first recorded packet that
// completed v or a later line. ok is false if no such packet is recorded.
func (c *emissionCursor) at(v uint64) (time.Time, bool) {
	n := c.log.n.Load()
	for c.i < n && c.log.recs[c.i].Line < v {
		c.i++
	}
	if c.i == n {
		return time.Time{}, false
	}
	return time.Unix(0, c.log.recs[c.i].At), true
}

// solTap relays between obmd and one BMC.
type solTap struct {
	front    *net.UDPConn // obmd talks to this socket
	bmc      *net.UDPAddr
	password []byte
	log      *emissionLog

	mu     sync.Mutex
	flows  map[string]*tapFlow // by obmd's socket address
	closed bool
	wg     sync.WaitGroup

	// Anomalies counts SOL packets the tap could not follow: not
	// decryptable, or counter lines out of order within its own view.
	Anomalies atomic.Int64
	// Retransmits counts SOL data packets the BMC sent again (same
	// sequence number): a lost packet or a late ACK.
	Retransmits atomic.Int64

	// ackMu guards ackRTT: from a BMC data packet passing the tap to
	// obmd's ACK for it passing the tap (obmd's turnaround plus two
	// loopback hops).
	ackMu  sync.Mutex
	ackRTT Histogram
}

// tapFlow is one obmd socket (one RMCP+ session) through the tap.
type tapFlow struct {
	client *net.UDPAddr // obmd's socket
	up     *net.UDPConn // to the BMC, one per obmd socket
	tap    *solTap

	// Handshake as seen so far; the up goroutine and the front goroutine
	// both touch it, under mu.
	mu         sync.Mutex
	consoleSID uint32
	suite      rmcpplus.CipherSuite
	rm         [16]byte
	role       uint8
	user       string
	keys       *rmcpplus.SessionKeys

	// Used by the up goroutine only.
	lastSeq uint8
	lines   CounterCheck
	pkt     rmcpplus.Packet
	plain   []byte

	// sentAt[seq] is when the BMC's data packet seq first passed, zero
	// once acknowledged; guarded by mu. frontPlain is the front
	// goroutine's decryption buffer.
	sentAt     [16]time.Time
	frontPlain []byte
}

// startSOLTap listens on 127.0.0.2 at bmc's port and relays to bmc.
func startSOLTap(bmc *net.UDPAddr, password []byte, capacity int) (*solTap, error) {
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: bmc.Port})
	if err != nil {
		return nil, fmt.Errorf("SOL tap for %v: %w", bmc, err)
	}
	t := &solTap{front: front, bmc: bmc, password: password, log: newEmissionLog(capacity), flows: map[string]*tapFlow{}}
	t.wg.Add(1)
	go t.readFront()
	return t, nil
}

// Addr is where obmd must send to reach the BMC through the tap.
func (t *solTap) Addr() string { return t.front.LocalAddr().String() }

// Close stops relaying.
func (t *solTap) Close() {
	t.mu.Lock()
	t.closed = true
	flows := t.flows
	t.mu.Unlock()
	t.front.Close()
	for _, f := range flows {
		f.up.Close()
	}
	t.wg.Wait()
}

// readFront forwards obmd's datagrams to the BMC, noting the handshake.
func (t *solTap) readFront() {
	defer t.wg.Done()
	buf := make([]byte, 4096)
	var pkt rmcpplus.Packet
	for {
		n, from, err := t.front.ReadFromUDP(buf)
		if err != nil {
			return
		}
		f, err := t.flow(from)
		if err != nil {
			continue
		}
		if pkt.Unmarshal(buf[:n]) == nil && pkt.IsV2() {
			f.fromConsole(&pkt, time.Now())
		}
		_, _ = f.up.Write(buf[:n])
	}
}

// flow returns (creating) the flow of obmd's socket from.
func (t *solTap) flow(from *net.UDPAddr) (*tapFlow, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, net.ErrClosed
	}
	if f := t.flows[from.String()]; f != nil {
		return f, nil
	}
	up, err := net.DialUDP("udp", nil, t.bmc)
	if err != nil {
		return nil, err
	}
	f := &tapFlow{client: from, up: up, tap: t}
	t.flows[from.String()] = f
	t.wg.Add(1)
	go f.readUp()
	return f, nil
}

// fromConsole notes obmd's half of the handshake: its session ID, the
// algorithms it asks for, RAKP 1's random number, role and user name.
func (f *tapFlow) fromConsole(p *rmcpplus.Packet, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch p.PayloadType {
	case rmcpplus.PayloadSOL:
		f.noteACKLocked(p, now)
	case rmcpplus.PayloadOpenSessionReq:
		var m rmcpplus.OpenSessionRequest
		if m.Unmarshal(p.Payload) == nil {
			f.consoleSID, f.keys = m.ConsoleSessionID, nil
		}
	case rmcpplus.PayloadRAKP1:
		var m rmcpplus.RAKP1
		if m.Unmarshal(p.Payload) == nil {
			f.rm, f.role, f.user = m.ConsoleRandom, m.Role, m.Username
		}
	}
}

// fromBMC notes the BMC's half of the handshake (the suite it chose, its
// random number) and derives the session keys once RAKP 2 is seen; it
// returns the keys for a session packet addressed to obmd's session.
func (f *tapFlow) fromBMC(p *rmcpplus.Packet) *rmcpplus.SessionKeys {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch p.PayloadType {
	case rmcpplus.PayloadOpenSessionRsp:
		var m rmcpplus.OpenSessionResponse
		if m.Unmarshal(p.Payload) == nil && m.Status == 0 {
			if s, ok := rmcpplus.CipherSuiteByAlgorithms(m.Auth, m.Integrity, m.Confidentiality); ok {
				f.suite = s
			}
		}
	case rmcpplus.PayloadRAKP2:
		var m rmcpplus.RAKP2
		if m.Unmarshal(p.Payload) == nil && m.Status == 0 && m.ConsoleSessionID == f.consoleSID {
			// IPMI v2.0 section 13.31: SIK = HMAC_Kg(Rm | Rc | RoleM |
			// ULengthM | UNameM), Kg being the password when no BMC key
			// is set (as on fakebmc).
			key := rmcpplus.SIKKey(nil, f.tap.password)
			sik := rmcpplus.DeriveSIK(f.suite.Auth, key, f.rm, m.ManagedRandom, f.role, f.user)
			f.keys = rmcpplus.NewSessionKeys(f.suite, sik)
			f.lastSeq = 0
			f.lines = CounterCheck{}
		}
	}
	if p.SessionID != f.consoleSID || p.SessionID == 0 {
		return nil
	}
	return f.keys
}

// noteACKLocked times obmd's ACK of a BMC data packet.
func (f *tapFlow) noteACKLocked(p *rmcpplus.Packet, now time.Time) {
	if f.keys == nil || p.SessionID == 0 {
		return
	}
	var err error
	f.frontPlain, err = f.keys.AppendOpen(f.frontPlain[:0], p)
	if err != nil {
		return
	}
	sp, err := sol.ParsePacket(f.frontPlain)
	if err != nil || sp.AckSeq == 0 || sp.AckSeq > 15 || f.sentAt[sp.AckSeq].IsZero() {
		return
	}
	rtt := now.Sub(f.sentAt[sp.AckSeq])
	f.sentAt[sp.AckSeq] = time.Time{}
	f.tap.ackMu.Lock()
	f.tap.ackRTT.Record(rtt)
	f.tap.ackMu.Unlock()
}

// readUp forwards the BMC's datagrams to obmd, timing SOL packets.
func (f *tapFlow) readUp() {
	defer f.tap.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := f.up.Read(buf)
		if err != nil {
			return
		}
		now := time.Now()
		if f.pkt.Unmarshal(buf[:n]) == nil && f.pkt.IsV2() {
			if keys := f.fromBMC(&f.pkt); keys != nil && f.pkt.PayloadType == rmcpplus.PayloadSOL {
				f.noteSOL(keys, now)
			}
		}
		if _, err := f.tap.front.WriteToUDP(buf[:n], f.client); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// noteSOL records the last counter line a new SOL data packet from the
// BMC completes. Retransmissions (same sequence number) are skipped: the
// lines they carry left the BMC the first time.
func (f *tapFlow) noteSOL(keys *rmcpplus.SessionKeys, now time.Time) {
	var err error
	f.plain, err = keys.AppendOpen(f.plain[:0], &f.pkt)
	if err != nil {
		f.tap.Anomalies.Add(1)
		return
	}
	sp, err := sol.ParsePacket(f.plain)
	if err != nil {
		f.tap.Anomalies.Add(1)
		return
	}
	if sp.Seq == 0 || len(sp.Data) == 0 {
		return // an ACK only
	}
	if sp.Seq == f.lastSeq {
		f.tap.Retransmits.Add(1)
		return // the lines left the BMC the first time
	}
	f.lastSeq = sp.Seq
	f.mu.Lock()
	f.sentAt[sp.Seq&15] = now
	f.mu.Unlock()
	before := f.lines.Gaps()
	var last uint64
	completed := false
	f.lines.OnLine = func(v uint64) { last, completed = v, true }
	f.lines.Write(sp.Data)
	if f.lines.Gaps() != before {
		f.tap.Anomalies.Add(1)
	}
	if completed {
		f.tap.log.add(emission{Line: last, At: now.UnixNano()})
	}
}
