package ipmi

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// ipmiSimCipherPages are the record data of the five responses (ListIndex 0
// to 4) ipmi_sim gave to `ipmitool -I lanplus -C 0 channel getciphers ipmi`
// (captured). Records straddle pages; the last page is shorter than 16
// bytes, which ends the list.
var ipmiSimCipherPages = [][]byte{
	{0xC0, 0x00, 0x00, 0x40, 0x80, 0xC0, 0x01, 0x01, 0x40, 0x80, 0xC0, 0x02, 0x01, 0x41, 0x80, 0xC0},
	{0x03, 0x01, 0x41, 0x81, 0xC0, 0x04, 0x01, 0x41, 0x82, 0xC0, 0x05, 0x01, 0x41, 0x83, 0xC0, 0x06},
	{0x02, 0x40, 0x80, 0xC0, 0x07, 0x02, 0x42, 0x80, 0xC0, 0x08, 0x02, 0x42, 0x81, 0xC0, 0x09, 0x02},
	{0x42, 0x82, 0xC0, 0x0A, 0x02, 0x42, 0x83, 0xC0, 0x0B, 0x02, 0x43, 0x80, 0xC0, 0x0C, 0x02, 0x43},
	{0x81, 0xC0, 0x0D, 0x02, 0x43, 0x82, 0xC0, 0x0E, 0x02, 0x43, 0x83},
}

// ipmiSimCipherSuites is what those pages say: suites 0 to 14 of Table
// 22-20 (auth 1 = HMAC-SHA1, 2 = HMAC-MD5; integrity 1 = HMAC-SHA1-96,
// 2 = HMAC-MD5-128, 3 = MD5-128; confidentiality 1 = AES-CBC-128,
// 2 = xRC4-128, 3 = xRC4-40). ipmitool 1.8.19 printed only suites 0-11 from
// the same bytes.
var ipmiSimCipherSuites = []CipherSuiteRecord{
	{0, 0, 0, 0}, {1, 1, 0, 0}, {2, 1, 1, 0}, {3, 1, 1, 1}, {4, 1, 1, 2}, {5, 1, 1, 3},
	{6, 2, 0, 0}, {7, 2, 2, 0}, {8, 2, 2, 1}, {9, 2, 2, 2}, {10, 2, 2, 3},
	{11, 2, 3, 0}, {12, 2, 3, 1}, {13, 2, 3, 2}, {14, 2, 3, 3},
}

func ipmiSimCipherData() []byte { return bytes.Join(ipmiSimCipherPages, nil) }

func TestParseCipherSuiteRecordsCaptured(t *testing.T) {
	got, err := ParseCipherSuiteRecords(ipmiSimCipherData())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ipmiSimCipherSuites) {
		t.Errorf("ParseCipherSuiteRecords(ipmi_sim list)\n got %v\nwant %v", got, ipmiSimCipherSuites)
	}
}

func TestAppendCipherSuiteRecordsCaptured(t *testing.T) {
	// ipmi_sim lists one algorithm of each kind per standard suite, which is
	// exactly the form AppendCipherSuiteRecords writes.
	got := AppendCipherSuiteRecords(nil, ipmiSimCipherSuites)
	if want := ipmiSimCipherData(); !bytes.Equal(got, want) {
		t.Errorf("AppendCipherSuiteRecords\n got % x\nwant % x", got, want)
	}
	prefix := []byte{0xEE}
	if got := AppendCipherSuiteRecords(prefix, ipmiSimCipherSuites[:1]); !bytes.Equal(got, []byte{0xEE, 0xC0, 0, 0, 0x40, 0x80}) {
		t.Errorf("AppendCipherSuiteRecords does not append to its argument: % x", got)
	}
}

