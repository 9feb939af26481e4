package fakebmc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Interop tests against FreeIPMI 1.6.10 (Debian package freeipmi-tools):
// ipmipower and ipmi-chassis over LAN_2_0, with no workaround flags. The
// credentials go in a FreeIPMI configuration file (--config-file), never in
// argv.

func needFreeIPMI(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skip(tool + " not installed: apt-get install freeipmi-tools")
	}
}

// freeipmiConfig writes a freeipmi.conf(5) holding the credentials.
func freeipmiConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "freeipmi.conf")
	if err := os.WriteFile(path, []byte("username "+testUser+"\npassword "+testPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freeipmi runs tool against addr with cipher suite id and returns its
// combined output.
func freeipmi(t *testing.T, conf, tool, addr string, suite int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), toolTimeout)
	defer cancel()
	argv := append([]string{"-D", "LAN_2_0", "-h", addr, "--config-file", conf, "-I", strconv.Itoa(suite)}, args...)
	out, err := exec.CommandContext(ctx, tool, argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestIpmipower(t *testing.T) {
	needFreeIPMI(t, "ipmipower")
	t.Parallel()
	conf := freeipmiConfig(t)
	ids := []int{3, 17}
	f := startTestFleet(t, len(ids))
	for i, suite := range ids {
		t.Run("I"+strconv.Itoa(suite), func(t *testing.T) {
			t.Parallel()
			addr, b := f.Addr(i), f.BMC(i)
			power := func(op, want string) {
				t.Helper()
				out := freeipmi(t, conf, "ipmipower", addr, suite, op)
				// ipmipower prints "HOST: RESULT", HOST as given.
				if !strings.HasSuffix(strings.TrimSpace(out), ": "+want) {
					t.Fatalf("ipmipower %s printed %q, want %q", op, out, want)
				}
			}
			power("--stat", "off")
			power("--on", "ok")
			if !b.PowerOn() {
				t.Fatal("machine off after ipmipower --on")
			}
			power("--stat", "on")
			power("--off", "ok")
			if b.PowerOn() {
				t.Fatal("machine on after ipmipower --off")
			}
			power("--stat", "off")
			power("--on", "ok")
			boots := len(b.Sim().Boots())
			power("--cycle", "ok")
			if err := b.Sim().WaitPower(waitCtx(t), true); err != nil {
				t.Fatal(err)
			}
			if got := len(b.Sim().Boots()); got != boots+1 {
				t.Fatalf("boots after --cycle = %d, want %d", got, boots+1)
			}
			power("--stat", "on")
		})
	}
}

func TestIpmiChassisGetStatus(t *testing.T) {
	needFreeIPMI(t, "ipmi-chassis")
	t.Parallel()
	conf := freeipmiConfig(t)
	f := startTestFleet(t, 1, func(c *FleetConfig) { c.BMC.StartOn = true })
	for _, suite := range []int{3, 17} {
		out := freeipmi(t, conf, "ipmi-chassis", f.Addr(0), suite, "--get-status")
		for _, want := range []string{"System Power                        : on", "Power restore policy                : Restore"} {
			if !strings.Contains(out, want) {
				t.Errorf("-I %d: ipmi-chassis --get-status lacks %q:\n%s", suite, want, out)
			}
		}
	}
	if err := f.BMC(0).Machine().PowerDown(); err != nil {
		t.Fatal(err)
	}
	out := freeipmi(t, conf, "ipmi-chassis", f.Addr(0), 17, "--get-status")
	if !strings.Contains(out, "System Power                        : off") {
		t.Errorf("after power down, ipmi-chassis --get-status shows:\n%s", out)
	}
}
