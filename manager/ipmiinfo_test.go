package manager

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"

	"obmd/ipmi"
)

func TestParseIPMIInfo(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want IPMIInfo
	}{
		{"minimal, HIL's example", `{"addr": "10.0.0.4", "user": "u", "pass": "p"}`,
			IPMIInfo{Addr: "10.0.0.4:623", User: "u", Pass: "p", Privilege: ipmi.PrivilegeAdministrator}},
		{"host:port", `{"addr":"bmc-7.example.org:9623","user":"u","pass":"p"}`,
			IPMIInfo{Addr: "bmc-7.example.org:9623", User: "u", Pass: "p", Privilege: ipmi.PrivilegeAdministrator}},
		{"bare IPv6", `{"addr":"fe80::1","user":"u","pass":"p"}`,
			IPMIInfo{Addr: "[fe80::1]:623", User: "u", Pass: "p", Privilege: ipmi.PrivilegeAdministrator}},
		{"bracketed IPv6 with port", `{"addr":"[::1]:1623","user":"u","pass":"p"}`,
			IPMIInfo{Addr: "[::1]:1623", User: "u", Pass: "p", Privilege: ipmi.PrivilegeAdministrator}},
		{"every option", `{"addr":"h","user":"admin","pass":"secret","cipher_suite":17,"privilege":"operator",
			"kg":"0123456789ABCDEF0123456789abcdef01234567","quirks":["opensesspriv","solport","OpenSessPriv"]}`,
			IPMIInfo{Addr: "h:623", User: "admin", Pass: "secret", CipherSuite: 17, Privilege: ipmi.PrivilegeOperator,
				Kg:     []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67},
				Quirks: []string{"opensesspriv", "solport"}}},
		{"empty kg means none", `{"addr":"h","user":"u","pass":"p","kg":""}`,
			IPMIInfo{Addr: "h:623", User: "u", Pass: "p", Privilege: ipmi.PrivilegeAdministrator}},
		{"16-byte user, 20-byte pass", `{"addr":"h","user":"0123456789abcdef","pass":"0123456789abcdefghij"}`,
			IPMIInfo{Addr: "h:623", User: "0123456789abcdef", Pass: "0123456789abcdefghij", Privilege: ipmi.PrivilegeAdministrator}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseIPMIInfo(json.RawMessage(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got.Addr != tc.want.Addr || got.User != tc.want.User || got.Pass != tc.want.Pass ||
				got.CipherSuite != tc.want.CipherSuite || got.Privilege != tc.want.Privilege ||
				!slices.Equal(got.Kg, tc.want.Kg) || !slices.Equal(got.Quirks, tc.want.Quirks) {
				t.Fatalf("got  %#v (pass %q, kg %x)\nwant %#v (pass %q, kg %x)", got, got.Pass, got.Kg, tc.want, tc.want.Pass, tc.want.Kg)
			}
		})
	}
}

func TestParseIPMIInfoRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want []string // each must appear in the error
	}{
		{"missing everything", `{}`, []string{"addr is missing", "user is missing", "pass is missing"}},
		{"empty strings", `{"addr":"","user":"","pass":""}`, []string{"addr is missing", "user is missing", "pass is missing"}},
		{"null pass", `{"addr":"h","user":"u","pass":null}`, []string{"pass is missing"}},
		{"unknown field", `{"addr":"h","user":"u","pass":"p","password":"p"}`, []string{`unknown field "password"`}},
		{"wrong type", `{"addr":"h","user":"u","pass":"p","cipher_suite":"17"}`, []string{"cipher_suite must be an integer"}},
		{"fractional suite", `{"addr":"h","user":"u","pass":"p","cipher_suite":3.5}`, []string{"cipher_suite must be an integer"}},
		{"suite 0", `{"addr":"h","user":"u","pass":"p","cipher_suite":0}`, []string{"cipher_suite 0 is not supported"}},
		{"suite 4", `{"addr":"h","user":"u","pass":"p","cipher_suite":4}`, []string{"cipher_suite 4 is not supported"}},
		{"suite 273", `{"addr":"h","user":"u","pass":"p","cipher_suite":273}`, []string{"cipher_suite 273 is not supported"}},
		{"privilege user", `{"addr":"h","user":"u","pass":"p","privilege":"user"}`, []string{`privilege "user" is not supported`}},
		{"kg not hex", `{"addr":"h","user":"u","pass":"p","kg":"zz"}`, []string{"kg is not a hex string"}},
		{"kg odd length", `{"addr":"h","user":"u","pass":"p","kg":"abc"}`, []string{"kg is not a hex string"}},
		{"kg too long", `{"addr":"h","user":"u","pass":"p","kg":"` + strings.Repeat("00", 21) + `"}`, []string{"kg is 21 bytes long"}},
		{"unknown quirk", `{"addr":"h","user":"u","pass":"p","quirks":["fastmode"]}`, []string{`quirk "fastmode" is unknown`}},
		{"quirk obmd does not implement", `{"addr":"h","user":"u","pass":"p","quirks":["sun20"]}`, []string{`quirk "sun20" is unknown (known: intel20, nochecksumcheck, opensesspriv, solpayloadsize, solport, supermicro20)`}},
		{"quirks not a list", `{"addr":"h","user":"u","pass":"p","quirks":"intel20"}`, []string{"quirks must be a list"}},
		{"port 0", `{"addr":"h:0","user":"u","pass":"p"}`, []string{"is not a number from 1 to 65535"}},
		{"port 70000", `{"addr":"h:70000","user":"u","pass":"p"}`, []string{"is not a number from 1 to 65535"}},
		{"named port", `{"addr":"h:asf-rmcp","user":"u","pass":"p"}`, []string{"is not a number from 1 to 65535"}},
		{"bad host", `{"addr":"bad host!","user":"u","pass":"p"}`, []string{"neither an IP address nor a host name"}},
		{"url", `{"addr":"http://h/","user":"u","pass":"p"}`, []string{"addr"}},
		{"user too long", `{"addr":"h","user":"0123456789abcdefX","pass":"p"}`, []string{"user is 17 bytes long"}},
		{"pass too long", `{"addr":"h","user":"u","pass":"0123456789abcdefghijX"}`, []string{"pass is 21 bytes long"}},
		{"not an object", `["h","u","p"]`, []string{"must be a JSON object"}},
		{"trailing data", `{"addr":"h","user":"u","pass":"p"} {}`, []string{"unexpected data after the JSON object"}},
		{"truncated", `{"addr":"h"`, []string{"malformed JSON"}},
		{"several problems at once", `{"addr":"h:0","user":"u","pass":"p","privilege":"root","cipher_suite":9}`,
			[]string{"port", "privilege \"root\"", "cipher_suite 9"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIPMIInfo(json.RawMessage(tc.in))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseIPMIInfo(%s) = %v, want an ErrInvalid", tc.in, err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a *ValidationError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestIPMIInfoRedacted checks every way the info can be printed or logged.
func TestIPMIInfoRedacted(t *testing.T) {
	t.Parallel()
	info, err := ParseIPMIInfo(json.RawMessage(`{"addr":"h","user":"admin","pass":"hunter2pass","kg":"c0ffeec0ffee"}`))
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "info", info)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "info", info)
	outputs := []string{
		fmt.Sprint(info), fmt.Sprintf("%v %+v %#v %s", info, info, info, info),
		fmt.Sprint(DriverInfo(info)), logged.String(),
	}
	for _, out := range outputs {
		if strings.Contains(out, "hunter2pass") || strings.Contains(strings.ToLower(out), "c0ffee") {
			t.Errorf("output leaks a secret: %s", out)
		}
		if !strings.Contains(out, "admin") || !strings.Contains(out, "h:623") {
			t.Errorf("output lacks the user and address: %s", out)
		}
	}
}

func FuzzParseIPMIInfo(f *testing.F) {
	for _, seed := range []string{
		`{"addr": "10.0.0.4", "user": "u", "pass": "p"}`,
		`{"addr":"[::1]:1623","user":"u","pass":"p","cipher_suite":17,"privilege":"operator","kg":"00ff","quirks":["solport"]}`,
		`{"addr":"h:0","user":"","pass":null}`,
		`{}`, `[]`, `"x"`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseIPMIInfo(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if _, _, err := net.SplitHostPort(info.Addr); err != nil {
			t.Fatalf("accepted info has addr %q: %v", info.Addr, err)
		}
		if info.User == "" || info.Pass == "" {
			t.Fatal("accepted info without user or pass")
		}
		if info.CipherSuite != 0 && !slices.Contains(IPMICipherSuites, info.CipherSuite) {
			t.Fatalf("accepted cipher suite %d", info.CipherSuite)
		}
		// The printed form must not depend on the password or the key.
		other := info
		other.Pass = "x"
		if len(info.Kg) > 0 {
			other.Kg = make([]byte, len(info.Kg))
		}
		if info.String() != other.String() {
			t.Fatalf("String() depends on the password or Kg: %s", info.String())
		}
	})
}

func TestParseMockInfo(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		in      string
		want    MockInfo
		wantErr string
	}{
		{"HIL's info", `{"addr": "10.0.0.4", "NumWrites": 0}`, MockInfo{Addr: "10.0.0.4"}, ""},
		{"count starts later", `{"addr":"a","NumWrites":42}`, MockInfo{Addr: "a", NumWrites: 42}, ""},
		{"NumWrites optional", `{"addr":"a"}`, MockInfo{Addr: "a"}, ""},
		{"missing addr", `{"NumWrites":0}`, MockInfo{}, "addr is missing"},
		{"negative count", `{"addr":"a","NumWrites":-1}`, MockInfo{}, "must not be negative"},
		{"unknown field", `{"addr":"a","user":"u"}`, MockInfo{}, `unknown field "user"`},
		{"count not a number", `{"addr":"a","NumWrites":"0"}`, MockInfo{}, "NumWrites must be an integer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMockInfo(json.RawMessage(tc.in))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseMockInfo(f *testing.F) {
	f.Add([]byte(`{"addr": "10.0.0.4", "NumWrites": 0}`))
	f.Add([]byte(`{"NumWrites": -5}`))
	f.Add([]byte(`nul`))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseMockInfo(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if info.Addr == "" || info.NumWrites < 0 {
			t.Fatalf("accepted %+v", info)
		}
	})
}
