#!/usr/bin/env bash
# The CDN-tier topology on one machine: one origin ringcast, E edge ringcast processes
# pulling from it (`--origin`), one loadgen publisher into the origin and one loadgen
# play run spreading VIEWERS over the edges (viewer k -> edge k mod E), with histograms
# merged exactly across loadgen's worker processes.
#
#   benches/system/scale.sh [VIEWERS] [EDGES] [DURATION]
#   defaults: 10000 viewers, 6 edges, 30s held at full count (after the ramp)
#
# Why processes: RLIMIT_NOFILE is 20000 per process here and cannot be raised, so no
# single server can hold 100k viewers; each edge holds VIEWERS/EDGES of them.
#
# Environment (all optional):
#   RAMP=2000          viewers started per second (the play run lasts VIEWERS/RAMP + DURATION)
#   SAMPLE=0.02        fraction of viewers that parse frames (latency, missing, stalls)
#   PROTO=http         viewers' protocol at the edges: http (HTTP-FLV) or rtmp
#   SERVER_CPUS=0      CPUs for the servers, comma list: each server runs one reactor
#                      pinned to one CPU, the origin on the first, edge e on entry e mod n
#   LOADGEN_CPUS=1     CPUs for loadgen, comma list: its worker processes are pinned
#                      round-robin over them, the publisher to the last
#   OUT=target/scale   where logs, loadgen's JSON report and the API samples go
#   FPS=5              the publisher's frame rate (same 32 kbit/s): each frame is one send
#                      per viewer, and on loopback a send's TCP work is most of the cost
#   MERGE_WINDOW=20ms  the edges' runtime.send_merge_window (ringcast's default is 20ms):
#                      a viewer woken by a new frame is sent to once per window, so
#                      frames within it leave in one gathered send (SRS's mw_latency)
#   EDGE_RUNTIME=      extra lines for the edges' [runtime] table, e.g. 'ring_entries = 256'
#                      (CQ = 4 x ring_entries: a small CQ reproduces CQ overflow at low counts)
#   NO_BUILD=1         skip `cargo build --release`
#
# Profile: the low-bitrate one from loadgen/README.md (32 kbit/s video, no audio, 5 fps,
# 2 s GOP), so 100k viewers are 3.2 Gbit/s of loopback. Every process is bounded in time
# and killed on exit (trap). Loopback only. Prints viewers connected, failures by kind,
# startup and latency percentiles, stalls, missing frames, CPU seconds and peak RSS of
# every server process (from /proc), and the origin's viewer count for the stream,
# which must equal EDGES: one pull per edge (the exit status is 1 when it does not).
set -euo pipefail
cd "$(dirname "$0")/../.."
VIEWERS=${1:-10000}
EDGES=${2:-6}
HOLD=${3:-30s}
RAMP=${RAMP:-2000}
SAMPLE=${SAMPLE:-0.02}
PROTO=${PROTO:-http}
SERVER_CPUS=${SERVER_CPUS:-0}
LOADGEN_CPUS=${LOADGEN_CPUS:-1}
OUT=${OUT:-target/scale}
MERGE_WINDOW=${MERGE_WINDOW:-20ms}
STREAM=s
FPS=${FPS:-5}

