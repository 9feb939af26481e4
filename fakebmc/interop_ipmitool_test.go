package fakebmc

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"obmd/ipmi"
)

// Interop tests against ipmitool 1.8.19 (Debian package ipmitool): the real
// tool, as a subprocess, against BMCs served in-process. The password
// travels in IPMI_PASSWORD (ipmitool -E), never in argv.

const toolTimeout = 20 * time.Second

func needIpmitool(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ipmitool"); err != nil {
		t.Skip("ipmitool not installed: apt-get install ipmitool")
	}
}

// ipmitoolCmd builds an ipmitool -I lanplus command for addr; suite < 0
// leaves -C out (ipmitool then asks the BMC for its cipher suites).
func ipmitoolCmd(ctx context.Context, addr string, suite int, password string, args ...string) *exec.Cmd {
	host, port, _ := net.SplitHostPort(addr)
	argv := []string{"-I", "lanplus", "-H", host, "-p", port, "-U", testUser, "-E"}
	if suite >= 0 {
		argv = append(argv, "-C", strconv.Itoa(suite))
	}
	cmd := exec.CommandContext(ctx, "ipmitool", append(argv, args...)...)
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+password)
	return cmd
}

// ipmitool runs one ipmitool command and returns its combined output.
func ipmitool(t *testing.T, addr string, suite int, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), toolTimeout)
	defer cancel()
	out, err := ipmitoolCmd(ctx, addr, suite, testPass, args...).CombinedOutput()
	return string(out), err
}

