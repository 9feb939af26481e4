package rmcpplus

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"obmd/ipmi"
)

// The client side of session establishment, IPMI v2.0 sections 13.14-13.33.

// Cipher suite negotiation. Get Channel Cipher Suites is asked with a short
// timeout: a BMC that ignores it (some do, in one format or the other) must
// not cost seconds; the Open Session fallback below covers that case.
const (
	cipherSuitesTimeout  = 300 * time.Millisecond
	cipherSuitesAttempts = 2
)

// preferredSuites is the order in which an offered suite is chosen:
// HMAC-SHA256 with AES first, then the SHA1 suites, strongest first.
var preferredSuites = []uint8{17, 3, 2, 1}

// blindSuites are tried, in order, when the BMC does not list its suites.
var blindSuites = []uint8{17, 3}

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

// noSuiteMatch reports whether an Open Session status means "pick other
// algorithms" (Table 13-15).
func noSuiteMatch(st RAKPStatus) bool {
	switch st {
	case RAKPInvalidAuthAlgorithm, RAKPInvalidIntegrityAlgorithm,
		RAKPInvalidConfidentialityAlgo, RAKPNoCipherSuiteMatch:
		return true
	}
	return false
}

// establish runs the whole handshake; on success s.sec is set and the
// session privilege is cfg.Privilege.
func (s *Session) establish(ctx context.Context) error {
	// Section 13.14 step 1 / section 22.13: is RMCP+ there at all? This is
	// also the liveness probe: an unreachable BMC fails here with
	// ErrTimeout after the configured attempts.
	rsp, err := s.exchange(ctx, sendPreSessionV15, ipmi.NetFnApp, ipmi.CmdGetChannelAuthCapabilities,
		s.authCapsRequest(), s.cfg.Timeout, s.attempts)
	if err != nil {
		return err
	}
	var caps ipmi.GetChannelAuthCapabilitiesRsp
	if err := decodeResponse(ipmi.NetFnApp, ipmi.CmdGetChannelAuthCapabilities, rsp, &caps); err != nil {
		return fmt.Errorf("rmcpplus: %s: %w", s.addrText, err)
	}
	// Byte 3 bit 7 says the extended data (byte 5) is there at all.
	if !caps.ExtendedCapabilities || !caps.SupportsV20 {
		return fmt.Errorf("rmcpplus: %s does not support IPMI v2.0 (RMCP+) sessions on this channel", s.addrText)
	}

	suites := []uint8{s.cfg.CipherSuite}
	if s.cfg.CipherSuite == 0 {
		if suites, err = s.negotiableSuites(ctx); err != nil {
			return err
		}
	}
	for i, id := range suites {
		err = s.openSession(ctx, id)
		var re *rakpError
		if err != nil && errors.As(err, &re) && re.message == "Open Session" && noSuiteMatch(re.status) && i+1 < len(suites) {
			s.log.Debug("cipher suite refused, trying the next", "suite", id, "status", re.status)
			continue
		}
		break
	}
	if err != nil {
		return err
	}

	// Section 22.18: the session starts below the privilege asked for in
	// RAKP 1; raise it explicitly.
	setPriv := ipmi.SetSessionPrivilegeLevelReq{Level: s.cfg.Privilege}
	rsp, err = s.exchange(ctx, sendInSession, ipmi.NetFnApp, ipmi.CmdSetSessionPrivilegeLevel,
		setPriv.Marshal(), s.cfg.Timeout, s.attempts)
	if err == nil {
		err = decodeResponse(ipmi.NetFnApp, ipmi.CmdSetSessionPrivilegeLevel, rsp, nil)
	}
	var granted ipmi.SetSessionPrivilegeLevelRsp
	if err == nil && (granted.Unmarshal(rsp[1:]) != nil || granted.Level != s.cfg.Privilege) {
		err = fmt.Errorf("BMC answered Set Session Privilege Level with % X, not %v", rsp[1:], s.cfg.Privilege)
	}
	if err != nil {
		_ = s.closeSession(ctx, closeSessionTimeout)
		return fmt.Errorf("rmcpplus: %s: setting the session privilege to %v: %w", s.addrText, s.cfg.Privilege, err)
	}
	return nil
}

