package ipmi

// Payload commands, NetFn App (0x06): Activate Payload (IPMI v2.0 section
// 24.1, Tables 24-2 and 24-3), Deactivate Payload (24.2, Table 24-4), Get
// Payload Activation Status (24.4, Table 24-6) and Get Channel Payload
// Support (24.8, Table 24-10). SOL (section 15) is payload type 1.

// Payload types (IPMI v2.0 section 13.27.3) as used in these commands'
// PayloadType fields.
const (
	PayloadTypeIPMI uint8 = 0x00
	PayloadTypeSOL  uint8 = 0x01
)

// Bits of Aux[0] of an Activate Payload request for SOL (Table 24-2,
// "Auxiliary Request Data for Payload Type = SOL", byte 1). Bits 0 and 4
// are reserved. FreeIPMI and OpenBMC's phosphor-net-ipmid put test mode at
// bit 5 as here.
const (
	SOLAuxEncrypt      uint8 = 0x80 // [7]: encrypt SOL packets (if the session can)
	SOLAuxAuthenticate uint8 = 0x40 // [6]: authenticate SOL packets (if the session can)
	SOLAuxTestMode     uint8 = 0x20 // [5]: test mode
	// [3:2]: shared serial alert behaviour while SOL is active.
	SOLAuxSerialAlertMask     uint8 = 0x0C
	SOLAuxSerialAlertFail     uint8 = 0x00 // serial/modem alerts fail
	SOLAuxSerialAlertDeferred uint8 = 0x04 // alerts deferred until SOL is deactivated
	SOLAuxSerialAlertSucceed  uint8 = 0x08 // alerts succeed
	// [1]: SOL startup handshake. Set, CTS and DCD/DSR stay deasserted
	// after activation until the console asserts them in a SOL packet;
	// clear, the BMC asserts them on activation.
	SOLAuxHandshakeDeasserted uint8 = 0x02
)

// SOLActivationAux returns the Activate Payload auxiliary data ipmitool
// sends for SOL, with the encryption and authentication bits chosen: alerts
// deferred and CTS/DCD/DSR left deasserted, so (true, true) gives
// [C6 00 00 00], the bytes of a captured `ipmitool sol activate`.
func SOLActivationAux(encrypt, authenticate bool) [4]byte {
	return [4]byte{bit(encrypt, SOLAuxEncrypt) | bit(authenticate, SOLAuxAuthenticate) |
		SOLAuxSerialAlertDeferred | SOLAuxHandshakeDeasserted}
}

// ActivatePayloadReq is the request data of Activate Payload (0x48).
type ActivatePayloadReq struct {
	PayloadType uint8   // byte 1 [5:0], PayloadTypeSOL for a console
	Instance    uint8   // byte 2 [3:0], 1..15; ipmitool uses 1
	Aux         [4]byte // bytes 3:6; for SOL, Aux[0] holds the SOLAux* bits
}

// SOLEncrypt reports whether a SOL activation asks for encrypted payloads.
func (r *ActivatePayloadReq) SOLEncrypt() bool { return isSet(r.Aux[0], SOLAuxEncrypt) }

// SOLAuthenticate reports whether a SOL activation asks for authenticated
// payloads.
func (r *ActivatePayloadReq) SOLAuthenticate() bool { return isSet(r.Aux[0], SOLAuxAuthenticate) }

// Marshal encodes the 6-byte request data.
func (r *ActivatePayloadReq) Marshal() []byte {
	return append([]byte{r.PayloadType & 0x3F, r.Instance & 0x0F}, r.Aux[:]...)
}

// Unmarshal decodes the request data (exactly 6 bytes, as ipmitool and
// FreeIPMI send it).
func (r *ActivatePayloadReq) Unmarshal(data []byte) error {
	if err := checkLen("Activate Payload request", data, 6, 6); err != nil {
		return err
	}
	*r = ActivatePayloadReq{PayloadType: data[0] & 0x3F, Instance: data[1] & 0x0F}
	copy(r.Aux[:], data[2:6])
	return nil
}

