package rmcpplus

import (
	"net"
	"slices"
	"strings"

	"obmd/ipmi"
)

// ServerQuirks make a Server bend IPMI v2.0 the way documented real BMCs
// do (BMC-QUIRKS.md, "Handshake and session"), so that clients can be
// tested against them: fakebmc -quirks sets them. The zero value follows
// the specification. Only the BMC side reads them; the client's code
// paths do not know they exist.
type ServerQuirks struct {
	// LongAuthCode: the RAKP 2 auth code and the RAKP 4 integrity check
	// value carry one byte more than the HMAC (Supermicro H8QME with
	// Peppercon firmware, Sun Fire 4100; FreeIPMI -W supermicro20/sun20).
	LongAuthCode bool
	// BadChecksum: every IPMI response inside a session carries a wrong
	// trailing message checksum (Supermicro X9SCM-iiF, X9DRi-F, X9DRFR;
	// FreeIPMI -W nochecksumcheck, whose symptoms are session and password
	// verification timeouts). Pre-session answers stay correct.
	BadChecksum bool
	// ErrorTagZero: RAKP 2 and RAKP 4 errors carry message tag 0 and
	// console session ID 0, as OpenBMC's netipmid sends them.
	ErrorTagZero bool
	// ShortOpenSessionError: an Open Session refusal is one byte, the
	// status alone (some Supermicro).
	ShortOpenSessionError bool
	// RefuseSuites refuses Open Session for the listed suites with the
	// status given, though Get Channel Cipher Suites lists them (ipmitool
	// issue 363; refusal statuses 0x0A Supermicro X8DTG, 0x12 MSI, 0x01
	// Intel M50CYP).
	RefuseSuites map[uint8]RAKPStatus
	// ZeroAuthCodeSuites: RAKP 2 for these suites carries an all-zero
	// auth code (xCAT issue 7512, suite 17).
	ZeroAuthCodeSuites []uint8
	// NoCipherSuiteList: Get Channel Cipher Suites outside a session goes
	// unanswered in either framing (HP iLO 3/4; ipmitool issue 199).
	NoCipherSuiteList bool
	// HandshakeResendError: RAKP 1 is not idempotent (OpenBMC just after
	// power-on, phosphor-net-ipmid issue 16; Supermicro X10, ipmitool
	// issue 154). The first RAKP 2 the BMC owes a console address is lost
	// (a BMC busy after power-on); a repeated RAKP 1 is then answered with
	// status 0x08 "inactive session ID" and the half-open session ends.
	HandshakeResendError bool
	// AdminRefused: Set Session Privilege Level(administrator) is answered
	// 0x80 "requested level not available for this user" although RAKP 1
	// granted administrator (Cisco UCS, ipmitool issue 376).
	AdminRefused bool
	// Intel20: the user name is hashed NUL-padded to 16 bytes (RAKP 2
	// auth code and SIK), and the RAKP 3 auth code is checked with the
	// name-only lookup bit clear, as FreeIPMI documents for the Intel
	// SE7520AF2 with SMM (FreeIPMI -W intel20, ipmitool -o intelplus).
	// The RAKP 1 name may come padded or not; name-only lookup is
	// required (RAKP 1 without it: status 0x09).
	Intel20 bool
	// NameOnlyLookupRefused: RAKP 1 with the name-only lookup bit set is
	// refused with status 0x09 "invalid role": the BMC looks users up by
	// name and privilege only (what ipmitool -L LEVEL+ is for).
	NameOnlyLookupRefused bool
}

// refuseSuite is the status Open Session for suite gets, if refused.
func (q *ServerQuirks) refuseSuite(suite uint8) (RAKPStatus, bool) {
	st, ok := q.RefuseSuites[suite]
	return st, ok && st != RAKPNoErrors
}

// openSessionRefusal frames an Open Session refusal.
func (q *ServerQuirks) openSessionRefusal(rsp OpenSessionResponse) []byte {
	if q.ShortOpenSessionError {
		rsp = OpenSessionResponse{Short: true, Status: rsp.Status}
	}
	return rsp.Marshal()
}

// rakpErrorAddress is the tag and console session ID an RAKP 2 or 4 error
// carries.
func (q *ServerQuirks) rakpErrorAddress(tag uint8, consoleID uint32) (uint8, uint32) {
	if q.ErrorTagZero {
		return 0, 0
	}
	return tag, consoleID
}

// lookupName is the user name a RAKP 1 name is looked up as: an intel20
// BMC keeps names in a 16-byte NUL-padded field.
func (q *ServerQuirks) lookupName(name string) string {
	if q.Intel20 {
		return strings.TrimRight(name, "\x00")
	}
	return name
}

// rakpInputs are the user name hashed in RAKP 2 and the SIK, and the role
// byte of the RAKP 3 check, for the name and role RAKP 1 carried.
func (q *ServerQuirks) rakpInputs(name string, role uint8) (hashName string, rakp3Role uint8) {
	if !q.Intel20 {
		return name, role
	}
	n := rakpNamesFor(q.lookupName(name), role, true, false)
	return n.hashName, n.rakp3Role
}

// rakp2AuthCode bends a computed RAKP 2 auth code.
func (q *ServerQuirks) rakp2AuthCode(suite uint8, code []byte) []byte {
	if slices.Contains(q.ZeroAuthCodeSuites, suite) {
		code = make([]byte, len(code))
	}
	return q.lengthen(code)
}

// lengthen adds the LongAuthCode byte.
func (q *ServerQuirks) lengthen(code []byte) []byte {
	if q.LongAuthCode && len(code) > 0 {
		return append(code, 0x00)
	}
	return code
}

// corruptChecksum breaks the trailing checksum of an IPMI response
// message in place.
func (q *ServerQuirks) corruptChecksum(msg []byte) {
	if q.BadChecksum && len(msg) > 0 {
		msg[len(msg)-1] ^= 0xA5
	}
}

// privilegeRefused is the completion code Set Session Privilege Level(want)
// gets instead of being granted, if any.
func (q *ServerQuirks) privilegeRefused(want ipmi.PrivilegeLevel) (ipmi.CompletionCode, bool) {
	if q.AdminRefused && want == ipmi.PrivilegeAdministrator {
		return 0x80, true // section 22.18: requested level not available for this user
	}
	return 0, false
}

// maxResendMemory bounds the console addresses a HandshakeResendError
// server remembers; past it, the memory starts over.
const maxResendMemory = 4096

// loseFirstRAKP2Locked reports whether the RAKP 2 owed to from is the
// first one for that address, and so lost (HandshakeResendError). srv.mu
// is held.
func (srv *Server) loseFirstRAKP2Locked(from net.Addr) bool {
	if !srv.cfg.Quirks.HandshakeResendError || from == nil {
		return false
	}
	key := from.String()
	if _, seen := srv.resendSeen[key]; seen {
		return false
	}
	if srv.resendSeen == nil || len(srv.resendSeen) >= maxResendMemory {
		srv.resendSeen = make(map[string]struct{})
	}
	srv.resendSeen[key] = struct{}{}
	return true
}
