#!/usr/bin/env bash
# Runs every fuzz target for N seconds each (default 30) from its committed corpus.
# Needs cargo-fuzz (installed here when missing); nightly features via RUSTC_BOOTSTRAP.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
echo "== building fuzz targets"
cargo fuzz build -O
for t in $targets; do
  mkdir -p "corpus/$t"
  echo "== fuzz $t for ${secs}s"
  # Limits: 2 GiB RSS, 10 s per input; any crash, leak or timeout fails the run.
  # New inputs go to a scratch dir so the committed seed corpus stays as it is.
  scratch=$(mktemp -d)
  if ! cargo fuzz run -O "$t" "$scratch" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      >"$scratch.log" 2>&1; then
    tail -n 40 "$scratch.log"
    echo "fuzz target $t failed"
    exit 1
  fi
  grep -E "^Done [0-9]+ runs" "$scratch.log" || tail -n 2 "$scratch.log"
  rm -rf "$scratch" "$scratch.log"
done
