package ipmi

import "fmt"

// CompletionCode is the first byte of every response's data. IPMI v2.0
// section 5.2, Table 5-2.
type CompletionCode uint8

// Generic completion codes (Table 5-2) and the command-specific ones obmd
// acts on.
const (
	CCOK                     CompletionCode = 0x00
	CCPayloadAlreadyActive   CompletionCode = 0x80 // Activate Payload, section 24.1
	CCPayloadDisabled        CompletionCode = 0x81 // Activate Payload
	CCPayloadLimitReached    CompletionCode = 0x82 // Activate Payload
	CCNodeBusy               CompletionCode = 0xC0
	CCInvalidCommand         CompletionCode = 0xC1
	CCInvalidForLUN          CompletionCode = 0xC2
	CCTimeout                CompletionCode = 0xC3
	CCOutOfSpace             CompletionCode = 0xC4
	CCReservationCanceled    CompletionCode = 0xC5
	CCDataTruncated          CompletionCode = 0xC6
	CCDataLengthInvalid      CompletionCode = 0xC7
	CCDataLengthExceeded     CompletionCode = 0xC8
	CCParameterOutOfRange    CompletionCode = 0xC9
	CCCannotReturnBytes      CompletionCode = 0xCA
	CCNotPresent             CompletionCode = 0xCB
	CCInvalidDataField       CompletionCode = 0xCC
	CCIllegalCommand         CompletionCode = 0xCD
	CCCannotProvideResponse  CompletionCode = 0xCE
	CCDuplicateRequest       CompletionCode = 0xCF
	CCSDRUpdateMode          CompletionCode = 0xD0
	CCFirmwareUpdateMode     CompletionCode = 0xD1
	CCInitInProgress         CompletionCode = 0xD2
	CCDestinationUnavailable CompletionCode = 0xD3
	CCInsufficientPrivilege  CompletionCode = 0xD4
	CCNotSupportedInState    CompletionCode = 0xD5
	CCSubFunctionDisabled    CompletionCode = 0xD6
	CCUnspecified            CompletionCode = 0xFF
)

var ccText = map[CompletionCode]string{
	CCOK:                     "command completed normally",
	CCNodeBusy:               "node busy",
	CCInvalidCommand:         "invalid command",
	CCInvalidForLUN:          "command invalid for given LUN",
	CCTimeout:                "timeout while processing command",
	CCOutOfSpace:             "out of space",
	CCReservationCanceled:    "reservation canceled or invalid",
	CCDataTruncated:          "request data truncated",
	CCDataLengthInvalid:      "request data length invalid",
	CCDataLengthExceeded:     "request data field length limit exceeded",
	CCParameterOutOfRange:    "parameter out of range",
	CCCannotReturnBytes:      "cannot return number of requested data bytes",
	CCNotPresent:             "requested sensor, data, or record not present",
	CCInvalidDataField:       "invalid data field in request",
	CCIllegalCommand:         "command illegal for specified sensor or record type",
	CCCannotProvideResponse:  "command response could not be provided",
	CCDuplicateRequest:       "cannot execute duplicated request",
	CCSDRUpdateMode:          "SDR repository in update mode",
	CCFirmwareUpdateMode:     "device in firmware update mode",
	CCInitInProgress:         "BMC initialization in progress",
	CCDestinationUnavailable: "destination unavailable",
	CCInsufficientPrivilege:  "insufficient privilege level",
	CCNotSupportedInState:    "command not supported in present state",
	CCSubFunctionDisabled:    "parameter is illegal because sub-function is disabled or unavailable",
	CCUnspecified:            "unspecified error",
}

// String gives the code and its meaning, e.g. "0xC1 invalid command".
// Codes 0x80-0xBE are command-specific; their meaning depends on the command
// (see CompletionError).
func (c CompletionCode) String() string {
	if t, ok := ccText[c]; ok {
		return fmt.Sprintf("0x%02X %s", uint8(c), t)
	}
	if c >= 0x80 && c <= 0xBE {
		return fmt.Sprintf("0x%02X command-specific error", uint8(c))
	}
	return fmt.Sprintf("0x%02X unknown completion code", uint8(c))
}

