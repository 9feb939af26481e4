package peertest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"obmd/internal/syncbuf"
)

// IPMISimOptions configures StartIPMISim. The zero value gives user "admin"
// with password "secret", power off, and no SOL listener.
type IPMISimOptions struct {
	Username string // default "admin"
	Password string // default "secret"
	// PowerOn is the chassis power state before the first command.
	PowerOn bool
	// SOL starts a TCP listener playing the host's serial port before
	// ipmi_sim starts (ipmi_sim retries a failed connect only every 10 s),
	// so SOLHost can return the host side of the console.
	SOL bool
	// SoftOffIgnored makes the simulated OS ignore an ACPI soft-off request
	// (Chassis Control 0x05), as a hung OS would: power stays on.
	SoftOffIgnored bool
}

// IPMISim is a running OpenIPMI ipmi_sim with LAN channel 1 on loopback.
type IPMISim struct {
	Addr     string // "127.0.0.1:port", the RMCP/RMCP+ UDP address
	Port     int
	Username string
	Password string
	// GUID is the system GUID of lan.conf, as ipmi_sim puts it in RAKP 2.
	GUID [16]byte

	dir      string // t.TempDir: configs, ipmi_sim state, chassis state
	chassis  string // chassis program state directory
	cmd      *exec.Cmd
	exited   chan struct{}   // closed when the ipmi_sim process has exited
	output   *syncbuf.Buffer // ipmi_sim's stdout and stderr
	solLn    net.Listener
	solConns chan net.Conn
	stopOnce sync.Once
}

// simGUID is written to lan.conf; any 16 bytes would do.
const simGUID = "a123456789abcdefa123456789abcdef"

// chassisProgram is the chassis_control program ipmi_sim runs through popen
// as "PROGRAM STATEDIR get power", "... set power 0|1", "... set reset 1",
// "... set shutdown 1", "... set boot pxe|default|none|cdrom|bios" and
// "... get boot" (facts in /work/shared/PEERS.md; ipmi_sim documents none of
// this). ipmi_sim keeps no power or boot state of its own, so this script is
// the simulated machine. Every call is appended to STATEDIR/calls; files are
// replaced by rename so a concurrent reader never sees a half-written one.
// A power cycle arrives as "set power 0" and, about a second later,
// "set power 1".
const chassisProgram = `#!/bin/sh
d=$1; shift
printf '%s\n' "$*" >> "$d/calls"
put() { printf '%s\n' "$2" > "$d/$1.tmp" && mv "$d/$1.tmp" "$d/$1"; }
case "$1 $2" in
"get power") printf 'power:%s\n' "$(cat "$d/power")" ;;
"get boot") printf 'boot:%s\n' "$(cat "$d/boot")" ;;
"set power") put power "$3" ;;
"set reset") ;;
"set shutdown") [ -e "$d/softoff_ignored" ] || put power 0 ;;
"set boot") put boot "$3" ;;
*) echo "chassis program: unknown request: $*" >&2; exit 1 ;;
esac
`

