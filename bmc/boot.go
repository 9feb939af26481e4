package bmc

import (
	"context"
	"fmt"

	"obmd/ipmi"
)

// The boot device is boot option parameter 5, the boot flags (IPMI v2.0
// section 28.12 Set System Boot Options, section 28.13 Get System Boot
// Options, Table 28-14).

// SetBootDevice writes the boot flags with the valid bit set, the device,
// and the persistent bit ("all future boots" instead of "next boot only").
// BootDeviceNone means no override: the BIOS boot order. The other flags
// (legacy BIOS boot, no lock-outs, default verbosity and console
// redirection) are zero, as ipmitool's "chassis bootdev" writes them.
//
// Only parameter 5 is written: the set-in-progress handshake (parameter 0)
// is optional in the specification and some BMCs (ipmi_sim) refuse it.
func (c *Client) SetBootDevice(ctx context.Context, dev ipmi.BootDevice, persistent bool) error {
	op := fmt.Sprintf("set boot device %v", dev)
	if persistent {
		op += " (persistent)"
	}
	if _, err := ipmi.ParseBootDevice(dev.String()); err != nil {
		return &OpError{Addr: c.addr, Op: op, Err: fmt.Errorf("boot device selector 0x%X is reserved", uint8(dev))}
	}
	flags := ipmi.BootFlags{Valid: true, Persistent: persistent, Device: dev}
	req := &ipmi.SetSystemBootOptionsReq{Param: ipmi.BootParamBootFlags, Data: flags.Marshal()}
	_, err := c.run(ctx, op, ipmi.NetFnChassis, ipmi.CmdSetSystemBootOptions, req)
	return err
}

// BootDevice reads the boot flags back. valid is the flags' valid bit: a
// BIOS ignores the device when it is clear (and some BMCs, ipmi_sim among
// them, always report it clear).
func (c *Client) BootDevice(ctx context.Context) (dev ipmi.BootDevice, valid bool, err error) {
	const op = "get boot device"
	req := &ipmi.GetSystemBootOptionsReq{Param: ipmi.BootParamBootFlags}
	data, err := c.run(ctx, op, ipmi.NetFnChassis, ipmi.CmdGetSystemBootOptions, req)
	if err != nil {
		return 0, false, err
	}
	var rsp ipmi.GetSystemBootOptionsRsp
	if err := rsp.Unmarshal(data); err != nil {
		return 0, false, &OpError{Addr: c.addr, Op: op, Err: err}
	}
	if rsp.Param != ipmi.BootParamBootFlags {
		return 0, false, &OpError{Addr: c.addr, Op: op, Err: fmt.Errorf("BMC answered with boot option parameter %d, not 5", rsp.Param)}
	}
	var flags ipmi.BootFlags
	if err := flags.Unmarshal(rsp.Data); err != nil {
		return 0, false, &OpError{Addr: c.addr, Op: op, Err: err}
	}
	return flags.Device, flags.Valid, nil
}
