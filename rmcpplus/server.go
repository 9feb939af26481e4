package rmcpplus

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"obmd/ipmi"
)

// ServerConfig configures the BMC side of RMCP+ for one simulated BMC.
type ServerConfig struct {
	GUID [16]byte
	// Users looks a user up by name (RAKP 1). It is called on a reading
	// goroutine and must be quick.
	Users        func(name string) (password []byte, maxPriv ipmi.PrivilegeLevel, ok bool)
	Kg           []byte
	CipherSuites []uint8 // offered; default 17, 3, 2, 1
	AllowSuite0  bool    // accept cipher suite 0 (no authentication at all)
	MaxSessions  int     // default 8; pending handshakes count too
	IdleTimeout  time.Duration
	Handler      Handler
	Logger       *slog.Logger // nil: no logging
	// Quirks make the server misbehave as some real BMCs do (tests and
	// fakebmc); zero: it follows the specification.
	Quirks ServerQuirks
}

// Server defaults.
const (
	DefaultMaxSessions = 8
	DefaultIdleTimeout = 60 * time.Second
	// handshakeTimeout drops a session whose handshake stalls, so half-open
	// sessions cannot hold the session table for the whole idle timeout.
	handshakeTimeout = 10 * time.Second
	// retransmitWindow is how long an answer is kept for a retransmitted
	// request (see responseCache).
	retransmitWindow = 5 * time.Second
)

// defaultServerSuites are the suites a server offers unless configured.
var defaultServerSuites = []uint8{17, 3, 2, 1}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("rmcpplus: server closed")

// Handler serves the IPMI commands the session layer does not handle
// itself. It returns the completion code and the response data after it.
// It runs on the reading goroutine; req.Data is valid only during the call.
type Handler interface {
	ServeIPMI(s *ServerSession, req *ipmi.Message) (ipmi.CompletionCode, []byte)
}

// Server accepts RMCP+ sessions for one BMC (IPMI v2.0 sections 13.14-13.33,
// the managed system's side) and answers the session-layer commands; every
// other IPMI command goes to the Handler.
//
// It is built to run by the thousand in one process: it costs one
// goroutine per served socket, and session expiry uses one timer per
// Server, armed only while sessions exist.
type Server struct {
	cfg       ServerConfig
	log       *slog.Logger
	offered   []uint8 // cipher suite IDs offered, in preference order
	suiteList []byte  // Get Channel Cipher Suites records, by suite
	algList   []byte  // Get Channel Cipher Suites records, by algorithm

	mu       sync.Mutex
	sessions map[uint32]*ServerSession // by the BMC's (managed) session ID
	conns    map[net.PacketConn]struct{}
	closed   bool
	expiry   *time.Timer
	expiryAt time.Time // when expiry fires; zero when not armed

	rejectedSeq  atomic.Uint64 // session packets refused by the sequence window
	openRequests atomic.Uint64 // Open Session Requests received

	resendSeen map[string]struct{} // (mu) console addresses served (ServerQuirks.HandshakeResendError)
}

// OpenSessionRequests is the number of RMCP+ Open Session Requests
// received (retransmissions included): one per handshake a console
// starts.
func (srv *Server) OpenSessionRequests() uint64 { return srv.openRequests.Load() }

// NewServer returns a Server; call Serve for each socket it answers on.
func NewServer(cfg ServerConfig) *Server {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	suites := cfg.CipherSuites
	if len(suites) == 0 {
		suites = defaultServerSuites
	}
	var offered []uint8
	for _, id := range suites {
		if _, ok := CipherSuiteByID(id); ok && (id != 0 || cfg.AllowSuite0) && !slices.Contains(offered, id) {
			offered = append(offered, id)
		}
	}
	if cfg.AllowSuite0 && !slices.Contains(offered, 0) {
		offered = append(offered, 0)
	}
	records := make([]ipmi.CipherSuiteRecord, len(offered))
	for i, id := range offered {
		cs, _ := CipherSuiteByID(id)
		records[i] = cs.record()
	}
	return &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		offered:   offered,
		suiteList: ipmi.AppendCipherSuiteRecords(nil, records),
		algList:   algorithmList(records),
		sessions:  make(map[uint32]*ServerSession),
		conns:     make(map[net.PacketConn]struct{}),
	}
}

// serverDatagram is the read buffer size of Serve: an Ethernet MTU, more
// than any IPMI or SOL packet a console sends.
const serverDatagram = 1500

// Serve answers datagrams on conn until conn fails or the Server is
// closed (then it returns ErrServerClosed). Serve may run on several
// sockets at once (say, the IPMI port and a separate SOL port); they share
// the sessions. Close closes every conn being served.
func (srv *Server) Serve(conn net.PacketConn) error {
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		return ErrServerClosed
	}
	srv.conns[conn] = struct{}{}
	srv.mu.Unlock()
	defer func() {
		srv.mu.Lock()
		delete(srv.conns, conn)
		srv.mu.Unlock()
	}()

	st := new(serveState)
	buf := make([]byte, serverDatagram)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if srv.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if reply := srv.handleDatagram(st, buf[:n], from, conn); len(reply) > 0 {
			if _, err := conn.WriteTo(reply, from); err != nil {
				srv.log.Debug("rmcpplus server: write failed", "to", from, "err", err)
			}
		}
	}
}

