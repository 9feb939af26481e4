package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFormatters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    func(float64) string
		in   float64
		want string
	}{
		{"microseconds", FmtDuration, 19.44e-6, "19.4 µs"},
		{"milliseconds", FmtDuration, 0.0306, "30.6 ms"},
		{"seconds", FmtDuration, 1.234, "1.23 s"},
		{"small count", FmtCount, 74.3, "74.3"},
		{"thousands", FmtCount, 19800, "19.8 k"},
		{"thousands below ten", FmtCount, 1234, "1.23 k"},
		{"millions", FmtCount, 2.5e6, "2.50 M"},
		{"bytes", FmtBytes, 512, "512 B"},
		{"KiB", FmtBytes, 44.2 * 1024, "44.2 KiB"},
		{"MiB", FmtBytes, 449 << 20, "449 MiB"},
		{"ratio", FmtRatio, 267.4, "267x"},
		{"percent", FmtPercent, 0.574, "57%"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f(tc.in); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSeriesSpread(t *testing.T) {
	t.Parallel()
	s := Series{3, 1, 2}
	if got := s.Spread(FmtInt); got != "2 [1-3]" {
		t.Errorf("Spread = %q, want median [min-max] \"2 [1-3]\"", got)
	}
	if got := (Series{7}).Spread(FmtInt); got != "7" {
		t.Errorf("one run: %q, want \"7\"", got)
	}
}

func TestAppendResults(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	r := Report{
		Date:    time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
		Machine: Machine{CPUs: 2, CPUModel: "Test CPU", MemTotal: "1 kB", Kernel: "6.0", GoVersion: "go1.26", Ipmitool: "ipmitool version 1.8.19"},
		Command: "make bench",
		Runs:    5,
		Rows:    []Row{{Benchmark: "b", Metric: "m", Value: "1", Goal: "< 2", Met: Met}, {Benchmark: "b", Metric: "n", Value: "3", Goal: "< 2", Met: Missed}},
		Notes:   []string{"a note"},
	}
	for range 2 {
		if err := AppendResults(path, r); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"# obmd benchmark results",
		"## 2026-01-02 03:04 UTC",
		"2 CPUs (nproc), Test CPU",
		"`make bench`",
		"median of 5 runs",
		"| b | m | 1 |  |  | < 2 | yes |",
		"| b | n | 3 |  |  | < 2 | **no** |",
		"- a note",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("results file lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "# obmd benchmark results"); n != 1 {
		t.Errorf("header written %d times, want once", n)
	}
	if n := strings.Count(got, "## 2026-01-02"); n != 2 {
		t.Errorf("%d sections, want 2 (appended)", n)
	}
}
