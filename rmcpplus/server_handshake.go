package rmcpplus

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"net"
	"time"

	"obmd/ipmi"
)

// The managed system's side of session establishment: Open Session and
// RAKP 1-4, IPMI v2.0 sections 13.17-13.23 and 13.31. A retransmitted
// request gets the same answer again: the BMC random number Rc is fixed
// when the session is created, so a repeated RAKP 1 yields an identical
// RAKP 2, and the RAKP 4 is kept for a repeated RAKP 3.

// openSession answers an Open Session Request (section 13.17) with an Open
// Session Response (section 13.18).
func (srv *Server) openSession(st *serveState, payload []byte, from net.Addr, via net.PacketConn) []byte {
	srv.openRequests.Add(1)
	var req OpenSessionRequest
	if err := req.Unmarshal(payload); err != nil {
		if len(payload) < 8 {
			return nil
		}
		// Enough to address an answer: tag and console session ID.
		rsp := OpenSessionResponse{Tag: payload[0], Status: RAKPIllegalOrUnrecognizedParameter,
			ConsoleSessionID: binary.LittleEndian.Uint32(payload[4:8])}
		return srv.handshakeReply(st, PayloadOpenSessionRsp, srv.cfg.Quirks.openSessionRefusal(rsp))
	}
	rsp := OpenSessionResponse{Tag: req.Tag, ConsoleSessionID: req.ConsoleSessionID}
	fail := func(status RAKPStatus) []byte {
		rsp.Status = status
		srv.log.Debug("rmcpplus server: Open Session refused", "from", from, "status", status)
		return srv.handshakeReply(st, PayloadOpenSessionRsp, srv.cfg.Quirks.openSessionRefusal(rsp))
	}
	if req.ConsoleSessionID == 0 {
		return fail(RAKPInvalidSessionID)
	}
	suite, ok := srv.suiteFor(req.Auth, req.Integrity, req.Confidentiality)
	if !ok {
		return fail(RAKPNoCipherSuiteMatch)
	}
	if status, refused := srv.cfg.Quirks.refuseSuite(suite.ID); refused {
		return fail(status)
	}
	// The privilege actually granted goes back in the response: a request
	// for 0 ("highest available", which FreeIPMI sends) gets the channel
	// limit, Administrator; FreeIPMI rejects a response that echoes 0.
	priv := req.MaxPrivilege
	switch {
	case priv == ipmi.PrivilegeHighest:
		priv = ipmi.PrivilegeAdministrator
	case priv > ipmi.PrivilegeOEM:
		return fail(RAKPInvalidRole)
	}

	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed {
		return nil
	}
	now := time.Now()
	// A retransmitted request: the same console session, handshake not yet
	// under way, from the same place. Answer with the same session.
	for _, ss := range srv.sessions {
		if ss.consoleID == req.ConsoleSessionID && ss.state == stateAwaitRAKP1 &&
			ss.suite == suite && ss.openPriv == priv && sameAddr(ss.remote, from) {
			ss.lastActive = now
			return srv.openSessionOK(st, rsp, ss)
		}
	}
	if len(srv.sessions) >= srv.cfg.MaxSessions {
		return fail(RAKPInsufficientResources)
	}
	ss := &ServerSession{
		srv:        srv,
		id:         srv.newSessionIDLocked(),
		consoleID:  req.ConsoleSessionID,
		suite:      suite,
		openPriv:   priv,
		remote:     from,
		conn:       via,
		state:      stateAwaitRAKP1,
		lastActive: now,
		done:       make(chan struct{}),
	}
	if _, err := rand.Read(ss.rc[:]); err != nil {
		return fail(RAKPInsufficientResources)
	}
	srv.sessions[ss.id] = ss
	srv.armExpiryLocked(srv.deadlineLocked(ss))
	srv.log.Debug("rmcpplus server: session opened", "session", ss.id, "suite", suite.ID, "from", from)
	return srv.openSessionOK(st, rsp, ss)
}

func (srv *Server) openSessionOK(st *serveState, rsp OpenSessionResponse, ss *ServerSession) []byte {
	rsp.Status = RAKPNoErrors
	rsp.MaxPrivilege = ss.openPriv
	rsp.ManagedSessionID = ss.id
	rsp.Auth, rsp.Integrity, rsp.Confidentiality = ss.suite.Auth, ss.suite.Integrity, ss.suite.Confidentiality
	return srv.handshakeReply(st, PayloadOpenSessionRsp, rsp.Marshal())
}

