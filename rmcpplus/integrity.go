package rmcpplus

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
)

// Integrity trailer constants, IPMI v2.0 section 13.28.4 and Table 13-8.
const (
	// integrityPadByte fills the integrity pad.
	integrityPadByte = 0xFF
	// nextHeaderIPMI is the trailer's Next Header byte, "reserved, set to
	// 07h".
	nextHeaderIPMI = 0x07
	// maxIntegrityPad: the pad only rounds up to a multiple of 4.
	maxIntegrityPad = 3
)

// ErrIntegrity reports a packet whose AuthCode does not match: the keys
// differ (wrong password or Kg) or the packet was altered on the way.
var ErrIntegrity = errors.New("rmcpplus: integrity check failed: AuthCode does not match (wrong key or altered packet)")

// authCodeLen is the length of the AuthCode an integrity algorithm
// produces: HMAC-SHA1-96 keeps 12 bytes of the digest, HMAC-SHA256-128 16
// (section 13.28.4). 0 means none or unsupported.
func authCodeLen(a IntegrityAlgorithm) int {
	switch a {
	case IntegrityHMACSHA1_96:
		return 12
	case IntegrityHMACSHA256128:
		return 16
	}
	return 0
}

// integrityHash returns the hash of an integrity algorithm's HMAC.
func integrityHash(a IntegrityAlgorithm) func() hash.Hash {
	switch a {
	case IntegrityHMACSHA1_96:
		return sha1.New
	case IntegrityHMACSHA256128:
		return sha256.New
	}
	return nil
}

// integrityPadLen returns how many pad bytes make n bytes (counted from
// the auth type byte through the payload) plus the pad length and next
// header bytes a multiple of 4. Section 13.28.4: "Integrity PAD ... added
// as needed to cause the number of bytes in the data range covered by
// the AuthCode (Integrity Data) field to be a multiple of 4 bytes".
func integrityPadLen(n int) int {
	return (4 - (n+2)%4) % 4
}

// appendIntegrityTrailer completes an authenticated packet. b[signedStart:]
// holds the session header and payload; it appends the pad, the pad
// length, the next header byte and the AuthCode: HMAC keyed with K1 (mac)
// over everything from the auth type byte through the next header,
// truncated to codeLen.
func appendIntegrityTrailer(b []byte, signedStart int, mac hash.Hash, codeLen int, sum []byte) []byte {
	pad := integrityPadLen(len(b) - signedStart)
	for range pad {
		b = append(b, integrityPadByte)
	}
	b = append(b, uint8(pad), nextHeaderIPMI)
	mac.Reset()
	mac.Write(b[signedStart:])
	return append(b, mac.Sum(sum[:0])[:codeLen]...)
}

// verifyIntegrity checks an AuthCode in constant time.
func verifyIntegrity(mac hash.Hash, signed, authCode []byte, sum []byte) bool {
	mac.Reset()
	mac.Write(signed)
	return hmac.Equal(mac.Sum(sum[:0])[:len(authCode)], authCode)
}

// splitIntegrityTrailer finds the AuthCode in the bytes that follow the
// payload of an authenticated packet: pad (0-3 bytes), pad length, next
// header (07h), AuthCode. The AuthCode is 12 or 16 bytes (HMAC-SHA1-96,
// HMAC-SHA256-128, HMAC-MD5-128, MD5-128); because both lengths are
// multiples of 4 and the pad is under 4, at most one reading fits.
func splitIntegrityTrailer(t []byte) ([]byte, error) {
	for _, n := range [...]int{12, 16} {
		pad := len(t) - 2 - n
		if pad < 0 || pad > maxIntegrityPad {
			continue
		}
		if int(t[pad]) != pad {
			return nil, fmt.Errorf("rmcpplus: integrity trailer says pad length %d, but %d pad bytes precede it", t[pad], pad)
		}
		if t[pad+1] != nextHeaderIPMI {
			return nil, fmt.Errorf("rmcpplus: integrity trailer next header 0x%02x, want 0x07", t[pad+1])
		}
		return t[pad+2:], nil
	}
	return nil, fmt.Errorf("rmcpplus: authenticated packet has a %d-byte integrity trailer; none of pad 0-3, pad length, next header and a 12- or 16-byte AuthCode fits", len(t))
}
