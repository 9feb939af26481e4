# extract.py PCAP BMCPORT OUT: writes "c2b <hex>" / "b2c <hex>" lines from a LINUX_SLL2 pcap
import struct, sys
pcap, bmcport, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(pcap, "rb").read()
magic, = struct.unpack("<I", data[:4]); assert magic == 0xa1b2c3d4, hex(magic)
linktype, = struct.unpack("<I", data[20:24]); assert linktype == 276, linktype  # LINUX_SLL2
off = 24; lines = []
while off < len(data):
    ts, tus, incl, orig = struct.unpack("<IIII", data[off:off+16]); off += 16
    pkt = data[off:off+incl]; off += incl
    ip = pkt[20:]
    assert ip[0] >> 4 == 4 and ip[9] == 17
    ihl = (ip[0] & 15) * 4
    sport, dport, ulen = struct.unpack(">HHH", ip[ihl:ihl+6])
    payload = ip[ihl+8:ihl+ulen]
    d = "c2b" if dport == bmcport else "b2c" if sport == bmcport else None
    if d: lines.append(f"{d} {payload.hex()}")
open(out, "w").write("\n".join(lines) + "\n")
print(out, len(lines))
