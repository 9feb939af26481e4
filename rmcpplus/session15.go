package rmcpplus

import (
	"encoding/binary"
	"fmt"

	"github.com/google/gopacket"
)

// Session header auth types, IPMI v2.0 section 13.6 and
// section 13.27.3: 06h marks an IPMI v2.0/RMCP+ session header, anything
// else an IPMI v1.5 one.
const (
	AuthTypeNone     uint8 = 0x00
	AuthTypeRMCPPlus uint8 = 0x06
)

const (
	sessionV15MinLen = 10 // auth type, seq, session ID, length
	authCodeV15Len   = 16
)

// SessionHeaderV15 is the IPMI v1.5 session header, as a gopacket layer.
// IPMI v2.0 section 13.6 ("IPMI LAN Session Header"):
//
//	auth type (1), session sequence number (4), session ID (4),
//	[message authentication code (16), absent when auth type is none],
//	IPMI message length (1), IPMI message
//
// Note the order: sequence number before session ID, unlike v2.0. obmd
// sends v1.5 packets only before a session exists (Get Channel
// Authentication Capabilities, Get Channel Cipher Suites), with auth type
// none.
type SessionHeaderV15 struct {
	layerBase
	AuthType      uint8
	Seq           uint32
	SessionID     uint32
	AuthCode      [16]byte // meaningful when AuthType != AuthTypeNone
	PayloadLength uint8
}

// LayerType returns LayerTypeSessionV15.
func (h *SessionHeaderV15) LayerType() gopacket.LayerType { return LayerTypeSessionV15 }

// CanDecode returns LayerTypeSessionV15.
func (h *SessionHeaderV15) CanDecode() gopacket.LayerClass { return LayerTypeSessionV15 }

// NextLayerType is gopacket.LayerTypePayload: an IPMI message (package
// ipmi decodes it).
func (h *SessionHeaderV15) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

// headerLen is the encoded length of the header.
func (h *SessionHeaderV15) headerLen() int {
	if h.AuthType == AuthTypeNone {
		return sessionV15MinLen
	}
	return sessionV15MinLen + authCodeV15Len
}

// DecodeFromBytes decodes the header; the payload is the IPMI message.
// Bytes after the message (the legacy pad of section 13.6) are ignored.
func (h *SessionHeaderV15) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 1 {
		df.SetTruncated()
		return fmt.Errorf("%w: empty IPMI session header", ErrTruncated)
	}
	h.AuthType = data[0]
	if h.AuthType == AuthTypeRMCPPlus {
		return fmt.Errorf("rmcpplus: auth type 06h is an RMCP+ (v2.0) header, not v1.5")
	}
	n := h.headerLen()
	if len(data) < n {
		df.SetTruncated()
		return fmt.Errorf("%w: IPMI v1.5 session header of %d bytes, want %d", ErrTruncated, len(data), n)
	}
	h.Seq = binary.LittleEndian.Uint32(data[1:])
	h.SessionID = binary.LittleEndian.Uint32(data[5:])
	if h.AuthType != AuthTypeNone {
		copy(h.AuthCode[:], data[9:9+authCodeV15Len])
	} else {
		h.AuthCode = [16]byte{}
	}
	h.PayloadLength = data[n-1]
	if len(data) < n+int(h.PayloadLength) {
		df.SetTruncated()
		return fmt.Errorf("%w: IPMI v1.5 message length %d, %d bytes present", ErrTruncated, h.PayloadLength, len(data)-n)
	}
	h.contents = data[:n]
	h.payload = data[n : n+int(h.PayloadLength)]
	return nil
}

// SerializeTo prepends the header to the IPMI message already in b. With
// opts.FixLengths, PayloadLength is set from the message.
func (h *SessionHeaderV15) SerializeTo(b gopacket.SerializeBuffer, opts gopacket.SerializeOptions) error {
	if opts.FixLengths {
		n := len(b.Bytes())
		if n > 0xFF {
			return fmt.Errorf("rmcpplus: IPMI v1.5 message of %d bytes exceeds 255", n)
		}
		h.PayloadLength = uint8(n)
	}
	hdr, err := b.PrependBytes(h.headerLen())
	if err != nil {
		return err
	}
	appendV15Header(hdr[:0], h.AuthType, h.Seq, h.SessionID, &h.AuthCode, h.PayloadLength)
	return nil
}

// appendV15Header appends a v1.5 session header; the auth code is written
// only when authType is not none.
func appendV15Header(b []byte, authType uint8, seq, sessionID uint32, authCode *[16]byte, length uint8) []byte {
	b = append(b, authType)
	b = binary.LittleEndian.AppendUint32(b, seq)
	b = binary.LittleEndian.AppendUint32(b, sessionID)
	if authType != AuthTypeNone {
		b = append(b, authCode[:]...)
	}
	return append(b, length)
}

// AppendV15 appends an RMCP + IPMI v1.5 session packet, auth type none.
// The payload (an IPMI message) must be at most 255 bytes; longer ones
// are cut to 255, which no IPMI v1.5 message reaches.
func AppendV15(b []byte, sessionID, seq uint32, payload []byte) []byte {
	if len(payload) > 0xFF {
		payload = payload[:0xFF]
	}
	b = appendRMCP(b, ClassIPMI)
	b = appendV15Header(b, AuthTypeNone, seq, sessionID, nil, uint8(len(payload)))
	return append(b, payload...)
}

func decodeSessionV15(data []byte, p gopacket.PacketBuilder) error {
	h := &SessionHeaderV15{}
	if err := h.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(h)
	return p.NextDecoder(h.NextLayerType())
}
