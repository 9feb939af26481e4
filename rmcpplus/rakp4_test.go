package rmcpplus

import (
	"bytes"
	"reflect"
	"testing"
)

var rakp4Golden = []struct {
	name string
	hex  string
	want RAKP4
	full bool
}{
	{
		name: "ipmi_sim, HMAC-SHA1-96 integrity check value",
		hex:  "00 00 0000 a4a3a2a0 | 65e8bac2fb0648ff07317f42",
		want: RAKP4{ConsoleSessionID: 0xa0a2a3a4,
			IntegrityCheck: []byte{0x65, 0xe8, 0xba, 0xc2, 0xfb, 0x06, 0x48, 0xff, 0x07, 0x31, 0x7f, 0x42}},
		full: true,
	},
	{
		name: "error (Table 13-14)",
		hex:  "03 0e 0000 a4a3a2a0",
		want: RAKP4{Tag: 3, Status: RAKPUnauthorizedGUID, ConsoleSessionID: 0xa0a2a3a4},
		full: true,
	},
	{
		name: "error with tag and status only",
		hex:  "03 02",
		want: RAKP4{Tag: 3, Status: RAKPInvalidSessionID},
	},
}

func TestWireRAKP4Golden(t *testing.T) {
	for _, tt := range rakp4Golden {
		t.Run(tt.name, func(t *testing.T) {
			b := wireHex(t, tt.hex)
			var got RAKP4
			if err := got.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decoded %+v\nwant    %+v", got, tt.want)
			}
			if m := tt.want.Marshal(); tt.full && !bytes.Equal(m, b) {
				t.Fatalf("Marshal = %x\nwant      %x", m, b)
			}
		})
	}
}

func TestWireRAKP4Rejects(t *testing.T) {
	for name, h := range map[string]string{"one byte": "00", "success, 7 bytes": "00 00 0000 a4a3a2"} {
		var m RAKP4
		if err := m.Unmarshal(wireHex(t, h)); err == nil {
			t.Errorf("%s: accepted as %+v", name, m)
		}
	}
}

func FuzzRAKP4Unmarshal(f *testing.F) {
	for _, g := range rakp4Golden {
		f.Add(wireHex(f, g.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip[RAKP4](t, b) })
}
