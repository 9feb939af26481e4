package ipmi

import (
	"testing"
)

var setSystemBootOptionsReqCases = []goldenCase[SetSystemBootOptionsReq]{
	{
		// captured: ipmitool `chassis bootdev pxe`, step 1: set in progress.
		name: "captured set in progress",
		wire: []byte{0x00, 0x01}, // byte 1 param 0, data: set in progress
		msg:  SetSystemBootOptionsReq{Param: BootParamSetInProgress, Data: []byte{SetInProgress}},
	},
	{
		// captured: ipmitool step 2: boot info acknowledge, write mask 01,
		// clear the BIOS/POST acknowledge bit.
		name: "captured ipmitool boot info ack",
		wire: []byte{0x04, 0x01, 0x01},
		msg:  SetSystemBootOptionsReq{Param: BootParamBootInfoAck, Data: []byte{0x01, 0x01}},
	},
	{
		// captured: ipmitool step 3, the boot flags.
		name: "captured ipmitool bootdev pxe",
		wire: []byte{0x05, 0x80, 0x04, 0x00, 0x00, 0x00},
		msg:  SetSystemBootOptionsReq{Param: BootParamBootFlags, Data: []byte{0x80, 0x04, 0x00, 0x00, 0x00}},
	},
	{
		// captured: FreeIPMI ipmi-chassis --set-boot-flags, after the flags.
		name: "captured FreeIPMI boot info ack",
		wire: []byte{0x04, 0xFF, 0xFF},
		msg:  SetSystemBootOptionsReq{Param: BootParamBootInfoAck, Data: []byte{0xFF, 0xFF}},
	},
	{
		// spec: Table 28-12 byte 1 [7]=1 marks the parameter invalid.
		name: "spec mark invalid",
		wire: []byte{0x85},
		msg:  SetSystemBootOptionsReq{Param: BootParamBootFlags, MarkInvalid: true},
	},
}

var getSystemBootOptionsReqCases = []goldenCase[GetSystemBootOptionsReq]{
	// captured: `ipmitool chassis bootparam get 5` and FreeIPMI --get-boot-flags.
	{name: "captured param 5", wire: []byte{0x05, 0x00, 0x00}, msg: GetSystemBootOptionsReq{Param: BootParamBootFlags}},
	// captured: `ipmitool chassis bootparam get 4`.
	{name: "captured param 4", wire: []byte{0x04, 0x00, 0x00}, msg: GetSystemBootOptionsReq{Param: BootParamBootInfoAck}},
	// spec: Table 28-13, mailbox block 3; byte 1 [7] is reserved.
	{name: "spec selectors", wire: []byte{0x07, 0x00, 0x03}, msg: GetSystemBootOptionsReq{Param: BootParamBootInitiatorMailbox, BlockSelector: 3}},
	{name: "spec reserved bit ignored", wire: []byte{0x85, 0x01, 0x02}, msg: GetSystemBootOptionsReq{Param: 5, SetSelector: 1, BlockSelector: 2}, decodeOnly: true},
}

var getSystemBootOptionsRspCases = []goldenCase[GetSystemBootOptionsRsp]{
	{
		// captured: ipmi_sim after `chassis bootdev pxe`; ipmitool printed
		// "Boot parameter 5 is valid/unlocked", "Boot Flag Invalid", "Force PXE".
		name: "captured param 5",
		wire: []byte{
			0x01,                         // byte 2 parameter version 1
			0x05,                         // byte 3 [7]=0 valid/unlocked, [6:0] param 5
			0x00, 0x04, 0x00, 0x00, 0x00, // bytes 4:8 boot flags
		},
		msg: GetSystemBootOptionsRsp{Version: BootOptionsVersion, Param: BootParamBootFlags, Data: []byte{0x00, 0x04, 0x00, 0x00, 0x00}},
	},
	{
		// captured: ipmi_sim's data-less answer for param 4.
		name: "captured param 4 without data",
		wire: []byte{0x01, 0x04},
		msg:  GetSystemBootOptionsRsp{Version: 1, Param: BootParamBootInfoAck},
	},
	{
		// spec: byte 3 [7]=1 parameter marked invalid/locked; byte 2 [7:4] reserved.
		name:       "spec invalid",
		wire:       []byte{0xF1, 0x85, 0x80, 0x08, 0x00, 0x00, 0x00},
		msg:        GetSystemBootOptionsRsp{Version: 1, Param: 5, Invalid: true, Data: []byte{0x80, 0x08, 0, 0, 0}},
		decodeOnly: true,
	},
}

