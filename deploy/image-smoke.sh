#!/usr/bin/env bash
# CI: builds the node image around the binary CI already built
# (deploy/Dockerfile, target `prebuilt`), starts what the image says to start,
# and checks that it serves a command and drains on its stop signal.
#
# No container daemon, registry or OCI runtime works here (deploy/README.md,
# "The smoke test"), so: the Debian 12 base comes from debootstrap (cached),
# `podman build --isolation=chroot` builds, and the image's entrypoint + cmd
# run with the image's env under `chroot` on `podman image mount`'s root.
#
# Usage (root, from anywhere): deploy/image-smoke.sh   after build/esflow exists.
# ESFLOW_DEBIAN_MIRROR overrides the mirror taken from /etc/apt/sources.list(.d).
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$(date +%s)
say() { echo "image-smoke: $* ($(($(date +%s) - t0)) s)"; }
fail() {
  echo "image-smoke: FAIL: $*" >&2
  exit 1
}

base=docker.io/library/debian:12
image=localhost/esflow:smoke-$$
binary=build/esflow
# Bounds: seconds to wait for /ready, for the follower's sink, for the exit.
ready_s=20 follow_s=10 stop_s=30

[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap, podman image mount, mount, chroot)"
[ -x "$binary" ] || fail "no $binary: run the README's build command first"

# --- tools: Debian packages only ----------------------------------------------
need=()
for tool in podman debootstrap curl; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- the Debian 12 base image -------------------------------------------------
# The first bookworm mirror of apt's sources (deb822 .sources, then one-line).
debian_mirror() {
  local found="" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    found+=$(awk 'BEGIN { RS = ""; FS = "\n" }
      { t = ""; u = ""; s = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) t = $i; else if ($i ~ /^URIs:/) u = $i; else if ($i ~ /^Suites:/) s = $i
        }
        if (t ~ /[ \t]deb([ \t]|$)/ && s ~ /[ \t]bookworm([ \t]|$)/) { split(u, w, /[ \t]+/); print w[2] } }' "$f")$'\n'
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    found+=$(sed -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2 }')$'\n'
  done
  found=$(printf '%s' "$found" | sed '/^$/d')
  printf '%s\n' "${found%%$'\n'*}"
}

if podman image exists "$base"; then
  say "base $base present"
else
  cache_root=${HOME:+$HOME/.cache}
  if [ -n "$cache_root" ] && [ -d "$cache_root" ]; then cache=$cache_root/esflow-image; else cache=$PWD/build/image-cache; fi
  tarball=$cache/debian-12-minbase.tar
  if [ ! -f "$tarball" ]; then
    mirror=${ESFLOW_DEBIAN_MIRROR:-$(debian_mirror)}
    [ -n "$mirror" ] || fail "no bookworm mirror in /etc/apt/sources.list(.d); set ESFLOW_DEBIAN_MIRROR"
    say "debootstrap bookworm from $mirror into $cache"
    mkdir -p "$cache"
    rm -rf "$cache/rootfs"
    nice debootstrap --variant=minbase bookworm "$cache/rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
      { tail -n 20 "$cache/debootstrap.log" >&2; fail "debootstrap (log: $cache/debootstrap.log)"; }
    tar -C "$cache/rootfs" --numeric-owner -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf "$cache/rootfs"
  fi
  say "importing $tarball as $base"
  # What Docker Hub's debian:12 declares, so images built on it behave alike.
  podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$tarball" "$base" >"$cache/import.log" 2>&1 ||
    { cat "$cache/import.log" >&2; fail "podman import"; }
fi

# --- from here on, undo what we made on any exit -------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/esflow-image-smoke.XXXXXX")
pid="" watchdog="" root=""
cleanup() {
  local rc=$?
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  if [ -n "$watchdog" ]; then kill "$watchdog" 2>/dev/null || true; fi
  if [ -n "$root" ]; then podman image unmount "$image" >/dev/null 2>&1 || true; fi
  # The smoke image goes, and its layers with it; the base image stays.
  podman rmi "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ----------------------------------------------------------------------
say "podman build --target prebuilt ($binary)"
nice podman build --isolation=chroot --format docker --target prebuilt -f deploy/Dockerfile -t "$image" . \
  >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; fail "podman build"; }

