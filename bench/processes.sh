# Sourced by the benchmark scripts: the processes a run starts (pids, all
# stopped by stop_all on exit with the temp dir), free loopback ports,
# readiness and CPU figures read from /proc.
tmp=$(mktemp -d)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$tmp"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
  for _ in $(seq 1 300); do curl -sf "http://$1/ready" >/dev/null && return 0; sleep 0.1; done
  echo "not ready: $1" >&2
  return 1
}
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
