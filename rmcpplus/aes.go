package rmcpplus

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"slices"
)

// AES-CBC-128 confidentiality, IPMI v2.0 section 13.29: the payload field
// of an encrypted packet is
//
//	IV (16 bytes) | AES-CBC-128(payload | pad 01h 02h ... n | pad length n)
//
// keyed with the first 16 bytes of K2, with a fresh IV per packet (section
// 13.29: "the IV ... shall be generated ... for each packet"). The pad
// brings the plaintext plus the pad length byte to a multiple of 16.

// ErrBadPadding reports a decrypted payload whose confidentiality pad is
// not 01h, 02h, ..., n followed by n: the wrong key, or a corrupt packet.
var ErrBadPadding = errors.New("rmcpplus: AES-CBC-128 confidentiality pad is malformed (wrong key or corrupt packet)")

const aesKeyLen = 16

// newAESCBC128 returns the AES-128 block cipher keyed with K2's first 16
// bytes.
func newAESCBC128(k2 []byte) (cipher.Block, error) {
	if len(k2) < aesKeyLen {
		return nil, fmt.Errorf("rmcpplus: K2 has %d bytes, AES-CBC-128 needs 16", len(k2))
	}
	return aes.NewCipher(k2[:aesKeyLen])
}

// aesConfidentialityPadLen is the number of pad bytes (excluding the pad
// length byte) for a payload of n bytes.
func aesConfidentialityPadLen(n int) int {
	return (aes.BlockSize - (n+1)%aes.BlockSize) % aes.BlockSize
}

// appendAESCBC128 appends IV | ciphertext for payload. The IV is read
// from random (crypto/rand.Reader in production). The ciphertext is
// written in place, so appending costs no allocation beyond b's growth.
func appendAESCBC128(b []byte, block cipher.Block, random io.Reader, payload []byte) ([]byte, error) {
	start := len(b)
	pad := aesConfidentialityPadLen(len(payload))
	total := aes.BlockSize + len(payload) + pad + 1
	b = grow(b, total)
	out := b[start : start+total]
	iv := out[:aes.BlockSize]
	if _, err := io.ReadFull(random, iv); err != nil {
		return b[:start], fmt.Errorf("rmcpplus: reading a random IV: %w", err)
	}
	body := out[aes.BlockSize:]
	n := copy(body, payload)
	for i := range pad {
		body[n+i] = uint8(i + 1)
	}
	body[len(body)-1] = uint8(pad)
	// CBC: C[i] = E(P[i] xor C[i-1]), C[-1] = IV.
	prev := iv
	for i := 0; i < len(body); i += aes.BlockSize {
		blk := body[i : i+aes.BlockSize]
		subtle.XORBytes(blk, blk, prev)
		block.Encrypt(blk, blk)
		prev = blk
	}
	return b, nil
}

// appendOpenAESCBC128 decrypts an IV | ciphertext payload field and
// appends the plaintext without its pad to dst, which must not overlap
// field. The pad is verified.
func appendOpenAESCBC128(dst []byte, block cipher.Block, field []byte) ([]byte, error) {
	if len(field) < 2*aes.BlockSize || len(field)%aes.BlockSize != 0 {
		return dst, fmt.Errorf("rmcpplus: encrypted payload of %d bytes; AES-CBC-128 needs a 16-byte IV and whole 16-byte blocks", len(field))
	}
	iv, ct := field[:aes.BlockSize], field[aes.BlockSize:]
	start := len(dst)
	dst = grow(dst, len(ct))
	pt := dst[start:]
	// CBC: P[i] = D(C[i]) xor C[i-1], C[-1] = IV.
	prev := iv
	for i := 0; i < len(ct); i += aes.BlockSize {
		block.Decrypt(pt[i:i+aes.BlockSize], ct[i:i+aes.BlockSize])
		subtle.XORBytes(pt[i:i+aes.BlockSize], pt[i:i+aes.BlockSize], prev)
		prev = ct[i : i+aes.BlockSize]
	}
	pad := int(pt[len(pt)-1])
	if pad >= aes.BlockSize {
		return dst[:start], ErrBadPadding
	}
	body := len(pt) - 1 - pad
	for i := range pad {
		if pt[body+i] != uint8(i+1) {
			return dst[:start], ErrBadPadding
		}
	}
	return dst[:start+body], nil
}

// grow extends b by n bytes, reallocating only when capacity runs out.
func grow(b []byte, n int) []byte {
	return slices.Grow(b, n)[:len(b)+n]
}