// StartIPMISim starts ipmi_sim with a fresh configuration and state in a
// temporary directory and returns once it answers an ASF presence ping. It
// is stopped (killed and waited for) by t.Cleanup.
func StartIPMISim(t testing.TB, opts IPMISimOptions) *IPMISim {
	t.Helper()
	bin, err := exec.LookPath("ipmi_sim")
	if err != nil {
		t.Skip("ipmi_sim not installed: apt-get install openipmi")
	}
	if opts.Username == "" {
		opts.Username = "admin"
	}
	if opts.Password == "" {
		opts.Password = "secret"
	}
	if strings.ContainsAny(opts.Username+opts.Password, "\"\n\\") {
		t.Fatalf("peertest: user name and password must not contain quotes, backslashes or newlines (lan.conf syntax)")
	}

	s := &IPMISim{
		Username: opts.Username,
		Password: opts.Password,
		dir:      t.TempDir(),
		solConns: make(chan net.Conn, 4),
	}
	copy(s.GUID[:], mustHex(simGUID))
	s.chassis = filepath.Join(s.dir, "chassis")
	mustMkdir(t, s.chassis)
	mustMkdir(t, filepath.Join(s.dir, "state"))
	power := "0"
	if opts.PowerOn {
		power = "1"
	}
	mustWrite(t, filepath.Join(s.chassis, "power"), power+"\n", 0o644)
	mustWrite(t, filepath.Join(s.chassis, "boot"), "none\n", 0o644)
	mustWrite(t, filepath.Join(s.chassis, "calls"), "", 0o644)
	if opts.SoftOffIgnored {
		mustWrite(t, filepath.Join(s.chassis, "softoff_ignored"), "", 0o644)
	}
	prog := filepath.Join(s.dir, "chassis.sh")
	mustWrite(t, prog, chassisProgram, 0o755)
	mustWrite(t, filepath.Join(s.dir, "bmc.emu"), bmcEmu, 0o644)

	solAddr := ""
	if opts.SOL {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("peertest: SOL host listener: %v", err)
		}
		s.solLn = ln
		solAddr = ln.Addr().String()
		go s.acceptSOL()
	}
	t.Cleanup(s.Stop)

	// The UDP port is chosen by binding port 0 and releasing it; another
	// process may take it before ipmi_sim binds, so a start that does not
	// come up is retried on a new port.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freeUDPPort()
		if err != nil {
			t.Fatalf("peertest: %v", err)
		}
		mustWrite(t, filepath.Join(s.dir, "lan.conf"), lanConf(port, prog, s.chassis, solAddr, opts), 0o600)
		if lastErr = s.start(bin, port); lastErr == nil {
			return s
		}
		s.kill()
	}
	t.Fatalf("peertest: ipmi_sim did not start: %v\nipmi_sim output:\n%s", lastErr, s.output.String())
	return nil
}

// bmcEmu declares the BMC itself (IPMI 2.0, chassis device support) for
// ipmi_sim_cmd(5).
const bmcEmu = `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
`

// lanConf renders ipmi_lan(5) configuration for one LAN channel on
// loopback with one administrator user (user 2; user 1 is the anonymous
// user). Auth type none is allowed so IPMI v1.5 plaintext sessions work.
func lanConf(port int, prog, chassisDir, solAddr string, opts IPMISimOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name \"peertest\"\nset_working_mc 0x20\n  startlan 1\n")
	fmt.Fprintf(&b, "    addr 127.0.0.1 %d\n    priv_limit admin\n", port)
	for _, p := range []string{"callback", "user", "operator", "admin"} {
		fmt.Fprintf(&b, "    allowed_auths_%s none md2 md5 straight\n", p)
	}
	fmt.Fprintf(&b, "    guid %s\n  endlan\n", simGUID)
	fmt.Fprintf(&b, "  chassis_control \"%s %s\"\n", prog, chassisDir)
	if solAddr != "" {
		fmt.Fprintf(&b, "  sol \"tcp:%s\" 115200\n", solAddr)
	}
	fmt.Fprintf(&b, "  user 2 true \"%s\" \"%s\" admin 10\n", opts.Username, opts.Password)
	return b.String()
}

func (s *IPMISim) start(bin string, port int) error {
	s.output = &syncbuf.Buffer{}
	s.cmd = exec.Command(bin, "-n",
		"-c", filepath.Join(s.dir, "lan.conf"),
		"-f", filepath.Join(s.dir, "bmc.emu"),
		"-s", filepath.Join(s.dir, "state"))
	s.cmd.Dir = s.dir
	s.cmd.Stdout = s.output
	s.cmd.Stderr = s.output
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(s.cmd, s.exited)
	s.Port = port
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return awaitPong(s.Addr, s.exited, 10*time.Second)
}

// asfPing is an RMCP presence ping: RMCP header (version 6, reserved,
// sequence 0xFF = no RMCP ACK, class 6 = ASF), then the ASF message header
// (IANA 4542, type 0x80 ping, tag, reserved, data length 0). IPMI v2.0
// section 13.2.3 and DMTF DSP0136 section 3.2.4.
var asfPing = []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x5a, 0x00, 0x00}

