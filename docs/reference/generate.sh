#!/usr/bin/env bash
# Writes the reference pages generated from the code:
#   docs/reference/stages.md      esflow stages --format markdown
#   docs/reference/node-kinds.md  esflow kinds --format markdown
# Usage: docs/reference/generate.sh [ESFLOW_BINARY [OUT_DIR]]
# (defaults: build/esflow, docs/reference). The ctest test
# docs_reference_matches_the_code runs it into a temporary folder and diffs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
esflow="${1:-$root/build/esflow}"
out="${2:-$root/docs/reference}"
mkdir -p "$out"
"$esflow" stages --format markdown >"$out/stages.md"
"$esflow" kinds --format markdown >"$out/node-kinds.md"
