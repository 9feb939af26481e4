package rmcpplus

import "testing"

var rakp1Golden = []wireGolden[RAKP1]{
	{
		name: "ipmitool, admin with name-only lookup",
		hex:  "00 000000 02000000 fc55a1a379aef1ce8cb48f8908eafcdb 14 0000 05 61646d696e",
		want: RAKP1{ManagedSessionID: 2, ConsoleRandom: [16]byte{0xfc, 0x55, 0xa1, 0xa3, 0x79, 0xae, 0xf1, 0xce, 0x8c, 0xb4, 0x8f, 0x89, 0x08, 0xea, 0xfc, 0xdb},
			Role: 0x14, Username: "admin"},
	},
	{
		name: "FreeIPMI",
		hex:  "b3 000000 02010000 36731e698ccd3763d4a8ef6fa1c37dfc 14 0000 05 61646d696e",
		want: RAKP1{Tag: 0xb3, ManagedSessionID: 0x102, ConsoleRandom: [16]byte{0x36, 0x73, 0x1e, 0x69, 0x8c, 0xcd, 0x37, 0x63, 0xd4, 0xa8, 0xef, 0x6f, 0xa1, 0xc3, 0x7d, 0xfc},
			Role: 0x14, Username: "admin"},
	},
	{
		name: "null user name, operator by privilege lookup (Table 13-11)",
		hex:  "01 000000 44332211 000102030405060708090a0b0c0d0e0f 03 0000 00",
		want: RAKP1{Tag: 1, ManagedSessionID: 0x11223344, ConsoleRandom: [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, Role: 0x03},
	},
}

func TestWireRAKP1Golden(t *testing.T) { testGolden(t, rakp1Golden) }

func TestWireRAKP1Rejects(t *testing.T) {
	testRejects(t, (*RAKP1).Unmarshal, map[string]string{
		"27 bytes":            "00 000000 02000000 fc55a1a379aef1ce8cb48f8908eafcdb 14 0000",
		"name cut short":      "00 000000 02000000 fc55a1a379aef1ce8cb48f8908eafcdb 14 0000 05 61646d69",
		"17-byte name length": "00 000000 02000000 fc55a1a379aef1ce8cb48f8908eafcdb 14 0000 11 6161616161616161616161616161616161",
	})
}

func FuzzRAKP1Unmarshal(f *testing.F) { fuzzRoundTrip(f, rakp1Golden) }