// awaitPong pings addr until an ASF presence pong (message type 0x40)
// answers, the process exits, or the deadline passes. Each ping waits
// 100 ms for its answer, so the poll is paced by the network, not a sleep.
func awaitPong(addr string, exited <-chan struct{}, within time.Duration) error {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(within)
	buf := make([]byte, 512)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("ipmi_sim exited during start-up")
		default:
		}
		if _, err := conn.Write(asfPing); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := conn.Read(buf)
		if err == nil && n >= 9 && buf[3] == 0x06 && buf[8] == 0x40 {
			return nil
		}
		if err != nil && !isTimeout(err) {
			// ICMP port unreachable surfaces as a read error on a connected
			// UDP socket: not listening yet. Wait for the process a little.
			select {
			case <-exited:
				return errors.New("ipmi_sim exited during start-up")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return fmt.Errorf("no ASF pong from %s within %v", addr, within)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *IPMISim) acceptSOL() {
	for {
		c, err := s.solLn.Accept()
		if err != nil {
			return
		}
		select {
		case s.solConns <- c:
		default:
			c.Close() // nobody will read a fourth connection
		}
	}
}

// SOLHost returns the host side of the serial console: bytes a SOL client
// types are read from it, bytes written to it reach the SOL client. It
// waits up to 10 s for ipmi_sim to connect. It needs IPMISimOptions.SOL.
func (s *IPMISim) SOLHost(t testing.TB) net.Conn {
	t.Helper()
	if s.solLn == nil {
		t.Fatal("peertest: SOLHost needs IPMISimOptions{SOL: true}")
	}
	select {
	case c := <-s.solConns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatalf("peertest: ipmi_sim did not connect to the SOL host listener %s within 10 s", s.solLn.Addr())
	}
	return nil
}

// Power reports the chassis power state as the chassis program holds it.
func (s *IPMISim) Power(t testing.TB) bool {
	t.Helper()
	return s.readState(t, "power") == "1"
}

// SetPower changes the power state behind the BMC's back, as a person at
// the machine's power button would.
func (s *IPMISim) SetPower(t testing.TB, on bool) {
	t.Helper()
	v := "0\n"
	if on {
		v = "1\n"
	}
	tmp := filepath.Join(s.chassis, "power.tmp")
	mustWrite(t, tmp, v, 0o644)
	if err := os.Rename(tmp, filepath.Join(s.chassis, "power")); err != nil {
		t.Fatalf("peertest: %v", err)
	}
}

// BootDevice is the boot device ipmi_sim last passed to the chassis
// program: "pxe", "default" (Set System Boot Options "force boot from
// default hard drive"), "none", "cdrom" or "bios"; "none" before any.
func (s *IPMISim) BootDevice(t testing.TB) string {
	t.Helper()
	return s.readState(t, "boot")
}

// ChassisCalls lists the chassis program's invocations in order, e.g.
// "get power", "set power 0", "set reset 1", "set boot pxe".
func (s *IPMISim) ChassisCalls(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.chassis, "calls"))
	if err != nil {
		t.Fatalf("peertest: %v", err)
	}
	return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
}

// AwaitPower waits until the chassis power state is want, for changes that
// ipmi_sim makes after answering (the power-on half of a power cycle comes
// about a second later). It polls the state file with a deadline.
func (s *IPMISim) AwaitPower(t testing.TB, want bool, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.Power(t) != want {
		select {
		case <-ctx.Done():
			t.Fatalf("peertest: power did not become %v within %v; chassis calls: %q", onOff(want), within, s.ChassisCalls(t))
		case <-tick.C:
		}
	}
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func (s *IPMISim) readState(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.chassis, name))
	if err != nil {
		t.Fatalf("peertest: reading chassis state: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// Output returns what ipmi_sim printed so far, for failure messages.
func (s *IPMISim) Output() string { return s.output.String() }

// Stop kills ipmi_sim and waits for it to exit. It is idempotent and runs
// automatically at cleanup.
func (s *IPMISim) Stop() {
	s.stopOnce.Do(func() {
		s.kill()
		if s.solLn != nil {
			s.solLn.Close()
		}
	})
}

func (s *IPMISim) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free UDP port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func mustMkdir(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("peertest: %v", err)
	}
}

func mustWrite(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatalf("peertest: %v", err)
	}
}
