package rmcpplus

import (
	"fmt"

	"obmd/ipmi"
)

// AuthAlgorithm is an RMCP+ authentication algorithm, the algorithm that
// keys RAKP messages 2-4 and derives the session keys. IPMI v2.0 section
// 13.28, Table 13-17.
type AuthAlgorithm uint8

// Authentication algorithms. RAKP-HMAC-MD5 is listed for completeness;
// this package computes only RAKP-HMAC-SHA1 and RAKP-HMAC-SHA256.
const (
	AuthNone       AuthAlgorithm = 0x00
	AuthHMACSHA1   AuthAlgorithm = 0x01
	AuthHMACMD5    AuthAlgorithm = 0x02
	AuthHMACSHA256 AuthAlgorithm = 0x03
)

func (a AuthAlgorithm) String() string {
	switch a {
	case AuthNone:
		return "RAKP-none"
	case AuthHMACSHA1:
		return "RAKP-HMAC-SHA1"
	case AuthHMACMD5:
		return "RAKP-HMAC-MD5"
	case AuthHMACSHA256:
		return "RAKP-HMAC-SHA256"
	}
	return fmt.Sprintf("authentication algorithm 0x%02x", uint8(a))
}

// IntegrityAlgorithm is an RMCP+ integrity algorithm, the AuthCode of the
// session trailer. IPMI v2.0 section 13.28.4, Table 13-18.
type IntegrityAlgorithm uint8

// Integrity algorithms. This package computes HMAC-SHA1-96 and
// HMAC-SHA256-128.
const (
	IntegrityNone          IntegrityAlgorithm = 0x00
	IntegrityHMACSHA1_96   IntegrityAlgorithm = 0x01
	IntegrityHMACMD5_128   IntegrityAlgorithm = 0x02
	IntegrityMD5_128       IntegrityAlgorithm = 0x03
	IntegrityHMACSHA256128 IntegrityAlgorithm = 0x04
)

func (a IntegrityAlgorithm) String() string {
	switch a {
	case IntegrityNone:
		return "integrity-none"
	case IntegrityHMACSHA1_96:
		return "HMAC-SHA1-96"
	case IntegrityHMACMD5_128:
		return "HMAC-MD5-128"
	case IntegrityMD5_128:
		return "MD5-128"
	case IntegrityHMACSHA256128:
		return "HMAC-SHA256-128"
	}
	return fmt.Sprintf("integrity algorithm 0x%02x", uint8(a))
}

// ConfidentialityAlgorithm is an RMCP+ confidentiality (encryption)
// algorithm. IPMI v2.0 section 13.28.5, Table 13-19.
type ConfidentialityAlgorithm uint8

// Confidentiality algorithms. This package implements AES-CBC-128.
const (
	ConfNone      ConfidentialityAlgorithm = 0x00
	ConfAESCBC128 ConfidentialityAlgorithm = 0x01
)

func (a ConfidentialityAlgorithm) String() string {
	switch a {
	case ConfNone:
		return "confidentiality-none"
	case ConfAESCBC128:
		return "AES-CBC-128"
	}
	return fmt.Sprintf("confidentiality algorithm 0x%02x", uint8(a))
}

// CipherSuite is one row of Table 22-20: an authentication, an integrity
// and a confidentiality algorithm under one ID.
type CipherSuite struct {
	ID              uint8
	Auth            AuthAlgorithm
	Integrity       IntegrityAlgorithm
	Confidentiality ConfidentialityAlgorithm
}

func (s CipherSuite) String() string {
	return fmt.Sprintf("cipher suite %d (%v, %v, %v)", s.ID, s.Auth, s.Integrity, s.Confidentiality)
}

// record is the suite's entry in a Get Channel Cipher Suites answer
// (section 22.15).
func (s CipherSuite) record() ipmi.CipherSuiteRecord {
	return ipmi.CipherSuiteRecord{ID: s.ID, Auth: uint8(s.Auth), Integrity: uint8(s.Integrity), Confidentiality: uint8(s.Confidentiality)}
}

// supportedSuites are the rows of IPMI v2.0 Table 22-20 ("Cipher Suite
// IDs") whose algorithms this package implements. Suites 4-14 need RC4 or
// MD5 and suites 18-19 are not in the v2.0 table.
var supportedSuites = [...]CipherSuite{
	{0, AuthNone, IntegrityNone, ConfNone},
	{1, AuthHMACSHA1, IntegrityNone, ConfNone},
	{2, AuthHMACSHA1, IntegrityHMACSHA1_96, ConfNone},
	{3, AuthHMACSHA1, IntegrityHMACSHA1_96, ConfAESCBC128},
	{15, AuthHMACSHA256, IntegrityNone, ConfNone},
	{16, AuthHMACSHA256, IntegrityHMACSHA256128, ConfNone},
	{17, AuthHMACSHA256, IntegrityHMACSHA256128, ConfAESCBC128},
}

// CipherSuiteByID returns a supported suite (0, 1, 2, 3, 15, 16, 17).
func CipherSuiteByID(id uint8) (CipherSuite, bool) {
	for _, s := range supportedSuites {
		if s.ID == id {
			return s, true
		}
	}
	return CipherSuite{}, false
}

// CipherSuiteByAlgorithms returns the supported suite made of exactly these
// algorithms. A BMC uses it to answer an Open Session Request (section
// 13.17), which names algorithms rather than a suite ID.
func CipherSuiteByAlgorithms(a AuthAlgorithm, i IntegrityAlgorithm, c ConfidentialityAlgorithm) (CipherSuite, bool) {
	for _, s := range supportedSuites {
		if s.Auth == a && s.Integrity == i && s.Confidentiality == c {
			return s, true
		}
	}
	return CipherSuite{}, false
}

// SupportedCipherSuites returns the IDs of the suites this package
// implements, in ascending order.
func SupportedCipherSuites() []uint8 {
	ids := make([]uint8, len(supportedSuites))
	for i, s := range supportedSuites {
		ids[i] = s.ID
	}
	return ids
}
