package rmcpplus

import (
	"testing"

	"obmd/ipmi"
)

// Golden Open Session messages. "ipmitool"/"FreeIPMI" bytes are payloads
// captured between ipmitool 1.8.19 or FreeIPMI 1.6.10 and OpenIPMI's
// ipmi_sim (testdata/capture.sh); the rest follow Tables 13-9 and 13-10.
var openSessionRequestGolden = []wireGolden[OpenSessionRequest]{
	{
		name: "ipmitool suite 3",
		hex:  "00 00 0000 a4a3a2a0 | 00 0000 08 01 000000 | 01 0000 08 01 000000 | 02 0000 08 01 000000",
		want: OpenSessionRequest{Tag: 0, MaxPrivilege: ipmi.PrivilegeHighest, ConsoleSessionID: 0xa0a2a3a4,
			Auth: AuthHMACSHA1, Integrity: IntegrityHMACSHA1_96, Confidentiality: ConfAESCBC128},
	},
	{
		name: "ipmitool suite 2",
		hex:  "00 00 0000 a4a3a2a0 | 00 0000 08 01 000000 | 01 0000 08 01 000000 | 02 0000 08 00 000000",
		want: OpenSessionRequest{ConsoleSessionID: 0xa0a2a3a4,
			Auth: AuthHMACSHA1, Integrity: IntegrityHMACSHA1_96, Confidentiality: ConfNone},
	},
	{
		name: "FreeIPMI suite 3, administrator",
		hex:  "b2 04 0000 c87d0962 | 00 0000 08 01 000000 | 01 0000 08 01 000000 | 02 0000 08 01 000000",
		want: OpenSessionRequest{Tag: 0xb2, MaxPrivilege: ipmi.PrivilegeAdministrator, ConsoleSessionID: 0x62097dc8,
			Auth: AuthHMACSHA1, Integrity: IntegrityHMACSHA1_96, Confidentiality: ConfAESCBC128},
	},
	{
		name: "Table 13-9, suite 17",
		hex:  "07 03 0000 01000000 | 00 0000 08 03 000000 | 01 0000 08 04 000000 | 02 0000 08 01 000000",
		want: OpenSessionRequest{Tag: 7, MaxPrivilege: ipmi.PrivilegeOperator, ConsoleSessionID: 1,
			Auth: AuthHMACSHA256, Integrity: IntegrityHMACSHA256128, Confidentiality: ConfAESCBC128},
	},
}

func TestWireOpenSessionRequestGolden(t *testing.T) { testGolden(t, openSessionRequestGolden) }

func TestWireOpenSessionRequestRejects(t *testing.T) {
	testRejects(t, (*OpenSessionRequest).Unmarshal, map[string]string{
		"31 bytes":                        "00 00 0000 a4a3a2a0 | 00 0000 08 01 000000 | 01 0000 08 01 000000 | 02 0000 08 01 0000",
		"payloads out of order":           "00 00 0000 a4a3a2a0 | 01 0000 08 01 000000 | 00 0000 08 01 000000 | 02 0000 08 01 000000",
		"confidentiality payload type 03": "00 00 0000 a4a3a2a0 | 00 0000 08 01 000000 | 01 0000 08 01 000000 | 03 0000 08 01 000000",
	})
}

var openSessionResponseGolden = []wireGolden[OpenSessionResponse]{
	{
		name: "ipmi_sim to ipmitool, privilege echoed as 0",
		hex:  "00 00 00 00 a4a3a2a0 02000000 | 00 0000 08 01 000000 | 01 0000 08 01 000000 | 02 0000 08 01 000000",
		want: OpenSessionResponse{ConsoleSessionID: 0xa0a2a3a4, ManagedSessionID: 2,
			Auth: AuthHMACSHA1, Integrity: IntegrityHMACSHA1_96, Confidentiality: ConfAESCBC128},
	},
	{
		name: "ipmi_sim to FreeIPMI, administrator",
		hex:  "b2 00 04 00 c87d0962 02010000 | 00 0000 08 01 000000 | 01 0000 08 01 000000 | 02 0000 08 01 000000",
		want: OpenSessionResponse{Tag: 0xb2, MaxPrivilege: ipmi.PrivilegeAdministrator, ConsoleSessionID: 0x62097dc8,
			ManagedSessionID: 0x102, Auth: AuthHMACSHA1, Integrity: IntegrityHMACSHA1_96, Confidentiality: ConfAESCBC128},
	},
	{
		name:      "Table 13-10 short error form: no cipher suite match",
		hex:       "05 11 00 00 a4a3a2a0",
		want:      OpenSessionResponse{Tag: 5, Status: RAKPNoCipherSuiteMatch, ConsoleSessionID: 0xa0a2a3a4},
		shortForm: true,
	},
	{
		// BMC-QUIRKS.md "1-byte Open Session error"; also OpenBMC
		// netipmid's answer to a request of the wrong length (0xC7).
		name: "one byte: the status alone",
		hex:  "11",
		want: OpenSessionResponse{Short: true, Status: RAKPNoCipherSuiteMatch},
	},
	{
		name:      "error status with only tag and status",
		hex:       "05 01",
		want:      OpenSessionResponse{Tag: 5, Status: RAKPInsufficientResources},
		shortForm: true,
	},
}

func TestWireOpenSessionResponseGolden(t *testing.T) {
	testGolden(t, openSessionResponseGolden)
	for _, g := range openSessionResponseGolden {
		if m := g.want.Marshal(); len(m) != openSessionResponseLen && !g.want.Short {
			t.Errorf("%s: Marshal wrote %d bytes, want the full 36", g.name, len(m))
		}
	}
}

func TestWireOpenSessionResponseRejects(t *testing.T) {
	testRejects(t, (*OpenSessionResponse).Unmarshal, map[string]string{
		"one byte of success":       "00",
		"success but short":         "00 00 04 00 a4a3a2a0 02000000",
		"success, bad payload type": "00 00 04 00 a4a3a2a0 02000000 | 05 0000 08 01 000000 | 01 0000 08 01 000000 | 02 0000 08 01 000000",
	})
}

func FuzzOpenSessionRequestUnmarshal(f *testing.F) { fuzzRoundTrip(f, openSessionRequestGolden) }

func FuzzOpenSessionResponseUnmarshal(f *testing.F) { fuzzRoundTrip(f, openSessionResponseGolden) }
