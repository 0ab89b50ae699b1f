#!/usr/bin/env bash
# kill -9 trials (issue 13, SPEC §11): renders a small batch (6 songs of
# 3 s, archives, one file input) and kills the process at a random moment,
# TRIALS times, half of them with --force over a complete previous render and
# half from an empty OUT. After each kill: no song folder may be incomplete
# by its marker (every listed file present, of the listed size, with the
# bytes of a clean run); then a plain rerun must give output byte-identical
# to the clean run (state folder and summary.json aside).
# Usage: benches/kill_trials.sh [BINARY] [TRIALS=200]
# Prints one line per failure and a final tally; exit 1 if any failed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(realpath "${1:-$root/target/release/stemflow}")"
trials="${2:-200}"
py="$root/benches/safety_common.py"
w="$(mktemp -d)"
trap 'rm -rf "$w"' EXIT
cd "$w"
python3 - <<'PY'
import math, struct, wave
with wave.open("vox.wav", "wb") as f:
    f.setnchannels(1); f.setsampwidth(2); f.setframerate(48000)
    f.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(i * 440 * 2 * math.pi / 48000))) for i in range(48000)))
songs = []
for i in range(6):
    src = '{ type = "file", path = "vox.wav" }' if i == 0 else '{ type = "tone", freq = %d.0 }' % (200 + 50 * i)
    songs.append(f'[[songs]]\nid = "s{i}"\nbpm = 120\nduration = 3.0\narchive = "s{i}.zip"\n'
                 f'[[songs.stems]]\nname = "a"\nsource = {src}\n'
                 f'[[songs.stems]]\nname = "d"\nsource = {{ type = "drums" }}\n')
open("m.toml", "w").write("\n".join(songs))
PY
ids="s0,s1,s2,s3,s4,s5"
# The kill delay is drawn from [0, the fastest of three clean runs], so most
# kills land while the run is working.
run_ms=1000000
for i in 1 2 3; do
    rm -rf clean
    t0=$(date +%s%N)
    "$bin" render m.toml --out clean --quiet --jobs 2 >/dev/null
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    (( ms < run_ms )) && run_ms=$ms
done
echo "clean run: ${run_ms} ms"
fail=0 killed_mid=0 killed_force=0 checked=0
for t in $(seq 1 "$trials"); do
    if (( t % 2 )); then
        mode=force
        # A complete previous render to replace.
        "$bin" render m.toml --out out --quiet --jobs 2 >/dev/null || true
        args=(--force)
    else
        mode=fresh
        rm -rf out
        args=()
    fi
    delay_ms=$(( RANDOM % (run_ms + 1) ))
    "$bin" render m.toml --out out --quiet --jobs 2 "${args[@]}" >/dev/null 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    # bash reaps finished children itself, so kill fails for a finished run.
    if kill -9 "$pid" 2>/dev/null; then
        killed_mid=$((killed_mid + 1))
        [ "$mode" = force ] && killed_force=$((killed_force + 1))
    fi
    wait "$pid" 2>/dev/null || true
    checked=$((checked + 1))
    if ! msg=$(python3 "$py" incomplete out clean "$ids"); then
        echo "trial $t ($mode, ${delay_ms} ms): incomplete song folder: $msg"
        fail=$((fail + 1))
        continue
    fi
    "$bin" render m.toml --out out --quiet --jobs 2 >/dev/null 2>&1 || true
    if ! msg=$(python3 "$py" same out clean); then
        echo "trial $t ($mode, ${delay_ms} ms): rerun not identical: $msg"
        fail=$((fail + 1))
    fi
    if [ -n "$(find out/.stemflow/tmp out/.stemflow/trash -mindepth 1)" ]; then
        echo "trial $t ($mode): temporary state left after the rerun"
        fail=$((fail + 1))
    fi
done
echo "trials: $checked, killed while running: $killed_mid ($killed_force of them with --force), failures: $fail"
[ "$fail" -eq 0 ]
