package rmcpplus

import (
	"fmt"

	"github.com/google/gopacket"
)

// Packet is one decoded datagram: RMCP header, then either an ASF message or
// an IPMI v1.5 / v2.0 session packet. Payload is as on the wire (still
// encrypted when Encrypted); SessionKeys.Open verifies and decrypts it.
//
// Payload and AuthCode alias the datagram passed to ParsePacket: reusing
// that buffer overwrites them.
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

	// OEMIANA and OEMPayloadID are set for v2.0 payload type PayloadOEM.
	OEMIANA      uint32
	OEMPayloadID uint16

	// signed is what the v2.0 AuthCode covers: from the auth type byte
	// through the next header byte (section 13.28.4).
	signed []byte
}

// IsV2 reports whether p is an IPMI v2.0/RMCP+ session packet.
func (p *Packet) IsV2() bool { return p.Class == ClassIPMI && p.AuthType == AuthTypeRMCPPlus }

// ParsePacket decodes a datagram. It does no cryptography.
func ParsePacket(b []byte) (*Packet, error) {
	p := new(Packet)
	if err := p.Unmarshal(b); err != nil {
		return nil, err
	}
	return p, nil
}

// Unmarshal decodes a datagram into p, overwriting every field; a caller
// on the hot path reuses one Packet to avoid allocating. It does no
// cryptography, but it checks the shape of an integrity trailer (section
// 13.28.4): pad length 0-3, next header 07h, then a 12- or 16-byte
// AuthCode.
func (p *Packet) Unmarshal(b []byte) error {
	*p = Packet{}
	var rmcp RMCPHeader
	if err := rmcp.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		return err
	}
	p.RMCPSeq, p.Class = rmcp.Sequence, rmcp.Class
	if rmcp.ACK {
		return fmt.Errorf("rmcpplus: RMCP ACK for sequence %d carries no message", rmcp.Sequence)
	}
	body := rmcp.payload
	switch rmcp.Class {
	case ClassASF:
		var a ASFPresence
		if err := a.DecodeFromBytes(body, gopacket.NilDecodeFeedback); err != nil {
			return err
		}
		m := a.ASFMessage
		p.ASF = &m
		return nil
	case ClassIPMI:
	default:
		return fmt.Errorf("rmcpplus: RMCP message class 0x%02x is neither ASF nor IPMI", rmcp.Class)
	}
	if len(body) == 0 {
		return fmt.Errorf("%w: RMCP header without an IPMI session header", ErrTruncated)
	}
	if body[0] != AuthTypeRMCPPlus {
		var h SessionHeaderV15
		if err := h.DecodeFromBytes(body, gopacket.NilDecodeFeedback); err != nil {
			return err
		}
		p.AuthType, p.Seq, p.SessionID, p.Payload = h.AuthType, h.Seq, h.SessionID, h.payload
		if h.AuthType != AuthTypeNone {
			p.AuthCode = body[9 : 9+authCodeV15Len]
		}
		return nil
	}
	var h SessionHeaderV2
	if err := h.DecodeFromBytes(body, gopacket.NilDecodeFeedback); err != nil {
		return err
	}
	p.AuthType = AuthTypeRMCPPlus
	p.PayloadType, p.Encrypted, p.Authenticated = h.PayloadType, h.Encrypted, h.Authenticated
	p.OEMIANA, p.OEMPayloadID = h.OEMIANA, h.OEMPayloadID
	p.SessionID, p.Seq, p.Payload = h.SessionID, h.Seq, h.payload
	if h.Authenticated {
		authCode, err := splitIntegrityTrailer(h.Trailer)
		if err != nil {
			return err
		}
		p.AuthCode = authCode
		p.signed = body[:len(body)-len(authCode)]
	}
	return nil
}
