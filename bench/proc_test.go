package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Captured on the benchmark machine (Linux 6.x): /proc/PID/stat of a
// long-running process (utime 204, stime 1013 ticks) and the Vm lines of
// /proc/PID/status of a sleep(1).
const (
	statCapture   = "1 (process_api) S 0 0 0 0 -1 4194560 170019 47754975 0 20030 204 1013 184471 44240 10 -10 13 0 24 44228608 3273 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	statusCapture = "Name:\tsleep\nVmPeak:\t    2920 kB\nVmSize:\t    2920 kB\nVmLck:\t       0 kB\nVmPin:\t       0 kB\nVmHWM:\t    1760 kB\nVmRSS:\t    1712 kB\nVmData:\t     224 kB\n"
)

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"capture", statCapture, 12170 * time.Millisecond, false},
		{"command name with spaces and parentheses",
			strings.Replace(statCapture, "(process_api)", "(obmd (x) y)", 1), 12170 * time.Millisecond, false},
		{"no command name", "1 S 0 0", 0, true},
		{"truncated", "1 (obmd) S 0 0 0 0 -1 4194560 1 2 3 4 5", 0, true},
		{"not a number", strings.Replace(statCapture, " 204 ", " x ", 1), 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseStatCPU = %v, %v; want %v (error: %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseStatusKB(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, field string
		status      string
		want        int64
		wantErr     bool
	}{
		{"VmRSS", "VmRSS:", statusCapture, 1712 << 10, false},
		{"VmHWM", "VmHWM:", statusCapture, 1760 << 10, false},
		{"absent (a kernel thread)", "VmRSS:", "Name:\tkthreadd\n", 0, true},
		{"unit not kB", "VmRSS:", "VmRSS:\t 12 MB\n", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatusKB([]byte(tc.status), tc.field)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseStatusKB(%s) = %v, %v; want %v (error: %v)", tc.field, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzParseProc(f *testing.F) {
	f.Add([]byte(statCapture))
	f.Add([]byte(statusCapture))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseStatCPU(b); err == nil && d < 0 {
			t.Fatalf("negative CPU time %v", d)
		}
		_, _ = parseStatusKB(b, "VmRSS:")
	})
}

func TestReadProcUsageSelf(t *testing.T) {
	t.Parallel()
	u, err := ReadProcUsage(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if u.RSS <= 0 || u.HWM < u.RSS {
		t.Errorf("implausible memory figures for this process: %+v", u)
	}
	cpu, err := SelfCPU()
	if err != nil || cpu <= 0 {
		t.Errorf("SelfCPU = %v, %v; a running test has used some CPU", cpu, err)
	}
}

func TestRaiseFileLimit(t *testing.T) {
	t.Parallel()
	got, err := RaiseFileLimit(1024)
	if err != nil || got < 1024 {
		t.Errorf("RaiseFileLimit(1024) = %d, %v", got, err)
	}
}
