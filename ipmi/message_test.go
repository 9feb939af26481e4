package ipmi

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// Whole IPMI LAN messages (IPMI v2.0 section 13.8, Figure 13-4) captured
// between ipmitool 1.8.19 and ipmi_sim 2.0.33 (see codec_test.go).
var messageCases = []struct {
	name string
	wire []byte
	msg  Message
}{
	{
		name: "captured Get Device ID request",
		wire: []byte{
			0x20, // rsAddr: BMC
			0x18, // netFn 0x06 << 2 | rsLUN 0
			0xC8, // checksum 1: 0x20+0x18+0xC8 = 0x100
			0x81, // rqAddr: remote console software
			0x18, // rqSeq 6 << 2 | rqLUN 0
			0x01, // cmd: Get Device ID
			// (no data bytes)
			0x66, // checksum 2 over rqAddr..data
		},
		msg: Message{DstAddr: 0x20, NetFn: NetFnApp, SrcAddr: 0x81, Seq: 6, Cmd: CmdGetDeviceID, Data: []byte{}},
	},
	{
		name: "captured Get Device ID response",
		wire: []byte{
			0x81, 0x1C, 0x63, // rqAddr, netFn 0x07 << 2, checksum 1
			0x20, 0x18, 0x01, // rsAddr, rqSeq 6, cmd
			0x00,                                                             // completion code
			0x00, 0x03, 0x09, 0x08, 0x02, 0x9F, 0x91, 0x12, 0x00, 0x02, 0x0F, // response data
			0x00, 0x00, 0x00, 0x00,
			0x5E, // checksum 2
		},
		msg: Message{DstAddr: 0x81, NetFn: NetFnApp | 1, SrcAddr: 0x20, Seq: 6, Cmd: CmdGetDeviceID,
			Data: []byte{0x00, 0x00, 0x03, 0x09, 0x08, 0x02, 0x9F, 0x91, 0x12, 0x00, 0x02, 0x0F, 0x00, 0x00, 0x00, 0x00}},
	},
	{
		name: "captured Get SOL Configuration Parameters request",
		wire: []byte{0x20, 0x30, 0xB0, 0x81, 0x18, 0x22, 0x0E, 0x00, 0x00, 0x00, 0x37},
		msg:  Message{DstAddr: 0x20, NetFn: NetFnTransport, SrcAddr: 0x81, Seq: 6, Cmd: CmdGetSOLConfigParams, Data: []byte{0x0E, 0, 0, 0}},
	},
	{
		name: "captured HPM probe answered 0xC1",
		wire: []byte{0x81, 0xB4, 0xCB, 0x20, 0x08, 0x3E, 0xC1, 0xD9},
		msg:  Message{DstAddr: 0x81, NetFn: NetFnGroupExt | 1, SrcAddr: 0x20, Seq: 2, Cmd: 0x3E, Data: []byte{0xC1}},
	},
	{
		// spec: Figure 13-4 with non-zero LUNs and the highest sequence number.
		name: "spec LUNs and seq 63",
		wire: []byte{0x20, 0x1B, 0xC5, 0x81, 0xFE, 0x01, 0x80},
		msg:  Message{DstAddr: 0x20, NetFn: NetFnApp, DstLUN: 3, SrcAddr: 0x81, Seq: 63, SrcLUN: 2, Cmd: CmdGetDeviceID, Data: []byte{}},
	},
}

func TestParseMessage(t *testing.T) {
	for _, tc := range messageCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMessage(tc.wire)
			if err != nil {
				t.Fatalf("ParseMessage(% x): %v", tc.wire, err)
			}
			if !reflect.DeepEqual(*got, tc.msg) {
				t.Errorf("ParseMessage(% x)\n got %+v\nwant %+v", tc.wire, *got, tc.msg)
			}
			if enc := tc.msg.Marshal(); !bytes.Equal(enc, tc.wire) {
				t.Errorf("Marshal(%+v)\n got % x\nwant % x", tc.msg, enc, tc.wire)
			}
			if enc := tc.msg.AppendTo([]byte{0xEE}); !bytes.Equal(enc, append([]byte{0xEE}, tc.wire...)) {
				t.Errorf("AppendTo did not append to its argument: % x", enc)
			}
		})
	}
}

