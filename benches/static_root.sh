#!/usr/bin/env bash
# The container image, tested without a container daemon: builds the static
# binary with the Dockerfile's build command, puts it alone with one manifest
# into an empty folder and renders there as the root of the file system
# (chroot as root, `unshare -r -R` otherwise; no /proc, /dev, /etc or libc,
# as in `FROM scratch`) under a 64 MiB address-space limit (`prlimit --as`):
# the built-in demo and the demo stretched to one hour.
# Usage: benches/static_root.sh [HOURS]
#   STEMFLOW_STATIC=path skips the build; prints size, peak RSS and wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${1:-1}
limit=$((64 * 1024 * 1024))
target=x86_64-unknown-linux-gnu

bin=${STEMFLOW_STATIC:-}
if [ -z "$bin" ]; then
  start=$(date +%s)
  # The Dockerfile's build command, word for word (tests/container.rs).
  RUSTFLAGS='-C target-feature=+crt-static' CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked --target x86_64-unknown-linux-gnu --bin stemflow
  echo "static build: $(($(date +%s) - start)) s"
  bin="${CARGO_TARGET_DIR:-target}/$target/release/stemflow"
fi
# A static binary has no program interpreter (ld.so) to load libraries.
if readelf -l "$bin" | grep -q "program interpreter"; then
  echo "static_root: $bin is dynamically linked" >&2
  exit 1
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
cp "$bin" "$root/stemflow"
secs=$(python3 -c "print(int($hours * 3600))")
# The demo with every length moved by as much as the duration, so each stem
# keeps its strategy (loop, zero-pad, crossfade, truncate); no archive.
python3 - "$secs" >"$root/long.toml" <<'PY'
import re, sys
target = float(sys.argv[1])
text = open("fixtures/demo.toml").read()
shift = target - 137.0
text = text.replace("duration = 137", f"duration = {target}")
text = re.sub(r"length = ([0-9.]+)", lambda m: f"length = {float(m.group(1)) + shift}", text)
text = text.replace('archive = "audio_deliverables.zip"', 'archive = ""')
print(text)
PY
echo "empty root holds: $(cd "$root" && echo *)"

if [ "$(id -u)" = 0 ]; then
  enter=(chroot "$root")
else
  enter=(unshare -r -R "$root")
fi
# Runs stemflow in the empty root under the limit; prints peak RSS (KiB),
# wall and CPU seconds.
run() {
  local log="$root.time"
  if ! /usr/bin/time -f "%M %e %U+%S" -o "$log" \
    prlimit --as="$limit" "${enter[@]}" /stemflow render "$@" --out /out --quiet >/dev/null 2>"$root.err"; then
    cat "$root.err" "$log" >&2
    rm -f "$root.err" "$log"
    exit 1
  fi
  if [ -s "$root.err" ]; then
    echo "static_root: stderr was not empty:" >&2
    cat "$root.err" >&2
    exit 1
  fi
  cat "$log"
  rm -f "$root.err" "$log"
}

size=$(stat -c %s "$bin")
read -r rss_demo t_demo cpu_demo < <(run)
test -f "$root/out/demo/master.wav" -a -f "$root/out/demo/audio_deliverables.zip"
rm -rf "$root/out"
read -r rss_long t_long cpu_long < <(run /long.toml)
test -f "$root/out/demo/master.wav"
echo "binary: $size bytes ($(python3 -c "print(f'{$size / 1048576:.1f}')") MiB), static, stripped"
echo "limit: --as $limit bytes (64 MiB)"
cpu() { python3 -c "print(f'{$1:.2f}')"; }
echo "demo (137 s):      peak RSS ${rss_demo} KiB, ${t_demo} s wall, $(cpu "$cpu_demo") s CPU"
echo "demo (${secs} s): peak RSS ${rss_long} KiB, ${t_long} s wall, $(cpu "$cpu_long") s CPU"
