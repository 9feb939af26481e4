package rmcpplus

import (
	"bytes"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"obmd/ipmi"
)

// sessionState is where a BMC-side session is in its life.
type sessionState uint8

const (
	stateAwaitRAKP1 sessionState = iota // Open Session answered
	stateAwaitRAKP3                     // RAKP 2 sent
	stateActive                         // RAKP 4 sent: authenticated traffic
)

// ServerSession is one session on the BMC side. Its mutable fields are
// guarded by the Server's mutex.
type ServerSession struct {
	srv       *Server
	id        uint32 // the BMC's session ID (SIDc)
	consoleID uint32 // the console's session ID (SIDm)
	suite     CipherSuite
	openPriv  ipmi.PrivilegeLevel // granted in the Open Session Response
	remote    net.Addr            // where Open Session came from
	conn      net.PacketConn      // the socket it came in on

	state      sessionState
	ended      bool
	lastActive time.Time
	done       chan struct{}

	// Handshake (RAKP 1-3).
	rm, rc    [16]byte
	role      uint8
	username  string
	hashName  string // the name in the RAKP 2 auth code and the SIK (ServerQuirks.Intel20 pads it)
	rakp3Role uint8  // ROLEm in the RAKP 3 auth code
	password  []byte // until RAKP 3 is checked
	maxPriv   ipmi.PrivilegeLevel
	rakp3Code []byte
	rakp4     []byte

	// Active session.
	keys               *SessionKeys
	priv               ipmi.PrivilegeLevel
	inAuth, inUnauth   seqWindow // section 6.12.13
	outAuth, outUnauth atomic.Uint32
	routes             map[PayloadType]payloadRoute
	handlers           map[PayloadType]func([]byte)
	recent             responseCache
}

// payloadRoute is where a payload type's packets to the console go: the
// socket and address the console last sent that type from.
type payloadRoute struct {
	conn net.PacketConn
	addr net.Addr
}

// ID is the BMC's session ID.
func (ss *ServerSession) ID() uint32 { return ss.id }

// Username is the user the session authenticated as.
func (ss *ServerSession) Username() string {
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	return ss.username
}

// Privilege is the session's current privilege level (Set Session
// Privilege Level changes it).
func (ss *ServerSession) Privilege() ipmi.PrivilegeLevel {
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	return ss.priv
}

// Done is closed when the session ends: idle expiry, Close Session,
// DropAllSessions or Server.Close.
func (ss *ServerSession) Done() <-chan struct{} { return ss.done }

// SetPayloadHandler sets the function that receives this session's inbound
// payloads of type pt (decrypted, owned by h); nil removes it. h runs on
// the reading goroutine and must not block long.
func (ss *ServerSession) SetPayloadHandler(pt PayloadType, h func(payload []byte)) {
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	if h == nil {
		delete(ss.handlers, pt)
		return
	}
	if ss.handlers == nil {
		ss.handlers = make(map[PayloadType]func([]byte))
	}
	ss.handlers[pt] = h
}

// SendPayload seals a payload of type pt with the session's keys and sends
// it to the console: to the address that last sent this payload type, else
// to the one that opened the session. Safe from any goroutine.
func (ss *ServerSession) SendPayload(pt PayloadType, b []byte) error {
	srv := ss.srv
	srv.mu.Lock()
	if ss.ended {
		srv.mu.Unlock()
		return ErrSessionClosed
	}
	if ss.state != stateActive {
		srv.mu.Unlock()
		return fmt.Errorf("rmcpplus: session %08x is not active yet", ss.id)
	}
	r, ok := ss.routes[pt]
	if !ok {
		r = payloadRoute{conn: ss.conn, addr: ss.remote}
	}
	srv.mu.Unlock()
	pkt, err := ss.keys.AppendSealed(make([]byte, 0, len(b)+80), pt, ss.consoleID, ss.nextSeq(), b)
	if err != nil {
		return err
	}
	if r.conn == nil {
		return nil // handled without a socket (fuzzing, unit tests)
	}
	_, err = r.conn.WriteTo(pkt, r.addr)
	return err
}

// nextSeq takes the next outbound session sequence number: separate
// counters for authenticated and unauthenticated packets, from 1 (section
// 6.12.13).
func (ss *ServerSession) nextSeq() uint32 {
	if ss.suite.Integrity != IntegrityNone {
		return ss.outAuth.Add(1)
	}
	return ss.outUnauth.Add(1)
}

