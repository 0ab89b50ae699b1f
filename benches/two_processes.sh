#!/usr/bin/env bash
# Two processes on one manifest and one OUT (issue 13, SPEC §11), TRIALS
# times: half from an empty OUT, half with --force over a complete render.
# Both run at once with --json. Checked from disk afterwards, with no rerun:
# every song is in OUT complete and byte-identical to a clean run, and every
# song either process reported "ok" is on disk complete. Songs the other
# process held are reported "busy" (counted).
# Usage: benches/two_processes.sh [BINARY] [TRIALS=20]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(realpath "${1:-$root/target/release/stemflow}")"
trials="${2:-20}"
py="$root/benches/safety_common.py"
w="$(mktemp -d)"
trap 'rm -rf "$w"' EXIT
cd "$w"
python3 - <<'PY'
songs = []
for i in range(8):
    songs.append(f'[[songs]]\nid = "s{i}"\nbpm = 120\nduration = 1.0\narchive = "s{i}.zip"\n'
                 f'[[songs.stems]]\nname = "a"\nsource = {{ type = "tone", freq = {200 + 50 * i}.0 }}\n'
                 f'[[songs.stems]]\nname = "d"\nsource = {{ type = "drums" }}\n')
open("m.toml", "w").write("\n".join(songs))
PY
"$bin" render m.toml --out clean --quiet --jobs 1 >/dev/null
fail=0 busy=0 exit_busy=0
for t in $(seq 1 "$trials"); do
    rm -rf out
    args=()
    if (( t % 2 == 0 )); then
        "$bin" render m.toml --out out --quiet --jobs 1 >/dev/null
        args=(--force)
    fi
    "$bin" render m.toml --out out --json --quiet --jobs 1 "${args[@]}" >a.json 2>a.err &
    pa=$!
    "$bin" render m.toml --out out --json --quiet --jobs 1 "${args[@]}" >b.json 2>b.err &
    pb=$!
    ca=0; cb=0
    wait "$pa" || ca=$?
    wait "$pb" || cb=$?
    for c in $ca $cb; do
        if [ "$c" -eq 1 ]; then exit_busy=$((exit_busy + 1)); elif [ "$c" -ne 0 ]; then
            echo "trial $t: exit code $c"; fail=$((fail + 1)); fi
    done
    for r in a b; do
        if ! msg=$(python3 "$py" ok-on-disk out clean "$r.json"); then
            echo "trial $t: process $r: $msg"; fail=$((fail + 1))
        fi
        busy=$((busy + $(echo "$msg" | sed -n 's/^busy=//p')))
        if grep -v "busy" "$r.err" | grep -q .; then
            echo "trial $t: process $r stderr: $(cat "$r.err")"; fail=$((fail + 1))
        fi
    done
    if ! msg=$(python3 "$py" same out clean); then
        echo "trial $t: OUT differs from the clean run: $msg"; fail=$((fail + 1))
    fi
done
echo "trials: $trials, busy reports: $busy, runs exiting 1 (busy): $exit_busy, failures: $fail"
[ "$fail" -eq 0 ]
