package rmcpplus

import (
	"encoding/binary"
	"fmt"

	"obmd/ipmi"
)

// Algorithm payloads of Open Session messages, sections 13.17-13.18: each
// is 8 bytes, payload type (00h authentication, 01h integrity, 02h
// confidentiality), 2 reserved bytes, payload length (08h), the algorithm
// in bits 5:0, 3 reserved bytes.
const (
	algPayloadAuth            = 0x00
	algPayloadIntegrity       = 0x01
	algPayloadConfidentiality = 0x02
	algPayloadLen             = 8
	algMask                   = 0x3F

	openSessionRequestLen  = 32
	openSessionResponseLen = 36
	// rakpErrorLen is the shortest Open Session Response or RAKP 2/4
	// reporting an error: tag, status, reserved (2), session ID (4).
	rakpErrorLen = 8
)

func appendAlgPayload(b []byte, payloadType, alg uint8) []byte {
	return append(b, payloadType, 0, 0, algPayloadLen, alg&algMask, 0, 0, 0)
}

// parseAlgPayloads reads the three algorithm payloads in their fixed
// order.
func parseAlgPayloads(b []byte, msg string) (AuthAlgorithm, IntegrityAlgorithm, ConfidentialityAlgorithm, error) {
	var algs [3]uint8
	for i, want := range [...]uint8{algPayloadAuth, algPayloadIntegrity, algPayloadConfidentiality} {
		p := b[i*algPayloadLen : (i+1)*algPayloadLen]
		if p[0] != want {
			return 0, 0, 0, fmt.Errorf("rmcpplus: %s: algorithm payload %d has type 0x%02x, want 0x%02x", msg, i+1, p[0], want)
		}
		algs[i] = p[4] & algMask
	}
	return AuthAlgorithm(algs[0]), IntegrityAlgorithm(algs[1]), ConfidentialityAlgorithm(algs[2]), nil
}

// OpenSessionRequest, section 13.17, Table 13-9: the first message of the
// RMCP+ handshake, console to BMC.
//
//	tag, requested maximum privilege (bits 3:0), reserved (2), remote
//	console session ID (4), authentication, integrity and
//	confidentiality payloads (8 each)
type OpenSessionRequest struct {
	Tag              uint8
	MaxPrivilege     ipmi.PrivilegeLevel
	ConsoleSessionID uint32
	Auth             AuthAlgorithm
	Integrity        IntegrityAlgorithm
	Confidentiality  ConfidentialityAlgorithm
}

// Marshal returns the 32-byte request.
func (m *OpenSessionRequest) Marshal() []byte {
	b := make([]byte, 0, openSessionRequestLen)
	b = append(b, m.Tag, uint8(m.MaxPrivilege)&0x0F, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, m.ConsoleSessionID)
	b = appendAlgPayload(b, algPayloadAuth, uint8(m.Auth))
	b = appendAlgPayload(b, algPayloadIntegrity, uint8(m.Integrity))
	return appendAlgPayload(b, algPayloadConfidentiality, uint8(m.Confidentiality))
}

// Unmarshal decodes a request.
func (m *OpenSessionRequest) Unmarshal(b []byte) error {
	if len(b) < openSessionRequestLen {
		return fmt.Errorf("%w: Open Session Request of %d bytes, want 32", ErrTruncated, len(b))
	}
	a, i, c, err := parseAlgPayloads(b[8:], "Open Session Request")
	if err != nil {
		return err
	}
	*m = OpenSessionRequest{
		Tag:              b[0],
		MaxPrivilege:     ipmi.PrivilegeLevel(b[1] & 0x0F),
		ConsoleSessionID: binary.LittleEndian.Uint32(b[4:]),
		Auth:             a,
		Integrity:        i,
		Confidentiality:  c,
	}
	return nil
}

// OpenSessionResponse, section 13.18, Table 13-10: the BMC's answer.
//
//	tag, status, maximum privilege (bits 3:0), reserved, remote console
//	session ID (4), managed system session ID (4), authentication,
//	integrity and confidentiality payloads (8 each)
//
// With a non-zero status a BMC may stop after the console session ID (8
// bytes), and Unmarshal accepts that; Marshal always writes all 36 bytes,
// as ipmi_sim and OpenBMC's netipmid do, so that no client trips over a
// short error response. Some BMCs refuse with one byte, the status alone
// (BMC-QUIRKS.md "1-byte Open Session error"; OpenBMC's netipmid answers a
// malformed request that way): Unmarshal reads it as a refusal with Short
// set and no tag.
type OpenSessionResponse struct {
	Short            bool // the one-byte form: only Status is valid
	Tag              uint8
	Status           RAKPStatus
	MaxPrivilege     ipmi.PrivilegeLevel
	ConsoleSessionID uint32
	ManagedSessionID uint32
	Auth             AuthAlgorithm
	Integrity        IntegrityAlgorithm
	Confidentiality  ConfidentialityAlgorithm
}

// Marshal returns the 36-byte response, or the one byte of the Short form.
func (m *OpenSessionResponse) Marshal() []byte {
	if m.Short {
		return []byte{uint8(m.Status)}
	}
	b := make([]byte, 0, openSessionResponseLen)
	b = append(b, m.Tag, uint8(m.Status), uint8(m.MaxPrivilege)&0x0F, 0)
	b = binary.LittleEndian.AppendUint32(b, m.ConsoleSessionID)
	b = binary.LittleEndian.AppendUint32(b, m.ManagedSessionID)
	b = appendAlgPayload(b, algPayloadAuth, uint8(m.Auth))
	b = appendAlgPayload(b, algPayloadIntegrity, uint8(m.Integrity))
	return appendAlgPayload(b, algPayloadConfidentiality, uint8(m.Confidentiality))
}

// Unmarshal decodes a response. An error status needs only the first 2
// bytes; the fields present after them are kept.
func (m *OpenSessionResponse) Unmarshal(b []byte) error {
	if len(b) == 1 && b[0] != uint8(RAKPNoErrors) {
		*m = OpenSessionResponse{Short: true, Status: RAKPStatus(b[0])}
		return nil
	}
	if len(b) < 2 {
		return fmt.Errorf("%w: Open Session Response of %d bytes", ErrTruncated, len(b))
	}
	r := OpenSessionResponse{Tag: b[0], Status: RAKPStatus(b[1])}
	if r.Status != RAKPNoErrors {
		if len(b) >= 3 {
			r.MaxPrivilege = ipmi.PrivilegeLevel(b[2] & 0x0F)
		}
		if len(b) >= rakpErrorLen {
			r.ConsoleSessionID = binary.LittleEndian.Uint32(b[4:])
		}
		*m = r
		return nil
	}
	if len(b) < openSessionResponseLen {
		return fmt.Errorf("%w: Open Session Response of %d bytes, want 36", ErrTruncated, len(b))
	}
	var err error
	if r.Auth, r.Integrity, r.Confidentiality, err = parseAlgPayloads(b[12:], "Open Session Response"); err != nil {
		return err
	}
	r.MaxPrivilege = ipmi.PrivilegeLevel(b[2] & 0x0F)
	r.ConsoleSessionID = binary.LittleEndian.Uint32(b[4:])
	r.ManagedSessionID = binary.LittleEndian.Uint32(b[8:])
	*m = r
	return nil
}