var bootFlagsCases = []goldenCase[BootFlags]{
	// captured: the parameter 5 data of ipmitool `chassis bootdev pxe|disk|none`
	// and of FreeIPMI --boot-device=PXE: data 1 [7] valid; data 2 [5:2] device.
	{name: "captured bootdev pxe", wire: []byte{0x80, 0x04, 0x00, 0x00, 0x00}, msg: BootFlags{Valid: true, Device: BootDevicePXE}},
	{name: "captured bootdev disk", wire: []byte{0x80, 0x08, 0x00, 0x00, 0x00}, msg: BootFlags{Valid: true, Device: BootDeviceDisk}},
	{name: "captured bootdev none", wire: []byte{0x80, 0x00, 0x00, 0x00, 0x00}, msg: BootFlags{Valid: true, Device: BootDeviceNone}},
	// captured: `chassis bootdev pxe options=persistent,efiboot`: data 1 [6] persistent, [5] EFI.
	{name: "captured persistent efi", wire: []byte{0xE0, 0x04, 0x00, 0x00, 0x00}, msg: BootFlags{Valid: true, Persistent: true, EFI: true, Device: BootDevicePXE}},
	// captured: ipmi_sim's read-back, valid bit clear.
	{name: "captured ipmi_sim read-back", wire: []byte{0x00, 0x04, 0x00, 0x00, 0x00}, msg: BootFlags{Device: BootDevicePXE}},
	// spec: ipmitool source sends data 2 = 0x18 for "bios" and 0x3C for "floppy".
	{name: "spec bios", wire: []byte{0x80, 0x18, 0, 0, 0}, msg: BootFlags{Valid: true, Device: BootDeviceBIOSSetup}},
	{name: "spec floppy", wire: []byte{0x80, 0x3C, 0, 0, 0}, msg: BootFlags{Valid: true, Device: BootDeviceFloppy}},
	{name: "spec remote disk", wire: []byte{0x80, 0x2C, 0, 0, 0}, msg: BootFlags{Valid: true, Device: BootDeviceRemoteDisk}},
	{
		// spec: Table 28-14 parameter 5 with every defined bit set.
		name: "spec all bits",
		wire: []byte{
			0xE0, // data 1 [7] valid, [6] persistent, [5] EFI
			0xFF, // data 2 [7] CMOS clear, [6] lock keyboard, [5:2]=0xF floppy, [1] blank, [0] lock reset
			0xFF, // data 3 [7] lock power, [6:5]=3 verbosity, [4] traps, [3] bypass, [2] lock sleep, [1:0]=3 redirect
			0x0F, // data 4 [3] shared mode override, [2:0]=7 mux
			0x1F, // data 5 [4:0] device instance 31
		},
		msg: BootFlags{
			Valid: true, Persistent: true, EFI: true,
			CMOSClear: true, LockKeyboard: true, Device: BootDeviceFloppy, ScreenBlank: true, LockOutReset: true,
			LockOutPower: true, Verbosity: 3, ProgressTraps: true, PasswordBypass: true, LockOutSleep: true, ConsoleRedirect: 3,
			SharedModeOverride: true, MuxOverride: 7, DeviceInstance: 31,
		},
	},
	{
		// spec: data 1 [4:0], data 4 [7:4], data 5 [7:5] are reserved; extra bytes ignored.
		name:       "spec reserved bits ignored",
		wire:       []byte{0x1F, 0x00, 0x00, 0xF0, 0xE0, 0x99},
		msg:        BootFlags{},
		decodeOnly: true,
	},
}

func TestSetSystemBootOptionsReq(t *testing.T) {
	runGolden(t, setSystemBootOptionsReqCases)
	runLengths[SetSystemBootOptionsReq](t, "Set System Boot Options request", []byte{5}, 1, false)
}

