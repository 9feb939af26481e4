package rmcpplus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"obmd/ipmi"
)

// ClientConfig configures a client session to one BMC.
type ClientConfig struct {
	Addr      string // host or host:port (default port 623)
	Username  string
	Password  []byte              // never logged
	Kg        []byte              // BMC key; empty means use the password
	Privilege ipmi.PrivilegeLevel // default Administrator; sent explicitly in Open Session and RAKP 1
	// CipherSuite pins the suite; 0 means negotiate one with
	// confidentiality (17, then 3: see policy.go).
	CipherSuite uint8
	// Workarounds are the node's named overrides (policy.go).
	Workarounds Workarounds
	// Profile carries what was learned about this BMC from one session to
	// the next; nil means a fresh one for this Dial.
	Profile *Profile
	// Timeout is the mean wait per attempt (default 1 s). Waits grow
	// linearly (with 3 retries: 0.4, 0.8, 1.2, 1.6 x Timeout), so a
	// request the BMC ignores fails after Timeout x attempts.
	Timeout time.Duration
	// Retries is the number of retransmissions after the first attempt:
	// 0 means the default (3), a negative value means none.
	Retries   int
	KeepAlive time.Duration // idle interval before a keepalive command (default 20 s)
	// PacketConn, if set, is used instead of a fresh UDP socket (tests put a
	// fault injector here). The Session owns and closes it.
	PacketConn net.PacketConn
	Logger     *slog.Logger
}

// Client defaults.
const (
	DefaultPort      = 623
	DefaultTimeout   = time.Second
	DefaultRetries   = 3
	DefaultKeepAlive = 20 * time.Second
)

