#!/usr/bin/env bash
# HLS cost on one ringcast core (pinned to CPU $SERVER_CPU), loadgen on CPU $LOADGEN_CPU:
#
# 1. Viewers, side by side in one run on one server and one stream (loadgen's synthetic
#    600 kb/s H.264 + 64 kb/s AAC, 25 fps, 1 s GOP, SEI-stamped; the default 334 ms parts):
#    N LL-HLS players (`loadgen play --url …/x.m3u8`: blocking reloads, parts, preload
#    hints), then N HTTP-FLV viewers of the same stream. For each phase, over the same
#    WINDOW seconds after the ramp: server CPU (the process's utime + stime), HLS
#    requests/s (ringcast_hls_requests_total), and loadgen's viewers, failures, stalls.
# 2. Packaging cost: STREAMS publishers at 600 kb/s and no viewers, into a server with
#    HLS on (the default) and then into one with `[hls] enabled = false`: CPU and RSS
#    growth per stream, over the same PACK_S seconds.
#
#   N=2000 benches/system/hls.sh          # WINDOW=20 STREAMS=100 PACK_S=30 SAMPLE=0.1 RAMP=500
#   N=5000 RAMP=1000 PACK=0 benches/system/hls.sh   # viewers only (PACK=0: no packaging part)
#   EXTRA_TOML='[runtime]\nmax_sends_per_turn = 1000000' …   # extra configuration for the viewers part
#
# Needs curl, python3, taskset. Bounded: every loadgen run stops by itself (and is killed
# by `timeout` past its limit); the servers are killed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-2000} WINDOW=${WINDOW:-20} STREAMS=${STREAMS:-100} PACK_S=${PACK_S:-30}
SAMPLE=${SAMPLE:-0.1} RAMP=${RAMP:-500} PACK=${PACK:-1} SERVER_CPU=${SERVER_CPU:-0} LOADGEN_CPU=${LOADGEN_CPU:-1}
cargo build --release -q -p ringcast -p loadgen
TARGET=${CARGO_TARGET_DIR:-target}
RC=$TARGET/release/ringcast LG=$TARGET/release/loadgen
OUT=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TCK=$(getconf CLK_TCK)
cpu_s() { awk -v t="$TCK" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }
# Time the server's threads waited for a CPU (runqueue delay, s): on a shared box this says
# whether other processes, not ringcast, held its core.
wait_s() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $2 } END { printf "%.3f", s / 1e9 }'; }
rss_mb() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
metric() { # sum of family $2's samples on admin port $1
  curl -s "http://127.0.0.1:$1/metrics" |
    awk -v n="$2" 'index($0, n) == 1 && (substr($0, length(n) + 1, 1) ~ /[ {]/) { s += $NF } END { printf "%.3f", s }'
}
SERVER_PID="" RTMP="" HTTP="" ADMIN=""
start_server() { # $1: extra TOML
  RTMP=$(free_port) HTTP=$(free_port) ADMIN=$(free_port)
  printf '%b\n' "$1" >"$OUT/ringcast.toml"
  taskset -c "$SERVER_CPU" "$RC" serve --config "$OUT/ringcast.toml" --cores 1 --rtmp 127.0.0.1:$RTMP \
    --http 127.0.0.1:$HTTP --admin 127.0.0.1:$ADMIN >>"$OUT/ringcast.log" 2>&1 &
  SERVER_PID=$!
  pids+=("$SERVER_PID")
  for _ in $(seq 100); do curl -sf -m 1 "http://127.0.0.1:$ADMIN/metrics" >/dev/null && return 0; sleep 0.1; done
  echo "ringcast did not start: $(cat "$OUT/ringcast.log")" >&2
  exit 1
}
stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
RAMP_S=$(( (N + RAMP - 1) / RAMP ))

echo "# $(date -u +%FT%TZ) uptime:$(uptime | sed 's/.*load average/ load average/')"
echo "# ringcast 1 core on CPU $SERVER_CPU, loadgen on CPU $LOADGEN_CPU; N=$N viewers (ramp $RAMP/s), window ${WINDOW}s, sample $SAMPLE"

# ---- 1. LL-HLS vs HTTP-FLV viewers of one stream -------------------------------------
start_server "${EXTRA_TOML:-}"
PUB_S=$(( 2 * (RAMP_S + WINDOW + 20) + 20 ))
timeout $(( PUB_S + 30 )) taskset -c "$LOADGEN_CPU" "$LG" publish --url "rtmp://127.0.0.1:$RTMP/live/x" \
  --bitrate 600k --gop 1s --duration ${PUB_S}s >"$OUT/publish.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf -m 1 -o /dev/null "http://127.0.0.1:$HTTP/live/x.m3u8" && break; sleep 0.1; done
