#!/usr/bin/env bash
# Plain HTTP-FLV against HTTPS-FLV viewers of one 600 kb/s stream on one ringcast core,
# side by side in one run: the server pinned to CPU 0 with one core and both listeners,
# loadgen (one publisher over RTMP, N viewers) on CPU 1, phases alternating plain, TLS,
# plain, TLS against the same server and stream so drift on a shared machine hits both
# alike. Each phase ramps N viewers, lets them settle, then measures over WINDOW seconds:
# the server's CPU (whole process, /proc ticks, and the core thread's own
# ringcast_reactor_busy_seconds_total) per Gbit of ringcast_sent_bytes_total{protocol=
# "http_flv"} (payload bytes, the same for both), and what the viewers saw.
#
#   N=2000 WINDOW=15 benches/system/tls_ab.sh
#
# The stream: loadgen's synthetic H.264 at 536 kb/s + 64 kb/s audio, 25 fps, 1 s GOP.
# Needs openssl (test CA). Bounded: each phase's loadgen stops by itself
# (ramp + 5 s + WINDOW + 2 s), the publisher and server are killed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-2000} WINDOW=${WINDOW:-15} RAMP=${RAMP:-2000} ROUNDS=${ROUNDS:-2}
cargo build --release -q -p ringcast -p loadgen
TARGET=${CARGO_TARGET_DIR:-target}
RC=$TARGET/release/ringcast LG=$TARGET/release/loadgen
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$OUT"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
. benches/system/test_ca.sh
test_ca "$OUT"
RTMP=$(free_port) HTTP=$(free_port) ADMIN=$(free_port) HTTPS=$(free_port)
taskset -c 0 "$RC" serve --cores 1 --rtmp 127.0.0.1:$RTMP --http 127.0.0.1:$HTTP --admin 127.0.0.1:$ADMIN \
  --https 127.0.0.1:$HTTPS --tls-cert "$OUT/chain.pem" --tls-key "$OUT/key.pem" >"$OUT/ringcast.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:$ADMIN/metrics && break; sleep 0.1; done
taskset -c 1 "$LG" publish --url rtmp://127.0.0.1:$RTMP/live/ab --bitrate 536k --audio-bitrate 64k \
  --duration 900s --cores 1 >/dev/null 2>&1 &
sleep 3
metric() { # sum of family $1's samples whose line contains $2
  curl -s http://127.0.0.1:$ADMIN/metrics |
    awk -v n="$1" -v l="$2" 'index($0, n) == 1 && index($0, l) { s += $NF } END { printf "%.6f", s }'
}
SETTLE=$(python3 -c "print(int($N / $RAMP) + 5)")
phase() { # $1 label, $2 url
  local label=$1 url=$2 lg c0 b0 r0 t0 c1 b1 r1 t1
  taskset -c 1 "$LG" play --url "$url" --ca "$OUT/ca.pem" --viewers "$N" --ramp "$RAMP" --sample 0.05 \
    --duration "$(( SETTLE + WINDOW + 2 ))s" --cores 1 --json "$OUT/$label.json" >/dev/null 2>"$OUT/$label.log" &
  lg=$!
  sleep "$SETTLE"
  t0=$(awk '{print $14+$15}' /proc/$PID/stat) r0=$(metric ringcast_reactor_busy_seconds_total "")
  b0=$(metric ringcast_sent_bytes_total 'protocol="http_flv"')
  sleep "$WINDOW"
  t1=$(awk '{print $14+$15}' /proc/$PID/stat) r1=$(metric ringcast_reactor_busy_seconds_total "")
  b1=$(metric ringcast_sent_bytes_total 'protocol="http_flv"')
  wait $lg || true
  python3 - "$label" "$OUT/$label.json" "$(( t1 - t0 ))" "$r0" "$r1" "$b0" "$b1" "$WINDOW" "$(cut -d' ' -f1 /proc/loadavg)" \
    >>"$OUT/results" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
ticks, r0, r1, b0, b1, window, load = int(sys.argv[3]), *map(float, sys.argv[4:10])
r = json.load(open(path))
c, lat = r["counters"], r["latency_ms"]
cpu, busy, gbit = ticks / 100, r1 - r0, (b1 - b0) * 8 / 1e9
fails = sum(f["count"] for f in r["failures"])
print(f"{label:6s} viewers={r['peak_viewers']} gbit_s={gbit / window:.2f} cpu={cpu / window * 100:.0f}% "
      f"busy={busy / window * 100:.0f}% cpu_s_per_gbit={cpu / gbit:.3f} busy_s_per_gbit={busy / gbit:.3f} "
      f"stalls={c['stalls']} byte_stalls={c['byte_stalls']} missing={c['missing_frames']} failures={fails} "
      f"p50_ms={lat['p50']:.0f} p99_ms={lat['p99']:.0f} load1={load:.2f}")
PY
  tail -1 "$OUT/results"
  sleep 2
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); N=$N WINDOW=${WINDOW}s RAMP=$RAMP/s"
for i in $(seq 1 "$ROUNDS"); do
  phase "plain$i" "http://127.0.0.1:$HTTP/live/ab.flv"
  phase "tls$i" "https://localhost:$HTTPS/live/ab.flv"
done
python3 - "$OUT/results" <<'PY'
import re, sys
per = {}
for line in open(sys.argv[1]):
    kind = "tls" if line.startswith("tls") else "plain"
    m = dict(re.findall(r"(\w+)=([\d.]+)", line))
    per.setdefault(kind, []).append((float(m["cpu_s_per_gbit"]), float(m["busy_s_per_gbit"])))
mean = lambda xs: sum(xs) / len(xs)
p, t = per["plain"], per["tls"]
print(f"CPU per Gbit/s (cores): plain {mean([x for x, _ in p]):.3f}, TLS {mean([x for x, _ in t]):.3f}, "
      f"TLS/plain = {mean([x for x, _ in t]) / mean([x for x, _ in p]):.2f} "
      f"(core thread only: {mean([y for _, y in t]) / mean([y for _, y in p]):.2f})")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
