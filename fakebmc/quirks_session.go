package fakebmc

import "obmd/rmcpplus"

// The session-layer quirks (BMC-QUIRKS.md, "Handshake and session"). Each
// maps onto an rmcpplus.ServerQuirks field, where the BMC side of RMCP+
// (shared with the client's codecs) carries the hook; the field's comment
// cites the machines and reports the behaviour comes from.
var (
	QuirkRAKP2LongAuthCode = registerQuirk("rakp2-long-authcode",
		"RAKP 2 auth code and RAKP 4 integrity check value one byte longer than the HMAC (Supermicro H8QME, Sun Fire 4100; FreeIPMI -W supermicro20)")
	QuirkBadChecksum = registerQuirk("bad-checksum",
		"IPMI responses inside a session carry a wrong message checksum (Supermicro X9SCM-iiF, X9DRi-F; FreeIPMI -W nochecksumcheck)")
	QuirkRAKPErrorTag0 = registerQuirk("rakp-error-tag0",
		"RAKP 2 and RAKP 4 errors carry message tag 0 and console session ID 0 (OpenBMC netipmid)")
	QuirkOpenSessionShortError = registerQuirk("opensession-short-error",
		"Open Session refusals are one byte, the status alone; suite 17 is listed but refused so, with 0x11 (some Supermicro)")
	QuirkSuite17ZeroAuthCode = registerQuirk("suite17-zero-authcode",
		"suite 17 is listed, but its RAKP 2 auth code is all zeros (xCAT issue 7512)")
	QuirkSuite17Refused = registerQuirk("suite17-refused",
		"suite 17 is listed, but Open Session for it is refused with status 0x12 (ipmitool issue 363; MSI)")
	QuirkNoCipherList = registerQuirk("no-cipher-list",
		"Get Channel Cipher Suites outside a session goes unanswered, in both framings (HP iLO 3/4; ipmitool issue 199)")
	QuirkHandshakeResendError = registerQuirk("handshake-resend-error",
		"the first RAKP 2 owed to each console address is lost; a repeated RAKP 1 gets status 0x08 (OpenBMC after power-on, Supermicro X10)")
	QuirkAdminRefused = registerQuirk("admin-refused",
		"Set Session Privilege Level(administrator) answers 0x80 though RAKP 1 granted administrator (Cisco UCS; ipmitool issue 376)")
	QuirkIntel20 = registerQuirk("intel20",
		"user name hashed NUL-padded to 16 bytes, RAKP 3 checked without the name-only lookup bit, which RAKP 1 must set (Intel SE7520AF2; FreeIPMI -W intel20)")
)

// Statuses of the suite-17 refusals: 0x12 "illegal or unrecognized
// parameter" (the MSI report) and 0x11 "no cipher suite match" (ipmitool
// issue 363, and the one-byte Supermicro refusals).
const (
	suite17RefusedStatus    = rmcpplus.RAKPIllegalOrUnrecognizedParameter
	suite17ShortErrorStatus = rmcpplus.RAKPNoCipherSuiteMatch
)

// serverQuirks is the RMCP+ server behaviour the session quirks in qs ask
// for.
func (qs Quirks) serverQuirks() rmcpplus.ServerQuirks {
	sq := rmcpplus.ServerQuirks{
		LongAuthCode:          qs.Has(QuirkRAKP2LongAuthCode),
		BadChecksum:           qs.Has(QuirkBadChecksum),
		ErrorTagZero:          qs.Has(QuirkRAKPErrorTag0),
		ShortOpenSessionError: qs.Has(QuirkOpenSessionShortError),
		NoCipherSuiteList:     qs.Has(QuirkNoCipherList),
		HandshakeResendError:  qs.Has(QuirkHandshakeResendError),
		AdminRefused:          qs.Has(QuirkAdminRefused),
		Intel20:               qs.Has(QuirkIntel20),
	}
	if qs.Has(QuirkSuite17ZeroAuthCode) {
		sq.ZeroAuthCodeSuites = []uint8{17}
	}
	if qs.Has(QuirkOpenSessionShortError) || qs.Has(QuirkSuite17Refused) {
		status := suite17ShortErrorStatus
		if qs.Has(QuirkSuite17Refused) {
			status = suite17RefusedStatus
		}
		sq.RefuseSuites = map[uint8]rmcpplus.RAKPStatus{17: status}
	}
	return sq
}
