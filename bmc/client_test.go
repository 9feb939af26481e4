package bmc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"obmd/internal/peertest"
	"obmd/ipmi"
	"obmd/rmcpplus"
)

// Unit tests of the operations' logic, with the session replaced by a
// scripted one. The golden requests and answers come from ipmitool talking
// to ipmi_sim in plaintext IPMI v1.5 (testdata/captures/lan15_none_*): a
// replayed capture answers only a request byte-for-byte equal to the one
// ipmitool sent, so these tests also pin our requests to a real client's.

// exchange is one request and the answer data after the completion code.
type exchange struct {
	netfn ipmi.NetFn
	cmd   ipmi.Command
	req   []byte
	cc    ipmi.CompletionCode
	rsp   []byte
}

func (e exchange) String() string {
	return fmt.Sprintf("%s [% x]", ipmi.CommandName(e.netfn, e.cmd), e.req)
}

// captured extracts the IPMI exchanges of plaintext v1.5 captures: each
// request paired with the next response of the same command and rqSeq.
// IPMI v2.0 section 13.6 (v1.5 session header, auth type none: no auth
// code field) and section 13.8 (message format).
func captured(t *testing.T, names ...string) []exchange {
	t.Helper()
	var out []exchange
	for _, name := range names {
		pending := map[[2]uint8]*ipmi.Message{}
		for i, d := range peertest.Capture(t, name) {
			b := d.Bytes
			if b[3] != rmcpplus.ClassIPMI {
				continue // ASF ping/pong
			}
			if b[4] != rmcpplus.AuthTypeNone || len(b) < 14 || len(b) < 14+int(b[13]) {
				t.Fatalf("%s datagram %d: not a plaintext IPMI v1.5 packet: % x", name, i, b)
			}
			m, err := ipmi.ParseMessage(b[14 : 14+int(b[13])])
			if err != nil {
				t.Fatalf("%s datagram %d: %v", name, i, err)
			}
			key := [2]uint8{m.Seq, uint8(m.Cmd)}
			if d.FromClient {
				pending[key] = m
				continue
			}
			req := pending[key]
			if req == nil || len(m.Data) == 0 {
				t.Fatalf("%s datagram %d: response without request", name, i)
			}
			delete(pending, key)
			out = append(out, exchange{netfn: req.NetFn, cmd: req.Cmd, req: req.Data, cc: ipmi.CompletionCode(m.Data[0]), rsp: m.Data[1:]})
		}
	}
	return out
}

// fakeBMC answers from a script: the first unused exchange whose request
// matches, in order. It records every request.
type fakeBMC struct {
	t      *testing.T
	mu     sync.Mutex
	script []exchange
	used   []bool
	sent   []exchange
	err    error // returned for every request when set
}

func newFakeBMC(t *testing.T, script ...exchange) *fakeBMC {
	return &fakeBMC{t: t, script: script, used: make([]bool, len(script))}
}

func (f *fakeBMC) client() *Client {
	c := &Client{addr: "192.0.2.7:623", log: slog.New(slog.DiscardHandler)}
	c.do = f.do
	return c
}

func (f *fakeBMC) do(ctx context.Context, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	got := exchange{netfn: netfn, cmd: cmd, req: append([]byte(nil), data...)}
	f.sent = append(f.sent, got)
	if f.err != nil {
		return nil, f.err
	}
	for i, e := range f.script {
		if !f.used[i] && e.netfn == netfn && e.cmd == cmd && bytes.Equal(e.req, data) {
			f.used[i] = true
			if e.cc != ipmi.CCOK {
				return nil, &ipmi.CompletionError{NetFn: netfn, Cmd: cmd, Code: e.cc}
			}
			return e.rsp, nil
		}
	}
	f.t.Errorf("request not in the script (a real client sends other bytes): %v", got)
	return nil, errors.New("fake BMC: unexpected request")
}

// requests lists the commands sent, for order assertions.
func (f *fakeBMC) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.sent {
		out = append(out, e.String())
	}
	return out
}

// find returns the captured exchange for a command and request.
func find(t *testing.T, xs []exchange, netfn ipmi.NetFn, cmd ipmi.Command, req []byte) exchange {
	t.Helper()
	for _, x := range xs {
		if x.netfn == netfn && x.cmd == cmd && bytes.Equal(x.req, req) {
			return x
		}
	}
	t.Fatalf("capture has no %s [% x]", ipmi.CommandName(netfn, cmd), req)
	return exchange{}
}

// chassisStatus is the captured Get Chassis Status exchange.
func chassisStatus(x []exchange, t *testing.T) exchange {
	t.Helper()
	return find(t, x, ipmi.NetFnChassis, ipmi.CmdGetChassisStatus, nil)
}

