package rmcpplus

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"obmd/ipmi"
)

// The client side of session establishment, IPMI v2.0 sections 13.14-13.33:
// the messages and the HMACs. Which suite to try, what to do after a
// refusal and which deviations to tolerate is policy.go's to decide.

// rakpError is a handshake message answered with a non-zero status.
type rakpError struct {
	addr    string
	message string // "Open Session", "RAKP 2", "RAKP 4"
	status  RAKPStatus
}

func (e *rakpError) Error() string {
	return fmt.Sprintf("rmcpplus: %s: the BMC refused %s: %s", e.addr, requestOf(e.message), e.status)
}

// BMCReason is the refusal without the BMC's address, for people who must
// not learn it.
func (e *rakpError) BMCReason() string {
	return fmt.Sprintf("the BMC refused %s: %s", requestOf(e.message), e.status)
}

// requestOf names the console message a BMC message answers.
func requestOf(response string) string {
	switch response {
	case "RAKP 2":
		return "RAKP 1"
	case "RAKP 4":
		return "RAKP 3"
	}
	return response + " Request"
}

// establish runs the whole handshake; on success s.sec is set, the session
// privilege is raised and s.negotiated says how.
func (s *Session) establish(ctx context.Context) error {
	neg := &s.negotiated
	// Section 13.14 step 1 / section 22.13: is RMCP+ there at all? This is
	// also the liveness probe: an unreachable BMC fails here with
	// ErrTimeout after the configured attempts.
	rsp, err := s.exchange(ctx, sendPreSessionV15, ipmi.NetFnApp, ipmi.CmdGetChannelAuthCapabilities,
		s.authCapsRequest(), s.cfg.Timeout, s.attempts)
	if err != nil {
		return err
	}
	if err := decodeResponse(ipmi.NetFnApp, ipmi.CmdGetChannelAuthCapabilities, rsp, &neg.AuthCaps); err != nil {
		return fmt.Errorf("rmcpplus: %s: %w", s.addrText, err)
	}
	// Byte 3 bit 7 says the extended data (byte 5) is there at all. Only
	// the v2.0 bits are checked ("authcap": some BMCs misreport the rest).
	if !neg.AuthCaps.ExtendedCapabilities || !neg.AuthCaps.SupportsV20 {
		return fmt.Errorf("rmcpplus: %s does not support IPMI v2.0 (RMCP+) sessions on this channel", s.addrText)
	}

	known, offered := s.profile.snapshot()
	p := newPlan(s.addrText, s.cfg.CipherSuite, s.cfg.Privilege, s.cfg.Workarounds, known, offered)
	defer func() {
		if s.badChecksums.Load() > 0 {
			why := "the RMCP+ integrity check passed"
			if s.cfg.Workarounds.NoChecksumCheck {
				why = "of the node's nochecksumcheck quirk"
			}
			p.detect(QuirkNoChecksumCheck, fmt.Sprintf("%d answers during the handshake had a wrong IPMI checksum; accepted because %s", s.badChecksums.Load(), why))
		}
		neg.Handshakes = p.attempts
		neg.Detected = p.detections
		s.profile.note(p.detections)
	}()
	if p.wantsSuiteList() {
		neg.ListAsked = true
		offered, err := s.fetchCipherSuites(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			neg.Offered = offered
			s.profile.noteOffered(offered)
		}
		p.suiteList(offered, err)
	}
	var spec attemptSpec
	for !p.done {
		if spec, err = p.next(); err != nil {
			return err
		}
		o := s.attempt(ctx, spec)
		if o.Kind != outcomeOK {
			s.log.Debug("handshake attempt failed", "suite", spec.Suite, "at", o.Stage.String(), "outcome", outcomeText(o))
		}
		p.record(spec, o)
	}
	neg.Suite = spec.Suite

	priv, err := s.raisePrivilege(ctx, p)
	if err != nil {
		_ = s.closeSession(ctx, closeSessionTimeout)
		return err
	}
	neg.Privilege = priv
	s.profile.learn(neg.Offered, knowledge{suite: spec.Suite, lookupOff: !p.lookup, intel20: p.intel20, privilege: priv})
	return nil
}

