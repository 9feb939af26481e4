package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Ipmitool runs ipmitool against one BMC, one process per command: the
// baseline, since the original obmd ran exactly this for every request.
// The password travels in the IPMI_PASSWORD environment variable (-E),
// never on the command line.
type Ipmitool struct {
	Path        string // the ipmitool binary (see FindIpmitool)
	Addr        string // BMC host:port
	Username    string
	Password    string
	CipherSuite int // -C; 17 (HMAC-SHA256, AES) is what obmd prefers
}

// FindIpmitool returns the ipmitool binary, or an error saying how to
// install it.
func FindIpmitool() (string, error) {
	p, err := exec.LookPath("ipmitool")
	if err != nil {
		return "", errors.New("ipmitool is not installed (apt-get install ipmitool): the baseline needs it")
	}
	return p, nil
}

// Args is the argument list for command (after the program name); it
// never holds the password.
func (t Ipmitool) Args(command ...string) ([]string, error) {
	host, port, err := splitHostPort(t.Addr)
	if err != nil {
		return nil, err
	}
	args := []string{"-I", "lanplus", "-C", strconv.Itoa(t.CipherSuite),
		"-H", host, "-p", strconv.Itoa(port), "-U", t.Username, "-E"}
	return append(args, command...), nil
}

// Run runs one ipmitool process and returns its standard output and how
// long it took from fork to exit.
func (t Ipmitool) Run(ctx context.Context, command ...string) ([]byte, time.Duration, error) {
	args, err := t.Args(command...)
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.CommandContext(ctx, t.Path, args...)
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+t.Password)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		return stdout.Bytes(), elapsed, fmt.Errorf("ipmitool %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), elapsed, nil
}

// PowerStatus runs "chassis power status" and checks the answer reads
// "Chassis Power is on" or "... off".
func (t Ipmitool) PowerStatus(ctx context.Context) (time.Duration, error) {
	out, elapsed, err := t.Run(ctx, "chassis", "power", "status")
	if err != nil {
		return elapsed, err
	}
	s := strings.TrimSpace(string(out))
	if s != "Chassis Power is on" && s != "Chassis Power is off" {
		return elapsed, fmt.Errorf("ipmitool chassis power status printed %q, not the power state", s)
	}
	return elapsed, nil
}

// splitHostPort splits host:port with a numeric port.
func splitHostPort(addr string) (string, int, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("BMC address %q has no port", addr)
	}
	port, err := strconv.Atoi(addr[i+1:])
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("BMC address %q has no valid port", addr)
	}
	return strings.Trim(addr[:i], "[]"), port, nil
}
