package ipmi

import "testing"

var activatePayloadReqCases = []goldenCase[ActivatePayloadReq]{
	{
		// captured: `ipmitool -I lanplus sol activate`.
		name: "captured ipmitool sol activate",
		wire: []byte{
			0x01,                   // byte 1 payload type SOL
			0x01,                   // byte 2 instance 1
			0xC6, 0x00, 0x00, 0x00, // bytes 3:6 aux: encrypt, authenticate, alerts deferred, handshake deasserted
		},
		msg: ActivatePayloadReq{PayloadType: PayloadTypeSOL, Instance: 1, Aux: [4]byte{0xC6}},
	},
	{
		// spec: Table 24-2 test mode [5], alerts succeed [3:2]=10b, no encryption.
		name: "spec test mode",
		wire: []byte{0x01, 0x02, 0x28, 0x00, 0x00, 0x00},
		msg:  ActivatePayloadReq{PayloadType: PayloadTypeSOL, Instance: 2, Aux: [4]byte{SOLAuxTestMode | SOLAuxSerialAlertSucceed}},
	},
	{
		// spec: byte 1 [7:6] and byte 2 [7:4] are reserved.
		name:       "spec reserved bits ignored",
		wire:       []byte{0xC1, 0xF1, 0, 0, 0, 0},
		msg:        ActivatePayloadReq{PayloadType: PayloadTypeSOL, Instance: 1},
		decodeOnly: true,
	},
}

var activatePayloadRspCases = []goldenCase[ActivatePayloadRsp]{
	{
		// captured: ipmi_sim's answer to ipmitool's SOL activation, session
		// on UDP port 45723.
		name: "captured ipmi_sim",
		wire: []byte{
			0x00, 0x00, 0x00, 0x00, // bytes 2:5 auxiliary response data
			0x20, 0x00, // bytes 6:7 inbound payload size 32 (console to BMC)
			0x00, 0x40, // bytes 8:9 outbound payload size 16384 (BMC to console)
			0x9B, 0xB2, // bytes 10:11 payload UDP port 0xB29B = 45723
			0xFF, 0xFF, // bytes 12:13 VLAN: none
		},
		msg: ActivatePayloadRsp{InboundPayloadSize: 32, OutboundPayloadSize: 16384, Port: 45723, VLAN: NoVLAN},
	},
	{
		// spec: Table 24-3 with port 623 and VLAN 5.
		name: "spec port 623",
		wire: []byte{0x01, 0x02, 0x03, 0x04, 0xF8, 0x00, 0xF8, 0x00, 0x6F, 0x02, 0x05, 0x00},
		msg:  ActivatePayloadRsp{Aux: [4]byte{1, 2, 3, 4}, InboundPayloadSize: 248, OutboundPayloadSize: 248, Port: 623, VLAN: 5},
	},
	{
		name:       "trailing bytes ignored",
		wire:       []byte{0, 0, 0, 0, 0x20, 0x00, 0x00, 0x40, 0x9B, 0xB2, 0xFF, 0xFF, 0x77},
		msg:        ActivatePayloadRsp{InboundPayloadSize: 32, OutboundPayloadSize: 16384, Port: 45723, VLAN: NoVLAN},
		decodeOnly: true,
	},
}

var deactivatePayloadReqCases = []goldenCase[DeactivatePayloadReq]{
	// captured: ipmitool leaving `sol activate` with ~. and `sol deactivate`.
	{name: "captured", wire: []byte{0x01, 0x01, 0x00, 0x00, 0x00, 0x00}, msg: DeactivatePayloadReq{PayloadType: PayloadTypeSOL, Instance: 1}},
	{name: "spec aux kept", wire: []byte{0x02, 0x03, 1, 2, 3, 4}, msg: DeactivatePayloadReq{PayloadType: 2, Instance: 3, Aux: [4]byte{1, 2, 3, 4}}},
}

