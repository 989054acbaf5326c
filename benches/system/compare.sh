#!/usr/bin/env bash
# Whole-system comparison on this machine, in one run: ringcast and nginx-rtmp side by
# side, each pinned to CPU 0 with loadgen's publisher and viewers on CPU 1.
#
#   benches/system/compare.sh [VIEWERS] [DURATION] [BITRATE]
#   defaults: 10000 viewers, 30s, 600k video (+64k audio)
#
# Environment (all optional): RAMP=1000 viewers started per second; FPS=25 the
# publisher's frame rate; SKIP_NGINX=1 measures ringcast only (the 18,000-viewer goal:
# `FPS=30 SKIP_NGINX=1 benches/system/compare.sh 18000 30s 600k`); binaries come from
# $CARGO_TARGET_DIR (default target).
#
# Prints one line per run (server, protocol, viewers) with what the viewers saw, and
# leaves loadgen's JSON reports in $OUT (default target/compare). Every process is
# bounded in time and killed at the end. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
VIEWERS=${1:-10000}
DURATION=${2:-30s}
BITRATE=${3:-600k}
OUT=${OUT:-target/compare}
mkdir -p "$OUT"
cargo build --release -q -p ringcast -p loadgen
T=${CARGO_TARGET_DIR:-target}
RC=$T/release/ringcast
LG=$T/release/loadgen
FPS=${FPS:-25}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Runs loadgen's publisher + viewers against one server; $1 name, $2 publish url, $3 play url.
measure() {
  local name=$1 pub=$2 play=$3 spid=$4 admin=${5:-} t0 t1
  taskset -c 1 $LG publish --url "$pub" --bitrate "$BITRATE" --fps "$FPS" --duration 600s --cores 1 >"$OUT/$name.publish.log" 2>&1 &
  local lp=$!; pids+=("$lp")
  sleep 3
  t0=$(awk '{print $14+$15}' /proc/$spid/stat)
  if [[ -n $admin ]]; then
    # Two scrapes 5 s apart once every viewer is up, for the per-send gauges.
    ( sleep $(( VIEWERS / ${RAMP:-1000} + 5 ))
      curl -s "http://$admin/metrics" >"$OUT/$name.metrics.0"; sleep 5
      curl -s "http://$admin/metrics" >"$OUT/$name.metrics.1" ) &
    pids+=($!)
  fi
  taskset -c 1 /usr/bin/time -f "%U %S" -o "$OUT/$name.lgcpu" $LG play --url "$play" --viewers "$VIEWERS" --ramp "${RAMP:-1000}" --sample 0.1 \
      --duration "$DURATION" --cores 1 --json "$OUT/$name.json" >"$OUT/$name.play.log" 2>&1 || true
  t1=$(awk '{print $14+$15}' /proc/$spid/stat)
  kill "$lp" 2>/dev/null || true
  echo "$(( t1 - t0 ))" > "$OUT/$name.cpu"
  python3 - "$name" "$OUT/$name.json" "$OUT/$name.cpu" "$OUT/$name.lgcpu" <<'PY'
import json, sys
name, path, cpu = sys.argv[1], sys.argv[2], int(open(sys.argv[3]).read()) / 100
try:
    lg = sum(float(x) for x in open(sys.argv[4]).read().split()[-2:])
except Exception:
    lg = float("nan")
try:
    r = json.load(open(path))
except Exception as e:
    print(f"{name:26s} no report ({e})"); sys.exit(0)
c, lat, st = r.get("counters", {}), r.get("latency_ms", {}), r.get("startup_ms", {})
fails = sum(f.get("count", 0) for f in r.get("failures", [])) if isinstance(r.get("failures"), list) else r.get("failures")
print(f"{name:26s} server_cpu={cpu:6.2f}s loadgen_cpu={lg:6.2f}s peak={r.get('peak_viewers')} up_at_end={c.get('viewers_up')} "
      f"mbit_s={r.get('mean_mbps', 0):.0f} lat_p50={lat.get('p50', 0):.0f}ms lat_p99={lat.get('p99', 0):.0f}ms "
      f"startup_p50={st.get('p50', 0):.0f}ms stalls={c.get('stalls')} missing={c.get('missing_frames')} failures={fails}")
PY
}

# ringcast, one core.
RTMP=$(free_port); HTTP=$(free_port)
ADMIN=127.0.0.1:$(free_port)
taskset -c 0 $RC serve --cores 1 --rtmp 127.0.0.1:$RTMP --http 127.0.0.1:$HTTP --admin $ADMIN >"$OUT/ringcast.log" 2>&1 &
RCP=$!; pids+=($RCP); sleep 1
[[ ${SKIP_FLV:-} == 1 ]] || measure "ringcast-http-flv-$VIEWERS" "rtmp://127.0.0.1:$RTMP/live/bench" "http://127.0.0.1:$HTTP/live/bench.flv" $RCP $ADMIN
[[ ${SKIP_RTMP:-} == 1 ]] || measure "ringcast-rtmp-$VIEWERS" "rtmp://127.0.0.1:$RTMP/live/bench2" "rtmp://127.0.0.1:$RTMP/live/bench2" $RCP $ADMIN
kill $RCP; sleep 1
[[ ${SKIP_NGINX:-} == 1 ]] && exit 0

# nginx-rtmp (Debian libnginx-mod-rtmp), one worker on CPU 0: RTMP only (it has no HTTP-FLV).
NG=$(mktemp -d); NRTMP=$(free_port)
cat >"$NG/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
worker_cpu_affinity 01;
worker_rlimit_nofile 20000;
error_log $NG/error.log warn;
pid $NG/nginx.pid;
events { worker_connections 19000; }
# nginx-rtmp keeps a fixed listen backlog (511): viewers ramp at RAMP/s so accepts keep up.
rtmp { server { listen 127.0.0.1:$NRTMP; chunk_size 4096; application live { live on; } } }
CONF
nginx -p "$NG" -c "$NG/nginx.conf" -g 'daemon off;' >"$OUT/nginx.log" 2>&1 &
NGP=$!; pids+=($NGP); sleep 1
NGW=$(pgrep -P $NGP | head -1)   # the worker does the work; CPU is read from it
measure "nginx-rtmp-rtmp-$VIEWERS" "rtmp://127.0.0.1:$NRTMP/live/bench" "rtmp://127.0.0.1:$NRTMP/live/bench" $NGW
