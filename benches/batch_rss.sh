#!/usr/bin/env bash
# Peak memory of batch runs: 100 short songs with --jobs 2, and 4 one-hour
# songs with --jobs 2. Prints peak RSS (KiB) and wall time of each.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
bin=$(stemflow_bin)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import re, sys
work = sys.argv[1]
with open(f"{work}/hundred.toml", "w") as f:
    for i in range(100):
        f.write(f'''[[songs]]
id = "song-{i:03}"
bpm = {90 + i % 60}
duration = 5

[[songs.stems]]
name = "lead"
source = {{ type = "tone", freq = {200 + 7 * i}.0, length = 3 }}
align = "loop"
gain = 0.4
effects = [{{ type = "lowpass", cutoff = 8000.0, order = 4 }}]

[[songs.stems]]
name = "drums"
source = {{ type = "drums", length = 4.2 }}
gain = 0.4

''')
demo = open("fixtures/demo.toml").read()
shift = 3600 - 137.0
demo = demo.replace("duration = 137", "duration = 3600")
demo = re.sub(r"length = ([0-9.]+)", lambda m: f"length = {float(m.group(1)) + shift}", demo)
demo = demo.replace('archive = "audio_deliverables.zip"', 'archive = ""')
head, songs = demo.split("[[songs]]", 1)
with open(f"{work}/four-hours.toml", "w") as f:
    f.write(head)
    for i in range(4):
        f.write("[[songs]]" + songs.replace('id = "demo"', f'id = "hour-{i}"'))
PY
for m in hundred four-hours; do
  /usr/bin/time -f "%M %e" "$bin" render "$work/$m.toml" --jobs 2 --quiet --out "$work/out-$m" >/dev/null 2>"$work/time"
  read -r rss secs < <(tail -n 1 "$work/time")
  echo "$m (--jobs 2): peak RSS ${rss} KiB, ${secs} s"
  rm -rf "$work/out-$m"
done
