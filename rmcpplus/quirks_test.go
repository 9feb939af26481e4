package rmcpplus

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"obmd/ipmi"
)

// The client against a Server that misbehaves as real BMCs do
// (ServerQuirks), with no workaround configured: each must connect (or
// fail precisely, and fast), with the deviation reported, and a healthy
// BMC must take exactly one Open Session.

// quirkDial dials a server with quirks q and returns the session (nil on
// error), the server, how long Dial took and the error.
func quirkDial(t *testing.T, q ServerQuirks, cfg ClientConfig, serverCfg func(*ServerConfig)) (*Session, *Server, time.Duration, error) {
	t.Helper()
	scfg := testServerConfig(&testHandler{})
	scfg.Quirks = q
	if serverCfg != nil {
		serverCfg(&scfg)
	}
	srv := NewServer(scfg)
	addr := startServer(t, srv, nil)
	ccfg := clientConfig(addr)
	ccfg.Username, ccfg.Password = cfg.Username, cfg.Password
	if ccfg.Username == "" {
		ccfg.Username, ccfg.Password = "admin", []byte("secret")
	}
	ccfg.CipherSuite, ccfg.Workarounds, ccfg.Profile, ccfg.Privilege = cfg.CipherSuite, cfg.Workarounds, cfg.Profile, cfg.Privilege
	start := time.Now()
	s, err := Dial(context.Background(), ccfg)
	took := time.Since(start)
	if s != nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, srv, took, err
}

func detectedNames(ds []Detection) []string {
	var names []string
	for _, d := range ds {
		names = append(names, d.Name)
	}
	return names
}

func TestQuirkyServers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		q          ServerQuirks
		wantSuite  uint8
		handshakes uint64
		detected   []string
		privilege  ipmi.PrivilegeLevel
	}{
		{"healthy", ServerQuirks{}, 17, 1, nil, ipmi.PrivilegeAdministrator},
		{"long auth code", ServerQuirks{LongAuthCode: true}, 17, 1, []string{QuirkSupermicro20}, ipmi.PrivilegeAdministrator},
		{"bad checksum", ServerQuirks{BadChecksum: true}, 17, 1, []string{QuirkNoChecksumCheck}, ipmi.PrivilegeAdministrator},
		{"short Open Session error for 17", ServerQuirks{ShortOpenSessionError: true, RefuseSuites: map[uint8]RAKPStatus{17: RAKPNoCipherSuiteMatch}},
			3, 2, []string{QuirkShortOpenSessionError, QuirkBrokenSuite}, ipmi.PrivilegeAdministrator},
		{"17 listed, refused with 0x12", ServerQuirks{RefuseSuites: map[uint8]RAKPStatus{17: RAKPIllegalOrUnrecognizedParameter}},
			3, 2, []string{QuirkBrokenSuite}, ipmi.PrivilegeAdministrator},
		{"17 with an all-zero auth code", ServerQuirks{ZeroAuthCodeSuites: []uint8{17}}, 3, 2, []string{QuirkBrokenSuite}, ipmi.PrivilegeAdministrator},
		{"no cipher suite list", ServerQuirks{NoCipherSuiteList: true}, 17, 1, []string{QuirkNoCipherSuiteList}, ipmi.PrivilegeAdministrator},
		{"non-idempotent RAKP 1", ServerQuirks{HandshakeResendError: true}, 17, 2, []string{QuirkHandshakeResend}, ipmi.PrivilegeAdministrator},
		{"administrator refused", ServerQuirks{AdminRefused: true}, 17, 1, []string{QuirkAdminRefused}, ipmi.PrivilegeOperator},
		{"intel20 padded name", ServerQuirks{Intel20: true}, 17, 1, []string{QuirkIntel20}, ipmi.PrivilegeAdministrator},
		{"name-only lookup refused", ServerQuirks{NameOnlyLookupRefused: true}, 17, 2, []string{QuirkIntel20}, ipmi.PrivilegeAdministrator},
		{"tag 0 on errors (harmless when all goes well)", ServerQuirks{ErrorTagZero: true}, 17, 1, nil, ipmi.PrivilegeAdministrator},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv, took, err := quirkDial(t, tt.q, ClientConfig{}, nil)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			neg := s.Negotiation()
			if neg.Suite != tt.wantSuite || neg.Privilege != tt.privilege {
				t.Fatalf("negotiated suite %d at %v, want %d at %v", neg.Suite, neg.Privilege, tt.wantSuite, tt.privilege)
			}
			if got := srv.OpenSessionRequests(); got != tt.handshakes || uint64(neg.Handshakes) != tt.handshakes {
				t.Fatalf("Open Session Requests: BMC saw %d, client counted %d; want %d", got, neg.Handshakes, tt.handshakes)
			}
			if got := detectedNames(neg.Detected); !slices.Equal(got, tt.detected) {
				t.Fatalf("detected %v, want %v (%+v)", got, tt.detected, neg.Detected)
			}
			// The session works: a command and its answer.
			got, err := s.Do(context.Background(), ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil)
			if err != nil || !bytes.Equal(got, deviceID) {
				t.Fatalf("Get Device ID = % X, %v", got, err)
			}
			if tt.q.BadChecksum && s.Profile().ChecksumsTolerated() < 2 {
				t.Fatalf("tolerated %d bad checksums; want the privilege answer and Get Device ID's", s.Profile().ChecksumsTolerated())
			}
			if took > 2*time.Second {
				t.Fatalf("Dial took %v", took)
			}
		})
	}
}