// withDefaults fills in the zero fields.
func (c ClientConfig) withDefaults() ClientConfig {
	if c.Privilege == ipmi.PrivilegeHighest {
		c.Privilege = ipmi.PrivilegeAdministrator
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports every invalid field at once.
func (c ClientConfig) validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("no BMC address"))
	}
	if len(c.Username) > MaxUsernameLength {
		errs = append(errs, fmt.Errorf("user name is %d bytes; RAKP allows at most %d", len(c.Username), MaxUsernameLength))
	}
	if len(c.Password) > MaxPasswordLength {
		errs = append(errs, fmt.Errorf("password is %d bytes; IPMI v2.0 allows at most %d", len(c.Password), MaxPasswordLength))
	}
	if len(c.Kg) > MaxPasswordLength {
		errs = append(errs, fmt.Errorf("Kg is %d bytes; IPMI v2.0 allows at most %d", len(c.Kg), MaxPasswordLength))
	}
	if c.Privilege < ipmi.PrivilegeCallback || c.Privilege > ipmi.PrivilegeOEM {
		errs = append(errs, fmt.Errorf("privilege %v is not a session privilege level", c.Privilege))
	}
	if c.CipherSuite != 0 {
		if _, ok := CipherSuiteByID(c.CipherSuite); !ok {
			errs = append(errs, fmt.Errorf("cipher suite %d is not supported (supported: %v)", c.CipherSuite, SupportedCipherSuites()))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("rmcpplus: invalid client configuration: %w", errors.Join(errs...))
}

// Errors a caller may test for with errors.Is.
var (
	// ErrTimeout: the BMC did not answer a request in any attempt. The
	// error's text names the command, the address and the attempts.
	ErrTimeout = errors.New("rmcpplus: timeout")
	// ErrSessionClosed is Err() after Close.
	ErrSessionClosed = errors.New("rmcpplus: session closed")
	// ErrWrongPassword: the BMC's RAKP 2 proves it holds a different
	// password for the user.
	ErrWrongPassword = errors.New("wrong password")
	// ErrUnknownUser: the BMC does not know the user name (RAKP 2 status
	// 0x0D unauthorized name).
	ErrUnknownUser = errors.New("unknown user")
)

// timeoutError is an ErrTimeout naming what got no answer.
type timeoutError struct {
	addr     string
	what     string
	attempts int
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("rmcpplus: timeout: no answer from %s to %s after %d attempts", e.addr, e.what, e.attempts)
}

func (e *timeoutError) Is(target error) bool { return target == ErrTimeout }

// sessionLostError is Err() of a session that ended without Close.
type sessionLostError struct {
	addr   string
	during string // what failed, e.g. "keepalive"; may be empty
	cause  error
}

func (e *sessionLostError) Error() string {
	during := ""
	if e.during != "" {
		during = e.during + ": "
	}
	return fmt.Sprintf("rmcpplus: session to %s lost: %s%s", e.addr, during, strings.TrimPrefix(e.cause.Error(), "rmcpplus: "))
}

func (e *sessionLostError) Unwrap() error { return e.cause }

// Session is an established RMCP+ session, safe for concurrent callers.
//
// One goroutine reads the socket and hands each answer to the caller
// waiting for it (requestTable); callers send their own requests and wait
// with their own timers, so a request costs no goroutine.
type Session struct {
	cfg      ClientConfig
	addr     *net.UDPAddr
	addrText string
	conn     net.PacketConn
	log      *slog.Logger
	attempts int // cfg.Retries + 1

	table *requestTable

	// Handshake replies (Open Session Response, RAKP 2, RAKP 4), queued by
	// the reading goroutine for the handshake step waiting on hsReady.
	hsMu    sync.Mutex
	hsQueue []handshakeReply // (hsMu) at most maxQueuedHandshakeReplies
	hsReady chan struct{}    // signalled (capacity 1) when hsQueue grows

	sec atomic.Pointer[sessionSecrets] // set once RAKP 4 is verified

	// What the handshake found and learned (policy.go); profile outlives
	// the session, negotiated is this session's own record.
	profile    *Profile
	negotiated Negotiation // written by establish before Dial returns

	// Outbound session sequence numbers, last used. IPMI v2.0 section
	// 6.12.13: authenticated and unauthenticated packets count separately,
	// start at 1, and every packet (retransmissions too) takes a new one.
	outAuth, outUnauth atomic.Uint32

	inMu              sync.Mutex
	inAuth, inUnauth  seqWindow    // inbound windows (section 6.12.13)
	lastRecv          atomic.Int64 // UnixNano of the last accepted session packet
	rejectedSeq       atomic.Uint64
	rejectedIntegrity atomic.Uint64
	rejectedOversize  atomic.Uint64 // datagrams that filled the read buffer (readBufferSize)
	badChecksums      atomic.Uint64 // responses accepted despite a wrong IPMI checksum ("nochecksumcheck")
	counted           atomic.Bool   // in clientTotals.open (counters.go)

	keepalive atomic.Pointer[time.Timer]
	payloads  [64]atomic.Pointer[PayloadConn]

	done      chan struct{}
	endOnce   sync.Once
	err       error // why the session ended; written before done is closed
	closeOnce sync.Once
}

// sessionSecrets is what the handshake establishes.
type sessionSecrets struct {
	keys      *SessionKeys
	consoleID uint32 // ours; the BMC sends it in every packet to us
	managedID uint32 // the BMC's; we send it in every packet to the BMC
	// authenticated: the suite has an integrity algorithm, so every
	// session packet must carry an AuthCode and counts as authenticated.
	authenticated bool
}

// handshakeReply is a copy of a pre-session RMCP+ handshake message.
type handshakeReply struct {
	pt      PayloadType
	payload []byte
}

// readBufferSize is the size of a reading goroutine's datagram buffer.
//
// The largest datagram a session carries here is about 334 bytes: a SOL
// payload of 4 + 255 bytes (a receiver acknowledges at most 255 characters
// of a packet, the accepted count being one byte, IPMI v2.0 section 15.9)
// or an IPMI message of similar size, sealed with every option of section
// 13.6: RMCP header 4, session header 12 (18 for an OEM payload),
// AES-CBC-128 IV 16 and pad up to 16 (section 13.29), integrity pad up to
// 3, pad length and next header 2, AuthCode up to 16 (section 13.28.4).
// 1 KiB leaves three times that, and is what ipmitool's lanplus interface
// reads every datagram into, SOL included (IPMI_BUF_SIZE). ReadFrom cuts a
// longer datagram to the buffer without saying so, so a read that fills
// the buffer counts as cut and is dropped (rejectedOversize) instead of
// being parsed: the largest datagram accepted is readBufferSize-1 bytes.
const readBufferSize = 1024

// Dial performs the RMCP+ handshake and sets the session privilege.
//
// Sequence (IPMI v2.0 section 13.14-13.33): Get Channel Authentication
// Capabilities (IPMI v1.5 packet) to see that the BMC speaks RMCP+; the
// cipher suite list (Get Channel Cipher Suites) unless cfg pins a suite or
// cfg.Profile knows one that works; Open Session; RAKP 1-4 (again, with
// another suite or settings, when policy.go says so); Set Session
// Privilege Level. Every message is retransmitted on timeout.
func Dial(ctx context.Context, cfg ClientConfig) (*Session, error) {
	cfg = cfg.withDefaults()
	addr, err := resolveBMCAddr(cfg.Addr)
	if verr := cfg.validate(); verr != nil || err != nil {
		if cfg.PacketConn != nil {
			cfg.PacketConn.Close() // the Session would have owned it
		}
		if verr != nil {
			return nil, verr
		}
		return nil, err
	}
	conn := cfg.PacketConn
	if conn == nil {
		if conn, err = listenUDPFor(addr); err != nil {
			return nil, fmt.Errorf("rmcpplus: opening a UDP socket for %s: %w", addr, err)
		}
	}
	s := newSession(cfg, addr, conn)
	go s.readLoop(conn, true)
	if err := s.establish(ctx); err != nil {
		s.end(err)
		return nil, err
	}
	s.countOpen()
	s.startKeepalive()
	s.log.Debug("rmcpplus session established", "suite", s.negotiated.Suite, "privilege", s.negotiated.Privilege)
	return s, nil
}

// newSession builds a Session on conn; nothing runs yet.
func newSession(cfg ClientConfig, addr *net.UDPAddr, conn net.PacketConn) *Session {
	profile := cfg.Profile
	if profile == nil {
		profile = NewProfile()
	}
	return &Session{
		cfg:      cfg,
		addr:     addr,
		addrText: addr.String(),
		conn:     conn,
		log:      cfg.Logger.With("bmc", addr.String()),
		attempts: cfg.Retries + 1,
		table:    newRequestTable(),
		hsReady:  make(chan struct{}, 1),
		profile:  profile,
		done:     make(chan struct{}),
	}
}

// resolveBMCAddr accepts "host", "host:port", "[v6]" and "[v6]:port".
func resolveBMCAddr(a string) (*net.UDPAddr, error) {
	host, port := a, strconv.Itoa(DefaultPort)
	if h, p, err := net.SplitHostPort(a); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]") {
		host = a[1 : len(a)-1]
	}
	if host == "" {
		return nil, fmt.Errorf("rmcpplus: BMC address %q has no host", a)
	}
	ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("rmcpplus: BMC address %q: %w", a, err)
	}
	return ua, nil
}

