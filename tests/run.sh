#!/usr/bin/env bash
# The whole ringcast test suite, from a fresh Linux machine.
# Installs what the tests need when it is missing, then runs every test.
# Usage: ./tests/run.sh            (everything)
#        FUZZ_SECONDS=0 ./tests/run.sh   (skip the short fuzz runs)
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers the tests drive: ffmpeg/ffprobe (publish, play, decode), Prometheus
# and promtool (scrape + lint), nginx with the RTMP module (loadgen baseline, a
# third-party origin) and the stream module (consistent-hash front), python3 with
# venv (tuning/check, the Grafana generator, the k8s schema validator from PyPI).
need_apt=()
command -v ffmpeg     >/dev/null || need_apt+=(ffmpeg)
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v promtool   >/dev/null || need_apt+=(prometheus)
command -v nginx      >/dev/null || need_apt+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ]   || need_apt+=(libnginx-mod-rtmp)
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || need_apt+=(libnginx-mod-stream)
command -v prlimit    >/dev/null || need_apt+=(util-linux)
command -v unshare    >/dev/null || need_apt+=(util-linux)
command -v python3    >/dev/null || need_apt+=(python3)
python3 -m venv --help >/dev/null 2>&1 || need_apt+=(python3-venv)
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
