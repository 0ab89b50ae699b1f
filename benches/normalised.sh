#!/usr/bin/env bash
# The normalised and limited demo against the plain demo (issue 15's target:
# within 1.5x). The demo manifest plus a master normalised to -14 LUFS with a
# -1 dBTP true-peak limit; RUNS interleaved runs of each (default 5), from an
# empty output folder each time; prints median wall and CPU (user + sys) of
# both and the ratios.
#
# Usage: benches/normalised.sh [RUNS]
# Environment: STEMFLOW=path/to/binary skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
. benches/lib.sh
bin=$(stemflow_bin)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp fixtures/demo.toml "$work/plain.toml"
{ cat fixtures/demo.toml; printf '\n[songs.master]\nnormalize_lufs = -14.0\nlimit_true_peak_db = -1.0\n'; } > "$work/norm.toml"
"$bin" check "$work/norm.toml" >/dev/null
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for kind in plain norm; do : > "$work/$kind.wall"; : > "$work/$kind.cpu"; done
for _ in $(seq "$runs"); do
  for kind in plain norm; do
    rm -rf "$work/out"
    /usr/bin/time -f "%e %U %S" -o "$work/t" "$bin" render "$work/$kind.toml" --out "$work/out" --quiet >/dev/null
    read -r wall user sys < "$work/t"
    echo "$wall" >> "$work/$kind.wall"
    python3 -c "print($user + $sys)" >> "$work/$kind.cpu"
  done
done
pw=$(median < "$work/plain.wall"); pc=$(median < "$work/plain.cpu")
nw=$(median < "$work/norm.wall"); nc=$(median < "$work/norm.cpu")
python3 -c "
pw, pc, nw, nc = $pw, $pc, $nw, $nc
print(f'demo (median of $runs): plain {pw:.2f} s wall / {pc:.2f} s CPU; normalised + limited {nw:.2f} s / {nc:.2f} s; ratio {nw / pw:.2f} wall, {nc / pc:.2f} CPU')"