// raisePrivilege sets the session privilege (section 22.18: the session
// starts below the privilege asked for in RAKP 1), with the
// "admin-refused" fallback, and returns the privilege granted.
func (s *Session) raisePrivilege(ctx context.Context, p *plan) (ipmi.PrivilegeLevel, error) {
	want := p.privilege
	for {
		setPriv := ipmi.SetSessionPrivilegeLevelReq{Level: want}
		rsp, err := s.exchange(ctx, sendInSession, ipmi.NetFnApp, ipmi.CmdSetSessionPrivilegeLevel,
			setPriv.Marshal(), s.cfg.Timeout, s.attempts)
		if err == nil {
			err = decodeResponse(ipmi.NetFnApp, ipmi.CmdSetSessionPrivilegeLevel, rsp, nil)
		}
		var ce *ipmi.CompletionError
		if errors.As(err, &ce) {
			if lower, ok := privilegeFallback(want, ce.Code); ok {
				p.detect(QuirkAdminRefused, fmt.Sprintf("Set Session Privilege Level(%v) answered %v; the session runs at %v, enough for chassis control and boot options", want, ce.Code, lower))
				want = lower
				continue
			}
		}
		var granted ipmi.SetSessionPrivilegeLevelRsp
		if err == nil && (granted.Unmarshal(rsp[1:]) != nil || granted.Level != want) {
			err = fmt.Errorf("BMC answered Set Session Privilege Level with % X, not %v", rsp[1:], want)
		}
		if err != nil {
			return 0, fmt.Errorf("rmcpplus: %s: setting the session privilege to %v: %w", s.addrText, want, err)
		}
		return want, nil
	}
}

// authCapsRequest is the Get Channel Authentication Capabilities request
// (section 22.13) of the handshake and of the keepalive: this channel, with
// the IPMI v2.0+ extended data, at the session's privilege.
func (s *Session) authCapsRequest() []byte {
	req := ipmi.GetChannelAuthCapabilitiesReq{Channel: ipmi.ChannelCurrent, ExtendedData: true, MaxPrivilege: s.cfg.Privilege}
	return req.Marshal()
}

// fetchCipherSuites reads the whole cipher suite record list (section
// 22.15), one 16-byte page per request, and returns the standard suite IDs
// in it. Each request goes out in both framings at once: ipmi_sim ignores
// the RMCP+ one, other BMCs the IPMI v1.5 one, and the first answer wins.
// A BMC that ignores both costs the short timeout ("no-cipher-suite-list").
func (s *Session) fetchCipherSuites(ctx context.Context) ([]uint8, error) {
	var records []byte
	for index := range uint8(0x40) {
		req := ipmi.GetChannelCipherSuitesReq{Channel: ipmi.ChannelCurrent, PayloadType: uint8(PayloadIPMI),
			ListByAlgorithm: true, ListIndex: index}
		rsp, err := s.exchange(ctx, sendPreSessionBoth, ipmi.NetFnApp, ipmi.CmdGetChannelCipherSuites,
			req.Marshal(), quickTimeout, quickAttempts)
		if err != nil {
			return nil, err
		}
		var page ipmi.GetChannelCipherSuitesRsp
		if err := decodeResponse(ipmi.NetFnApp, ipmi.CmdGetChannelCipherSuites, rsp, &page); err != nil {
			return nil, err
		}
		records = append(records, page.Records...)
		if len(page.Records) < ipmi.CipherSuitePageSize {
			break
		}
	}
	return standardSuiteIDs(records)
}

// standardSuiteIDs returns the IDs of the standard cipher suite records in
// records (section 22.15, Table 22-19). OEM records are left out: their IDs
// mean something only to their vendor, so the client never picks one.
func standardSuiteIDs(records []byte) ([]uint8, error) {
	recs, err := ipmi.ParseCipherSuiteRecords(records)
	if err != nil {
		return nil, err
	}
	var ids []uint8
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	return ids, nil
}

