#!/usr/bin/env bash
# make demo-cluster: an etcd and three obmd instances (DB_TYPE=etcd) on
# loopback, a fakebmc fleet registered as ipmi nodes, and what to kill to
# watch a failover: which instance owns which node, each instance's PID,
# and curl commands that keep calling and watching through the others.
# Ctrl-C stops everything.
#
# Secrets never go on a command line here: the BMC password reaches
# fakebmc through FAKEBMC_PASS and obmd through the request body on curl's
# stdin; the admin and cluster tokens reach obmd through its environment
# and curl through a config file read from stdin.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=${DEMO_NODES:-6}
bmc_port=${DEMO_BMC_PORT:-9623}
first_port=${DEMO_PORT:-8081}
etcd_port=${DEMO_ETCD_PORT:-2479}

command -v curl >/dev/null || { echo "demo-cluster: curl is missing; install it with: apt-get install -y curl" >&2; exit 1; }
command -v etcd >/dev/null || { echo "demo-cluster: etcd is missing; install it with: apt-get install -y etcd-server" >&2; exit 1; }
make --no-print-directory build >/dev/null

admin_token=$(bin/obmd -gen-token)
cluster_token=$(bin/obmd -gen-token)
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

etcd_url="http://127.0.0.1:$etcd_port"
# etcd reads ETCD_* variables as its flags: start it with none of ours.
env -u ETCD_ENDPOINTS -u ETCD_PREFIX etcd --name demo --data-dir "$workdir/etcd" \
	--listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
	--listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
	--initial-cluster "demo=http://127.0.0.1:$((etcd_port + 1))" \
	--logger zap --log-outputs stderr --log-level warn 2>"$workdir/etcd.log" &
pids+=($!)
for _ in $(seq 100); do
	curl -fs "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"' && break
	sleep 0.1
done
curl -fs "$etcd_url/health" | grep -q '"health":"true"' || { echo "demo-cluster: etcd did not start:" >&2; cat "$workdir/etcd.log" >&2; exit 1; }

FAKEBMC_PASS=$bmc_pass bin/fakebmc -addr "127.0.0.1:$bmc_port" -user admin -count "$nodes" \
	-console counter -baud 115200 2>"$workdir/fakebmc.log" &
pids+=($!)

urls=()
obmd_pids=()
for i in 1 2 3; do
	port=$((first_port + i - 1))
	url="http://127.0.0.1:$port"
	urls+=("$url")
	DB_TYPE=etcd ETCD_ENDPOINTS=$etcd_url LISTEN_ADDR="127.0.0.1:$port" ADVERTISE_URL=$url \
		ADMIN_TOKEN=$admin_token CLUSTER_TOKEN=$cluster_token bin/obmd 2>"$workdir/obmd$i.log" &
	pids+=($!)
	obmd_pids+=($!)
done

admin() { # admin BASE METHOD PATH [BODY]: curl with the admin credential from stdin
	local base=$1 method=$2 path=$3 body=${4:-}
	{
		printf 'user = "admin:%s"\n' "$admin_token"
		if [ -n "$body" ]; then printf 'data = "%s"\n' "${body//\"/\\\"}"; fi
	} |
		curl -sS -K - -X "$method" -H 'Content-Type: application/json' "$base$path"
}

# Wait until every instance answers and sees all three members.
for i in 0 1 2; do
	for _ in $(seq 100); do
		admin "${urls[$i]}" GET /metrics 2>/dev/null | grep -q '^obmd_cluster_members 3$' && break
		if ! kill -0 "${obmd_pids[$i]}" 2>/dev/null; then echo "demo-cluster: obmd $((i + 1)) did not start:" >&2; cat "$workdir/obmd$((i + 1)).log" >&2; exit 1; fi
		sleep 0.1
	done
	admin "${urls[$i]}" GET /metrics | grep -q '^obmd_cluster_members 3$' || { echo "demo-cluster: obmd $((i + 1)) does not see the cluster; its log:" >&2; cat "$workdir/obmd$((i + 1)).log" >&2; exit 1; }
done

# Register the fleet through instance 1; any instance would do.
for i in $(seq 0 $((nodes - 1))); do
	port=$((bmc_port + i))
	admin "${urls[0]}" PUT "/node/node$i" "{\"type\":\"ipmi\",\"info\":{\"addr\":\"127.0.0.1:$port\",\"user\":\"admin\",\"pass\":\"$bmc_pass\"}}" >/dev/null
done
token=$(admin "${urls[1]}" POST /node/node0/token | sed -n 's/.*"token": *"\([0-9a-f]*\)".*/\1/p')
[ -n "$token" ] || { echo "demo-cluster: could not get a token for node0" >&2; exit 1; }

owner_of() { # owner_of NODE: the owning instance's URL, as instance 1 sees it
	admin "${urls[0]}" GET "/node/$1" | sed -n 's/.*"owner":{"instance":"\([^"]*\)".*/\1/p'
}
owner=""
for _ in $(seq 100); do
	owner=$(owner_of node0)
	[ -n "$owner" ] && break
	sleep 0.1
done
victim=0
for i in 0 1 2; do [ "${urls[$i]}" = "$owner" ] && victim=$i; done
other1=${urls[$(((victim + 1) % 3))]}
other2=${urls[$(((victim + 2) % 3))]}

echo
echo "An obmd cluster: etcd at $etcd_url, three instances, $nodes fakebmc nodes."
echo
for i in 0 1 2; do echo "  instance $((i + 1)): ${urls[$i]}  pid ${obmd_pids[$i]}"; done
echo
echo "Who owns which node:"
for i in $(seq 0 $((nodes - 1))); do echo "  node$i  $(owner_of "node$i")"; done
cat <<MSG

Admin token:      $admin_token
Token for node0:  $token

Watch node0 through an instance that does not own it, and call it through the other:
  curl -N '$other1/node/node0/console?token=$token'
  while sleep 0.5; do curl -s -w ' %{http_code}\\n' '$other2/node/node0/power_status?token=$token'; done

Then kill node0's owner, with no goodbye:
  kill -9 ${obmd_pids[$victim]}

Within about 3 s its nodes have a new owner: power calls answer again, the console
shows "[obmd: console reconnected after ...]" and goes on. See the new owner with:
  curl -u admin:$admin_token ${other1}/node/node0
  curl -u admin:$admin_token ${other1}/metrics | grep cluster

Logs: $workdir. Press Ctrl-C to stop everything.
MSG
wait