// suiteFor finds the offered suite made of exactly these algorithms.
func (srv *Server) suiteFor(a AuthAlgorithm, i IntegrityAlgorithm, c ConfidentialityAlgorithm) (CipherSuite, bool) {
	cs, ok := CipherSuiteByAlgorithms(a, i, c)
	if !ok {
		return CipherSuite{}, false
	}
	for _, id := range srv.offered {
		if id == cs.ID {
			return cs, true
		}
	}
	return CipherSuite{}, false
}

// rakp1 answers RAKP Message 1 (section 13.20) with RAKP Message 2
// (section 13.21): the user must exist (else 0Dh unauthorized name) and may
// not ask for more than its own maximum privilege or the one granted in
// Open Session (else 0Ah unauthorized role). Any failure ends the session.
func (srv *Server) rakp1(st *serveState, payload []byte, from net.Addr) []byte {
	var r1 RAKP1
	if err := r1.Unmarshal(payload); err != nil {
		if len(payload) >= rakp1MinLen && payload[27] > MaxUsernameLength {
			return srv.rakp1Failed(st, payload[0], binary.LittleEndian.Uint32(payload[4:8]), RAKPInvalidNameLength)
		}
		return nil
	}
	q := &srv.cfg.Quirks
	name := q.lookupName(r1.Username)
	// Look the user up before taking the lock: Users is the caller's code.
	var password []byte
	var userMax ipmi.PrivilegeLevel
	known := false
	if srv.cfg.Users != nil {
		password, userMax, known = srv.cfg.Users(name)
	}

	srv.mu.Lock()
	defer srv.mu.Unlock()
	ss := srv.sessions[r1.ManagedSessionID]
	if ss == nil {
		return srv.refuseRAKP1Locked(st, r1.Tag, nil, RAKPInvalidSessionID)
	}
	if ss.state == stateActive {
		return nil // a stale copy; the handshake is over
	}
	fail := func(status RAKPStatus) []byte { return srv.refuseRAKP1Locked(st, r1.Tag, ss, status) }
	if ss.state == stateAwaitRAKP3 && q.HandshakeResendError {
		return fail(RAKPInactiveSessionID) // a repeated RAKP 1, not recognised as one
	}
	lookupBit := r1.Role&RoleNameOnlyLookup != 0
	want := ipmi.PrivilegeLevel(r1.Role & rolePrivilegeMask)
	switch {
	case r1.Role&^(rolePrivilegeMask|RoleNameOnlyLookup) != 0 || want > ipmi.PrivilegeOEM:
		return fail(RAKPInvalidRole)
	case lookupBit && q.NameOnlyLookupRefused, !lookupBit && q.Intel20:
		return fail(RAKPInvalidRole)
	case !known:
		return fail(RAKPUnauthorizedName)
	case want == ipmi.PrivilegeHighest:
		want = min(userMax, ss.openPriv)
	case want > userMax || want > ss.openPriv:
		return fail(RAKPUnauthorizedRole)
	}
	ss.rm = r1.ConsoleRandom
	ss.role = r1.Role
	ss.username = name
	ss.hashName, ss.rakp3Role = q.rakpInputs(r1.Username, r1.Role)
	ss.password = password
	ss.maxPriv = want
	ss.state = stateAwaitRAKP3
	ss.lastActive = time.Now()
	r2 := RAKP2{
		Tag:              r1.Tag,
		ConsoleSessionID: ss.consoleID,
		ManagedRandom:    ss.rc,
		ManagedGUID:      srv.cfg.GUID,
		AuthCode: q.rakp2AuthCode(ss.suite.ID, RAKP2AuthCode(ss.suite.Auth, password, ss.consoleID, ss.id,
			ss.rm, ss.rc, srv.cfg.GUID, ss.role, ss.hashName)),
	}
	if srv.loseFirstRAKP2Locked(from) {
		return nil
	}
	return srv.handshakeReply(st, PayloadRAKP2, r2.Marshal())
}

// rakp1Failed refuses a RAKP 1 that did not decode, for managed session
// managedID.
func (srv *Server) rakp1Failed(st *serveState, tag uint8, managedID uint32, status RAKPStatus) []byte {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.refuseRAKP1Locked(st, tag, srv.sessions[managedID], status)
}

// refuseRAKP1Locked answers RAKP 1 with an error status in RAKP 2 and ends
// the half-open session ss, if there is one (nil: an unknown session, so
// the answer carries console session ID 0).
func (srv *Server) refuseRAKP1Locked(st *serveState, tag uint8, ss *ServerSession, status RAKPStatus) []byte {
	var consoleID uint32
	if ss != nil && ss.state != stateActive {
		consoleID = ss.consoleID
		srv.endLocked(ss, "RAKP 1 refused: "+status.String())
	}
	tag, consoleID = srv.cfg.Quirks.rakpErrorAddress(tag, consoleID)
	r2 := RAKP2{Tag: tag, Status: status, ConsoleSessionID: consoleID}
	return srv.handshakeReply(st, PayloadRAKP2, r2.Marshal())
}

