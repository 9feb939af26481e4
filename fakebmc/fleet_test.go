package fakebmc

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

const (
	testUser = "admin"
	testPass = "secret"
)

// startTestFleet starts count BMCs on free loopback ports, machines off,
// with short power timings; the fleet closes when the test ends.
func startTestFleet(t *testing.T, count int, mutate ...func(*FleetConfig)) *Fleet {
	t.Helper()
	cfg := FleetConfig{
		Addr:  "127.0.0.1:0",
		Count: count,
		BMC: BMCConfig{
			Users:  []User{{Name: testUser, Password: []byte(testPass)}},
			Timing: PowerTiming{CycleOff: 300 * time.Millisecond, SoftShutdown: 200 * time.Millisecond},
		},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	f, err := StartFleet(t.Context(), cfg)
	if err != nil {
		t.Fatalf("StartFleet: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// dial opens an in-process client session (obmd's own rmcpplus client) to
// BMC i.
func dial(t *testing.T, f *Fleet, i int, mutate ...func(*rmcpplus.ClientConfig)) *rmcpplus.Session {
	t.Helper()
	cfg := rmcpplus.ClientConfig{
		Addr:        f.Addr(i),
		Username:    testUser,
		Password:    []byte(testPass),
		CipherSuite: 17,
		Timeout:     200 * time.Millisecond,
		Retries:     5,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := rmcpplus.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial BMC %d at %s: %v", i, f.Addr(i), err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func do(t *testing.T, s *rmcpplus.Session, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rsp, err := s.Do(ctx, netfn, cmd, data)
	if err != nil {
		t.Fatalf("%s: %v", ipmi.CommandName(netfn, cmd), err)
	}
	return rsp
}

func TestFleetConsecutivePortsAndIndependentBMCs(t *testing.T) {
	f := startTestFleet(t, 4)
	base := f.BMC(0).Addr().Port
	for i := range f.Len() {
		if got := f.BMC(i).Addr().Port; got != base+i {
			t.Fatalf("BMC %d on port %d, want %d", i, got, base+i)
		}
		if f.Addr(i) != "127.0.0.1:"+strconv.Itoa(base+i) {
			t.Fatalf("Addr(%d) = %q", i, f.Addr(i))
		}
	}
	s := dial(t, f, 2)
	do(t, s, ipmi.NetFnChassis, ipmi.CmdChassisControl, []byte{byte(ipmi.PowerUp)})
	do(t, s, ipmi.NetFnChassis, ipmi.CmdSetSystemBootOptions, []byte{0x05, 0xC0, 0x04, 0x00, 0x00, 0x00})
	for i := range f.Len() {
		want := i == 2
		if got := f.BMC(i).PowerOn(); got != want {
			t.Errorf("BMC %d power on = %v, want %v", i, got, want)
		}
		wantDev := ipmi.BootDeviceNone
		if want {
			wantDev = ipmi.BootDevicePXE
		}
		if got := f.BMC(i).BootDevice(); got != wantDev {
			t.Errorf("BMC %d boot device = %v, want %v", i, got, wantDev)
		}
	}
}

func TestStartFleetPortInUse(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.LocalAddr().(*net.UDPAddr).Port
	// Two BMCs ending on the taken port: the first binds, the second
	// cannot, and nothing is left bound.
	addr := "127.0.0.1:" + strconv.Itoa(port-1)
	_, err = StartFleet(t.Context(), FleetConfig{Addr: addr, Count: 2, BMC: BMCConfig{Users: []User{{Name: "a", Password: []byte("b")}}}})
	var inUse *PortInUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("StartFleet on a taken port: %v, want a *PortInUseError", err)
	}
	if want := "127.0.0.1:" + strconv.Itoa(port); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "-addr") {
		t.Errorf("error %q does not name %s and the fix", err, want)
	}
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Errorf("port %s still bound after the failed start: %v", addr, err)
	} else {
		c.Close()
	}
}

func TestStartFleetRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  FleetConfig
		want string
	}{
		{"no user", FleetConfig{Addr: "127.0.0.1:0"}, "no user configured"},
		{"bad console", FleetConfig{Addr: "127.0.0.1:0", BMC: BMCConfig{Users: []User{{Name: "a"}}, Console: "tty"}}, "console mode tty"},
		{"bad loss", FleetConfig{Addr: "127.0.0.1:0", BMC: BMCConfig{Users: []User{{Name: "a"}}, Faults: FaultPlan{Loss: 2}}}, "loss probability 2"},
		{"bad address", FleetConfig{Addr: "localhost", BMC: BMCConfig{Users: []User{{Name: "a"}}}}, "not host:port"},
		{"ports past 65535", FleetConfig{Addr: "127.0.0.1:65535", Count: 2, BMC: BMCConfig{Users: []User{{Name: "a"}}}}, "above 65535"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := StartFleet(t.Context(), tc.cfg)
			if err == nil {
				f.Close()
				t.Fatal("StartFleet accepted a bad configuration")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// garbage returns n seeded random datagrams: pure noise, noise behind a
// valid RMCP header, and RMCP+ session headers with random fields, of
// random lengths, some truncated.
func garbage(seed uint64, n int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 0))
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, rng.IntN(300))
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		switch i % 4 {
		case 1: // RMCP, class IPMI
			b = append([]byte{0x06, 0x00, 0xFF, 0x07}, b...)
		case 2: // RMCP+ header: auth type 6, random payload type and IDs
			b = append([]byte{0x06, 0x00, 0xFF, 0x07, 0x06, byte(rng.UintN(256))}, b...)
		case 3: // IPMI v1.5 session header, session 0, then noise
			b = append([]byte{0x06, 0x00, 0xFF, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(b))}, b...)
		}
		out[i] = b
	}
	return out
}