// ActivatePayloadRsp is the response data after the completion code
// (Table 24-3). Sizes are seen from the BMC:
//
//   - InboundPayloadSize is the largest payload the BMC accepts from the
//     remote console (console to BMC): for SOL the 4-byte SOL header plus
//     the characters, excluding any confidentiality header and trailer.
//     ipmitool 1.8.19 reads up to this many characters from stdin per SOL
//     packet, so it may send up to InboundPayloadSize+4 payload bytes; a BMC
//     should tolerate that or accept part of the data.
//   - OutboundPayloadSize is the largest payload the BMC sends to the
//     console.
//
// ipmi_sim answers 32 inbound and 16384 outbound. Port is the UDP port for
// the payload's packets; ipmitool refuses SOL ("BMC requests SOL session on
// different port") unless it equals the session's port (or equals it
// byte-swapped). VLAN is 0xFFFF when VLAN addressing is not used.
// ipmitool insists on exactly these 12 data bytes.
type ActivatePayloadRsp struct {
	Aux                 [4]byte // bytes 2:5, auxiliary response data (reserved for SOL)
	InboundPayloadSize  uint16  // bytes 6:7
	OutboundPayloadSize uint16  // bytes 8:9
	Port                uint16  // bytes 10:11
	VLAN                uint16  // bytes 12:13
}

// NoVLAN is ActivatePayloadRsp.VLAN when VLAN addressing is not used.
const NoVLAN uint16 = 0xFFFF

const activatePayloadRspLen = 12

// Marshal encodes the 12-byte response data.
func (r *ActivatePayloadRsp) Marshal() []byte {
	b := append(make([]byte, 0, activatePayloadRspLen), r.Aux[:]...)
	b = appendLE16(b, r.InboundPayloadSize)
	b = appendLE16(b, r.OutboundPayloadSize)
	b = appendLE16(b, r.Port)
	return appendLE16(b, r.VLAN)
}

// Unmarshal decodes the response data; extra bytes are ignored.
func (r *ActivatePayloadRsp) Unmarshal(data []byte) error {
	if err := checkLen("Activate Payload response", data, activatePayloadRspLen, NoLimit); err != nil {
		return err
	}
	*r = ActivatePayloadRsp{
		InboundPayloadSize:  le16(data[4:6]),
		OutboundPayloadSize: le16(data[6:8]),
		Port:                le16(data[8:10]),
		VLAN:                le16(data[10:12]),
	}
	copy(r.Aux[:], data[0:4])
	return nil
}

// DeactivatePayloadReq is the request data of Deactivate Payload (0x49).
// Completion code 0x80 means the payload was already deactivated (ipmitool:
// "SOL payload already de-activated"). Sent from a new session it clears
// an activation left behind by a killed client (observed with ipmi_sim).
type DeactivatePayloadReq struct {
	PayloadType uint8   // byte 1 [5:0]
	Instance    uint8   // byte 2 [3:0]
	Aux         [4]byte // bytes 3:6, zero for SOL
}

// Marshal encodes the 6-byte request data.
func (r *DeactivatePayloadReq) Marshal() []byte {
	return append([]byte{r.PayloadType & 0x3F, r.Instance & 0x0F}, r.Aux[:]...)
}

// Unmarshal decodes the request data (exactly 6 bytes).
func (r *DeactivatePayloadReq) Unmarshal(data []byte) error {
	if err := checkLen("Deactivate Payload request", data, 6, 6); err != nil {
		return err
	}
	*r = DeactivatePayloadReq{PayloadType: data[0] & 0x3F, Instance: data[1] & 0x0F}
	copy(r.Aux[:], data[2:6])
	return nil
}

// DeactivatePayloadRsp has no data after the completion code.
type DeactivatePayloadRsp struct{}

// Marshal returns the empty response data.
func (r *DeactivatePayloadRsp) Marshal() []byte { return nil }

// Unmarshal accepts any data (there is none to decode).
func (r *DeactivatePayloadRsp) Unmarshal(data []byte) error { return nil }

// GetPayloadActivationStatusReq is the request data of Get Payload
// Activation Status (0x4A).
type GetPayloadActivationStatusReq struct {
	PayloadType uint8 // byte 1 [5:0]
}

