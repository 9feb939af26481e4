package bmc

import (
	"context"
	"errors"

	"obmd/ipmi"
)

// Power control is Chassis Control (IPMI v2.0 section 28.3) and power
// status is Get Chassis Status (section 28.2). The BMC answers Chassis
// Control before the power state changes, so none of these wait for it.
//
// Section 28.3 lets a BMC refuse an operation that makes no sense in the
// present power state ("power cycle ... no action if system power is off,
// and the BMC should return 0xD5"); real BMCs differ in which they refuse
// and in whether they answer 0x00 and then do nothing. The operations
// below therefore decide from the power state where it matters, and treat
// 0xD5 for an operation whose goal already holds as success, so power on
// and power off are idempotent on every BMC.

// PowerOn powers the node up (Chassis Control 0x01). Nothing happens to a
// node that is on.
func (c *Client) PowerOn(ctx context.Context) error {
	return c.control(ctx, "power on", ipmi.PowerUp, goalOn)
}

// PowerOff cuts power at once, without an OS shutdown (Chassis Control
// 0x00). Nothing happens to a node that is off.
func (c *Client) PowerOff(ctx context.Context) error {
	return c.control(ctx, "power off", ipmi.PowerDown, goalOff)
}

// SoftOff asks the OS to shut down, by ACPI (Chassis Control 0x05). The
// node may take a while to go off, or ignore the request; callers that
// need it off poll PowerStatus and fall back to PowerOff.
func (c *Client) SoftOff(ctx context.Context) error {
	return c.control(ctx, "soft power off", ipmi.SoftShutdown, goalOff)
}

// Reset is a hard reset (Chassis Control 0x03). A node that is off is
// powered on instead, so that a reset always ends with the node running.
func (c *Client) Reset(ctx context.Context) error {
	return c.restart(ctx, "reset", ipmi.HardReset)
}

// PowerCycle powers the node off and on again (Chassis Control 0x02; the
// BMC keeps it off for at least a second). A node that is off is powered
// on instead: section 28.3 says a BMC takes no action on a power cycle
// while off.
func (c *Client) PowerCycle(ctx context.Context) error {
	return c.restart(ctx, "power cycle", ipmi.PowerCycle)
}

// PowerStatus reports whether system power is on (Get Chassis Status
// response byte 2 bit 0).
func (c *Client) PowerStatus(ctx context.Context) (on bool, err error) {
	data, err := c.run(ctx, "power status", ipmi.NetFnChassis, ipmi.CmdGetChassisStatus, &ipmi.GetChassisStatusReq{})
	if err != nil {
		return false, err
	}
	var rsp ipmi.GetChassisStatusRsp
	if err := rsp.Unmarshal(data); err != nil {
		return false, &OpError{Addr: c.addr, Op: "power status", Err: err}
	}
	return rsp.PowerOn, nil
}

// powerGoal is the power state an operation leaves the node in.
type powerGoal uint8

const (
	goalOn powerGoal = iota + 1
	goalOff
)

// control sends one Chassis Control. If the BMC refuses it as "not
// supported in present state" (0xD5) and the node is already where the
// operation would take it, that is success.
func (c *Client) control(ctx context.Context, op string, ctl ipmi.ChassisControlOp, goal powerGoal) error {
	_, err := c.run(ctx, op, ipmi.NetFnChassis, ipmi.CmdChassisControl, &ipmi.ChassisControlReq{Control: ctl})
	if cc, ok := completionCode(err); !ok || cc != ipmi.CCNotSupportedInState {
		return err
	}
	on, serr := c.PowerStatus(ctx)
	if serr != nil {
		return errors.Join(err, serr)
	}
	if on == (goal == goalOn) {
		return nil
	}
	return err
}

// restart resets or cycles a node that is on and powers on one that is
// off. If the node goes off between the status query and the command, the
// BMC answers 0xD5 and the node is powered on.
func (c *Client) restart(ctx context.Context, op string, ctl ipmi.ChassisControlOp) error {
	on, err := c.PowerStatus(ctx)
	if err != nil {
		return &OpError{Addr: c.addr, Op: op + " (reading the power state first)", Err: errors.Unwrap(err)}
	}
	if !on {
		c.log.Debug("node is off; powering on instead", "op", op)
		return c.control(ctx, op+" (node was off: power on)", ipmi.PowerUp, goalOn)
	}
	_, err = c.run(ctx, op, ipmi.NetFnChassis, ipmi.CmdChassisControl, &ipmi.ChassisControlReq{Control: ctl})
	if cc, ok := completionCode(err); ok && cc == ipmi.CCNotSupportedInState {
		c.log.Debug("BMC refused in present state; powering on", "op", op)
		return c.control(ctx, op+" (refused in present state: power on)", ipmi.PowerUp, goalOn)
	}
	return err
}