// mustIpmitool runs ipmitool and fails the test unless it succeeds and
// prints want.
func mustIpmitool(t *testing.T, addr string, suite int, want string, args ...string) string {
	t.Helper()
	out, err := ipmitool(t, addr, suite, args...)
	if err != nil {
		t.Fatalf("ipmitool -C %d %s: %v\n%s", suite, strings.Join(args, " "), err, out)
	}
	if !strings.Contains(out, want) {
		t.Fatalf("ipmitool -C %d %s printed:\n%s\nwant it to contain %q", suite, strings.Join(args, " "), out, want)
	}
	return out
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var suites = []int{1, 2, 3, 17}

func TestIpmitoolMcInfo(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, len(suites))
	for i, suite := range suites {
		t.Run("C"+strconv.Itoa(suite), func(t *testing.T) {
			t.Parallel()
			out := mustIpmitool(t, f.Addr(i), suite, "Manufacturer ID           : 32473", "mc", "info")
			for _, want := range []string{"IPMI Version              : 2.0", "Firmware Revision         : 1.00", "Chassis Device"} {
				if !strings.Contains(out, want) {
					t.Errorf("mc info lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestIpmitoolChassisPower(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, len(suites))
	for i, suite := range suites {
		t.Run("C"+strconv.Itoa(suite), func(t *testing.T) {
			t.Parallel()
			addr, b := f.Addr(i), f.BMC(i)
			sim := b.Sim()
			mustIpmitool(t, addr, suite, "Chassis Power is off", "chassis", "power", "status")

			mustIpmitool(t, addr, suite, "Chassis Power Control: Up/On", "chassis", "power", "on")
			if !b.PowerOn() {
				t.Fatal("machine off after chassis power on")
			}
			mustIpmitool(t, addr, suite, "Chassis Power is on", "chassis", "power", "status")

			mustIpmitool(t, addr, suite, "Chassis Power Control: Down/Off", "chassis", "power", "off")
			if b.PowerOn() {
				t.Fatal("machine on after chassis power off")
			}

			mustIpmitool(t, addr, suite, "Chassis Power Control: Up/On", "chassis", "power", "on")
			boots := len(sim.Boots())
			mustIpmitool(t, addr, suite, "Chassis Power Control: Cycle", "chassis", "power", "cycle")
			if err := sim.WaitPower(waitCtx(t), true); err != nil {
				t.Fatal(err)
			}
			if got := len(sim.Boots()); got != boots+1 {
				t.Fatalf("boots after cycle = %d, want %d", got, boots+1)
			}

			mustIpmitool(t, addr, suite, "Chassis Power Control: Reset", "chassis", "power", "reset")
			if got := len(sim.Boots()); got != boots+2 || !b.PowerOn() {
				t.Fatalf("after reset: boots %d (want %d), on %v", got, boots+2, b.PowerOn())
			}

			mustIpmitool(t, addr, suite, "Chassis Power Control: Diag", "chassis", "power", "diag")
			if sim.DiagInterrupts() != 1 {
				t.Fatalf("diag interrupts = %d, want 1", sim.DiagInterrupts())
			}

			mustIpmitool(t, addr, suite, "Chassis Power Control: Soft", "chassis", "power", "soft")
			if err := sim.WaitPower(waitCtx(t), false); err != nil {
				t.Fatal(err)
			}
			out := mustIpmitool(t, addr, suite, "System Power         : off", "chassis", "status")
			if !strings.Contains(out, "Last Power Event     : command") {
				t.Errorf("chassis status lacks the last power event:\n%s", out)
			}
		})
	}
}

func TestIpmitoolBootdev(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 2)
	cases := []struct {
		dev      string
		options  string
		want     ipmi.BootDevice
		selector string // ipmitool's words for the device in bootparam get 5
		persist  bool
		efi      bool
	}{
		{"pxe", "", ipmi.BootDevicePXE, "Force PXE", false, false},
		{"disk", "", ipmi.BootDeviceDisk, "Force Boot from default Hard-Drive", false, false},
		{"none", "", ipmi.BootDeviceNone, "No override", false, false},
		{"pxe", "options=persistent", ipmi.BootDevicePXE, "Force PXE", true, false},
		{"disk", "options=persistent,efiboot", ipmi.BootDeviceDisk, "Force Boot from default Hard-Drive", true, true},
	}
	for i, suite := range []int{3, 17} {
		t.Run("C"+strconv.Itoa(suite), func(t *testing.T) {
			t.Parallel()
			addr, b := f.Addr(i), f.BMC(i)
			for _, tc := range cases {
				args := []string{"chassis", "bootdev", tc.dev}
				if tc.options != "" {
					args = append(args, tc.options)
				}
				mustIpmitool(t, addr, suite, "Set Boot Device to "+tc.dev, args...)
				flags := b.BootFlags()
				if flags.Device != tc.want || !flags.Valid || flags.Persistent != tc.persist || flags.EFI != tc.efi {
					t.Fatalf("bootdev %s %s: machine flags %+v", tc.dev, tc.options, flags)
				}
				out := mustIpmitool(t, addr, suite, "Boot Device Selector : "+tc.selector, "chassis", "bootparam", "get", "5")
				for _, want := range []string{"Boot parameter 5 is valid/unlocked", "- Boot Flag Valid"} {
					if !strings.Contains(out, want) {
						t.Fatalf("bootparam get 5 after bootdev %s lacks %q:\n%s", tc.dev, want, out)
					}
				}
				persistence := "Options apply to only next boot"
				if tc.persist {
					persistence = "Options apply to all future boots"
				}
				if !strings.Contains(out, persistence) {
					t.Fatalf("bootparam get 5 after bootdev %s %s lacks %q:\n%s", tc.dev, tc.options, persistence, out)
				}
			}
		})
	}
}

func TestIpmitoolWithoutCipherSuiteIsQuick(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1)
	start := time.Now()
	mustIpmitool(t, f.Addr(0), -1, "Chassis Power is off", "chassis", "power", "status")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ipmitool without -C took %v, want < 2 s (Get Channel Cipher Suites must be answered)", d)
	}
}

func TestIpmitoolWrongPasswordFailsQuickly(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1)
	for _, suite := range []int{3, 17} {
		ctx, cancel := context.WithTimeout(t.Context(), toolTimeout)
		start := time.Now()
		out, err := ipmitoolCmd(ctx, f.Addr(0), suite, "wrong", "chassis", "power", "on").CombinedOutput()
		d := time.Since(start)
		cancel()
		if err == nil {
			t.Fatalf("-C %d: wrong password accepted:\n%s", suite, out)
		}
		// Against a BMC that did not answer RAKP 2, ipmitool would retry for
		// ~20 s; 3 s leaves a loaded 2-core machine room for the process.
		if d > 3*time.Second {
			t.Errorf("-C %d: wrong password took %v to fail, want < 3 s", suite, d)
		}
		if !strings.Contains(string(out), "Unable to establish IPMI v2 / RMCP+ session") {
			t.Errorf("-C %d: unexpected failure output:\n%s", suite, out)
		}
	}
	if f.BMC(0).PowerOn() {
		t.Error("a wrong password powered the machine on")
	}
}

func TestIpmitoolUserPrivilegeCannotControlChassis(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1)
	mustIpmitool(t, f.Addr(0), 17, "Chassis Power is off", "-L", "USER", "chassis", "power", "status")
	out, err := ipmitool(t, f.Addr(0), 17, "-L", "USER", "chassis", "power", "on")
	if err == nil || !strings.Contains(out, "Insufficient privilege level") {
		t.Fatalf("chassis power on at USER privilege: err %v, output:\n%s", err, out)
	}
	if f.BMC(0).PowerOn() {
		t.Fatal("a USER session powered the machine on")
	}
	mustIpmitool(t, f.Addr(0), 17, "Chassis Power Control: Up/On", "-L", "OPERATOR", "chassis", "power", "on")
}

func TestIpmitoolSOLInfo(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1)
	out := mustIpmitool(t, f.Addr(0), 17, "Enabled                         : true", "sol", "info")
	port := strconv.Itoa(f.BMC(0).Addr().Port)
	for _, want := range []string{
		"Set in progress                 : set-complete",
		"Privilege Level                 : USER",
		"Volatile Bit Rate (kbps)        : 115.2",
		"Payload Channel                 : 1 (0x01)",
		"Payload Port                    : " + port,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("sol info lacks %q:\n%s", want, out)
		}
	}
}