func TestCipherSuiteRecordPage(t *testing.T) {
	all := ipmiSimCipherData()
	for i, want := range ipmiSimCipherPages {
		if got := CipherSuiteRecordPage(all, uint8(i)); !bytes.Equal(got, want) {
			t.Errorf("page %d = % x, want captured % x", i, got, want)
		}
	}
	if got := CipherSuiteRecordPage(all, 5); len(got) != 0 {
		t.Errorf("page past the end = % x, want empty", got)
	}
	// A list that fills whole pages ends with an empty page.
	full := make([]byte, 32)
	if got := CipherSuiteRecordPage(full, 1); len(got) != 16 {
		t.Errorf("second full page has %d bytes, want 16", len(got))
	}
	if got := CipherSuiteRecordPage(full, 2); len(got) != 0 {
		t.Errorf("page after two full pages has %d bytes, want 0", len(got))
	}
}

func TestParseCipherSuiteRecords(t *testing.T) {
	cases := []struct {
		name    string
		data    []byte
		want    []CipherSuiteRecord
		wantErr string // substring; empty means success
	}{
		{name: "empty", data: nil, want: nil},
		{
			// spec: Table 22-19, suite 17 (HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128).
			name: "suite 17",
			data: []byte{0xC0, 0x11, 0x03, 0x44, 0x81},
			want: []CipherSuiteRecord{{ID: 17, Auth: 3, Integrity: 4, Confidentiality: 1}},
		},
		{
			// spec: an OEM record (0xC1, ID, 3-byte IANA, algorithms) is skipped.
			name: "OEM record skipped",
			data: []byte{0xC1, 0x80, 0x57, 0x01, 0x00, 0x01, 0x41, 0x81, 0xC0, 0x03, 0x01, 0x41, 0x81},
			want: []CipherSuiteRecord{{ID: 3, Auth: 1, Integrity: 1, Confidentiality: 1}},
		},
		{
			// spec: an OEM record's IANA bytes are not mistaken for start of record.
			name: "OEM IANA looks like start byte",
			data: []byte{0xC1, 0x80, 0xC0, 0xC0, 0xC0, 0x01, 0x41, 0x81},
			want: nil,
		},
		{
			name: "several algorithms of a kind: first kept",
			data: []byte{0xC0, 0x03, 0x01, 0x41, 0x42, 0x81, 0x80},
			want: []CipherSuiteRecord{{ID: 3, Auth: 1, Integrity: 1, Confidentiality: 1}},
		},
		{
			name: "algorithms in any order",
			data: []byte{0xC0, 0x03, 0x81, 0x41, 0x01},
			want: []CipherSuiteRecord{{ID: 3, Auth: 1, Integrity: 1, Confidentiality: 1}},
		},
		{name: "bad start byte", data: []byte{0x03, 0x01, 0x41, 0x81}, wantErr: "byte 0 is 0x03"},
		{name: "reserved start byte", data: []byte{0xC2, 0x03, 0x01, 0x41, 0x81}, wantErr: "byte 0 is 0xC2"},
		{name: "start byte only", data: []byte{0xC0}, wantErr: "truncated"},
		{name: "OEM without IANA", data: []byte{0xC1, 0x80, 0x57}, wantErr: "truncated"},
		{name: "no algorithms", data: []byte{0xC0, 0x03}, wantErr: "suite 3 at byte 0 has no authentication"},
		{name: "no integrity", data: []byte{0xC0, 0x00, 0x00, 0x40, 0x80, 0xC0, 0x03, 0x01, 0x81}, wantErr: "suite 3 at byte 5 has no integrity"},
		{name: "no confidentiality", data: []byte{0xC0, 0x03, 0x01, 0x41}, wantErr: "no confidentiality"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCipherSuiteRecords(tc.data)
			if tc.wantErr != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseCipherSuiteRecords(% x) error = %v, want a *FieldError containing %q", tc.data, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCipherSuiteRecords(% x): %v", tc.data, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseCipherSuiteRecords(% x) = %v, want %v", tc.data, got, tc.want)
			}
		})
	}
}