die() { echo "scale.sh: $*" >&2; exit 2; }
[[ $FPS =~ ^[0-9]+$ && $FPS -ge 1 && $FPS -le 60 ]] || die "FPS must be 1..60"
PROFILE=(--bitrate 32k --audio-bitrate 0 --fps "$FPS" --gop 2s)
[[ $VIEWERS =~ ^[0-9]+$ && $VIEWERS -gt 0 ]] || die "VIEWERS must be a positive integer"
[[ $EDGES =~ ^[0-9]+$ && $EDGES -ge 1 && $EDGES -le 64 ]] || die "EDGES must be 1..64"
[[ $HOLD =~ ^([0-9]+)s$ ]] || die "DURATION must be whole seconds, like 30s"
HOLD_S=${BASH_REMATCH[1]}
[[ $PROTO == http || $PROTO == rtmp ]] || die "PROTO must be http or rtmp"
[[ $SERVER_CPUS =~ ^[0-9]+(,[0-9]+)*$ && $LOADGEN_CPUS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "CPU lists look like 0 or 0,1"
IFS=, read -r -a SCPUS <<<"$SERVER_CPUS"
IFS=, read -r -a LCPUS <<<"$LOADGEN_CPUS"
[[ $MERGE_WINDOW =~ ^[0-9]+ms$ ]] || die "MERGE_WINDOW must be milliseconds, like 20ms"
# An edge needs a descriptor per viewer plus its own; keep a margin under the limit.
NOFILE=$(ulimit -Hn)
PER_EDGE=$(( (VIEWERS + EDGES - 1) / EDGES ))
[[ $NOFILE == unlimited || $PER_EDGE -le $(( NOFILE - 1000 )) ]] ||
  die "$PER_EDGE viewers per edge exceed the open-file limit $NOFILE less 1000; use more edges"
RAMP_S=$(python3 -c "import math; print(math.ceil($VIEWERS / $RAMP) if $RAMP > 0 else 0)")
PLAY_S=$(( RAMP_S + HOLD_S ))

mkdir -p "$OUT"
rm -f "$OUT"/{play.json,play.log,publish.log,api.log,procs,loadgen.time} "$OUT"/*.server.log
[[ ${NO_BUILD:-} == 1 ]] || cargo build --release -q -p ringcast -p loadgen
RC=target/release/ringcast
LG=target/release/loadgen

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_up() { for _ in $(seq 50); do curl -sf -m 1 "http://127.0.0.1:$1/api/v1/streams" >/dev/null && return 0; sleep 0.1; done; return 1; }

echo "# $VIEWERS viewers over $EDGES edges ($PER_EDGE each, $PROTO), ramp $RAMP/s (${RAMP_S}s) then ${HOLD_S}s held; sample $SAMPLE; 32 kbit/s $FPS fps 2 s GOP"
printf '[runtime]\nsend_merge_window = "%s"\n%b\n' "$MERGE_WINDOW" "${EDGE_RUNTIME:-}" >"$OUT/edge.toml"
echo "# edges: send_merge_window $MERGE_WINDOW ${EDGE_RUNTIME:-}"
echo "# servers on CPU $SERVER_CPUS, loadgen on CPU $LOADGEN_CPUS; open-file limit $NOFILE per process"
echo "# sysctl: somaxconn=$(sysctl -n net.core.somaxconn) syn_backlog=$(sysctl -n net.ipv4.tcp_max_syn_backlog)" \
     "port_range=$(sysctl -n net.ipv4.ip_local_port_range | tr '\t' '-') tcp_mem=$(sysctl -n net.ipv4.tcp_mem | tr '\t' ' ')"

# Origin: one reactor, publishers only.
# Each server's API and /metrics are on its own loopback admin port (--admin).
O_RTMP=$(free_port); O_HTTP=$(free_port); O_ADMIN=$(free_port)
taskset -c "${SCPUS[0]}" $RC serve --cores 1 --rtmp 127.0.0.1:$O_RTMP --http 127.0.0.1:$O_HTTP --admin 127.0.0.1:$O_ADMIN \
  >"$OUT/origin.server.log" 2>&1 &
pids+=($!); echo "origin $! $O_ADMIN" >"$OUT/procs"
api_up "$O_ADMIN" || die "origin did not start; see $OUT/origin.server.log"

# Edges: one reactor each, pulling over RTMP from the origin on demand.
urls=()
for e in $(seq 1 "$EDGES"); do
  E_RTMP=$(free_port); E_HTTP=$(free_port); E_ADMIN=$(free_port)
  taskset -c "${SCPUS[$(( e % ${#SCPUS[@]} ))]}" $RC serve --config "$OUT/edge.toml" --cores 1 --rtmp 127.0.0.1:$E_RTMP --http 127.0.0.1:$E_HTTP --admin 127.0.0.1:$E_ADMIN \
    --origin "rtmp://127.0.0.1:$O_RTMP/live" >"$OUT/edge$e.server.log" 2>&1 &
  pids+=($!); echo "edge$e $! $E_ADMIN" >>"$OUT/procs"
  api_up "$E_ADMIN" || die "edge $e did not start; see $OUT/edge$e.server.log"
  if [[ $PROTO == http ]]; then urls+=("http://127.0.0.1:$E_HTTP/live/$STREAM.flv"); else urls+=("rtmp://127.0.0.1:$E_RTMP/live/$STREAM"); fi
done

# One publisher into the origin, outliving the viewers.
timeout $(( PLAY_S + 90 )) taskset -c "${LCPUS[-1]}" $LG publish --url "rtmp://127.0.0.1:$O_RTMP/live/$STREAM" \
  "${PROFILE[@]}" --duration $(( PLAY_S + 30 ))s >"$OUT/publish.log" 2>&1 &
pids+=($!)
sleep 3

# Samples every 2 s while viewers play: each server's CPU ticks so far and its API view
# of the stream (the origin's viewer count is the number of pulls). The last sample is
# the servers' CPU before viewers hang up.
(
  end=$(( SECONDS + PLAY_S ))
  while (( SECONDS < end )); do
    while read -r name pid port; do
      printf '%s %s %s %s\n' "$SECONDS" "$name" "$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)" \
        "$(curl -s -m 2 "http://127.0.0.1:$port/api/v1/streams/live/$STREAM" || true)"
    done <"$OUT/procs" >>"$OUT/api.log"
    sleep 2
  done
) &
pids+=($!)

# Every viewer through one loadgen run; `time` covers its waited-for workers. Its
# workers need a while to hang up at the end (see GRACE_PER_CLIENT in loadgen).
IFS=, ; URLS="${urls[*]}"; unset IFS
set +e
/usr/bin/time -f '%e %U %S %M' -o "$OUT/loadgen.time" \
  timeout $(( PLAY_S + 45 + PER_EDGE / 1000 + 30 )) taskset -c "$LOADGEN_CPUS" $LG play --url "$URLS" --viewers "$VIEWERS" \
  --ramp "$RAMP" --sample "$SAMPLE" --setup-timeout 20s --duration ${PLAY_S}s --cores ${#LCPUS[@]} \
  --json "$OUT/play.json" >"$OUT/play.log" 2>&1
rc=$?
set -e
[[ $rc == 0 ]] || echo "loadgen play exited with $rc (see $OUT/play.log)"

# Server cost, read before anything is stopped: CPU since start and peak RSS (VmHWM).
TCK=$(getconf CLK_TCK)
while read -r name pid port; do
  cpu=$(awk -v t="$TCK" '{printf "%.2f %.2f", $14 / t, $15 / t}' "/proc/$pid/stat" 2>/dev/null || echo "? ?")
  hwm=$(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status" 2>/dev/null || echo "?")
  echo "$name $pid $port $cpu $hwm"
done <"$OUT/procs" >"$OUT/procs.cost"

python3 - "$OUT" "$EDGES" "$VIEWERS" "$TCK" "$PLAY_S" <<'PY'
import json, sys
out, edges, viewers, tck, play_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
try:
    r = json.load(open(f"{out}/play.json"))
except Exception as e:
    print(f"no loadgen report ({e})"); r = None
if r:
    c = r["counters"]
    lat, st = r["latency_ms"], r["startup_ms"]
    fails = r.get("failures") or []
    # The last full second: workers still hanging up when killed never send the final one.
    up_end = next((s["viewers_up"] for s in r["timeline"] if s["second"] == play_s - 2), "?")
    print(f"viewers connected: peak {r['peak_viewers']} of {viewers}, up 2 s before the end {up_end}, "
          f"sampled viewers that got a keyframe {c['viewers_playing']}, {r['mean_mbps']:.0f} Mbit/s mean")
    if "workers_killed_after_run" in r["settings"]:
        print(f"loadgen workers killed while hanging up after the run: {r['settings']['workers_killed_after_run']}")
    print("failures: " + (", ".join(f"{f['phase']}/{f['kind']} {f['count']}" for f in fails) if fails else "none"))
    pct = lambda h: f"p50 {h['p50']:.0f}  p90 {h['p90']:.0f}  p99 {h['p99']:.0f}  max {h['max']:.0f} ms ({h['count']} samples)"
    print(f"startup: {pct(st)}")
    print(f"latency: {pct(lat)}")
    if c.get("late_reads"):
        print(f"setup deadlines passed with the answer unread (loadgen behind, judged again): {c['late_reads']}")
    print(f"stalls: {c['stalls']} (>500 ms without video, sampled) + {c['byte_stalls']} byte-level; "
          f"missing frames {c['missing_frames']} of {c['stamped_frames']}")
    t = r["loadgen_turn_ms"]
    print(f"loadgen turn: p99 {t['p99']:.0f} ms, max {t['max']:.0f} ms (near 500 ms, loadgen's own delays are in the stalls)")
# API samples: the origin's viewers are the edges' pulls; edges' viewers at their peak.
origin, edge_peak, cpu_playing = [], {}, {}
for line in open(f"{out}/api.log"):
    parts = line.split(" ", 3)
    if len(parts) < 3:
        continue
    cpu_playing[parts[1]] = int(parts[2]) / tck
    if len(parts) < 4 or not parts[3].strip().startswith("{"):
        continue
    v = json.loads(parts[3]).get("viewers")
    if v is None:  # not live (yet): an error object
        continue
    n = v.get("http_flv", 0) + v.get("rtmp", 0) + v.get("hls", 0)
    if parts[1] == "origin":
        origin.append(n)
    else:
        edge_peak[parts[1]] = max(edge_peak.get(parts[1], 0), n)
ok = origin and max(origin) == edges
print(f"origin viewers of live/s (pulls): max {max(origin) if origin else '?'}, last {origin[-1] if origin else '?'}"
      f" — {'= ' if ok else 'expected '}{edges} edges")
print("edge viewers at peak: " + " ".join(f"{k}={v}" for k, v in sorted(edge_peak.items(), key=lambda kv: int(kv[0][4:]))))
print("server process   CPU s (user + sys)    of which while viewers played   peak RSS MB")
for line in open(f"{out}/procs.cost"):
    name, pid, port, user, sys_, hwm = line.split()
    total = f"{float(user) + float(sys_):.2f}" if "?" not in (user, sys_) else "?"
    print(f"  {name:12s} {total:>7s} ({user} + {sys_})   {cpu_playing.get(name, 0):>10.2f}   {hwm:>16s}")
try:
    wall, user, sys_, rss = open(f"{out}/loadgen.time").read().split()[-4:]
    print(f"loadgen (all workers): {float(user) + float(sys_):.1f} CPU s ({user} user) in {wall} s, largest process {int(rss) // 1024} MB")
except Exception:
    pass
sys.exit(0 if ok else 1)
PY
