package rmcpplus

import (
	"bytes"
	"testing"

	"github.com/google/gopacket"
)

// Golden RMCP+ datagrams (section 13.27, Table 13-8), captured between
// ipmitool and ipmi_sim (testdata/capture.sh).
const (
	// ipmitool's Open Session Request, session ID 0, sequence 0.
	v2OpenSessionGolden = "0600ff07 | 06 | 10 | 00000000 | 00000000 | 2000 |" +
		"00000000a4a3a2a0 0000000801000000 0100000801000000 0200000801000000"
	// ipmitool's first packet in a suite 3 session: encrypted and
	// authenticated (payload type C0h), BMC session 2, sequence 3, IV and
	// one AES block, pad FFFF, pad length 2, next header 07, HMAC-SHA1-96.
	v2SealedGolden = "0600ff07 | 06 | c0 | 02000000 | 03000000 | 2000 |" +
		"4d0d38d84477445d9bc5a751459db6618ab6ad087526f84a64bffe8ca0c5875c | ffff | 02 | 07 | a2a04355f579610377a4a5a6"
	// Suite 2 (integrity, no encryption): Set Session Privilege Level in
	// the clear, payload type 40h.
	v2AuthenticatedGolden = "0600ff07 | 06 | 40 | 82000000 | 03000000 | 0800 | 2018c881043b043c | ffff | 02 | 07 | 0871a28b83adf9c9c025ea14"
	// OEM explicit payload (type 02h) with OEM IANA 0x0002A2 and payload
	// ID 0x0102, written from Table 13-8.
	v2OEMGolden = "0600ff07 | 06 | 02 | a2020000 | 0201 | 04030201 | 05000000 | 0300 | aabbcc"
)

func TestWireSessionV2Golden(t *testing.T) {
	tests := []struct {
		name    string
		hex     string
		want    SessionHeaderV2
		payload string
		trailer string
	}{
		{"Open Session Request", v2OpenSessionGolden,
			SessionHeaderV2{PayloadType: PayloadOpenSessionReq, PayloadLength: 32},
			"00000000a4a3a2a0 0000000801000000 0100000801000000 0200000801000000", ""},
		{"encrypted and authenticated", v2SealedGolden,
			SessionHeaderV2{PayloadType: PayloadIPMI, Encrypted: true, Authenticated: true, SessionID: 2, Seq: 3, PayloadLength: 32},
			"4d0d38d84477445d9bc5a751459db6618ab6ad087526f84a64bffe8ca0c5875c", "ffff0207a2a04355f579610377a4a5a6"},
		{"authenticated only", v2AuthenticatedGolden,
			SessionHeaderV2{PayloadType: PayloadIPMI, Authenticated: true, SessionID: 0x82, Seq: 3, PayloadLength: 8},
			"2018c881043b043c", "ffff02070871a28b83adf9c9c025ea14"},
		{"OEM explicit", v2OEMGolden,
			SessionHeaderV2{PayloadType: PayloadOEM, OEMIANA: 0x02a2, OEMPayloadID: 0x0102, SessionID: 0x01020304, Seq: 5, PayloadLength: 3},
			"aabbcc", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustHex(tt.hex)
			var h SessionHeaderV2
			if err := h.DecodeFromBytes(b[4:], gopacket.NilDecodeFeedback); err != nil {
				t.Fatal(err)
			}
			if h.PayloadType != tt.want.PayloadType || h.Encrypted != tt.want.Encrypted || h.Authenticated != tt.want.Authenticated ||
				h.OEMIANA != tt.want.OEMIANA || h.OEMPayloadID != tt.want.OEMPayloadID ||
				h.SessionID != tt.want.SessionID || h.Seq != tt.want.Seq || h.PayloadLength != tt.want.PayloadLength {
				t.Fatalf("decoded %+v\nwant    %+v", h, tt.want)
			}
			payload, trailer := mustHex(tt.payload), mustHex(tt.trailer)
			if !bytes.Equal(h.LayerPayload(), payload) || !bytes.Equal(h.Trailer, trailer) {
				t.Fatalf("payload %x trailer %x, want %x and %x", h.LayerPayload(), h.Trailer, payload, trailer)
			}
			hdr := tt.want
			hdr.Trailer = trailer
			checkSerialize(t, gopacket.SerializeOptions{FixLengths: true}, b,
				&RMCPHeader{Sequence: RMCPSeqNoACK, Class: ClassIPMI}, &hdr, gopacket.Payload(payload))
		})
	}
}

func TestWireAppendV2(t *testing.T) {
	payload := mustHex("00000000a4a3a2a0 0000000801000000 0100000801000000 0200000801000000")
	if got, want := AppendV2(nil, PayloadOpenSessionReq, 0, 0, payload), mustHex(v2OpenSessionGolden); !bytes.Equal(got, want) {
		t.Errorf("AppendV2 = %x\nwant      %x", got, want)
	}
	got := AppendV2(nil, PayloadOEM, 0x01020304, 5, []byte{0xaa, 0xbb, 0xcc})
	if want := mustHex("0600ff07 06 02 00000000 0000 04030201 05000000 0300 aabbcc"); !bytes.Equal(got, want) {
		t.Errorf("AppendV2 OEM = %x\nwant          %x", got, want)
	}
}

func TestWireSessionV2Rejects(t *testing.T) {
	testRejects(t, decodeLayer[*SessionHeaderV2], map[string]string{
		"one byte":            "06",
		"auth type 00":        "00 10 00000000 00000000 0000",
		"11-byte header":      "06 10 00000000 00000000 00",
		"payload length long": "06 10 00000000 00000000 0400 aabbcc",
		"OEM header cut":      "06 02 a2020000 0201 04030201",
	})
}

func TestWirePayloadTypeString(t *testing.T) {
	for pt, want := range map[PayloadType]string{
		PayloadIPMI: "IPMI", PayloadSOL: "SOL", PayloadRAKP4: "RAKP Message 4", 0x3f: "payload type 0x3f",
	} {
		if got := pt.String(); got != want {
			t.Errorf("%#x.String() = %q, want %q", uint8(pt), got, want)
		}
	}
}

// TestWireAppendAllocs: the append functions write into the caller's
// buffer without allocating when it has room.
func TestWireAppendAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	payload := make([]byte, 32)
	for name, f := range map[string]func(){
		"AppendV2":      func() { _ = AppendV2(buf[:0], PayloadIPMI, 1, 2, payload) },
		"AppendV2 OEM":  func() { _ = AppendV2(buf[:0], PayloadOEM, 1, 2, payload) },
		"AppendV15":     func() { _ = AppendV15(buf[:0], 1, 2, payload) },
		"AppendASFPing": func() { _ = AppendASFPing(buf[:0], 1) },
		"AppendASFPong": func() { _ = AppendASFPong(buf[:0], 1) },
	} {
		if n := testing.AllocsPerRun(50, f); n != 0 {
			t.Errorf("%s allocates %v times", name, n)
		}
	}
}
