package rmcpplus

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/google/gopacket"
)

// Checks shared by the wire tests: golden messages decode to a known value
// and encode back to the same bytes, malformed input is refused, and
// whatever a decoder accepts survives a round trip.

// mustHex decodes hex written with optional spaces, "|" field markers and
// line breaks. Its input is always a literal of the tests, so a typo
// panics.
func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		panic("bad hex literal " + s + ": " + err.Error())
	}
	return b
}

// messageCodec is the pointer type of a handshake message M
// (OpenSessionRequest, RAKP1, ...).
type messageCodec[M any] interface {
	*M
	Marshal() []byte
	Unmarshal([]byte) error
}

// wireGolden is one golden message: its bytes, captured from a real peer or
// written from a spec table, and the value they decode to.
type wireGolden[M any] struct {
	name string
	hex  string
	want M
	// shortForm: hex leaves out fields (an error answer cut short), which
	// Marshal writes anyway, so only decoding is compared.
	shortForm bool
}

// testGolden decodes each golden message and compares it with want, then
// checks that Marshal of want gives the golden bytes back.
func testGolden[M any, P messageCodec[M]](t *testing.T, golden []wireGolden[M]) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			b := mustHex(g.hex)
			var got M
			if err := P(&got).Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, g.want) {
				t.Fatalf("decoded %+v\nwant    %+v", got, g.want)
			}
			if m := P(&g.want).Marshal(); !g.shortForm && !bytes.Equal(m, b) {
				t.Fatalf("Marshal = %x\nwant      %x", m, b)
			}
		})
	}
}

// testRejects checks that decode refuses every named input.
func testRejects[M any](t *testing.T, decode func(*M, []byte) error, bad map[string]string) {
	t.Helper()
	for name, h := range bad {
		var m M
		if err := decode(&m, mustHex(h)); err == nil {
			t.Errorf("%s: accepted as %+v", name, m)
		}
	}
}

// decodeLayer is a gopacket layer's decoder in the form testRejects takes.
func decodeLayer[L interface {
	DecodeFromBytes([]byte, gopacket.DecodeFeedback) error
}](l L, b []byte) error {
	return l.DecodeFromBytes(b, gopacket.NilDecodeFeedback)
}

// checkSerialize serializes layers with opts and compares the result with
// want.
func checkSerialize(t *testing.T, opts gopacket.SerializeOptions, want []byte, layers ...gopacket.SerializableLayer) {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, opts, layers...); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("SerializeLayers = %x\nwant              %x", buf.Bytes(), want)
	}
}

// fuzzRoundTrip seeds f with the golden messages and checks roundTrip on
// every input.
func fuzzRoundTrip[M any, P messageCodec[M]](f *testing.F, golden []wireGolden[M]) {
	for _, g := range golden {
		f.Add(mustHex(g.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip[M, P](t, b) })
}

// roundTrip checks that whatever Unmarshal accepts, Marshal writes in a
// form that decodes to the same value.
func roundTrip[M any, P messageCodec[M]](t *testing.T, b []byte) {
	var m M
	if err := P(&m).Unmarshal(b); err != nil {
		return
	}
	var again M
	if err := P(&again).Unmarshal(P(&m).Marshal()); err != nil {
		t.Fatalf("re-decoding Marshal output of %x: %v", b, err)
	}
	if !reflect.DeepEqual(m, again) {
		t.Fatalf("round trip changed %+v into %+v", m, again)
	}
}
