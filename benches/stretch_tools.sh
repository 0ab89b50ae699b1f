#!/usr/bin/env bash
# Tempo stretch speed and memory next to SoX `tempo` and FFmpeg `atempo`
# (and FFmpeg's Rubber Band filter when it has one), on the same file in one
# run: a SECONDS-long 48 kHz mono float WAV (saw, sine, drums) slowed
# from 126 to 120 BPM. Prints × realtime (source seconds / wall seconds)
# and peak RSS per tool; stemflow's figure is a whole render of one stem
# (decode, stretch, meters, stem and master files).
# Usage: benches/stretch_tools.sh [SECONDS]   (needs sox and ffmpeg)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
. benches/lib.sh
bin=$(stemflow_bin)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The input: a song stemflow renders (saw bass, sine lead, drums).
cat > "$work/src.toml" <<TOML
[[songs]]
id = "src"
bpm = 126
duration = $secs
archive = ""
[[songs.stems]]
name = "bass"
source = { type = "tone", wave = "saw", freq = 110.0, amp = 0.3 }
[[songs.stems]]
name = "lead"
source = { type = "tone", freq = 440.0, amp = 0.2 }
[[songs.stems]]
name = "drums"
source = { type = "drums", amp = 0.4, hats = true }
TOML
"$bin" render "$work/src.toml" --out "$work/src" --quiet >/dev/null
mv "$work/src/src/master.wav" "$work/in.wav"
speed=$(python3 -c "print(120/126)")
cat > "$work/m.toml" <<TOML
[[songs]]
id = "s"
bpm = 120
archive = ""
duration = $(python3 -c "print($secs * 126 / 120)")
[[songs.stems]]
name = "x"
source = { type = "file", path = "in.wav" }
source_bpm = 126.0
align = "none"
TOML
run() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" "$@" >/dev/null 2>"$work/time" || { cat "$work/time"; exit 1; }
  read -r wall rss < <(tail -n 1 "$work/time")
  python3 -c "print(f'{\"$name\":<28} {$secs/$wall:7.1f}x realtime  {$wall:7.2f} s  peak RSS {$rss} KiB')"
}
run "stemflow (source_bpm)" "$bin" render "$work/m.toml" --out "$work/out" --quiet --force
run "sox tempo" sox "$work/in.wav" "$work/sox.wav" tempo "$speed"
run "ffmpeg atempo" ffmpeg -v error -y -i "$work/in.wav" -af "atempo=$speed" "$work/ff.wav"
if ffmpeg -hide_banner -filters 2>/dev/null | grep -q " rubberband "; then
  run "ffmpeg rubberband" ffmpeg -v error -y -i "$work/in.wav" -af "rubberband=tempo=$speed" "$work/rb.wav"
fi
