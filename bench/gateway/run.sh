#!/usr/bin/env bash
# The gateway's cost and a tenant move under load (bench/README.md "Gateway"),
# every process on 127.0.0.1, the load generator (bench_http) in its own
# process. Each measurement starts a fresh nats-server and fresh nodes.
#
#   bench/gateway/run.sh WORKLOAD.jsonl [BUILD_DIR] [CLIENTS] [DURATION_S]
#
#   1. direct:  bench_http -> HTTP -> aggregate node (aggregate-jetstream.yaml, --node-id agg-1)
#   2. gateway: bench_http -> HTTP -> gateway -> NATS request/reply -> the same node
#      (both at each client count of CLIENTS, e.g. 4,32: half load and peak)
#   3. move:    two aggregate nodes behind the gateway; `esflow tenants move`
#      of tenant-0 while bench_http runs through the gateway; bench_http's
#      verification must still pass.
set -euo pipefail
workload=${1:?usage: run.sh WORKLOAD.jsonl [BUILD_DIR] [CLIENTS] [DURATION_S]}
build=${2:-build}
clients=${3:-4,32}
duration=${4:-15}
esflow=$(realpath "$build/esflow")
bench=$(realpath "$build/bench/http/bench_http")
src=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/processes.sh
. "$src/bench/processes.sh"

# GATEWAY_CPU=N: the gateway alone on CPU N, everything else (nats-server,
# nodes, bench_http) on the other CPUs, in both the direct and the gateway
# runs: the gateway as on a host of its own, not taking CPU from the node.
node_cpus="" gateway_cpus=""
if [ -n "${GATEWAY_CPU:-}" ]; then
  others=$(seq 0 $(($(nproc) - 1)) | grep -vx "$GATEWAY_CPU" | paste -sd,)
  node_cpus="taskset -c $others" gateway_cpus="taskset -c $GATEWAY_CPU"
fi
start_nats() {
  nats_port=$(free_port)
  $node_cpus nats-server -js -a 127.0.0.1 -p "$nats_port" -sd "$tmp/js-$1" >"$tmp/nats-$1.log" 2>&1 &
  pids+=($!)
  nats_url="nats://127.0.0.1:$nats_port"
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && return 0; sleep 0.1; done
}
# start_agg ID RUN: sets $addr (host:port); no subshell, so its PID is kept.
start_agg() {
  local port
  port=$(free_port)
  $node_cpus "$esflow" run "$src/pipelines/aggregate-jetstream.yaml" --node-id "$1" --nats "$nats_url" \
    --http "127.0.0.1:$port" --data-dir "$tmp/data-$2-$1" >"$tmp/$2-$1.log" 2>&1 &
  pids+=($!)
  wait_ready "127.0.0.1:$port"
  addr="127.0.0.1:$port"
}
start_gateway() {
  local port
  port=$(free_port)
  ESFLOW_KEYS_FILE="$tmp/keys.jsonl" $gateway_cpus "$esflow" run "$src/pipelines/gateway.yaml" --nats "$nats_url" \
    --http "127.0.0.1:$port" >"$tmp/gateway-$1.log" 2>&1 &
  pids+=($!)
  wait_ready "127.0.0.1:$port"
  addr="127.0.0.1:$port"
}
# measure NAME=PID...: runs bench_http (its args after --) and prints each
# named process's CPU per answered command over the whole run (setup included).
measure() {
  local names=() ids=() before=() out
  while [ "$1" != "--" ]; do names+=("${1%%=*}"); ids+=("${1#*=}"); shift; done
  shift
  for p in "${ids[@]}"; do before+=("$(cpu_s "$p")"); done
  out=$($node_cpus "$bench" "$@")
  grep -E "^(setup|run|  verify|  answers)" <<<"$out"
  local n
  n=$(grep -E "^(setup|run)" <<<"$out" | sed -E 's/.*\(([0-9]+) in .*/\1/' | awk '{ n += $1 } END { print n }')
  local line="  cpu per command:"
  for i in "${!ids[@]}"; do
    line+=" ${names[$i]} $(awk -v a="${before[$i]}" -v b="$(cpu_s "${ids[$i]}")" -v n="$n" \
      'BEGIN { printf "%.0f", (b - a) * 1e6 / n }') us"
  done
  echo "$line"
}
list_tenants() {
  for t in tenant-0 tenant-1 tenant-2 tenant-3; do "$esflow" tenants add "$t" --nats "$nats_url" >/dev/null 2>&1; done
  sleep 0.5
}

key=$("$esflow" keys add --tenant '*' --rights commands,queries --file "$tmp/keys.jsonl" 2>/dev/null)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ); commit $(git -C "$src" rev-parse --short HEAD)"

IFS=, read -r -a counts <<<"$clients"
for c in "${counts[@]}"; do
  start_nats "direct-$c"
  nats_pid=${pids[-1]}
  start_agg agg-1 "direct-$c"
  agg=$addr agg_pid=${pids[-1]}
  list_tenants
  echo "== direct  C=$c (bench_http -> HTTP -> aggregate node)"
  measure node="$agg_pid" nats-server="$nats_pid" -- \
    --workload "$workload" --url "http://$agg" --clients "$c" --duration "$duration"
  stop_all

  start_nats "gateway-$c"
  nats_pid=${pids[-1]}
  start_agg agg-1 "gateway-$c"
  agg_pid=${pids[-1]}
  start_gateway "gateway-$c"
  gw=$addr gw_pid=${pids[-1]}
  list_tenants
  echo "== gateway C=$c (bench_http -> HTTP -> gateway -> NATS -> aggregate node)"
  measure node="$agg_pid" gateway="$gw_pid" nats-server="$nats_pid" -- \
    --workload "$workload" --url "http://$gw" --key "$key" --clients "$c" --duration "$duration"
  stop_all
done

[ -n "${SKIP_MOVE:-}" ] && exit 0
echo "== move of tenant-0 under load through the gateway (two aggregate nodes)"
start_nats move
start_agg agg-1 move
a=$addr
start_agg agg-2 move
start_gateway move
gw=$addr
list_tenants
owner=$(curl -s "http://$a/admin/placement" | python3 -c 'import json,sys; print("agg-1" if "tenant-0" in json.load(sys.stdin)["hosted"] else "agg-2")')
to=$([ "$owner" = agg-1 ] && echo agg-2 || echo agg-1)
"$bench" --workload "$workload" --url "http://$gw" --key "$key" --clients 16 --duration "$duration" \
  >"$tmp/move-bench.txt" &
load=$!
sleep $((duration / 2 + 2))
"$esflow" tenants move tenant-0 --to "$to" --nats "$nats_url" 2>/dev/null | grep -E "^moved"
wait "$load"
grep -E "^(run|  verify|  answers)" "$tmp/move-bench.txt"