func (srv *Server) isClosed() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.closed
}

// DropAllSessions ends every session at once, as a BMC reset would: their
// Done channels close and later packets for them are ignored.
func (srv *Server) DropAllSessions() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, ss := range srv.sessions {
		srv.endLocked(ss, "dropped")
	}
}

// Close ends every session and closes the sockets being served. It is
// idempotent.
func (srv *Server) Close() error {
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		return nil
	}
	srv.closed = true
	for _, ss := range srv.sessions {
		srv.endLocked(ss, "server closed")
	}
	if srv.expiry != nil {
		srv.expiry.Stop()
	}
	conns := make([]net.PacketConn, 0, len(srv.conns))
	for c := range srv.conns {
		conns = append(conns, c)
	}
	srv.mu.Unlock()
	var errs []error
	for _, c := range conns {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// serveState is the scratch space of one serving goroutine, reused for
// every datagram.
type serveState struct {
	p     Packet
	out   []byte // the reply datagram
	msg   []byte // an IPMI response message
	plain []byte // a decrypted payload
}

// handleDatagram answers one datagram from from, received on via; the
// reply (nil for none) aliases st. It never panics on any input: see
// FuzzServerDatagram.
func (srv *Server) handleDatagram(st *serveState, b []byte, from net.Addr, via net.PacketConn) []byte {
	p := &st.p
	if err := p.Unmarshal(b); err != nil {
		return nil
	}
	if p.ASF != nil {
		// IPMI v2.0 section 13.2.3: answer a presence ping with a pong.
		if p.ASF.Type == ASFTypePing {
			st.out = AppendASFPong(st.out[:0], p.ASF.Tag)
			return st.out
		}
		return nil
	}
	if !p.IsV2() {
		// IPMI v1.5 packets: only the pre-session discovery commands, with
		// auth type none and session ID 0 (no v1.5 sessions).
		if p.AuthType != AuthTypeNone || p.SessionID != 0 {
			return nil
		}
		return srv.preSessionIPMI(st, p.Payload, false)
	}
	if p.SessionID == 0 {
		// Outside a session: handshake messages and pre-session IPMI
		// requests, always unauthenticated.
		if p.Authenticated || p.Encrypted {
			return nil
		}
		switch p.PayloadType {
		case PayloadIPMI:
			return srv.preSessionIPMI(st, p.Payload, true)
		case PayloadOpenSessionReq:
			return srv.openSession(st, p.Payload, from, via)
		case PayloadRAKP1:
			return srv.rakp1(st, p.Payload, from)
		case PayloadRAKP3:
			return srv.rakp3(st, p.Payload)
		}
		return nil
	}
	return srv.sessionPacket(st, p, from, via)
}

// preSessionIPMI answers the IPMI requests a BMC accepts outside a session:
// Get Channel Authentication Capabilities (section 22.13) and Get Channel
// Cipher Suites (section 22.15), in the packet format they came in (v1.5,
// or RMCP+ as ipmitool sends the latter).
func (srv *Server) preSessionIPMI(st *serveState, payload []byte, v2 bool) []byte {
	req, err := ipmi.ParseMessage(payload)
	if err != nil || req.NetFn.IsResponse() || req.NetFn != ipmi.NetFnApp {
		return nil
	}
	var cc ipmi.CompletionCode
	var data []byte
	switch req.Cmd {
	case ipmi.CmdGetChannelAuthCapabilities:
		cc, data = srv.authCaps(req.Data)
	case ipmi.CmdGetChannelCipherSuites:
		if srv.cfg.Quirks.NoCipherSuiteList {
			return nil
		}
		cc, data = srv.cipherSuites(req.Data)
	default:
		return nil
	}
	st.msg = ipmi.NewResponse(req, cc, data).AppendTo(st.msg[:0])
	if v2 {
		st.out = AppendV2(st.out[:0], PayloadIPMI, 0, 0, st.msg)
	} else {
		st.out = AppendV15(st.out[:0], 0, 0, st.msg)
	}
	return st.out
}

// lanChannel is the channel number of this BMC's LAN channel, the one
// its answers name (IPMI v2.0 section 6.3: 0Eh in a request means "this
// channel").
const lanChannel = 0x01

// isThisChannel reports whether a request's channel number means the
// channel it arrived on.
func isThisChannel(ch uint8) bool { return ch == ipmi.ChannelCurrent || ch == lanChannel }

// decodeRequest decodes the first n bytes of a request's data (the
// command's length in the spec) into req; bytes after them are ignored, not
// refused. It returns the completion code of a request that does not decode
// (0xC7 when it is too short), else 0x00.
func decodeRequest(req ipmi.Codec, data []byte, n int) ipmi.CompletionCode {
	return ipmi.CompletionCodeFor(req.Unmarshal(data[:min(len(data), n)]))
}

// authCaps answers Get Channel Authentication Capabilities (section
// 22.13) with the IPMI v2.0 extended data: RMCP+ supported, no IPMI v1.5
// authentication types, non-null user names, and whether a non-zero Kg is
// set.
func (srv *Server) authCaps(data []byte) (ipmi.CompletionCode, []byte) {
	var req ipmi.GetChannelAuthCapabilitiesReq
	if cc := decodeRequest(&req, data, 2); cc != ipmi.CCOK {
		return cc, nil
	}
	if !isThisChannel(req.Channel) {
		return ipmi.CCInvalidDataField, nil
	}
	if p := req.MaxPrivilege; p < ipmi.PrivilegeCallback || p > ipmi.PrivilegeOEM {
		return ipmi.CCInvalidDataField, nil
	}
	rsp := ipmi.GetChannelAuthCapabilitiesRsp{
		Channel:              lanChannel,
		ExtendedCapabilities: true,
		KgStatus:             len(SIKKey(srv.cfg.Kg, nil)) > 0,
		NonNullUsers:         true,
		SupportsV20:          true,
	}
	return ipmi.CCOK, rsp.Marshal()
}

// cipherSuites answers Get Channel Cipher Suites (section 22.15): page
// "list index" of the cipher suite records or, with byte 3 bit 7 clear,
// of the algorithm list.
func (srv *Server) cipherSuites(data []byte) (ipmi.CompletionCode, []byte) {
	var req ipmi.GetChannelCipherSuitesReq
	if cc := decodeRequest(&req, data, 3); cc != ipmi.CCOK {
		return cc, nil
	}
	if !isThisChannel(req.Channel) {
		return ipmi.CCInvalidDataField, nil
	}
	list := srv.algList
	if req.ListByAlgorithm {
		list = srv.suiteList
	}
	rsp := ipmi.GetChannelCipherSuitesRsp{Channel: lanChannel, Records: ipmi.CipherSuiteRecordPage(list, req.ListIndex)}
	return ipmi.CCOK, rsp.Marshal()
}

// algorithmList is what Get Channel Cipher Suites lists when byte 3 bit 7
// of the request is clear (section 22.15, "list supported algorithms"):
// each algorithm of the suites once, in order of first use, as the tagged
// byte a cipher suite record carries (Table 22-19).
func algorithmList(records []ipmi.CipherSuiteRecord) []byte {
	var seen [256]bool
	var list []byte
	for _, r := range records {
		// A standard record is C0h, the suite ID, then its three tagged
		// algorithm bytes.
		for _, alg := range ipmi.AppendCipherSuiteRecords(nil, []ipmi.CipherSuiteRecord{r})[2:] {
			if !seen[alg] {
				seen[alg] = true
				list = append(list, alg)
			}
		}
	}
	return list
}

// newSessionIDLocked picks a random, non-zero session ID not in use
// (section 13.18: the managed system's session ID).
func (srv *Server) newSessionIDLocked() uint32 {
	var b [4]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic("rmcpplus: crypto/rand failed: " + err.Error())
		}
		id := binary.LittleEndian.Uint32(b[:])
		if _, used := srv.sessions[id]; id != 0 && !used {
			return id
		}
	}
}

