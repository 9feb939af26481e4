package ipmi

import "testing"

var getDeviceIDRspCases = []goldenCase[GetDeviceIDRsp]{
	{
		// captured: ipmitool `mc info` against ipmi_sim, whose bmc.emu says
		// "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02".
		// ipmitool printed: Device ID 0, Device Revision 3, Firmware
		// Revision 9.08, IPMI Version 2.0, Manufacturer ID 4753, Product ID
		// 3842 (0x0f02), Device Available yes, Provides Device SDRs no.
		name: "captured ipmi_sim",
		wire: []byte{
			0x00,             // byte 2  Device ID
			0x03,             // byte 3  [7]=0 no device SDRs, [3:0] revision 3
			0x09,             // byte 4  [7]=0 normal operation, [6:0] major 9
			0x08,             // byte 5  minor, BCD 08
			0x02,             // byte 6  IPMI version 2.0
			0x9F,             // byte 7  sensor, SDR repo, SEL, FRU, event receiver, chassis
			0x91, 0x12, 0x00, // bytes 8:10 manufacturer 0x001291 = 4753, LS first
			0x02, 0x0F, // bytes 11:12 product 0x0F02
			0x00, 0x00, 0x00, 0x00, // bytes 13:16 aux firmware revision
		},
		msg: GetDeviceIDRsp{
			DeviceRevision: 3, DeviceAvailable: true, FirmwareMajor: 9, FirmwareMinor: 0x08,
			IPMIVersion: IPMIVersion20,
			AdditionalSupport: DeviceSupportSensor | DeviceSupportSDRRepository | DeviceSupportSEL |
				DeviceSupportFRU | DeviceSupportEventReceiver | DeviceSupportChassis,
			ManufacturerID: 4753, ProductID: 0x0F02, AuxFirmware: []byte{0, 0, 0, 0},
		},
	},
	{
		// spec: Table 20-2 with every flag set and no aux firmware bytes.
		name: "spec update in progress, no aux",
		wire: []byte{
			0x20,             // byte 2  Device ID 0x20
			0x81,             // byte 3  [7]=1 provides device SDRs, revision 1
			0x85,             // byte 4  [7]=1 update in progress, major 5
			0x42,             // byte 5  minor 42 (BCD)
			0x51,             // byte 6  IPMI version 1.5
			0xFF,             // byte 7  every device support bit
			0x57, 0x01, 0x00, // bytes 8:10 manufacturer 343
			0x34, 0x12, // bytes 11:12 product 0x1234
		},
		msg: GetDeviceIDRsp{
			DeviceID: 0x20, DeviceRevision: 1, ProvidesSDRs: true, DeviceAvailable: false,
			FirmwareMajor: 5, FirmwareMinor: 0x42, IPMIVersion: IPMIVersion15, AdditionalSupport: 0xFF,
			ManufacturerID: 343, ProductID: 0x1234,
		},
	},
	{
		// spec: bytes 8:10 hold a 20-bit number; [23:20] are reserved.
		// Byte 3 [6:4] are reserved too.
		name:       "spec reserved bits ignored",
		wire:       []byte{0x00, 0x73, 0x01, 0x00, 0x02, 0x00, 0x57, 0x01, 0xF0, 0x00, 0x00},
		msg:        GetDeviceIDRsp{DeviceRevision: 3, DeviceAvailable: true, FirmwareMajor: 1, IPMIVersion: 2, ManufacturerID: 343},
		decodeOnly: true,
	},
	{
		// spec: aux firmware revision is all-or-nothing; 2 stray bytes are ignored.
		name:       "partial aux ignored",
		wire:       []byte{0x00, 0x03, 0x09, 0x08, 0x02, 0x9F, 0x91, 0x12, 0x00, 0x02, 0x0F, 0xAA, 0xBB},
		msg:        GetDeviceIDRsp{DeviceRevision: 3, DeviceAvailable: true, FirmwareMajor: 9, FirmwareMinor: 8, IPMIVersion: 2, AdditionalSupport: 0x9F, ManufacturerID: 4753, ProductID: 0x0F02},
		decodeOnly: true,
	},
	{
		name:       "bytes after aux ignored",
		wire:       []byte{0x00, 0x03, 0x09, 0x08, 0x02, 0x9F, 0x91, 0x12, 0x00, 0x02, 0x0F, 1, 2, 3, 4, 5},
		msg:        GetDeviceIDRsp{DeviceRevision: 3, DeviceAvailable: true, FirmwareMajor: 9, FirmwareMinor: 8, IPMIVersion: 2, AdditionalSupport: 0x9F, ManufacturerID: 4753, ProductID: 0x0F02, AuxFirmware: []byte{1, 2, 3, 4}},
		decodeOnly: true,
	},
}

func TestGetDeviceIDRsp(t *testing.T) {
	runGolden(t, getDeviceIDRspCases)
	runLengths[GetDeviceIDRsp](t, "Get Device ID response", getDeviceIDRspCases[0].wire, 11, false)
}

func TestGetDeviceIDReq(t *testing.T) {
	// captured: ipmitool sends Get Device ID with no data.
	runGolden(t, []goldenCase[GetDeviceIDReq]{{name: "captured", wire: nil}})
	var r GetDeviceIDReq
	if err := r.Unmarshal([]byte{0}); err == nil {
		t.Error("Unmarshal accepted a data byte; Get Device ID has no request data")
	}
}

func TestGetDeviceIDRspShortAux(t *testing.T) {
	// Marshal writes the optional aux field as exactly 4 bytes when set.
	r := GetDeviceIDRsp{AuxFirmware: []byte{7}}
	if got := r.Marshal(); len(got) != 15 || got[11] != 7 || got[14] != 0 {
		t.Errorf("Marshal with 1 aux byte = % x, want 15 bytes ending 07 00 00 00", got)
	}
}

func FuzzGetDeviceIDReq(f *testing.F) { fuzzCodec[GetDeviceIDReq](f, nil, []byte{1}) }
func FuzzGetDeviceIDRsp(f *testing.F) {
	fuzzCodec[GetDeviceIDRsp](f, wires(getDeviceIDRspCases)...)
}
