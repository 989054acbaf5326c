#!/usr/bin/env bash
# Runs every fuzz target for N seconds each (default 30) from its committed corpus.
# Needs cargo-fuzz (installed here when missing); nightly features via RUSTC_BOOTSTRAP.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build -O $targets >/dev/null 2>&1 || cargo fuzz build -O
for t in $targets; do
  mkdir -p "corpus/$t"
  echo "== fuzz $t for ${secs}s"
  # Limits: 2 GiB RSS, 10 s per input; any crash, leak or timeout fails the run.
  cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=0 2>&1 | tail -n 3
done
