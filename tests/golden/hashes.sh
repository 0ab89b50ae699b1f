#!/usr/bin/env bash
# Renders the demo and tests/golden/every.toml and prints the SHA-256 of
# every output file except summary.json (which holds wall-clock times).
# report.json is hashed without its "digest" line (a hash of the plan's
# internal form and of input mtimes, not audio), and a zip as its entries'
# names and contents (report normalised the same way). The run state folder
# .stemflow/ and the song markers .stemflow-song are bookkeeping, not output.
# Usage: tests/golden/hashes.sh [BINARY] > out.sha256
# tests/tests.rs (golden module) does the same inside `cargo test`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/target/release/stemflow}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$bin" render --out "$out/demo" --quiet >/dev/null
"$bin" render "$root/tests/golden/every.toml" --out "$out/every" --quiet >/dev/null
cd "$out"
python3 - <<'PY'
import hashlib, os, re, zipfile
def norm(name, data):
    if name.endswith("report.json"):
        data = re.sub(rb'\n\s*"digest": "[0-9a-f]*",', b"", data)
    return data
rows = []
for d, dirs, fs in os.walk("."):
    dirs[:] = [x for x in dirs if x != ".stemflow"]
    for f in fs:
        if f == ".stemflow-song":
            continue
        p = os.path.join(d, f)
        if f == "summary.json":
            continue
        data = open(p, "rb").read()
        if f.endswith(".zip"):
            h = hashlib.sha256()
            with zipfile.ZipFile(p) as z:
                for i in z.infolist():
                    h.update(i.filename.encode() + b"\0")
                    h.update(hashlib.sha256(norm(i.filename, z.read(i))).digest())
            rows.append((p, h.hexdigest()))
        else:
            rows.append((p, hashlib.sha256(norm(f, data)).hexdigest()))
for p, h in sorted(rows):
    print(f"{h}  {p}")
PY
