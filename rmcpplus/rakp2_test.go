package rmcpplus

import "testing"

var rakp2Golden = []wireGolden[RAKP2]{
	{
		name: "ipmi_sim, RAKP-HMAC-SHA1",
		hex:  "00 00 0000 a4a3a2a0 | 62da8a3700c1afc0838c8046870dd859 | a123456789abcdefa123456789abcdef | 9e7056b349b845e6c23a0972d90d21dedb27db48",
		want: RAKP2{ConsoleSessionID: 0xa0a2a3a4,
			ManagedRandom: [16]byte{0x62, 0xda, 0x8a, 0x37, 0x00, 0xc1, 0xaf, 0xc0, 0x83, 0x8c, 0x80, 0x46, 0x87, 0x0d, 0xd8, 0x59},
			ManagedGUID:   [16]byte{0xa1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xa1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef},
			AuthCode:      []byte{0x9e, 0x70, 0x56, 0xb3, 0x49, 0xb8, 0x45, 0xe6, 0xc2, 0x3a, 0x09, 0x72, 0xd9, 0x0d, 0x21, 0xde, 0xdb, 0x27, 0xdb, 0x48}},
	},
	{
		name:      "ipmi_sim, unknown user: status 0Dh with every field",
		hex:       "00 0d 0000 a4a3a2a0 | 49649b9314f8b43bce4987619bb61998 | a123456789abcdefa123456789abcdef | b5f8d231c4bc3f6986560e8f3b2f4b8effbd65d5",
		want:      RAKP2{Status: RAKPUnauthorizedName, ConsoleSessionID: 0xa0a2a3a4},
		shortForm: true,
	},
	{
		name:      "short error form (Table 13-12)",
		hex:       "09 0d 0000 a4a3a2a0",
		want:      RAKP2{Tag: 9, Status: RAKPUnauthorizedName, ConsoleSessionID: 0xa0a2a3a4},
		shortForm: true,
	},
	{
		name: "RAKP-none: no auth code",
		hex:  "01 00 0000 04030201 | 000102030405060708090a0b0c0d0e0f | 101112131415161718191a1b1c1d1e1f",
		want: RAKP2{Tag: 1, ConsoleSessionID: 0x01020304,
			ManagedRandom: [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
			ManagedGUID:   [16]byte{16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}},
	},
}

func TestWireRAKP2Golden(t *testing.T) { testGolden(t, rakp2Golden) }

func TestWireRAKP2Rejects(t *testing.T) {
	testRejects(t, (*RAKP2).Unmarshal, map[string]string{
		"one byte":          "00",
		"success, 39 bytes": "00 00 0000 a4a3a2a0 | 62da8a3700c1afc0838c8046870dd859 | a123456789abcdefa123456789abcd",
	})
}

// TestWireRAKP2CopiesAuthCode: the decoded auth code must not alias the
// datagram buffer, which the caller reuses.
func TestWireRAKP2CopiesAuthCode(t *testing.T) {
	b := mustHex(rakp2Golden[0].hex)
	var m RAKP2
	if err := m.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xFF
	if m.AuthCode[len(m.AuthCode)-1] != 0x48 {
		t.Fatal("AuthCode aliases the input buffer")
	}
}

func FuzzRAKP2Unmarshal(f *testing.F) { fuzzRoundTrip(f, rakp2Golden) }
