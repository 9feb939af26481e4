package rmcpplus

import (
	"bytes"
	"errors"
	"testing"
)

// TestKATAESCBC128 encrypts with a fixed key and IV and compares with
// `openssl enc -aes-128-cbc -K 2b7e151628aed2a6abf7158809cf4f3c
// -iv 000102030405060708090a0b0c0d0e0f -nopad` of the plaintext padded by
// hand as section 13.29 prescribes (testdata/katgen.py).
func TestKATAESCBC128(t *testing.T) {
	key := mustHex("2b7e151628aed2a6abf7158809cf4f3c")
	iv := mustHex("000102030405060708090a0b0c0d0e0f")
	tests := []struct {
		name    string
		payload string
		padded  string // payload | pad 01..n | n, written out
		openssl string
	}{
		{
			name:    "7-byte IPMI request, pad 8",
			payload: "2000e08104017a",
			padded:  "2000e08104017a | 0102030405060708 | 08",
			openssl: "7ed8e9ba2d2d83d0648e701f52a50552",
		},
		{
			name:    "16-byte payload, pad 15, two blocks chained",
			payload: "000102030405060708090a0b0c0d0e0f",
			padded:  "000102030405060708090a0b0c0d0e0f | 0102030405060708090a0b0c0d0e0f | 0f",
			openssl: "7df76b0c1ab899b33e42f047b91b546fcadf252b80fc6ac6c5d36d8247e5e5b4",
		},
	}
	block, err := newAESCBC128(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := mustHex(tt.payload)
			if n := len(mustHex(tt.padded)) - len(payload) - 1; n != aesConfidentialityPadLen(len(payload)) {
				t.Fatalf("pad length %d, the written-out vector has %d", aesConfidentialityPadLen(len(payload)), n)
			}
			got, err := appendAESCBC128(nil, block, fixedReader(iv), payload)
			if err != nil {
				t.Fatal(err)
			}
			want := append(bytes.Clone(iv), mustHex(tt.openssl)...)
			if !bytes.Equal(got, want) {
				t.Fatalf("encrypt\n got %x\nwant %x", got, want)
			}
			plain, err := appendOpenAESCBC128([]byte("x"), block, want)
			if err != nil || !bytes.Equal(plain, append([]byte("x"), payload...)) {
				t.Fatalf("decrypt = %x, %v; want x|%x", plain, err, payload)
			}
		})
	}
}

func TestWireAESPadLengths(t *testing.T) {
	for n, want := range map[int]int{0: 15, 1: 14, 14: 1, 15: 0, 16: 15, 31: 0, 32: 15} {
		if got := aesConfidentialityPadLen(n); got != want {
			t.Errorf("pad for %d bytes = %d, want %d", n, got, want)
		}
	}
}

// TestWireAESRejects decrypts fields with a broken shape or pad. The
// ciphertexts are made by encrypting chosen final blocks with the key, so
// each case fails for exactly the stated reason.
func TestWireAESRejects(t *testing.T) {
	key := mustHex("2b7e151628aed2a6abf7158809cf4f3c")
	block, err := newAESCBC128(key)
	if err != nil {
		t.Fatal(err)
	}
	iv := make([]byte, 16)
	oneBlock := func(plain string) []byte {
		ct := make([]byte, 16)
		block.Encrypt(ct, mustHex(plain)) // IV zero: C = E(P)
		return append(bytes.Clone(iv), ct...)
	}
	tests := []struct {
		name  string
		field []byte
		pad   bool // ErrBadPadding expected
	}{
		{"IV only", iv, false},
		{"not whole blocks", append(bytes.Clone(iv), make([]byte, 15)...), false},
		{"pad length 16", oneBlock("00000000000000000000000000000010"), true},
		{"pad length 255", oneBlock("000000000000000000000000000000ff"), true},
		{"pad bytes not 1..n", oneBlock("00000000000000000000000001020203"), true},
		{"pad bytes zero", oneBlock("00000000000000000000000000000003"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendOpenAESCBC128(nil, block, tt.field)
			if err == nil {
				t.Fatalf("accepted: %x", got)
			}
			if errors.Is(err, ErrBadPadding) != tt.pad {
				t.Fatalf("error %v; bad-padding expected: %v", err, tt.pad)
			}
		})
	}
	// And the control: a correct pad of 3 passes.
	if got, err := appendOpenAESCBC128(nil, block, oneBlock("000000000000000000000000010203 03")); err != nil || len(got) != 12 {
		t.Fatalf("good pad refused: %x, %v", got, err)
	}
}

func TestWireAESKeyTooShort(t *testing.T) {
	if _, err := newAESCBC128(make([]byte, 15)); err == nil {
		t.Fatal("15-byte K2 accepted")
	}
}