// sessionPacket handles a packet for an established session: sequence
// window, integrity and decryption, then IPMI or another payload type.
func (srv *Server) sessionPacket(st *serveState, p *Packet, from net.Addr, via net.PacketConn) []byte {
	srv.mu.Lock()
	ss := srv.sessions[p.SessionID]
	if ss == nil || ss.state != stateActive {
		srv.mu.Unlock()
		return nil // packets of unknown sessions are silently ignored
	}
	window := &ss.inUnauth
	if p.Authenticated {
		window = &ss.inAuth
	}
	fresh := window.check(p.Seq)
	keys := ss.keys
	srv.mu.Unlock()
	if !fresh {
		srv.rejectedSeq.Add(1)
		return nil // a replay or duplicate, or too old
	}
	plain, err := keys.AppendOpen(st.plain[:0], p)
	if err != nil {
		return nil
	}
	st.plain = plain

	pt := p.PayloadType
	srv.mu.Lock()
	if ss.ended || !window.accept(p.Seq) {
		srv.mu.Unlock()
		srv.rejectedSeq.Add(1)
		return nil
	}
	ss.lastActive = time.Now()
	var h func([]byte)
	if pt != PayloadIPMI {
		if r, ok := ss.routes[pt]; !ok || r.conn != via || !sameAddr(r.addr, from) {
			if ss.routes == nil {
				ss.routes = make(map[PayloadType]payloadRoute)
			}
			ss.routes[pt] = payloadRoute{conn: via, addr: from}
		}
		h = ss.handlers[pt]
	}
	srv.mu.Unlock()

	if pt == PayloadIPMI {
		return srv.serveIPMI(st, ss, plain)
	}
	if h != nil {
		h(bytes.Clone(plain))
	}
	return nil
}

// serveIPMI answers an IPMI request inside a session.
func (srv *Server) serveIPMI(st *serveState, ss *ServerSession, payload []byte) []byte {
	req, err := ipmi.ParseMessage(payload)
	if err != nil || req.NetFn.IsResponse() {
		return nil
	}
	now := time.Now()
	srv.mu.Lock()
	if cached := ss.recent.lookup(req, now); cached != nil {
		st.msg = append(st.msg[:0], cached...)
		srv.mu.Unlock()
		return srv.seal(st, ss, st.msg)
	}
	srv.mu.Unlock()

	closing := false
	var cc ipmi.CompletionCode
	var data []byte
	switch {
	case req.NetFn == ipmi.NetFnApp && req.Cmd == ipmi.CmdGetChannelAuthCapabilities:
		cc, data = srv.authCaps(req.Data)
	case req.NetFn == ipmi.NetFnApp && req.Cmd == ipmi.CmdGetChannelCipherSuites:
		cc, data = srv.cipherSuites(req.Data)
	case req.NetFn == ipmi.NetFnApp && req.Cmd == ipmi.CmdSetSessionPrivilegeLevel:
		cc, data = srv.setSessionPrivilege(ss, req.Data)
	case req.NetFn == ipmi.NetFnApp && req.Cmd == ipmi.CmdCloseSession:
		cc, closing = srv.closeSession(ss, req.Data)
	case srv.cfg.Handler != nil:
		cc, data = srv.cfg.Handler.ServeIPMI(ss, req)
	default:
		cc = ipmi.CCInvalidCommand
	}
	st.msg = ipmi.NewResponse(req, cc, data).AppendTo(st.msg[:0])
	srv.cfg.Quirks.corruptChecksum(st.msg)
	out := srv.seal(st, ss, st.msg)
	srv.mu.Lock()
	if closing {
		// Section 22.19: the answer goes out under the session's keys,
		// then the session is gone.
		srv.endLocked(ss, "Close Session")
	} else {
		ss.recent.store(req, st.msg, now)
	}
	srv.mu.Unlock()
	return out
}

// seal frames an IPMI response message for the session.
func (srv *Server) seal(st *serveState, ss *ServerSession, msg []byte) []byte {
	out, err := ss.keys.AppendSealed(st.out[:0], PayloadIPMI, ss.consoleID, ss.nextSeq(), msg)
	if err != nil {
		srv.log.Debug("rmcpplus server: sealing failed", "session", ss.id, "err", err)
		return nil
	}
	st.out = out
	return out
}

