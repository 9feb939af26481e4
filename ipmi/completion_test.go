package ipmi

import "testing"

func TestCompletionCodeString(t *testing.T) {
	cases := []struct {
		code CompletionCode
		want string
	}{
		{CCOK, "0x00 command completed normally"},
		{CCInvalidCommand, "0xC1 invalid command"},
		{CCDataLengthInvalid, "0xC7 request data length invalid"},
		{CCInvalidDataField, "0xCC invalid data field in request"},
		{CCDuplicateRequest, "0xCF cannot execute duplicated request"},
		{CCInsufficientPrivilege, "0xD4 insufficient privilege level"},
		{CCNotSupportedInState, "0xD5 command not supported in present state"},
		{CCUnspecified, "0xFF unspecified error"},
		{0x80, "0x80 command-specific error"},
		{0xBE, "0xBE command-specific error"},
		{0xBF, "0xBF unknown completion code"},
		{0x01, "0x01 unknown completion code"},
	}
	for _, tc := range cases {
		if got := tc.code.String(); got != tc.want {
			t.Errorf("CompletionCode(0x%02X).String() = %q, want %q", uint8(tc.code), got, tc.want)
		}
	}
}

func TestCompletionErrorText(t *testing.T) {
	cases := []struct {
		name string
		err  CompletionError
		want string
	}{
		{"generic", CompletionError{NetFnChassis, CmdGetChassisStatus, CCInvalidCommand},
			"Get Chassis Status: 0xC1 invalid command"},
		// captured: ipmi_sim answers 0xCC to Get System Boot Options param 0.
		{"captured boot param 0", CompletionError{NetFnChassis, CmdGetSystemBootOptions, CCInvalidDataField},
			"Get System Boot Options: 0xCC invalid data field in request"},
		// captured: ipmi_sim answers 0x80 to Get SOL param 2 (not supported).
		{"command-specific", CompletionError{NetFnTransport, CmdGetSOLConfigParams, 0x80},
			"Get SOL Configuration Parameters: 0x80 parameter not supported"},
		{"boot param unsupported", CompletionError{NetFnChassis, CmdGetSystemBootOptions, 0x80},
			"Get System Boot Options: 0x80 parameter not supported"},
		{"activate already active", CompletionError{NetFnApp, CmdActivatePayload, CCPayloadAlreadyActive},
			"Activate Payload: 0x80 payload already active on another session"},
		{"activate disabled", CompletionError{NetFnApp, CmdActivatePayload, CCPayloadDisabled},
			"Activate Payload: 0x81 payload type is disabled"},
		{"activate limit", CompletionError{NetFnApp, CmdActivatePayload, CCPayloadLimitReached},
			"Activate Payload: 0x82 payload activation limit reached"},
		{"activate encryption", CompletionError{NetFnApp, CmdActivatePayload, 0x83},
			"Activate Payload: 0x83 cannot activate payload with encryption"},
		{"activate other", CompletionError{NetFnApp, CmdActivatePayload, 0x85},
			"Activate Payload: 0x85 command-specific error"},
		// 0x80 means "already active" only for Activate Payload.
		{"deactivate 0x80", CompletionError{NetFnApp, CmdDeactivatePayload, 0x80},
			"Deactivate Payload: 0x80 payload already deactivated"},
		{"chassis control specific", CompletionError{NetFnChassis, CmdChassisControl, 0x81},
			"Chassis Control: 0x81 command-specific error"},
		{"unknown command", CompletionError{NetFnGroupExt, 0x3E, CCInvalidCommand},
			"netfn 0x2C cmd 0x3E: 0xC1 invalid command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCommandName(t *testing.T) {
	cases := []struct {
		netfn NetFn
		cmd   Command
		want  string
	}{
		{NetFnApp, CmdGetDeviceID, "Get Device ID"},
		{NetFnChassis, CmdGetChassisStatus, "Get Chassis Status"},              // same code 0x01, other NetFn
		{NetFnApp | 1, CmdGetChannelCipherSuites, "Get Channel Cipher Suites"}, // response NetFn
		{NetFnChassis | 1, CmdChassisControl, "Chassis Control"},
		{NetFnTransport, CmdSetSOLConfigParams, "Set SOL Configuration Parameters"},
		{NetFnStorage, 0x40, "netfn 0x0A cmd 0x40"},
		{NetFnStorage | 1, 0x40, "netfn 0x0A cmd 0x40"},
	}
	for _, tc := range cases {
		if got := CommandName(tc.netfn, tc.cmd); got != tc.want {
			t.Errorf("CommandName(0x%02X, 0x%02X) = %q, want %q", uint8(tc.netfn), uint8(tc.cmd), got, tc.want)
		}
	}
}