// solProcess is a running `ipmitool sol activate` fed from a pipe.
type solProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // stdout, line by line ('\r' and '\n' end lines)
	done  chan error

	mu  sync.Mutex
	all strings.Builder
}

func startSOL(t *testing.T, addr string, suite int) *solProcess {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), toolTimeout)
	t.Cleanup(cancel)
	cmd := ipmitoolCmd(ctx, addr, suite, testPass, "sol", "activate")
	if path, err := exec.LookPath("stdbuf"); err == nil {
		// ipmitool's stdout is a pipe here: ask for it unbuffered.
		cmd.Args = append([]string{path, "-o0"}, cmd.Args...)
		cmd.Path = path
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &solProcess{cmd: cmd, stdin: stdin, lines: make(chan string, 1<<16), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Split(scanTerminalLines)
		for sc.Scan() {
			p.mu.Lock()
			p.all.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default: // the test stopped reading; keep draining
			}
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})
	return p
}

// scanTerminalLines splits at '\n' or '\r'.
func scanTerminalLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, c := range data {
		if c == '\n' || c == '\r' {
			return i + 1, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// waitLine reads lines until one contains want.
func (p *solProcess) waitLine(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("ipmitool ended before printing %q:\n%s", want, p.output())
			}
			if strings.Contains(l, want) {
				return
			}
		case <-timeout:
			t.Fatalf("ipmitool did not print %q within 10 s:\n%s", want, p.output())
		}
	}
}

func (p *solProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.all.String()
}

// quit types the escape sequence and waits for ipmitool to exit cleanly.
func (p *solProcess) quit(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, "~."); err != nil {
		t.Fatalf("typing ~.: %v", err)
	}
	for range p.lines {
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("ipmitool sol activate exited with %v after ~.:\n%s", err, lastLines(p.output(), 5))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ipmitool did not exit after ~.")
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var digits = regexp.MustCompile(`^[0-9]+$`)

func TestIpmitoolSOLCounter(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1)
	p := startSOL(t, f.Addr(0), 17)
	p.waitLine(t, "[SOL Session operational")
	if !f.BMC(0).SOLActive() {
		t.Fatal("SOL operational in ipmitool but not active on the BMC")
	}
	// Read counter lines for two seconds: every line must be the one
	// before plus one.
	const watch = 2 * time.Second
	end := time.After(watch)
	var count, last int
	for reading := true; reading; {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("ipmitool ended while reading the console:\n%s", lastLines(p.output(), 10))
			}
			if !digits.MatchString(l) {
				continue // ipmitool's own messages ("tcgetattr: ...")
			}
			v, _ := strconv.Atoi(l)
			if count > 0 && v != last+1 {
				t.Fatalf("console line %d after %d: a gap or repeat in the SOL stream", v, last)
			}
			last = v
			count++
		case <-end:
			reading = false
		}
	}
	t.Logf("%d consecutive console lines in %v, last %d", count, watch, last)
	// 115200 baud is 11520 characters/s, about 1900 lines of 6; ask for
	// a third of that so a loaded machine passes.
	if min := int(watch.Seconds() * 11520 / 6 / 3); count < min {
		t.Fatalf("%d console lines in %v, want at least %d", count, watch, min)
	}
	p.quit(t)
	if err := f.BMC(0).WaitSOL(waitCtx(t), false); err != nil {
		t.Fatalf("after ~.: %v", err)
	}
}

