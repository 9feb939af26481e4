package ipmi

import (
	"errors"
	"fmt"
)

// Codec is implemented by every typed request and response in this package
// (GetDeviceIDReq, GetDeviceIDRsp, ...). A response codec covers the data
// after the completion code byte; the caller checks the completion code
// (see Message.CompletionCode and Message.Err) before decoding.
//
// Unmarshal never aliases its input: slices in the decoded struct are
// copies, so the caller may reuse the packet buffer. Reserved bits are
// dropped on decode and written as zero on encode, and fields narrower than
// their Go type are masked to their wire width by Marshal.
type Codec interface {
	Marshal() []byte
	Unmarshal(data []byte) error
}

// LengthError is returned by Unmarshal when the data is shorter (or, for a
// request, longer) than the command's field table allows.
type LengthError struct {
	What string // e.g. "Get Device ID response"
	Got  int    // data bytes received (after the completion code for responses)
	Min  int    // fewest data bytes the command allows
	Max  int    // most data bytes the command allows; NoLimit (-1) if unbounded
}

// NoLimit is LengthError.Max for commands whose data may be any length
// above the minimum.
const NoLimit = -1

func (e *LengthError) Error() string {
	switch {
	case e.Min == e.Max:
		return fmt.Sprintf("ipmi: %s: %d data bytes, need exactly %d", e.What, e.Got, e.Min)
	case e.Got < e.Min:
		return fmt.Sprintf("ipmi: %s: %d data bytes, need at least %d", e.What, e.Got, e.Min)
	default:
		return fmt.Sprintf("ipmi: %s: %d data bytes, at most %d allowed", e.What, e.Got, e.Max)
	}
}

// FieldError is returned by Unmarshal when the length is right but the
// content cannot be decoded (for example a cipher suite record with an
// unknown start byte).
type FieldError struct {
	What   string // e.g. "cipher suite record data"
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("ipmi: %s: %s", e.What, e.Reason) }

// CompletionCodeFor maps an Unmarshal error on a request to the completion
// code a BMC answers with (IPMI v2.0 section 5.2, Table 5-2): a wrong length
// is 0xC7 "request data length invalid", undecodable content is 0xCC
// "invalid data field in request", anything else 0xFF. nil maps to 0x00.
// fakebmc handlers use it so malformed requests get the answer a real BMC
// would give.
func CompletionCodeFor(err error) CompletionCode {
	var le *LengthError
	var fe *FieldError
	switch {
	case err == nil:
		return CCOK
	case errors.As(err, &le):
		return CCDataLengthInvalid
	case errors.As(err, &fe):
		return CCInvalidDataField
	}
	return CCUnspecified
}

// checkLen returns a *LengthError unless min <= len(data) and, unless max is
// NoLimit, len(data) <= max.
func checkLen(what string, data []byte, min, max int) error {
	if len(data) < min || (max != NoLimit && len(data) > max) {
		return &LengthError{What: what, Got: len(data), Min: min, Max: max}
	}
	return nil
}

// All multi-byte IPMI fields are little-endian (IPMI v2.0 section 13.6:
// "least significant byte first").

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func le24(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 }

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func appendLE16(b []byte, v uint16) []byte { return append(b, byte(v), byte(v>>8)) }

func appendLE24(b []byte, v uint32) []byte { return append(b, byte(v), byte(v>>8), byte(v>>16)) }

func appendLE32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

// bit returns mask if set, else 0; isSet is its inverse.
func bit(set bool, mask uint8) uint8 {
	if set {
		return mask
	}
	return 0
}

func isSet(b, mask uint8) bool { return b&mask != 0 }

// cloneData copies b so decoded structs never alias a packet buffer. Empty
// input gives nil, so an absent optional field compares equal to a zero
// struct field.
func cloneData(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// Every command codec implements Codec.
var _ = []Codec{
	(*GetDeviceIDReq)(nil), (*GetDeviceIDRsp)(nil),
	(*GetChannelAuthCapabilitiesReq)(nil), (*GetChannelAuthCapabilitiesRsp)(nil),
	(*GetChannelCipherSuitesReq)(nil), (*GetChannelCipherSuitesRsp)(nil),
	(*SetSessionPrivilegeLevelReq)(nil), (*SetSessionPrivilegeLevelRsp)(nil),
	(*CloseSessionReq)(nil), (*CloseSessionRsp)(nil),
	(*GetChassisStatusReq)(nil), (*GetChassisStatusRsp)(nil),
	(*ChassisControlReq)(nil), (*ChassisControlRsp)(nil),
	(*SetSystemBootOptionsReq)(nil), (*SetSystemBootOptionsRsp)(nil),
	(*GetSystemBootOptionsReq)(nil), (*GetSystemBootOptionsRsp)(nil),
	(*BootFlags)(nil),
	(*ActivatePayloadReq)(nil), (*ActivatePayloadRsp)(nil),
	(*DeactivatePayloadReq)(nil), (*DeactivatePayloadRsp)(nil),
	(*GetPayloadActivationStatusReq)(nil), (*GetPayloadActivationStatusRsp)(nil),
	(*GetPayloadInstanceInfoReq)(nil), (*GetPayloadInstanceInfoRsp)(nil),
	(*GetChannelPayloadSupportReq)(nil), (*GetChannelPayloadSupportRsp)(nil),
	(*SetSOLConfigParamsReq)(nil), (*SetSOLConfigParamsRsp)(nil),
	(*GetSOLConfigParamsReq)(nil), (*GetSOLConfigParamsRsp)(nil),
}
