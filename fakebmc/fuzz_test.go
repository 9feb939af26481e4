package fakebmc

import (
	"testing"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// FuzzDispatch feeds arbitrary requests through the command table, the
// fakebmc code that decodes what a client sends. Seeds are requests real
// clients send (see handlers_test.go). No input may panic, and every
// answer must be a completion code a client can read.
func FuzzDispatch(f *testing.F) {
	seeds := []struct {
		netfn ipmi.NetFn
		cmd   ipmi.Command
		data  []byte
	}{
		{ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil},
		{ipmi.NetFnChassis, ipmi.CmdGetChassisStatus, nil},
		{ipmi.NetFnChassis, ipmi.CmdChassisControl, []byte{0x02}},
		{ipmi.NetFnChassis, ipmi.CmdSetSystemBootOptions, []byte{0x05, 0x80, 0x04, 0x00, 0x00, 0x00}},
		{ipmi.NetFnChassis, ipmi.CmdSetSystemBootOptions, []byte{0x04, 0x01, 0x01}},
		{ipmi.NetFnChassis, ipmi.CmdGetSystemBootOptions, []byte{0x05, 0x00, 0x00}},
		{ipmi.NetFnApp, ipmi.CmdActivatePayload, ipmitoolActivateSOL},
		{ipmi.NetFnApp, ipmi.CmdDeactivatePayload, ipmitoolDeactivateSOL},
		{ipmi.NetFnApp, ipmi.CmdGetPayloadActivationStatus, []byte{0x01}},
		{ipmi.NetFnApp, ipmi.CmdGetChannelPayloadSupport, []byte{0x0E}},
		{ipmi.NetFnTransport, ipmi.CmdGetSOLConfigParams, []byte{0x0E, 0x08, 0x00, 0x00}},
		{ipmi.NetFnTransport, ipmi.CmdSetSOLConfigParams, []byte{0x0E, 0x03, 0x0C, 0x60}},
		{ipmi.NetFnGroupExt, 0x3E, []byte{0x00}},
	}
	for _, s := range seeds {
		f.Add(uint8(s.netfn), uint8(s.cmd), uint8(ipmi.PrivilegeAdministrator), s.data)
	}
	f.Fuzz(func(t *testing.T, netfn, cmd, priv uint8, data []byte) {
		b := newTestBMC(t)
		s := newTestSession(1, "admin", ipmi.PrivilegeLevel(priv&7))
		req := ipmi.NewRequest(ipmi.NetFn(netfn&0x3E), ipmi.Command(cmd), 1, data)
		cc, rsp := b.dispatch(s, req)
		if cc != ipmi.CCOK && len(rsp) != 0 {
			t.Fatalf("completion code %v with %d data bytes: a failed command answers with the code alone", cc, len(rsp))
		}
	})
}

// FuzzSOLPayload feeds arbitrary SOL payloads to an active SOL instance in
// echo mode: the BMC must neither panic nor type anything a packet did not
// carry.
func FuzzSOLPayload(f *testing.F) {
	f.Add([]byte{0x01, 0x00, 0x00, 0x00, 'h', 'i'}) // seq 1, data "hi"
	f.Add([]byte{0x00, 0x01, 0x05, 0x00})           // ACK-only
	f.Add([]byte{0x02, 0x01, 0x00, 0x40})           // NACK
	f.Add([]byte{0x03, 0x00, 0x00, 0x10})           // generate break
	f.Add([]byte{0x01})
	f.Fuzz(func(t *testing.T, payload []byte) {
		b := newTestBMC(t, func(c *BMCConfig) { c.Console = ConsoleEcho })
		s := newTestSession(1, "admin", ipmi.PrivilegeAdministrator)
		if cc, _ := b.dispatch(s, ipmi.NewRequest(ipmi.NetFnApp, ipmi.CmdActivatePayload, 1, ipmitoolActivateSOL)); cc != ipmi.CCOK {
			t.Fatalf("Activate Payload: %v", cc)
		}
		s.handler(rmcpplus.PayloadSOL)(payload)
		if got := len(b.HostInput()); got > max(len(payload)-4, 0) {
			t.Fatalf("host received %d bytes from a %d-byte payload", got, len(payload))
		}
	})
}

// FuzzCounterStreamSkip checks the constant-time Skip against reading and
// discarding, for arbitrary positions.
func FuzzCounterStreamSkip(f *testing.F) {
	f.Add(uint32(0), uint32(20))
	f.Add(uint32(17), uint32(10))
	f.Add(uint32(3), uint32(4000))
	f.Fuzz(func(t *testing.T, pre, skip uint32) {
		pre, skip = pre%100000, skip%100000
		a, b := newCounterStream(), newCounterStream()
		a.Read(make([]byte, pre))
		b.Read(make([]byte, pre))
		a.Skip(uint64(skip))
		b.Read(make([]byte, skip))
		x, y := make([]byte, 32), make([]byte, 32)
		a.Read(x)
		b.Read(y)
		if string(x) != string(y) {
			t.Fatalf("pre %d skip %d: Skip gives %q, Read gives %q", pre, skip, x, y)
		}
	})
}
