#!/usr/bin/env bash
# Peak memory of one stretched (126 -> 120 BPM) and transposed (+2) stem
# rendered for 2 minutes and for HOURS hours: flat memory means the ratio
# stays near 1. Usage: benches/stretch_rss.sh [HOURS]
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${1:-1}
. benches/lib.sh
bin=$(stemflow_bin)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
long=$(python3 -c "print(int($hours * 3600))")
for secs in 120 "$long"; do
  cat > "$work/m.toml" <<TOML
[[songs]]
id = "s"
bpm = 120
archive = ""
duration = $secs
[[songs.stems]]
name = "x"
source = { type = "tone", wave = "saw", freq = 110.0, amp = 0.3, length = $(python3 -c "print($secs * 120 / 126)") }
source_bpm = 126.0
transpose = 2.0
align = "zero-pad"
TOML
  /usr/bin/time -f "%M %e" "$bin" render "$work/m.toml" --out "$work/out" --quiet --force >/dev/null 2>"$work/time" || { cat "$work/time"; exit 1; }
  read -r rss wall < <(tail -n 1 "$work/time")
  echo "$secs s stem: peak RSS $rss KiB, $wall s"
  echo "$rss" >> "$work/rss"
  rm -rf "$work/out"
done
python3 -c "a, b = [int(l) for l in open('$work/rss')]; print(f'ratio long/short: {b / a:.3f}')"