sleep 2
viewers() { # $1 label, $2 url
  local label=$1 url=$2 play_s=$(( RAMP_S + WINDOW + 6 ))
  timeout $(( play_s + 60 )) taskset -c "$LOADGEN_CPU" "$LG" play --url "$url" --viewers "$N" --ramp "$RAMP" \
    --sample "$SAMPLE" --setup-timeout 20s --duration ${play_s}s --cores 1 --json "$OUT/$label.json" \
    >"$OUT/$label.log" 2>&1 &
  local lg=$!
  sleep $(( RAMP_S + 3 ))
  local c0 r0 b0 c1 r1 b1 load w0 w1
  w0=$(wait_s "$SERVER_PID")
  c0=$(cpu_s "$SERVER_PID") r0=$(metric "$ADMIN" ringcast_hls_requests_total)
  b0=$(metric "$ADMIN" ringcast_sent_bytes_total)
  sleep "$WINDOW"
  c1=$(cpu_s "$SERVER_PID") r1=$(metric "$ADMIN" ringcast_hls_requests_total)
  w1=$(wait_s "$SERVER_PID")
  b1=$(metric "$ADMIN" ringcast_sent_bytes_total) load=$(cut -d' ' -f1 /proc/loadavg)
  wait "$lg" || echo "loadgen play ($label) exited with $? (see its log)"
  python3 - "$OUT/$label.json" "$label" "$N" "$WINDOW" "$c0" "$c1" "$r0" "$r1" "$b0" "$b1" "$load" "$w0" "$w1" <<'PY'
import json, sys
path, label, n, window = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
c0, c1, r0, r1, b0, b1 = map(float, sys.argv[5:11])
load = sys.argv[11]
waited = (float(sys.argv[13]) - float(sys.argv[12])) / window
cpu = (c1 - c0) / window
try:
    r = json.load(open(path))
except Exception as e:
    print(f"{label}: no loadgen report ({e})"); sys.exit(0)
c = r["counters"]
fails = r.get("failures") or []
failed = sum(f["count"] for f in fails)
fl = ", ".join(f"{f['phase']}/{f['kind']} {f['count']}" for f in fails) or "none"
lat = r["latency_ms"]
print(f"{label}: viewers peak {r['peak_viewers']}/{n}, failures {failed} ({fl}), "
      f"stalls {c['stalls']} (sampled) + {c['byte_stalls']} byte-level, "
      f"latency p50 {lat['p50']:.0f} p99 {lat['p99']:.0f} ms, {r['mean_mbps']:.0f} Mbit/s mean")
t = r["loadgen_turn_ms"]
# loadgen's own loop turns: near 500 ms, its delays are in the stalls (the client is the limit).
print(f"{label}: loadgen turn p99 {t['p99']:.0f} ms, max {t['max']:.0f} ms")
print(f"{label}: server CPU {cpu * 100:.1f}% of a core over {window:.0f}s = {cpu / n * 1e6:.1f} us/s per viewer, "
      f"HLS requests {(r1 - r0) / window:.0f}/s, sent {(b1 - b0) * 8 / window / 1e6:.0f} Mbit/s "
      f"(load {load}); it waited for a CPU {waited * 100:.0f}% of the window")
PY
  sleep 3
}
viewers ll-hls "http://127.0.0.1:$HTTP/live/x.m3u8"
viewers http-flv "http://127.0.0.1:$HTTP/live/x.flv"
stop_server

# ---- 2. Packaging cost: STREAMS publishers, HLS on vs off --------------------------------
[[ $PACK == 0 ]] && exit 0
echo "# packaging: $STREAMS publishers x 600 kb/s video + 64 kb/s audio, no viewers, ${PACK_S}s"
packaging() { # $1 label, $2 extra TOML
  start_server "$2"
  sleep 1
  local rss_idle c0 c1 rss load p0 p1
  rss_idle=$(rss_mb "$SERVER_PID")
  timeout $(( PACK_S + 60 )) taskset -c "$LOADGEN_CPU" "$LG" publish --url "rtmp://127.0.0.1:$RTMP/live/s{i}" \
    --streams "$STREAMS" --bitrate 600k --gop 1s --duration $(( PACK_S + 12 ))s >"$OUT/pack-$1.log" 2>&1 &
  local lg=$!
  sleep 8
  c0=$(cpu_s "$SERVER_PID") p0=$(metric "$ADMIN" ringcast_hls_packager_seconds_total)
  sleep "$PACK_S"
  c1=$(cpu_s "$SERVER_PID") p1=$(metric "$ADMIN" ringcast_hls_packager_seconds_total)
  rss=$(rss_mb "$SERVER_PID") load=$(cut -d' ' -f1 /proc/loadavg)
  local live
  live=$(metric "$ADMIN" ringcast_streams)
  wait "$lg" || echo "loadgen publish ($1) exited with $? (see its log)"
  python3 -c "c = ($c1 - $c0) / $PACK_S; p = ($p1 - $p0) / $PACK_S; s = $STREAMS
print(f'$1: streams live {$live:.0f}, server CPU {c * 100:.1f}% of a core = {c / s * 100:.3f}% per stream '
      f'(packagers {p * 100:.1f}%), RSS {$rss:.0f} MB ({$rss_idle:.0f} idle) = {($rss - $rss_idle) / s * 1024:.0f} KiB per stream (load $load)')"
  stop_server
}
packaging hls-on ""
packaging hls-off "[hls]\nenabled = false"
