package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"obmd/api"
	"obmd/fakebmc"
	"obmd/manager"
	"obmd/store"
)

// The terminal client under a pseudo-terminal, as a tenant runs it: the
// obmd binary's "console" subcommand on the slave side of a pty, against
// obmd's API (in this process) and a fakebmc echo console. The test types
// into the pty's master and reads what the client prints there.

const consoleTestAdmin = "00112233445566778899aabbccddeeff"

// consoleRig is obmd's API with one ipmi node on a fakebmc echo console.
type consoleRig struct {
	t     *testing.T
	srv   *httptest.Server
	bmc   *fakebmc.BMC
	token string
}

func newConsoleRig(t *testing.T) *consoleRig {
	t.Helper()
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr: "127.0.0.1:0", Count: 1,
		BMC: fakebmc.BMCConfig{Users: []fakebmc.User{{Name: "admin", Password: []byte("pw")}}, Console: fakebmc.ConsoleEcho},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := store.Open(store.InMemory, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(manager.Config{Store: st, OpTimeout: 5 * time.Second, Console: manager.HubConfig{Linger: -1}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(m, api.Options{AdminToken: consoleTestAdmin}))
	t.Cleanup(func() {
		m.EndConsoles()
		srv.Close()
		m.Close(context.Background())
		st.Close()
	})
	r := &consoleRig{t: t, srv: srv, bmc: f.BMC(0)}
	r.admin("PUT", "/node/n1", `{"type":"ipmi","info":{"addr":"`+f.Addr(0)+`","user":"admin","pass":"pw","cipher_suite":17}}`)
	var tok struct{ Token string }
	if err := json.Unmarshal(r.admin("POST", "/node/n1/token", ""), &tok); err != nil {
		t.Fatal(err)
	}
	r.token = tok.Token
	return r
}

func (r *consoleRig) admin(method, path, body string) []byte {
	r.t.Helper()
	req, _ := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	req.SetBasicAuth("admin", consoleTestAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		r.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

// ptyClient is "obmd console" running on a pty.
type ptyClient struct {
	t      *testing.T
	cmd    *exec.Cmd
	master *os.File
	tty    *os.File // kept open to read its mode after the client exits
	before unix.Termios
	exited chan struct{}
	err    error

	mu   sync.Mutex
	out  bytes.Buffer
	more chan struct{} // closed and replaced when output arrives
}

func startPTYClient(t *testing.T, args ...string) *ptyClient {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); tty.Close() })
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	c := &ptyClient{t: t, master: master, tty: tty, before: *before, exited: make(chan struct{}), more: make(chan struct{})}
	c.cmd = exec.Command(obmdBin, append([]string{"console"}, args...)...)
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = tty, tty, tty
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Kill()
			<-c.exited
		}
	})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			c.mu.Lock()
			c.out.Write(buf[:n])
			close(c.more)
			c.more = make(chan struct{})
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return c
}

// waitOutput waits until the client has printed want.
func (c *ptyClient) waitOutput(ctx context.Context, want string) {
	c.t.Helper()
	for {
		c.mu.Lock()
		got, more := c.out.String(), c.more
		c.mu.Unlock()
		if strings.Contains(got, want) {
			return
		}
		select {
		case <-more:
		case <-ctx.Done():
			c.t.Fatalf("the client did not print %q; it printed %q", want, got)
		}
	}
}

