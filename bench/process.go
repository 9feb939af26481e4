package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"obmd/internal/syncbuf"
	"obmd/rmcpplus"
)

// BuildCommand builds the command package pkg (e.g. "obmd/cmd/obmd") into
// dir and returns the binary's path. It runs the go tool, so it must run
// inside the obmd module (tests and cmd/obmdbench do).
func BuildCommand(ctx context.Context, dir, pkg string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", pkg, err, bytes.TrimSpace(msg))
	}
	return out, nil
}

// child is a started benchmark process (obmd or fakebmc).
type child struct {
	name   string
	cmd    *exec.Cmd
	log    *syncbuf.Tail
	exited chan struct{} // closed when Wait returns
	err    error         // Wait's result; read after exited
}

// startChild starts bin with args and extra environment. Every line the
// child writes to stderr and stdout is offered to ready (if set) until it
// returns true; the last 16 KiB are kept for error messages.
func startChild(name, bin string, args, env []string, ready func(line string) bool) (*child, <-chan struct{}, error) {
	c := &child{name: name, log: &syncbuf.Tail{Max: 16 << 10}, exited: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	if err := c.cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting %s: %w", name, err)
	}
	readyCh := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := ready == nil
		if signalled {
			close(readyCh)
		}
		for sc.Scan() {
			line := sc.Text()
			c.log.Write([]byte(line + "\n"))
			if !signalled && ready(line) {
				signalled = true
				close(readyCh)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		c.err = c.cmd.Wait()
		pw.Close()
		close(c.exited)
	}()
	return c, readyCh, nil
}

// PID is the child's process id.
func (c *child) PID() int { return c.cmd.Process.Pid }

// wait waits until ready is closed, the child exits or ctx ends.
func (c *child) wait(ctx context.Context, ready <-chan struct{}, what string) error {
	select {
	case <-ready:
		return nil
	case <-c.exited:
		return fmt.Errorf("%s exited before %s (%v): %s", c.name, what, c.err, c.log.String())
	case <-ctx.Done():
		return fmt.Errorf("%s: %s: %w; its log: %s", c.name, what, ctx.Err(), c.log.String())
	}
}

// stop asks the child to end (SIGTERM) and kills it after 10 s.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("%s did not stop within 10 s of SIGTERM; killed", c.name)
	}
	return nil
}

// FakeBMCProcess is cmd/fakebmc running as its own process, so that the
// CPU the benchmark process spends is the client's alone.
type FakeBMCProcess struct {
	*child
	Addr string // the first BMC's host:port
}

// StartFakeBMCProcess starts count BMCs (counter console at baud, 0 for
// unthrottled) on consecutive UDP ports of a free run on loopback.
func StartFakeBMCProcess(ctx context.Context, bin string, count, baud int) (*FakeBMCProcess, error) {
	var lastErr error
	for range 10 {
		port, err := freeUDPPort(count)
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		args := []string{"-addr", addr, "-user", benchUser, "-count", strconv.Itoa(count),
			"-baud", strconv.Itoa(baud), "-log-level", "warn"}
		// Password through the environment: never on a command line.
		env := []string{"FAKEBMC_PASS=" + benchPassword}
		// At -log-level warn the "serving" line is not printed; readiness is
		// probed instead (see below).
		c, _, err := startChild("fakebmc", bin, args, env, nil)
		if err != nil {
			return nil, err
		}
		if err := waitUDPServing(ctx, c, addr); err != nil {
			_ = c.stop()
			lastErr = err
			if strings.Contains(err.Error(), "in use") {
				continue // someone took the port meanwhile: try another run
			}
			return nil, err
		}
		return &FakeBMCProcess{child: c, Addr: addr}, nil
	}
	return nil, lastErr
}

// Stop ends the fakebmc process.
func (f *FakeBMCProcess) Stop() error { return f.stop() }

// waitUDPServing waits until the fakebmc child answers an ASF presence
// ping on addr (IPMI v2.0 section 13.2.3), or exits.
func waitUDPServing(ctx context.Context, c *child, addr string) error {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ping := rmcpplus.AppendASFPing(nil, 1)
	buf := make([]byte, 256)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return fmt.Errorf("fakebmc exited before serving (%v): %s", c.err, c.log.String())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if _, err := conn.Write(ping); err == nil {
			_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, err := conn.Read(buf); err == nil {
				if p, err := rmcpplus.ParsePacket(buf[:n]); err == nil && p.ASF != nil && p.ASF.Type == rmcpplus.ASFTypePong {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("fakebmc did not answer a presence ping on %s within 15 s: %s", addr, c.log.String())
}

// freeUDPPort returns the first port of a run of count UDP ports on
// loopback that were free a moment ago.
func freeUDPPort(count int) (int, error) {
	for range 50 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		base := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if base+count-1 > 65535 {
			continue
		}
		ok := true
		for p := base; p < base+count && ok; p++ {
			probe, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				ok = false
				break
			}
			probe.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, errors.New("no run of free consecutive UDP ports found on 127.0.0.1")
}

// freeTCPPort returns a TCP port on loopback that was free a moment ago.
func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