# --- what the image says to start ------------------------------------------------
# One NUL-separated list per field ("\x00" in the Go template); podman adds a newline.
config_list() {
  local -n out=$1
  mapfile -d '' -t out < <(podman image inspect --format "{{range .$2}}{{.}}{{\"\\x00\"}}{{end}}" "$image")
  if [ ${#out[@]} -gt 0 ] && [ "${out[-1]}" = $'\n' ]; then unset 'out[-1]'; fi
}
config_value() { podman image inspect --format "{{.Config.$1}}" "$image"; }
entrypoint=() cmd=() image_env=()
config_list entrypoint Config.Entrypoint
config_list cmd Config.Cmd
config_list image_env Config.Env
workdir=$(config_value WorkingDir)
user=$(config_value User)
stopsignal=$(config_value StopSignal)
stopsignal=${stopsignal:-SIGTERM} # an engine's default
mapfile -t volumes < <(podman image inspect --format '{{range $v, $_ := .Config.Volumes}}{{$v}}{{"\n"}}{{end}}' "$image" | sed '/^$/d')
[ ${#entrypoint[@]} -gt 0 ] || fail "the image has no entrypoint"
[ "$stopsignal" = SIGTERM ] || fail "the image's stop signal is $stopsignal, not SIGTERM"
say "entrypoint [${entrypoint[*]}] cmd [${cmd[*]}] env [${image_env[*]}] volumes [${volumes[*]}] workdir '${workdir}' user '${user}'"

root=$(podman image mount "$image")
[ -d "$root" ] || fail "podman image mount gave '$root'"

# An operator's `-e ESFLOW_HTTP_ADDR=127.0.0.1:PORT`: a free loopback port,
# below the kernel's ephemeral range (a client socket may hold one there).
read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range
[ "$ephemeral_low" -gt 20100 ] || ephemeral_low=32768
port=""
for _ in $(seq 20); do
  p=$((20000 + RANDOM % (ephemeral_low - 20000)))
  if command -v ss >/dev/null; then
    [ -n "$(ss -Htan "sport = :$p")" ] || { port=$p && break; }
  elif ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    port=$p && break
  fi
done
[ -n "$port" ] || fail "no free port in 20 tries"
run_env=()
for kv in "${image_env[@]}"; do [[ $kv == ESFLOW_HTTP_ADDR=* ]] || run_env+=("$kv"); done
run_env+=("ESFLOW_HTTP_ADDR=127.0.0.1:$port")

# The command that runs "$@" chrooted into the image root, in a mount namespace
# of its own holding /proc, /dev and one host directory per declared volume
# (the mounts end with the process). unshare, bash and chroot exec into "$@",
# so a backgrounded run's $! is the image's process. The root stays read-only,
# as with `docker run --read-only`.
in_image() {
  local spec=() i=0 v
  for v in "${volumes[@]}"; do
    mkdir -p "$work/volumes/$i"
    spec+=("$work/volumes/$i" "$v")
    i=$((i + 1))
  done
  # shellcheck disable=SC2016 # expanded by the inner shell
  in_image_argv=(unshare --mount --propagation private -- bash -c '
    set -e
    root=$1 n=$2; shift 2
    mount --bind /proc "$root/proc"
    mount --rbind /dev "$root/dev"
    while [ "$n" -gt 0 ]; do mount --bind "$1" "$root$2"; shift 2; n=$((n - 2)); done
    exec chroot ${CHROOT_USER:+--userspec="$CHROOT_USER"} "$root" "$@"'
    in-image "$root" "${#spec[@]}" "${spec[@]}" "$@")
}
export CHROOT_USER=$user

# Every library the binary needs resolves in the image.
in_image /usr/bin/ldd /usr/bin/esflow
"${in_image_argv[@]}" >"$work/ldd.txt" 2>&1 || { cat "$work/ldd.txt" >&2; fail "ldd in the image"; }
if grep -q 'not found' "$work/ldd.txt"; then
  grep 'not found' "$work/ldd.txt" >&2
  fail "libraries missing from the image: add their packages to deploy/Dockerfile's runtime stage"
fi

# --- start it --------------------------------------------------------------------
say "starting it on 127.0.0.1:$port"
log=$work/esflow.log
in_image /usr/bin/env -i -C "${workdir:-/}" "${run_env[@]}" "${entrypoint[@]}" "${cmd[@]}"
"${in_image_argv[@]}" >"$log" 2>&1 &
pid=$!
started=$(date +%s)
show_log() { sed 's/^/  | /' "$log" >&2; }

ready=""
for _ in $(seq $((ready_s * 10))); do
  kill -0 "$pid" 2>/dev/null || { show_log; fail "exited before /ready"; }
  if curl -fs --max-time 1 "http://127.0.0.1:$port/ready" >/dev/null; then ready=1 && break; fi
  [ $(($(date +%s) - started)) -lt "$ready_s" ] || break
  sleep 0.1
done
[ -n "$ready" ] || { show_log; fail "/ready not 200 within ${ready_s} s"; }
# What answers is what the image started (unshare, bash and chroot exec'd into it).
exe=$(readlink "/proc/$pid/exe") proc_root=$(readlink "/proc/$pid/root")
if [ "$exe" != "$root/usr/bin/esflow" ] || [ "$proc_root" != "$root" ]; then
  fail "process $pid is $exe in $proc_root, not $root/usr/bin/esflow in $root"
fi
say "ready in $(($(date +%s) - started)) s"

code=$(curl -s --max-time 10 -o "$work/reply.json" -w '%{http_code}' "http://127.0.0.1:$port/v1/commands" \
  -H 'x-tenant-id: acme' \
  -d '{"aggregate_type":"Account","aggregate_id":"acc-1","payload":{"type":"open_account","initial_balance":0}}') || true
if [ "$code" != 200 ] || ! grep -q '"status":"accepted"' "$work/reply.json"; then
  cat "$work/reply.json" >&2 || true
  show_log
  fail "command answered HTTP $code, not 200 accepted"
fi
say "command accepted"

# The image's HEALTHCHECK, run in the image with the same env, passes.
health=()
config_list health HealthCheck.Test
case "${health[0]:-}" in
  CMD-SHELL) in_image /usr/bin/env -i "${run_env[@]}" /bin/sh -c "${health[1]}" ;;
  CMD) in_image /usr/bin/env -i "${run_env[@]}" "${health[@]:1}" ;;
  *) fail "the image has no HEALTHCHECK (got '${health[*]}'; build with --format docker)" ;;
esac
"${in_image_argv[@]}" >"$work/health.txt" 2>&1 || { cat "$work/health.txt" >&2; fail "HEALTHCHECK [${health[*]}] failed"; }
say "HEALTHCHECK [${health[*]}] passes"

# The follower of `esflow dev` tails the log into a file in the data directory
# (flushed on drain): wait until its sink took the commit.
metric='esflow_stage_messages_in_total{kind="sink.file",pipeline="follower",stage="file"} 1'
followed=""
for _ in $(seq $((follow_s * 10))); do
  if curl -s --max-time 1 "http://127.0.0.1:$port/metrics" | grep -qF "$metric"; then followed=1 && break; fi
  sleep 0.1
done
[ -n "$followed" ] || { show_log; fail "no '$metric' on /metrics within ${follow_s} s"; }

# --- stop it as the engine would ------------------------------------------------
say "sending $stopsignal"
kill -s "$stopsignal" "$pid"
sleep "$stop_s" &
watchdog=$!
rc=0 first=""
wait -n -p first "$pid" "$watchdog" || rc=$?
if [ "$first" != "$pid" ]; then show_log; fail "still running ${stop_s} s after $stopsignal"; fi
kill "$watchdog" 2>/dev/null || true
pid="" watchdog=""
[ "$rc" -eq 0 ] || { show_log; fail "exit code $rc after SIGTERM, not 0"; }
for line in "[cli] draining (signal)" "[graph] pipeline 'aggregate' drained" "[graph] pipeline 'follower' drained"; do
  grep -qF "$line" "$log" || { show_log; fail "no '$line' in its log"; }
done
if grep -qE '^[^ ]+ (error|critical) \[' "$log"; then
  show_log
  fail "error lines in its log"
fi
# The drain flushed the follower's file to the host side of the volume.
grep -qs '"aggregate_id":"acc-1"' "$work"/volumes/*/followed-commits.ndjson ||
  fail "the commit is not in followed-commits.ndjson on the data volume"
say "drained, exit 0; ok"