var getPayloadActivationStatusReqCases = []goldenCase[GetPayloadActivationStatusReq]{
	// captured: `ipmitool raw 0x06 0x4a 0x01`.
	{name: "captured SOL", wire: []byte{0x01}, msg: GetPayloadActivationStatusReq{PayloadType: PayloadTypeSOL}},
	{name: "spec reserved bits ignored", wire: []byte{0xC1}, msg: GetPayloadActivationStatusReq{PayloadType: PayloadTypeSOL}, decodeOnly: true},
}

var getPayloadActivationStatusRspCases = []goldenCase[GetPayloadActivationStatusRsp]{
	// captured: ipmi_sim, no SOL session (capacity 1, nothing active).
	{name: "captured idle", wire: []byte{0x01, 0x00, 0x00}, msg: GetPayloadActivationStatusRsp{InstanceCapacity: 1}},
	// captured: ipmi_sim while another ipmitool had SOL instance 1 active.
	{name: "captured active", wire: []byte{0x01, 0x01, 0x00}, msg: GetPayloadActivationStatusRsp{InstanceCapacity: 1, Active: 0x0001}},
	// spec: Table 24-6, byte 3 bit 0 = instance 1, byte 4 bit 7 = instance 16.
	{name: "spec instances 1 and 16", wire: []byte{0x0F, 0x01, 0x80}, msg: GetPayloadActivationStatusRsp{InstanceCapacity: 15, Active: 0x8001}},
	{name: "spec reserved bits ignored", wire: []byte{0xF2, 0x00, 0x00, 0xAA}, msg: GetPayloadActivationStatusRsp{InstanceCapacity: 2}, decodeOnly: true},
}

var getChannelPayloadSupportRspCases = []goldenCase[GetChannelPayloadSupportRsp]{
	// captured: ipmi_sim for channel 1 (`ipmitool raw 0x06 0x4e 0x01`): it
	// reports SOL and OEM explicit only.
	{name: "captured ipmi_sim", wire: []byte{0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, msg: GetChannelPayloadSupportRsp{Standard: PayloadSupportSOL | PayloadSupportOEMExplicit}},
	// spec: Table 24-10: IPMI and SOL; session setup types 0x10-0x15; OEM type 0x20.
	{name: "spec", wire: []byte{0x03, 0x00, 0x3F, 0x00, 0x01, 0x00, 0x00, 0x00}, msg: GetChannelPayloadSupportRsp{Standard: 0x0003, SessionSetup: 0x003F, OEM: 0x0001}},
	// spec: the reserved bytes 8:9 may be absent.
	{name: "spec without reserved bytes", wire: []byte{0x03, 0x00, 0x3F, 0x00, 0x01, 0x00}, msg: GetChannelPayloadSupportRsp{Standard: 0x0003, SessionSetup: 0x003F, OEM: 0x0001}, decodeOnly: true},
}

func TestActivatePayloadReq(t *testing.T) {
	runGolden(t, activatePayloadReqCases)
	runLengths[ActivatePayloadReq](t, "Activate Payload request", activatePayloadReqCases[0].wire, 6, true)
}

func TestSOLActivationAux(t *testing.T) {
	cases := []struct {
		name                  string
		encrypt, authenticate bool
		want                  [4]byte
	}{
		// captured: ipmitool's aux bytes are C6 00 00 00.
		{"ipmitool", true, true, [4]byte{0xC6}},
		{"plain", false, false, [4]byte{0x06}},
		{"encrypt only", true, false, [4]byte{0x86}},
		{"authenticate only", false, true, [4]byte{0x46}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			aux := SOLActivationAux(tc.encrypt, tc.authenticate)
			if aux != tc.want {
				t.Fatalf("SOLActivationAux(%v, %v) = % x, want % x", tc.encrypt, tc.authenticate, aux, tc.want)
			}
			r := ActivatePayloadReq{Aux: aux}
			if r.SOLEncrypt() != tc.encrypt || r.SOLAuthenticate() != tc.authenticate {
				t.Errorf("SOLEncrypt, SOLAuthenticate = %v, %v; want %v, %v", r.SOLEncrypt(), r.SOLAuthenticate(), tc.encrypt, tc.authenticate)
			}
		})
	}
}