// listenUDPFor opens an ephemeral UDP socket of addr's family.
func listenUDPFor(addr *net.UDPAddr) (*net.UDPConn, error) {
	network := "udp6"
	if addr.IP.To4() != nil {
		network = "udp4"
	}
	return net.ListenUDP(network, nil)
}

// Do sends one IPMI request and returns the response data after the
// completion code. A non-zero completion code is an *ipmi.CompletionError.
// A request the BMC never answers (ErrTimeout) ends the session: Done
// closes and the caller should dial again.
func (s *Session) Do(ctx context.Context, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) ([]byte, error) {
	rsp, err := s.exchange(ctx, sendInSession, netfn, cmd, data, s.cfg.Timeout, s.attempts)
	if err != nil {
		if errors.Is(err, ErrTimeout) {
			s.end(&sessionLostError{addr: s.addrText, cause: err})
		}
		return nil, err
	}
	if err := decodeResponse(netfn, cmd, rsp, nil); err != nil {
		return nil, err
	}
	return rsp[1:], nil
}

// sendMode says how a request is framed.
type sendMode uint8

const (
	sendPreSessionV15  sendMode = iota // IPMI v1.5 packet, session ID 0, auth type none
	sendPreSessionBoth                 // the same request as an IPMI v1.5 and as an RMCP+ packet at once
	sendInSession                      // sealed with the session's keys
)

// exchange sends one IPMI request until it is answered or attempts run
// out, and returns the response's completion code and data. base is the
// per-attempt timeout that attemptTimeout spreads over the attempts.
func (s *Session) exchange(ctx context.Context, mode sendMode, netfn ipmi.NetFn, cmd ipmi.Command, data []byte, base time.Duration, attempts int) ([]byte, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	seq, slot, err := s.table.acquire(ctx, s.done, netfn, cmd, mode == sendInSession)
	if err != nil {
		if err == errStopped {
			return nil, s.Err()
		}
		return nil, err
	}
	defer s.table.release(seq)

	m := ipmi.Message{DstAddr: ipmi.AddrBMC, NetFn: netfn, SrcAddr: ipmi.AddrRemoteSW, Seq: seq, Cmd: cmd, Data: data}
	slot.msg = m.AppendTo(slot.msg[:0])
	slot.sess, slot.mode, slot.answer = s, mode, nil
	if slot.timer == nil {
		slot.timer = time.NewTimer(time.Hour)
	}
	defer slot.timer.Stop()
	if _, err := s.retransmit(ctx, slot, slot.ready, slot.timer, base, attempts); err != nil {
		return nil, err
	}
	return slot.answer, nil
}

