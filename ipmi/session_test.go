package ipmi

import "testing"

var setSessionPrivilegeLevelReqCases = []goldenCase[SetSessionPrivilegeLevelReq]{
	// captured: ipmitool -L ADMINISTRATOR right after session activation.
	{name: "captured administrator", wire: []byte{0x04}, msg: SetSessionPrivilegeLevelReq{Level: PrivilegeAdministrator}},
	// captured: `ipmitool raw 0x06 0x3b 0x00`; 0 asks for the present level.
	{name: "captured no change", wire: []byte{0x00}, msg: SetSessionPrivilegeLevelReq{}},
	// spec: Table 22-22 byte 1 [7:4] reserved.
	{name: "spec reserved bits ignored", wire: []byte{0xF3}, msg: SetSessionPrivilegeLevelReq{Level: PrivilegeOperator}, decodeOnly: true},
}

var setSessionPrivilegeLevelRspCases = []goldenCase[SetSessionPrivilegeLevelRsp]{
	// captured: ipmi_sim grants administrator.
	{name: "captured administrator", wire: []byte{0x04}, msg: SetSessionPrivilegeLevelRsp{Level: PrivilegeAdministrator}},
	{name: "spec reserved bits and trailing bytes ignored", wire: []byte{0x33, 0x99}, msg: SetSessionPrivilegeLevelRsp{Level: PrivilegeOperator}, decodeOnly: true},
}

var closeSessionReqCases = []goldenCase[CloseSessionReq]{
	{
		// captured: ipmitool -I lan closing ipmi_sim session 0x00000102.
		name: "captured v1.5 session",
		wire: []byte{0x02, 0x01, 0x00, 0x00}, // bytes 1:4 session ID, LS byte first
		msg:  CloseSessionReq{SessionID: 0x00000102},
	},
	{
		// captured: ipmitool -I lanplus closing ipmi_sim session 0x00000902.
		name: "captured v2.0 session",
		wire: []byte{0x02, 0x09, 0x00, 0x00},
		msg:  CloseSessionReq{SessionID: 0x00000902},
	},
	{
		// spec: Table 22-23, session ID 0 followed by byte 5, the session handle.
		name: "spec by handle",
		wire: []byte{0x00, 0x00, 0x00, 0x00, 0x05},
		msg:  CloseSessionReq{Handle: 5},
	},
	{
		// spec: byte 5 is present only when the session ID is 0.
		name:       "spec handle ignored after non-zero ID",
		wire:       []byte{0x02, 0x09, 0x00, 0x00, 0x07},
		msg:        CloseSessionReq{SessionID: 0x00000902},
		decodeOnly: true,
	},
}

func TestSetSessionPrivilegeLevel(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		runGolden(t, setSessionPrivilegeLevelReqCases)
		runLengths[SetSessionPrivilegeLevelReq](t, "Set Session Privilege Level request", []byte{4}, 1, true)
	})
	t.Run("response", func(t *testing.T) {
		runGolden(t, setSessionPrivilegeLevelRspCases)
		runLengths[SetSessionPrivilegeLevelRsp](t, "Set Session Privilege Level response", []byte{4}, 1, false)
	})
}

func TestCloseSessionReq(t *testing.T) {
	runGolden(t, closeSessionReqCases)
	runLengths[CloseSessionReq](t, "Close Session request", closeSessionReqCases[0].wire, 4, false)
	runLengths[CloseSessionReq](t, "Close Session request", closeSessionReqCases[2].wire, 5, true)
}

func TestCloseSessionRsp(t *testing.T) {
	// captured: ipmi_sim answers Close Session with completion code 0 only.
	runGolden(t, []goldenCase[CloseSessionRsp]{{name: "captured", wire: nil}})
}

func FuzzSetSessionPrivilegeLevelReq(f *testing.F) {
	fuzzCodec[SetSessionPrivilegeLevelReq](f, wires(setSessionPrivilegeLevelReqCases)...)
}

func FuzzSetSessionPrivilegeLevelRsp(f *testing.F) {
	fuzzCodec[SetSessionPrivilegeLevelRsp](f, wires(setSessionPrivilegeLevelRspCases)...)
}

func FuzzCloseSessionReq(f *testing.F) { fuzzCodec[CloseSessionReq](f, wires(closeSessionReqCases)...) }

func FuzzCloseSessionRsp(f *testing.F) { fuzzCodec[CloseSessionRsp](f, nil, []byte{0}) }
