package manager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"obmd/fakebmc"
)

// testCAPEM is a real certificate (fakebmc makes one per fleet).
func testCAPEM(t *testing.T) string {
	t.Helper()
	f, err := fakebmc.StartFleet(t.Context(), fakebmc.FleetConfig{Addr: "127.0.0.1:0",
		BMC: fakebmc.BMCConfig{Users: []fakebmc.User{{Name: "a", Password: []byte("b")}}, Redfish: &fakebmc.RedfishConfig{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return string(f.RedfishCertPEM())
}

func TestParseRedfishInfo(t *testing.T) {
	t.Parallel()
	ca := testCAPEM(t)
	caJSON, _ := json.Marshal(ca)
	tests := []struct {
		name string
		info string
		want RedfishInfo // checked when problems is empty
		// problems: substrings each of which some problem must contain.
		problems []string
	}{
		{name: "host", info: `{"addr": "10.0.0.4", "user": "u", "pass": "p"}`,
			want: RedfishInfo{BaseURL: "https://10.0.0.4:443", User: "u", Pass: "p", VerifyTLS: true}},
		{name: "host and port", info: `{"addr": "bmc-7.example:8443", "user": "u", "pass": "p"}`,
			want: RedfishInfo{BaseURL: "https://bmc-7.example:8443", User: "u", Pass: "p", VerifyTLS: true}},
		{name: "https URL", info: `{"addr": "https://10.0.0.4/", "user": "u", "pass": "p", "system": "System.Embedded.1"}`,
			want: RedfishInfo{BaseURL: "https://10.0.0.4:443", User: "u", Pass: "p", System: "System.Embedded.1", VerifyTLS: true}},
		{name: "IPv6 URL", info: `{"addr": "https://[fd00::4]:8443", "user": "u", "pass": "p"}`,
			want: RedfishInfo{BaseURL: "https://[fd00::4]:8443", User: "u", Pass: "p", VerifyTLS: true}},
		{name: "opt out of verification", info: `{"addr": "h", "user": "u", "pass": "p", "verify_tls": false}`,
			want: RedfishInfo{BaseURL: "https://h:443", User: "u", Pass: "p", VerifyTLS: false}},
		{name: "ca_cert", info: `{"addr": "h", "user": "u", "pass": "p", "ca_cert": ` + string(caJSON) + `}`,
			want: RedfishInfo{BaseURL: "https://h:443", User: "u", Pass: "p", VerifyTLS: true, CACert: []byte(ca)}},
		{name: "console defaults to the same host on 623", info: `{"addr": "https://10.0.0.4:8443", "user": "u", "pass": "p", "console": {"type": "ipmi"}}`,
			want: RedfishInfo{BaseURL: "https://10.0.0.4:8443", User: "u", Pass: "p", VerifyTLS: true,
				Console: &IPMIInfo{Addr: "10.0.0.4:623", User: "u", Pass: "p", Privilege: 4}}},
		{name: "console with addr and suite", info: `{"addr": "h", "user": "u", "pass": "p", "console": {"type": "ipmi", "addr": "h:6230", "cipher_suite": 3}}`,
			want: RedfishInfo{BaseURL: "https://h:443", User: "u", Pass: "p", VerifyTLS: true,
				Console: &IPMIInfo{Addr: "h:6230", User: "u", Pass: "p", Privilege: 4, CipherSuite: 3}}},

		{name: "missing everything", info: `{}`, problems: []string{"addr is missing", "user is missing", "pass is missing"}},
		{name: "unknown field", info: `{"addr": "h", "user": "u", "pass": "p", "cipher_suite": 3}`, problems: []string{`unknown field "cipher_suite"`}},
		{name: "not an object", info: `[1]`, problems: []string{"must be a JSON object"}},
		{name: "plain http", info: `{"addr": "http://h", "user": "u", "pass": "p"}`, problems: []string{"plain http is refused"}},
		{name: "URL with a path", info: `{"addr": "https://h/redfish/v1", "user": "u", "pass": "p"}`, problems: []string{"nothing after the host"}},
		{name: "URL with credentials", info: `{"addr": "https://u:p@h", "user": "u", "pass": "p"}`, problems: []string{"must not hold credentials"}},
		{name: "bad port", info: `{"addr": "h:0", "user": "u", "pass": "p"}`, problems: []string{"port"}},
		{name: "bad host", info: `{"addr": "a b", "user": "u", "pass": "p"}`, problems: []string{"neither an IP address nor a host name"}},
		{name: "ca and no verification", info: `{"addr": "h", "user": "u", "pass": "p", "verify_tls": false, "ca_cert": ` + string(caJSON) + `}`,
			problems: []string{"contradict"}},
		{name: "ca not PEM", info: `{"addr": "h", "user": "u", "pass": "p", "ca_cert": "hello"}`, problems: []string{"ca_cert"}},
		{name: "ca a key", info: `{"addr": "h", "user": "u", "pass": "p", "ca_cert": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}`,
			problems: []string{"not a CERTIFICATE"}},
		{name: "verify_tls a string", info: `{"addr": "h", "user": "u", "pass": "p", "verify_tls": "no"}`, problems: []string{"verify_tls must be true or false"}},
		{name: "empty system", info: `{"addr": "h", "user": "u", "pass": "p", "system": ""}`, problems: []string{"system is empty"}},
		{name: "console without type", info: `{"addr": "h", "user": "u", "pass": "p", "console": {"addr": "h"}}`, problems: []string{"console: type is missing"}},
		{name: "console of another type", info: `{"addr": "h", "user": "u", "pass": "p", "console": {"type": "ssh"}}`, problems: []string{`console: type "ssh" is not supported`}},
		{name: "console extra field", info: `{"addr": "h", "user": "u", "pass": "p", "console": {"type": "ipmi", "kg": "00"}}`, problems: []string{`console: unknown field "kg"`}},
		{name: "console suite", info: `{"addr": "h", "user": "u", "pass": "p", "console": {"type": "ipmi", "cipher_suite": 0}}`, problems: []string{"console: cipher_suite 0"}},
		{name: "console password too long for IPMI", info: `{"addr": "h", "user": "u", "pass": "a-password-of-30-characters-xx", "console": {"type": "ipmi"}}`,
			problems: []string{"console: pass is 30 bytes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRedfishInfo(json.RawMessage(tc.info))
			if len(tc.problems) == 0 {
				if err != nil {
					t.Fatalf("ParseRedfishInfo: %v", err)
				}
				if fmt.Sprintf("%#v|%s|%+v", got, got.CACert, got.Console) != fmt.Sprintf("%#v|%s|%+v", tc.want, tc.want.CACert, tc.want.Console) ||
					got.Pass != tc.want.Pass {
					t.Errorf("got %s console %+v, want %s console %+v", got, got.Console, tc.want, tc.want.Console)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want a ValidationError", err)
			}
			for _, p := range tc.problems {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not mention %q", err, p)
				}
			}
		})
	}
}

// TestRedfishInfoRedacted: logs and the admin's view never hold the
// password or the CA.
func TestRedfishInfoRedacted(t *testing.T) {
	t.Parallel()
	ca := testCAPEM(t)
	raw, _ := json.Marshal(map[string]any{"addr": "h", "user": "u", "pass": "pw-Secret-1", "ca_cert": ca, "console": map[string]any{"type": "ipmi"}})
	info, err := ParseRedfishInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("node", "info", info)
	public, _ := json.Marshal(publicValue(info.LogValue()))
	for _, s := range []string{buf.String(), info.String(), fmt.Sprintf("%#v %v %+v", info, info, info), string(public)} {
		if strings.Contains(s, "pw-Secret-1") || strings.Contains(s, "BEGIN CERTIFICATE") {
			t.Errorf("secret in %s", s)
		}
	}
	if !strings.Contains(string(public), `"ca_cert_set":true`) || !strings.Contains(string(public), `"console":{`) {
		t.Errorf("admin view %s", public)
	}
}
