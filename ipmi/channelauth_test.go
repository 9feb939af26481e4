package ipmi

import "testing"

var getChannelAuthCapabilitiesReqCases = []goldenCase[GetChannelAuthCapabilitiesReq]{
	{
		// captured: first packet of `ipmitool -I lanplus`.
		name: "captured lanplus",
		wire: []byte{
			0x8E, // byte 1 [7]=1 IPMI v2.0+ extended data, [3:0] channel 0x0E (this one)
			0x04, // byte 2 requested maximum privilege: administrator
		},
		msg: GetChannelAuthCapabilitiesReq{Channel: ChannelCurrent, ExtendedData: true, MaxPrivilege: PrivilegeAdministrator},
	},
	{
		// captured: first packet of `ipmitool -I lan` (IPMI v1.5).
		name: "captured lan",
		wire: []byte{0x0E, 0x04},
		msg:  GetChannelAuthCapabilitiesReq{Channel: ChannelCurrent, MaxPrivilege: PrivilegeAdministrator},
	},
	{
		// captured: `ipmitool -I lanplus channel authcap 1 4`, inside a session.
		name: "captured authcap channel 1",
		wire: []byte{0x81, 0x04},
		msg:  GetChannelAuthCapabilitiesReq{Channel: 1, ExtendedData: true, MaxPrivilege: PrivilegeAdministrator},
	},
	{
		// spec: Table 22-15 byte 1 [6:4] and byte 2 [7:4] are reserved.
		name:       "spec reserved bits ignored",
		wire:       []byte{0x7E, 0xF2},
		msg:        GetChannelAuthCapabilitiesReq{Channel: ChannelCurrent, MaxPrivilege: PrivilegeUser},
		decodeOnly: true,
	},
}

var getChannelAuthCapabilitiesRspCases = []goldenCase[GetChannelAuthCapabilitiesRsp]{
	{
		// captured: ipmi_sim's answer to ipmitool -I lanplus (request 8E 04).
		name: "captured ipmi_sim extended",
		wire: []byte{
			0x01,             // byte 2 channel 1
			0x97,             // byte 3 [7]=1 extended capabilities, [5:0] none|MD2|MD5|password
			0x04,             // byte 4 [2]=1 non-null user names enabled
			0x03,             // byte 5 [1]=1 IPMI v2.0, [0]=1 IPMI v1.5 connections
			0x00, 0x00, 0x00, // bytes 6:8 OEM ID
			0x00, // byte 9 OEM auxiliary data
		},
		msg: GetChannelAuthCapabilitiesRsp{
			Channel: 1, AuthTypes: AuthSupportNone | AuthSupportMD2 | AuthSupportMD5 | AuthSupportPassword,
			ExtendedCapabilities: true, NonNullUsers: true, SupportsV20: true, SupportsV15: true,
		},
	},
	{
		// captured: ipmi_sim's answer to ipmitool -I lan (request 0E 04).
		name: "captured ipmi_sim v1.5",
		wire: []byte{0x01, 0x17, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00},
		msg: GetChannelAuthCapabilitiesRsp{
			Channel: 1, AuthTypes: AuthSupportNone | AuthSupportMD2 | AuthSupportMD5 | AuthSupportPassword,
			NonNullUsers: true,
		},
	},
	{
		// spec: Table 22-15 with every flag of byte 4 set and an OEM auth type.
		name: "spec all flags",
		wire: []byte{
			0x02,             // byte 2 channel 2
			0xB6,             // byte 3 [7]=1, [5] OEM, [4] password, [2] MD5, [1] MD2
			0x3F,             // byte 4 [5] Kg set, [4] per-message auth off, [3] user-level auth off, [2:0] all logins
			0x02,             // byte 5 IPMI v2.0 only
			0x57, 0x01, 0x00, // bytes 6:8 OEM IANA 343
			0xAA, // byte 9
		},
		msg: GetChannelAuthCapabilitiesRsp{
			Channel: 2, AuthTypes: AuthSupportMD2 | AuthSupportMD5 | AuthSupportPassword | AuthSupportOEM,
			ExtendedCapabilities: true, KgStatus: true, PerMessageAuthDisabled: true, UserLevelAuthDisabled: true,
			NonNullUsers: true, NullUsers: true, AnonymousLogin: true, SupportsV20: true,
			OEMID: 343, OEMAux: 0xAA,
		},
	},
	{
		// spec: byte 3 [6], byte 4 [7:6] and byte 5 [7:2] are reserved;
		// bytes after byte 9 are ignored.
		name:       "spec reserved bits and trailing bytes ignored",
		wire:       []byte{0x01, 0x40, 0xC0, 0xFC, 0, 0, 0, 0, 0xEE},
		msg:        GetChannelAuthCapabilitiesRsp{Channel: 1},
		decodeOnly: true,
	},
}

func TestGetChannelAuthCapabilitiesReq(t *testing.T) {
	runGolden(t, getChannelAuthCapabilitiesReqCases)
	runLengths[GetChannelAuthCapabilitiesReq](t, "Get Channel Authentication Capabilities request",
		getChannelAuthCapabilitiesReqCases[0].wire, 2, true)
}

func TestGetChannelAuthCapabilitiesRsp(t *testing.T) {
	runGolden(t, getChannelAuthCapabilitiesRspCases)
	runLengths[GetChannelAuthCapabilitiesRsp](t, "Get Channel Authentication Capabilities response",
		getChannelAuthCapabilitiesRspCases[0].wire, 8, false)
}

func FuzzGetChannelAuthCapabilitiesReq(f *testing.F) {
	fuzzCodec[GetChannelAuthCapabilitiesReq](f, wires(getChannelAuthCapabilitiesReqCases)...)
}

func FuzzGetChannelAuthCapabilitiesRsp(f *testing.F) {
	fuzzCodec[GetChannelAuthCapabilitiesRsp](f, wires(getChannelAuthCapabilitiesRspCases)...)
}