func fireGarbage(t *testing.T, addr string, seed uint64, n int) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range garbage(seed, n) {
		// A connected UDP socket may report an earlier datagram's ICMP
		// "port unreachable" on a later write: harmless here.
		if _, err := c.Write(d); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatal(err)
		}
	}
}

func TestBMCKeepsServingAfterGarbage(t *testing.T) {
	f := startTestFleet(t, 1)
	s := dial(t, f, 0) // a session open while the garbage arrives
	fireGarbage(t, f.Addr(0), 1, 3000)
	rsp := do(t, s, ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil)
	var id ipmi.GetDeviceIDRsp
	if err := id.Unmarshal(rsp); err != nil || id.ManufacturerID != fakeManufacturerID {
		t.Fatalf("Get Device ID after garbage: %+v, %v", id, err)
	}
	// And a new session still opens.
	s2 := dial(t, f, 0)
	do(t, s2, ipmi.NetFnChassis, ipmi.CmdChassisControl, []byte{byte(ipmi.PowerUp)})
	if !f.BMC(0).PowerOn() {
		t.Fatal("Chassis Control after garbage did not power on")
	}
}

// TestOwnClientThroughFaults runs obmd's own client through faults in both
// directions on both ends: every command must still complete.
func TestOwnClientThroughFaults(t *testing.T) {
	plan := FaultPlan{Loss: 0.1, Dup: 0.1, Reorder: 0.1, Delay: time.Millisecond, Seed: 3}
	f := startTestFleet(t, 1, func(c *FleetConfig) { c.BMC.Faults = plan })
	raw, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := dial(t, f, 0, func(c *rmcpplus.ClientConfig) {
		c.PacketConn = NewFaultyConn(raw, FaultPlan{Loss: 0.1, Dup: 0.1, Reorder: 0.1, Seed: 4})
		c.Retries = 10
	})
	for i := range 20 {
		op := ipmi.PowerUp
		if i%2 == 1 {
			op = ipmi.PowerDown
		}
		do(t, s, ipmi.NetFnChassis, ipmi.CmdChassisControl, []byte{byte(op)})
		rsp := do(t, s, ipmi.NetFnChassis, ipmi.CmdGetChassisStatus, nil)
		var st ipmi.GetChassisStatusRsp
		if err := st.Unmarshal(rsp); err != nil {
			t.Fatal(err)
		}
		if st.PowerOn != (op == ipmi.PowerUp) {
			t.Fatalf("round %d: power on = %v after %v", i, st.PowerOn, op)
		}
	}
}