// transmit sends the slot's request (awaited).
func (slot *requestSlot) transmit() error { return slot.sess.sendRequest(slot.mode, slot) }

// answered takes the answer the reading goroutine delivered (awaited).
func (slot *requestSlot) answered() (bool, error) {
	rsp := slot.sess.table.take(slot.seq)
	if rsp == nil {
		return false, nil
	}
	if ipmi.CompletionCode(rsp[0]) == ipmi.CCDuplicateRequest {
		// The BMC is still working on an earlier copy of this request;
		// its answer will come.
		return false, nil
	}
	slot.answer = rsp
	return true, nil
}

// describe names the request (awaited).
func (slot *requestSlot) describe() string { return ipmi.CommandName(slot.netfn, slot.cmd) }

// decodeResponse checks the completion code of rsp (the completion code and
// data exchange returns) and decodes the data after it into data, unless
// data is nil. A non-zero code is an *ipmi.CompletionError.
func decodeResponse(netfn ipmi.NetFn, cmd ipmi.Command, rsp []byte, data ipmi.Codec) error {
	if cc := ipmi.CompletionCode(rsp[0]); cc != ipmi.CCOK {
		return &ipmi.CompletionError{NetFn: netfn, Cmd: cmd, Code: cc}
	}
	if data == nil {
		return nil
	}
	return data.Unmarshal(rsp[1:])
}

// sendRequest frames slot.msg and writes it.
func (s *Session) sendRequest(mode sendMode, slot *requestSlot) error {
	switch mode {
	case sendPreSessionV15:
		slot.pkt = AppendV15(slot.pkt[:0], 0, 0, slot.msg)
	case sendPreSessionBoth:
		// The IPMI v1.5 form first; the RMCP+ form goes out below.
		slot.pkt = AppendV15(slot.pkt[:0], 0, 0, slot.msg)
		if err := s.write(slot.pkt); err != nil {
			return err
		}
		slot.pkt = AppendV2(slot.pkt[:0], PayloadIPMI, 0, 0, slot.msg)
	case sendInSession:
		sec := s.sec.Load()
		var err error
		slot.pkt, err = sec.keys.AppendSealed(slot.pkt[:0], PayloadIPMI, sec.managedID, s.nextSeq(sec), slot.msg)
		if err != nil {
			return fmt.Errorf("rmcpplus: sealing a request to %s: %w", s.addrText, err)
		}
	}
	return s.write(slot.pkt)
}

// write sends one datagram to the BMC.
func (s *Session) write(pkt []byte) error {
	if _, err := s.conn.WriteTo(pkt, s.addr); err != nil {
		if s.Err() != nil {
			return s.Err()
		}
		return fmt.Errorf("rmcpplus: sending to %s: %w", s.addrText, err)
	}
	return nil
}

// nextSeq takes the next outbound session sequence number.
func (s *Session) nextSeq(sec *sessionSecrets) uint32 {
	if sec.authenticated {
		return s.outAuth.Add(1)
	}
	return s.outUnauth.Add(1)
}

// readLoop is the one reader of conn. main: conn is the session's socket,
// whose failure ends the session (a payload's own socket just stops).
func (s *Session) readLoop(conn net.PacketConn, main bool) {
	buf := make([]byte, readBufferSize)
	// Decrypted payloads; grown by the first one to the size this
	// session's packets need (a few hundred bytes), then reused.
	var plain []byte
	var p Packet
	// The sender's address is not needed (packets prove their origin by
	// session ID and integrity); a *net.UDPConn can skip allocating it.
	read := func(b []byte) (int, error) { n, _, err := conn.ReadFrom(b); return n, err }
	if uc, ok := conn.(*net.UDPConn); ok {
		read = func(b []byte) (int, error) { n, _, err := uc.ReadFromUDPAddrPort(b); return n, err }
	}
	for {
		n, err := read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if main && s.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.end(&sessionLostError{addr: s.addrText, during: "reading the socket", cause: err})
			}
			return
		}
		if n >= len(buf) {
			s.rejectedOversize.Add(1) // possibly cut short: never parse it
			clientTotals.rejectedOversize.Add(1)
			continue
		}
		plain = s.handleDatagramVia(&p, buf[:n], plain[:0], main)
	}
}

