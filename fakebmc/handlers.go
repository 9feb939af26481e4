package fakebmc

import (
	"errors"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// session is what a command handler needs of the RMCP+ session a request
// arrived on. *rmcpplus.ServerSession provides it; handler tests use a
// stand-in.
type session interface {
	ID() uint32
	Username() string
	Privilege() ipmi.PrivilegeLevel
	SendPayload(pt rmcpplus.PayloadType, b []byte) error
	SetPayloadHandler(pt rmcpplus.PayloadType, h func(payload []byte))
	Done() <-chan struct{}
}

// request is one IPMI request as a handler sees it. data is the request
// data after the command byte; it aliases the packet buffer.
type request struct {
	sess session
	msg  *ipmi.Message
	data []byte
}

// handlerFunc serves one command: it returns the completion code and the
// response data after it.
type handlerFunc func(b *BMC, r *request) (ipmi.CompletionCode, []byte)

type commandKey struct {
	netFn ipmi.NetFn
	cmd   ipmi.Command
}

// command is one entry of the command table: the least session privilege
// the command needs (IPMI v2.0 Appendix G, "Command Privilege Levels") and
// its handler.
type command struct {
	privilege ipmi.PrivilegeLevel
	handle    handlerFunc
}

// commands is the command table, keyed by (NetFn, Cmd), in the manner of
// phosphor-net-ipmid's command registration. The session commands (Get
// Channel Authentication Capabilities, Get Channel Cipher Suites, Set
// Session Privilege Level, Close Session) are rmcpplus.Server's; anything
// not here is answered with 0xC1 "invalid command", at once, as ipmitool's
// probes of HPM.x (netfn 0x2C cmd 0x3E), PICMG and VITA (netfn 0x2C cmd
// 0x00) expect.
var commands = map[commandKey]command{
	{ipmi.NetFnApp, ipmi.CmdGetDeviceID}:                {ipmi.PrivilegeUser, (*BMC).getDeviceID},
	{ipmi.NetFnChassis, ipmi.CmdGetChassisStatus}:       {ipmi.PrivilegeUser, (*BMC).getChassisStatus},
	{ipmi.NetFnChassis, ipmi.CmdChassisControl}:         {ipmi.PrivilegeOperator, (*BMC).chassisControl},
	{ipmi.NetFnChassis, ipmi.CmdSetSystemBootOptions}:   {ipmi.PrivilegeOperator, (*BMC).setSystemBootOptions},
	{ipmi.NetFnChassis, ipmi.CmdGetSystemBootOptions}:   {ipmi.PrivilegeOperator, (*BMC).getSystemBootOptions},
	{ipmi.NetFnApp, ipmi.CmdActivatePayload}:            {ipmi.PrivilegeUser, (*BMC).activatePayload},
	{ipmi.NetFnApp, ipmi.CmdDeactivatePayload}:          {ipmi.PrivilegeUser, (*BMC).deactivatePayload},
	{ipmi.NetFnApp, ipmi.CmdGetPayloadActivationStatus}: {ipmi.PrivilegeUser, (*BMC).getPayloadActivationStatus},
	{ipmi.NetFnApp, ipmi.CmdGetPayloadInstanceInfo}:     {ipmi.PrivilegeUser, (*BMC).getPayloadInstanceInfo},
	{ipmi.NetFnApp, ipmi.CmdGetChannelPayloadSupport}:   {ipmi.PrivilegeUser, (*BMC).getChannelPayloadSupport},
	{ipmi.NetFnTransport, ipmi.CmdGetSOLConfigParams}:   {ipmi.PrivilegeUser, (*BMC).getSOLConfigParams},
	{ipmi.NetFnTransport, ipmi.CmdSetSOLConfigParams}:   {ipmi.PrivilegeAdministrator, (*BMC).setSOLConfigParams},
}

// dispatch looks the command up, checks the session's privilege and runs
// the handler.
func (b *BMC) dispatch(s session, req *ipmi.Message) (ipmi.CompletionCode, []byte) {
	c, ok := commands[commandKey{req.NetFn, req.Cmd}]
	if !ok {
		return ipmi.CCInvalidCommand, nil
	}
	if s.Privilege() < c.privilege {
		return ipmi.CCInsufficientPrivilege, nil
	}
	return c.handle(b, &request{sess: s, msg: req, data: req.Data})
}

// decode unmarshals a request and maps a malformed one to the completion
// code a BMC answers (0xC7 wrong length, 0xCC bad field).
func decode(r *request, c ipmi.Codec) (ipmi.CompletionCode, bool) {
	if err := c.Unmarshal(r.data); err != nil {
		return ipmi.CompletionCodeFor(err), false
	}
	return ipmi.CCOK, true
}

// validChannel reports whether a channel number names the LAN channel the
// BMC serves: its number or "this channel" (IPMI v2.0 section 6.3).
func validChannel(ch uint8) bool { return ch == lanChannel || ch == ipmi.ChannelCurrent }

// lanChannel is the channel number of the simulated LAN channel.
const lanChannel uint8 = 1

// Identity reported by Get Device ID. The manufacturer is IANA enterprise
// number 32473, reserved for documentation (RFC 5612), so nothing mistakes
// fakebmc for a real vendor's BMC.
const (
	fakeManufacturerID uint32 = 32473
	fakeProductID      uint16 = 0x0F4B // "FK"
	fakeDeviceID       uint8  = 0x20
)

// getDeviceID answers Get Device ID (IPMI v2.0 section 20.1): a chassis
// device speaking IPMI 2.0, firmware 1.00, no SDRs.
func (b *BMC) getDeviceID(r *request) (ipmi.CompletionCode, []byte) {
	if cc, ok := decode(r, &ipmi.GetDeviceIDReq{}); !ok {
		return cc, nil
	}
	rsp := ipmi.GetDeviceIDRsp{
		DeviceID:          fakeDeviceID,
		DeviceRevision:    1,
		DeviceAvailable:   true,
		FirmwareMajor:     1,
		FirmwareMinor:     0x00,
		IPMIVersion:       ipmi.IPMIVersion20,
		AdditionalSupport: ipmi.DeviceSupportChassis,
		ManufacturerID:    fakeManufacturerID,
		ProductID:         fakeProductID,
	}
	return ipmi.CCOK, rsp.Marshal()
}

// getChassisStatus answers Get Chassis Status (IPMI v2.0 section 28.2) from
// the machine's power state and last power event.
func (b *BMC) getChassisStatus(r *request) (ipmi.CompletionCode, []byte) {
	if cc, ok := decode(r, &ipmi.GetChassisStatusReq{}); !ok {
		return cc, nil
	}
	rsp := ipmi.GetChassisStatusRsp{
		PowerOn:            b.machine.PowerOn(),
		PowerRestorePolicy: ipmi.PowerRestorePrevious,
		LastPowerEvent:     b.machine.LastPowerEvent(),
	}
	return ipmi.CCOK, rsp.Marshal()
}

// chassisControl performs Chassis Control (IPMI v2.0 section 28.3). The
// answer comes before a timed action (cycle, soft off) completes, as on a
// real BMC.
func (b *BMC) chassisControl(r *request) (ipmi.CompletionCode, []byte) {
	var req ipmi.ChassisControlReq
	if cc, ok := decode(r, &req); !ok {
		return cc, nil
	}
	var act func() error
	switch req.Control {
	case ipmi.PowerDown:
		act = b.machine.PowerDown
	case ipmi.PowerUp:
		act = b.machine.PowerUp
	case ipmi.PowerCycle:
		act = b.machine.PowerCycle
	case ipmi.HardReset:
		act = b.machine.HardReset
	case ipmi.DiagnosticInterrupt:
		act = b.machine.PulseDiagInterrupt
	case ipmi.SoftShutdown:
		act = b.machine.SoftOff
	default:
		return ipmi.CCInvalidDataField, nil
	}
	if err := act(); err != nil {
		return machineErrorCode(err), nil
	}
	b.log.Info("chassis control", "action", req.Control.String(), "session", r.sess.ID())
	return ipmi.CCOK, nil
}

func machineErrorCode(err error) ipmi.CompletionCode {
	if errors.Is(err, ErrNotInPresentState) {
		return ipmi.CCNotSupportedInState
	}
	return ipmi.CCUnspecified
}

// Command-specific completion codes of Set/Get System Boot Options (IPMI
// v2.0 sections 28.12, 28.13) and Set/Get SOL Configuration Parameters
// (26.2, 26.3): they share the meanings.
const (
	ccParamNotSupported ipmi.CompletionCode = 0x80
	ccParamReadOnly     ipmi.CompletionCode = 0x82 // Set: attempt to write a read-only parameter
)

// bootOptions holds the System Boot Options parameters the BMC itself
// keeps; parameter 5 (boot flags) belongs to the Machine. Guarded by
// BMC.mu.
type bootOptions struct {
	setInProgress uint8   // parameter 0
	validClearing uint8   // parameter 3
	infoAck       uint8   // parameter 4, acknowledge data
	locked        [8]bool // "parameter invalid/locked" bits, by selector
}

// setSystemBootOptions serves Set System Boot Options (IPMI v2.0 section
// 28.12) for parameters 0 (set in progress), 3 (valid bit clearing), 4
// (boot info acknowledge) and 5 (boot flags), the ones `ipmitool chassis
// bootdev` and FreeIPMI's ipmi-chassis write. Others answer 0x80.
//
// Parameter 0 is accepted in any state: a client killed between "set in
// progress" and "set complete" would otherwise lock the others out (the
// spec's 0x81 for a second "set in progress" is not simulated).
func (b *BMC) setSystemBootOptions(r *request) (ipmi.CompletionCode, []byte) {
	var req ipmi.SetSystemBootOptionsReq
	if cc, ok := decode(r, &req); !ok {
		return cc, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch req.Param {
	case ipmi.BootParamSetInProgress:
		if len(req.Data) != 1 {
			return ipmi.CCDataLengthInvalid, nil
		}
		switch v := req.Data[0] & 3; v {
		case ipmi.SetComplete, ipmi.CommitWrite:
			b.boot.setInProgress = ipmi.SetComplete // writes take effect at once
		case ipmi.SetInProgress:
			b.boot.setInProgress = v
		default:
			return ipmi.CCInvalidDataField, nil
		}
	case ipmi.BootParamValidBitClearing:
		if len(req.Data) != 1 {
			return ipmi.CCDataLengthInvalid, nil
		}
		b.boot.validClearing = req.Data[0] & 0x1F
	case ipmi.BootParamBootInfoAck:
		if len(req.Data) != 2 {
			return ipmi.CCDataLengthInvalid, nil
		}
		// Table 28-14 parameter 4: byte 1 is a write mask for byte 2.
		mask := req.Data[0]
		b.boot.infoAck = b.boot.infoAck&^mask | req.Data[1]&mask
	case ipmi.BootParamBootFlags:
		if len(req.Data) != ipmi.BootFlagsLen {
			return ipmi.CCDataLengthInvalid, nil
		}
		if err := b.machine.SetBootFlags([5]byte(req.Data)); err != nil {
			return machineErrorCode(err), nil
		}
		var f ipmi.BootFlags
		_ = f.Unmarshal(req.Data) // length checked above
		b.log.Info("boot flags set", "device", f.Device.String(), "valid", f.Valid, "persistent", f.Persistent, "efi", f.EFI)
	default:
		return ccParamNotSupported, nil
	}
	b.boot.locked[req.Param] = req.MarkInvalid
	return ipmi.CCOK, nil
}

// getSystemBootOptions serves Get System Boot Options (IPMI v2.0 section
// 28.13) for the parameters setSystemBootOptions stores. Parameter 5 reads
// back exactly what was written, valid bit included, until a boot consumes
// a one-time override.
func (b *BMC) getSystemBootOptions(r *request) (ipmi.CompletionCode, []byte) {
	var req ipmi.GetSystemBootOptionsReq
	if cc, ok := decode(r, &req); !ok {
		return cc, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var data []byte
	switch req.Param {
	case ipmi.BootParamSetInProgress:
		data = []byte{b.boot.setInProgress}
	case ipmi.BootParamValidBitClearing:
		data = []byte{b.boot.validClearing}
	case ipmi.BootParamBootInfoAck:
		data = []byte{0x00, b.boot.infoAck} // the write mask reads as 0
	case ipmi.BootParamBootFlags:
		flags := b.machine.BootFlags()
		data = flags[:]
	default:
		return ccParamNotSupported, nil
	}
	rsp := ipmi.GetSystemBootOptionsRsp{
		Version: ipmi.BootOptionsVersion,
		Param:   req.Param,
		Invalid: b.boot.locked[req.Param],
		Data:    data,
	}
	return ipmi.CCOK, rsp.Marshal()
}

// getChannelPayloadSupport answers Get Channel Payload Support (IPMI v2.0
// section 24.8): IPMI and SOL, and the session setup payloads.
func (b *BMC) getChannelPayloadSupport(r *request) (ipmi.CompletionCode, []byte) {
	var req ipmi.GetChannelPayloadSupportReq
	if cc, ok := decode(r, &req); !ok {
		return cc, nil
	}
	if !validChannel(req.Channel) {
		return ipmi.CCInvalidDataField, nil
	}
	rsp := ipmi.GetChannelPayloadSupportRsp{
		Standard: ipmi.PayloadSupportIPMI | ipmi.PayloadSupportSOL,
		// Payload types 0x10-0x15: Open Session request/response, RAKP 1-4.
		SessionSetup: 0x3F,
	}
	return ipmi.CCOK, rsp.Marshal()
}
