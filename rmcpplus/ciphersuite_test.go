package rmcpplus

import (
	"slices"
	"testing"
)

// TestWireCipherSuites checks the supported rows of Table 22-20.
func TestWireCipherSuites(t *testing.T) {
	want := map[uint8]CipherSuite{
		0:  {0, AuthNone, IntegrityNone, ConfNone},
		1:  {1, AuthHMACSHA1, IntegrityNone, ConfNone},
		2:  {2, AuthHMACSHA1, IntegrityHMACSHA1_96, ConfNone},
		3:  {3, AuthHMACSHA1, IntegrityHMACSHA1_96, ConfAESCBC128},
		15: {15, AuthHMACSHA256, IntegrityNone, ConfNone},
		16: {16, AuthHMACSHA256, IntegrityHMACSHA256128, ConfNone},
		17: {17, AuthHMACSHA256, IntegrityHMACSHA256128, ConfAESCBC128},
	}
	for id := range 256 {
		got, ok := CipherSuiteByID(uint8(id))
		w, supported := want[uint8(id)]
		if ok != supported || got != w {
			t.Errorf("CipherSuiteByID(%d) = %+v, %v; want %+v, %v", id, got, ok, w, supported)
		}
		if supported {
			back, ok := CipherSuiteByAlgorithms(w.Auth, w.Integrity, w.Confidentiality)
			if !ok || back != w {
				t.Errorf("CipherSuiteByAlgorithms for suite %d = %+v, %v", id, back, ok)
			}
		}
	}
	if got := SupportedCipherSuites(); !slices.Equal(got, []uint8{0, 1, 2, 3, 15, 16, 17}) {
		t.Errorf("SupportedCipherSuites = %v", got)
	}
	if _, ok := CipherSuiteByAlgorithms(AuthHMACSHA1, IntegrityHMACSHA256128, ConfNone); ok {
		t.Error("mixed SHA-1 authentication with SHA-256 integrity matched a suite")
	}
	if s, _ := CipherSuiteByID(17); s.String() != "cipher suite 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128)" {
		t.Errorf("suite 17 String = %q", s.String())
	}
}
