package ipmi

import "fmt"

// Set System Boot Options (NetFn Chassis 0x00, command 0x08; IPMI v2.0
// section 28.12, Table 28-12) and Get System Boot Options (command 0x09;
// section 28.13, Table 28-13), with the boot option parameters of
// Table 28-14; parameter 5, the boot flags, is decoded by BootFlags.
//
// What clients send (captured from ipmitool 1.8.19 and FreeIPMI 1.6.10
// against ipmi_sim, request data after the command byte):
//
//	ipmitool chassis bootdev pxe:
//	  Set [00 01]              param 0 set-in-progress; if the BMC refuses it
//	                           (ipmi_sim: 0xCC) ipmitool stops using param 0,
//	                           else it later sends [00 02] commit-write and
//	                           [00 00] set-complete
//	  Set [04 01 01]           param 4 boot info acknowledge: clear BIOS/POST bit
//	  Set [05 80 04 00 00 00]  param 5: valid, next boot only, PXE
//	ipmitool chassis bootdev disk|none: data 2 = 0x08 | 0x00
//	ipmitool chassis bootdev pxe options=persistent,efiboot: data 1 = 0xE0
//	ipmitool chassis bootparam get 5:
//	  Get [05 00 00]           prints the version, param byte and 5 data bytes
//	ipmi-chassis --set-boot-flags --boot-device=PXE (FreeIPMI):
//	  Get [05 00 00], Set [05 80 04 00 00 00], Set [04 ff ff]
//
// ipmi_sim answers Get param 5 with [01 05 00 04 00 00 00] (version 1,
// param 5, then flags with the valid bit clear) and Get param 4 with only
// [01 04]; ipmitool's "bootparam get 4" then prints whatever follows.
// A BMC should answer param 4 with its two data bytes.

// Boot option parameter selectors, Table 28-14.
const (
	BootParamSetInProgress        uint8 = 0
	BootParamServicePartition     uint8 = 1
	BootParamServicePartitionScan uint8 = 2
	BootParamValidBitClearing     uint8 = 3
	BootParamBootInfoAck          uint8 = 4 // 2 bytes: write mask, acknowledge bits
	BootParamBootFlags            uint8 = 5 // 5 bytes, see BootFlags
	BootParamBootInitiatorInfo    uint8 = 6
	BootParamBootInitiatorMailbox uint8 = 7
)

// BootOptionsVersion is the parameter version a BMC reports in Get System
// Boot Options (Table 28-13, byte 2 [3:0]).
const BootOptionsVersion uint8 = 0x01

// Values of the set-in-progress parameter (boot option parameter 0 and SOL
// parameter 0), data byte 1 [1:0].
const (
	SetComplete   uint8 = 0
	SetInProgress uint8 = 1
	CommitWrite   uint8 = 2
)

// SetSystemBootOptionsReq is the request data of Set System Boot Options.
type SetSystemBootOptionsReq struct {
	Param uint8 // byte 1 [6:0], BootParam*
	// MarkInvalid is byte 1 [7]: mark the parameter invalid / locked.
	// Clients setting boot flags leave it clear.
	MarkInvalid bool
	Data        []byte // bytes 2:N, the parameter data
}

// Marshal encodes the request data.
func (r *SetSystemBootOptionsReq) Marshal() []byte {
	return append([]byte{bit(r.MarkInvalid, 0x80) | r.Param&0x7F}, r.Data...)
}

// Unmarshal decodes the request data (at least the parameter byte). The
// parameter data's length is the parameter's business (BootFlags for 5).
func (r *SetSystemBootOptionsReq) Unmarshal(data []byte) error {
	if err := checkLen("Set System Boot Options request", data, 1, NoLimit); err != nil {
		return err
	}
	*r = SetSystemBootOptionsReq{Param: data[0] & 0x7F, MarkInvalid: isSet(data[0], 0x80), Data: cloneData(data[1:])}
	return nil
}

// SetSystemBootOptionsRsp has no data after the completion code.
type SetSystemBootOptionsRsp struct{}

// Marshal returns the empty response data.
func (r *SetSystemBootOptionsRsp) Marshal() []byte { return nil }

