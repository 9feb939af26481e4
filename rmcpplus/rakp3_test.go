package rmcpplus

import "testing"

var rakp3Golden = []wireGolden[RAKP3]{
	{
		name: "ipmitool, RAKP-HMAC-SHA1",
		hex:  "00 00 0000 02000000 | 2ffc32526a9af1374e366f0827c86a2a05ecd659",
		want: RAKP3{ManagedSessionID: 2,
			AuthCode: []byte{0x2f, 0xfc, 0x32, 0x52, 0x6a, 0x9a, 0xf1, 0x37, 0x4e, 0x36, 0x6f, 0x08, 0x27, 0xc8, 0x6a, 0x2a, 0x05, 0xec, 0xd6, 0x59}},
	},
	{
		name: "console rejects RAKP 2 (Table 13-13)",
		hex:  "04 0f 0000 88776655",
		want: RAKP3{Tag: 4, Status: RAKPInvalidIntegrityCheckValue, ManagedSessionID: 0x55667788},
	},
}

func TestWireRAKP3Golden(t *testing.T) { testGolden(t, rakp3Golden) }

func TestWireRAKP3Rejects(t *testing.T) {
	testRejects(t, (*RAKP3).Unmarshal, map[string]string{"7 bytes": "00 00 0000 020000"})
}

func FuzzRAKP3Unmarshal(f *testing.F) { fuzzRoundTrip(f, rakp3Golden) }