// attempt runs Open Session and RAKP 1-4 once, as spec says, and reports
// what the BMC answered. On success it stores the session's secrets.
func (s *Session) attempt(ctx context.Context, spec attemptSpec) attemptOutcome {
	suite, ok := CipherSuiteByID(spec.Suite)
	if !ok {
		return attemptOutcome{Stage: stageOpenSession, Kind: outcomeFailed,
			Err: fmt.Errorf("rmcpplus: cipher suite %d is not supported (supported: %v)", spec.Suite, SupportedCipherSuites())}
	}
	var rnd [21]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return attemptOutcome{Stage: stageOpenSession, Kind: outcomeFailed, Err: fmt.Errorf("rmcpplus: random numbers: %w", err)}
	}
	// Section 13.17: the console's session ID is random and never 0.
	consoleID := binary.LittleEndian.Uint32(rnd[:4])
	if consoleID == 0 {
		consoleID = 1
	}
	var rm [16]byte
	copy(rm[:], rnd[4:20])
	tag := rnd[20]
	user, password := s.cfg.Username, s.cfg.Password
	priv := s.cfg.Privilege
	var seen []Detection
	found := func(name, evidence string) {
		seen = append(seen, Detection{Name: name, Evidence: evidence, At: time.Now()})
	}
	failed := func(st stage, kind outcomeKind, resent bool, err error) attemptOutcome {
		return attemptOutcome{Stage: st, Kind: kind, Resent: resent, Err: err, Seen: seen}
	}

	// Open Session Request / Response, sections 13.17 and 13.18. The
	// privilege is explicit: many BMCs derive keys from it and FreeIPMI
	// documents BMCs that mishandle 0 ("highest").
	req := OpenSessionRequest{
		Tag: tag, MaxPrivilege: priv, ConsoleSessionID: consoleID,
		Auth: suite.Auth, Integrity: suite.Integrity, Confidentiality: suite.Confidentiality,
	}
	wait, tries := s.cfg.Timeout, s.attempts
	if spec.QuickOpen {
		wait, tries = quickTimeout, quickAttempts
	}
	var osr OpenSessionResponse
	sent, err := s.handshake(ctx, "Open Session Request", PayloadOpenSessionReq, req.Marshal(), PayloadOpenSessionRsp, wait, tries, func(b []byte) bool {
		if osr.Unmarshal(b) != nil {
			return false
		}
		return osr.Short || (osr.Tag == tag && (osr.Status != RAKPNoErrors || osr.ConsoleSessionID == consoleID))
	})
	if err != nil {
		return failed(stageOpenSession, kindOf(err), sent > 1, err)
	}
	if osr.Status != RAKPNoErrors {
		if osr.Short {
			found(QuirkShortOpenSessionError, fmt.Sprintf("Open Session Response of one byte, status %s", osr.Status))
		}
		o := failed(stageOpenSession, outcomeRefused, sent > 1, &rakpError{addr: s.addrText, message: "Open Session", status: osr.Status})
		o.Status = osr.Status
		return o
	}
	if osr.Auth != suite.Auth || osr.Integrity != suite.Integrity || osr.Confidentiality != suite.Confidentiality {
		return failed(stageOpenSession, outcomeFailed, false, fmt.Errorf("rmcpplus: %s: asked for cipher suite %d, the BMC chose %v/%v/%v", s.addrText, spec.Suite, osr.Auth, osr.Integrity, osr.Confidentiality))
	}
	if osr.ManagedSessionID == 0 {
		return failed(stageOpenSession, outcomeFailed, false, fmt.Errorf("rmcpplus: %s: Open Session Response with managed session ID 0", s.addrText))
	}
	managedID := osr.ManagedSessionID

	// RAKP 1 / RAKP 2, sections 13.20 and 13.21. ROLEm is the whole byte.
	role := byte(priv)
	if spec.NameOnlyLookup {
		role |= RoleNameOnlyLookup
	}
	names := rakpNamesFor(user, role, spec.Intel20, spec.PadInRAKP1)
	r1 := RAKP1{Tag: tag + 1, ManagedSessionID: managedID, ConsoleRandom: rm, Role: role, Username: names.rakp1Name}
	var r2 RAKP2
	tag0 := false
	sent, err = s.handshake(ctx, "RAKP 1", PayloadRAKP1, r1.Marshal(), PayloadRAKP2, s.cfg.Timeout, s.attempts, func(b []byte) bool {
		if r2.Unmarshal(b) != nil {
			return false
		}
		ok, rule := rakpErrorMatches(r2.Status, r2.Tag, r1.Tag, r2.ConsoleSessionID, consoleID)
		tag0 = rule
		return ok
	})
	resent := sent > 1
	if err != nil {
		return failed(stageRAKP2, kindOf(err), resent, err)
	}
	if tag0 {
		found(QuirkRAKPErrorTag0, fmt.Sprintf("RAKP 2 error %s came with tag %d and console session ID %08x", r2.Status, r2.Tag, r2.ConsoleSessionID))
	}
	switch r2.Status {
	case RAKPNoErrors:
	case RAKPUnauthorizedName:
		o := failed(stageRAKP2, outcomeRefused, resent, fmt.Errorf("rmcpplus: %s: %w %q (RAKP 2 status %s)", s.addrText, ErrUnknownUser, user, r2.Status))
		o.Status = r2.Status
		return o
	default:
		o := failed(stageRAKP2, outcomeRefused, resent, &rakpError{addr: s.addrText, message: "RAKP 2", status: r2.Status})
		o.Status = r2.Status
		return o
	}
	// The auth code proves the BMC knows the password. Tried with the
	// standard inputs, then (policy "intel20") the padded name.
	intel20 := false
	verdict := authCodeMismatch
	for _, pad := range []bool{spec.Intel20, !spec.Intel20} {
		n := rakpNamesFor(user, role, pad, spec.PadInRAKP1)
		want := RAKP2AuthCode(suite.Auth, password, consoleID, managedID, rm, r2.ManagedRandom, r2.ManagedGUID, role, n.hashName)
		if verdict = judgeAuthCode(r2.AuthCode, want); verdict == authCodeMatch || verdict == authCodeLong {
			names, intel20 = n, pad
			if verdict == authCodeLong {
				found(QuirkSupermicro20, fmt.Sprintf("RAKP 2 auth code of %d bytes, %v gives %d; the rest was ignored", len(r2.AuthCode), suite.Auth, len(want)))
			}
			break
		}
		if verdict == authCodeZero {
			break
		}
	}
	switch verdict {
	case authCodeZero:
		s.abortHandshake(tag+2, managedID)
		return failed(stageRAKP2, outcomeZeroAuthCode, resent, fmt.Errorf("rmcpplus: %s: cipher suite %d is broken on this BMC: its RAKP 2 auth code is all zeros", s.addrText, spec.Suite))
	case authCodeMismatch:
		// Section 13.22: tell the BMC, so it frees the half-open session.
		s.abortHandshake(tag+2, managedID)
		return failed(stageRAKP2, outcomeAuthMismatch, resent, fmt.Errorf("rmcpplus: %s: %w for user %q (the BMC's RAKP 2 auth code does not match)", s.addrText, ErrWrongPassword, user))
	}
	if intel20 && !spec.Intel20 {
		found(QuirkIntel20, "RAKP 2 auth code matched the user name NUL-padded to 16 bytes")
	}

	// RAKP 3 / RAKP 4, sections 13.22 and 13.23.
	r3 := RAKP3{Tag: tag + 2, ManagedSessionID: managedID,
		AuthCode: RAKP3AuthCode(suite.Auth, password, r2.ManagedRandom, consoleID, names.rakp3Role, user)}
	var r4 RAKP4
	sent, err = s.handshake(ctx, "RAKP 3", PayloadRAKP3, r3.Marshal(), PayloadRAKP4, s.cfg.Timeout, s.attempts, func(b []byte) bool {
		if r4.Unmarshal(b) != nil {
			return false
		}
		ok, rule := rakpErrorMatches(r4.Status, r4.Tag, r3.Tag, r4.ConsoleSessionID, consoleID)
		tag0 = rule
		return ok
	})
	resent = sent > 1
	if err != nil {
		return failed(stageRAKP4, kindOf(err), resent, err)
	}
	if tag0 {
		found(QuirkRAKPErrorTag0, fmt.Sprintf("RAKP 4 error %s came with tag %d and console session ID %08x", r4.Status, r4.Tag, r4.ConsoleSessionID))
	}
	if r4.Status != RAKPNoErrors {
		o := failed(stageRAKP4, outcomeRefused, resent, &rakpError{addr: s.addrText, message: "RAKP 4", status: r4.Status})
		o.Status = r4.Status
		return o
	}
	// Section 13.31: SIK from Kg (or the password), then RAKP 4's check.
	// (FreeIPMI's intel20 notes key the check with the integrity
	// algorithm's hash; for suites 3 and 17 that is the same hash.)
	sik := DeriveSIK(suite.Auth, SIKKey(s.cfg.Kg, password), rm, r2.ManagedRandom, role, names.hashName)
	icv := RAKP4IntegrityCheck(suite.Auth, sik, rm, managedID, r2.ManagedGUID)
	switch judgeAuthCode(r4.IntegrityCheck, icv) {
	case authCodeMatch:
	case authCodeLong:
		found(QuirkSupermicro20, fmt.Sprintf("RAKP 4 integrity check value of %d bytes, %v gives %d; the rest was ignored", len(r4.IntegrityCheck), suite.Auth, len(icv)))
	default:
		return failed(stageRAKP4, outcomeAuthMismatch, resent, fmt.Errorf("rmcpplus: %s: RAKP 4 integrity check value does not match: wrong BMC key (Kg)?", s.addrText))
	}
	s.sec.Store(&sessionSecrets{
		keys:          NewSessionKeys(suite, sik),
		consoleID:     consoleID,
		managedID:     managedID,
		authenticated: suite.Integrity != IntegrityNone,
	})
	return attemptOutcome{Kind: outcomeOK, Seen: seen, Intel20: intel20}
}