// Unmarshal accepts any data (there is none to decode).
func (r *SetSystemBootOptionsRsp) Unmarshal(data []byte) error { return nil }

// GetSystemBootOptionsReq is the request data of Get System Boot Options.
type GetSystemBootOptionsReq struct {
	Param         uint8 // byte 1 [6:0], BootParam*
	SetSelector   uint8 // byte 2, 0 for parameters without sets
	BlockSelector uint8 // byte 3, 0 for parameters without blocks
}

// Marshal encodes the 3-byte request data.
func (r *GetSystemBootOptionsReq) Marshal() []byte {
	return []byte{r.Param & 0x7F, r.SetSelector, r.BlockSelector}
}

// Unmarshal decodes the request data (exactly 3 bytes).
func (r *GetSystemBootOptionsReq) Unmarshal(data []byte) error {
	if err := checkLen("Get System Boot Options request", data, 3, 3); err != nil {
		return err
	}
	*r = GetSystemBootOptionsReq{Param: data[0] & 0x7F, SetSelector: data[1], BlockSelector: data[2]}
	return nil
}

// GetSystemBootOptionsRsp is the response data after the completion code.
type GetSystemBootOptionsRsp struct {
	Version uint8 // byte 2 [3:0], BootOptionsVersion
	Param   uint8 // byte 3 [6:0]
	// Invalid is byte 3 [7]: the parameter is marked invalid / locked
	// (ipmitool prints "invalid/locked"). Unrelated to BootFlags.Valid.
	Invalid bool
	Data    []byte // bytes 4:N, the parameter data
}

// Marshal encodes the response data.
func (r *GetSystemBootOptionsRsp) Marshal() []byte {
	return append([]byte{r.Version & 0x0F, bit(r.Invalid, 0x80) | r.Param&0x7F}, r.Data...)
}

// Unmarshal decodes the response data. Data may be empty (ipmi_sim returns
// no data for parameter 4).
func (r *GetSystemBootOptionsRsp) Unmarshal(data []byte) error {
	if err := checkLen("Get System Boot Options response", data, 2, NoLimit); err != nil {
		return err
	}
	*r = GetSystemBootOptionsRsp{
		Version: data[0] & 0x0F,
		Param:   data[1] & 0x7F,
		Invalid: isSet(data[1], 0x80),
		Data:    cloneData(data[2:]),
	}
	return nil
}

// BootDevice is the boot device selector of the boot flags (Table 28-14,
// parameter 5, data 2 [5:2]).
type BootDevice uint8

// Boot device selectors. Their String() values for the ones ipmitool knows
// are ipmitool's "chassis bootdev" arguments.
const (
	BootDeviceNone               BootDevice = 0x0 // no override: BIOS boot order
	BootDevicePXE                BootDevice = 0x1
	BootDeviceDisk               BootDevice = 0x2 // default hard drive
	BootDeviceDiskSafe           BootDevice = 0x3 // default hard drive, safe mode
	BootDeviceDiagnostic         BootDevice = 0x4 // diagnostic partition
	BootDeviceCDROM              BootDevice = 0x5 // default CD/DVD
	BootDeviceBIOSSetup          BootDevice = 0x6
	BootDeviceRemoteFloppy       BootDevice = 0x7 // remote floppy / primary removable media
	BootDeviceRemoteCDROM        BootDevice = 0x8
	BootDeviceRemotePrimaryMedia BootDevice = 0x9
	BootDeviceRemoteDisk         BootDevice = 0xB
	BootDeviceFloppy             BootDevice = 0xF // floppy / primary removable media
)

var bootDeviceNames = map[BootDevice]string{
	BootDeviceNone:               "none",
	BootDevicePXE:                "pxe",
	BootDeviceDisk:               "disk",
	BootDeviceDiskSafe:           "safe",
	BootDeviceDiagnostic:         "diag",
	BootDeviceCDROM:              "cdrom",
	BootDeviceBIOSSetup:          "bios",
	BootDeviceRemoteFloppy:       "remote-floppy",
	BootDeviceRemoteCDROM:        "remote-cdrom",
	BootDeviceRemotePrimaryMedia: "remote-primary-media",
	BootDeviceRemoteDisk:         "remote-disk",
	BootDeviceFloppy:             "floppy",
}

