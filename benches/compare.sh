#!/usr/bin/env bash
# Renders the same work three ways — stemflow, a SoX pipeline and an FFmpeg
# pipeline — and prints wall-time and peak-RSS ratios (stemflow ÷ other)
# and stemflow's realtime factor. The work: five stems (the demo's tones
# and lengths; SoX and FFmpeg get a tone for the drum stem), each aligned to
# the target (loop / pad / loop-of-tail / trim), each through a 4th-order
# 8 kHz Butterworth low-pass (two 2-pole sections, Q 0.5412 and 1.3066),
# mixed with the demo's gains, written as 32-bit float WAV: the five stems
# and the master, all three ways. No archive. (FFmpeg's aloop buffers the
# whole input in memory; stemflow also meters loudness and true peak of
# every file and draws the overview, which the others do not.)
#
# Usage: benches/compare.sh [RUNS]   (default 5; lengths 137 s and 600 s)
# Environment: STEMFLOW=path/to/binary skips the build; LENGTHS="137" picks
# lengths.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
command -v sox >/dev/null || apt-get install -y -q sox >/dev/null
command -v ffmpeg >/dev/null || apt-get install -y -q ffmpeg >/dev/null
. benches/lib.sh
bin=$(stemflow_bin)
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

# Each way is written out as a plain script first, so the timed runs do
# nothing but the work (no length arithmetic inside the timing).
write_stemflow() { # duration
  echo "'$bin' render '$work/m$1.toml' --out '$work/sf' --quiet >/dev/null"
}

write_sox() { # duration
  local d=$1 shift parts="" i=0
  shift=$(python3 -c "print($d - 137)")
  for s in $stems; do
    IFS=: read -r name f len g <<<"$s"
    len=$(python3 -c "print($len + $shift)")
    # loop short sources, pad the nearly full one, trim the long one
    local fx="lowpass -2 8000 0.5412q lowpass -2 8000 1.3066q"
    local reps; reps=$(python3 -c "import math; print(max(0, math.ceil($d / $len) - 1))")
    echo "sox -n -r 48000 -c 1 -e floating-point -b 32 '$work/sox-$name.wav' synth $len sine $f vol 0.6 $fx repeat $reps trim 0 $d &"
    parts+=" -v $g '$work/sox-$name.wav'"; i=$((i + 1))
  done
  echo "wait"
  echo "sox -m $parts -e floating-point -b 32 '$work/sox-master.wav'"
}

write_ffmpeg() { # duration
  local d=$1 shift inputs="" chains="" mixin="" outs="" i=0 weights=""
  shift=$(python3 -c "print($d - 137)")
  for s in $stems; do
    IFS=: read -r name f len g <<<"$s"
    len=$(python3 -c "print($len + $shift)")
    inputs+=" -f lavfi -i sine=frequency=$f:sample_rate=48000:duration=$len"
    chains+="[$i:a]volume=0.6,lowpass=f=8000:p=2:t=q:w=0.5412,lowpass=f=8000:p=2:t=q:w=1.3066,aloop=loop=-1:size=2e9,atrim=duration=$d,apad=whole_dur=$d,asplit=2[s$i][o$i];"
    mixin+="[s$i]"; weights+="$g "
    outs+=" -map [o$i] -c:a pcm_f32le '$work/ff-$name.wav'"; i=$((i + 1))
  done
  echo "ffmpeg -v error -y $inputs -filter_complex '${chains}${mixin}amix=inputs=$i:weights=${weights% }:normalize=0[m]' -map [m] -c:a pcm_f32le '$work/ff-master.wav' $outs"
}

measure() { # way duration -> "seconds kib"
  # Every way starts with no output on disk: removing the last run's files
  # is not part of the work.
  rm -rf "$work/sf" "$work"/sox-*.wav "$work"/ff-*.wav
  sync
  # Wall time to the millisecond from the clock (GNU time rounds to 10 ms);
  # peak RSS from GNU time.
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$work/t" bash "$work/$1$2.sh" 2>/dev/null
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000000 )) $(cat "$work/t")" | awk '{printf "%.3f %s\n", $1 / 1000, $2}'
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for d in ${LENGTHS:-137 600}; do
  manifest "$d" > "$work/m$d.toml"
  for way in stemflow sox ffmpeg; do "write_$way" "$d" > "$work/$way$d.sh"; done
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
print(f"{d} s (median of $runs): stemflow {sf:.3f} s {sfm} KiB, realtime {d / sf:.0f}x | "
      f"SoX {so:.3f} s {som} KiB | FFmpeg {ff:.3f} s {ffm} KiB")
print(f"  wall ratio stemflow/SoX {sf / so:.3f} ({so / sf:.1f}x faster), "
      f"stemflow/FFmpeg {sf / ff:.3f} ({ff / sf:.1f}x faster); "
      f"RSS ratio stemflow/SoX {sfm / som:.2f}, stemflow/FFmpeg {sfm / ffm:.2f}")
PY
done
