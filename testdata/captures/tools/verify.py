# verify.py FILE PASSWORD: checks a capture's RAKP 2/3/4 codes, derives SIK/K1/K2
# (IPMI v2.0 sections 13.31, 13.32), verifies the integrity AuthCodes and
# decrypts AES-CBC-128 payloads. Handles auth algorithm HMAC-SHA1 (suites 1-3).
# Needs python3-cryptography. Independent of obmd's Go code on purpose.
import sys, hmac, hashlib, struct
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
fn, pw = sys.argv[1], sys.argv[2].encode()
lines = [l.split() for l in open(fn) if l.strip()]
H = {1: hashlib.sha1, 3: hashlib.sha256}
st = {}
def ihmac(key, data, alg): return hmac.new(key, data, H[alg]).digest()
for d, hx in lines:
    b = bytes.fromhex(hx)
    if b[3] != 7: print(d, "ASF", hx); continue
    at = b[4]
    if at != 6:
        sid, = struct.unpack("<I", b[9:13]); seq, = struct.unpack("<I", b[5:9])
        ln = b[13 + (16 if at else 0)]; msg = b[14 + (16 if at else 0):][:ln]
        print(d, f"v1.5 auth={at} seq={seq} sid={sid:#x} msg={msg.hex()}"); continue
    pt = b[5] & 0x3f; enc = b[5] & 0x80; auth = b[5] & 0x40
    sid, seq, ln = struct.unpack("<IIH", b[6:16]); p = b[16:16+ln]
    if pt == 0x10:
        st['priv'] = p[1]; st['csid'] = p[4:8]; st['alg'] = p[12]; st['ialg'] = p[20]; st['calg'] = p[28]
        print(d, "OpenSessionReq", p.hex())
    elif pt == 0x11:
        print(d, "OpenSessionRsp status", p[1], "priv", p[2]); st['msid'] = p[8:12]
    elif pt == 0x12:
        st['rm'] = p[8:24]; st['role'] = p[24]; st['uname'] = p[28:28+p[27]]
        print(d, "RAKP1 role", hex(p[24]), "user", st['uname'])
    elif pt == 0x13:
        st['rc'] = p[8:24]; st['guid'] = p[24:40]; ac = p[40:]
        data = st['csid']+st['msid']+st['rm']+st['rc']+st['guid']+bytes([st['role'], len(st['uname'])])+st['uname']
        # IPMI v2.0 section 13.31: SIDm (remote console's ID) first, then SIDc (the BMC's)
        exp = ihmac(pw, data, st['alg'])
        print(d, "RAKP2 status", p[1], "authcode ok" if exp == ac else "AUTHCODE MISMATCH")
        st['sik'] = ihmac(pw, st['rm']+st['rc']+bytes([st['role'], len(st['uname'])])+st['uname'], st['alg'])
        st['k1'] = ihmac(st['sik'], b'\x01'*20, st['alg']); st['k2'] = ihmac(st['sik'], b'\x02'*20, st['alg'])
        print("   SIK", st['sik'].hex(), "\n   K1", st['k1'].hex(), "\n   K2", st['k2'].hex())
    elif pt == 0x14:
        exp = ihmac(pw, st['rc']+st['csid']+bytes([st['role'], len(st['uname'])])+st['uname'], st['alg'])
        print(d, "RAKP3", "authcode ok" if exp == p[8:] else "MISMATCH")
    elif pt == 0x15:
        exp = ihmac(st['sik'], st['rm']+st['msid']+st['guid'], st['alg'])[:12 if st['alg']==1 else 16]
        print(d, "RAKP4 status", p[1], "icv ok" if exp == p[8:] else "MISMATCH")
    else:
        extra = ""
        if auth:
            tl = {1: 12, 4: 16}.get(st['ialg'], 12)
            body = b[4:-tl]; ac = b[-tl:]
            h = H[1] if st['ialg'] == 1 else hashlib.sha256
            ok = hmac.new(st['k1'], body, h).digest()[:tl] == ac
            extra = " integrity " + ("ok" if ok else "BAD")
        if enc:
            iv, ct = p[:16], p[16:]
            dec = Cipher(algorithms.AES(st['k2'][:16]), modes.CBC(iv)).decryptor()
            pl = dec.update(ct) + dec.finalize()
            n = pl[-1]; pad = pl[-1-n:-1]
            assert pad == bytes(range(1, n+1)), pad
            p = pl[:-1-n]
        print(d, f"pt={pt:#x} sid={sid:#x} seq={seq}{extra} plain={p.hex()}")
