// Package ipmi holds the IPMI message format and typed codecs for the
// commands obmd and fakebmc use. It is pure: no sockets, no clocks, no
// session state. Everything that touches the network lives in rmcpplus and
// sol, which import this package and never the other way round.
package ipmi

import (
	"errors"
	"fmt"
)

// NetFn is a request network function code (always even; the response
// NetFn is the request's plus one). IPMI v2.0 section 5.1, Table 5-1.
type NetFn uint8

// Network functions used by obmd and fakebmc.
const (
	NetFnChassis   NetFn = 0x00
	NetFnBridge    NetFn = 0x02
	NetFnSensor    NetFn = 0x04
	NetFnApp       NetFn = 0x06
	NetFnFirmware  NetFn = 0x08
	NetFnStorage   NetFn = 0x0A
	NetFnTransport NetFn = 0x0C
	NetFnGroupExt  NetFn = 0x2C
	NetFnOEM       NetFn = 0x2E
)

// Response returns the response NetFn for a request NetFn.
func (n NetFn) Response() NetFn { return n | 1 }

// IsResponse reports whether n is a response (odd) NetFn.
func (n NetFn) IsResponse() bool { return n&1 == 1 }

// Command is a command code within a NetFn.
type Command uint8

// Commands used by obmd and fakebmc, with the NetFn they belong to noted.
// IPMI v2.0 Appendix G lists them all.
const (
	// NetFn App (0x06).
	CmdGetDeviceID                Command = 0x01 // section 20.1
	CmdGetChannelAuthCapabilities Command = 0x38 // section 22.13
	CmdSetSessionPrivilegeLevel   Command = 0x3B // section 22.18
	CmdCloseSession               Command = 0x3C // section 22.19
	CmdActivatePayload            Command = 0x48 // section 24.1
	CmdDeactivatePayload          Command = 0x49 // section 24.2
	CmdGetPayloadActivationStatus Command = 0x4A // section 24.4
	CmdGetPayloadInstanceInfo     Command = 0x4B // section 24.5
	CmdGetChannelPayloadSupport   Command = 0x4E // section 24.8
	CmdGetChannelCipherSuites     Command = 0x54 // section 22.15
	// NetFn Chassis (0x00).
	CmdGetChassisStatus     Command = 0x01 // section 28.2
	CmdChassisControl       Command = 0x02 // section 28.3
	CmdSetSystemBootOptions Command = 0x08 // section 28.12
	CmdGetSystemBootOptions Command = 0x09 // section 28.13
	// NetFn Transport (0x0C).
	CmdSetSOLConfigParams Command = 0x21 // section 26.2
	CmdGetSOLConfigParams Command = 0x22 // section 26.3
)

// PrivilegeLevel is a session privilege level. IPMI v2.0 section 6.8 and
// the "Requested Maximum Privilege Level" field of section 13.17.
type PrivilegeLevel uint8

// Privilege levels.
const (
	PrivilegeHighest       PrivilegeLevel = 0 // "highest available", Open Session only
	PrivilegeCallback      PrivilegeLevel = 1
	PrivilegeUser          PrivilegeLevel = 2
	PrivilegeOperator      PrivilegeLevel = 3
	PrivilegeAdministrator PrivilegeLevel = 4
	PrivilegeOEM           PrivilegeLevel = 5
)

func (p PrivilegeLevel) String() string {
	switch p {
	case PrivilegeHighest:
		return "highest"
	case PrivilegeCallback:
		return "callback"
	case PrivilegeUser:
		return "user"
	case PrivilegeOperator:
		return "operator"
	case PrivilegeAdministrator:
		return "administrator"
	case PrivilegeOEM:
		return "oem"
	}
	return fmt.Sprintf("privilege(%d)", uint8(p))
}

// Addresses used on a LAN channel: the BMC is 0x20, remote software is
// 0x81 (IPMI v2.0 section 13.8 and Table 5-4).
const (
	AddrBMC      uint8 = 0x20
	AddrRemoteSW uint8 = 0x81
)

// Message is one IPMI LAN message, the payload of a session packet whose
// payload type is IPMI. IPMI v2.0 section 13.8, Figure 13-4 ("IPMI LAN
// Request/Response Message Format"):
//
//	request:  rsAddr, netFn/rsLUN, chk1, rqAddr, rqSeq/rqLUN, cmd, data..., chk2
//	response: rqAddr, netFn/rqLUN, chk1, rsAddr, rqSeq/rsLUN, cmd, cc, data..., chk2
//
// The wire is symmetric: the first address is the destination, the second
// the source. Message names them by position (Dst, Src) so one codec serves
// both directions. For a response Data starts with the completion code.
type Message struct {
	DstAddr uint8
	NetFn   NetFn
	DstLUN  uint8
	SrcAddr uint8
	Seq     uint8 // rqSeq, 6 bits
	SrcLUN  uint8
	Cmd     Command
	Data    []byte
}

// Errors returned by ParseMessage.
var (
	ErrShortMessage = errors.New("ipmi: message shorter than 7 bytes")
	ErrChecksum     = errors.New("ipmi: bad checksum")
)

// Checksum is the two's complement checksum of IPMI v2.0 section 13.8:
// the sum of the covered bytes plus the checksum is zero modulo 256.
func Checksum(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return -s
}

// AppendTo appends the wire form of m to b.
func (m *Message) AppendTo(b []byte) []byte {
	start := len(b)
	b = append(b, m.DstAddr, uint8(m.NetFn)<<2|m.DstLUN&3)
	b = append(b, Checksum(b[start:]))
	mid := len(b)
	b = append(b, m.SrcAddr, m.Seq<<2|m.SrcLUN&3, uint8(m.Cmd))
	b = append(b, m.Data...)
	return append(b, Checksum(b[mid:]))
}

// Marshal returns the wire form of m.
func (m *Message) Marshal() []byte { return m.AppendTo(make([]byte, 0, 7+len(m.Data))) }

// ParseMessage decodes and checksum-verifies one IPMI LAN message. Data
// aliases b.
func ParseMessage(b []byte) (*Message, error) {
	if len(b) < 7 {
		return nil, ErrShortMessage
	}
	if !ChecksumsValid(b) {
		return nil, ErrChecksum
	}
	return parseMessage(b), nil
}

// ChecksumsValid reports whether both checksums of a message of at least
// 7 bytes are right: the header checksum (byte 3) over the responder's
// address and NetFn/LUN, and the trailing one over the rest (section
// 13.8).
func ChecksumsValid(b []byte) bool {
	return len(b) >= 7 && Checksum(b[:2]) == b[2] && Checksum(b[3:len(b)-1]) == b[len(b)-1]
}

// ParseMessageIgnoringChecksums decodes a message whose checksums are
// wrong, for a caller that has already authenticated the bytes some other
// way (an RMCP+ integrity check) and knows the sender miscomputes them.
// Data aliases b.
func ParseMessageIgnoringChecksums(b []byte) (*Message, error) {
	if len(b) < 7 {
		return nil, ErrShortMessage
	}
	return parseMessage(b), nil
}

// parseMessage decodes the fields of a message of at least 7 bytes.
func parseMessage(b []byte) *Message {
	return &Message{
		DstAddr: b[0],
		NetFn:   NetFn(b[1] >> 2),
		DstLUN:  b[1] & 3,
		SrcAddr: b[3],
		Seq:     b[4] >> 2,
		SrcLUN:  b[4] & 3,
		Cmd:     Command(b[5]),
		Data:    b[6 : len(b)-1],
	}
}
