package rmcpplus

import (
	"bytes"
	"testing"

	"github.com/google/gopacket"
)

// Golden IPMI v1.5 packets (section 13.6): ipmitool's Get
// Channel Authentication Capabilities and ipmi_sim's answer, as captured.
const (
	v15RequestGolden  = "0600ff07 | 00 | 00000000 | 00000000 | 09 | 2018c88100388e04b5"
	v15ResponseGolden = "0600ff07 | 00 | 00000000 | 00000000 | 10 | 811c6320003800019704030000000009"
	// Auth type MD5 (02h) carries a 16-byte auth code before the length
	// (written from section 13.6): seq 1, session 0x01020304.
	v15MD5Golden = "0600ff07 | 02 | 01000000 | 04030201 | 00112233445566778899aabbccddeeff | 07 | 2000e08104017a"
)

func TestWireSessionV15Golden(t *testing.T) {
	tests := []struct {
		name      string
		hex       string
		want      SessionHeaderV15
		payload   string
		appendV15 bool
	}{
		{"ipmitool request", v15RequestGolden, SessionHeaderV15{PayloadLength: 9}, "2018c88100388e04b5", true},
		{"ipmi_sim response", v15ResponseGolden, SessionHeaderV15{PayloadLength: 16}, "811c6320003800019704030000000009", true},
		{"MD5 auth code", v15MD5Golden, SessionHeaderV15{AuthType: 2, Seq: 1, SessionID: 0x01020304,
			AuthCode:      [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
			PayloadLength: 7}, "2000e08104017a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustHex(tt.hex)
			var h SessionHeaderV15
			if err := h.DecodeFromBytes(b[4:], gopacket.NilDecodeFeedback); err != nil {
				t.Fatal(err)
			}
			if h.AuthType != tt.want.AuthType || h.Seq != tt.want.Seq || h.SessionID != tt.want.SessionID ||
				h.AuthCode != tt.want.AuthCode || h.PayloadLength != tt.want.PayloadLength {
				t.Fatalf("decoded %+v, want %+v", h, tt.want)
			}
			payload := mustHex(tt.payload)
			if !bytes.Equal(h.LayerPayload(), payload) {
				t.Fatalf("payload %x, want %x", h.LayerPayload(), payload)
			}
			if tt.appendV15 {
				if got := AppendV15(nil, tt.want.SessionID, tt.want.Seq, payload); !bytes.Equal(got, b) {
					t.Fatalf("AppendV15 = %x\nwant       %x", got, b)
				}
			}
			hdr := tt.want
			hdr.PayloadLength = 0 // FixLengths must fill it in
			checkSerialize(t, gopacket.SerializeOptions{FixLengths: true}, b,
				&RMCPHeader{Sequence: RMCPSeqNoACK, Class: ClassIPMI}, &hdr, gopacket.Payload(payload))
		})
	}
}

// TestWireSessionV15LegacyPad: bytes after the message (the legacy pad
// some v1.5 peers add) are not part of the payload.
func TestWireSessionV15LegacyPad(t *testing.T) {
	b := append(mustHex(v15RequestGolden), 0x00)
	p, err := ParsePacket(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Payload, mustHex("2018c88100388e04b5")) {
		t.Fatalf("payload %x", p.Payload)
	}
}

func TestWireSessionV15Rejects(t *testing.T) {
	testRejects(t, decodeLayer[*SessionHeaderV15], map[string]string{
		"empty":                     "",
		"9-byte header":             "00 00000000 00000000",
		"message length too long":   "00 00000000 00000000 0a 2018c88100388e04b5",
		"MD5 without its auth code": "02 01000000 04030201 07 2000e08104017a",
		"RMCP+ auth type":           "06 00 00000000 00000000 0000",
	})
}
