package rmcpplus

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Real consoles against the Server: ipmitool and FreeIPMI's bmc-info, when
// installed (CI installs them; see PEERS.md). The full fakebmc interop
// suite lives with fakebmc; this keeps the session layer honest on its own.

func TestRealConsolesAgainstServer(t *testing.T) {
	t.Parallel()
	cfg := testServerConfig(&testHandler{})
	cfg.CipherSuites = []uint8{17, 3, 2, 1}
	addr := startServer(t, NewServer(cfg), nil)
	host, port, _ := net.SplitHostPort(addr)

	ipmitool := func(args ...string) []string {
		return append([]string{"ipmitool", "-I", "lanplus", "-H", host, "-p", port, "-N", "1", "-R", "2"}, args...)
	}
	bmcInfo := func(args ...string) []string {
		return append([]string{"bmc-info", "-D", "LAN_2_0", "-h", addr, "--get-device-id"}, args...)
	}
	const deviceIDRaw = " 20 01 01 02 02 00 00 00 00 00 00"
	tests := []struct {
		name    string
		argv    []string
		wantOK  bool
		wantOut string
	}{
		{"ipmitool suite 17", ipmitool("-U", "admin", "-P", "secret", "-C", "17", "raw", "6", "1"), true, deviceIDRaw},
		{"ipmitool suite 3", ipmitool("-U", "admin", "-P", "secret", "-C", "3", "raw", "6", "1"), true, deviceIDRaw},
		{"ipmitool suite 2", ipmitool("-U", "admin", "-P", "secret", "-C", "2", "raw", "6", "1"), true, deviceIDRaw},
		{"ipmitool suite 1", ipmitool("-U", "admin", "-P", "secret", "-C", "1", "raw", "6", "1"), true, deviceIDRaw},
		// Without -C ipmitool asks for the cipher suites in RMCP+ form.
		{"ipmitool negotiating", ipmitool("-U", "admin", "-P", "secret", "raw", "0", "1"), true, " 01 00 00"},
		{"ipmitool operator", ipmitool("-U", "oper", "-P", "operpw", "-L", "OPERATOR", "-C", "17", "raw", "0", "1"), true, " 01 00 00"},
		{"ipmitool wrong password", ipmitool("-U", "admin", "-P", "wrong", "-C", "17", "raw", "6", "1"), false, "Unable to establish IPMI v2 / RMCP+ session"},
		{"ipmitool unknown user", ipmitool("-U", "bob", "-P", "secret", "-C", "17", "raw", "6", "1"), false, "Unable to establish IPMI v2 / RMCP+ session"},
		{"ipmitool operator asking for administrator", ipmitool("-U", "oper", "-P", "operpw", "-L", "ADMINISTRATOR", "-C", "17", "raw", "6", "1"), false, "Unable to establish IPMI v2 / RMCP+ session"},
		{"FreeIPMI suite 17", bmcInfo("-u", "admin", "-p", "secret", "-I", "17"), true, "Device ID             : 32"},
		{"FreeIPMI suite 3", bmcInfo("-u", "admin", "-p", "secret", "-I", "3"), true, "Device ID             : 32"},
		{"FreeIPMI operator", bmcInfo("-u", "oper", "-p", "operpw", "-l", "OPERATOR", "-I", "17"), true, "Device ID             : 32"},
		{"FreeIPMI wrong password", bmcInfo("-u", "admin", "-p", "wrong", "-I", "17"), false, "password invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { // one at a time: timings stay honest on 2 cores
			if _, err := exec.LookPath(tt.argv[0]); err != nil {
				t.Skipf("%s is not installed (apt-get install ipmitool freeipmi-tools)", tt.argv[0])
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			start := time.Now()
			out, err := exec.CommandContext(ctx, tt.argv[0], tt.argv[1:]...).CombinedOutput()
			elapsed := time.Since(start)
			if (err == nil) != tt.wantOK {
				t.Fatalf("%s: err %v, want success %v\n%s", strings.Join(tt.argv, " "), err, tt.wantOK, out)
			}
			if !strings.Contains(string(out), tt.wantOut) {
				t.Fatalf("%s: output lacks %q:\n%s", strings.Join(tt.argv, " "), tt.wantOut, out)
			}
			// Failures, wrong passwords above all, must be quick: no
			// console should sit through retransmissions.
			if elapsed > 2*time.Second {
				t.Fatalf("%s took %v", strings.Join(tt.argv, " "), elapsed)
			}
		})
	}
}
