package sol

import (
	"errors"
	"fmt"
	"strings"
)

// HeaderLen is the size of the SOL payload header that precedes the
// character data: sequence number, ACK/NACK sequence number, accepted
// character count and operation/status (IPMI v2.0 section 15.9, Tables 15-2
// and 15-3).
const HeaderLen = 4

// MaxCharacters is the most character data one SOL packet can usefully
// carry: the accepted character count that acknowledges it is one byte
// (IPMI v2.0 section 15.9, Table 15-2), so a receiver cannot acknowledge
// more than 255 characters of a packet. BMCs that advertise larger payload
// sizes (ipmi_sim says 16384) still send at most 255.
const MaxCharacters = 255

// Op is the operation/status byte, byte 4 of the SOL payload. Its bits mean
// different things in each direction (IPMI v2.0 section 15.9): Table 15-2
// for packets from the remote console to the BMC (operations), Table 15-3
// for packets from the BMC to the remote console (status). Bit 6 (NACK)
// means the same in both.
type Op uint8

// Bit 6 in both directions: the packet named by the ACK/NACK sequence number
// was not accepted (IPMI v2.0 section 15.9).
const OpNACK Op = 1 << 6

// Remote console to BMC operations (IPMI v2.0 section 15.9, Table 15-2).
const (
	OpRingWOR       Op = 1 << 5 // assert Ring Indicator / wake-on-ring to the system
	OpGenerateBreak Op = 1 << 4 // generate a serial break on the system port
	OpCTSPause      Op = 1 << 3 // deassert CTS to the system: the system must pause
	OpDropDCDDSR    Op = 1 << 2 // deassert DCD/DSR to the system
	OpFlushInbound  Op = 1 << 1 // BMC discards data queued towards the system
	OpFlushOutbound Op = 1 << 0 // BMC discards data queued towards the console
)

// BMC to remote console status (IPMI v2.0 section 15.9, Table 15-3). Bits
// 1:0 are reserved in this direction.
const (
	StatusTransferUnavailable Op = 1 << 5 // character transfer is unavailable
	StatusDeactivating        Op = 1 << 4 // SOL is being deactivated
	StatusTransmitOverrun     Op = 1 << 3 // characters from the system were lost
	StatusBreakDetected       Op = 1 << 2 // the system sent a serial break
)

// consoleOpNames and bmcStatusNames name the bits of each table, highest
// bit first.
var (
	consoleOpNames = []struct {
		bit  Op
		name string
	}{
		{OpNACK, "nack"}, {OpRingWOR, "ring"}, {OpGenerateBreak, "break"},
		{OpCTSPause, "cts-pause"}, {OpDropDCDDSR, "drop-dcd-dsr"},
		{OpFlushInbound, "flush-inbound"}, {OpFlushOutbound, "flush-outbound"},
	}
	bmcStatusNames = []struct {
		bit  Op
		name string
	}{
		{OpNACK, "nack"}, {StatusTransferUnavailable, "transfer-unavailable"},
		{StatusDeactivating, "deactivating"}, {StatusTransmitOverrun, "transmit-overrun"},
		{StatusBreakDetected, "break-detected"},
	}
)

// Describe names the set bits as read by role's peer: a console-side packet
// carries Table 15-2 operations, a BMC-side packet Table 15-3 status.
func (o Op) Describe(from Role) string {
	names := consoleOpNames
	if from == BMCSide {
		names = bmcStatusNames
	}
	var parts []string
	rest := o
	for _, n := range names {
		if o&n.bit != 0 {
			parts = append(parts, n.name)
			rest &^= n.bit
		}
	}
	if rest != 0 {
		parts = append(parts, fmt.Sprintf("reserved(0x%02X)", uint8(rest)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Packet is one SOL payload (IPMI v2.0 section 15.9, Tables 15-2 and 15-3):
//
//	byte 1: [3:0] packet sequence number; 0 = ACK-only packet (no data)
//	byte 2: [3:0] packet ACK/NACK sequence number; 0 = no ACK/NACK
//	byte 3: accepted character count (of the packet being ACKed)
//	byte 4: operation (console to BMC) or status (BMC to console)
//	byte 5..N: character data
//
// The upper nibbles of bytes 1 and 2 and bit 7 of byte 4 are reserved:
// ParsePacket drops them and Marshal writes them as zero.
type Packet struct {
	Seq      uint8 // 1..15 for a packet carrying data or an operation; 0 = ACK-only
	AckSeq   uint8 // sequence number this packet ACKs or NACKs; 0 = none
	Accepted uint8 // characters accepted from packet AckSeq
	Op       Op
	Data     []byte
}

// ErrShortPacket is returned by ParsePacket for fewer than HeaderLen bytes.
var ErrShortPacket = errors.New("sol: payload shorter than the 4-byte SOL header")

// ParsePacket decodes a SOL payload. Data aliases b. A packet with sequence
// number 0 is ACK-only by definition; ParsePacket keeps any characters it
// carries so the caller can see them, and the Engine ignores them.
func ParsePacket(b []byte) (Packet, error) {
	if len(b) < HeaderLen {
		return Packet{}, ErrShortPacket
	}
	p := Packet{
		Seq:      b[0] & 0x0F,
		AckSeq:   b[1] & 0x0F,
		Accepted: b[2],
		Op:       Op(b[3] & 0x7F),
	}
	if len(b) > HeaderLen {
		p.Data = b[HeaderLen:]
	}
	return p, nil
}

// AppendTo appends the wire form of p to b.
func (p *Packet) AppendTo(b []byte) []byte {
	b = append(b, p.Seq&0x0F, p.AckSeq&0x0F, p.Accepted, uint8(p.Op)&0x7F)
	return append(b, p.Data...)
}

// Marshal returns the wire form of p.
func (p *Packet) Marshal() []byte {
	return p.AppendTo(make([]byte, 0, HeaderLen+len(p.Data)))
}

// IsACKOnly reports whether p carries no data of its own (sequence number
// 0) and so must never be acknowledged.
func (p *Packet) IsACKOnly() bool { return p.Seq == 0 }

// String is for logs and test failures; it never prints the characters.
func (p Packet) String() string {
	return fmt.Sprintf("seq=%d ack=%d accepted=%d op=0x%02X len=%d",
		p.Seq, p.AckSeq, p.Accepted, uint8(p.Op), len(p.Data))
}
