package ipmi

import "testing"

var getChassisStatusRspCases = []goldenCase[GetChassisStatusRsp]{
	{
		// captured: ipmi_sim, power off; ipmitool printed "Chassis Power is off".
		name: "captured off",
		wire: []byte{
			0x00, // byte 2 current power state: [0]=0 off, policy always-off
			0x00, // byte 3 last power event
			0x00, // byte 4 misc chassis state
		},
		msg: GetChassisStatusRsp{},
	},
	{
		// captured: ipmi_sim after `chassis power on`; ipmitool and FreeIPMI
		// printed "System Power: on", everything else false/inactive.
		name: "captured on",
		wire: []byte{0x01, 0x00, 0x00},
		msg:  GetChassisStatusRsp{PowerOn: true},
	},
	{
		// spec: Table 28-3 with every defined bit of bytes 2-4 set.
		name: "spec all bits",
		wire: []byte{
			0x7F, // byte 2 [6:5]=3 policy unknown, [4:0] control fault, fault, interlock, overload, on
			0x1F, // byte 3 [4:0] command, fault, interlock, overload, AC failed
			0x7F, // byte 4 [6:0] identify supported/state, fan, drive, lockout, intrusion
		},
		msg: GetChassisStatusRsp{
			PowerOn: true, PowerOverload: true, Interlock: true, PowerFault: true, PowerControlFault: true,
			PowerRestorePolicy: PowerRestoreUnknown, LastPowerEvent: 0x1F, MiscState: 0x7F,
		},
	},
	{
		// spec: on by IPMI command, policy always-on, with the optional front
		// panel byte 5.
		name: "spec front panel",
		wire: []byte{0x45, 0x10, 0x00, 0xC3},
		msg: GetChassisStatusRsp{
			PowerOn: true, Interlock: true, PowerRestorePolicy: PowerRestoreAlwaysOn,
			LastPowerEvent: LastPowerEventCommand, FrontPanel: []byte{0xC3},
		},
	},
	{
		// spec: byte 2 [7], byte 3 [7:5] and byte 4 [7] are reserved; bytes
		// after byte 5 are ignored.
		name:       "spec reserved bits ignored",
		wire:       []byte{0xA1, 0xE0, 0x80, 0x00, 0xEE},
		msg:        GetChassisStatusRsp{PowerOn: true, PowerRestorePolicy: PowerRestorePrevious, FrontPanel: []byte{0}},
		decodeOnly: true,
	},
}

func TestGetChassisStatusRsp(t *testing.T) {
	runGolden(t, getChassisStatusRspCases)
	runLengths[GetChassisStatusRsp](t, "Get Chassis Status response", getChassisStatusRspCases[0].wire, 3, false)
}

func TestGetChassisStatusReq(t *testing.T) {
	// captured: `ipmitool chassis power status` sends no data.
	runGolden(t, []goldenCase[GetChassisStatusReq]{{name: "captured", wire: nil}})
	var r GetChassisStatusReq
	if err := r.Unmarshal([]byte{0}); err == nil {
		t.Error("Unmarshal accepted a data byte; Get Chassis Status has no request data")
	}
}

var chassisControlReqCases = []goldenCase[ChassisControlReq]{
	// captured: ipmitool chassis power off|on|cycle|reset|diag|soft.
	{name: "captured off", wire: []byte{0x00}, msg: ChassisControlReq{Control: PowerDown}},
	{name: "captured on", wire: []byte{0x01}, msg: ChassisControlReq{Control: PowerUp}},
	{name: "captured cycle", wire: []byte{0x02}, msg: ChassisControlReq{Control: PowerCycle}},
	{name: "captured reset", wire: []byte{0x03}, msg: ChassisControlReq{Control: HardReset}},
	{name: "captured diag", wire: []byte{0x04}, msg: ChassisControlReq{Control: DiagnosticInterrupt}},
	{name: "captured soft", wire: []byte{0x05}, msg: ChassisControlReq{Control: SoftShutdown}},
	// spec: Table 28-4 byte 1 [7:4] reserved; values 6-15 are passed up for the BMC to refuse.
	{name: "spec reserved bits ignored", wire: []byte{0xF1}, msg: ChassisControlReq{Control: PowerUp}, decodeOnly: true},
	{name: "spec undefined op kept", wire: []byte{0x09}, msg: ChassisControlReq{Control: 9}},
}

func TestChassisControlReq(t *testing.T) {
	runGolden(t, chassisControlReqCases)
	runLengths[ChassisControlReq](t, "Chassis Control request", []byte{1}, 1, true)
}

func TestChassisControlOpString(t *testing.T) {
	cases := map[ChassisControlOp]string{
		PowerDown: "power down", PowerUp: "power up", PowerCycle: "power cycle", HardReset: "hard reset",
		DiagnosticInterrupt: "diagnostic interrupt", SoftShutdown: "soft shutdown", 9: "chassis control(9)",
	}
	for op, want := range cases {
		if got := op.String(); got != want {
			t.Errorf("ChassisControlOp(%d).String() = %q, want %q", uint8(op), got, want)
		}
	}
}

func FuzzGetChassisStatusReq(f *testing.F) { fuzzCodec[GetChassisStatusReq](f, nil, []byte{0}) }

func FuzzGetChassisStatusRsp(f *testing.F) {
	fuzzCodec[GetChassisStatusRsp](f, wires(getChassisStatusRspCases)...)
}

func FuzzChassisControlReq(f *testing.F) {
	fuzzCodec[ChassisControlReq](f, wires(chassisControlReqCases)...)
}

func FuzzChassisControlRsp(f *testing.F) { fuzzCodec[ChassisControlRsp](f, nil) }