// Marshal encodes the 1-byte request data.
func (r *GetPayloadActivationStatusReq) Marshal() []byte { return []byte{r.PayloadType & 0x3F} }

// Unmarshal decodes the request data (exactly 1 byte).
func (r *GetPayloadActivationStatusReq) Unmarshal(data []byte) error {
	if err := checkLen("Get Payload Activation Status request", data, 1, 1); err != nil {
		return err
	}
	*r = GetPayloadActivationStatusReq{PayloadType: data[0] & 0x3F}
	return nil
}

// GetPayloadActivationStatusRsp is the response data after the completion
// code.
type GetPayloadActivationStatusRsp struct {
	InstanceCapacity uint8 // byte 2 [3:0]: how many instances can be active
	// Active is bytes 3:4: bit 0 = instance 1 ... bit 15 = instance 16.
	Active uint16
}

// InstanceActive reports whether payload instance n (1..16) is active.
func (r *GetPayloadActivationStatusRsp) InstanceActive(n int) bool {
	return n >= 1 && n <= 16 && r.Active&(1<<(n-1)) != 0
}

// Marshal encodes the 3-byte response data.
func (r *GetPayloadActivationStatusRsp) Marshal() []byte {
	return appendLE16([]byte{r.InstanceCapacity & 0x0F}, r.Active)
}

// Unmarshal decodes the response data; extra bytes are ignored.
func (r *GetPayloadActivationStatusRsp) Unmarshal(data []byte) error {
	if err := checkLen("Get Payload Activation Status response", data, 3, NoLimit); err != nil {
		return err
	}
	*r = GetPayloadActivationStatusRsp{InstanceCapacity: data[0] & 0x0F, Active: le16(data[1:3])}
	return nil
}

// GetChannelPayloadSupportReq is the request data of Get Channel Payload
// Support (0x4E). ipmi_sim 2.0.33 crashes on channel 0x0E here; ask for the
// real channel number (from Get Channel Authentication Capabilities).
type GetChannelPayloadSupportReq struct {
	Channel uint8 // byte 1 [3:0]
}

// Marshal encodes the 1-byte request data.
func (r *GetChannelPayloadSupportReq) Marshal() []byte { return []byte{r.Channel & 0x0F} }

// Unmarshal decodes the request data (exactly 1 byte).
func (r *GetChannelPayloadSupportReq) Unmarshal(data []byte) error {
	if err := checkLen("Get Channel Payload Support request", data, 1, 1); err != nil {
		return err
	}
	*r = GetChannelPayloadSupportReq{Channel: data[0] & 0x0F}
	return nil
}

// Bits of GetChannelPayloadSupportRsp.Standard: bit n = payload type n.
const (
	PayloadSupportIPMI        uint16 = 1 << PayloadTypeIPMI
	PayloadSupportSOL         uint16 = 1 << PayloadTypeSOL
	PayloadSupportOEMExplicit uint16 = 1 << 2
)

// GetChannelPayloadSupportRsp is the response data after the completion
// code. Each field is a bit mask: bit n means payload type (base + n) is
// supported on the channel.
type GetChannelPayloadSupportRsp struct {
	Standard     uint16 // bytes 2:3, payload types 0x00-0x0F
	SessionSetup uint16 // bytes 4:5, payload types 0x10-0x1F (Open Session, RAKP)
	OEM          uint16 // bytes 6:7, payload types 0x20-0x27
}

// Marshal encodes the 8-byte response data (bytes 8:9 reserved, zero).
func (r *GetChannelPayloadSupportRsp) Marshal() []byte {
	b := appendLE16(make([]byte, 0, 8), r.Standard)
	b = appendLE16(b, r.SessionSetup)
	b = appendLE16(b, r.OEM)
	return appendLE16(b, 0)
}

// Unmarshal decodes the response data. The reserved bytes 8:9 are optional
// and ignored.
func (r *GetChannelPayloadSupportRsp) Unmarshal(data []byte) error {
	if err := checkLen("Get Channel Payload Support response", data, 6, NoLimit); err != nil {
		return err
	}
	*r = GetChannelPayloadSupportRsp{Standard: le16(data[0:2]), SessionSetup: le16(data[2:4]), OEM: le16(data[4:6])}
	return nil
}
