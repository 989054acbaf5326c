#!/usr/bin/env bash
# A/B of two ringcast configurations under the same load, in one run, alternating
# A B A B so drift on a shared machine hits both alike. The server is pinned to
# CPU 0 with one core; loadgen (publisher + HTTP-FLV viewers) to CPU 1.
#
#   benches/system/ab.sh VIEWERS DURATION 'TOML for A' 'TOML for B' [ROUNDS]
#   e.g. benches/system/ab.sh 3000 20s '[runtime]
#   send_merge_window = "0ms"' '[runtime]
#   send_merge_window = "20ms"'
#
# Prints, per run, the server's CPU seconds and what the viewers saw, then the
# mean CPU ratio B/A. Bounded: every process stops by itself or is killed.
set -euo pipefail
cd "$(dirname "$0")/../.."
VIEWERS=$1 DURATION=$2 A=$3 B=$4 ROUNDS=${5:-2}
cargo build --release -q -p ringcast -p loadgen
RC=target/release/ringcast LG=target/release/loadgen
OUT=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run_one() { # $1 label, $2 toml
  local rtmp http cfg pid lp t0 t1
  rtmp=$(free_port); http=$(free_port); cfg="$OUT/$1.toml"
  printf '%s\n' "$2" > "$cfg"
  taskset -c 0 $RC serve --config "$cfg" --cores 1 --rtmp 127.0.0.1:$rtmp --http 127.0.0.1:$http --admin 127.0.0.1:$(free_port) >"$OUT/$1.log" 2>&1 &
  pid=$!; sleep 1
  taskset -c 1 $LG publish --url rtmp://127.0.0.1:$rtmp/live/ab --duration 600s --cores 1 >/dev/null 2>&1 &
  lp=$!; sleep 2
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  taskset -c 1 $LG play --url http://127.0.0.1:$http/live/ab.flv --viewers "$VIEWERS" --ramp 5000 --sample 0.05 \
      --duration "$DURATION" --cores 1 --json "$OUT/$1.json" >/dev/null 2>&1 || true
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill $lp $pid 2>/dev/null; wait $lp $pid 2>/dev/null || true
  python3 - "$1" "$OUT/$1.json" "$(( t1 - t0 ))" <<'PY'
import json, sys
label, path, ticks = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = json.load(open(path))
lat, c = r.get("latency_ms", {}), r.get("counters", {})
print(f"{label:8s} server_cpu_s={ticks/100:6.2f} viewers={r.get('peak_viewers')} "
      f"mbit_s={r.get('mean_mbps', 0):.0f} p50_ms={lat.get('p50', 0):.0f} p99_ms={lat.get('p99', 0):.0f} "
      f"stalls={c.get('stalls')} missing={c.get('missing_frames')} failures={len(r.get('failures', []))}")
print(f"CPU {label} {ticks}", file=open(sys.argv[2] + ".cpu", "w"))
PY
}
for i in $(seq 1 "$ROUNDS"); do run_one "A$i" "$A"; run_one "B$i" "$B"; done
python3 - "$OUT" <<'PY'
import glob, sys
cpu = {}
for f in glob.glob(sys.argv[1] + "/*.json.cpu"):
    _, label, ticks = open(f).read().split()
    cpu.setdefault(label[0], []).append(int(ticks))
a, b = sum(cpu["A"]) / len(cpu["A"]), sum(cpu["B"]) / len(cpu["B"])
print(f"mean server CPU: A {a/100:.2f} s, B {b/100:.2f} s, B/A = {b/a:.2f}")
PY
