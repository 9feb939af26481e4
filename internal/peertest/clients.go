package peertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Target is a BMC on loopback and the credentials a client logs in with.
type Target struct {
	Host     string // default 127.0.0.1
	Port     int
	Username string
	Password string
}

// Target returns the address and credentials of this ipmi_sim.
func (s *IPMISim) Target() Target {
	return Target{Host: "127.0.0.1", Port: s.Port, Username: s.Username, Password: s.Password}
}

func (tg Target) host() string {
	if tg.Host == "" {
		return "127.0.0.1"
	}
	return tg.Host
}

// Result is the outcome of one client run.
type Result struct {
	Args     []string // argv after the program name; never holds the password
	Stdout   string
	Stderr   string
	Duration time.Duration
	ExitCode int  // -1 if the process did not exit on its own
	TimedOut bool // killed because the context or DefaultClientTimeout expired
}

// OK reports a zero exit status.
func (r Result) OK() bool { return r.ExitCode == 0 }

// String summarises the run for a failure message.
func (r Result) String() string {
	return fmt.Sprintf("%s\nexit %d after %v (timed out: %v)\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.Args, " "), r.ExitCode, r.Duration.Round(time.Millisecond), r.TimedOut, r.Stdout, r.Stderr)
}

// DefaultClientTimeout bounds a client run whose context has no deadline.
const DefaultClientTimeout = 30 * time.Second

// Ipmitool runs ipmitool against tg: it adds -H, -p, -U and -E (the
// password travels in the IPMI_PASSWORD environment variable, never in
// argv) before args, which choose the interface and command, e.g.
// "-I", "lanplus", "-C", "3", "chassis", "power", "status".
func Ipmitool(t testing.TB, ctx context.Context, tg Target, args ...string) Result {
	t.Helper()
	bin, argv, env := ipmitoolArgs(t, tg, args)
	return run(t, ctx, bin, argv, env)
}

// IpmitoolCommand prepares the same ipmitool run as Ipmitool without
// starting it, for callers that stream its input and output (sol
// activate). ctx kills it; the caller starts and waits for it.
func IpmitoolCommand(t testing.TB, ctx context.Context, tg Target, args ...string) *exec.Cmd {
	t.Helper()
	bin, argv, env := ipmitoolArgs(t, tg, args)
	// ipmitool prints its SOL banner and console bytes through stdio, fully
	// buffered on a pipe; stdbuf (coreutils) makes it unbuffered.
	if stdbuf, err := exec.LookPath("stdbuf"); err == nil {
		argv = append([]string{"-o0", bin}, argv...)
		bin = stdbuf
	}
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func ipmitoolArgs(t testing.TB, tg Target, args []string) (bin string, argv, env []string) {
	t.Helper()
	bin, err := exec.LookPath("ipmitool")
	if err != nil {
		t.Skip("ipmitool not installed: apt-get install ipmitool")
	}
	argv = append([]string{"-H", tg.host(), "-p", strconv.Itoa(tg.Port), "-U", tg.Username, "-E"}, args...)
	env = append(os.Environ(), "IPMI_PASSWORD="+tg.Password)
	return bin, argv, env
}

// FreeIPMI runs a FreeIPMI tool ("ipmipower", "ipmi-chassis", ...) against
// tg over IPMI 2.0 (-D LAN_2_0). Host and port go in -h HOST:PORT; user
// name and password go in a freeipmi.conf(5) file in the test's temporary
// directory, passed with --config-file, so the password is not in argv.
func FreeIPMI(t testing.TB, ctx context.Context, tool string, tg Target, args ...string) Result {
	t.Helper()
	bin, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not installed: apt-get install freeipmi-tools", tool)
	}
	conf := freeipmiConfig(t, tg)
	argv := append([]string{"--config-file=" + conf, "-D", "LAN_2_0",
		"-h", tg.host() + ":" + strconv.Itoa(tg.Port)}, args...)
	return run(t, ctx, bin, argv, nil)
}

// Ipmipower runs FreeIPMI's ipmipower, e.g. Ipmipower(t, ctx, tg, "-I", "3", "--stat").
func Ipmipower(t testing.TB, ctx context.Context, tg Target, args ...string) Result {
	t.Helper()
	return FreeIPMI(t, ctx, "ipmipower", tg, args...)
}

func run(t testing.TB, ctx context.Context, bin string, argv, env []string) Result {
	t.Helper()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultClientTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{
		Args:     append([]string{filepath.Base(bin)}, argv...),
		Stdout:   stdout.String(),
		Stderr:   stderr.String(),
		Duration: time.Since(start),
		ExitCode: cmd.ProcessState.ExitCode(),
		TimedOut: ctx.Err() != nil,
	}
	var exitErr *exec.ExitError
	// ErrWaitDelay: the tool exited cleanly but its output pipes stayed open
	// past WaitDelay (seen on a loaded machine). The result stands; callers
	// assert on its output.
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) && !r.TimedOut {
		t.Fatalf("peertest: running %s: %v", r.Args[0], err)
	}
	return r
}
