package ipmi

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Golden vectors in the *_test.go files of this package come from two
// sources, noted on each case:
//
//   - "captured": bytes seen on loopback between ipmitool 1.8.19 (or
//     FreeIPMI 1.6.10) and OpenIPMI ipmi_sim 2.0.33 on Debian 12, with
//     IPMI v1.5 authentication type none or RMCP+ cipher suite 0, so the
//     messages were plaintext. testdata/captures.txt is the decoded log.
//   - "spec": hand-assembled from the field tables of IPMI v2.0 (the table
//     is cited on the case), usually to set bits no peer set.

// goldenCase is one known encoding of a codec: wire is the command data
// (after the completion code for a response) and msg its decoded form.
type goldenCase[T any] struct {
	name string
	wire []byte
	msg  T
	// decodeOnly marks wire that Marshal does not reproduce byte for byte:
	// reserved bits set or trailing bytes the decoder ignores.
	decodeOnly bool
}

// codecPtr lets generic helpers call the pointer-receiver methods of T.
type codecPtr[T any] interface {
	*T
	Codec
}

// runGolden checks, for each case: wire decodes to msg; msg encodes to wire
// (unless decodeOnly); msg survives Marshal+Unmarshal; and the decoded value
// does not alias the input buffer.
func runGolden[T any, P codecPtr[T]](t *testing.T, cases []goldenCase[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			buf := bytes.Clone(tc.wire)
			var got T
			if err := P(&got).Unmarshal(buf); err != nil {
				t.Fatalf("Unmarshal(% x): %v", tc.wire, err)
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Errorf("Unmarshal(% x)\n got %+v\nwant %+v", tc.wire, got, tc.msg)
			}
			for i := range buf {
				buf[i] ^= 0xFF
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Errorf("decoded value changed when the input buffer was overwritten: %+v", got)
			}

			msg := tc.msg
			enc := P(&msg).Marshal()
			if !tc.decodeOnly && !bytes.Equal(enc, tc.wire) {
				t.Errorf("Marshal(%+v)\n got % x\nwant % x", tc.msg, enc, tc.wire)
			}
			var back T
			if err := P(&back).Unmarshal(enc); err != nil {
				t.Fatalf("Unmarshal(Marshal(msg) = % x): %v", enc, err)
			}
			if !reflect.DeepEqual(back, tc.msg) {
				t.Errorf("round trip\n got %+v\nwant %+v", back, tc.msg)
			}
		})
	}
}

// runLengths checks that every prefix of valid shorter than min, and valid
// with an extra byte when tooLong is set, is refused with a *LengthError
// that names the command.
func runLengths[T any, P codecPtr[T]](t *testing.T, command string, valid []byte, min int, tooLong bool) {
	t.Helper()
	check := func(data []byte) {
		t.Helper()
		var v T
		err := P(&v).Unmarshal(data)
		var le *LengthError
		if !errors.As(err, &le) {
			t.Fatalf("Unmarshal(% x) = %v, want a *LengthError", data, err)
		}
		if le.Got != len(data) {
			t.Errorf("LengthError.Got = %d, want %d", le.Got, len(data))
		}
		if !strings.Contains(err.Error(), command) {
			t.Errorf("error %q does not name %q", err, command)
		}
	}
	if len(valid) < min {
		t.Fatalf("test bug: valid input (%d bytes) shorter than min %d", len(valid), min)
	}
	for n := 0; n < min; n++ {
		check(valid[:n])
	}
	if tooLong {
		check(append(bytes.Clone(valid), 0))
	}
	var v T
	if err := P(&v).Unmarshal(valid[:min]); err != nil {
		t.Errorf("Unmarshal of the %d-byte minimum: %v", min, err)
	}
}

// fuzzCodec feeds arbitrary data to Unmarshal. It must not panic, and what
// it accepts must be stable: Marshal of the decoded value decodes to the
// same value and encodes to the same bytes again.
func fuzzCodec[T any, P codecPtr[T]](f *testing.F, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var first T
		if err := P(&first).Unmarshal(data); err != nil {
			return
		}
		enc := P(&first).Marshal()
		var second T
		if err := P(&second).Unmarshal(enc); err != nil {
			t.Fatalf("Unmarshal(% x) ok, but Unmarshal(Marshal = % x): %v", data, enc, err)
		}
		if !reflect.DeepEqual(first, second) {
			t.Fatalf("unstable: % x decodes to %+v, its encoding % x to %+v", data, first, enc, second)
		}
		if enc2 := P(&second).Marshal(); !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable encoding: % x then % x", enc, enc2)
		}
	})
}

// wires returns the wire bytes of cases, as fuzz seeds.
func wires[T any](cases []goldenCase[T]) [][]byte {
	out := make([][]byte, len(cases))
	for i, c := range cases {
		out[i] = c.wire
	}
	return out
}

func TestLengthErrorText(t *testing.T) {
	cases := []struct {
		name string
		err  *LengthError
		want string
	}{
		{"exact, short", &LengthError{What: "Chassis Control request", Got: 0, Min: 1, Max: 1},
			"ipmi: Chassis Control request: 0 data bytes, need exactly 1"},
		{"exact, long", &LengthError{What: "Chassis Control request", Got: 2, Min: 1, Max: 1},
			"ipmi: Chassis Control request: 2 data bytes, need exactly 1"},
		{"minimum", &LengthError{What: "Get Device ID response", Got: 5, Min: 11, Max: NoLimit},
			"ipmi: Get Device ID response: 5 data bytes, need at least 11"},
		{"range, long", &LengthError{What: "Close Session request", Got: 6, Min: 4, Max: 5},
			"ipmi: Close Session request: 6 data bytes, at most 5 allowed"},
		{"range, short", &LengthError{What: "Close Session request", Got: 3, Min: 4, Max: 5},
			"ipmi: Close Session request: 3 data bytes, need at least 4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCompletionCodeFor(t *testing.T) {
	var short ChassisControlReq
	lengthErr := short.Unmarshal(nil)
	_, fieldErr := ParseCipherSuiteRecords([]byte{0x00})
	cases := []struct {
		name string
		err  error
		want CompletionCode
	}{
		{"nil", nil, CCOK},
		{"length", lengthErr, CCDataLengthInvalid},
		{"wrapped length", fmt.Errorf("handler: %w", lengthErr), CCDataLengthInvalid},
		{"field", fieldErr, CCInvalidDataField},
		{"other", errors.New("boom"), CCUnspecified},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := CompletionCodeFor(tc.err); got != tc.want {
				t.Errorf("CompletionCodeFor(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
