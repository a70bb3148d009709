#!/usr/bin/env bash
# docs/reference/*.md must equal what the binary generates: fails with the
# diff and the command that regenerates them.
# Usage: reference_test.sh SOURCE_DIR ESFLOW_BINARY
set -euo pipefail
src="$1" esflow="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$src/docs/reference/generate.sh" "$esflow" "$tmp"
status=0
for page in stages.md node-kinds.md; do
  if ! diff -u "$src/docs/reference/$page" "$tmp/$page"; then
    echo "docs/reference/$page differs from the code (above: - committed, + generated)." >&2
    status=1
  fi
done
if [ "$status" -ne 0 ]; then
  echo "Regenerate with: docs/reference/generate.sh $esflow   (then commit docs/reference/)" >&2
  exit 1
fi
echo "docs/reference matches the code"
