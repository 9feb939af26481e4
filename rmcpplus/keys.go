package rmcpplus

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
)

// Keys of the RAKP handshake and of an RMCP+ session, IPMI v2.0 sections
// 13.31 ("RMCP+ Authenticated Key-Exchange Protocol (RAKP)") and 13.32
// ("Generating Additional Keying Material").
//
// Names follow the spec, whose subscripts read backwards: "m" is the
// remote console (the client, obmd) and "c" the managed system (the BMC).
// SIDm is the console's session ID (sent in Open Session Request), SIDc
// the BMC's (returned in Open Session Response), Rm and Rc their random
// numbers, GUIDc the BMC's GUID, ROLEm the whole requested-role byte of
// RAKP 1 (privilege in bits 3:0 plus the name-only-lookup bit 10h), ULENm
// and UNAMEm the user name's length and bytes. ipmitool
// (lanplus_crypt.c) and FreeIPMI (ipmi-rmcpplus-util.c) lay the HMAC
// inputs out the same way.
//
// The user password as an HMAC key (Kuid): ipmitool copies the password
// into a zeroed 20-byte buffer and keys the HMAC with all 20 bytes;
// FreeIPMI keys it with the password at its own length (20 zero bytes for
// an empty one). Both give the same MAC, because HMAC (RFC 2104) pads any
// key shorter than the hash block (64 bytes for SHA-1 and SHA-256) with
// zeros anyway. This package therefore uses the password bytes as given,
// which must be at most 20 bytes (MaxPasswordLength, the IPMI v2.0 limit;
// a 16-byte IPMI v1.5 password is simply a shorter one). Kg works the same
// way (see SIKKey).

// MaxPasswordLength is the longest IPMI v2.0 user password (and Kg), in
// bytes (section 22.30, "Set User Password", 20-byte form).
const MaxPasswordLength = 20

// CheckPassword reports whether a password or Kg can be an RMCP+ key.
func CheckPassword(pw []byte) error {
	if len(pw) > MaxPasswordLength {
		return fmt.Errorf("rmcpplus: password or Kg is %d bytes; IPMI v2.0 allows at most %d", len(pw), MaxPasswordLength)
	}
	return nil
}

// SIKKey returns the key that derives the SIK: Kg when the BMC has one,
// else the user password (section 13.31). An all-zero Kg is the spec's
// default, "no Kg", and also selects the password, as ipmitool does.
func SIKKey(kg, password []byte) []byte {
	for _, c := range kg {
		if c != 0 {
			return kg
		}
	}
	return password
}

// authHash returns the hash of an authentication algorithm's HMAC, or nil
// for RAKP-none and algorithms this package does not implement.
func authHash(a AuthAlgorithm) func() hash.Hash {
	switch a {
	case AuthHMACSHA1:
		return sha1.New
	case AuthHMACSHA256:
		return sha256.New
	}
	return nil
}

// rakp4ICVLen is the length of the RAKP 4 integrity check value: the
// authentication algorithm's HMAC truncated like its integrity
// counterpart (section 13.28, descriptions of RAKP-HMAC-SHA1 and
// RAKP-HMAC-SHA256): HMAC-SHA1-96 keeps 12 bytes, HMAC-SHA256-128 16.
func rakp4ICVLen(a AuthAlgorithm) int {
	switch a {
	case AuthHMACSHA1:
		return 12
	case AuthHMACSHA256:
		return 16
	}
	return 0
}

// AuthCodeLen is the length of the RAKP 2 and RAKP 3 authentication codes
// for a: the full HMAC digest (20 for SHA-1, 32 for SHA-256, 0 for none).
func AuthCodeLen(a AuthAlgorithm) int {
	if h := authHash(a); h != nil {
		return h().Size()
	}
	return 0
}

// RAKP4ICVLen is the length of the RAKP 4 integrity check value for a.
func RAKP4ICVLen(a AuthAlgorithm) int { return rakp4ICVLen(a) }