// endLocked removes a session and closes its Done channel.
func (srv *Server) endLocked(ss *ServerSession, why string) {
	if ss.ended {
		return
	}
	ss.ended = true
	delete(srv.sessions, ss.id)
	close(ss.done)
	srv.log.Debug("rmcpplus server: session ended", "session", ss.id, "user", ss.username, "why", why)
}

// Session expiry: a BMC closes a session after a period of inactivity (the
// spec's session inactivity timeout). One timer per Server fires at the earliest
// deadline; activity only moves a session's deadline, and the sweep re-arms
// the timer for whatever is next.

// deadlineLocked is when ss expires unless it hears from its console.
func (srv *Server) deadlineLocked(ss *ServerSession) time.Time {
	if ss.state == stateActive {
		return ss.lastActive.Add(srv.cfg.IdleTimeout)
	}
	return ss.lastActive.Add(min(srv.cfg.IdleTimeout, handshakeTimeout))
}

// armExpiryLocked makes sure the timer fires no later than at.
func (srv *Server) armExpiryLocked(at time.Time) {
	if srv.closed || (!srv.expiryAt.IsZero() && !at.Before(srv.expiryAt)) {
		return
	}
	srv.expiryAt = at
	d := time.Until(at)
	if srv.expiry == nil {
		srv.expiry = time.AfterFunc(d, srv.sweep)
		return
	}
	srv.expiry.Reset(d)
}

// sweep ends the sessions past their deadline and re-arms for the next.
func (srv *Server) sweep() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.expiryAt = time.Time{}
	now := time.Now()
	var next time.Time
	for _, ss := range srv.sessions {
		dl := srv.deadlineLocked(ss)
		if !now.Before(dl) {
			srv.endLocked(ss, "idle timeout")
			continue
		}
		if next.IsZero() || dl.Before(next) {
			next = dl
		}
	}
	if !next.IsZero() {
		srv.armExpiryLocked(next)
	}
}
