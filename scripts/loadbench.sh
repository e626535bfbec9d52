#!/usr/bin/env bash
# Reproduce the README's load figures: start Switchboard nodes (and Redis
# when there is more than one node) on loopback, run switchboard-load against
# them with their PIDs, stop everything.
#
#   scripts/loadbench.sh [--nodes N] [--node-env "K=V ..."] -- <switchboard-load flags>
#
#   --nodes 1 (default): one node on the embedded in-memory default.
#   --nodes N > 1: redis-server on 127.0.0.1:6399 without persistence and N
#   nodes on ports 3921.. sharing it; the tool gets every URL, so a user's
#   devices sit on different nodes. Redis's PID is passed too, so the CPU
#   figures cover gateways plus Redis.
#   --node-env: extra environment for every node (e.g. "GOGC=50").
#   The nodes run with the per-user connection limit and the per-socket
#   event rate limit raised out of the way: the tool puts many devices on a
#   few users and drives each socket far faster than a person would, and
#   what is measured is the node's capacity, not those policies.
#   SWITCHBOARD_DEBUG_ADDR is set on node 1 only (127.0.0.1:6061) so a CPU
#   or heap profile can be taken while it runs:
#   go tool pprof http://127.0.0.1:6061/debug/pprof/profile?seconds=10
#
# Example: scripts/loadbench.sh --nodes 2 -- --scenario call --conns 100 --rate 200 --duration 10s
set -euo pipefail

nodes=1
node_env=""
while [[ $# -gt 0 ]]; do
	case "$1" in
	--nodes) nodes="$2"; shift 2 ;;
	--node-env) node_env="$2"; shift 2 ;;
	--) shift; break ;;
	*) echo "loadbench: unknown option $1 (tool flags go after --)" >&2; exit 2 ;;
	esac
done
[[ "$nodes" =~ ^[1-9]$ ]] || { echo "loadbench: --nodes must be 1 to 9" >&2; exit 2; }

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/switchboard" ./cmd/switchboard && go build -o "$work/switchboard-load" ./cmd/switchboard-load)

redis_env=""
if [[ "$nodes" -gt 1 ]]; then
	redis-server --port 6399 --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 50); do redis-cli -p 6399 ping >/dev/null 2>&1 && break; sleep 0.1; done
	redis_env="SWITCHBOARD_REDIS_URL=redis://127.0.0.1:6399"
fi

urls=()
node_pids=()
for i in $(seq "$nodes"); do
	port=$((3920 + i))
	debug=""
	[[ "$i" -eq 1 ]] && debug="SWITCHBOARD_DEBUG_ADDR=127.0.0.1:6061"
	# shellcheck disable=SC2086 # node_env is a list of K=V words
	env $node_env $redis_env $debug SWITCHBOARD_ADDR="127.0.0.1:$port" SWITCHBOARD_NODE_ID="bench-$i" \
		SWITCHBOARD_MAX_CONNS_PER_USER=1000 SWITCHBOARD_EVENTS_PER_SECOND=100000 SWITCHBOARD_EVENT_BURST=100000 SWITCHBOARD_LOG_LEVEL=warn SWITCHBOARD_WS_FRAME_SHARING=${SWITCHBOARD_WS_FRAME_SHARING:-true} \
		"$work/switchboard" >"$work/node$i.log" 2>&1 &
	pids+=($!)
	node_pids+=($!)
	urls+=("http://127.0.0.1:$port")
done
for u in "${urls[@]}"; do
	for _ in $(seq 100); do curl -sf "$u/readyz" >/dev/null && break; sleep 0.1; done
	curl -sf "$u/readyz" >/dev/null || { echo "loadbench: $u never became ready" >&2; cat "$work"/node*.log >&2; exit 1; }
done
all_pids=("${node_pids[@]}")
[[ "$nodes" -gt 1 ]] && all_pids+=("${pids[0]}")

"$work/switchboard-load" --urls "$(IFS=,; echo "${urls[*]}")" --pids "$(IFS=,; echo "${all_pids[*]}")" "$@"