func TestParseMessageErrors(t *testing.T) {
	good := messageCases[2].wire
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	cases := []struct {
		name string
		wire []byte
		want error
	}{
		{"empty", nil, ErrShortMessage},
		{"six bytes", good[:6], ErrShortMessage},
		{"header corrupted", flip(1), ErrChecksum},
		{"checksum 1 corrupted", flip(2), ErrChecksum},
		{"body corrupted", flip(7), ErrChecksum},
		{"checksum 2 corrupted", flip(len(good) - 1), ErrChecksum},
		{"truncated", good[:len(good)-1], ErrChecksum},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseMessage(tc.wire); !errors.Is(err, tc.want) {
				t.Errorf("ParseMessage(% x) error = %v, want %v", tc.wire, err, tc.want)
			}
		})
	}
}

// A message with a wrong checksum decodes field for field like the good
// one when the caller asks to ignore checksums; length is still checked.
func TestParseMessageIgnoringChecksums(t *testing.T) {
	good := messageCases[2].wire
	want, err := ParseMessage(good)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 0x5A
	if ChecksumsValid(bad) || !ChecksumsValid(good) {
		t.Fatalf("ChecksumsValid: good %v, bad %v", ChecksumsValid(good), ChecksumsValid(bad))
	}
	got, err := ParseMessageIgnoringChecksums(bad)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseMessageIgnoringChecksums(% x) = %+v, %v; want %+v", bad, got, err, want)
	}
	if _, err := ParseMessageIgnoringChecksums(good[:6]); !errors.Is(err, ErrShortMessage) {
		t.Fatalf("six bytes: %v, want ErrShortMessage", err)
	}
}

func TestChecksum(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want uint8
	}{
		{"empty", nil, 0x00},
		{"captured header", []byte{0x20, 0x18}, 0xC8},
		{"captured body", []byte{0x81, 0x18, 0x01}, 0x66},
		{"wraps", []byte{0xFF, 0xFF}, 0x02},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Checksum(tc.in); got != tc.want {
				t.Errorf("Checksum(% x) = 0x%02X, want 0x%02X", tc.in, got, tc.want)
			}
		})
	}
}

func TestNetFnResponse(t *testing.T) {
	for _, n := range []NetFn{NetFnChassis, NetFnApp, NetFnTransport, NetFnGroupExt} {
		r := n.Response()
		if r != n+1 || !r.IsResponse() || n.IsResponse() {
			t.Errorf("NetFn 0x%02X: Response() = 0x%02X, IsResponse = %v/%v", uint8(n), uint8(r), n.IsResponse(), r.IsResponse())
		}
	}
}

func TestPrivilegeLevelString(t *testing.T) {
	cases := map[PrivilegeLevel]string{
		PrivilegeHighest: "highest", PrivilegeCallback: "callback", PrivilegeUser: "user",
		PrivilegeOperator: "operator", PrivilegeAdministrator: "administrator", PrivilegeOEM: "oem",
		9: "privilege(9)",
	}
	for p, want := range cases {
		if got := p.String(); got != want {
			t.Errorf("PrivilegeLevel(%d).String() = %q, want %q", uint8(p), got, want)
		}
	}
}

// FuzzParseMessage: arbitrary bytes never panic, and a message that parses
// re-encodes to exactly the bytes it came from (every header bit is kept).
func FuzzParseMessage(f *testing.F) {
	for _, tc := range messageCases {
		f.Add(tc.wire)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMessage(data)
		if err != nil {
			return
		}
		if enc := m.Marshal(); !bytes.Equal(enc, data) {
			t.Fatalf("ParseMessage(% x) re-encodes to % x", data, enc)
		}
	})
}
