package rmcpplus

import (
	"encoding/binary"
	"fmt"

	"github.com/google/gopacket"
)

// ASF presence ping/pong constants, DSP0136 (ASF 2.0) section 3.2.4 and
// IPMI v2.0 sections 13.2.3-13.2.4. Unlike IPMI, ASF fields are big-endian.
const (
	// ASFIANA is the IANA enterprise number of the ASF message header, and
	// of the pong's own IANA field when it carries no OEM extension.
	ASFIANA uint32 = 4542

	ASFTypePing uint8 = 0x80
	ASFTypePong uint8 = 0x40

	// ASFEntitiesIPMI is bit 7 of the pong's Supported Entities: "IPMI
	// supported". Bits 3:0 are the ASF version, 0001b for ASF 1.0.
	ASFEntitiesIPMI uint8 = 0x80
	asfVersion1     uint8 = 0x01

	asfHeaderLen   = 8
	asfPongDataLen = 16
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

// ASFPresence is the ASF message of an RMCP datagram of class ASF, as a
// gopacket layer. DSP0136 section 3.2.4, IPMI v2.0 section 13.2:
//
//	IANA enterprise number (4, 000011BEh), message type, message tag,
//	reserved, data length, data
//
// A ping carries no data; a pong carries 16 bytes: IANA (4), OEM (4),
// supported entities, supported interactions, 6 reserved bytes.
type ASFPresence struct {
	layerBase
	ASFMessage
	// HeaderIANA is the IANA number of the ASF header itself (4542).
	HeaderIANA uint32
}

// LayerType returns LayerTypeASF.
func (a *ASFPresence) LayerType() gopacket.LayerType { return LayerTypeASF }

// CanDecode returns LayerTypeASF.
func (a *ASFPresence) CanDecode() gopacket.LayerClass { return LayerTypeASF }

// NextLayerType returns gopacket.LayerTypeZero: nothing follows.
func (a *ASFPresence) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }

// DecodeFromBytes decodes an ASF message. Messages other than ping and
// pong decode with their type and tag only.
func (a *ASFPresence) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < asfHeaderLen {
		df.SetTruncated()
		return fmt.Errorf("%w: ASF message of %d bytes, the header needs 8", ErrTruncated, len(data))
	}
	n := int(data[7])
	if len(data) < asfHeaderLen+n {
		df.SetTruncated()
		return fmt.Errorf("%w: ASF data length %d, %d bytes present", ErrTruncated, n, len(data)-asfHeaderLen)
	}
	a.ASFMessage = ASFMessage{Type: data[4], Tag: data[5]}
	a.HeaderIANA = binary.BigEndian.Uint32(data)
	d := data[asfHeaderLen : asfHeaderLen+n]
	if a.Type == ASFTypePong {
		if n < 10 {
			return fmt.Errorf("rmcpplus: ASF presence pong carries %d data bytes, too few (a pong has 16)", n)
		}
		a.IANA = binary.BigEndian.Uint32(d)
		a.OEM = binary.BigEndian.Uint32(d[4:])
		a.SupportedEntities = d[8]
		a.SupportedInteractions = d[9]
	}
	a.contents = data[:asfHeaderLen+n]
	a.payload = nil
	return nil
}

// SerializeTo appends the ASF message (a ping or a pong, chosen by Type).
func (a *ASFPresence) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	n := asfHeaderLen
	if a.Type == ASFTypePong {
		n += asfPongDataLen
	}
	dst, err := b.PrependBytes(n)
	if err != nil {
		return err
	}
	iana := a.HeaderIANA
	if iana == 0 {
		iana = ASFIANA
	}
	appendASF(dst[:0], iana, &a.ASFMessage)
	return nil
}

// appendASF appends the ASF header and, for a pong, its data.
func appendASF(b []byte, headerIANA uint32, m *ASFMessage) []byte {
	b = binary.BigEndian.AppendUint32(b, headerIANA)
	if m.Type != ASFTypePong {
		return append(b, m.Type, m.Tag, 0x00, 0x00)
	}
	b = append(b, m.Type, m.Tag, 0x00, asfPongDataLen)
	b = binary.BigEndian.AppendUint32(b, m.IANA)
	b = binary.BigEndian.AppendUint32(b, m.OEM)
	return append(b, m.SupportedEntities, m.SupportedInteractions, 0, 0, 0, 0, 0, 0)
}

// AppendASFPing appends an RMCP/ASF presence ping.
func AppendASFPing(b []byte, tag uint8) []byte {
	b = appendRMCP(b, ClassASF)
	return appendASF(b, ASFIANA, &ASFMessage{Type: ASFTypePing, Tag: tag})
}

// AppendASFPong appends an RMCP/ASF presence pong answering tag. It
// announces IPMI support and no ASF interactions (IPMI v2.0 section
// 13.2.4: a BMC answers the ping so that a console can discover it).
func AppendASFPong(b []byte, tag uint8) []byte {
	b = appendRMCP(b, ClassASF)
	return appendASF(b, ASFIANA, &ASFMessage{
		Type:              ASFTypePong,
		Tag:               tag,
		IANA:              ASFIANA,
		SupportedEntities: ASFEntitiesIPMI | asfVersion1,
	})
}

func decodeASF(data []byte, p gopacket.PacketBuilder) error {
	a := &ASFPresence{}
	if err := a.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(a)
	return nil
}
