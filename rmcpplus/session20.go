package rmcpplus

import (
	"encoding/binary"
	"fmt"

	"github.com/google/gopacket"
)

// PayloadType is the 6-bit payload type of an RMCP+ session header.
// IPMI v2.0 section 13.27.3, Table 13-16.
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

func (t PayloadType) String() string {
	switch t {
	case PayloadIPMI:
		return "IPMI"
	case PayloadSOL:
		return "SOL"
	case PayloadOEM:
		return "OEM explicit"
	case PayloadOpenSessionReq:
		return "Open Session Request"
	case PayloadOpenSessionRsp:
		return "Open Session Response"
	case PayloadRAKP1:
		return "RAKP Message 1"
	case PayloadRAKP2:
		return "RAKP Message 2"
	case PayloadRAKP3:
		return "RAKP Message 3"
	case PayloadRAKP4:
		return "RAKP Message 4"
	}
	return fmt.Sprintf("payload type 0x%02x", uint8(t))
}

// Bits of the payload type byte, section 13.27.3.
const (
	payloadEncrypted     = 0x80
	payloadAuthenticated = 0x40
	payloadTypeMask      = 0x3F

	sessionV2Len    = 12 // auth type, payload type, session ID, seq, length
	sessionV2OEMLen = 6  // OEM IANA (4) and OEM payload ID (2)
)

// SessionHeaderV2 is the IPMI v2.0/RMCP+ session header, as a gopacket
// layer. IPMI v2.0 section 13.27 and Table 13-8:
//
//	auth type (06h), payload type (bit 7 encrypted, bit 6 authenticated,
//	bits 5:0 type), [OEM IANA (4), OEM payload ID (2): only for payload
//	type 02h], session ID (4), session sequence number (4), payload
//	length (2), payload, [integrity trailer]
//
// The integrity trailer of an authenticated packet (pad, pad length, next
// header, AuthCode; section 13.28.4) follows the payload; the layer keeps
// it in Trailer, undecoded, because its length depends on the session's
// integrity algorithm. All integers are little-endian.
type SessionHeaderV2 struct {
	layerBase
	PayloadType   PayloadType
	Encrypted     bool
	Authenticated bool
	OEMIANA       uint32 // PayloadOEM only
	OEMPayloadID  uint16 // PayloadOEM only
	SessionID     uint32
	Seq           uint32
	PayloadLength uint16
	Trailer       []byte
}

// LayerType returns LayerTypeSessionV2.
func (h *SessionHeaderV2) LayerType() gopacket.LayerType { return LayerTypeSessionV2 }

// CanDecode returns LayerTypeSessionV2.
func (h *SessionHeaderV2) CanDecode() gopacket.LayerClass { return LayerTypeSessionV2 }

// NextLayerType is gopacket.LayerTypePayload: the payload may be
// encrypted, so only SessionKeys can interpret it.
func (h *SessionHeaderV2) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

func (h *SessionHeaderV2) headerLen() int {
	if h.PayloadType == PayloadOEM {
		return sessionV2Len + sessionV2OEMLen
	}
	return sessionV2Len
}

// DecodeFromBytes decodes the header; the payload is exactly
// PayloadLength bytes and whatever follows it is the Trailer.
func (h *SessionHeaderV2) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 2 {
		df.SetTruncated()
		return fmt.Errorf("%w: RMCP+ session header of %d bytes", ErrTruncated, len(data))
	}
	if data[0] != AuthTypeRMCPPlus {
		return fmt.Errorf("rmcpplus: auth type 0x%02x is not RMCP+ (06h)", data[0])
	}
	h.PayloadType = PayloadType(data[1] & payloadTypeMask)
	h.Encrypted = data[1]&payloadEncrypted != 0
	h.Authenticated = data[1]&payloadAuthenticated != 0
	n := h.headerLen()
	if len(data) < n {
		df.SetTruncated()
		return fmt.Errorf("%w: RMCP+ session header of %d bytes, want %d", ErrTruncated, len(data), n)
	}
	i := 2
	h.OEMIANA, h.OEMPayloadID = 0, 0
	if h.PayloadType == PayloadOEM {
		h.OEMIANA = binary.LittleEndian.Uint32(data[i:])
		h.OEMPayloadID = binary.LittleEndian.Uint16(data[i+4:])
		i += sessionV2OEMLen
	}
	h.SessionID = binary.LittleEndian.Uint32(data[i:])
	h.Seq = binary.LittleEndian.Uint32(data[i+4:])
	h.PayloadLength = binary.LittleEndian.Uint16(data[i+8:])
	end := n + int(h.PayloadLength)
	if len(data) < end {
		df.SetTruncated()
		return fmt.Errorf("%w: RMCP+ payload length %d, %d bytes present", ErrTruncated, h.PayloadLength, len(data)-n)
	}
	h.contents = data[:n]
	h.payload = data[n:end]
	h.Trailer = data[end:]
	if len(h.Trailer) == 0 {
		h.Trailer = nil
	}
	return nil
}

