package main

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"obmd/rmcpplus"
)

func TestCipherSuitesFlag(t *testing.T) {
	cases := []struct {
		args []string
		want []uint8
	}{
		{nil, []uint8{1, 2, 3, 17}},
		{[]string{"-cipher-suites", "17, 3"}, []uint8{17, 3}},
		{[]string{"-cipher-suites", "1,2"}, []uint8{1, 2}},
		{[]string{"-cipher-suites", "15,16,17"}, []uint8{15, 16, 17}},
	}
	for _, tc := range cases {
		o, err := parseFlags(tc.args, noEnv)
		if err != nil {
			t.Fatalf("parseFlags(%q): %v", tc.args, err)
		}
		if !slices.Equal(o.suites, tc.want) {
			t.Errorf("parseFlags(%q): suites %v, want %v", tc.args, o.suites, tc.want)
		}
	}
}

func TestBadCipherSuitesFlagExitTwoWithOneLine(t *testing.T) {
	checkBadFlags(t, []badFlagCase{
		{"not a number", []string{"-cipher-suites", "3,aes"}, `-cipher-suites: "aes" is not a cipher suite number`},
		{"unsupported suite", []string{"-cipher-suites", "3,8"}, "-cipher-suites: cipher suite 8 is not supported (supported: 1, 2, 3, 15, 16, 17)"},
		{"suite 0", []string{"-cipher-suites", "0"}, "-cipher-suites: cipher suite 0 is not supported"},
		{"listed twice", []string{"-cipher-suites", "17,3,17"}, "-cipher-suites: cipher suite 17 is listed twice"},
		{"empty", []string{"-cipher-suites", ""}, "-cipher-suites: no cipher suite given"},
		{"with another problem", []string{"-cipher-suites", "99", "-count", "0"}, "-count 0 is not between 1 and 65535; -cipher-suites: cipher suite 99 is not supported"},
	})
}

func TestHelpDocumentsSessionQuirksAndSuites(t *testing.T) {
	var stderr syncBuffer
	if code := run(t.Context(), []string{"-help"}, noEnv, &stderr); code != 0 {
		t.Errorf("-help exit code %d, want 0", code)
	}
	names := []string{"-cipher-suites LIST", "rakp2-long-authcode", "bad-checksum", "rakp-error-tag0", "opensession-short-error",
		"suite17-zero-authcode", "suite17-refused", "no-cipher-list", "handshake-resend-error", "admin-refused", "intel20"}
	for _, want := range names {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// A BMC served with -cipher-suites 1,2 offers no encryption: obmd's client
// refuses to negotiate without it, and takes suite 2 only when pinned.
func TestServesTheCipherSuitesGiven(t *testing.T) {
	base := freePortRun(t, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:" + strconv.Itoa(base), "-cipher-suites", "1,2", "-quirks", "admin-refused"}, noEnv, &stderr)
	}()
	stderr.waitFor(t, "BMC ready", 1, done)
	if !strings.Contains(stderr.String(), "cipher_suites=1,2") || !strings.Contains(stderr.String(), "quirks=admin-refused") {
		t.Errorf("the ready line does not say what the BMC offers:\n%s", stderr.String())
	}
	cfg := rmcpplus.ClientConfig{Addr: "127.0.0.1:" + strconv.Itoa(base), Username: "admin", Password: []byte("secret"), Timeout: time.Second}
	var nce *rmcpplus.NoConfidentialityError
	if s, err := rmcpplus.Dial(ctx, cfg); !errors.As(err, &nce) || !slices.Equal(nce.Offered, []uint8{1, 2}) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("negotiated Dial: %v; want a NoConfidentialityError listing [1 2]", err)
	}
	cfg.CipherSuite = 2
	s, err := rmcpplus.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial with suite 2 pinned: %v", err)
	}
	// The quirk is in effect too: administrator was refused.
	if n := s.Negotiation(); n.Suite != 2 || !slices.ContainsFunc(n.Detected, func(d rmcpplus.Detection) bool { return d.Name == rmcpplus.QuirkAdminRefused }) {
		t.Errorf("negotiation %+v: want suite 2 and %s detected", n, rmcpplus.QuirkAdminRefused)
	}
	s.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