func TestSetSystemBootOptionsRsp(t *testing.T) {
	// captured: ipmi_sim answers Set System Boot Options with completion code only.
	runGolden(t, []goldenCase[SetSystemBootOptionsRsp]{{name: "captured", wire: nil}})
}

func TestGetSystemBootOptionsReq(t *testing.T) {
	runGolden(t, getSystemBootOptionsReqCases)
	runLengths[GetSystemBootOptionsReq](t, "Get System Boot Options request", getSystemBootOptionsReqCases[0].wire, 3, true)
}

func TestGetSystemBootOptionsRsp(t *testing.T) {
	runGolden(t, getSystemBootOptionsRspCases)
	runLengths[GetSystemBootOptionsRsp](t, "Get System Boot Options response", getSystemBootOptionsRspCases[0].wire, 2, false)
}

func TestBootFlags(t *testing.T) {
	runGolden(t, bootFlagsCases)
	runLengths[BootFlags](t, "boot flags", bootFlagsCases[0].wire, 5, false)
}

// TestBootFlagsFromCapturedResponse decodes ipmi_sim's whole Get System
// Boot Options answer the way a client does: response, then parameter data.
func TestBootFlagsFromCapturedResponse(t *testing.T) {
	var rsp GetSystemBootOptionsRsp
	if err := rsp.Unmarshal([]byte{0x01, 0x05, 0x00, 0x04, 0x00, 0x00, 0x00}); err != nil {
		t.Fatal(err)
	}
	var f BootFlags
	if err := f.Unmarshal(rsp.Data); err != nil {
		t.Fatal(err)
	}
	if f.Valid || f.Device != BootDevicePXE {
		t.Errorf("got valid=%v device=%v, want valid=false device=pxe (ipmi_sim's read-back)", f.Valid, f.Device)
	}
}

func TestBootDeviceNames(t *testing.T) {
	// The names ipmitool's `chassis bootdev` takes, with their selectors.
	ipmitoolNames := map[string]BootDevice{
		"none": BootDeviceNone, "pxe": BootDevicePXE, "disk": BootDeviceDisk, "safe": BootDeviceDiskSafe,
		"diag": BootDeviceDiagnostic, "cdrom": BootDeviceCDROM, "bios": BootDeviceBIOSSetup, "floppy": BootDeviceFloppy,
	}
	for name, dev := range ipmitoolNames {
		if got := dev.String(); got != name {
			t.Errorf("BootDevice(%d).String() = %q, want %q", uint8(dev), got, name)
		}
	}
	for d := BootDevice(0); d < 16; d++ {
		s := d.String()
		back, err := ParseBootDevice(s)
		if _, named := bootDeviceNames[d]; !named {
			if err == nil {
				t.Errorf("ParseBootDevice(%q) accepted the name of an undefined selector", s)
			}
			continue
		}
		if err != nil || back != d {
			t.Errorf("ParseBootDevice(%q) = %v, %v; want %v", s, back, err, d)
		}
	}
	if _, err := ParseBootDevice("usb"); err == nil {
		t.Error(`ParseBootDevice("usb") succeeded`)
	}
	if got := BootDevice(0xA).String(); got != "boot device(0xA)" {
		t.Errorf("undefined selector prints %q", got)
	}
}

func FuzzSetSystemBootOptionsReq(f *testing.F) {
	fuzzCodec[SetSystemBootOptionsReq](f, wires(setSystemBootOptionsReqCases)...)
}

func FuzzSetSystemBootOptionsRsp(f *testing.F) { fuzzCodec[SetSystemBootOptionsRsp](f, nil) }

func FuzzGetSystemBootOptionsReq(f *testing.F) {
	fuzzCodec[GetSystemBootOptionsReq](f, wires(getSystemBootOptionsReqCases)...)
}

func FuzzGetSystemBootOptionsRsp(f *testing.F) {
	fuzzCodec[GetSystemBootOptionsRsp](f, wires(getSystemBootOptionsRspCases)...)
}

func FuzzBootFlags(f *testing.F) { fuzzCodec[BootFlags](f, wires(bootFlagsCases)...) }
