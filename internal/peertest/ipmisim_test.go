package peertest

import (
	"bufio"
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The harness must stand on its own before other packages trust it: these
// tests drive ipmi_sim with ipmitool only (no obmd code) and check that
// what ipmitool asked for reaches the chassis program's state files.

func TestIPMISimPowerWithIpmitool(t *testing.T) {
	t.Parallel()
	for _, suite := range []string{"1", "2", "3"} {
		t.Run("suite"+suite, func(t *testing.T) {
			t.Parallel()
			sim := StartIPMISim(t, IPMISimOptions{})
			ctx := context.Background()
			if sim.Power(t) {
				t.Fatal("power is on before any command; want the default off")
			}
			lanplus := []string{"-I", "lanplus", "-C", suite}

			r := Ipmitool(t, ctx, sim.Target(), append(lanplus, "chassis", "power", "status")...)
			if !r.OK() || !strings.Contains(r.Stdout, "Chassis Power is off") {
				t.Fatalf("status before power on:\n%s", r)
			}
			r = Ipmitool(t, ctx, sim.Target(), append(lanplus, "chassis", "power", "on")...)
			if !r.OK() {
				t.Fatalf("power on:\n%s", r)
			}
			if !sim.Power(t) {
				t.Fatalf("chassis state says off after ipmitool power on; calls %q", sim.ChassisCalls(t))
			}
			r = Ipmitool(t, ctx, sim.Target(), append(lanplus, "chassis", "power", "status")...)
			if !r.OK() || !strings.Contains(r.Stdout, "Chassis Power is on") {
				t.Fatalf("status after power on:\n%s", r)
			}
			if !slices.Contains(sim.ChassisCalls(t), "set power 1") {
				t.Errorf("chassis calls %q lack %q", sim.ChassisCalls(t), "set power 1")
			}
		})
	}
}

func TestIPMISimBootDeviceWithIpmitool(t *testing.T) {
	t.Parallel()
	sim := StartIPMISim(t, IPMISimOptions{})
	ctx := context.Background()
	for _, tc := range []struct{ ipmitoolDev, state string }{
		{"pxe", "pxe"},
		{"disk", "default"}, // "force boot from default hard drive"
		{"cdrom", "cdrom"},
		{"none", "none"},
	} {
		r := Ipmitool(t, ctx, sim.Target(), "-I", "lanplus", "-C", "3", "chassis", "bootdev", tc.ipmitoolDev)
		if !r.OK() {
			t.Fatalf("bootdev %s:\n%s", tc.ipmitoolDev, r)
		}
		if got := sim.BootDevice(t); got != tc.state {
			t.Errorf("after bootdev %s the chassis program holds %q, want %q", tc.ipmitoolDev, got, tc.state)
		}
	}
}

func TestIPMISimPowerChangedBehindTheBMCsBack(t *testing.T) {
	t.Parallel()
	sim := StartIPMISim(t, IPMISimOptions{PowerOn: true})
	ctx := context.Background()
	r := Ipmitool(t, ctx, sim.Target(), "-I", "lanplus", "-C", "3", "chassis", "power", "status")
	if !strings.Contains(r.Stdout, "is on") {
		t.Fatalf("PowerOn option not honoured:\n%s", r)
	}
	sim.SetPower(t, false)
	r = Ipmitool(t, ctx, sim.Target(), "-I", "lanplus", "-C", "3", "chassis", "power", "status")
	if !strings.Contains(r.Stdout, "is off") {
		t.Fatalf("SetPower(false) not seen by the BMC:\n%s", r)
	}
}

func TestIPMISimPowerCycleTurnsOnLater(t *testing.T) {
	t.Parallel()
	sim := StartIPMISim(t, IPMISimOptions{PowerOn: true})
	r := Ipmitool(t, context.Background(), sim.Target(), "-I", "lanplus", "-C", "3", "chassis", "power", "cycle")
	if !r.OK() {
		t.Fatalf("power cycle:\n%s", r)
	}
	sim.AwaitPower(t, true, 5*time.Second)
	calls := sim.ChassisCalls(t)
	off := slices.Index(calls, "set power 0")
	on := slices.Index(calls, "set power 1")
	if off < 0 || on < off {
		t.Errorf("chassis calls %q: want set power 0 then set power 1", calls)
	}
}

func TestIPMISimWrongPasswordFails(t *testing.T) {
	t.Parallel()
	sim := StartIPMISim(t, IPMISimOptions{})
	tg := sim.Target()
	tg.Password = "not-the-password"
	r := Ipmitool(t, context.Background(), tg, "-I", "lanplus", "-C", "3", "-N", "1", "-R", "1", "chassis", "power", "status")
	if r.OK() || !strings.Contains(r.Stderr, "Unable to establish IPMI v2 / RMCP+ session") {
		t.Fatalf("wrong password accepted or unexpected error:\n%s", r)
	}
	for _, a := range r.Args {
		if strings.Contains(a, tg.Password) {
			t.Fatalf("password in argv: %q", r.Args)
		}
	}
}

func TestIPMISimSOLHost(t *testing.T) {
	t.Parallel()
	sim := StartIPMISim(t, IPMISimOptions{SOL: true})
	host := sim.SOLHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cmd := IpmitoolCommand(t, ctx, sim.Target(), "-I", "lanplus", "-C", "3", "sol", "activate")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	readUntil(t, out, "SOL Session operational")

	// Client to host.
	if _, err := io.WriteString(stdin, "ping\r"); err != nil {
		t.Fatal(err)
	}
	_ = host.SetReadDeadline(time.Now().Add(10 * time.Second))
	readUntil(t, bufio.NewReader(host), "ping\r")

	// Host to client.
	if _, err := io.WriteString(host, "pong from host\r\n"); err != nil {
		t.Fatal(err)
	}
	readUntil(t, out, "pong from host")

	stdin.Close() // EOF: ipmitool deactivates the payload and exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ipmitool sol activate: %v", err)
	}
}

// readUntil reads r until want has been seen, failing on EOF or error.
func readUntil(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	var seen strings.Builder
	for !strings.Contains(seen.String(), want) {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("waiting for %q: %v; got so far %q", want, err, seen.String())
		}
		seen.WriteByte(b)
	}
}

func TestCapturesParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(CaptureDir(), "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures in %s (err %v)", CaptureDir(), err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			d := Capture(t, name)
			if len(d) < 2 || !d[0].FromClient {
				t.Fatalf("want at least a request and an answer, client first; got %d datagrams", len(d))
			}
			for i, g := range d {
				// RMCP header, IPMI v2.0 section 13.1.3: version 6, reserved, seq 0xFF.
				if len(g.Bytes) < 4 || g.Bytes[0] != 0x06 || g.Bytes[2] != 0xff {
					t.Errorf("datagram %d is not RMCP: % x", i, g.Bytes)
				}
			}
		})
	}
}

func TestParseCaptureRejectsMalformedLines(t *testing.T) {
	for name, text := range map[string]string{
		"unknown direction": "x2y 0600ff07\n",
		"odd hex":           "c2b 0600ff0\n",
		"no hex":            "c2b\n",
	} {
		if _, err := ParseCapture(text); err == nil {
			t.Errorf("%s: ParseCapture(%q) accepted it", name, text)
		}
	}
	d, err := ParseCapture("c2b 0600\nb2c ff07\n")
	if err != nil || len(d) != 2 || !d[0].FromClient || d[1].FromClient || d[1].Bytes[1] != 0x07 {
		t.Errorf("ParseCapture of a valid text = %+v, %v", d, err)
	}
}
