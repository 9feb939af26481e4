package rmcpplus

import (
	"bytes"
	"testing"

	"github.com/google/gopacket"
)

// Golden ASF datagrams (DSP0136 section 3.2.4, IPMI v2.0 section 13.2):
// the ping is written out from the spec and was sent to ipmi_sim; the
// pong is ipmi_sim's answer (testdata/asf-ping.pcap).
const (
	asfPingGolden = "0600ff06 | 000011be 80 5a 00 00"
	asfPongGolden = "0600ff06 | 000011be 40 5a 00 10 | 000011be 00000000 81 00 000000000000"
)

func TestWireASFGolden(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want ASFMessage
	}{
		{"ping", asfPingGolden, ASFMessage{Type: ASFTypePing, Tag: 0x5a}},
		{"ipmi_sim pong", asfPongGolden, ASFMessage{Type: ASFTypePong, Tag: 0x5a, IANA: ASFIANA,
			SupportedEntities: ASFEntitiesIPMI | 0x01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustHex(tt.hex)
			var a ASFPresence
			if err := a.DecodeFromBytes(b[4:], gopacket.NilDecodeFeedback); err != nil {
				t.Fatal(err)
			}
			if a.ASFMessage != tt.want || a.HeaderIANA != ASFIANA {
				t.Fatalf("decoded %+v (header IANA %d), want %+v", a.ASFMessage, a.HeaderIANA, tt.want)
			}
			checkSerialize(t, gopacket.SerializeOptions{}, b,
				&RMCPHeader{Sequence: RMCPSeqNoACK, Class: ClassASF}, &ASFPresence{ASFMessage: tt.want})
		})
	}
}

// TestWireAppendASF: our ping is the spec's, our pong byte for byte what
// ipmi_sim sends (IANA 4542, entities 81h: IPMI supported, ASF 1.0).
func TestWireAppendASF(t *testing.T) {
	if got, want := AppendASFPing(nil, 0x5a), mustHex(asfPingGolden); !bytes.Equal(got, want) {
		t.Errorf("AppendASFPing = %x, want %x", got, want)
	}
	if got, want := AppendASFPong([]byte{0xAA}, 0x5a), append([]byte{0xAA}, mustHex(asfPongGolden)...); !bytes.Equal(got, want) {
		t.Errorf("AppendASFPong = %x, want %x", got, want)
	}
}

func TestWireASFRejects(t *testing.T) {
	testRejects(t, decodeLayer[*ASFPresence], map[string]string{
		"7 bytes":                "000011be 80 5a 00",
		"data length beyond end": "000011be 40 5a 00 10 000011be",
		"pong with 4 data bytes": "000011be 40 5a 00 04 000011be",
	})
}
