package ipmi

import "testing"

var getSOLConfigParamsReqCases = []goldenCase[GetSOLConfigParamsReq]{
	// captured: `ipmitool sol info` asks for params 0..8 on channel 0x0E.
	{name: "captured sol info param 0", wire: []byte{0x0E, 0x00, 0x00, 0x00}, msg: GetSOLConfigParamsReq{Channel: ChannelCurrent, Param: SOLParamSetInProgress}},
	{name: "captured sol info param 8", wire: []byte{0x0E, 0x08, 0x00, 0x00}, msg: GetSOLConfigParamsReq{Channel: ChannelCurrent, Param: SOLParamPayloadPort}},
	// captured: `ipmitool sol info 1`.
	{name: "captured sol info 1 param 5", wire: []byte{0x01, 0x05, 0x00, 0x00}, msg: GetSOLConfigParamsReq{Channel: 1, Param: SOLParamNonVolatileBitRate}},
	// spec: Table 26-5 byte 1 [7] = revision only; [6:4] reserved.
	{name: "spec revision only", wire: []byte{0x8E, 0x01, 0x02, 0x03}, msg: GetSOLConfigParamsReq{RevisionOnly: true, Channel: ChannelCurrent, Param: 1, SetSelector: 2, BlockSelector: 3}},
	{name: "spec reserved bits ignored", wire: []byte{0x71, 0x01, 0x00, 0x00}, msg: GetSOLConfigParamsReq{Channel: 1, Param: 1}, decodeOnly: true},
}

var getSOLConfigParamsRspCases = []goldenCase[GetSOLConfigParamsRsp]{
	// captured: ipmi_sim for param 0 (set complete) and param 1 (enabled).
	{name: "captured set complete", wire: []byte{0x11, 0x00}, msg: GetSOLConfigParamsRsp{Revision: SOLParamRevision, Data: []byte{SetComplete}}},
	{name: "captured enabled", wire: []byte{0x11, 0x01}, msg: GetSOLConfigParamsRsp{Revision: SOLParamRevision, Data: []byte{0x01}}},
	// spec: revision only.
	{name: "spec revision only", wire: []byte{0x11}, msg: GetSOLConfigParamsRsp{Revision: SOLParamRevision}},
	// spec: param 8, port 623 LS byte first.
	{name: "spec payload port", wire: []byte{0x11, 0x6F, 0x02}, msg: GetSOLConfigParamsRsp{Revision: SOLParamRevision, Data: []byte{0x6F, 0x02}}},
}

var setSOLConfigParamsReqCases = []goldenCase[SetSOLConfigParamsReq]{
	// captured: `ipmitool sol set enabled true`: set in progress, enable,
	// commit write, set complete.
	{name: "captured set in progress", wire: []byte{0x0E, 0x00, 0x01}, msg: SetSOLConfigParamsReq{Channel: ChannelCurrent, Param: SOLParamSetInProgress, Data: []byte{SetInProgress}}},
	{name: "captured enable", wire: []byte{0x0E, 0x01, 0x01}, msg: SetSOLConfigParamsReq{Channel: ChannelCurrent, Param: SOLParamEnable, Data: []byte{0x01}}},
	{name: "captured commit write", wire: []byte{0x0E, 0x00, 0x02}, msg: SetSOLConfigParamsReq{Channel: ChannelCurrent, Param: SOLParamSetInProgress, Data: []byte{CommitWrite}}},
	{name: "captured set complete", wire: []byte{0x0E, 0x00, 0x00}, msg: SetSOLConfigParamsReq{Channel: ChannelCurrent, Param: SOLParamSetInProgress, Data: []byte{SetComplete}}},
	// spec: Table 26-4; force encryption and authentication, user privilege.
	{name: "spec authentication", wire: []byte{0x01, 0x02, 0xC2}, msg: SetSOLConfigParamsReq{Channel: 1, Param: SOLParamAuthentication, Data: []byte{SOLForceEncryption | SOLForceAuthentication | uint8(PrivilegeUser)}}},
	{name: "spec no data", wire: []byte{0x01, 0x06}, msg: SetSOLConfigParamsReq{Channel: 1, Param: SOLParamVolatileBitRate}},
}

func TestGetSOLConfigParamsReq(t *testing.T) {
	runGolden(t, getSOLConfigParamsReqCases)
	runLengths[GetSOLConfigParamsReq](t, "Get SOL Configuration Parameters request", getSOLConfigParamsReqCases[0].wire, 4, true)
}

func TestGetSOLConfigParamsRsp(t *testing.T) {
	runGolden(t, getSOLConfigParamsRspCases)
	runLengths[GetSOLConfigParamsRsp](t, "Get SOL Configuration Parameters response", getSOLConfigParamsRspCases[0].wire, 1, false)
}

func TestSetSOLConfigParamsReq(t *testing.T) {
	runGolden(t, setSOLConfigParamsReqCases)
	runLengths[SetSOLConfigParamsReq](t, "Set SOL Configuration Parameters request", setSOLConfigParamsReqCases[0].wire, 2, false)
	// captured: ipmi_sim answers Set SOL Configuration Parameters with completion code only.
	runGolden(t, []goldenCase[SetSOLConfigParamsRsp]{{name: "captured response", wire: nil}})
}

func FuzzGetSOLConfigParamsReq(f *testing.F) {
	fuzzCodec[GetSOLConfigParamsReq](f, wires(getSOLConfigParamsReqCases)...)
}

func FuzzGetSOLConfigParamsRsp(f *testing.F) {
	fuzzCodec[GetSOLConfigParamsRsp](f, wires(getSOLConfigParamsRspCases)...)
}

func FuzzSetSOLConfigParamsReq(f *testing.F) {
	fuzzCodec[SetSOLConfigParamsReq](f, wires(setSOLConfigParamsReqCases)...)
}

func FuzzSetSOLConfigParamsRsp(f *testing.F) { fuzzCodec[SetSOLConfigParamsRsp](f, nil) }