func (d BootDevice) String() string {
	if s, ok := bootDeviceNames[d]; ok {
		return s
	}
	return fmt.Sprintf("boot device(0x%X)", uint8(d))
}

// ParseBootDevice is the inverse of BootDevice.String: "pxe" gives
// BootDevicePXE.
func ParseBootDevice(s string) (BootDevice, error) {
	for d, name := range bootDeviceNames {
		if name == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("ipmi: unknown boot device %q", s)
}

// BootFlags is boot option parameter 5 (Table 28-14), 5 data bytes.
type BootFlags struct {
	// Data 1.
	Valid      bool // [7]: the BIOS acts on these flags
	Persistent bool // [6]: apply to all future boots, not only the next
	EFI        bool // [5]: EFI boot, else PC compatible (legacy)
	// Data 2.
	CMOSClear    bool       // [7]
	LockKeyboard bool       // [6]
	Device       BootDevice // [5:2]
	ScreenBlank  bool       // [1]
	LockOutReset bool       // [0]: lock out the reset button
	// Data 3.
	LockOutPower    bool  // [7]: lock out power off / sleep via the power button
	Verbosity       uint8 // [6:5]: 0 system default, 1 quiet, 2 verbose
	ProgressTraps   bool  // [4]: force progress event traps
	PasswordBypass  bool  // [3]: user password bypass
	LockOutSleep    bool  // [2]: lock out the sleep button
	ConsoleRedirect uint8 // [1:0]: 0 per BIOS setting, 1 suppress, 2 enable
	// Data 4.
	SharedModeOverride bool  // [3]: BIOS shared mode override
	MuxOverride        uint8 // [2:0]: 0 BIOS default, 1 mux to BMC, 2 mux to system
	// Data 5.
	DeviceInstance uint8 // [4:0]: device instance selector, 0 = default
}

// BootFlagsLen is the length of boot option parameter 5's data.
const BootFlagsLen = 5

// Marshal encodes the 5 data bytes (reserved bits zero).
func (f *BootFlags) Marshal() []byte {
	return []byte{
		bit(f.Valid, 0x80) | bit(f.Persistent, 0x40) | bit(f.EFI, 0x20),
		bit(f.CMOSClear, 0x80) | bit(f.LockKeyboard, 0x40) | uint8(f.Device&0x0F)<<2 |
			bit(f.ScreenBlank, 0x02) | bit(f.LockOutReset, 0x01),
		bit(f.LockOutPower, 0x80) | (f.Verbosity&3)<<5 | bit(f.ProgressTraps, 0x10) |
			bit(f.PasswordBypass, 0x08) | bit(f.LockOutSleep, 0x04) | f.ConsoleRedirect&3,
		bit(f.SharedModeOverride, 0x08) | f.MuxOverride&7,
		f.DeviceInstance & 0x1F,
	}
}

// Unmarshal decodes at least 5 data bytes; more are ignored.
func (f *BootFlags) Unmarshal(data []byte) error {
	if err := checkLen("boot flags (boot option parameter 5)", data, BootFlagsLen, NoLimit); err != nil {
		return err
	}
	*f = BootFlags{
		Valid:              isSet(data[0], 0x80),
		Persistent:         isSet(data[0], 0x40),
		EFI:                isSet(data[0], 0x20),
		CMOSClear:          isSet(data[1], 0x80),
		LockKeyboard:       isSet(data[1], 0x40),
		Device:             BootDevice(data[1] >> 2 & 0x0F),
		ScreenBlank:        isSet(data[1], 0x02),
		LockOutReset:       isSet(data[1], 0x01),
		LockOutPower:       isSet(data[2], 0x80),
		Verbosity:          data[2] >> 5 & 3,
		ProgressTraps:      isSet(data[2], 0x10),
		PasswordBypass:     isSet(data[2], 0x08),
		LockOutSleep:       isSet(data[2], 0x04),
		ConsoleRedirect:    data[2] & 3,
		SharedModeOverride: isSet(data[3], 0x08),
		MuxOverride:        data[3] & 7,
		DeviceInstance:     data[4] & 0x1F,
	}
	return nil
}
