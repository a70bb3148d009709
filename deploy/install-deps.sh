#!/usr/bin/env bash
# Installs everything esflow needs to build, test and run, from Debian 12
# packages only. Idempotent: does nothing when every package is present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libtbb-dev libnats-dev nats-server librocksdb-dev libsimdjson-dev
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev libyaml-cpp-dev
  liblua5.4-dev libssl-dev libcli11-dev libspdlog-dev nlohmann-json3-dev libcpp-httplib-dev
  graphviz curl clang-format clang-tidy
  python3 chromium  # tests/transport/graph_page_test.py: the pipeline page in headless Chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
