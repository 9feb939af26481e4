package rmcpplus

import (
	"bytes"
	"testing"

	"github.com/google/gopacket"
)

// TestWireRMCPHeaderGolden decodes RMCP headers (section 13.1.3) as
// captured from ipmitool and ipmi_sim, plus an RMCP ACK.
func TestWireRMCPHeaderGolden(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want RMCPHeader
		next gopacket.LayerType
	}{
		{"IPMI v1.5 (ipmitool)", "0600ff07 | 00 00000000 00000000 09 2018c88100388e04b5",
			RMCPHeader{Version: 6, Sequence: 0xff, Class: ClassIPMI}, LayerTypeSessionV15},
		{"IPMI v2.0 (ipmitool)", "0600ff07 | 06 10 00000000 00000000 2000",
			RMCPHeader{Version: 6, Sequence: 0xff, Class: ClassIPMI}, LayerTypeSessionV2},
		{"ASF presence ping", "0600ff06 | 000011be 805a0000",
			RMCPHeader{Version: 6, Sequence: 0xff, Class: ClassASF}, LayerTypeASF},
		{"RMCP ACK of sequence 5, class ASF", "06000586",
			RMCPHeader{Version: 6, Sequence: 5, Class: ClassASF, ACK: true}, gopacket.LayerTypeZero},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustHex(tt.hex)
			var h RMCPHeader
			if err := h.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
				t.Fatal(err)
			}
			if h.Version != tt.want.Version || h.Sequence != tt.want.Sequence || h.Class != tt.want.Class || h.ACK != tt.want.ACK {
				t.Fatalf("decoded %+v, want %+v", h, tt.want)
			}
			if h.NextLayerType() != tt.next {
				t.Fatalf("next layer %v, want %v", h.NextLayerType(), tt.next)
			}
			if !bytes.Equal(h.LayerContents(), b[:4]) || !bytes.Equal(h.LayerPayload(), b[4:]) {
				t.Fatal("contents/payload split is not at byte 4")
			}
			checkSerialize(t, gopacket.SerializeOptions{}, b[:4], &tt.want)
		})
	}
}

func TestWireRMCPHeaderRejects(t *testing.T) {
	testRejects(t, decodeLayer[*RMCPHeader], map[string]string{
		"3 bytes":          "0600ff",
		"RMCP version 05h": "0500ff07",
	})
}

// TestWireGopacketDecode runs whole datagrams through gopacket.NewPacket,
// proving the registered layer types chain: RMCP, then the right session
// layer or ASF, then the payload.
func TestWireGopacketDecode(t *testing.T) {
	tests := []struct {
		name   string
		hex    string
		layers []gopacket.LayerType
	}{
		{"v1.5 Get Channel Authentication Capabilities", "0600ff07 00 00000000 00000000 09 2018c88100388e04b5",
			[]gopacket.LayerType{LayerTypeRMCP, LayerTypeSessionV15, gopacket.LayerTypePayload}},
		{"v2.0 RAKP 4", "0600ff07 06 15 00000000 00000000 1400 00000000a4a3a2a065e8bac2fb0648ff07317f42",
			[]gopacket.LayerType{LayerTypeRMCP, LayerTypeSessionV2, gopacket.LayerTypePayload}},
		{"ASF pong", "0600ff06 000011be 405a0010 000011be 00000000 81 00 000000000000",
			[]gopacket.LayerType{LayerTypeRMCP, LayerTypeASF}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := gopacket.NewPacket(mustHex(tt.hex), LayerTypeRMCP, gopacket.Default)
			if el := p.ErrorLayer(); el != nil {
				t.Fatalf("decode error: %v", el.Error())
			}
			var got []gopacket.LayerType
			for _, l := range p.Layers() {
				got = append(got, l.LayerType())
			}
			if len(got) != len(tt.layers) {
				t.Fatalf("layers %v, want %v", got, tt.layers)
			}
			for i := range got {
				if got[i] != tt.layers[i] {
					t.Fatalf("layers %v, want %v", got, tt.layers)
				}
			}
		})
	}
}
