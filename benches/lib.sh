# Sourced by the bench scripts (from the project root).
# The stemflow binary to measure: $STEMFLOW if set, else a fresh release build.
stemflow_bin() {
  if [ -n "${STEMFLOW:-}" ]; then
    echo "$STEMFLOW"
  else
    cargo build --release --quiet && echo "${CARGO_TARGET_DIR:-$PWD/target}/release/stemflow"
  fi
}
