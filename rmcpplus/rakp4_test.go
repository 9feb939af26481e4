package rmcpplus

import "testing"

var rakp4Golden = []wireGolden[RAKP4]{
	{
		name: "ipmi_sim, HMAC-SHA1-96 integrity check value",
		hex:  "00 00 0000 a4a3a2a0 | 65e8bac2fb0648ff07317f42",
		want: RAKP4{ConsoleSessionID: 0xa0a2a3a4,
			IntegrityCheck: []byte{0x65, 0xe8, 0xba, 0xc2, 0xfb, 0x06, 0x48, 0xff, 0x07, 0x31, 0x7f, 0x42}},
	},
	{
		name: "error (Table 13-14)",
		hex:  "03 0e 0000 a4a3a2a0",
		want: RAKP4{Tag: 3, Status: RAKPUnauthorizedGUID, ConsoleSessionID: 0xa0a2a3a4},
	},
	{
		name:      "error with tag and status only",
		hex:       "03 02",
		want:      RAKP4{Tag: 3, Status: RAKPInvalidSessionID},
		shortForm: true,
	},
}

func TestWireRAKP4Golden(t *testing.T) { testGolden(t, rakp4Golden) }

func TestWireRAKP4Rejects(t *testing.T) {
	testRejects(t, (*RAKP4).Unmarshal, map[string]string{"one byte": "00", "success, 7 bytes": "00 00 0000 a4a3a2"})
}

func FuzzRAKP4Unmarshal(f *testing.F) { fuzzRoundTrip(f, rakp4Golden) }
