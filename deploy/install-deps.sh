#!/usr/bin/env bash
# Installs everything esflow needs to build, test and run, from Debian 12
# packages only. Idempotent: does nothing when every package is present.
# Also promtool (for the metrics test), unpacked from Debian's `prometheus`
# package into /opt/esflow-tools without installing the Prometheus service.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libtbb-dev libnats-dev nats-server librocksdb-dev libsimdjson-dev
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc libcurl4-openssl-dev
  prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev libyaml-cpp-dev libjemalloc-dev
  liblua5.4-dev libssl-dev libcli11-dev libspdlog-dev nlohmann-json3-dev libcpp-httplib-dev
  graphviz curl clang-format clang-tidy python3
)
# Tests only (ESFLOW_BUILD_ONLY=1, as in deploy/Dockerfile, leaves them out):
# chromium for tests/transport/graph_page_test.py (the pipeline page in
# headless Chromium), docker-compose for `docker-compose config -q` of
# deploy/, python3-yaml for the tests that read compose files and the Grafana
# dashboard, and promtool.
build_only="${ESFLOW_BUILD_ONLY:-0}"
[ "$build_only" = 1 ] || packages+=(chromium docker-compose python3-yaml)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
updated=0
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  updated=1
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# promtool: the binary of Debian's prometheus package, unpacked, not installed
# (installing the package registers and starts a Prometheus service).
[ "$build_only" = 1 ] && exit 0
tools=/opt/esflow-tools
if [ -x "$tools/prometheus/usr/bin/promtool" ] && command -v promtool >/dev/null; then
  echo "install-deps: promtool present"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
chmod 777 "$tmp"  # apt-get download runs as _apt where it can
if ! (cd "$tmp" && apt-get download -qq prometheus 2>/dev/null); then
  [ "$updated" -eq 1 ] || $sudo apt-get update -qq
  (cd "$tmp" && apt-get download -qq prometheus)
fi
$sudo rm -rf "$tools/prometheus"
$sudo mkdir -p "$tools/prometheus"
$sudo dpkg-deb -x "$tmp"/prometheus_*.deb "$tools/prometheus"
$sudo ln -sf "$tools/prometheus/usr/bin/promtool" /usr/local/bin/promtool
echo "install-deps: promtool $("$tools/prometheus/usr/bin/promtool" --version 2>&1 | head -1)"