func TestIpmitoolSOLEcho(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1, func(c *FleetConfig) { c.BMC.Console = ConsoleEcho })
	p := startSOL(t, f.Addr(0), 3)
	p.waitLine(t, "[SOL Session operational")
	if _, err := io.WriteString(p.stdin, "hello fakebmc\r"); err != nil {
		t.Fatal(err)
	}
	p.waitLine(t, "hello fakebmc")
	p.quit(t)
	if got := string(f.BMC(0).HostInput()); got != "hello fakebmc\r" {
		t.Errorf("host received %q, want %q", got, "hello fakebmc\r")
	}
	if err := f.BMC(0).WaitSOL(waitCtx(t), false); err != nil {
		t.Fatalf("after ~.: %v", err)
	}
}

// TestIpmitoolSOLStaleActivation kills ipmitool with SOL active, as a
// crashed client would: the next activation is refused with 80h until
// `sol deactivate` from a new session clears it.
func TestIpmitoolSOLStaleActivation(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1)
	killSOLClient(t, f, 0)
	out, err := ipmitool(t, f.Addr(0), 17, "sol", "activate")
	if err == nil || !strings.Contains(out, "SOL payload already active on another session") {
		t.Fatalf("second activation: err %v, output:\n%s", err, out)
	}
	mustIpmitool(t, f.Addr(0), 17, "", "sol", "deactivate")
	if f.BMC(0).SOLActive() {
		t.Fatal("SOL still active after sol deactivate")
	}
	out, err = ipmitool(t, f.Addr(0), 17, "sol", "deactivate")
	if err == nil || !strings.Contains(out, "SOL payload already de-activated") {
		t.Fatalf("deactivating an inactive payload: err %v, output:\n%s", err, out)
	}
	p2 := startSOL(t, f.Addr(0), 17)
	p2.waitLine(t, "[SOL Session operational")
	p2.quit(t)
}

// killSOLClient activates SOL on BMC i with ipmitool and SIGKILLs it, as a
// crashed client would, leaving the payload active on a dead session.
func killSOLClient(t *testing.T, f *Fleet, i int) {
	t.Helper()
	p := startSOL(t, f.Addr(i), 17)
	p.waitLine(t, "[SOL Session operational")
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if !f.BMC(i).SOLActive() {
		t.Fatal("SOL inactive right after the client was killed; want it left active")
	}
}

func TestIpmitoolAfterGarbage(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1)
	fireGarbage(t, f.Addr(0), 7, 2000)
	mustIpmitool(t, f.Addr(0), 17, "Manufacturer ID           : 32473", "mc", "info")
}

// TestIpmitoolThroughFaults runs ipmitool against a BMC that loses,
// duplicates and reorders datagrams in both directions.
func TestIpmitoolThroughFaults(t *testing.T) {
	needIpmitool(t)
	t.Parallel()
	f := startTestFleet(t, 1, func(c *FleetConfig) {
		c.BMC.Faults = FaultPlan{Loss: 0.05, Dup: 0.1, Reorder: 0.1, Delay: 2 * time.Millisecond, Seed: 11}
	})
	for range 3 {
		out, err := ipmitool(t, f.Addr(0), 17, "-N", "1", "-R", "5", "chassis", "power", "on")
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("ipmitool through faults failed once (it may give up on a lost handshake): %v\n%s", err, out)
			continue
		}
		if strings.Contains(out, "Chassis Power Control: Up/On") {
			break
		}
	}
	if !f.BMC(0).PowerOn() {
		t.Fatal("three ipmitool runs through 5% loss never powered the machine on")
	}
}
