#!/usr/bin/env bash
# Batch scaling: 20 copies of the demo song (no archive) rendered with
# --jobs 1 and --jobs 2, median of RUNS runs each (interleaved); prints
# songs per second of each and their ratio.
#
# Usage: benches/jobs.sh [RUNS]   (default 3)
# Environment: STEMFLOW=path/to/binary skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
. benches/lib.sh
bin=$(stemflow_bin)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/twenty.toml" <<'PY'
import sys
demo = open("fixtures/demo.toml").read().replace('archive = "audio_deliverables.zip"', 'archive = ""')
head, song = demo.split("[[songs]]", 1)
with open(sys.argv[1], "w") as f:
    f.write(head)
    for i in range(20):
        f.write("[[songs]]" + song.replace('id = "demo"', f'id = "demo-{i:02}"'))
PY
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$work/j1"; : > "$work/j2"
for _ in $(seq "$runs"); do
  for j in 1 2; do
    rm -rf "$work/out"
    /usr/bin/time -f "%e" -o "$work/t" "$bin" render "$work/twenty.toml" --out "$work/out" --jobs "$j" --quiet >/dev/null
    cat "$work/t" >> "$work/j$j"
  done
done
t1=$(median < "$work/j1"); t2=$(median < "$work/j2")
python3 -c "
t1, t2 = $t1, $t2
print(f'20 songs (median of $runs): --jobs 1 {t1:.2f} s = {20 / t1:.2f} songs/s, --jobs 2 {t2:.2f} s = {20 / t2:.2f} songs/s, ratio {t1 / t2:.2f}')"
