package sol

import (
	"encoding/binary"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// capturedPayload is one RMCP+ payload from a capture: its payload type
// (IPMI v2.0 section 13.27.3) and its bytes, and whether it went to the BMC.
type capturedPayload struct {
	toBMC       bool
	payloadType uint8
	data        []byte
}

// readCapture returns the RMCP+ payloads of a loopback capture made with
// cipher suite 0 (no integrity trailer, no encryption), in order. bmcPort is
// the BMC's UDP port. It parses just the fixed IPMI v2.0 session header of
// section 13.6 (auth type 0x06, payload type, session ID, sequence number,
// payload length) because suite 0 needs nothing more.
func readCapture(t *testing.T, path string, bmcPort layers.UDPPort) []capturedPayload {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []capturedPayload
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkt := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			continue
		}
		b := udp.Payload
		// RMCP header (4 bytes), then auth type 0x06 = RMCP+.
		if len(b) < 16 || b[4] != 0x06 {
			continue
		}
		n := int(binary.LittleEndian.Uint16(b[14:16]))
		if len(b) < 16+n {
			t.Fatalf("%s: truncated payload", path)
		}
		out = append(out, capturedPayload{
			toBMC:       udp.DstPort == bmcPort,
			payloadType: b[5] & 0x3F,
			data:        b[16 : 16+n],
		})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no RMCP+ payloads", path)
	}
	return out
}

var captureFiles = []string{
	"testdata/ipmitool-ipmisim-sol-basic.pcap",
	"testdata/ipmitool-ipmisim-sol-break-batch.pcap",
}

// TestGoldenPayloadsAreInCapture keeps the "capture:" golden rows honest:
// each must be a SOL payload of the recorded conversation, sent in the
// direction the row says.
func TestGoldenPayloadsAreInCapture(t *testing.T) {
	seen := map[string]bool{}
	for _, path := range captureFiles {
		for _, p := range readCapture(t, path, 19623) {
			if p.payloadType != 1 {
				continue
			}
			from := BMCSide
			if p.toBMC {
				from = ConsoleSide
			}
			seen[from.String()+" "+hex.EncodeToString(p.data)] = true
		}
	}
	for _, tc := range goldenPackets {
		if !strings.HasPrefix(tc.name, "capture:") {
			continue
		}
		if !seen[tc.from.String()+" "+tc.hex] {
			t.Errorf("%s: %s payload %s is not in the captures", tc.name, tc.from, tc.hex)
		}
	}
}
