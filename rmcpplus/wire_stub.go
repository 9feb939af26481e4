package rmcpplus

// STUB FILE: the declarations below are the agreed wire API. The wire helper
// replaces each with a real implementation in its own file (rmcp.go, asf.go,
// session15.go, session20.go, opensession.go, rakp1.go..rakp4.go,
// ciphersuite.go, keys.go, integrity.go, aes.go) and deletes it from here.
// Delete this file when empty.

import (
	"errors"

	"obmd/ipmi"
)

var errStub = errors.New("rmcpplus: not implemented yet")

// PayloadType is the 6-bit payload type of an RMCP+ session header.
// IPMI v2.0 section 13.27.3.
type PayloadType uint8

// Payload types.
const (
	PayloadIPMI           PayloadType = 0x00
	PayloadSOL            PayloadType = 0x01
	PayloadOEM            PayloadType = 0x02
	PayloadOpenSessionReq PayloadType = 0x10
	PayloadOpenSessionRsp PayloadType = 0x11
	PayloadRAKP1          PayloadType = 0x12
	PayloadRAKP2          PayloadType = 0x13
	PayloadRAKP3          PayloadType = 0x14
	PayloadRAKP4          PayloadType = 0x15
)

// AuthAlgorithm, section 13.28.
type AuthAlgorithm uint8

const (
	AuthNone       AuthAlgorithm = 0x00
	AuthHMACSHA1   AuthAlgorithm = 0x01
	AuthHMACMD5    AuthAlgorithm = 0x02
	AuthHMACSHA256 AuthAlgorithm = 0x03
)

// IntegrityAlgorithm, section 13.28.4.
type IntegrityAlgorithm uint8

const (
	IntegrityNone          IntegrityAlgorithm = 0x00
	IntegrityHMACSHA1_96   IntegrityAlgorithm = 0x01
	IntegrityHMACMD5_128   IntegrityAlgorithm = 0x02
	IntegrityMD5_128       IntegrityAlgorithm = 0x03
	IntegrityHMACSHA256128 IntegrityAlgorithm = 0x04
)

// ConfidentialityAlgorithm, section 13.28.5.
type ConfidentialityAlgorithm uint8

const (
	ConfNone      ConfidentialityAlgorithm = 0x00
	ConfAESCBC128 ConfidentialityAlgorithm = 0x01
)

// CipherSuite is one row of Table 22-20.
type CipherSuite struct {
	ID              uint8
	Auth            AuthAlgorithm
	Integrity       IntegrityAlgorithm
	Confidentiality ConfidentialityAlgorithm
}

// CipherSuiteByID returns a supported suite (0, 1, 2, 3, 15, 16, 17).
func CipherSuiteByID(id uint8) (CipherSuite, bool) { return CipherSuite{}, false }

// RMCP message classes, section 13.1.3.
const (
	ClassASF  uint8 = 0x06
	ClassIPMI uint8 = 0x07
)

// Session header auth types, section 13.6 / 13.27.
const (
	AuthTypeNone     uint8 = 0x00
	AuthTypeRMCPPlus uint8 = 0x06
)

// ASFMessage is an ASF presence ping or pong (section 13.2, DSP0136).
type ASFMessage struct {
	Type                  uint8 // 0x80 ping, 0x40 pong
	Tag                   uint8
	IANA                  uint32 // pong
	OEM                   uint32 // pong
	SupportedEntities     uint8  // pong; bit 7 = IPMI supported
	SupportedInteractions uint8  // pong
}

// Packet is one decoded datagram: RMCP header, then either an ASF message or
// an IPMI v1.5 / v2.0 session packet. Payload is as on the wire (still
// encrypted when Encrypted); SessionKeys.Open verifies and decrypts it.
type Packet struct {
	RMCPSeq uint8
	Class   uint8
	ASF     *ASFMessage

	AuthType      uint8 // AuthTypeNone (v1.5) or AuthTypeRMCPPlus (v2.0)
	PayloadType   PayloadType
	Encrypted     bool
	Authenticated bool
	SessionID     uint32
	Seq           uint32
	Payload       []byte
	AuthCode      []byte // v2.0 integrity trailer AuthCode, or v1.5 16-byte auth code
}

// ParsePacket decodes a datagram. It does no cryptography.
func ParsePacket(b []byte) (*Packet, error) { return nil, errStub }

// AppendASFPing appends an RMCP/ASF presence ping.
func AppendASFPing(b []byte, tag uint8) []byte { return b }

// AppendASFPong appends an RMCP/ASF presence pong answering tag.
func AppendASFPong(b []byte, tag uint8) []byte { return b }

// AppendV15 appends an RMCP + IPMI v1.5 session packet, auth type none.
func AppendV15(b []byte, sessionID, seq uint32, payload []byte) []byte { return b }

