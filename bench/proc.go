package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Resource figures of processes, read the way ps and top read them: CPU
// from /proc/PID/stat (user + system time) or getrusage(2) for this
// process, memory from /proc/PID/status (VmRSS, resident now; VmHWM, the
// peak).

// ProcUsage is one process's resource use at one moment.
type ProcUsage struct {
	CPU time.Duration // user + system time consumed so far
	RSS int64         // resident set size now, bytes
	HWM int64         // peak resident set size, bytes
}

// userHZ is the unit of the times in /proc/PID/stat: USER_HZ, fixed at
// 100 in the Linux ABI whatever the kernel's internal tick.
const userHZ = 100

// ReadProcUsage reads pid's CPU time and memory from /proc.
func ReadProcUsage(pid int) (ProcUsage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcUsage{}, fmt.Errorf("reading CPU time of process %d: %w", pid, err)
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return ProcUsage{}, fmt.Errorf("process %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcUsage{}, fmt.Errorf("reading memory use of process %d: %w", pid, err)
	}
	rss, err1 := parseStatusKB(status, "VmRSS:")
	hwm, err2 := parseStatusKB(status, "VmHWM:")
	if err := errors.Join(err1, err2); err != nil {
		return ProcUsage{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return ProcUsage{CPU: cpu, RSS: rss, HWM: hwm}, nil
}

// parseStatCPU returns utime + stime (fields 14 and 15 of proc(5)'s
// /proc/PID/stat). The command name, field 2, may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("/proc/PID/stat has no command name in parentheses")
	}
	fields := bytes.Fields(stat[end+1:])
	// fields[0] is field 3 (state), so field n is fields[n-3].
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat has %d fields after the command name; want at least 13", len(fields))
	}
	var ticks int64
	for _, f := range fields[14-3 : 15-3+1] {
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("/proc/PID/stat CPU time %q is not a tick count", f)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// parseStatusKB returns the "NAME:   1234 kB" line of /proc/PID/status in
// bytes.
func parseStatusKB(status []byte, name string) (int64, error) {
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("/proc/PID/status line %q is not \"%s N kB\"", line, name)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/PID/status line %q: %w", line, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/PID/status has no %s line", name)
}

// SelfCPU is this process's user + system time so far, from getrusage(2)
// (microsecond resolution, unlike /proc's 10 ms ticks).
func SelfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// RaiseFileLimit raises this process's open-file limit (RLIMIT_NOFILE) to
// want, or as far as the hard limit allows, and returns the limit now in
// force. A thousand viewers and a thousand BMC sockets need far more than
// the usual 1024; processes started afterwards inherit the raised limit.
func RaiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("reading the open-file limit: %w", err)
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	raised := lim
	raised.Cur = want
	if raised.Max < want {
		raised.Max = want // only a privileged process may; fall back below
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
		return want, nil
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("raising the open-file limit to %d: %w", lim.Max, err)
	}
	return lim.Cur, nil
}