var (
	statusOn  = exchange{netfn: ipmi.NetFnChassis, cmd: ipmi.CmdGetChassisStatus, rsp: []byte{0x01, 0x00, 0x00}}
	statusOff = exchange{netfn: ipmi.NetFnChassis, cmd: ipmi.CmdGetChassisStatus, rsp: []byte{0x00, 0x00, 0x00}}
)

func control(op ipmi.ChassisControlOp, cc ipmi.CompletionCode) exchange {
	return exchange{netfn: ipmi.NetFnChassis, cmd: ipmi.CmdChassisControl, req: []byte{byte(op)}, cc: cc}
}

func TestPowerRequestsMatchIpmitool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		capture string
		call    func(*Client, context.Context) error
		ctl     ipmi.ChassisControlOp
	}{
		{"lan15_none_power_on", (*Client).PowerOn, ipmi.PowerUp},
		{"lan15_none_power_off", (*Client).PowerOff, ipmi.PowerDown},
		{"lan15_none_power_soft", (*Client).SoftOff, ipmi.SoftShutdown},
	} {
		t.Run(tc.capture, func(t *testing.T) {
			t.Parallel()
			x := captured(t, tc.capture)
			want := find(t, x, ipmi.NetFnChassis, ipmi.CmdChassisControl, []byte{byte(tc.ctl)})
			f := newFakeBMC(t, want)
			if err := tc.call(f.client(), context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := f.requests(); len(got) != 1 {
				t.Errorf("sent %q, want exactly the one Chassis Control", got)
			}
		})
	}
}

func TestRestartOfARunningNode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		capture string
		call    func(*Client, context.Context) error
		ctl     ipmi.ChassisControlOp
	}{
		{"lan15_none_power_cycle", (*Client).PowerCycle, ipmi.PowerCycle},
		{"lan15_none_power_reset", (*Client).Reset, ipmi.HardReset},
	} {
		t.Run(tc.capture, func(t *testing.T) {
			t.Parallel()
			x := captured(t, "lan15_none_power_status", tc.capture)
			f := newFakeBMC(t, chassisStatus(x, t), find(t, x, ipmi.NetFnChassis, ipmi.CmdChassisControl, []byte{byte(tc.ctl)}))
			if err := tc.call(f.client(), context.Background()); err != nil {
				t.Fatal(err)
			}
			want := []string{"Get Chassis Status []", fmt.Sprintf("Chassis Control [%02x]", byte(tc.ctl))}
			if got := f.requests(); !slices.Equal(got, want) {
				t.Errorf("sent %q, want %q", got, want)
			}
		})
	}
}

func TestRestartOfANodeThatIsOffPowersItOn(t *testing.T) {
	t.Parallel()
	for name, call := range map[string]func(*Client, context.Context) error{
		"power cycle": (*Client).PowerCycle,
		"reset":       (*Client).Reset,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeBMC(t, statusOff, control(ipmi.PowerUp, ipmi.CCOK))
			if err := call(f.client(), context.Background()); err != nil {
				t.Fatal(err)
			}
			want := []string{"Get Chassis Status []", "Chassis Control [01]"}
			if got := f.requests(); !slices.Equal(got, want) {
				t.Errorf("sent %q, want %q", got, want)
			}
		})
	}
}

func TestPowerCycleRefusedBecauseTheNodeWentOff(t *testing.T) {
	t.Parallel()
	// IPMI v2.0 section 28.3: a BMC answers 0xD5 to a power cycle while off.
	f := newFakeBMC(t, statusOn, control(ipmi.PowerCycle, ipmi.CCNotSupportedInState), control(ipmi.PowerUp, ipmi.CCOK))
	if err := f.client().PowerCycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"Get Chassis Status []", "Chassis Control [02]", "Chassis Control [01]"}
	if got := f.requests(); !slices.Equal(got, want) {
		t.Errorf("sent %q, want %q", got, want)
	}
}