// handleDatagram dispatches one inbound datagram. It runs on a reading
// goroutine and never blocks. plain is scratch space for the decrypted
// payload, returned for reuse.
func (s *Session) handleDatagram(p *Packet, b, plain []byte) []byte {
	return s.handleDatagramVia(p, b, plain, true)
}

// handleDatagramVia is handleDatagram for a datagram read from the
// session's own socket (viaSession) or a payload's (see OpenPayloadEither).
func (s *Session) handleDatagramVia(p *Packet, b, plain []byte, viaSession bool) []byte {
	if err := p.Unmarshal(b); err != nil || p.ASF != nil {
		return plain
	}
	if !p.IsV2() {
		// IPMI v1.5 packets answer the pre-session requests.
		if p.AuthType == AuthTypeNone && p.SessionID == 0 {
			s.deliverIPMI(p.Payload, false, false)
		}
		return plain
	}
	if p.SessionID == 0 {
		switch p.PayloadType {
		case PayloadOpenSessionRsp, PayloadRAKP2, PayloadRAKP4:
			if p.Authenticated || p.Encrypted {
				return plain
			}
			s.queueHandshakeReply(p.PayloadType, p.Payload)
		case PayloadIPMI:
			if !p.Authenticated && !p.Encrypted {
				s.deliverIPMI(p.Payload, false, false)
			}
		}
		return plain
	}
	sec := s.sec.Load()
	if sec == nil || p.SessionID != sec.consoleID {
		return plain
	}
	// Section 6.12.13: check the sequence number against the window
	// before trusting anything; record it only after integrity passed.
	window := &s.inUnauth
	if p.Authenticated {
		window = &s.inAuth
	}
	s.inMu.Lock()
	fresh := window.check(p.Seq)
	s.inMu.Unlock()
	if !fresh {
		s.rejectedSeq.Add(1)
		clientTotals.rejectedSeq.Add(1)
		return plain
	}
	payload, err := sec.keys.AppendOpen(plain, p)
	if err != nil {
		s.rejectedIntegrity.Add(1)
		clientTotals.rejectedIntegrity.Add(1)
		return plain
	}
	s.inMu.Lock()
	fresh = window.accept(p.Seq)
	s.inMu.Unlock()
	if !fresh {
		s.rejectedSeq.Add(1)
		clientTotals.rejectedSeq.Add(1)
		return plain
	}
	s.lastRecv.Store(time.Now().UnixNano())
	if p.PayloadType == PayloadIPMI {
		s.deliverIPMI(payload, true, sec.authenticated)
	} else if pc := s.payloads[p.PayloadType&payloadTypeMask].Load(); pc != nil {
		pc.deliver(payload, viaSession)
	}
	return payload
}

// deliverIPMI hands an IPMI response message to the request table.
// inSession: it came in a session packet; integrity: that packet passed
// the session's integrity check (the suite has an integrity algorithm).
func (s *Session) deliverIPMI(b []byte, inSession, integrity bool) {
	m, err := ipmi.ParseMessage(b)
	if err == ipmi.ErrChecksum && acceptBadChecksum(integrity, s.cfg.Workarounds) {
		// Some BMCs compute the message checksums wrong (the
		// "nochecksumcheck" rule in policy.go); the RMCP+ integrity
		// check already vouched for these bytes.
		if m, err = ipmi.ParseMessageIgnoringChecksums(b); err == nil {
			s.badChecksums.Add(1)
			s.profile.toleratedChecksum(m, integrity)
		}
	}
	if err != nil || !m.NetFn.IsResponse() {
		return
	}
	s.table.deliver(m, inSession)
}

// maxQueuedHandshakeReplies bounds the handshake replies waiting to be
// looked at: a handshake step expects one, a retransmission a second.
const maxQueuedHandshakeReplies = 8

// queueHandshakeReply keeps a copy of a handshake reply for the step
// waiting for it. It runs on the reading goroutine and never blocks.
func (s *Session) queueHandshakeReply(pt PayloadType, payload []byte) {
	s.hsMu.Lock()
	if len(s.hsQueue) < maxQueuedHandshakeReplies {
		s.hsQueue = append(s.hsQueue, handshakeReply{pt: pt, payload: bytes.Clone(payload)})
	}
	s.hsMu.Unlock()
	select {
	case s.hsReady <- struct{}{}:
	default:
	}
}

