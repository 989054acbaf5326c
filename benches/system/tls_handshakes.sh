#!/usr/bin/env bash
# TLS handshakes per second on one ringcast core: the server pinned to CPU 0 with one
# core, `loadgen handshakes` on CPU 1 with C clients that each connect, complete a full
# TLS 1.3 handshake (ECDSA P-256 certificate from a test CA, X25519 key exchange, no
# resumption), send FIN, wait for the server's FIN and start again. Prints the rate
# loadgen saw, the server's CPU over the run (whole process, /proc ticks), and the
# rate per server CPU-second: handshakes/s one fully busy core would complete. With
# loadgen on one core, the client's own side (two ECDSA verifications per handshake)
# may be what limits the rate, so the per-CPU-second figure is the server's capacity.
#
#   C=64 DURATION=10s benches/system/tls_handshakes.sh [https|rtmps]
#
# Needs openssl (test CA). Bounded: loadgen stops after DURATION, the server is killed.
set -euo pipefail
cd "$(dirname "$0")/../.."
C=${C:-64} DURATION=${DURATION:-10s} PROTO=${1:-https}
cargo build --release -q -p ringcast -p loadgen
TARGET=${CARGO_TARGET_DIR:-target}
RC=$TARGET/release/ringcast LG=$TARGET/release/loadgen
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$OUT"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
. benches/system/test_ca.sh
test_ca "$OUT"
RTMP=$(free_port) HTTP=$(free_port) ADMIN=$(free_port) HTTPS=$(free_port) RTMPS=$(free_port)
taskset -c 0 "$RC" serve --cores 1 --rtmp 127.0.0.1:$RTMP --http 127.0.0.1:$HTTP --admin 127.0.0.1:$ADMIN \
  --https 127.0.0.1:$HTTPS --rtmps 127.0.0.1:$RTMPS --tls-cert "$OUT/chain.pem" --tls-key "$OUT/key.pem" \
  >"$OUT/ringcast.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:$ADMIN/metrics && break; sleep 0.1; done
case $PROTO in
  https) URL=https://localhost:$HTTPS/ ;;
  rtmps) URL=rtmps://localhost:$RTMPS/live/x ;;
  *) echo "usage: $0 [https|rtmps]" >&2; exit 2 ;;
esac
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
T0=$(awk '{print $14+$15}' /proc/$PID/stat)
taskset -c 1 "$LG" handshakes --url "$URL" --ca "$OUT/ca.pem" --connections "$C" --duration "$DURATION" \
  --cores 1 --json "$OUT/r.json" >/dev/null 2>"$OUT/loadgen.log"
T1=$(awk '{print $14+$15}' /proc/$PID/stat)
OK=$(curl -s http://127.0.0.1:$ADMIN/metrics | awk '/^ringcast_tls_handshakes_total\{result="ok"\}/ { print $NF }')
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT/r.json" "$(( T1 - T0 ))" "$OK" "$C" "$PROTO" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ticks, server_ok, c, proto = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
n, d = r["counters"]["tls_handshakes"], r["duration_s"]
cpu = ticks / 100
h = r["tls_handshake_ms"]
fails = sum(f["count"] for f in r["failures"])
# Steady state: the per-second counts without the first and the last second.
mid = [s["tls_handshakes"] for s in r["timeline"][1:-1]] or [0]
print(f"{proto}: {c} clients, {d:.1f} s: loadgen {n} handshakes ({n / d:.0f}/s, steady {sum(mid) / len(mid):.0f}/s), "
      f"server counted {server_ok:.0f} ok, failures {fails}")
print(f"  handshake (connect start -> server Finished) p50 {h['p50']:.2f} ms p99 {h['p99']:.2f} ms")
if cpu > 0:
    print(f"  server CPU {cpu:.2f} s = {cpu / d * 100:.0f}% of one core -> {server_ok / cpu:.0f} handshakes per server CPU-second")
PY