// authCapsRequest is the Get Channel Authentication Capabilities request
// (section 22.13) of the handshake and of the keepalive: this channel, with
// the IPMI v2.0+ extended data, at the session's privilege.
func (s *Session) authCapsRequest() []byte {
	req := ipmi.GetChannelAuthCapabilitiesReq{Channel: ipmi.ChannelCurrent, ExtendedData: true, MaxPrivilege: s.cfg.Privilege}
	return req.Marshal()
}

// negotiableSuites asks the BMC which cipher suites it offers (section
// 22.15) in an IPMI v1.5 packet, which every BMC we know answers
// (ipmi_sim ignores the RMCP+ form), and returns the suites to try in
// order.
func (s *Session) negotiableSuites(ctx context.Context) ([]uint8, error) {
	offered, err := s.fetchCipherSuites(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.log.Debug("BMC did not list its cipher suites; trying 17 then 3", "err", err)
		return blindSuites, nil
	}
	var try []uint8
	for _, id := range preferredSuites {
		if slices.Contains(offered, id) {
			try = append(try, id)
		}
	}
	if len(try) == 0 {
		return nil, fmt.Errorf("rmcpplus: %s offers cipher suites %v, none of %v; configure one explicitly", s.addrText, offered, preferredSuites)
	}
	return try, nil
}

