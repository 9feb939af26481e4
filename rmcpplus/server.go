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

	rejectedSeq atomic.Uint64 // session packets refused by the sequence window
}

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
	return &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		offered:   offered,
		suiteList: cipherSuiteRecords(offered),
		algList:   cipherSuiteAlgorithms(offered),
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
			return srv.rakp1(st, p.Payload)
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
		cc, data = srv.cipherSuites(req.Data)
	default:
		return nil
	}
	st.msg = appendResponse(st.msg[:0], req, cc, data)
	if v2 {
		st.out = AppendV2(st.out[:0], PayloadIPMI, 0, 0, st.msg)
	} else {
		st.out = AppendV15(st.out[:0], 0, 0, st.msg)
	}
	return st.out
}

// appendResponse appends the response message to req (section 13.8):
// addresses and LUNs swapped, the response NetFn, req's rqSeq and command,
// then the completion code and data.
func appendResponse(b []byte, req *ipmi.Message, cc ipmi.CompletionCode, data []byte) []byte {
	start := len(b)
	b = append(b, req.SrcAddr, uint8(req.NetFn.Response())<<2|req.SrcLUN&3)
	b = append(b, ipmi.Checksum(b[start:]))
	mid := len(b)
	b = append(b, req.DstAddr, req.Seq<<2|req.DstLUN&3, uint8(req.Cmd), uint8(cc))
	b = append(b, data...)
	return append(b, ipmi.Checksum(b[mid:]))
}

// authCaps answers Get Channel Authentication Capabilities (section
// 22.13) with the IPMI v2.0 extended data: RMCP+ supported, non-null user
// names, and whether a non-zero Kg is set.
func (srv *Server) authCaps(req []byte) (ipmi.CompletionCode, []byte) {
	if len(req) < 2 {
		return ipmi.CCDataLengthInvalid, nil
	}
	if ch := req[0] & 0x0F; ch != channelCurrent && ch != lanChannel {
		return ipmi.CCInvalidDataField, nil
	}
	if p := ipmi.PrivilegeLevel(req[1] & 0x0F); p < ipmi.PrivilegeCallback || p > ipmi.PrivilegeOEM {
		return ipmi.CCInvalidDataField, nil
	}
	status := uint8(authCapsNonNullUsernames)
	if len(SIKKey(srv.cfg.Kg, nil)) > 0 {
		status |= 0x20 // byte 3 bit 5: Kg is set to a non-zero value
	}
	caps := channelAuthCaps{
		Channel:   lanChannel,
		AuthTypes: authCapsExtendedAvailable,
		Status:    status,
		Extended:  authCapsIPMI20,
	}
	return ipmi.CCOK, caps.appendTo(nil)
}

// cipherSuites answers Get Channel Cipher Suites (section 22.15): 16-byte
// chunk "list index" of the records, fewer bytes in the last chunk.
func (srv *Server) cipherSuites(req []byte) (ipmi.CompletionCode, []byte) {
	if len(req) < 3 {
		return ipmi.CCDataLengthInvalid, nil
	}
	if ch := req[0] & 0x0F; ch != channelCurrent && ch != lanChannel {
		return ipmi.CCInvalidDataField, nil
	}
	list := srv.algList
	if req[2]&0x80 != 0 {
		list = srv.suiteList
	}
	start := min(int(req[2]&0x3F)*cipherSuitesChunk, len(list))
	end := min(start+cipherSuitesChunk, len(list))
	return ipmi.CCOK, append([]byte{lanChannel}, list[start:end]...)
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