// CompletionError is a non-zero completion code from a BMC, naming the
// command it answered so the error reads on its own.
type CompletionError struct {
	NetFn NetFn
	Cmd   Command
	Code  CompletionCode
}

func (e *CompletionError) Error() string {
	if e.NetFn == NetFnApp && e.Cmd == CmdActivatePayload {
		switch e.Code {
		case CCPayloadAlreadyActive:
			return "Activate Payload: 0x80 payload already active on another session"
		case CCPayloadDisabled:
			return "Activate Payload: 0x81 payload type is disabled"
		case CCPayloadLimitReached:
			return "Activate Payload: 0x82 payload activation limit reached"
		}
	}
	if t := commandSpecificText(e.NetFn&^1, e.Cmd, e.Code); t != "" {
		return fmt.Sprintf("%s: 0x%02X %s", CommandName(e.NetFn, e.Cmd), uint8(e.Code), t)
	}
	return fmt.Sprintf("%s: %s", CommandName(e.NetFn, e.Cmd), e.Code)
}

// CommandName names a command for errors and logs, e.g. "Get Chassis Status".
func CommandName(n NetFn, c Command) string {
	if name, ok := commandNames[[2]uint8{uint8(n &^ 1), uint8(c)}]; ok {
		return name
	}
	return fmt.Sprintf("netfn 0x%02X cmd 0x%02X", uint8(n&^1), uint8(c))
}

var commandNames = map[[2]uint8]string{
	{uint8(NetFnApp), uint8(CmdGetDeviceID)}:                "Get Device ID",
	{uint8(NetFnApp), uint8(CmdGetChannelAuthCapabilities)}: "Get Channel Authentication Capabilities",
	{uint8(NetFnApp), uint8(CmdSetSessionPrivilegeLevel)}:   "Set Session Privilege Level",
	{uint8(NetFnApp), uint8(CmdCloseSession)}:               "Close Session",
	{uint8(NetFnApp), uint8(CmdActivatePayload)}:            "Activate Payload",
	{uint8(NetFnApp), uint8(CmdDeactivatePayload)}:          "Deactivate Payload",
	{uint8(NetFnApp), uint8(CmdGetPayloadActivationStatus)}: "Get Payload Activation Status",
	{uint8(NetFnApp), uint8(CmdGetPayloadInstanceInfo)}:     "Get Payload Instance Info",
	{uint8(NetFnApp), uint8(CmdGetChannelPayloadSupport)}:   "Get Channel Payload Support",
	{uint8(NetFnApp), uint8(CmdGetChannelCipherSuites)}:     "Get Channel Cipher Suites",
	{uint8(NetFnChassis), uint8(CmdGetChassisStatus)}:       "Get Chassis Status",
	{uint8(NetFnChassis), uint8(CmdChassisControl)}:         "Chassis Control",
	{uint8(NetFnChassis), uint8(CmdSetSystemBootOptions)}:   "Set System Boot Options",
	{uint8(NetFnChassis), uint8(CmdGetSystemBootOptions)}:   "Get System Boot Options",
	{uint8(NetFnTransport), uint8(CmdSetSOLConfigParams)}:   "Set SOL Configuration Parameters",
	{uint8(NetFnTransport), uint8(CmdGetSOLConfigParams)}:   "Get SOL Configuration Parameters",
}

// commandSpecificText gives the meaning of a command-specific completion code
// (0x80-0xBE) for the commands obmd uses, or "" when it has none.
func commandSpecificText(n NetFn, c Command, code CompletionCode) string {
	switch {
	case n == NetFnApp && c == CmdActivatePayload:
		switch code { // IPMI v2.0 section 24.1
		case 0x83:
			return "cannot activate payload with encryption"
		case 0x84:
			return "cannot activate payload without encryption"
		}
	case n == NetFnApp && c == CmdDeactivatePayload && code == 0x80: // section 24.2
		return "payload already deactivated"
	case code == 0x80 && (c == CmdSetSystemBootOptions || c == CmdGetSystemBootOptions) && n == NetFnChassis,
		code == 0x80 && (c == CmdSetSOLConfigParams || c == CmdGetSOLConfigParams) && n == NetFnTransport:
		return "parameter not supported" // sections 28.12, 28.13, 26.2, 26.3
	}
	return ""
}