// rakpHMAC computes HMAC(key) over the concatenated parts, or nil for an
// algorithm without HMAC.
func rakpHMAC(a AuthAlgorithm, key []byte, parts ...[]byte) []byte {
	h := authHash(a)
	if h == nil {
		return nil
	}
	m := hmac.New(h, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// roleAndName is ROLEm, ULENm, UNAMEm.
func roleAndName(role uint8, username string) []byte {
	b := make([]byte, 0, 2+len(username))
	b = append(b, role, uint8(len(username)))
	return append(b, username...)
}

// RAKP2AuthCode: HMAC(key) over SIDm, SIDc, Rm, Rc, GUIDc, ROLEm, ULENm, UNAMEm.
//
// Section 13.31, RAKP Message 2's Key Exchange Authentication Code. key is
// the user password (Kuid); consoleSID is SIDm, managedSID is SIDc, rm the
// console's random number (RAKP 1), rc and guid the BMC's (RAKP 2). The
// result is the full digest; nil for RAKP-none.
func RAKP2AuthCode(a AuthAlgorithm, key []byte, consoleSID, managedSID uint32, rm, rc, guid [16]byte, role uint8, username string) []byte {
	return rakpHMAC(a, key, le32(consoleSID), le32(managedSID), rm[:], rc[:], guid[:], roleAndName(role, username))
}

// RAKP3AuthCode: HMAC(key) over Rc, SIDm, ROLEm, ULENm, UNAMEm.
//
// Section 13.31, RAKP Message 3's Key Exchange Authentication Code, keyed
// with the user password. The result is the full digest; nil for
// RAKP-none.
func RAKP3AuthCode(a AuthAlgorithm, key []byte, rc [16]byte, consoleSID uint32, role uint8, username string) []byte {
	return rakpHMAC(a, key, rc[:], le32(consoleSID), roleAndName(role, username))
}

// DeriveSIK: HMAC(Kg, or the password when Kg is empty) over Rm, Rc, ROLEm, ULENm, UNAMEm.
//
// Section 13.31, the Session Integrity Key. Pass SIKKey(kg, password) as
// key. nil for RAKP-none.
func DeriveSIK(a AuthAlgorithm, key []byte, rm, rc [16]byte, role uint8, username string) []byte {
	return rakpHMAC(a, key, rm[:], rc[:], roleAndName(role, username))
}

// RAKP4IntegrityCheck: HMAC(SIK) over Rm, SIDc, GUIDc, truncated (SHA1: 12, SHA256: 16).
//
// Section 13.31, RAKP Message 4's Integrity Check Value; managedSID is
// SIDc, the BMC's session ID. nil for RAKP-none.
func RAKP4IntegrityCheck(a AuthAlgorithm, sik []byte, rm [16]byte, managedSID uint32, guid [16]byte) []byte {
	icv := rakpHMAC(a, sik, rm[:], le32(managedSID), guid[:])
	if icv == nil {
		return nil
	}
	return icv[:rakp4ICVLen(a)]
}

// Constants of section 13.32: "constants are constructed using a
// hexadecimal octet value repeated up to the HMAC block size in length".
// ipmitool and FreeIPMI both use 20 bytes, for SHA-256 too, and so do we:
// the interoperable reading.
var (
	keyConst1 = [20]byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	keyConst2 = [20]byte{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}
)

// SessionKeys holds an established session's algorithms and keys.
//
// It seals and opens packets for one session and is safe for concurrent
// use. Construct it with NewSessionKeys.
type SessionKeys struct {
	Suite CipherSuite
	SIK   []byte
	K1    []byte
	K2    []byte

	// Rand supplies the AES-CBC-128 IVs; nil means crypto/rand.Reader.
	// Tests set it to get fixed IVs.
	Rand io.Reader

	mu       sync.Mutex
	prepared bool
	prepErr  error
	mac      hash.Hash    // HMAC keyed with K1, for the integrity AuthCode
	block    cipher.Block // AES-128 keyed with K2[:16]
	sum      [sha256.Size]byte
}

// NewSessionKeys derives K1 and K2 from the SIK (section 13.32).
//
// K1 = HMAC(SIK, 20 x 01h) keys the integrity AuthCode; K2 = HMAC(SIK,
// 20 x 02h), first 16 bytes, is the AES-CBC-128 key. The HMAC is the
// authentication algorithm's. For RAKP-none, K1 and K2 stay nil.
func NewSessionKeys(suite CipherSuite, sik []byte) *SessionKeys {
	k := &SessionKeys{Suite: suite, SIK: sik}
	if authHash(suite.Auth) != nil {
		k.K1 = rakpHMAC(suite.Auth, sik, keyConst1[:])
		k.K2 = rakpHMAC(suite.Auth, sik, keyConst2[:])
	}
	return k
}

// prepare builds the keyed HMAC and the block cipher once. k.mu is held.
func (k *SessionKeys) prepare() error {
	if k.prepared {
		return k.prepErr
	}
	k.prepared = true
	if a := k.Suite.Integrity; a != IntegrityNone {
		h := integrityHash(a)
		if h == nil {
			k.prepErr = fmt.Errorf("rmcpplus: integrity algorithm %v is not supported", a)
			return k.prepErr
		}
		if len(k.K1) == 0 {
			k.prepErr = errors.New("rmcpplus: session keys have no K1 for the integrity algorithm")
			return k.prepErr
		}
		k.mac = hmac.New(h, k.K1)
	}
	if c := k.Suite.Confidentiality; c != ConfNone {
		if c != ConfAESCBC128 {
			k.prepErr = fmt.Errorf("rmcpplus: confidentiality algorithm %v is not supported", c)
			return k.prepErr
		}
		k.block, k.prepErr = newAESCBC128(k.K2)
	}
	return k.prepErr
}

func (k *SessionKeys) random() io.Reader {
	if k.Rand != nil {
		return k.Rand
	}
	return rand.Reader
}

// AppendSealed appends a v2.0 packet, encrypted and/or integrity-protected
// as the suite requires, with a fresh random IV.
//
// IPMI v2.0 section 13.28: the payload is encrypted first (section 13.29),
// then the AuthCode is computed over the packet from the auth type byte
// through the next header byte (section 13.28.4). On error b is returned
// unchanged.
func (k *SessionKeys) AppendSealed(b []byte, pt PayloadType, sessionID, seq uint32, payload []byte) ([]byte, error) {
	if pt&payloadTypeMask == PayloadOEM {
		return b, errors.New("rmcpplus: sealing OEM explicit payloads is not supported")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.prepare(); err != nil {
		return b, err
	}
	encrypt := k.Suite.Confidentiality != ConfNone
	authenticate := k.Suite.Integrity != IntegrityNone
	start := len(b)
	b = appendRMCP(b, ClassIPMI)
	signedStart := len(b)
	b = appendV2Header(b, pt, encrypt, authenticate, nil, sessionID, seq, 0)
	payloadStart := len(b)
	if encrypt {
		var err error
		if b, err = appendAESCBC128(b, k.block, k.random(), payload); err != nil {
			return b[:start], err
		}
	} else {
		b = append(b, payload...)
	}
	n := len(b) - payloadStart
	if n > 0xFFFF {
		return b[:start], fmt.Errorf("rmcpplus: payload of %d bytes does not fit an RMCP+ packet", len(payload))
	}
	binary.LittleEndian.PutUint16(b[payloadStart-2:], uint16(n))
	if authenticate {
		b = appendIntegrityTrailer(b, signedStart, k.mac, authCodeLen(k.Suite.Integrity), k.sum[:])
	}
	return b, nil
}

// Open verifies the integrity trailer and decrypts p's payload.
//
// p must come from ParsePacket (or Packet.Unmarshal). With an integrity
// algorithm, every packet must be authenticated and its AuthCode is
// checked in constant time before anything else; an unencrypted but
// authenticated packet is accepted (the spec lets a payload be sent in the
// clear within an encrypting session), and the caller can see that in
// p.Encrypted. The result is a new slice.
func (k *SessionKeys) Open(p *Packet) ([]byte, error) { return k.AppendOpen(nil, p) }

// AppendOpen is Open that appends the plaintext to dst, which must not
// overlap the datagram p was parsed from. With enough capacity in dst it
// does not allocate.
func (k *SessionKeys) AppendOpen(dst []byte, p *Packet) ([]byte, error) {
	if !p.IsV2() {
		return dst, errors.New("rmcpplus: not an RMCP+ (IPMI v2.0) packet")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.prepare(); err != nil {
		return dst, err
	}
	if a := k.Suite.Integrity; a != IntegrityNone {
		switch {
		case !p.Authenticated:
			return dst, fmt.Errorf("rmcpplus: unauthenticated %v packet in a session that uses %v", p.PayloadType, a)
		case p.signed == nil:
			return dst, errors.New("rmcpplus: packet was not decoded from a datagram; cannot check its AuthCode")
		case len(p.AuthCode) != authCodeLen(a):
			return dst, fmt.Errorf("rmcpplus: AuthCode is %d bytes, %v uses %d", len(p.AuthCode), a, authCodeLen(a))
		}
		if !verifyIntegrity(k.mac, p.signed, p.AuthCode, k.sum[:]) {
			return dst, ErrIntegrity
		}
	} else if p.Authenticated {
		return dst, fmt.Errorf("rmcpplus: authenticated packet in a session without integrity (%v)", k.Suite)
	}
	if !p.Encrypted {
		return append(dst, p.Payload...), nil
	}
	if k.block == nil {
		return dst, fmt.Errorf("rmcpplus: encrypted packet in a session without confidentiality (%v)", k.Suite)
	}
	return appendOpenAESCBC128(dst, k.block, p.Payload)
}
