#!/usr/bin/env bash
# Peak memory of the demo at its own length and stretched to one hour.
# Usage: benches/rss.sh [HOURS]   (prints peak RSS in KiB and wall time)
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${1:-1}
. benches/lib.sh
bin=$(stemflow_bin)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
secs=$(python3 -c "print(int($hours * 3600))")
# The demo with every length moved by the same amount as the duration, so
# each stem keeps its strategy (loop, zero-pad, crossfade, truncate).
python3 - "$secs" > "$work/long.toml" <<'PY'
import re, sys
target = float(sys.argv[1])
text = open("fixtures/demo.toml").read()
shift = target - 137.0
text = text.replace("duration = 137", f"duration = {target}")
text = re.sub(r"length = ([0-9.]+)", lambda m: f"length = {float(m.group(1)) + shift}", text)
text = text.replace('archive = "audio_deliverables.zip"', 'archive = ""')
print(text)
PY
measure() {
  /usr/bin/time -f "%M %e" "$bin" render "$@" --quiet --out "$work/out" --force >/dev/null 2>"$work/time" || { cat "$work/time"; exit 1; }
  tail -n 1 "$work/time"
}
read -r rss_demo t_demo < <(measure)
rm -rf "$work/out"
read -r rss_long t_long < <(measure "$work/long.toml")
echo "demo (137 s):      peak RSS ${rss_demo} KiB, ${t_demo} s"
echo "demo (${secs} s): peak RSS ${rss_long} KiB, ${t_long} s"
python3 -c "print(f'ratio long/demo: {$rss_long/$rss_demo:.3f}')"