// fetchCipherSuites reads the whole cipher suite record list, one 16-byte
// page per request, and returns the standard suite IDs in it.
func (s *Session) fetchCipherSuites(ctx context.Context) ([]uint8, error) {
	var records []byte
	for index := range uint8(0x40) {
		req := ipmi.GetChannelCipherSuitesReq{Channel: ipmi.ChannelCurrent, PayloadType: uint8(PayloadIPMI),
			ListByAlgorithm: true, ListIndex: index}
		rsp, err := s.exchange(ctx, sendPreSessionV15, ipmi.NetFnApp, ipmi.CmdGetChannelCipherSuites,
			req.Marshal(), cipherSuitesTimeout, cipherSuitesAttempts)
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

// openSession runs Open Session and RAKP 1-4 with one cipher suite and, on
// success, stores the session's secrets.
func (s *Session) openSession(ctx context.Context, suiteID uint8) error {
	suite, ok := CipherSuiteByID(suiteID)
	if !ok {
		return fmt.Errorf("rmcpplus: cipher suite %d is not supported (supported: %v)", suiteID, SupportedCipherSuites())
	}
	var rnd [21]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("rmcpplus: random numbers: %w", err)
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

	// Open Session Request / Response, sections 13.17 and 13.18. The
	// privilege is explicit: many BMCs derive keys from it and FreeIPMI
	// documents BMCs that mishandle 0 ("highest").
	req := OpenSessionRequest{
		Tag: tag, MaxPrivilege: priv, ConsoleSessionID: consoleID,
		Auth: suite.Auth, Integrity: suite.Integrity, Confidentiality: suite.Confidentiality,
	}
	var osr OpenSessionResponse
	err := s.handshake(ctx, "Open Session Request", PayloadOpenSessionReq, req.Marshal(), PayloadOpenSessionRsp, func(b []byte) bool {
		return osr.Unmarshal(b) == nil && osr.Tag == tag && (osr.Status != RAKPNoErrors || osr.ConsoleSessionID == consoleID)
	})
	if err != nil {
		return err
	}
	if osr.Status != RAKPNoErrors {
		return &rakpError{addr: s.addrText, message: "Open Session", status: osr.Status}
	}
	if osr.Auth != suite.Auth || osr.Integrity != suite.Integrity || osr.Confidentiality != suite.Confidentiality {
		return fmt.Errorf("rmcpplus: %s: asked for cipher suite %d, the BMC chose %v/%v/%v", s.addrText, suiteID, osr.Auth, osr.Integrity, osr.Confidentiality)
	}
	if osr.ManagedSessionID == 0 {
		return fmt.Errorf("rmcpplus: %s: Open Session Response with managed session ID 0", s.addrText)
	}
	managedID := osr.ManagedSessionID

	// RAKP 1 / RAKP 2, sections 13.20 and 13.21. ROLEm is the whole byte.
	role := byte(priv) | RoleNameOnlyLookup
	r1 := RAKP1{Tag: tag + 1, ManagedSessionID: managedID, ConsoleRandom: rm, Role: role, Username: user}
	var r2 RAKP2
	err = s.handshake(ctx, "RAKP 1", PayloadRAKP1, r1.Marshal(), PayloadRAKP2, func(b []byte) bool {
		return r2.Unmarshal(b) == nil && r2.Tag == r1.Tag && (r2.Status != RAKPNoErrors || r2.ConsoleSessionID == consoleID)
	})
	if err != nil {
		return err
	}
	switch r2.Status {
	case RAKPNoErrors:
	case RAKPUnauthorizedName:
		return fmt.Errorf("rmcpplus: %s: %w %q (RAKP 2 status %s)", s.addrText, ErrUnknownUser, user, r2.Status)
	default:
		return &rakpError{addr: s.addrText, message: "RAKP 2", status: r2.Status}
	}
	want := RAKP2AuthCode(suite.Auth, password, consoleID, managedID, rm, r2.ManagedRandom, r2.ManagedGUID, role, user)
	if !hmac.Equal(want, r2.AuthCode) {
		// Section 13.22: tell the BMC, so it frees the half-open session.
		r3 := RAKP3{Tag: tag + 2, Status: RAKPInvalidIntegrityCheckValue, ManagedSessionID: managedID}
		_, _ = s.conn.WriteTo(AppendV2(nil, PayloadRAKP3, 0, 0, r3.Marshal()), s.addr)
		return fmt.Errorf("rmcpplus: %s: %w for user %q (the BMC's RAKP 2 auth code does not match)", s.addrText, ErrWrongPassword, user)
	}

	// RAKP 3 / RAKP 4, sections 13.22 and 13.23.
	r3 := RAKP3{Tag: tag + 2, ManagedSessionID: managedID,
		AuthCode: RAKP3AuthCode(suite.Auth, password, r2.ManagedRandom, consoleID, role, user)}
	var r4 RAKP4
	err = s.handshake(ctx, "RAKP 3", PayloadRAKP3, r3.Marshal(), PayloadRAKP4, func(b []byte) bool {
		return r4.Unmarshal(b) == nil && r4.Tag == r3.Tag && (r4.Status != RAKPNoErrors || r4.ConsoleSessionID == consoleID)
	})
	if err != nil {
		return err
	}
	if r4.Status != RAKPNoErrors {
		return &rakpError{addr: s.addrText, message: "RAKP 4", status: r4.Status}
	}
	// Section 13.31: SIK from Kg (or the password), then RAKP 4's check.
	sik := DeriveSIK(suite.Auth, SIKKey(s.cfg.Kg, password), rm, r2.ManagedRandom, role, user)
	icv := RAKP4IntegrityCheck(suite.Auth, sik, rm, managedID, r2.ManagedGUID)
	if !hmac.Equal(icv, r4.IntegrityCheck) {
		return fmt.Errorf("rmcpplus: %s: RAKP 4 integrity check value does not match: wrong BMC key (Kg)?", s.addrText)
	}
	s.sec.Store(&sessionSecrets{
		keys:          NewSessionKeys(suite, sik),
		consoleID:     consoleID,
		managedID:     managedID,
		authenticated: suite.Integrity != IntegrityNone,
	})
	return nil
}

// handshake sends one pre-session RMCP+ message (session ID 0, sequence 0,
// section 13.17) until match accepts a reply of type want, retransmitting
// like exchange.
func (s *Session) handshake(ctx context.Context, what string, pt PayloadType, msg []byte, want PayloadType, match func([]byte) bool) error {
	pkt := AppendV2(nil, pt, 0, 0, msg)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := range s.attempts {
		if _, err := s.conn.WriteTo(pkt, s.addr); err != nil {
			return fmt.Errorf("rmcpplus: sending %s to %s: %w", what, s.addrText, err)
		}
		timer.Reset(attemptTimeout(s.cfg.Timeout, k, s.attempts))
	wait:
		for {
			select {
			case r := <-s.hs:
				if r.pt == want && match(r.payload) {
					return nil
				}
			case <-timer.C:
				break wait
			case <-ctx.Done():
				return ctx.Err()
			case <-s.done:
				return s.err
			}
		}
	}
	return &timeoutError{addr: s.addrText, what: what, attempts: s.attempts}
}
