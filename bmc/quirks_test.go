package bmc

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"obmd/ipmi"
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

// ipmiSimActivatePayload is ipmi_sim's Activate Payload (SOL) response
// data after the completion code, decrypted from
// testdata/captures/cs3_sol_activate.txt: inbound payload size 32,
// outbound 16384, port 53108, no VLAN.
const ipmiSimActivatePayload = "000000002000004074cfffff"

func TestSOLParametersFromActivatePayload(t *testing.T) {
	t.Parallel()
	raw, err := hex.DecodeString(ipmiSimActivatePayload)
	if err != nil {
		t.Fatal(err)
	}
	var sim ipmi.ActivatePayloadRsp
	if err := sim.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	elsewhere := sim
	elsewhere.Port = 6230
	tiny := sim
	tiny.InboundPayloadSize = 4
	for _, tc := range []struct {
		name        string
		quirks      Quirks
		rsp         ipmi.ActivatePayloadRsp
		sessionPort int
		wantPort    int
		wantMax     int
		wantErr     string
	}{
		{name: "ipmi_sim", rsp: sim, sessionPort: 53108, wantPort: 53108, wantMax: 28},
		{name: "alternate port honoured", rsp: elsewhere, sessionPort: 623, wantPort: 6230, wantMax: 28},
		{name: "solport ignores the alternate port", quirks: Quirks{IgnoreSOLPort: true}, rsp: elsewhere, sessionPort: 623, wantPort: 623, wantMax: 28},
		{name: "size too small", rsp: tiny, sessionPort: 53108, wantPort: 53108,
			wantErr: `inbound SOL payload size of 4 bytes, too small for any data (quirk "solpayloadsize" ignores it)`},
		{name: "solpayloadsize ignores it", quirks: Quirks{IgnoreSOLPayloadSize: true}, rsp: tiny, sessionPort: 53108, wantPort: 53108, wantMax: DefaultSOLPayloadSize - 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, err := tc.quirks.SOLPort(tc.rsp, tc.sessionPort)
			if err != nil || port != tc.wantPort {
				t.Errorf("SOLPort = %d, %v; want %d", port, err, tc.wantPort)
			}
			max, err := tc.quirks.SOLMaxData(tc.rsp)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("SOLMaxData err = %v, want %q", err, tc.wantErr)
				}
			case err != nil || max != tc.wantMax:
				t.Errorf("SOLMaxData = %d, %v; want %d", max, err, tc.wantMax)
			}
		})
	}
}

func TestSOLPortZeroIsAnError(t *testing.T) {
	t.Parallel()
	if _, err := (Quirks{}).SOLPort(ipmi.ActivatePayloadRsp{InboundPayloadSize: 32}, 623); err == nil {
		t.Fatal("port 0 accepted")
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
