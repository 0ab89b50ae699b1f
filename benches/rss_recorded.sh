#!/usr/bin/env bash
# Peak memory of the recorded-stems workload (benches/recorded.sh) at
# four minutes and at one hour: it must stay flat in the song's length.
# To keep the disk use under 4 GB, two of the eight stems (a FLAC
# zero-padded, a WAV truncated) and 16-bit output; the 1-hour files are
# deleted afterwards unless REC_DIR is set.
# Usage: benches/rss_recorded.sh   (STEMFLOW=binary skips the build;
# REC_DIR keeps the generated fixtures between runs)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
. benches/recorded.sh
bin=$(stemflow_bin)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rec_stems=$(tr ' ' '\n' <<<"$rec_stems" | grep -E '^(pad1|cut):' | paste -sd' ')
fx=${REC_DIR:-$work/fixtures}
for t in 240 3600; do
  rec_fixtures "$fx/$t" "$t"
  rec_manifest "$fx/$t" "$t" | sed 's/^format = "float"/format = "pcm16"/' > "$work/m$t.toml"
  /usr/bin/time -f "%M %e %U %S" -o "$work/time" "$bin" render "$work/m$t.toml" --out "$work/out" --quiet --force >/dev/null
  read -r kib wall user sys < "$work/time"
  echo "$t s song: peak RSS $kib KiB, wall $wall s, CPU $(python3 -c "print(round($user + $sys, 2))") s"
  echo "$kib" > "$work/rss$t"
  rm -rf "$work/out"
done
python3 -c "print(f'ratio 1 h / 4 min: {$(cat "$work/rss3600") / $(cat "$work/rss240"):.3f}')"
