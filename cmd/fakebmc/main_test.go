package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"obmd/internal/freeport"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once,
// that signals every write.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // closed and replaced at each Write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written != nil {
		close(s.written)
	}
	s.written = make(chan struct{})
	return s.b.Write(p)
}

// waitFor waits until the buffer holds n occurrences of want, or fails
// the test when exited reports first or 10 s pass.
func (s *syncBuffer) waitFor(t *testing.T, want string, n int, exited <-chan int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		if s.written == nil {
			s.written = make(chan struct{})
		}
		got, ch := strings.Count(s.b.String(), want), s.written
		s.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case code := <-exited:
			t.Fatalf("exited with %d before logging %q %d times:\n%s", code, want, n, s.String())
		case <-deadline:
			t.Fatalf("no %q %d times after 10 s:\n%s", want, n, s.String())
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noEnv(string) string { return "" }

// badFlagCase is a command line fakebmc must refuse: exit 2, one line on
// stderr starting "fakebmc: " and containing want.
type badFlagCase struct {
	name string
	args []string
	want string
}

func checkBadFlags(t *testing.T, cases []badFlagCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr syncBuffer
			code := run(t.Context(), tc.args, noEnv, &stderr)
			out := stderr.String()
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "fakebmc: ") {
				t.Errorf("stderr %q, want exactly one line starting with \"fakebmc: \"", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("stderr %q, want it to contain %q", out, tc.want)
			}
		})
	}
}

func TestBadFlagsExitTwoWithOneLine(t *testing.T) {
	cases := []badFlagCase{
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined: -bogus"},
		{"bad count", []string{"-count", "0"}, "-count 0 is not between 1 and 65535"},
		{"bad console", []string{"-console", "tty"}, `-console "tty" is not counter or echo`},
		{"negative baud", []string{"-baud", "-5"}, "-baud -5 is negative"},
		{"SOL accept limit too large", []string{"-sol-accept", "256"}, "-sol-accept 256 is not between 0 and 255"},
		{"loss above one", []string{"-loss", "1.5"}, "-loss probability 1.5 is not between 0 and 1"},
		{"every problem at once", []string{"-dup", "2", "-reorder", "-1", "-count", "-1"},
			"-count -1 is not between 1 and 65535; -dup probability 2 is not between 0 and 1; -reorder probability -1 is not between 0 and 1"},
		{"bad delay", []string{"-delay", "soon"}, `invalid value "soon" for flag -delay`},
		{"stray argument", []string{"extra"}, `unexpected argument "extra"`},
		{"long user", []string{"-user", "a-very-long-user-name"}, "-user must be 1 to 16 characters"},
	}
	checkBadFlags(t, cases)
}

func TestHelpExitsZero(t *testing.T) {
	var stderr syncBuffer
	if code := run(t.Context(), []string{"-h"}, noEnv, &stderr); code != 0 {
		t.Errorf("-h exit code %d, want 0", code)
	}
	for _, want := range []string{"-addr", "-console", "-loss", "FAKEBMC_PASS"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestPortInUseExitsOneNamingThePort(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.LocalAddr().String()
	var stderr syncBuffer
	code := run(t.Context(), []string{"-addr", addr}, noEnv, &stderr)
	out := stderr.String()
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, addr) || !strings.Contains(out, "already in use") || !strings.Contains(out, "-addr") {
		t.Errorf("stderr %q, want one line naming %s, saying it is in use and how to fix it", out, addr)
	}
}

// freePortRun finds count consecutive free ports on loopback, for UDP
// (IPMI) and TCP (Redfish) alike.
func freePortRun(t *testing.T, count int) int {
	t.Helper()
	base, err := freeport.Run(count)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

func TestServesUntilCancelledLoggingOneLinePerBMC(t *testing.T) {
	base := freePortRun(t, 3)
	ctx, cancel := context.WithCancel(t.Context())
	var stderr syncBuffer
	done := make(chan int, 1)
	env := func(k string) string {
		if k == passEnv {
			return "from-env-pw"
		}
		return ""
	}
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:" + strconv.Itoa(base), "-count", "3", "-console", "echo"}, env, &stderr)
	}()
	stderr.waitFor(t, "BMC ready", 3, done)
	for i := range 3 {
		if want := "addr=127.0.0.1:" + strconv.Itoa(base+i); !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, stderr.String())
		}
	}
	// The password from the environment works, and is never logged.
	if _, err := exec.LookPath("ipmitool"); err == nil {
		cmd := exec.CommandContext(ctx, "ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", strconv.Itoa(base+2),
			"-U", "admin", "-E", "-C", "17", "chassis", "power", "status")
		cmd.Env = append(os.Environ(), "IPMI_PASSWORD=from-env-pw")
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Chassis Power is on") {
			t.Errorf("ipmitool with the FAKEBMC_PASS password: %v\n%s", err, out)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code after cancel %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after cancel")
	}
	if strings.Contains(stderr.String(), "from-env-pw") {
		t.Error("the password appears in the log")
	}
}

// TestSIGTERMShutsDownCleanly runs the real binary.
func TestSIGTERMShutsDownCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := t.TempDir() + "/fakebmc"
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	base := freePortRun(t, 1)
	cmd := exec.Command(bin, "-addr", "127.0.0.1:"+strconv.Itoa(base))
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	stderr.waitFor(t, "BMC ready", 1, nil)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("no shutdown line:\n%s", stderr.String())
	}
}
