#!/usr/bin/env python3
"""Independent oracle for rmcpplus's known-answer tests (keys_test.go, aes_test.go).

Builds every HMAC input of IPMI v2.0 sections 13.28.4, 13.29, 13.31 and
13.32 field by field from the spec's definitions and prints the digests,
using only Python's hmac/hashlib and the openssl command line (AES). It
shares no code with the Go package; rerun it and compare with the hex
literals in kat_test.go.
"""
import hashlib, hmac, subprocess

H = bytes.fromhex
def mac(alg, key, data): return hmac.new(key, data, alg).digest()

password = b"secret"
username = b"admin"
role = H("14")                       # administrator (4) | name-only lookup (0x10)
sidm = H("44332211")                 # console (remote console) session ID 0x11223344, LE
sidc = H("88776655")                 # BMC (managed system) session ID 0x55667788, LE
rm = H("000102030405060708090a0b0c0d0e0f")
rc = H("101112131415161718191a1b1c1d1e1f")
guid = H("a123456789abcdefa123456789abcdef")
kg = H("0102030405060708090a0b0c0d0e0f1011121314")
ulen = bytes([len(username)])

for name, alg, icv in (("SHA1", hashlib.sha1, 12), ("SHA256", hashlib.sha256, 16)):
    print("==", name)
    rakp2 = sidm + sidc + rm + rc + guid + role + ulen + username
    print("rakp2 input ", rakp2.hex())
    print("rakp2 code  ", mac(alg, password, rakp2).hex())
    print("rakp2 code (key zero-padded to 20)", mac(alg, password.ljust(20, b"\0"), rakp2).hex())
    rakp3 = rc + sidm + role + ulen + username
    print("rakp3 input ", rakp3.hex())
    print("rakp3 code  ", mac(alg, password, rakp3).hex())
    sikin = rm + rc + role + ulen + username
    sik = mac(alg, password, sikin)
    print("sik input   ", sikin.hex())
    print("sik         ", sik.hex())
    print("sik with kg ", mac(alg, kg, sikin).hex())
    rakp4 = rm + sidc + guid
    print("rakp4 input ", rakp4.hex())
    print("rakp4 icv   ", mac(alg, sik, rakp4)[:icv].hex())
    k1 = mac(alg, sik, b"\x01" * 20)
    k2 = mac(alg, sik, b"\x02" * 20)
    print("k1          ", k1.hex())
    print("k2          ", k2.hex())

    # Integrity only (suite 2 / 16): IPMI Get Chassis Status request,
    # session ID 0x55667788, session sequence 1.
    payload = H("2000e08104017a")
    hdr = H("06") + H("40") + sidc + H("01000000") + len(payload).to_bytes(2, "little")
    signed = hdr + payload + H("ffffff") + H("03") + H("07")
    assert len(signed) % 4 == 0
    print("integrity signed", signed.hex())
    print("integrity authcode", mac(alg, k1, signed)[:icv].hex())

    # Integrity + AES-CBC-128 (suite 3 / 17) with a fixed IV.
    iv = H("00112233445566778899aabbccddeeff")
    plain = payload + bytes(range(1, 9)) + H("08")
    assert len(plain) % 16 == 0
    ct = subprocess.run(["openssl", "enc", "-aes-128-cbc", "-K", k2[:16].hex(), "-iv", iv.hex(), "-nopad"],
                        input=plain, capture_output=True, check=True).stdout
    field = iv + ct
    hdr = H("06") + H("c0") + sidc + H("01000000") + len(field).to_bytes(2, "little")
    pad = (4 - (len(hdr) + len(field) + 2) % 4) % 4
    signed = hdr + field + H("ff") * pad + bytes([pad]) + H("07")
    print("sealed aes key", k2[:16].hex())
    print("sealed ciphertext", ct.hex())
    print("sealed signed", signed.hex())
    print("sealed authcode", mac(alg, k1, signed)[:icv].hex())

print("== AES-CBC-128 alone")
key = H("2b7e151628aed2a6abf7158809cf4f3c")
iv = H("000102030405060708090a0b0c0d0e0f")
for p in (H("2000e08104017a") + bytes(range(1, 9)) + H("08"),
          H("000102030405060708090a0b0c0d0e0f") + bytes(range(1, 16)) + H("0f")):
    ct = subprocess.run(["openssl", "enc", "-aes-128-cbc", "-K", key.hex(), "-iv", iv.hex(), "-nopad"],
                        input=p, capture_output=True, check=True).stdout
    print("plain", p.hex())
    print("ct   ", ct.hex())
