#!/usr/bin/env bash
# CPU of one ringcast core serving N HTTP-FLV viewers, then N HTTPS-FLV viewers (curl),
# of one ffmpeg stream (640x360, ~680 kb/s with audio), alternating plain, TLS, plain, TLS
# so drift on a shared machine hits both alike. CPU is ringcast_reactor_busy_seconds_total
# (the core thread's own CPU time), per byte of ringcast_sent_bytes_total{protocol="http_flv"},
# over the same WINDOW seconds of each phase.
#
#   N=200 WINDOW=10 benches/system/tls_side_by_side.sh
#
# Needs ffmpeg, curl, openssl. Bounded: ffmpeg stops after 150 s, everything is killed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-100} WINDOW=${WINDOW:-15}
cargo build --release -q -p ringcast
TARGET=${CARGO_TARGET_DIR:-target}
RC=$TARGET/release/ringcast
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$OUT"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RTMP=$(free_port) HTTP=$(free_port) ADMIN=$(free_port) HTTPS=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null
"$RC" serve --cores 1 --rtmp 127.0.0.1:$RTMP --http 127.0.0.1:$HTTP --admin 127.0.0.1:$ADMIN \
  --https 127.0.0.1:$HTTPS --tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem" 2>"$OUT/ringcast.log" &
sleep 1
ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc2=size=640x360:rate=25 \
  -f lavfi -i sine=frequency=440 -c:v libx264 -preset ultrafast -tune zerolatency -b:v 600k \
  -maxrate 600k -bufsize 600k -g 50 -pix_fmt yuv420p -c:a aac -b:a 64k -t 150 \
  -f flv rtmp://127.0.0.1:$RTMP/live/x 2>"$OUT/ffmpeg.log" &
sleep 4
metric() { # sum of family $1's samples whose line contains $2
  curl -s http://127.0.0.1:$ADMIN/metrics |
    awk -v n="$1" -v l="$2" 'index($0, n) == 1 && index($0, l) { s += $NF } END { printf "%.6f", s }'
}
phase() { # $1 label, $2 url, then extra curl arguments
  local label=$1 url=$2; shift 2
  local pids=()
  for _ in $(seq 1 "$N"); do curl -s -o /dev/null "$@" "$url" & pids+=($!); done
  sleep 5
  local c0 b0 c1 b1
  c0=$(metric ringcast_reactor_busy_seconds_total "") b0=$(metric ringcast_sent_bytes_total 'protocol="http_flv"')
  sleep "$WINDOW"
  c1=$(metric ringcast_reactor_busy_seconds_total "") b1=$(metric ringcast_sent_bytes_total 'protocol="http_flv"')
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  python3 -c "c = $c1 - $c0; b = $b1 - $b0; print(f'$label: viewers=$N cpu={c:.3f}s over ${WINDOW}s \
({c / $WINDOW * 100:.1f}% of a core) sent={b / 1e6:.1f}MB cpu_per_GB={c / (b / 1e9):.2f}s \
cpu_per_viewer={c / $WINDOW / $N * 1e6:.0f}us/s')"
  sleep 2
}
phase plain "http://127.0.0.1:$HTTP/live/x.flv"
phase tls "https://127.0.0.1:$HTTPS/live/x.flv" --cacert "$OUT/cert.pem"
phase plain "http://127.0.0.1:$HTTP/live/x.flv"
phase tls "https://127.0.0.1:$HTTPS/live/x.flv" --cacert "$OUT/cert.pem"
