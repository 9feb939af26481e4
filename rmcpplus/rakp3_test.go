package rmcpplus

import (
	"bytes"
	"reflect"
	"testing"
)

var rakp3Golden = []struct {
	name string
	hex  string
	want RAKP3
}{
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

func TestWireRAKP3Golden(t *testing.T) {
	for _, tt := range rakp3Golden {
		t.Run(tt.name, func(t *testing.T) {
			b := wireHex(t, tt.hex)
			var got RAKP3
			if err := got.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decoded %+v\nwant    %+v", got, tt.want)
			}
			if m := tt.want.Marshal(); !bytes.Equal(m, b) {
				t.Fatalf("Marshal = %x\nwant      %x", m, b)
			}
		})
	}
}

func TestWireRAKP3Rejects(t *testing.T) {
	var m RAKP3
	if err := m.Unmarshal(wireHex(t, "00 00 0000 020000")); err == nil {
		t.Errorf("7 bytes accepted as %+v", m)
	}
}

func FuzzRAKP3Unmarshal(f *testing.F) {
	for _, g := range rakp3Golden {
		f.Add(wireHex(f, g.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip[RAKP3](t, b) })
}