// AppendV2 appends an RMCP + unauthenticated, unencrypted v2.0 packet.
func AppendV2(b []byte, pt PayloadType, sessionID, seq uint32, payload []byte) []byte { return b }

// SessionKeys holds an established session's algorithms and keys.
type SessionKeys struct {
	Suite CipherSuite
	SIK   []byte
	K1    []byte
	K2    []byte
}

// NewSessionKeys derives K1 and K2 from the SIK (section 13.32).
func NewSessionKeys(suite CipherSuite, sik []byte) *SessionKeys { return nil }

// AppendSealed appends a v2.0 packet, encrypted and/or integrity-protected
// as the suite requires, with a fresh random IV.
func (k *SessionKeys) AppendSealed(b []byte, pt PayloadType, sessionID, seq uint32, payload []byte) ([]byte, error) {
	return b, errStub
}

// Open verifies the integrity trailer and decrypts p's payload.
func (k *SessionKeys) Open(p *Packet) ([]byte, error) { return nil, errStub }

// RAKPStatus is a status code of Open Session / RAKP messages, Table 13-15.
type RAKPStatus uint8

func (s RAKPStatus) String() string { return "" }

// OpenSessionRequest, section 13.17.
type OpenSessionRequest struct {
	Tag              uint8
	MaxPrivilege     ipmi.PrivilegeLevel
	ConsoleSessionID uint32
	Auth             AuthAlgorithm
	Integrity        IntegrityAlgorithm
	Confidentiality  ConfidentialityAlgorithm
}

func (m *OpenSessionRequest) Marshal() []byte          { return nil }
func (m *OpenSessionRequest) Unmarshal(b []byte) error { return errStub }

// OpenSessionResponse, section 13.18.
type OpenSessionResponse struct {
	Tag              uint8
	Status           RAKPStatus
	MaxPrivilege     ipmi.PrivilegeLevel
	ConsoleSessionID uint32
	ManagedSessionID uint32
	Auth             AuthAlgorithm
	Integrity        IntegrityAlgorithm
	Confidentiality  ConfidentialityAlgorithm
}

func (m *OpenSessionResponse) Marshal() []byte          { return nil }
func (m *OpenSessionResponse) Unmarshal(b []byte) error { return errStub }

// RAKP1, section 13.20. Role is the whole byte (privilege | 0x10 name-only lookup).
type RAKP1 struct {
	Tag              uint8
	ManagedSessionID uint32
	ConsoleRandom    [16]byte
	Role             uint8
	Username         string
}

func (m *RAKP1) Marshal() []byte          { return nil }
func (m *RAKP1) Unmarshal(b []byte) error { return errStub }

// RAKP2, section 13.21.
type RAKP2 struct {
	Tag              uint8
	Status           RAKPStatus
	ConsoleSessionID uint32
	ManagedRandom    [16]byte
	ManagedGUID      [16]byte
	AuthCode         []byte
}

func (m *RAKP2) Marshal() []byte          { return nil }
func (m *RAKP2) Unmarshal(b []byte) error { return errStub }

// RAKP3, section 13.22.
type RAKP3 struct {
	Tag              uint8
	Status           RAKPStatus
	ManagedSessionID uint32
	AuthCode         []byte
}

func (m *RAKP3) Marshal() []byte          { return nil }
func (m *RAKP3) Unmarshal(b []byte) error { return errStub }

// RAKP4, section 13.23.
type RAKP4 struct {
	Tag              uint8
	Status           RAKPStatus
	ConsoleSessionID uint32
	IntegrityCheck   []byte
}

func (m *RAKP4) Marshal() []byte          { return nil }
func (m *RAKP4) Unmarshal(b []byte) error { return errStub }

// RAKP2AuthCode: HMAC(key) over SIDm, SIDc, Rm, Rc, GUIDc, ROLEm, ULENm, UNAMEm.
func RAKP2AuthCode(a AuthAlgorithm, key []byte, consoleSID, managedSID uint32, rm, rc, guid [16]byte, role uint8, username string) []byte {
	return nil
}

// RAKP3AuthCode: HMAC(key) over Rc, SIDm, ROLEm, ULENm, UNAMEm.
func RAKP3AuthCode(a AuthAlgorithm, key []byte, rc [16]byte, consoleSID uint32, role uint8, username string) []byte {
	return nil
}

// DeriveSIK: HMAC(Kg, or the password when Kg is empty) over Rm, Rc, ROLEm, ULENm, UNAMEm.
func DeriveSIK(a AuthAlgorithm, key []byte, rm, rc [16]byte, role uint8, username string) []byte {
	return nil
}

// RAKP4IntegrityCheck: HMAC(SIK) over Rm, SIDc, GUIDc, truncated (SHA1: 12, SHA256: 16).
func RAKP4IntegrityCheck(a AuthAlgorithm, sik []byte, rm [16]byte, managedSID uint32, guid [16]byte) []byte {
	return nil
}