// rakp3 answers RAKP Message 3 (section 13.22) with RAKP Message 4 (section
// 13.23). A wrong auth code (the console used another password) is refused
// at once with 0Fh "invalid integrity check value", as ipmi_sim does, so
// the console fails fast. A RAKP 3 carrying an error status is the console
// giving up: the session ends without an answer.
func (srv *Server) rakp3(st *serveState, payload []byte) []byte {
	var r3 RAKP3
	if err := r3.Unmarshal(payload); err != nil {
		return nil
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	ss := srv.sessions[r3.ManagedSessionID]
	if ss == nil {
		return srv.rakp4Error(st, r3.Tag, 0, RAKPInvalidSessionID)
	}
	switch ss.state {
	case stateAwaitRAKP1:
		if r3.Status != RAKPNoErrors {
			srv.endLocked(ss, "console aborted: "+r3.Status.String())
			return nil
		}
		return srv.rakp4Error(st, r3.Tag, ss.consoleID, RAKPInvalidSessionID)
	case stateActive:
		// A retransmission whose RAKP 4 was lost: send the same again.
		if r3.Status == RAKPNoErrors && bytes.Equal(r3.AuthCode, ss.rakp3Code) && ss.rakp4 != nil {
			return srv.handshakeReply(st, PayloadRAKP4, ss.rakp4)
		}
		return nil
	}
	if r3.Status != RAKPNoErrors {
		srv.endLocked(ss, "console aborted: "+r3.Status.String())
		return nil
	}
	auth := ss.suite.Auth
	want := RAKP3AuthCode(auth, ss.password, ss.rc, ss.consoleID, ss.rakp3Role, ss.username)
	if !hmac.Equal(want, r3.AuthCode) {
		srv.endLocked(ss, "RAKP 3 auth code mismatch (wrong password)")
		return srv.rakp4Error(st, r3.Tag, ss.consoleID, RAKPInvalidIntegrityCheckValue)
	}
	// Section 13.31: SIK, then K1/K2 (section 13.32), then RAKP 4's ICV.
	sik := DeriveSIK(auth, SIKKey(srv.cfg.Kg, ss.password), ss.rm, ss.rc, ss.role, ss.hashName)
	ss.keys = NewSessionKeys(ss.suite, sik)
	r4 := RAKP4{
		Tag:              r3.Tag,
		ConsoleSessionID: ss.consoleID,
		IntegrityCheck:   srv.cfg.Quirks.lengthen(RAKP4IntegrityCheck(auth, sik, ss.rm, ss.id, srv.cfg.GUID)),
	}
	ss.rakp4 = r4.Marshal()
	ss.rakp3Code = bytes.Clone(r3.AuthCode)
	ss.password = nil
	ss.state = stateActive
	// Section 22.18: the session starts at User level (or below, if that is
	// the maximum); Set Session Privilege Level raises it.
	ss.priv = min(ipmi.PrivilegeUser, ss.maxPriv)
	ss.lastActive = time.Now()
	srv.armExpiryLocked(srv.deadlineLocked(ss))
	srv.log.Debug("rmcpplus server: session active", "session", ss.id, "user", ss.username, "max", ss.maxPriv)
	return srv.handshakeReply(st, PayloadRAKP4, ss.rakp4)
}

// rakp4Error answers RAKP 3 with an error status.
func (srv *Server) rakp4Error(st *serveState, tag uint8, consoleID uint32, status RAKPStatus) []byte {
	tag, consoleID = srv.cfg.Quirks.rakpErrorAddress(tag, consoleID)
	r4 := RAKP4{Tag: tag, Status: status, ConsoleSessionID: consoleID}
	return srv.handshakeReply(st, PayloadRAKP4, r4.Marshal())
}

// handshakeReply frames a pre-session RMCP+ message (session ID 0,
// sequence 0).
func (srv *Server) handshakeReply(st *serveState, pt PayloadType, msg []byte) []byte {
	st.out = AppendV2(st.out[:0], pt, 0, 0, msg)
	return st.out
}

// sameAddr compares two datagram source addresses.
func sameAddr(a, b net.Addr) bool {
	if a == nil || b == nil {
		return a == b
	}
	ua, ok1 := a.(*net.UDPAddr)
	ub, ok2 := b.(*net.UDPAddr)
	if ok1 && ok2 {
		return ua.Port == ub.Port && ua.IP.Equal(ub.IP) && ua.Zone == ub.Zone
	}
	return a.Network() == b.Network() && a.String() == b.String()
}