// kindOf classifies an error of handshake: no answer, or anything else.
func kindOf(err error) outcomeKind {
	if errors.Is(err, ErrTimeout) {
		return outcomeSilent
	}
	return outcomeFailed
}

// abortHandshake sends RAKP 3 with status 0x0F, once (section 13.22: a
// console that rejects RAKP 2 says so, and the BMC frees the half-open
// session).
func (s *Session) abortHandshake(tag uint8, managedID uint32) {
	r3 := RAKP3{Tag: tag, Status: RAKPInvalidIntegrityCheckValue, ManagedSessionID: managedID}
	_, _ = s.conn.WriteTo(AppendV2(nil, PayloadRAKP3, 0, 0, r3.Marshal()), s.addr)
}

// handshakeWait is one pre-session RMCP+ message (session ID 0, sequence
// 0, section 13.17) waiting for its reply: an awaited for retransmit.
type handshakeWait struct {
	s     *Session
	what  string
	pkt   []byte
	want  PayloadType
	match func([]byte) bool
}

func (h *handshakeWait) transmit() error {
	if _, err := h.s.conn.WriteTo(h.pkt, h.s.addr); err != nil {
		return fmt.Errorf("rmcpplus: sending %s to %s: %w", h.what, h.s.addrText, err)
	}
	return nil
}

func (h *handshakeWait) answered() (bool, error) {
	for _, r := range h.s.takeHandshakeReplies() {
		if r.pt == h.want && h.match(r.payload) {
			return true, nil
		}
	}
	return false, nil
}

func (h *handshakeWait) describe() string { return h.what }

// handshake sends one handshake message until match accepts a reply of
// type want, retransmitting like every request (retransmit), and returns
// the number of transmissions.
func (s *Session) handshake(ctx context.Context, what string, pt PayloadType, msg []byte, want PayloadType, wait time.Duration, tries int, match func([]byte) bool) (int, error) {
	s.takeHandshakeReplies() // whatever is queued answers an earlier message
	h := &handshakeWait{s: s, what: what, pkt: AppendV2(nil, pt, 0, 0, msg), want: want, match: match}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	return s.retransmit(ctx, h, s.hsReady, timer, wait, tries)
}
