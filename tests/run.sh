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
# venv + ensurepip (tuning/check, the Grafana generator, the k8s schema validator
# from PyPI), systemd-analyze (the unit file), prlimit (fd-limit tests), curl
# and openssl (TLS tests), Chromium with node/npm (the browser tests play with
# hls.js, dash.js and mpegts.js, pinned in tests/browser/package-lock.json).
# A test whose tool is missing fails naming it (tests/common/require.rs).
need_apt=()
command -v ffmpeg     >/dev/null || need_apt+=(ffmpeg)
command -v ffprobe    >/dev/null || need_apt+=(ffmpeg)
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v promtool   >/dev/null || need_apt+=(prometheus)
command -v nginx      >/dev/null || need_apt+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ]   || need_apt+=(libnginx-mod-rtmp)
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || need_apt+=(libnginx-mod-stream)
command -v prlimit    >/dev/null || need_apt+=(util-linux)
command -v unshare    >/dev/null || need_apt+=(util-linux)
command -v python3    >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v curl       >/dev/null || need_apt+=(curl)
command -v openssl    >/dev/null || need_apt+=(openssl)
command -v chromium   >/dev/null || need_apt+=(chromium)
command -v npm        >/dev/null || need_apt+=(npm)
if ((${#need_apt[@]})); then
  echo "== installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The player libraries, exactly as locked, installed into tests/browser/node_modules
# when missing or when the lock file is newer than the last install (the tests
# load their prebuilt browser builds: no install script needs to run).
browser=tests/browser
if [ ! -f $browser/node_modules/.package-lock.json ] ||
   [ $browser/package-lock.json -nt $browser/node_modules/.package-lock.json ]; then
  echo "== npm ci in $browser (hls.js, dash.js, mpegts.js)"
  (cd $browser && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# The static ffmpeg 9 (libx265, publishes HEVC over Enhanced RTMP) from the PyPI wheel
# imageio-ffmpeg, for tests/e2e_hls_codecs.rs: Debian's ffmpeg 5.1 cannot put HEVC in FLV.
if [ ! -x target/ffmpeg9/ffmpeg ]; then
  echo "== fetching the static ffmpeg 9 (PyPI imageio-ffmpeg==0.8.1)"
  rm -rf target/ffmpeg9 && mkdir -p target/ffmpeg9
  python3 -m venv target/ffmpeg9/venv
  target/ffmpeg9/venv/bin/pip install -q imageio-ffmpeg==0.8.1
  ln -s "$(target/ffmpeg9/venv/bin/python -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" \
    target/ffmpeg9/ffmpeg
fi

if command -v rustup >/dev/null; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy (-D warnings; incompatible_msrv checks std APIs against rust-version)"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo doc (-D warnings: every intra-doc link resolves, no link to a private item)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "== rust-version covers every locked dependency's own rust-version"
metadata=$(mktemp)
trap 'rm -f "$metadata"' EXIT
cargo metadata --format-version 1 --locked >"$metadata"
python3 - "$metadata" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
ver = lambda v: (tuple(int(x) for x in v.split(".")) + (0, 0, 0))[:3]  # "1.88" == "1.88.0"
ours = {p["rust_version"] for p in m["packages"] if p["id"] in m["workspace_members"]}
assert len(ours) == 1 and None not in ours, "workspace packages disagree on rust-version: %s" % ours
ours = ours.pop()
too_new = ["%s %s needs %s" % (p["name"], p["version"], p["rust_version"]) for p in m["packages"]
           if p["rust_version"] and ver(p["rust_version"]) > ver(ours)]
assert not too_new, "rust-version %s is below: %s" % (ours, ", ".join(too_new))
print("rust-version %s: ok" % ours)
PY

echo "== cargo test (workspace; every test binary runs even after a failure)"
cargo test --workspace --all-targets --no-fail-fast
cargo test --workspace --doc

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
if [ "$FUZZ_SECONDS" != 0 ] && [ -d fuzz ] && [ -f fuzz/Cargo.toml ]; then
  ./fuzz/run-all.sh "$FUZZ_SECONDS"
fi
echo "== all tests passed"
