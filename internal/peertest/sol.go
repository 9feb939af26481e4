package peertest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"obmd/internal/syncbuf"
)

// SOLClient is a running Serial-over-LAN client (ipmitool `sol activate` or
// FreeIPMI's ipmiconsole) whose output the test watches as it comes.
type SOLClient struct {
	Name  string
	quit  string // typed by Stop before closing the input
	cmd   *exec.Cmd
	stdin io.WriteCloser // the pipe or the pseudo-terminal's master
	pty   *os.File       // the pseudo-terminal's master, if the client has one
	out   syncbuf.Buffer // stdout and stderr, interleaved
	done  chan struct{}  // closed when the process has exited
	start time.Time
	code  int
}

// StartIpmitoolSOL starts `ipmitool -I lanplus ... sol activate` against tg
// (args go before "sol activate": "-C", "17", say), with its standard input
// a pipe held open until Stop (EOF makes ipmitool deactivate SOL and exit)
// and its output unbuffered (stdbuf). The process is killed when the test
// ends.
func StartIpmitoolSOL(t testing.TB, tg Target, args ...string) *SOLClient {
	t.Helper()
	bin, argv, env := ipmitoolArgs(t, tg, append(append([]string{"-I", "lanplus"}, args...), "sol", "activate"))
	if stdbuf, err := exec.LookPath("stdbuf"); err == nil {
		argv = append([]string{"-o0", bin}, argv...)
		bin = stdbuf
	}
	cmd := exec.Command(bin, argv...)
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("peertest: %v", err)
	}
	return startSOL(t, "ipmitool", cmd, stdin, nil)
}

// StartIpmiconsole starts FreeIPMI's ipmiconsole against tg over IPMI 2.0,
// credentials in a --config-file, args after them. Its standard input is
// a pseudo-terminal (with a pipe it gives up at once), which Type writes
// to; its escape character is '&' ("&." leaves). The process is killed
// when the test ends.
func StartIpmiconsole(t testing.TB, tg Target, args ...string) *SOLClient {
	t.Helper()
	bin, err := exec.LookPath("ipmiconsole")
	if err != nil {
		t.Skip("ipmiconsole not installed: apt-get install freeipmi-tools")
	}
	master, slave, err := openPTY()
	if err != nil {
		t.Skipf("ipmiconsole needs a terminal and none can be opened: %v", err)
	}
	conf := freeipmiConfig(t, tg)
	argv := append([]string{"--config-file=" + conf, "-h", tg.host() + ":" + strconv.Itoa(tg.Port)}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Stdin = slave
	c := startSOL(t, "ipmiconsole", cmd, master, slave)
	c.quit = "\r&." // it quits on its escape sequence, not on a hang-up
	c.pty = master
	return c
}

func startSOL(t testing.TB, name string, cmd *exec.Cmd, stdin io.WriteCloser, closeAfterStart *os.File) *SOLClient {
	t.Helper()
	c := &SOLClient{Name: name, cmd: cmd, stdin: stdin, done: make(chan struct{}), code: -1}
	cmd.Stdout = &c.out
	cmd.Stderr = &c.out
	cmd.WaitDelay = 5 * time.Second
	c.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("peertest: starting %s: %v", name, err)
	}
	if closeAfterStart != nil {
		closeAfterStart.Close() // the child has its own copy
		// What the child writes to its terminal (ipmiconsole writes the
		// console there, not to its standard output) comes out of the
		// master.
		if r, ok := stdin.(io.Reader); ok {
			go io.Copy(&c.out, r)
		}
	}
	go func() {
		cmd.Wait()
		c.code = cmd.ProcessState.ExitCode()
		close(c.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.done
		stdin.Close()
	})
	return c
}

// Output is everything the client printed so far, carriage returns
// removed.
func (c *SOLClient) Output() string { return strings.ReplaceAll(c.out.String(), "\r", "") }

// WaitFor waits until the output contains want or the client exits, at
// most within, and reports whether it does.
func (c *SOLClient) WaitFor(want string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for !strings.Contains(c.Output(), want) {
		// The client gives no event to wait on but its output: poll.
		select {
		case <-c.done:
			return strings.Contains(c.Output(), want)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// Ready reports whether the client's terminal is ready for typing: a
// client on a pseudo-terminal (ipmiconsole) has switched it to raw mode,
// so that what is typed is not echoed by the terminal itself; a client on
// a pipe (ipmitool) always is.
func (c *SOLClient) Ready() bool {
	if c.pty != nil {
		return echoOff(c.pty)
	}
	return true
}

// Type sends keystrokes to the client.
func (c *SOLClient) Type(s string) error {
	_, err := io.WriteString(c.stdin, s)
	return err
}

// Exited reports whether the client has exited, and its exit code.
func (c *SOLClient) Exited() (bool, int) {
	select {
	case <-c.done:
		return true, c.code
	default:
		return false, -1
	}
}

// WaitExit waits up to within for the client to exit by itself.
func (c *SOLClient) WaitExit(within time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(within):
		return false
	}
}

// Stop ends the client: its input is closed (ipmitool then deactivates
// SOL and exits; ipmiconsole sees its terminal hang up), and it is killed
// if still running after grace. It returns the run as a Result: ExitCode
// -1 and TimedOut when it had to be killed.
func (c *SOLClient) Stop(grace time.Duration) Result {
	if c.quit != "" {
		c.Type(c.quit)
	}
	c.stdin.Close()
	timedOut := false
	select {
	case <-c.done:
	case <-time.After(grace):
		timedOut = true
		c.cmd.Process.Kill()
		<-c.done
	}
	return Result{Args: c.cmd.Args, Stdout: c.Output(), Duration: time.Since(c.start), ExitCode: c.code, TimedOut: timedOut}
}

// freeipmiConfig writes tg's credentials to a freeipmi.conf(5) file in the
// test's temporary directory and returns its path.
func freeipmiConfig(t testing.TB, tg Target) string {
	t.Helper()
	if strings.ContainsAny(tg.Username+tg.Password, "\n") {
		t.Fatal("peertest: a FreeIPMI config file cannot hold a newline in user name or password")
	}
	f, err := os.CreateTemp(t.TempDir(), "freeipmi-*.conf")
	if err != nil {
		t.Fatalf("peertest: %v", err)
	}
	_, err = fmt.Fprintf(f, "username %s\npassword %s\n", tg.Username, tg.Password)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("peertest: writing FreeIPMI config: %v", err)
	}
	return filepath.Clean(f.Name())
}