// Command-specific completion codes of Set Session Privilege Level
// (section 22.18) and Close Session (section 22.19).
const (
	ccPrivExceedsLimit   ipmi.CompletionCode = 0x81 // exceeds channel and/or user privilege limit
	ccCloseInvalidID     ipmi.CompletionCode = 0x87 // invalid session ID in request
	ccCloseInvalidHandle ipmi.CompletionCode = 0x88 // invalid session handle in request
)

// setSessionPrivilege is Set Session Privilege Level (section 22.18):
// 0 asks for the present level; a level above the session's maximum (the
// one RAKP 1 established) is refused with 81h.
func (srv *Server) setSessionPrivilege(ss *ServerSession, data []byte) (ipmi.CompletionCode, []byte) {
	var req ipmi.SetSessionPrivilegeLevelReq
	if cc := decodeRequest(&req, data, 1); cc != ipmi.CCOK {
		return cc, nil
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	refusal, refused := srv.cfg.Quirks.privilegeRefused(req.Level)
	switch want := req.Level; {
	case want == 0:
	case want > ipmi.PrivilegeOEM:
		return ipmi.CCInvalidDataField, nil
	case want > ss.maxPriv:
		return ccPrivExceedsLimit, nil
	case refused:
		return refusal, nil
	default:
		ss.priv = want
	}
	rsp := ipmi.SetSessionPrivilegeLevelRsp{Level: ss.priv}
	return ipmi.CCOK, rsp.Marshal()
}

// closeSession is Close Session (section 22.19). It reports whether the
// requesting session itself is to close after the answer. Closing another
// session takes Administrator privilege.
func (srv *Server) closeSession(ss *ServerSession, data []byte) (ipmi.CompletionCode, bool) {
	var req ipmi.CloseSessionReq
	if cc := decodeRequest(&req, data, 5); cc != ipmi.CCOK {
		if len(data) == 4 {
			// Session ID 0 without the handle byte: no session has ID 0.
			return ccCloseInvalidID, false
		}
		return cc, false
	}
	if req.SessionID == 0 {
		return ccCloseInvalidHandle, false // session handles are not tracked
	}
	if req.SessionID == ss.id {
		return ipmi.CCOK, true
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	other := srv.sessions[req.SessionID]
	switch {
	case other == nil:
		return ccCloseInvalidID, false
	case ss.priv < ipmi.PrivilegeAdministrator:
		return ipmi.CCInsufficientPrivilege, false
	}
	srv.endLocked(other, "closed by session "+fmt.Sprintf("%08x", ss.id))
	return ipmi.CCOK, false
}

// responseCache keeps the last few answers of a session so that a
// retransmitted request (the console got no answer in time and sent the
// same rqSeq, command and data again) is answered the same way instead of
// being executed twice: think Chassis Control. A request counts as a
// retransmission only if it matches one of the last few requests, recently.
// Consoles hand out rqSeq numbers in rotation, so a new request with the
// same rqSeq comes only after many others.
type responseCache struct {
	entries [4]cachedResponse
	next    int
}

type cachedResponse struct {
	used  bool
	at    time.Time
	netfn ipmi.NetFn
	cmd   ipmi.Command
	seq   uint8
	req   []byte // request data
	rsp   []byte // response message
}

func (c *responseCache) lookup(req *ipmi.Message, now time.Time) []byte {
	for i := range c.entries {
		e := &c.entries[i]
		if e.used && e.seq == req.Seq && e.cmd == req.Cmd && e.netfn == req.NetFn &&
			now.Sub(e.at) < retransmitWindow && bytes.Equal(e.req, req.Data) {
			return e.rsp
		}
	}
	return nil
}

func (c *responseCache) store(req *ipmi.Message, rsp []byte, now time.Time) {
	e := &c.entries[c.next]
	c.next = (c.next + 1) % len(c.entries)
	e.used, e.at, e.netfn, e.cmd, e.seq = true, now, req.NetFn, req.Cmd, req.Seq
	e.req = append(e.req[:0], req.Data...)
	e.rsp = append(e.rsp[:0], rsp...)
}
