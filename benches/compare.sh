#!/usr/bin/env bash
# Renders the same work three ways — stemflow, a SoX pipeline and an FFmpeg
# pipeline — and prints wall-time and peak-RSS ratios (stemflow ÷ other)
# and stemflow's realtime factor. The work: five stems (the demo's tones
# and lengths; SoX and FFmpeg get a tone for the drum stem), each aligned to
# the target (loop / pad / loop-of-tail / trim), each through a 4th-order
# 8 kHz Butterworth low-pass (two 2-pole sections, Q 0.5412 and 1.3066),
# mixed with the demo's gains, written as 32-bit float WAV. No archive.
# stemflow and SoX write the five stems and the master; the FFmpeg graph
# writes only the master (and its aloop buffers the whole input in memory).
#
# Usage: benches/compare.sh [RUNS]   (default 5; lengths 137 s and 600 s)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
command -v sox >/dev/null || apt-get install -y -q sox >/dev/null
command -v ffmpeg >/dev/null || apt-get install -y -q ffmpeg >/dev/null
cargo build --release --quiet
bin=$PWD/target/release/stemflow
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name freq length gain (the demo's stems; drums become a 60 Hz tone elsewhere)
stems="bass:110:134:0.25 guitars:440:136.8:0.2 synths:880:130:0.15 bridge:220:140:0.15 drums:60:128:0.35"

manifest() { # duration -> stemflow manifest (the demo, lengths shifted)
  python3 - "$1" <<'PY'
import re, sys
target = float(sys.argv[1]); shift = target - 137.0
t = open("fixtures/demo.toml").read()
t = t.replace("duration = 137", f"duration = {target}")
t = re.sub(r"length = ([0-9.]+)", lambda m: f"length = {float(m.group(1)) + shift}", t)
t = t.replace('archive = "audio_deliverables.zip"', 'archive = ""')
print(t)
PY
}

run_stemflow() { # duration
  rm -rf "$work/sf"; "$bin" render "$work/m$1.toml" --out "$work/sf" --quiet --force >/dev/null
}

run_sox() { # duration
  local d=$1 shift parts=() i=0
  shift=$(python3 -c "print($d - 137)")
  for s in $stems; do
    IFS=: read -r name f len g <<<"$s"
    len=$(python3 -c "print($len + $shift)")
    # loop short sources, pad the nearly full one, trim the long one
    local fx="lowpass -2 8000 0.5412q lowpass -2 8000 1.3066q"
    local reps; reps=$(python3 -c "import math; print(max(0, math.ceil($d / $len) - 1))")
    sox -n -r 48000 -c 1 -e floating-point -b 32 "$work/sox$i.wav" synth "$len" sine "$f" vol 0.6 $fx repeat "$reps" trim 0 "$d" &
    parts+=(-v "$g" "$work/sox$i.wav"); i=$((i + 1))
  done
  wait
  sox -m "${parts[@]}" -e floating-point -b 32 "$work/sox-master.wav"
}

run_ffmpeg() { # duration
  local d=$1 shift inputs=() chains="" mixin="" i=0 weights=""
  shift=$(python3 -c "print($d - 137)")
  for s in $stems; do
    IFS=: read -r name f len g <<<"$s"
    len=$(python3 -c "print($len + $shift)")
    inputs+=(-f lavfi -i "sine=frequency=$f:sample_rate=48000:duration=$len")
    chains+="[$i:a]volume=0.6,lowpass=f=8000:p=2:t=q:w=0.5412,lowpass=f=8000:p=2:t=q:w=1.3066,aloop=loop=-1:size=2e9,atrim=duration=$d,apad=whole_dur=$d[s$i];"
    mixin+="[s$i]"; weights+="$g "; i=$((i + 1))
  done
  ffmpeg -v error -y "${inputs[@]}" -filter_complex "${chains}${mixin}amix=inputs=$i:weights=${weights% }:normalize=0" -c:a pcm_f32le "$work/ff-master.wav"
}

measure() { # cmd duration -> "seconds kib"
  /usr/bin/time -f "%e %M" -o "$work/t" bash -c "$(declare -f run_$1); $(declare -p stems work bin); run_$1 $2" 2>/dev/null
  cat "$work/t"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for d in 137 600; do
  manifest "$d" > "$work/m$d.toml"
  : > "$work/sf.t"; : > "$work/sox.t"; : > "$work/ff.t"
  for _ in $(seq "$runs"); do   # interleaved
    measure stemflow "$d" >> "$work/sf.t"
    measure sox "$d" >> "$work/sox.t"
    measure ffmpeg "$d" >> "$work/ff.t"
  done
  sf=$(cut -d' ' -f1 "$work/sf.t" | median); sfm=$(cut -d' ' -f2 "$work/sf.t" | median)
  so=$(cut -d' ' -f1 "$work/sox.t" | median); som=$(cut -d' ' -f2 "$work/sox.t" | median)
  ff=$(cut -d' ' -f1 "$work/ff.t" | median); ffm=$(cut -d' ' -f2 "$work/ff.t" | median)
  python3 - <<PY
d, sf, so, ff = $d, $sf, $so, $ff
sfm, som, ffm = $sfm, $som, $ffm
print(f"{d} s (median of $runs): stemflow {sf:.2f} s {sfm} KiB, realtime {d / sf:.0f}x | "
      f"SoX {so:.2f} s {som} KiB | FFmpeg {ff:.2f} s {ffm} KiB")
print(f"  wall ratio stemflow/SoX {sf / so:.2f}, stemflow/FFmpeg {sf / ff:.2f}; "
      f"RSS ratio stemflow/SoX {sfm / som:.2f}, stemflow/FFmpeg {sfm / ffm:.2f}")
PY
done
