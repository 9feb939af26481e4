package rmcpplus

import (
	"errors"
	"fmt"

	"github.com/google/gopacket"
)

// RMCP message classes, IPMI v2.0 section 13.1.3 (bits 4:0 of
// the class byte).
const (
	ClassASF  uint8 = 0x06
	ClassIPMI uint8 = 0x07
)

// RMCP header constants, section 13.1.3.
const (
	// RMCPVersion1 is "RMCP Version 1.0", the only version IPMI uses.
	RMCPVersion1 uint8 = 0x06
	// RMCPSeqNoACK is the RMCP sequence number that asks the receiver not
	// to send an RMCP ACK. IPMI messages always carry it.
	RMCPSeqNoACK uint8 = 0xFF

	rmcpHeaderLen = 4
	rmcpClassACK  = 0x80 // bit 7 of the class byte: this is an RMCP ACK
)

// Layer types of this package's gopacket layers. gopacket reserves 0-999;
// 1000-1999 are the fast application range.
var (
	LayerTypeRMCP = gopacket.RegisterLayerType(1623, gopacket.LayerTypeMetadata{
		Name: "RMCP", Decoder: gopacket.DecodeFunc(decodeRMCP)})
	LayerTypeASF = gopacket.RegisterLayerType(1624, gopacket.LayerTypeMetadata{
		Name: "ASFPresence", Decoder: gopacket.DecodeFunc(decodeASF)})
	LayerTypeSessionV15 = gopacket.RegisterLayerType(1625, gopacket.LayerTypeMetadata{
		Name: "IPMISessionV15", Decoder: gopacket.DecodeFunc(decodeSessionV15)})
	LayerTypeSessionV2 = gopacket.RegisterLayerType(1626, gopacket.LayerTypeMetadata{
		Name: "RMCPPlusSession", Decoder: gopacket.DecodeFunc(decodeSessionV2)})
)

// ErrTruncated reports a datagram shorter than its headers say it is.
var ErrTruncated = errors.New("rmcpplus: datagram truncated")

// layerBase holds the bytes gopacket's Layer interface hands out.
type layerBase struct {
	contents []byte
	payload  []byte
}

// LayerContents returns the layer's own header bytes.
func (l *layerBase) LayerContents() []byte { return l.contents }

// LayerPayload returns the bytes the layer carries.
func (l *layerBase) LayerPayload() []byte { return l.payload }

// RMCPHeader is the 4-byte RMCP header that starts every datagram on UDP
// port 623. IPMI v2.0 section 13.1.3:
//
//	version (06h), reserved (00h), sequence number, class of message
//
// The class byte holds the message class in bits 4:0 and the ACK flag in
// bit 7.
type RMCPHeader struct {
	layerBase
	Version  uint8
	Sequence uint8
	Class    uint8
	ACK      bool
}

// LayerType returns LayerTypeRMCP.
func (h *RMCPHeader) LayerType() gopacket.LayerType { return LayerTypeRMCP }

// CanDecode returns LayerTypeRMCP.
func (h *RMCPHeader) CanDecode() gopacket.LayerClass { return LayerTypeRMCP }

// NextLayerType is the ASF layer for class ASF and the IPMI v1.5 or v2.0
// session layer for class IPMI, told apart by the auth type byte (06h
// means RMCP+, section 13.27.3).
func (h *RMCPHeader) NextLayerType() gopacket.LayerType {
	if h.ACK || len(h.payload) == 0 {
		return gopacket.LayerTypeZero
	}
	switch h.Class {
	case ClassASF:
		return LayerTypeASF
	case ClassIPMI:
		if h.payload[0] == AuthTypeRMCPPlus {
			return LayerTypeSessionV2
		}
		return LayerTypeSessionV15
	}
	return gopacket.LayerTypePayload
}

// DecodeFromBytes decodes an RMCP header. Only RMCP version 1.0 is
// accepted.
func (h *RMCPHeader) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < rmcpHeaderLen {
		df.SetTruncated()
		return fmt.Errorf("%w: %d bytes, an RMCP header needs 4", ErrTruncated, len(data))
	}
	if data[0] != RMCPVersion1 {
		return fmt.Errorf("rmcpplus: RMCP version 0x%02x, want 0x06 (RMCP 1.0)", data[0])
	}
	h.Version = data[0]
	h.Sequence = data[2]
	h.Class = data[3] & 0x1F
	h.ACK = data[3]&rmcpClassACK != 0
	h.contents = data[:rmcpHeaderLen]
	h.payload = data[rmcpHeaderLen:]
	return nil
}

// SerializeTo prepends the header. A zero Version is written as 06h.
func (h *RMCPHeader) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	hdr, err := b.PrependBytes(rmcpHeaderLen)
	if err != nil {
		return err
	}
	v := h.Version
	if v == 0 {
		v = RMCPVersion1
	}
	class := h.Class & 0x1F
	if h.ACK {
		class |= rmcpClassACK
	}
	appendRMCPHeader(hdr[:0], v, h.Sequence, class)
	return nil
}

// appendRMCPHeader appends version, the reserved byte, sequence and the
// class byte (ACK flag included).
func appendRMCPHeader(b []byte, version, seq, classByte uint8) []byte {
	return append(b, version, 0x00, seq, classByte)
}

// appendRMCP appends the RMCP header of every IPMI and ASF message:
// version 1.0 and sequence FFh, asking for no RMCP ACK.
func appendRMCP(b []byte, class uint8) []byte {
	return appendRMCPHeader(b, RMCPVersion1, RMCPSeqNoACK, class)
}

func decodeRMCP(data []byte, p gopacket.PacketBuilder) error {
	h := &RMCPHeader{}
	if err := h.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(h)
	return p.NextDecoder(h.NextLayerType())
}