// takeHandshakeReplies empties the handshake reply queue.
func (s *Session) takeHandshakeReplies() []handshakeReply {
	s.hsMu.Lock()
	defer s.hsMu.Unlock()
	q := s.hsQueue
	s.hsQueue = nil
	return q
}

// Negotiation reports what the handshake found and chose.
func (s *Session) Negotiation() Negotiation {
	n := s.negotiated
	n.Offered = slices.Clone(n.Offered)
	n.Detected = slices.Clone(n.Detected)
	return n
}

// CipherSuite is the suite the session was established with (IPMI v2.0
// section 22.15.2): SOL asks for encryption and authentication of its
// payloads exactly when the suite has them (section 24.1, Activate
// Payload's auxiliary data).
func (s *Session) CipherSuite() CipherSuite {
	suite, _ := CipherSuiteByID(s.negotiated.Suite)
	return suite
}

// Profile is what this session's handshake learned about the BMC, shared
// with the sessions dialled with the same ClientConfig.Profile.
func (s *Session) Profile() *Profile { return s.profile }

// Done is closed when the session ends; Err says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is nil while the session is up; afterwards it says why it ended
// (ErrSessionClosed after Close).
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close sends Close Session (best effort, IPMI v2.0 section 22.19) and
// releases the socket. It is idempotent and always returns nil.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		if s.sec.Load() != nil && s.Err() == nil {
			if err := s.closeSession(context.Background(), min(s.cfg.Timeout, closeSessionTimeout)); err != nil {
				s.log.Debug("Close Session not confirmed", "err", err)
			}
		}
		s.end(ErrSessionClosed)
	})
	return nil
}

// closeSessionTimeout bounds the wait for the Close Session answer.
const closeSessionTimeout = 300 * time.Millisecond

// closeSession sends Close Session for this session once (section 22.19:
// the request names the BMC's session ID) and waits at most timeout for
// the answer. Callers treat it as best effort.
func (s *Session) closeSession(ctx context.Context, timeout time.Duration) error {
	req := ipmi.CloseSessionReq{SessionID: s.sec.Load().managedID}
	_, err := s.exchange(ctx, sendInSession, ipmi.NetFnApp, ipmi.CmdCloseSession, req.Marshal(), timeout, 1)
	return err
}

// end ends the session once: records why, wakes every waiter, stops the
// keepalive, closes payload channels and the socket.
func (s *Session) end(err error) {
	s.endOnce.Do(func() {
		s.err = err
		close(s.done)
		s.uncount()
		if t := s.keepalive.Load(); t != nil {
			t.Stop()
		}
		for i := range s.payloads {
			if pc := s.payloads[i].Swap(nil); pc != nil {
				pc.shutdown()
			}
		}
		s.conn.Close()
		if !errors.Is(err, ErrSessionClosed) {
			s.log.Debug("rmcpplus session ended", "err", err)
		}
	})
}

// Keepalive: a BMC closes a session that stays silent for its session
// inactivity timeout (ipmi_sim: 30 s; 60 s is common). When nothing has been heard from the BMC for cfg.KeepAlive, the
// session sends Get Channel Authentication Capabilities, which every BMC
// answers cheaply inside a session; if that goes unanswered the session is
// lost. The timer costs no goroutine while it waits.

func (s *Session) startKeepalive() {
	s.lastRecv.Store(time.Now().UnixNano())
	t := time.AfterFunc(time.Hour, s.keepaliveDue)
	s.keepalive.Store(t)
	if s.Err() != nil {
		t.Stop()
		return
	}
	t.Reset(s.cfg.KeepAlive)
}

func (s *Session) keepaliveDue() {
	t := s.keepalive.Load()
	if s.Err() != nil {
		return
	}
	idle := time.Duration(time.Now().UnixNano() - s.lastRecv.Load())
	if idle < s.cfg.KeepAlive {
		t.Reset(s.cfg.KeepAlive - idle)
		return
	}
	_, err := s.exchange(context.Background(), sendInSession, ipmi.NetFnApp, ipmi.CmdGetChannelAuthCapabilities,
		s.authCapsRequest(), s.cfg.Timeout, s.attempts)
	if err != nil {
		if s.Err() == nil {
			s.end(&sessionLostError{addr: s.addrText, during: "keepalive", cause: err})
		}
		return
	}
	if s.Err() == nil {
		t.Reset(s.cfg.KeepAlive)
	}
}
