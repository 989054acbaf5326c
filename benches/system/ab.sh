#!/usr/bin/env bash
# A/B of two ringcast configurations under the same load, in one run, alternating
# A B A B so drift on a shared machine hits both alike. The server is pinned to
# CPU 0 with one core; loadgen (publisher + HTTP-FLV viewers) to CPU 1.
#
#   benches/system/ab.sh VIEWERS DURATION 'TOML for A' 'TOML for B' [ROUNDS]
#   e.g. benches/system/ab.sh 3000 20s '[runtime]
#   send_merge_window = "0ms"' '[runtime]
#   send_merge_window = "20ms"'
#   PUBLISH='--bitrate 600k --fps 30' (default) sets loadgen publish's stream options.
#   BIN_A / BIN_B: a ringcast binary per arm (default both the fresh release build), to
#   A/B two builds with the same configuration (e.g. '' '').
#
# Prints, per run, the server's CPU seconds, what the viewers saw, and the core's
# sends per viewer per second and frames per send (from its /metrics, read once the
# viewers are up), then the mean CPU ratio B/A. Bounded: every process stops by itself
# or is killed. Binaries come from $CARGO_TARGET_DIR (default target).
set -euo pipefail
cd "$(dirname "$0")/../.."
VIEWERS=$1 DURATION=$2 A=$3 B=$4 ROUNDS=${5:-2}
# The stream: loadgen's synthetic H.264 + 64 kb/s AAC (44.1 kHz); override with PUBLISH.
PUBLISH=${PUBLISH:---bitrate 600k --fps 30}
cargo build --release -q -p ringcast -p loadgen
T=${CARGO_TARGET_DIR:-target}
RC=$T/release/ringcast LG=$T/release/loadgen
OUT=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run_one() { # $1 label, $2 toml, $3 ringcast binary
  local rtmp http admin cfg pid lp vp t0 t1 bin=$3
  rtmp=$(free_port); http=$(free_port); admin=$(free_port); cfg="$OUT/$1.toml"
  printf '%s\n' "$2" > "$cfg"
  taskset -c 0 $bin serve --config "$cfg" --cores 1 --rtmp 127.0.0.1:$rtmp --http 127.0.0.1:$http --admin 127.0.0.1:$admin >"$OUT/$1.log" 2>&1 &
  pid=$!
  # Bounded waits on what can be observed: the admin port answers, then the stream is live.
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$admin/metrics" && break; sleep 0.2; done
  taskset -c 1 $LG publish --url rtmp://127.0.0.1:$rtmp/live/ab $PUBLISH --duration 600s --cores 1 >/dev/null 2>&1 &
  lp=$!
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$admin/api/v1/streams/live/ab" && break; sleep 0.2; done
  sleep 1 # a first GOP in the cache
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  taskset -c 1 $LG play --url http://127.0.0.1:$http/live/ab.flv --viewers "$VIEWERS" --ramp 5000 --sample 0.05 \
      --duration "$DURATION" --cores 1 --json "$OUT/$1.json" >/dev/null 2>&1 &
  vp=$!
  # Two snapshots of the send counters over the held part of the run (ramp over).
  sleep $(( VIEWERS / 5000 + 3 )); curl -s --max-time 5 "http://127.0.0.1:$admin/metrics" >"$OUT/$1.m0" || true
  sleep 8; curl -s --max-time 5 "http://127.0.0.1:$admin/metrics" >"$OUT/$1.m1" || true
  wait $vp || true
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill $lp $pid 2>/dev/null; wait $lp $pid 2>/dev/null || true
  python3 - "$1" "$OUT/$1.json" "$(( t1 - t0 ))" "$OUT/$1.m0" "$OUT/$1.m1" <<'PY'
import json, sys
label, path, ticks = sys.argv[1], sys.argv[2], int(sys.argv[3])
def scrape(f):
    v = {}
    try:
        for line in open(f):
            if line.startswith("ringcast_reactor_send_frames_") or line.startswith("ringcast_viewers{"):
                name, val = line.rsplit(" ", 1)
                key = name.split("{")[0]
                v[key] = v.get(key, 0) + float(val)
    except OSError:
        pass
    return v
m0, m1 = scrape(sys.argv[4]), scrape(sys.argv[5])
sends = m1.get("ringcast_reactor_send_frames_count", 0) - m0.get("ringcast_reactor_send_frames_count", 0)
frames = m1.get("ringcast_reactor_send_frames_sum", 0) - m0.get("ringcast_reactor_send_frames_sum", 0)
viewers = m1.get("ringcast_viewers", 0)
spv = sends / 8 / viewers if viewers else 0
fps = frames / sends if sends else 0
r = json.load(open(path))
lat, c, st = r.get("latency_ms", {}), r.get("counters", {}), r.get("startup_ms", {})
print(f"{label:8s} server_cpu_s={ticks/100:6.2f} viewers={r.get('peak_viewers')} "
      f"mbit_s={r.get('mean_mbps', 0):.0f} p50_ms={lat.get('p50', 0):.0f} p99_ms={lat.get('p99', 0):.0f} "
      f"startup_p50_ms={st.get('p50', 0):.1f} startup_p99_ms={st.get('p99', 0):.0f} stalls={c.get('stalls')} missing={c.get('missing_frames')} failures={len(r.get('failures', []))} "
      f"sends_per_viewer_s={spv:.1f} frames_per_send={fps:.2f}")
print(f"CPU {label} {ticks}", file=open(sys.argv[2] + ".cpu", "w"))
PY
}
for i in $(seq 1 "$ROUNDS"); do run_one "A$i" "$A" "${BIN_A:-$RC}"; run_one "B$i" "$B" "${BIN_B:-$RC}"; done
python3 - "$OUT" <<'PY'
import glob, sys
cpu = {}
for f in glob.glob(sys.argv[1] + "/*.json.cpu"):
    _, label, ticks = open(f).read().split()
    cpu.setdefault(label[0], []).append(int(ticks))
a, b = sum(cpu["A"]) / len(cpu["A"]), sum(cpu["B"]) / len(cpu["B"])
print(f"mean server CPU: A {a/100:.2f} s, B {b/100:.2f} s, B/A = {b/a:.2f}")
PY
