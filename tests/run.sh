#!/usr/bin/env bash
# The whole ringcast test suite, from a fresh Linux machine.
# Installs what the tests need when it is missing, then runs every test.
# Usage: ./tests/run.sh            (everything)
#        FUZZ_SECONDS=0 ./tests/run.sh   (skip the short fuzz runs)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg  >/dev/null || need_apt+=(ffmpeg)
command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
if ((${#need_apt[@]})); then
  echo "== installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== cargo test (workspace)"
cargo test --workspace --all-targets
cargo test --workspace --doc

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
if [ "$FUZZ_SECONDS" != 0 ] && [ -d fuzz ] && [ -f fuzz/Cargo.toml ]; then
  ./fuzz/run-all.sh "$FUZZ_SECONDS"
fi
echo "== all tests passed"
