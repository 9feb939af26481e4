package rmcpplus

import "testing"

// TestWireRAKPStatusString checks every code of Table 13-15 has its own
// meaning and that reserved codes say so.
func TestWireRAKPStatusString(t *testing.T) {
	tests := []struct {
		s    RAKPStatus
		want string
	}{
		{0x00, "0x00 no errors"},
		{0x01, "0x01 insufficient resources to create a session"},
		{0x02, "0x02 invalid session ID"},
		{0x03, "0x03 invalid payload type"},
		{0x04, "0x04 invalid authentication algorithm"},
		{0x05, "0x05 invalid integrity algorithm"},
		{0x06, "0x06 no matching authentication payload"},
		{0x07, "0x07 no matching integrity payload"},
		{0x08, "0x08 inactive session ID"},
		{0x09, "0x09 invalid role"},
		{0x0A, "0x0A unauthorized role or privilege level requested"},
		{0x0B, "0x0B insufficient resources to create a session at the requested role"},
		{0x0C, "0x0C invalid name length"},
		{0x0D, "0x0D unauthorized name"},
		{0x0E, "0x0E unauthorized GUID"},
		{0x0F, "0x0F invalid integrity check value"},
		{0x10, "0x10 invalid confidentiality algorithm"},
		{0x11, "0x11 no cipher suite match with proposed security algorithms"},
		{0x12, "0x12 illegal or unrecognized parameter"},
		{0x13, "0x13 reserved status code"},
		{0xFF, "0xFF reserved status code"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("RAKPStatus(0x%02x) = %q, want %q", uint8(tt.s), got, tt.want)
		}
	}
}
