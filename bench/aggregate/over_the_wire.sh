#!/usr/bin/env bash
# The aggregate node over the wire (bench/README.md "Over the wire"): the node
# in its own process (`esflow run`), the load from `esflow load` in another,
# every process on 127.0.0.1. Each measurement starts a fresh node (and, on
# JetStream, a fresh nats-server), so every run has its setup phase apart.
#
#   bench/aggregate/over_the_wire.sh [BUILD_DIR]
#
# Environment:
#   RUNS        what to run, space separated, each BACKEND/TRANSPORT/C
#               (default: the performance issue's table)
#   COMMANDS    generated run-phase commands (60000); DURATION (15 s) bounds each run
#   ESFLOW_DURABILITY  fsync (default, as shipped) or relaxed
#   ESFLOW_GRAPH_THREADS, PIPELINE_EMBEDDED, PIPELINE_JETSTREAM: A/B of a lever
#
# Per run: commands/s and latency of the run phase (esflow load), and from the
# node's process over the whole run (setup + run): CPU and context switches
# per answered command, RSS at the end; from its /metrics: cached aggregates,
# their bytes, and the cache's hit rate over the run phase.
set -euo pipefail
build=${1:-build}
esflow=$(realpath "$build/esflow")
src=$(cd "$(dirname "$0")/../.." && pwd)
runs=${RUNS:-"embedded/http/1 embedded/http/16 embedded/http/128 jetstream/http/16 jetstream/nats/1 jetstream/nats/16 jetstream/nats/128"}
commands=${COMMANDS:-60000}
duration=${DURATION:-15}
pipeline_embedded=${PIPELINE_EMBEDDED:-$src/pipelines/aggregate.yaml}
pipeline_jetstream=${PIPELINE_JETSTREAM:-$src/pipelines/aggregate-jetstream.yaml}
# shellcheck source=bench/processes.sh
. "$src/bench/processes.sh"

# Context switches (voluntary + involuntary) of every thread of a process so far.
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n }'; }
rss_mb() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
metric() { curl -s "http://$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ);" \
  "commit $(git -C "$src" rev-parse --short HEAD); durability ${ESFLOW_DURABILITY:-fsync};" \
  "graph threads ${ESFLOW_GRAPH_THREADS:-cores - 1}; $commands commands, <= $duration s per run"
printf '%-24s %9s %8s %8s %8s %6s %9s %8s %6s %8s %9s %6s %s\n' run cmds/s p50_ms p99_ms p999_ms errors \
  cpu_us/cmd csw/cmd rss_mb cached bytes/agg hit% verify
for r in $runs; do
  IFS=/ read -r backend transport clients <<<"$r"
  name=${r//\//-}
  http_port=$(free_port)
  args=(--http "127.0.0.1:$http_port" --data-dir "$tmp/data-$name")
  if [ "$backend" = jetstream ]; then
    nats_port=$(free_port)
    nats-server -js -a 127.0.0.1 -p "$nats_port" -sd "$tmp/js-$name" >"$tmp/nats.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done
    args+=(--nats "nats://127.0.0.1:$nats_port")
    pipeline=$pipeline_jetstream
  else
    pipeline=$pipeline_embedded
  fi
  "$esflow" run "$pipeline" "${args[@]}" >"$tmp/node-$name.log" 2>&1 &
  node=$!
  pids+=($node)
  wait_ready "127.0.0.1:$http_port"
  if [ "$transport" = nats ]; then
    target=(--transport nats --url "nats://127.0.0.1:$nats_port" --read-url "http://127.0.0.1:$http_port")
  else
    target=(--url "http://127.0.0.1:$http_port")
  fi
  cpu0=$(cpu_s $node) csw0=$(switches $node)
  # The cache's counters at the end of the setup phase are not visible from
  # here; hits and misses are read over the whole run (setup: one miss each).
  "$esflow" load "${target[@]}" --commands "$commands" --clients "$clients" --duration "$duration" \
    --format json >"$tmp/load.json" 2>"$tmp/load.err" || tail -3 "$tmp/load.err" "$tmp/node-$name.log" >&2
  cpu1=$(cpu_s $node) csw1=$(switches $node)
  hits=$(metric "127.0.0.1:$http_port" esflow_aggregate_cache_hits_total)
  misses=$(metric "127.0.0.1:$http_port" esflow_aggregate_cache_misses_total)
  entries=$(metric "127.0.0.1:$http_port" esflow_aggregate_cache_entries)
  bytes=$(metric "127.0.0.1:$http_port" esflow_aggregate_cache_bytes)
  rss=$(rss_mb $node)
  python3 - "$tmp/load.json" "$r" "$cpu0" "$cpu1" "$csw0" "$csw1" "$rss" "${entries:-0}" "${bytes:-0}" "${hits:-0}" \
    "${misses:-0}" <<'EOF'
import json, sys
path, r, cpu0, cpu1, csw0, csw1, rss, entries, byts, hits, misses = sys.argv[1:]
try:
    j = json.load(open(path))
except ValueError:
    print(f"{r:<24} esflow load gave no JSON"); sys.exit(0)
run, setup = j["run"], j["setup"]
answered = run["answered"] + setup["answered"]
lat = run["latency_us"]
entries, hits, misses = float(entries), float(hits), float(misses)
# Each setup command opens a new account: a miss by construction; the rate is the run phase's.
misses = max(0.0, misses - setup["answered"])
verify = (j.get("verification") or {}).get("passed", "-")
print(f"{r:<24} {run['commands_per_s']:>9.0f} {lat['p50']/1000:>8.2f} {lat['p99']/1000:>8.2f} "
      f"{lat['p999']/1000:>8.2f} {run['error'] + setup['error']:>6} "
      f"{(float(cpu1) - float(cpu0)) * 1e6 / max(answered, 1):>9.0f} "
      f"{(float(csw1) - float(csw0)) / max(answered, 1):>8.1f} {rss:>6} {entries:>8.0f} "
      f"{float(byts) / max(entries, 1):>9.0f} {100 * hits / max(hits + misses, 1):>6.1f} {verify}")
EOF
  stop_all
done