func TestActivatePayloadRsp(t *testing.T) {
	runGolden(t, activatePayloadRspCases)
	runLengths[ActivatePayloadRsp](t, "Activate Payload response", activatePayloadRspCases[0].wire, 12, false)
	// ipmitool refuses any length but 12.
	r := ActivatePayloadRsp{}
	if n := len(r.Marshal()); n != 12 {
		t.Errorf("Marshal wrote %d bytes, ipmitool requires 12", n)
	}
}

func TestDeactivatePayload(t *testing.T) {
	runGolden(t, deactivatePayloadReqCases)
	runLengths[DeactivatePayloadReq](t, "Deactivate Payload request", deactivatePayloadReqCases[0].wire, 6, true)
	// captured: ipmi_sim answers completion code 0 only (or 0x80 if already deactivated).
	runGolden(t, []goldenCase[DeactivatePayloadRsp]{{name: "captured response", wire: nil}})
}

func TestGetPayloadActivationStatus(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		runGolden(t, getPayloadActivationStatusReqCases)
		runLengths[GetPayloadActivationStatusReq](t, "Get Payload Activation Status request", []byte{1}, 1, true)
	})
	t.Run("response", func(t *testing.T) {
		runGolden(t, getPayloadActivationStatusRspCases)
		runLengths[GetPayloadActivationStatusRsp](t, "Get Payload Activation Status response", getPayloadActivationStatusRspCases[0].wire, 3, false)
	})
}

func TestInstanceActive(t *testing.T) {
	r := GetPayloadActivationStatusRsp{Active: 0x8001}
	for n, want := range map[int]bool{0: false, 1: true, 2: false, 15: false, 16: true, 17: false} {
		if got := r.InstanceActive(n); got != want {
			t.Errorf("InstanceActive(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestGetChannelPayloadSupport(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		// captured: `ipmitool raw 0x06 0x4e 0x01`.
		runGolden(t, []goldenCase[GetChannelPayloadSupportReq]{
			{name: "captured channel 1", wire: []byte{0x01}, msg: GetChannelPayloadSupportReq{Channel: 1}},
			{name: "spec reserved bits ignored", wire: []byte{0xF1}, msg: GetChannelPayloadSupportReq{Channel: 1}, decodeOnly: true},
		})
		runLengths[GetChannelPayloadSupportReq](t, "Get Channel Payload Support request", []byte{1}, 1, true)
	})
	t.Run("response", func(t *testing.T) {
		runGolden(t, getChannelPayloadSupportRspCases)
		runLengths[GetChannelPayloadSupportRsp](t, "Get Channel Payload Support response", getChannelPayloadSupportRspCases[0].wire, 6, false)
	})
}

func FuzzActivatePayloadReq(f *testing.F) {
	fuzzCodec[ActivatePayloadReq](f, wires(activatePayloadReqCases)...)
}

func FuzzActivatePayloadRsp(f *testing.F) {
	fuzzCodec[ActivatePayloadRsp](f, wires(activatePayloadRspCases)...)
}

func FuzzDeactivatePayloadReq(f *testing.F) {
	fuzzCodec[DeactivatePayloadReq](f, wires(deactivatePayloadReqCases)...)
}

func FuzzDeactivatePayloadRsp(f *testing.F) { fuzzCodec[DeactivatePayloadRsp](f, nil) }

func FuzzGetPayloadActivationStatusReq(f *testing.F) {
	fuzzCodec[GetPayloadActivationStatusReq](f, wires(getPayloadActivationStatusReqCases)...)
}

func FuzzGetPayloadActivationStatusRsp(f *testing.F) {
	fuzzCodec[GetPayloadActivationStatusRsp](f, wires(getPayloadActivationStatusRspCases)...)
}

func FuzzGetChannelPayloadSupportReq(f *testing.F) {
	fuzzCodec[GetChannelPayloadSupportReq](f, []byte{0x01}, []byte{0x0E})
}

func FuzzGetChannelPayloadSupportRsp(f *testing.F) {
	fuzzCodec[GetChannelPayloadSupportRsp](f, wires(getChannelPayloadSupportRspCases)...)
}
