#!/bin/sh
# Regenerates the real-peer captures in this directory: ipmitool and
# FreeIPMI (clients) talking RMCP+ to OpenIPMI's ipmi_sim (BMC) on loopback,
# recorded with tcpdump. Needs root (tcpdump), ipmitool, freeipmi-tools,
# openipmi, python3. See README.md for what each file holds.
set -eu
OUT=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d)
trap 'kill $TD $SIM 2>/dev/null || true; rm -rf "$W"' EXIT

PORT=$(python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])')

cat > "$W/chassis.sh" <<'EOS'
#!/bin/sh
D=$1; shift
case "$1 $2" in
"get power") cat "$D/power" 2>/dev/null || echo power:0 ;;
"set power") echo "power:$3" > "$D/power" ;;
"get boot") echo "boot:default" ;;
esac
exit 0
EOS
chmod +x "$W/chassis.sh"
mkdir -p "$W/state" "$W/sim"
echo power:1 > "$W/state/power"
cat > "$W/lan.conf" <<EOS
name "test"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 $PORT
    priv_limit admin
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "$W/chassis.sh $W/state"
  user 2 true "admin" "secret" admin 10
EOS
cat > "$W/bmc.emu" <<'EOS'
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
EOS
ipmi_sim -n -c "$W/lan.conf" -f "$W/bmc.emu" -s "$W/sim" >"$W/sim.log" 2>&1 &
SIM=$!
sleep 0.5

# capture NAME COMMAND...: records COMMAND's traffic with ipmi_sim. With
# EXPECT=fail the command must fail (error-path captures).
EXPECT=ok
capture() {
	name=$1; shift
	tcpdump -i lo --immediate-mode -U -w "$OUT/$name.pcap" "udp port $PORT" >/dev/null 2>"$W/tcpdump.log" &
	TD=$!
	until grep -q listening "$W/tcpdump.log"; do sleep 0.1; done
	if [ "$EXPECT" = ok ]; then
		"$@" >"$W/$name.log" 2>&1 || { cat "$W/$name.log"; exit 1; }
	else
		! "$@" >"$W/$name.log" 2>&1 || { echo "$name: expected a failure"; exit 1; }
	fi
	sleep 0.3
	kill $TD; wait $TD 2>/dev/null || true
}

I="ipmitool -I lanplus -H 127.0.0.1 -p $PORT -U admin -P secret"
capture ipmitool-suite3 $I -C 3 chassis power status
capture ipmitool-suite2 $I -C 2 chassis power status
EXPECT=fail
# Unknown user: ipmi_sim answers RAKP 2 with status 0Dh (unauthorized name).
capture ipmitool-baduser ipmitool -I lanplus -H 127.0.0.1 -p $PORT -U nobody -P secret -C 3 -N 1 -R 1 chassis power status
# Wrong password: ipmitool finds RAKP 2's auth code wrong.
capture ipmitool-badpass ipmitool -I lanplus -H 127.0.0.1 -p $PORT -U admin -P wrong -C 3 -N 1 -R 1 chassis power status
EXPECT=ok
capture freeipmi-suite3 ipmi-chassis -D LAN_2_0 -h "127.0.0.1:$PORT" -u admin -p secret -I 3 -W opensesspriv --get-status
# ASF presence ping (DSP0136 section 3.2.4.1), written out by hand: RMCP
# header 06 00 FF 06, IANA 4542 (0x000011BE), type 0x80, tag 0x5A,
# reserved 0x00, data length 0x00.
capture asf-ping python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(bytes.fromhex('0600ff06 000011be 805a0000'.replace(' ', '')), ('127.0.0.1', $PORT))
print(s.recvfrom(512)[0].hex())
"
echo "captured on port $PORT into $OUT"