func TestRefusedInPresentState(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		call    func(*Client, context.Context) error
		ctl     ipmi.ChassisControlOp
		status  exchange
		wantErr string // "" = success
	}{
		{"power off while off is done", (*Client).PowerOff, ipmi.PowerDown, statusOff, ""},
		{"power on while on is done", (*Client).PowerOn, ipmi.PowerUp, statusOn, ""},
		{"soft off while off is done", (*Client).SoftOff, ipmi.SoftShutdown, statusOff, ""},
		{"power on refused while off is an error", (*Client).PowerOn, ipmi.PowerUp, statusOff,
			"bmc 192.0.2.7:623: power on: Chassis Control: 0xD5 command not supported in present state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeBMC(t, control(tc.ctl, ipmi.CCNotSupportedInState), tc.status)
			err := tc.call(f.client(), context.Background())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v, want success", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestPowerStatusDecodesIpmiSim(t *testing.T) {
	t.Parallel()
	x := captured(t, "lan15_none_power_status")
	on, err := newFakeBMC(t, chassisStatus(x, t)).client().PowerStatus(context.Background())
	if err != nil || !on {
		t.Fatalf("PowerStatus = %v, %v; ipmi_sim said on", on, err)
	}
	on, err = newFakeBMC(t, statusOff).client().PowerStatus(context.Background())
	if err != nil || on {
		t.Fatalf("PowerStatus = %v, %v; want off", on, err)
	}
}

func TestSetBootDeviceMatchesIpmitool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		capture    string
		dev        ipmi.BootDevice
		persistent bool
		data       []byte // parameter 5 as ipmitool sent it
	}{
		{"lan15_none_bootdev_pxe_persistent", ipmi.BootDevicePXE, true, []byte{0x05, 0xc0, 0x04, 0, 0, 0}},
		{"lan15_none_bootdev_disk", ipmi.BootDeviceDisk, false, []byte{0x05, 0x80, 0x08, 0, 0, 0}},
	} {
		t.Run(tc.capture, func(t *testing.T) {
			t.Parallel()
			x := captured(t, tc.capture)
			f := newFakeBMC(t, find(t, x, ipmi.NetFnChassis, ipmi.CmdSetSystemBootOptions, tc.data))
			if err := f.client().SetBootDevice(context.Background(), tc.dev, tc.persistent); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSetBootDeviceRejectsReservedSelector(t *testing.T) {
	t.Parallel()
	f := newFakeBMC(t)
	err := f.client().SetBootDevice(context.Background(), ipmi.BootDevice(0x0A), true)
	if err == nil || !strings.Contains(err.Error(), "boot device selector 0xA is reserved") {
		t.Fatalf("got %v", err)
	}
	if len(f.requests()) != 0 {
		t.Errorf("sent %q for a reserved device", f.requests())
	}
}

func TestBootDeviceReadBackFromIpmiSim(t *testing.T) {
	t.Parallel()
	// ipmi_sim answers [01 05 00 08 00 00 00]: disk, valid bit clear.
	x := captured(t, "lan15_none_bootparam_get5")
	f := newFakeBMC(t, find(t, x, ipmi.NetFnChassis, ipmi.CmdGetSystemBootOptions, []byte{0x05, 0x00, 0x00}))
	dev, valid, err := f.client().BootDevice(context.Background())
	if err != nil || dev != ipmi.BootDeviceDisk || valid {
		t.Fatalf("BootDevice = %v, %v, %v; want disk, not valid", dev, valid, err)
	}
}

func TestBootDeviceReadBackValidPersistent(t *testing.T) {
	t.Parallel()
	f := newFakeBMC(t, exchange{netfn: ipmi.NetFnChassis, cmd: ipmi.CmdGetSystemBootOptions, req: []byte{5, 0, 0},
		rsp: []byte{0x01, 0x05, 0xc0, 0x04, 0, 0, 0}})
	dev, valid, err := f.client().BootDevice(context.Background())
	if err != nil || dev != ipmi.BootDevicePXE || !valid {
		t.Fatalf("BootDevice = %v, %v, %v; want pxe, valid", dev, valid, err)
	}
}

func TestBootDeviceReadBackErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, want string
		rsp        []byte
	}{
		{"short flags", "boot flags (boot option parameter 5)", []byte{0x01, 0x05, 0x80}},
		{"other parameter", "boot option parameter 4, not 5", []byte{0x01, 0x04, 0, 0, 0, 0, 0}},
		{"no parameter byte", "Get System Boot Options response", []byte{0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeBMC(t, exchange{netfn: ipmi.NetFnChassis, cmd: ipmi.CmdGetSystemBootOptions, req: []byte{5, 0, 0}, rsp: tc.rsp})
			_, _, err := f.client().BootDevice(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "bmc 192.0.2.7:623: get boot device: ") {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestErrorsKeepTheirCause(t *testing.T) {
	t.Parallel()
	f := newFakeBMC(t)
	f.err = fmt.Errorf("session: %w", rmcpplus.ErrTimeout)
	err := f.client().PowerOn(context.Background())
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("errors.Is(%v, ErrTimeout) = false", err)
	}
	var op *OpError
	if !errors.As(err, &op) || op.Op != "power on" || op.Addr != "192.0.2.7:623" {
		t.Fatalf("got %#v", err)
	}
	err = f.client().PowerCycle(context.Background())
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "power cycle (reading the power state first)") {
		t.Fatalf("got %v", err)
	}
}
