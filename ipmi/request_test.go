package ipmi

import (
	"bytes"
	"errors"
	"testing"
)

// NewRequest must produce what ipmitool puts on the wire and NewResponse
// what ipmi_sim answers: the messages below are captured (codec_test.go).
func TestNewRequestCaptured(t *testing.T) {
	cases := []struct {
		name  string
		netfn NetFn
		cmd   Command
		seq   uint8
		data  []byte
		want  []byte
	}{
		{"Get Device ID", NetFnApp, CmdGetDeviceID, 6, nil,
			[]byte{0x20, 0x18, 0xC8, 0x81, 0x18, 0x01, 0x66}},
		{"Chassis Control power up", NetFnChassis, CmdChassisControl, 9, []byte{0x01},
			[]byte{0x20, 0x00, 0xE0, 0x81, 0x24, 0x02, 0x01, 0x58}},
		{"Get SOL Configuration Parameters", NetFnTransport, CmdGetSOLConfigParams, 6, []byte{0x0E, 0x00, 0x00, 0x00},
			[]byte{0x20, 0x30, 0xB0, 0x81, 0x18, 0x22, 0x0E, 0x00, 0x00, 0x00, 0x37}},
		{"Activate Payload", NetFnApp, CmdActivatePayload, 6, []byte{0x01, 0x01, 0xC6, 0x00, 0x00, 0x00},
			[]byte{0x20, 0x18, 0xC8, 0x81, 0x18, 0x48, 0x01, 0x01, 0xC6, 0x00, 0x00, 0x00, 0x57}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NewRequest(tc.netfn, tc.cmd, tc.seq, tc.data).Marshal(); !bytes.Equal(got, tc.want) {
				t.Errorf("NewRequest(...).Marshal()\n got % x\nwant % x", got, tc.want)
			}
		})
	}
}

func TestNewRequestSeqWraps(t *testing.T) {
	if got := NewRequest(NetFnApp, CmdGetDeviceID, 64+5, nil).Seq; got != 5 {
		t.Errorf("Seq = %d, want 5 (6 bits)", got)
	}
}

func TestNewResponseCaptured(t *testing.T) {
	cases := []struct {
		name string
		req  []byte
		cc   CompletionCode
		data []byte
		want []byte
	}{
		{
			name: "Get Device ID",
			req:  []byte{0x20, 0x18, 0xC8, 0x81, 0x18, 0x01, 0x66},
			data: []byte{0x00, 0x03, 0x09, 0x08, 0x02, 0x9F, 0x91, 0x12, 0x00, 0x02, 0x0F, 0x00, 0x00, 0x00, 0x00},
			want: []byte{0x81, 0x1C, 0x63, 0x20, 0x18, 0x01, 0x00, 0x00, 0x03, 0x09, 0x08, 0x02, 0x9F, 0x91, 0x12, 0x00, 0x02, 0x0F, 0x00, 0x00, 0x00, 0x00, 0x5E},
		},
		{
			name: "HPM probe refused",
			req:  []byte{0x20, 0xB0, 0x30, 0x81, 0x08, 0x3E, 0x00, 0x02, 0x37},
			cc:   CCInvalidCommand,
			want: []byte{0x81, 0xB4, 0xCB, 0x20, 0x08, 0x3E, 0xC1, 0xD9},
		},
		{
			name: "Get SOL param not supported",
			req:  []byte{0x20, 0x30, 0xB0, 0x81, 0x20, 0x22, 0x0E, 0x02, 0x00, 0x00, 0x2D},
			cc:   0x80,
			want: []byte{0x81, 0x34, 0x4B, 0x20, 0x20, 0x22, 0x80, 0x1E},
		},
		{
			// spec: Figure 13-4: the response swaps addresses and LUNs.
			name: "spec LUNs swapped",
			req:  []byte{0x20, 0x1B, 0xC5, 0x81, 0xFE, 0x01, 0x80},
			want: []byte{0x81, 0x1E, 0x61, 0x20, 0xFF, 0x01, 0x00, 0xE0},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseMessage(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := NewResponse(req, tc.cc, tc.data).Marshal(); !bytes.Equal(got, tc.want) {
				t.Errorf("NewResponse(...).Marshal()\n got % x\nwant % x", got, tc.want)
			}
		})
	}
}

func TestResponseAccessors(t *testing.T) {
	cases := []struct {
		name     string
		wire     []byte
		cc       CompletionCode
		data     []byte
		errText  string // empty: Err() is nil
		errNetFn NetFn
	}{
		{
			// captured: ipmi_sim's Set Session Privilege Level answer.
			name: "captured ok",
			wire: []byte{0x81, 0x1C, 0x63, 0x20, 0x10, 0x3B, 0x00, 0x04, 0x91},
			cc:   CCOK, data: []byte{0x04},
		},
		{
			// captured: ipmi_sim refusing Chassis Control diag.
			name: "captured 0xCC",
			wire: []byte{0x81, 0x04, 0x7B, 0x20, 0x24, 0x02, 0xCC, 0xEE},
			cc:   CCInvalidDataField, errText: "Chassis Control: 0xCC invalid data field in request", errNetFn: NetFnChassis,
		},
		{
			// spec: a response without even a completion code is malformed.
			name: "spec no completion code",
			wire: []byte{0x81, 0x1C, 0x63, 0x20, 0x10, 0x3B, 0x95},
			cc:   CCUnspecified, errText: "Set Session Privilege Level: 0xFF unspecified error", errNetFn: NetFnApp,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMessage(tc.wire)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.CompletionCode(); got != tc.cc {
				t.Errorf("CompletionCode() = %v, want %v", got, tc.cc)
			}
			if got := m.ResponseData(); !bytes.Equal(got, tc.data) {
				t.Errorf("ResponseData() = % x, want % x", got, tc.data)
			}
			err = m.Err()
			if tc.errText == "" {
				if err != nil {
					t.Errorf("Err() = %v, want nil", err)
				}
				return
			}
			var ce *CompletionError
			if !errors.As(err, &ce) || err.Error() != tc.errText {
				t.Fatalf("Err() = %v, want *CompletionError %q", err, tc.errText)
			}
			if ce.NetFn != tc.errNetFn || ce.Code != tc.cc {
				t.Errorf("CompletionError = %+v, want request NetFn 0x%02X and code %v", *ce, uint8(tc.errNetFn), tc.cc)
			}
		})
	}
}
