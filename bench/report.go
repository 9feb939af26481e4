package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is one dated section of bench/RESULTS.md: where and how the
// figures were measured, and a table of medians over several runs.
type Report struct {
	Date    time.Time
	Machine Machine
	Command string // exactly what was run
	Runs    int
	// LoadBefore and LoadAfter are /proc/loadavg around the runs: other
	// work on the machine shows there.
	LoadBefore, LoadAfter string
	Rows                  []Row
	Notes                 []string // free text after the table (what limits a missed goal)
}

// Row is one figure: obmd's median, the baseline's median measured in the
// same runs, and the goal.
type Row struct {
	Benchmark, Metric string
	Value             string // median, and the range over the runs
	Baseline          string // median of the baseline, or empty
	Ratio             string // how many times better than the baseline, or empty
	Goal              string
	Met               Verdict
}

// Verdict says whether a row meets its goal.
type Verdict int

// Verdicts.
const (
	NoGoal Verdict = iota
	Met
	Missed
)

func (v Verdict) String() string {
	switch v {
	case Met:
		return "yes"
	case Missed:
		return "**no**"
	}
	return ""
}

// Judge is Met when ok, else Missed.
func Judge(ok bool) Verdict {
	if ok {
		return Met
	}
	return Missed
}

// Machine describes the benchmark host.
type Machine struct {
	CPUs      int    // nproc: CPUs this process may use
	CPUModel  string // /proc/cpuinfo "model name"
	MemTotal  string // /proc/meminfo MemTotal
	Kernel    string // uname -r
	GoVersion string
	Ipmitool  string // ipmitool -V, or why it is absent
}

// DescribeMachine reads the host's description.
func DescribeMachine(ctx context.Context) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = procField(b, "model name")
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotal = procField(b, "MemTotal")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Ipmitool = "not installed"
	if p, err := FindIpmitool(); err == nil {
		if out, err := exec.CommandContext(ctx, p, "-V").CombinedOutput(); err == nil {
			m.Ipmitool = strings.TrimSpace(string(out))
		}
	}
	return m
}

// LoadAverage is the first three fields of /proc/loadavg, or "unknown".
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// procField returns the value of the first "name : value" line.
func procField(b []byte, name string) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// Markdown renders the section.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", r.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %d CPUs (nproc), %s, %s RAM, Linux %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.Kernel)
	fmt.Fprintf(&b, "- Go: %s; baseline: %s\n", r.Machine.GoVersion, r.Machine.Ipmitool)
	fmt.Fprintf(&b, "- Command: `%s`\n", r.Command)
	if r.LoadBefore != "" {
		fmt.Fprintf(&b, "- Load average (1, 5, 15 min) before: %s; after: %s\n", r.LoadBefore, r.LoadAfter)
	}
	fmt.Fprintf(&b, "- Figures: median of %d runs [min-max]; every baseline was measured in the same runs, against the same simulated BMCs.\n\n", r.Runs)
	b.WriteString("| Benchmark | Metric | obmd | Baseline | Ratio | Goal | Met |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n",
			row.Benchmark, row.Metric, row.Value, row.Baseline, row.Ratio, row.Goal, row.Met)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// resultsHeader starts a new RESULTS.md.
const resultsHeader = `# obmd benchmark results

Each section is one ` + "`make bench`" + ` run, appended by cmd/obmdbench; the newest
is last. What each benchmark measures and how is documented in package
bench (bench/*.go). Ratios are against baselines measured in the same run on
the same machine.

`

// AppendResults appends r to the results file, creating it with a header.
func AppendResults(path string, r Report) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		if _, err := f.WriteString(resultsHeader); err != nil {
			f.Close()
			return err
		}
	}
	if _, err := f.WriteString(r.Markdown()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Series is one figure over several runs.
type Series []float64

// Median is the series' median.
func (s Series) Median() float64 { return Median(s) }

// Spread renders the median and the range, with format f for each value.
func (s Series) Spread(f func(float64) string) string {
	if len(s) == 0 {
		return "n/a"
	}
	if len(s) == 1 {
		return f(s[0])
	}
	return fmt.Sprintf("%s [%s-%s]", f(s.Median()), f(slices.Min(s)), f(slices.Max(s)))
}

// Formatters for Series.Spread and rows.

// sig3 renders v with about three significant digits, never in exponent
// form.
func sig3(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// FmtDuration renders seconds in s, ms or µs.
func FmtDuration(sec float64) string {
	switch a := math.Abs(sec); {
	case a >= 1:
		return sig3(sec) + " s"
	case a >= 1e-3:
		return sig3(sec*1e3) + " ms"
	}
	return sig3(sec*1e6) + " µs"
}

// FmtCount renders a count (k for thousands, M for millions).
func FmtCount(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return sig3(v/1e6) + " M"
	case a >= 1e3:
		return sig3(v/1e3) + " k"
	}
	return sig3(v)
}

// FmtBytes renders a byte count in binary units.
func FmtBytes(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1<<30:
		return sig3(v/(1<<30)) + " GiB"
	case a >= 1<<20:
		return sig3(v/(1<<20)) + " MiB"
	case a >= 1<<10:
		return sig3(v/(1<<10)) + " KiB"
	}
	return fmt.Sprintf("%.0f B", v)
}

// FmtRatio renders a ratio as "123x".
func FmtRatio(v float64) string { return sig3(v) + "x" }

// FmtPercent renders a fraction as a percentage.
func FmtPercent(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }

// FmtInt renders an exact integer.
func FmtInt(v float64) string { return fmt.Sprintf("%.0f", v) }
