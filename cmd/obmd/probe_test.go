package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"obmd/fakebmc"
)

const probePass = "probe-Pw-91c"

// startProbeBMC starts one fakebmc (machine off) offering suites (nil:
// the default) with quirks.
func startProbeBMC(t *testing.T, suites []uint8, quirks ...fakebmc.Quirk) string {
	t.Helper()
	qs := fakebmc.QuirkSet(quirks...)
	f, err := fakebmc.StartFleet(context.Background(), fakebmc.FleetConfig{
		Addr: "127.0.0.1:0",
		BMC: fakebmc.BMCConfig{Users: []fakebmc.User{{Name: "admin", Password: []byte(probePass)}},
			CipherSuites: suites, Quirks: qs},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f.Addr(0)
}

// runProbeCmd runs "obmd probe args" with the password in the environment
// (unless pass is empty) and returns the exit status, stdout and stderr.
func runProbeCmd(t *testing.T, pass string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := commandEnv{
		Getenv: func(k string) string {
			if k == probePassEnv {
				return pass
			}
			return ""
		},
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
	}
	code := subcommands["probe"](args, env)
	if pass != "" && strings.Contains(stdout.String()+stderr.String(), pass) {
		t.Errorf("the password appears in probe's output:\n%s%s", stdout.String(), stderr.String())
	}
	return code, stdout.String(), stderr.String()
}

func TestProbeHealthyBMC(t *testing.T) {
	t.Parallel()
	addr := startProbeBMC(t, []uint8{1, 2, 3, 17})
	code, out, errOut := runProbeCmd(t, probePass, "-addr", addr, "-user", "admin", "-console", "500ms")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	for _, want := range []string{
		"BMC: " + addr + ", user admin, privilege administrator",
		"authentication: channel 1; IPMI v2.0 (RMCP+) yes",
		"cipher suites offered: 1, 2, 3, 17\n",
		"cipher suite chosen: 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128)",
		"session privilege: administrator",
		"handshakes: 1\n",
		"quirks detected: none",
		"power: off",
		"console: SOL streams, ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestProbeQuirkyBMC(t *testing.T) {
	t.Parallel()
	addr := startProbeBMC(t, nil, fakebmc.QuirkSuite17Refused, fakebmc.QuirkNoCipherList)
	code, out, errOut := runProbeCmd(t, probePass, "-addr", addr, "-user", "admin", "-privilege", "operator")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	for _, want := range []string{
		"cipher suites offered: not listed",
		"cipher suite chosen: 3 ",
		"session privilege: operator",
		"handshakes: 2",
		"  no-cipher-suite-list: ",
		"power: off",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Pinned: the list is not asked.
	code, out, _ = runProbeCmd(t, probePass, "-addr", addr, "-user", "admin", "-cipher-suite", "3")
	if code != 0 || !strings.Contains(out, "cipher suites offered: not asked (-cipher-suite 3)") {
		t.Fatalf("pinned: exit %d\n%s", code, out)
	}
}

// A BMC without encryption: the suites it offers, and one line saying why
// obmd would refuse it, naming the opt-in.
func TestProbeBMCWithoutEncryption(t *testing.T) {
	t.Parallel()
	addr := startProbeBMC(t, []uint8{1, 2})
	start := time.Now()
	code, out, errOut := runProbeCmd(t, probePass, "-addr", addr, "-user", "admin")
	if code != 1 || !strings.Contains(out, "cipher suites offered: 1, 2\n") ||
		strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "cipher_suite") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v", took)
	}
}

func TestProbeBadUsage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, pass string
		args       []string
		want       string
	}{
		{"no password", "", []string{"-addr", "127.0.0.1", "-user", "admin"}, probePassEnv + " is not set"},
		{"no address", probePass, []string{"-user", "admin"}, "-addr is missing"},
		{"bad suite and privilege", probePass, []string{"-addr", "h", "-user", "u", "-cipher-suite", "4", "-privilege", "user"},
			`-cipher-suite 4 is not supported (want one of [1 2 3 15 16 17], or leave it out to pick the strongest of 17 and 3); -privilege "user" is not supported`},
		{"unknown flag", probePass, []string{"-pass", "x"}, "flag provided but not defined: -pass"},
		{"stray argument", probePass, []string{"-addr", "h", "-user", "u", "extra"}, "unexpected arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runProbeCmd(t, tc.pass, tc.args...)
			if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "obmd probe: ") || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and one line saying %q", code, out, errOut, tc.want)
			}
		})
	}
	code, out, _ := runProbeCmd(t, "", "-h")
	if code != 0 || !strings.Contains(out, probePassEnv) || !strings.Contains(out, "-console") {
		t.Fatalf("-h: exit %d\n%s", code, out)
	}
}
