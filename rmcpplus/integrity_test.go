package rmcpplus

import (
	"bytes"
	"testing"
)

// TestWireIntegrityPadLen: section 13.28.4, the range from auth type
// through next header is a multiple of 4.
func TestWireIntegrityPadLen(t *testing.T) {
	// n counts auth type .. end of payload: a 12-byte header plus payload.
	tests := []struct{ n, pad int }{
		{12, 2}, {13, 1}, {14, 0}, {15, 3}, {19, 3}, {44, 2}, // 44: header + IV + one block (ipmitool capture: ff ff 02 07)
	}
	for _, tt := range tests {
		if got := integrityPadLen(tt.n); got != tt.pad || (tt.n+got+2)%4 != 0 {
			t.Errorf("integrityPadLen(%d) = %d, want %d", tt.n, got, tt.pad)
		}
	}
}

func TestWireSplitIntegrityTrailer(t *testing.T) {
	code12 := bytes.Repeat([]byte{0xAA}, 12)
	code16 := bytes.Repeat([]byte{0xBB}, 16)
	tests := []struct {
		name    string
		trailer []byte
		want    []byte // nil: error
	}{
		{"pad 2, HMAC-SHA1-96", append(mustHex("ffff 02 07"), code12...), code12},
		{"pad 0, HMAC-SHA1-96", append(mustHex("00 07"), code12...), code12},
		{"pad 3, HMAC-SHA256-128", append(mustHex("ffffff 03 07"), code16...), code16},
		{"pad length disagrees", append(mustHex("ffff 01 07"), code12...), nil},
		{"next header not 07", append(mustHex("ffff 02 06"), code12...), nil},
		{"too short", mustHex("ffff0207aabb"), nil},
		{"empty", nil, nil},
		{"too long", append(mustHex("ffffffff 04 07"), code16...), nil},
	}
	for _, tt := range tests {
		got, err := splitIntegrityTrailer(tt.trailer)
		if tt.want == nil {
			if err == nil {
				t.Errorf("%s: accepted, AuthCode %x", tt.name, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("%s: got %x, %v; want %x", tt.name, got, err, tt.want)
		}
	}
}

func TestWireAuthCodeLengths(t *testing.T) {
	tests := []struct {
		name string
		got  int
		want int
	}{
		{"HMAC-SHA1-96 AuthCode", authCodeLen(IntegrityHMACSHA1_96), 12},
		{"HMAC-SHA256-128 AuthCode", authCodeLen(IntegrityHMACSHA256128), 16},
		{"no integrity", authCodeLen(IntegrityNone), 0},
		{"RAKP-HMAC-SHA1 auth code", AuthCodeLen(AuthHMACSHA1), 20},
		{"RAKP-HMAC-SHA256 auth code", AuthCodeLen(AuthHMACSHA256), 32},
		{"RAKP-none auth code", AuthCodeLen(AuthNone), 0},
		{"RAKP-HMAC-SHA1 ICV", RAKP4ICVLen(AuthHMACSHA1), 12},
		{"RAKP-HMAC-SHA256 ICV", RAKP4ICVLen(AuthHMACSHA256), 16},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %d bytes, want %d", tt.name, tt.got, tt.want)
		}
	}
}
