#!/usr/bin/env bash
# Renders the demo and tests/golden/every.toml and prints the SHA-256 of
# every output file except summary.json (which holds wall-clock times).
# Usage: tests/golden/hashes.sh [BINARY] > out.sha256
# The refactor of issue 11 was checked by diffing this output before/after;
# tests/golden.rs does the same inside `cargo test`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/target/release/stemflow}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$bin" render --out "$out/demo" --quiet >/dev/null
"$bin" render "$root/tests/golden/every.toml" --out "$out/every" --quiet >/dev/null || true
cd "$out"
find . -type f ! -name summary.json | LC_ALL=C sort | xargs sha256sum
