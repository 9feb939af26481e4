package fakebmc

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// COMPAT.md is the compatibility matrix as a document: the rows of
// compat_session_test.go and compat_sol_test.go, rendered. The tests
// that run the rows assert every cell; TestCompatMatrixInStep keeps the
// document the rendering of the rows, so the two cannot drift.
// OBMD_UPDATE_COMPAT=1 rewrites it.

const compatDoc = "COMPAT.md"

func renderCompatMatrix() string {
	var b strings.Builder
	b.WriteString("<!-- Generated from fakebmc/compat_session_test.go and compat_sol_test.go; TestCompatMatrixInStep keeps it in step. -->\n")
	b.WriteString("# Compatibility matrix: real BMC deviations x {ipmitool, FreeIPMI, obmd}\n\n")
	b.WriteString("Each row is a deviation of real BMCs catalogued with its rule in `BMC-QUIRKS.md`, reproduced by `fakebmc -quirks NAME`. " +
		"The peers are ipmitool 1.8.19 and FreeIPMI 1.6.10, run with no workaround flag; obmd runs with no quirk configured. " +
		"Every cell is asserted in `make test`, so the table documents what the peers really do. The rule it holds: wherever ipmitool or FreeIPMI succeed without flags, obmd succeeds too.\n\n")
	b.WriteString(renderSessionCompatTable())
	b.WriteString("\n")
	b.WriteString(renderSOLCompatTable())
	return b.String()
}

// renderSessionCompatTable is the session half of the matrix as markdown.
func renderSessionCompatTable() string {
	var b strings.Builder
	b.WriteString("## Handshake and session\n\n")
	b.WriteString("`ipmitool -I lanplus -N 1 -R 1 chassis power status` (without `-C`, and with `-C 17`), `ipmipower --stat` (FreeIPMI's defaults: suite 3, operator), and obmd's client (power on, off, status and the boot device; on the error rows, the error, in under 2 s). Asserted by `TestSessionCompatibility`.\n\n")
	b.WriteString("| row | quirk | ipmitool | ipmitool -C 17 | ipmipower | obmd | obmd reports |\n|---|---|---|---|---|---|---|\n")
	for _, r := range sessionCompatRows() {
		q := "—"
		switch {
		case r.quirk != "":
			q = "`" + string(r.quirk) + "`"
		case len(r.suites) > 0:
			q = fmt.Sprintf("`-cipher-suites %s`", joinSuites(r.suites))
		}
		det := r.obmd.detected
		if det == "" {
			det = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.name, q,
			peerCell(r.ipmitool, ipmitoolOK), peerCell(r.ipmitool17, ipmitoolOK), peerCell(r.freeipmi, freeipmiOK), obmdCell(r.obmd), det)
	}
	return b.String()
}

func joinSuites(s []uint8) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ",")
}

// peerCell is a peer's outcome in words: what it printed where that is
// more than the plain success line.
func peerCell(o, plain peerOutcome) string {
	switch {
	case o.ok && o.says == plain.says:
		return "works"
	case o.ok:
		return fmt.Sprintf("works, after printing %q", o.says)
	}
	if o.orSays != "" {
		return fmt.Sprintf("fails: %q (or %q)", o.says, o.orSays)
	}
	return fmt.Sprintf("fails: %q", o.says)
}

func obmdCell(o obmdOutcome) string {
	if !o.ok {
		return fmt.Sprintf("error in < 2 s, naming %q", o.says)
	}
	cell := fmt.Sprintf("works on suite %d", o.suite)
	if o.handshakes > 1 {
		cell += fmt.Sprintf(" (%d handshakes the first time", o.handshakes)
		if o.again <= 1 {
			cell += ", 1 after"
		}
		cell += ")"
	}
	return cell
}

func TestCompatMatrixInStep(t *testing.T) {
	want := renderCompatMatrix()
	if os.Getenv("OBMD_UPDATE_COMPAT") == "1" {
		if err := os.WriteFile(compatDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(compatDoc)
	if err != nil || string(got) != want {
		t.Fatalf("fakebmc/%s is not the rendering of the compatibility rows (OBMD_UPDATE_COMPAT=1 go test -run TestCompatMatrixInStep ./fakebmc rewrites it); want:\n%s", compatDoc, want)
	}
}
