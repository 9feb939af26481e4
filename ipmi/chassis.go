package ipmi

import "fmt"

// Chassis commands, NetFn Chassis (0x00): Get Chassis Status (IPMI v2.0
// section 28.2, Table 28-3) and Chassis Control (section 28.3, Table 28-4).
//
// `ipmitool chassis power status` sends Get Chassis Status and prints "on"
// when bit 0 of the first response data byte (PowerOn) is set; `chassis
// status` prints every field of bytes 2-4 and byte 5 if present. FreeIPMI's
// ipmipower --stat and ipmi-chassis --get-status read the same bytes.

// GetChassisStatusReq has no request data.
type GetChassisStatusReq struct{}

// Marshal returns the empty request data.
func (r *GetChassisStatusReq) Marshal() []byte { return nil }

// Unmarshal accepts only empty data.
func (r *GetChassisStatusReq) Unmarshal(data []byte) error {
	return checkLen("Get Chassis Status request", data, 0, 0)
}

// Power restore policies, GetChassisStatusRsp.PowerRestorePolicy (byte 2 [6:5]).
const (
	PowerRestoreAlwaysOff uint8 = 0
	PowerRestorePrevious  uint8 = 1
	PowerRestoreAlwaysOn  uint8 = 2
	PowerRestoreUnknown   uint8 = 3
)

// Last power event bits, GetChassisStatusRsp.LastPowerEvent (byte 3).
const (
	LastPowerEventACFailed  uint8 = 1 << 0
	LastPowerEventOverload  uint8 = 1 << 1
	LastPowerEventInterlock uint8 = 1 << 2
	LastPowerEventFault     uint8 = 1 << 3
	LastPowerEventCommand   uint8 = 1 << 4 // last power on was by an IPMI command
)

// GetChassisStatusRsp is the response data after the completion code.
type GetChassisStatusRsp struct {
	// Byte 2, current power state.
	PowerOn            bool  // [0]: system power is on
	PowerOverload      bool  // [1]
	Interlock          bool  // [2]
	PowerFault         bool  // [3]: main power fault
	PowerControlFault  bool  // [4]
	PowerRestorePolicy uint8 // [6:5], PowerRestore*
	// LastPowerEvent is byte 3 [4:0] (LastPowerEvent* bits).
	LastPowerEvent uint8
	// MiscState is byte 4 [6:0]: chassis intrusion [0], front panel lockout
	// [1], drive fault [2], cooling/fan fault [3], identify state [5:4],
	// identify state supported [6].
	MiscState uint8
	// FrontPanel is the optional byte 5, front panel button capabilities
	// and disable state: nil when absent, else one byte.
	FrontPanel []byte
}

const getChassisStatusRspMin = 3 // bytes 2:4; byte 5 is optional

// Marshal encodes 3 bytes, or 4 with the front panel byte.
func (r *GetChassisStatusRsp) Marshal() []byte {
	b := []byte{
		bit(r.PowerOn, 0x01) | bit(r.PowerOverload, 0x02) | bit(r.Interlock, 0x04) |
			bit(r.PowerFault, 0x08) | bit(r.PowerControlFault, 0x10) | (r.PowerRestorePolicy&3)<<5,
		r.LastPowerEvent & 0x1F,
		r.MiscState & 0x7F,
	}
	if len(r.FrontPanel) > 0 {
		b = append(b, r.FrontPanel[0])
	}
	return b
}

// Unmarshal decodes the response data; bytes after byte 5 are ignored.
func (r *GetChassisStatusRsp) Unmarshal(data []byte) error {
	if err := checkLen("Get Chassis Status response", data, getChassisStatusRspMin, NoLimit); err != nil {
		return err
	}
	*r = GetChassisStatusRsp{
		PowerOn:            isSet(data[0], 0x01),
		PowerOverload:      isSet(data[0], 0x02),
		Interlock:          isSet(data[0], 0x04),
		PowerFault:         isSet(data[0], 0x08),
		PowerControlFault:  isSet(data[0], 0x10),
		PowerRestorePolicy: data[0] >> 5 & 3,
		LastPowerEvent:     data[1] & 0x1F,
		MiscState:          data[2] & 0x7F,
	}
	if len(data) > getChassisStatusRspMin {
		r.FrontPanel = cloneData(data[3:4])
	}
	return nil
}

// ChassisControlOp is the chassis control value of Chassis Control
// (Table 28-4, byte 1 [3:0]).
type ChassisControlOp uint8

// Chassis control operations; ipmitool's "chassis power off|on|cycle|reset|
// diag|soft" send 0, 1, 2, 3, 4, 5.
const (
	PowerDown           ChassisControlOp = 0 // hard power off, no OS shutdown
	PowerUp             ChassisControlOp = 1
	PowerCycle          ChassisControlOp = 2 // off, then on after at least 1 s
	HardReset           ChassisControlOp = 3
	DiagnosticInterrupt ChassisControlOp = 4 // pulse NMI
	SoftShutdown        ChassisControlOp = 5 // ACPI soft shutdown via overtemperature emulation
)

func (c ChassisControlOp) String() string {
	switch c {
	case PowerDown:
		return "power down"
	case PowerUp:
		return "power up"
	case PowerCycle:
		return "power cycle"
	case HardReset:
		return "hard reset"
	case DiagnosticInterrupt:
		return "diagnostic interrupt"
	case SoftShutdown:
		return "soft shutdown"
	}
	return fmt.Sprintf("chassis control(%d)", uint8(c))
}

// ChassisControlReq is the request data of Chassis Control.
type ChassisControlReq struct {
	Control ChassisControlOp // byte 1 [3:0]
}

// Marshal encodes the 1-byte request data.
func (r *ChassisControlReq) Marshal() []byte { return []byte{uint8(r.Control) & 0x0F} }

// Unmarshal decodes the request data (exactly 1 byte). It does not judge
// the operation: a BMC answers 0xCC for one it does not support (ipmi_sim
// does so for DiagnosticInterrupt).
func (r *ChassisControlReq) Unmarshal(data []byte) error {
	if err := checkLen("Chassis Control request", data, 1, 1); err != nil {
		return err
	}
	*r = ChassisControlReq{Control: ChassisControlOp(data[0] & 0x0F)}
	return nil
}

// ChassisControlRsp has no data after the completion code. The BMC answers
// before the operation completes.
type ChassisControlRsp struct{}

// Marshal returns the empty response data.
func (r *ChassisControlRsp) Marshal() []byte { return nil }

// Unmarshal accepts any data (there is none to decode).
func (r *ChassisControlRsp) Unmarshal(data []byte) error { return nil }
