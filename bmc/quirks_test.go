package bmc

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestParseQuirks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      []string
		want    Quirks
		wantErr string
	}{
		{name: "none", in: nil},
		{name: "solport", in: []string{"solport"}, want: Quirks{IgnoreSOLPort: true}},
		{name: "all, any case, repeated", in: []string{"SOLPayloadSize", "opensesspriv", " solport ", "solport"},
			want: Quirks{IgnoreSOLPort: true, IgnoreSOLPayloadSize: true, OpenSessPriv: true}},
		{name: "session overrides", in: []string{"intel20", "NoChecksumCheck", "supermicro20"},
			want: Quirks{Intel20: true, NoChecksumCheck: true, Supermicro20: true}},
		{name: "FreeIPMI name obmd does not implement", in: []string{"sun20"},
			wantErr: `bmc: unknown quirk "sun20" (supported: intel20, nochecksumcheck, opensesspriv, solpayloadsize, solport, supermicro20)`},
		{name: "every unknown name reported", in: []string{"solport", "authcap", "bogus"},
			wantErr: `bmc: unknown quirk "authcap", "bogus" (supported: intel20, nochecksumcheck, opensesspriv, solpayloadsize, solport, supermicro20)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseQuirks(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseQuirks(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			if w := got.Workarounds(); w.Intel20 != got.Intel20 || w.NoChecksumCheck != got.NoChecksumCheck {
				t.Errorf("Workarounds() = %+v for %+v", w, got)
			}
			// Names is the inverse, in canonical order.
			back, err := ParseQuirks(got.Names())
			if err != nil || back != got {
				t.Errorf("ParseQuirks(Names()) = %+v, %v", back, err)
			}
		})
	}
}

func TestDialRejectsUnknownQuirkBeforeTheNetwork(t *testing.T) {
	t.Parallel()
	// 192.0.2.0/24 is TEST-NET-1: nothing answers there, so only a check
	// made before any packet can return this fast with this text.
	_, err := Dial(context.Background(), Config{Addr: "192.0.2.1", Username: "admin", Password: []byte("x"), Quirks: []string{"sun20"}})
	if err == nil || !strings.Contains(err.Error(), `unknown quirk "sun20"`) {
		t.Fatalf("err = %v", err)
	}
	if !slices.Contains(QuirkNames(), QuirkSOLPort) {
		t.Error("QuirkNames lacks solport")
	}
}