// What a session learned, the next one uses: a BMC pays for a deviation
// once.
func TestProfileCarriesLearning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		q    ServerQuirks
		// Open Session Requests of the second Dial
		second uint64
	}{
		{"17 broken: the second session goes straight to 3", ServerQuirks{ZeroAuthCodeSuites: []uint8{17}}, 1},
		{"lookup refused: the second session clears the bit at once", ServerQuirks{NameOnlyLookupRefused: true}, 1},
		{"intel20: padded from the start", ServerQuirks{Intel20: true}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			profile := NewProfile()
			_, srv, _, err := quirkDial(t, tt.q, ClientConfig{Profile: profile}, nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg := clientConfig(startServerLike(t, srv))
			cfg.Profile = profile
			before := srv.OpenSessionRequests()
			s := dial(t, cfg)
			if got := srv.OpenSessionRequests() - before; got != tt.second {
				t.Fatalf("second Dial took %d Open Session Requests, want %d", got, tt.second)
			}
			if len(s.Negotiation().Detected) != 0 {
				t.Fatalf("second Dial detected %v again", s.Negotiation().Detected)
			}
			if len(profile.Detected()) == 0 {
				t.Fatal("the profile forgot what the first session found")
			}
		})
	}
}

// startServerLike serves srv on a second socket (Serve may run on
// several) and returns its address.
func startServerLike(t *testing.T, srv *Server) string {
	t.Helper()
	return startServer(t, srv, nil)
}

func TestAdminRefusedLearned(t *testing.T) {
	t.Parallel()
	profile := NewProfile()
	_, srv, _, err := quirkDial(t, ServerQuirks{AdminRefused: true}, ClientConfig{Profile: profile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientConfig(startServerLike(t, srv))
	cfg.Profile = profile
	s := dial(t, cfg)
	if n := s.Negotiation(); n.Privilege != ipmi.PrivilegeOperator || len(n.Detected) != 0 {
		t.Fatalf("second session: privilege %v, detected %v; want operator at once", n.Privilege, n.Detected)
	}
}

// The error rows: a precise error, in well under 2 s, never a timeout.
func TestQuirkyServerErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		q      ServerQuirks
		cfg    ClientConfig
		server func(*ServerConfig)
		is     error
		text   string
	}{
		{"unknown user, errors with tag 0 (OpenBMC)", ServerQuirks{ErrorTagZero: true},
			ClientConfig{Username: "nobody", Password: []byte("secret")}, nil, ErrUnknownUser, `unknown user "nobody"`},
		{"wrong password, errors with tag 0", ServerQuirks{ErrorTagZero: true},
			ClientConfig{Username: "admin", Password: []byte("wrong")}, nil, ErrWrongPassword, "wrong password"},
		{"only suites without confidentiality", ServerQuirks{},
			ClientConfig{}, func(c *ServerConfig) { c.CipherSuites = []uint8{1, 2} }, nil, "none with confidentiality"},
		{"17 refused, 3 not offered: no confidentiality left", ServerQuirks{RefuseSuites: map[uint8]RAKPStatus{17: RAKPNoCipherSuiteMatch}},
			ClientConfig{}, func(c *ServerConfig) { c.CipherSuites = []uint8{17, 2, 1} }, nil, "offers cipher suites [17 2 1] but refuses [17]; none other has confidentiality"},
		{"pinned 17, refused in one byte", ServerQuirks{ShortOpenSessionError: true, RefuseSuites: map[uint8]RAKPStatus{17: RAKPNoCipherSuiteMatch}},
			ClientConfig{CipherSuite: 17}, nil, nil, "the BMC refused Open Session Request: 0x11"},
		{"pinned 17 with an all-zero auth code", ServerQuirks{ZeroAuthCodeSuites: []uint8{17}},
			ClientConfig{CipherSuite: 17}, nil, nil, "cipher suite 17 is broken on this BMC"},
		{"bad checksum without integrity (suite 1) stays strict", ServerQuirks{BadChecksum: true},
			ClientConfig{CipherSuite: 1}, nil, ErrTimeout, "Set Session Privilege Level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, took, err := quirkDial(t, tt.q, tt.cfg, tt.server)
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			if (tt.is != nil && !errors.Is(err, tt.is)) || !bytes.Contains([]byte(err.Error()), []byte(tt.text)) {
				t.Fatalf("Dial: %v; want %v saying %q", err, tt.is, tt.text)
			}
			if !errors.Is(tt.is, ErrTimeout) && took > 2*time.Second {
				t.Fatalf("took %v; a refusal must be reported in under 2 s", took)
			}
		})
	}
}

// The nochecksumcheck override accepts bad checksums without integrity.
func TestNoChecksumCheckOverride(t *testing.T) {
	t.Parallel()
	s, _, _, err := quirkDial(t, ServerQuirks{BadChecksum: true}, ClientConfig{CipherSuite: 1, Workarounds: Workarounds{NoChecksumCheck: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do(context.Background(), ipmi.NetFnApp, ipmi.CmdGetDeviceID, nil); err != nil {
		t.Fatal(err)
	}
}

// The intel20 override sends the padded name in RAKP 1, as FreeIPMI does,
// and detects nothing.
func TestIntel20Override(t *testing.T) {
	t.Parallel()
	s, _, _, err := quirkDial(t, ServerQuirks{Intel20: true}, ClientConfig{Workarounds: Workarounds{Intel20: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Negotiation(); n.Handshakes != 1 || len(n.Detected) != 0 {
		t.Fatalf("handshakes %d, detected %v", n.Handshakes, n.Detected)
	}
}