func (c *ptyClient) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *ptyClient) typeKeys(s string) {
	c.t.Helper()
	if _, err := c.master.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// exit waits for the client to exit and returns its status.
func (c *ptyClient) exit(ctx context.Context) int {
	c.t.Helper()
	select {
	case <-c.exited:
	case <-ctx.Done():
		c.t.Fatalf("the client is still running; it printed %q", c.output())
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return ee.ExitCode()
	}
	if c.err != nil {
		c.t.Fatal(c.err)
	}
	return 0
}

func (c *ptyClient) mode() unix.Termios {
	c.t.Helper()
	m, err := unix.IoctlGetTermios(int(c.tty.Fd()), unix.TCGETS)
	if err != nil {
		c.t.Fatal(err)
	}
	return *m
}

// expectRestored: the terminal's mode is the one before the client ran.
func (c *ptyClient) expectRestored() {
	c.t.Helper()
	if got := c.mode(); got != c.before {
		c.t.Fatalf("terminal mode not restored: lflag %#x iflag %#x oflag %#x, was %#x %#x %#x",
			got.Lflag, got.Iflag, got.Oflag, c.before.Lflag, c.before.Iflag, c.before.Oflag)
	}
}

func consoleTestCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestConsoleClientTypeBreakQuit: in raw mode, typed bytes reach the
// machine and its echo comes back; ~B sends a break; ~. leaves with
// status 0 and the terminal restored.
func TestConsoleClientTypeBreakQuit(t *testing.T) {
	t.Parallel()
	r := newConsoleRig(t)
	ctx := consoleTestCtx(t)
	tokenFile := t.TempDir() + "/token"
	if err := os.WriteFile(tokenFile, []byte(r.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startPTYClient(t, "-token-file", tokenFile, r.srv.URL+"/node/n1/console")
	c.waitOutput(ctx, "? for help]")
	if m := c.mode(); m.Lflag&(unix.ICANON|unix.ECHO) != 0 {
		t.Fatalf("terminal not in raw mode while connected: lflag %#x", m.Lflag)
	}
	c.typeKeys("hello pty\r")
	c.waitOutput(ctx, "hello pty\r")
	if err := r.bmc.WaitHostInput(ctx, int64(len("hello pty\r"))); err != nil {
		t.Fatal(err)
	}
	c.typeKeys("~B")
	if err := r.bmc.WaitBreaks(ctx, 1); err != nil {
		t.Fatalf("~B: no break reached the BMC: %v", err)
	}
	c.typeKeys("~?")
	c.waitOutput(ctx, "send a serial break")
	c.typeKeys("~.")
	if status := c.exit(ctx); status != exitOK {
		t.Fatalf("~. exited with %d, want 0; printed %q", status, c.output())
	}
	c.expectRestored()
	if got := string(r.bmc.HostInput()); got != "hello pty\r" {
		t.Fatalf("the machine got %q: escapes leaked into the input", got)
	}
	if strings.Contains(c.output(), r.token) {
		t.Fatal("the client printed the token")
	}
}

// TestConsoleClientEndings: the exit status says why the console ended,
// and the terminal is restored each time, after a signal too.
func TestConsoleClientEndings(t *testing.T) {
	t.Parallel()
	r := newConsoleRig(t)
	url := r.srv.URL + "/node/n1/console?token=" + r.token

	t.Run("SIGTERM", func(t *testing.T) {
		ctx := consoleTestCtx(t) // each its own, so one failure does not starve the next
		c := startPTYClient(t, url)
		c.waitOutput(ctx, "? for help]")
		c.cmd.Process.Signal(syscall.SIGTERM)
		if status := c.exit(ctx); status != exitSignalled+int(syscall.SIGTERM) {
			t.Fatalf("SIGTERM: exit %d, want %d", status, exitSignalled+int(syscall.SIGTERM))
		}
		c.expectRestored()
	})
	t.Run("token replaced", func(t *testing.T) {
		ctx := consoleTestCtx(t) // each its own, so one failure does not starve the next
		c := startPTYClient(t, url)
		c.waitOutput(ctx, "? for help]")
		r.admin("POST", "/node/n1/token", "")
		if status := c.exit(ctx); status != exitToken {
			t.Fatalf("token replaced: exit %d, want %d; printed %q", status, exitToken, c.output())
		}
		c.expectRestored()
		c.waitOutput(ctx, "console closed: the node's token was replaced or revoked")
	})
	t.Run("wrong token", func(t *testing.T) {
		ctx := consoleTestCtx(t)    // each its own, so one failure does not starve the next
		c := startPTYClient(t, url) // the token replaced above
		if status := c.exit(ctx); status != exitToken {
			t.Fatalf("wrong token: exit %d, want %d; printed %q", status, exitToken, c.output())
		}
		c.expectRestored()
		c.waitOutput(ctx, "401 Unauthorized: missing or invalid token")
		if strings.Contains(c.output(), r.token) {
			t.Fatal("the client printed the token")
		}
	})
	t.Run("no obmd there", func(t *testing.T) {
		ctx := consoleTestCtx(t) // each its own, so one failure does not starve the next
		c := startPTYClient(t, "http://127.0.0.1:1/node/n1/console?token="+r.token)
		if status := c.exit(ctx); status != exitConnect {
			t.Fatalf("unreachable obmd: exit %d, want %d; printed %q", status, exitConnect, c.output())
		}
		if strings.Contains(c.output(), r.token) {
			t.Fatalf("the client printed the token: %q", c.output())
		}
	})
}