// SerializeTo prepends the header to the payload already in b and appends
// Trailer, if any. With opts.FixLengths, PayloadLength is set from the
// payload. Computing an integrity trailer needs keys: see
// SessionKeys.AppendSealed.
func (h *SessionHeaderV2) SerializeTo(b gopacket.SerializeBuffer, opts gopacket.SerializeOptions) error {
	if opts.FixLengths {
		n := len(b.Bytes())
		if n > 0xFFFF {
			return fmt.Errorf("rmcpplus: RMCP+ payload of %d bytes exceeds 65535", n)
		}
		h.PayloadLength = uint16(n)
	}
	if len(h.Trailer) > 0 {
		t, err := b.AppendBytes(len(h.Trailer))
		if err != nil {
			return err
		}
		copy(t, h.Trailer)
	}
	hdr, err := b.PrependBytes(h.headerLen())
	if err != nil {
		return err
	}
	var oem *oemPayload
	if h.PayloadType == PayloadOEM {
		oem = &oemPayload{h.OEMIANA, h.OEMPayloadID}
	}
	appendV2Header(hdr[:0], h.PayloadType, h.Encrypted, h.Authenticated, oem, h.SessionID, h.Seq, h.PayloadLength)
	return nil
}

// oemPayload is the OEM IANA and payload ID of an OEM explicit payload.
type oemPayload struct {
	IANA uint32
	ID   uint16
}

// appendV2Header appends an RMCP+ session header. oem must be non-nil
// exactly when pt is PayloadOEM.
func appendV2Header(b []byte, pt PayloadType, encrypted, authenticated bool, oem *oemPayload, sessionID, seq uint32, length uint16) []byte {
	t := uint8(pt) & payloadTypeMask
	if encrypted {
		t |= payloadEncrypted
	}
	if authenticated {
		t |= payloadAuthenticated
	}
	b = append(b, AuthTypeRMCPPlus, t)
	if oem != nil {
		b = binary.LittleEndian.AppendUint32(b, oem.IANA)
		b = binary.LittleEndian.AppendUint16(b, oem.ID)
	}
	b = binary.LittleEndian.AppendUint32(b, sessionID)
	b = binary.LittleEndian.AppendUint32(b, seq)
	return binary.LittleEndian.AppendUint16(b, length)
}

// AppendV2 appends an RMCP + unauthenticated, unencrypted v2.0 packet:
// the form of Open Session and RAKP messages (session ID 0, sequence 0,
// section 13.17) and of IPMI requests sent outside a session. For
// PayloadOEM the OEM IANA and payload ID are written as zero. The payload
// must fit the 16-bit length.
func AppendV2(b []byte, pt PayloadType, sessionID, seq uint32, payload []byte) []byte {
	b = appendRMCP(b, ClassIPMI)
	var oem *oemPayload
	if pt&payloadTypeMask == PayloadOEM {
		oem = &oemPayload{}
	}
	b = appendV2Header(b, pt, false, false, oem, sessionID, seq, uint16(len(payload)))
	return append(b, payload...)
}

func decodeSessionV2(data []byte, p gopacket.PacketBuilder) error {
	h := &SessionHeaderV2{}
	if err := h.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(h)
	return p.NextDecoder(h.NextLayerType())
}
