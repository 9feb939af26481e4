#!/usr/bin/env bash
# make demo: obmd on loopback with an in-memory store, a fakebmc fleet whose
# consoles print counter lines, the BMCs registered as ipmi nodes except the
# last, which is a redfish node (its certificate pinned with ca_cert, its
# console SOL over IPMI), and copy-paste curl commands for HIL's flow.
# Ctrl-C stops everything.
#
# Secrets never go on a command line here: the BMC password reaches fakebmc
# through FAKEBMC_PASS and obmd through the request body on curl's stdin; the
# admin token reaches obmd through ADMIN_TOKEN and curl through a config
# file read from stdin.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=${DEMO_NODES:-4}
bmc_port=${DEMO_BMC_PORT:-9623}
listen=${DEMO_LISTEN:-127.0.0.1:8080}
base="http://$listen"

command -v curl >/dev/null || { echo "demo: curl is missing; install it with: apt-get install -y curl" >&2; exit 1; }
make --no-print-directory build >/dev/null

admin_token=$(bin/obmd -gen-token)
bmc_pass=$(bin/obmd -gen-token | cut -c1-16)
workdir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAKEBMC_PASS=$bmc_pass bin/fakebmc -addr "127.0.0.1:$bmc_port" -user admin -count "$nodes" \
	-console counter -baud 115200 -redfish -redfish-cert "$workdir/redfish.pem" 2>"$workdir/fakebmc.log" &
pids+=($!)
LISTEN_ADDR=$listen ADMIN_TOKEN=$admin_token DB_PATH=:memory: bin/obmd 2>"$workdir/obmd.log" &
pids+=($!)

# Wait for obmd to answer (bounded), failing with its own words if it died.
for _ in $(seq 100); do
	curl -fs "$base/healthz" >/dev/null 2>&1 && break
	if ! kill -0 "${pids[1]}" 2>/dev/null; then echo "demo: obmd did not start:" >&2; cat "$workdir/obmd.log" >&2; exit 1; fi
	if ! kill -0 "${pids[0]}" 2>/dev/null; then echo "demo: fakebmc did not start:" >&2; cat "$workdir/fakebmc.log" >&2; exit 1; fi
	sleep 0.1
done
curl -fs "$base/healthz" >/dev/null || { echo "demo: obmd is not answering on $listen" >&2; exit 1; }
for _ in $(seq 100); do [ -s "$workdir/redfish.pem" ] && break; sleep 0.1; done
[ -s "$workdir/redfish.pem" ] || { echo "demo: fakebmc wrote no Redfish certificate:" >&2; cat "$workdir/fakebmc.log" >&2; exit 1; }

admin() { # admin METHOD PATH [BODY]: curl with the admin credential from stdin
	local method=$1 path=$2 body=${3:-}
	{
		printf 'user = "admin:%s"\n' "$admin_token"
		if [ -n "$body" ]; then
			body=${body//\\/\\\\} # curl's config unescapes \\ and \": keep JSON's own escapes
			printf 'data = "%s"\n' "${body//\"/\\\"}"
		fi
	} |
		curl -sS -K - -X "$method" -H 'Content-Type: application/json' "$base$path"
}

# The last BMC is driven through Redfish (when there are two or more): its
# self-signed certificate is pinned with ca_cert (as a JSON string), never
# verify_tls:false.
redfish_node=-1
[ "$nodes" -ge 2 ] && redfish_node=$((nodes - 1))
ca_json=$(awk '{printf "%s\\n", $0}' "$workdir/redfish.pem")
for i in $(seq 0 $((nodes - 1))); do
	port=$((bmc_port + i))
	if [ "$i" -eq "$redfish_node" ]; then
		out=$(admin PUT "/node/node$i" "{\"type\":\"redfish\",\"info\":{\"addr\":\"127.0.0.1:$port\",\"user\":\"admin\",\"pass\":\"$bmc_pass\",\"ca_cert\":\"$ca_json\",\"console\":{\"type\":\"ipmi\",\"addr\":\"127.0.0.1:$port\"}}}")
	else
		out=$(admin PUT "/node/node$i" "{\"type\":\"ipmi\",\"info\":{\"addr\":\"127.0.0.1:$port\",\"user\":\"admin\",\"pass\":\"$bmc_pass\"}}")
	fi
	[ -z "$out" ] || { echo "demo: registering node$i failed: $out" >&2; exit 1; }
done
token=$(admin POST /node/node0/token | sed -n 's/.*"token": *"\([0-9a-f]*\)".*/\1/p')
[ -n "$token" ] || { echo "demo: could not get a token for node0; obmd log:" >&2; cat "$workdir/obmd.log" >&2; exit 1; }

cat <<MSG

obmd is listening on $base with $nodes fakebmc nodes (node0..node$((nodes - 1)), BMCs on UDP 127.0.0.1:$bmc_port..$((bmc_port + nodes - 1))).
MSG
if [ "$redfish_node" -ge 0 ]; then
	rtoken=$(admin POST "/node/node$redfish_node/token" | sed -n 's/.*"token": *"\([0-9a-f]*\)".*/\1/p')
	cat <<MSG
node$redfish_node is a redfish node: obmd drives it over HTTPS (Redfish on TCP 127.0.0.1:$((bmc_port + redfish_node)),
certificate $workdir/redfish.pem pinned with ca_cert); its console is SOL over IPMI.
  curl '$base/node/node$redfish_node/power_status?token=$rtoken'
  curl -X POST -d '{"force": false}' '$base/node/node$redfish_node/power_cycle?token=$rtoken'
MSG
fi
cat <<MSG

Admin token:        $admin_token
Token for node0:    $token

Tenant calls (what HIL redirects to):
  curl '$base/node/node0/power_status?token=$token'
  curl -X POST '$base/node/node0/power_on?token=$token'
  curl -X POST '$base/node/node0/power_off?token=$token'
  curl -X POST -d '{"force": true}' '$base/node/node0/power_cycle?token=$token'
  curl -X PUT -d '{"bootdev": "pxe"}' '$base/node/node0/boot_device?token=$token'
  curl -N '$base/node/node0/console?token=$token'          # the serial console, streamed

Interactive console (type into it; ~. leaves, ~B sends a break):
  bin/obmd console '$base/node/node0/console?token=$token'
  or open $base/node/node0/console?token=$token in a browser

Admin calls (HIL):
  curl -u admin:$admin_token -X POST $base/node/node1/token
  curl -u admin:$admin_token -X DELETE $base/node/node0/token
  curl -u admin:$admin_token -X DELETE $base/node/node1

First console lines of node0:
MSG
curl -sN --max-time 3 "$base/node/node0/console?token=$token" | head -n 5 || true
echo
echo "Running; press Ctrl-C to stop (logs: $workdir)."
wait