var getChannelCipherSuitesReqCases = []goldenCase[GetChannelCipherSuitesReq]{
	{
		// captured: `ipmitool channel getciphers ipmi 1`, first page.
		name: "captured channel 1 page 0",
		wire: []byte{
			0x01, // byte 1 [3:0] channel 1
			0x00, // byte 2 [5:0] payload type IPMI
			0x80, // byte 3 [7]=1 list algorithms by cipher suite, [5:0] list index 0
		},
		msg: GetChannelCipherSuitesReq{Channel: 1, ListByAlgorithm: true},
	},
	{
		// captured: `ipmitool channel getciphers ipmi` (this channel), last page.
		name: "captured this channel page 4",
		wire: []byte{0x0E, 0x00, 0x84},
		msg:  GetChannelCipherSuitesReq{Channel: ChannelCurrent, ListByAlgorithm: true, ListIndex: 4},
	},
	{
		// spec: Table 22-18, SOL payload, list of supported algorithms, index 63.
		name: "spec supported algorithms",
		wire: []byte{0x0E, 0x01, 0x3F},
		msg:  GetChannelCipherSuitesReq{Channel: ChannelCurrent, PayloadType: PayloadTypeSOL, ListIndex: 63},
	},
	{
		// spec: byte 1 [7:4], byte 2 [7:6], byte 3 [6] are reserved.
		name:       "spec reserved bits ignored",
		wire:       []byte{0xF1, 0xC0, 0xC2},
		msg:        GetChannelCipherSuitesReq{Channel: 1, ListByAlgorithm: true, ListIndex: 2},
		decodeOnly: true,
	},
}

var getChannelCipherSuitesRspCases = []goldenCase[GetChannelCipherSuitesRsp]{
	{
		// captured: ipmi_sim's first page (channel 1 and 16 bytes of records).
		name: "captured page 0",
		wire: append([]byte{0x01}, ipmiSimCipherPages[0]...),
		msg:  GetChannelCipherSuitesRsp{Channel: 1, Records: ipmiSimCipherPages[0]},
	},
	{
		// captured: ipmi_sim's last page, 11 bytes of records.
		name: "captured page 4",
		wire: append([]byte{0x01}, ipmiSimCipherPages[4]...),
		msg:  GetChannelCipherSuitesRsp{Channel: 1, Records: ipmiSimCipherPages[4]},
	},
	{
		// spec: a page past the end holds only the channel number.
		name: "spec empty page",
		wire: []byte{0x01},
		msg:  GetChannelCipherSuitesRsp{Channel: 1},
	},
}

func TestGetChannelCipherSuitesReq(t *testing.T) {
	runGolden(t, getChannelCipherSuitesReqCases)
	runLengths[GetChannelCipherSuitesReq](t, "Get Channel Cipher Suites request", getChannelCipherSuitesReqCases[0].wire, 3, true)
}

func TestGetChannelCipherSuitesRsp(t *testing.T) {
	runGolden(t, getChannelCipherSuitesRspCases)
	runLengths[GetChannelCipherSuitesRsp](t, "Get Channel Cipher Suites response", getChannelCipherSuitesRspCases[0].wire, 1, false)
}

func FuzzGetChannelCipherSuitesReq(f *testing.F) {
	fuzzCodec[GetChannelCipherSuitesReq](f, wires(getChannelCipherSuitesReqCases)...)
}

func FuzzGetChannelCipherSuitesRsp(f *testing.F) {
	fuzzCodec[GetChannelCipherSuitesRsp](f, wires(getChannelCipherSuitesRspCases)...)
}

// FuzzParseCipherSuiteRecords checks that parsing never panics and that
// whatever parses re-encodes to records that parse to the same list.
func FuzzParseCipherSuiteRecords(f *testing.F) {
	f.Add(ipmiSimCipherData())
	for _, p := range ipmiSimCipherPages {
		f.Add(p)
	}
	f.Add([]byte{0xC1, 0x80, 0x57, 0x01, 0x00, 0x01, 0x41, 0x81, 0xC0, 0x11, 0x03, 0x44, 0x81})
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseCipherSuiteRecords(data)
		if err != nil {
			return
		}
		enc := AppendCipherSuiteRecords(nil, recs)
		again, err := ParseCipherSuiteRecords(enc)
		if err != nil {
			t.Fatalf("records %v re-encode to % x, which fails to parse: %v", recs, enc, err)
		}
		if !reflect.DeepEqual(recs, again) {
			t.Fatalf("unstable: % x parses to %v, re-encoded to %v", data, recs, again)
		}
	})
}
