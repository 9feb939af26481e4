package ipmi

import "testing"

var getPayloadInstanceInfoReqCases = []goldenCase[GetPayloadInstanceInfoReq]{
	// captured: `ipmitool raw 0x06 0x4b 0x01 0x01` (SOL, instance 1).
	{name: "captured SOL instance 1", wire: []byte{0x01, 0x01}, msg: GetPayloadInstanceInfoReq{PayloadType: PayloadTypeSOL, Instance: 1}},
	// spec: Table 24-7, byte 1 [7:6] reserved.
	{name: "spec reserved bits ignored", wire: []byte{0xC1, 0x02}, msg: GetPayloadInstanceInfoReq{PayloadType: PayloadTypeSOL, Instance: 2}, decodeOnly: true},
}

var getPayloadInstanceInfoRspCases = []goldenCase[GetPayloadInstanceInfoRsp]{
	// captured: ipmi_sim 2.0.33 with no SOL session: session ID 0, SOL on
	// serial port 1.
	{name: "captured ipmi_sim inactive", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0},
		msg: GetPayloadInstanceInfoRsp{Info: [8]byte{1}}},
	// captured: ipmi_sim while an ipmitool `sol activate` held instance 1
	// under its session 0x00000082.
	{name: "captured ipmi_sim active", wire: []byte{0x82, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0},
		msg: GetPayloadInstanceInfoRsp{SessionID: 0x82, Info: [8]byte{1}}},
	// spec: Table 24-7, session ID least significant byte first.
	{name: "spec session ID byte order", wire: []byte{0x04, 0x03, 0x02, 0x01, 0x02, 0, 0, 0, 0, 0, 0, 0},
		msg: GetPayloadInstanceInfoRsp{SessionID: 0x01020304, Info: [8]byte{2}}},
	{name: "trailing bytes ignored", wire: []byte{0x82, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0xEE},
		msg: GetPayloadInstanceInfoRsp{SessionID: 0x82, Info: [8]byte{1}}, decodeOnly: true},
}

func TestGetPayloadInstanceInfo(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		runGolden(t, getPayloadInstanceInfoReqCases)
		runLengths[GetPayloadInstanceInfoReq](t, "Get Payload Instance Info request", []byte{1, 1}, 2, true)
	})
	t.Run("response", func(t *testing.T) {
		runGolden(t, getPayloadInstanceInfoRspCases)
		runLengths[GetPayloadInstanceInfoRsp](t, "Get Payload Instance Info response", getPayloadInstanceInfoRspCases[0].wire, 12, false)
	})
	t.Run("active", func(t *testing.T) {
		if r := (GetPayloadInstanceInfoRsp{}); r.Active() {
			t.Error("session ID 0 reported active")
		}
		if r := (GetPayloadInstanceInfoRsp{SessionID: 0x82}); !r.Active() {
			t.Error("session ID 0x82 reported inactive")
		}
	})
}

func FuzzGetPayloadInstanceInfoReq(f *testing.F) {
	fuzzCodec[GetPayloadInstanceInfoReq](f, wires(getPayloadInstanceInfoReqCases)...)
}

func FuzzGetPayloadInstanceInfoRsp(f *testing.F) {
	fuzzCodec[GetPayloadInstanceInfoRsp](f, wires(getPayloadInstanceInfoRspCases)...)
}
