#!/usr/bin/env bash
# Soak: hours-of-production churn compressed into DURATION, then a check that every
# server process comes back to where it started. Not a test: a benchmark to run by hand.
#
#   benches/system/soak.sh [DURATION]        default 30m (whole seconds or minutes: 300s, 5m)
#
# Topology on loopback: one origin ringcast, two edge ringcast processes pulling from
# it (edge 1 over RTMP, edge 2 over HTTP-FLV; idle pulls close after 5 s), all one
# reactor each. Load, all from target/release/loadgen:
#   * STEADY streams published for the whole run (the publisher is restarted if it dies);
#   * CHURN streams whose publishers reconnect every 4-12 s;
#   * viewers in short runs (5-12 s) one after another, for the steady and the churn
#     streams, spread over HTTP-FLV and RTMP on both edges and on the origin;
#   * once per cycle the origin is stopped (SIGSTOP) for FAULT seconds, then resumed.
# The run is cycles of CYCLE seconds; after each, all load stops and the servers must
# quiesce (no viewers, edges' pulls closed, only the steady streams on the origin).
# Baseline: the quiesced state after one warm-up cycle (allocator and caches warm).
#
# Sampled every SAMPLE_EVERY s into $OUT/samples.log, and at each quiesce point, per
# server process: open fds (/proc/PID/fd), VmRSS (/proc/PID/status), and from /metrics
# ringcast_open_connections (connection slots), ringcast_viewers, ringcast_streams,
# ringcast_publishers. Verdict (exit 1 when any fails):
#   * every quiesce point reached within QUIESCE_LIMIT s;
#   * at the end, per process: fds and connections equal the baseline (fds within
#     FD_SLACK), no viewers, the baseline's streams; RSS at most RSS_GROWTH_MB above
#     the baseline (allocator arenas and buffers grow to their working size in the
#     first cycles and are kept) and at most RSS_SLACK_MB above the largest RSS of
#     the first half of the cycles' quiesce points (no growth in the second half);
#   * nothing stalled outside the injected faults: viewers of the steady streams have
#     no stall, no failure and no missing frame in any second outside a fault window
#     (stop - 2 s .. resume + RECOVER s), and every server answered /metrics within
#     2 s at every sample outside the fault windows (the stopped origin inside them).
# Churn-stream viewers see their publisher leave (early EOF, 404, stalls): counted and
# printed, not judged.
#
# Environment (all optional):
#   CYCLE=60 FAULT=8 RECOVER=20 STEADY=2 CHURN=2 VIEWERS=24 CHURN_VIEWERS=12
#   SAMPLE_EVERY=2 QUIESCE_LIMIT=60 FD_SLACK=0 RSS_GROWTH_MB=16 RSS_SLACK_MB=4
#   SERVER_CPUS=0 LOADGEN_CPUS=1   taskset CPU lists (as in scale.sh)
#   OUT=target/soak                logs (under CARGO_TARGET_DIR when set), loadgen JSON reports, samples
#   NO_BUILD=1                     skip `cargo build --release`
# Every process is bounded in time (timeout) and killed on exit (trap). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-30m}
CYCLE=${CYCLE:-60}
FAULT=${FAULT:-8}
RECOVER=${RECOVER:-20}
STEADY=${STEADY:-2}
CHURN=${CHURN:-2}
VIEWERS=${VIEWERS:-24}
CHURN_VIEWERS=${CHURN_VIEWERS:-12}
SAMPLE_EVERY=${SAMPLE_EVERY:-2}
QUIESCE_LIMIT=${QUIESCE_LIMIT:-60}
FD_SLACK=${FD_SLACK:-0}
RSS_GROWTH_MB=${RSS_GROWTH_MB:-16}
RSS_SLACK_MB=${RSS_SLACK_MB:-4}
SERVER_CPUS=${SERVER_CPUS:-0}
LOADGEN_CPUS=${LOADGEN_CPUS:-1}
OUT=${OUT:-${CARGO_TARGET_DIR:-target}/soak}

die() { echo "soak.sh: $*" >&2; exit 2; }
if [[ $DURATION =~ ^([0-9]+)m$ ]]; then DURATION_S=$(( BASH_REMATCH[1] * 60 ));
elif [[ $DURATION =~ ^([0-9]+)s$ ]]; then DURATION_S=${BASH_REMATCH[1]};
else die "DURATION looks like 30m or 300s"; fi
for v in CYCLE FAULT RECOVER STEADY CHURN VIEWERS CHURN_VIEWERS SAMPLE_EVERY QUIESCE_LIMIT FD_SLACK RSS_GROWTH_MB RSS_SLACK_MB; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done
(( CYCLE >= 30 && FAULT + 10 < CYCLE / 2 )) || die "CYCLE must be >= 30 s and leave room for FAULT"
(( STEADY >= 1 && STEADY <= 16 && CHURN <= 16 && VIEWERS >= 1 && VIEWERS <= 2000 && CHURN_VIEWERS <= 2000 )) ||
  die "STEADY 1..16, CHURN 0..16, VIEWERS 1..2000, CHURN_VIEWERS 0..2000"
[[ $SERVER_CPUS =~ ^[0-9]+(,[0-9]+)*$ && $LOADGEN_CPUS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "CPU lists look like 0 or 0,1"
CYCLES=$(( DURATION_S / CYCLE )); (( CYCLES >= 1 )) || CYCLES=1
# Bounds on everything: the steady publisher outlives the whole run by a margin.
TOTAL_S=$(( (CYCLES + 1) * (CYCLE + QUIESCE_LIMIT + 5) + 60 ))
PROFILE=(--bitrate 200k --audio-bitrate 32k --fps 15 --gop 1s)

mkdir -p "$OUT"
rm -rf "$OUT"/{runs,samples.log,cpu.log,faults,procs,quiesce.log,*.log,*.toml,*.restarts}
mkdir -p "$OUT/runs"
[[ ${NO_BUILD:-} == 1 ]] || cargo build --release -q -p ringcast -p loadgen
RC=${CARGO_TARGET_DIR:-target}/release/ringcast
LG=${CARGO_TARGET_DIR:-target}/release/loadgen
[[ -x $RC && -x $LG ]] || die "$RC or $LG missing (build them, or run without NO_BUILD)"

# Servers and the long-lived loops; each cycle's loops are in cycle_pids. A loop's
# loadgen runs under `timeout`, which passes the TERM on, so killing a loop's
# children (by parent id) and then the loop stops everything it started.
pids=()
cycle_pids=()
cleanup() {
  [[ -n ${O_PID:-} ]] && kill -CONT "$O_PID" 2>/dev/null || true
  for p in "${cycle_pids[@]}" "${pids[@]}"; do
    pkill -TERM -P "$p" 2>/dev/null || true
    kill "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_up() { for _ in $(seq 100); do curl -sf -m 1 "http://127.0.0.1:$1/api/v1/streams" >/dev/null && return 0; sleep 0.1; done; return 1; }
# Sum of a metric's samples on the server at admin port $1 ("-" when it did not answer in 2 s).
metrics_of() { curl -sf -m 2 "http://127.0.0.1:$1/metrics" || echo "__no_answer__"; }
sum_of() { awk -v n="$1" '/__no_answer__/ {bad=1} $1==n || index($1, n"{")==1 {s+=$NF} END {if (bad) print "-"; else printf "%d\n", s}'; }

# Servers.
# Each server's API and /metrics are on its own loopback admin port (--admin);
# "procs" lines are: name pid admin_port rtmp_port.
O_RTMP=$(free_port); O_HTTP=$(free_port); O_ADMIN=$(free_port)
taskset -c "$SERVER_CPUS" $RC serve --cores 1 --rtmp 127.0.0.1:$O_RTMP --http 127.0.0.1:$O_HTTP \
  --admin 127.0.0.1:$O_ADMIN >"$OUT/origin.log" 2>&1 &
O_PID=$!; pids+=($O_PID); echo "origin $O_PID $O_ADMIN $O_RTMP" >"$OUT/procs"
api_up "$O_ADMIN" || die "origin did not start; see $OUT/origin.log"
declare -a E_HTTP E_RTMP E_ADMIN
for e in 1 2; do
  if (( e == 1 )); then origin="rtmp://127.0.0.1:$O_RTMP/live"; else origin="http://127.0.0.1:$O_HTTP"; fi
  printf '[edge]\norigins = ["%s"]\nidle_close = "5s"\n' "$origin" >"$OUT/edge$e.toml"
  E_RTMP[$e]=$(free_port); E_HTTP[$e]=$(free_port); E_ADMIN[$e]=$(free_port)
  taskset -c "$SERVER_CPUS" $RC serve --config "$OUT/edge$e.toml" --cores 1 \
    --rtmp 127.0.0.1:${E_RTMP[$e]} --http 127.0.0.1:${E_HTTP[$e]} --admin 127.0.0.1:${E_ADMIN[$e]} >"$OUT/edge$e.log" 2>&1 &
  pids+=($!); echo "edge$e $! ${E_ADMIN[$e]} ${E_RTMP[$e]}" >>"$OUT/procs"
  api_up "${E_ADMIN[$e]}" || die "edge $e did not start; see $OUT/edge$e.log"
done

# Play URLs of stream prefix $1 (loadgen puts the stream index at {i}): HTTP-FLV and
# RTMP on every server, so viewer k plays url[k mod 6].
urls_of() {
  local p=$1 list=()
  for hp in "$O_HTTP $O_RTMP" "${E_HTTP[1]} ${E_RTMP[1]}" "${E_HTTP[2]} ${E_RTMP[2]}"; do
    read -r h r <<<"$hp"
    list+=("http://127.0.0.1:$h/live/$p{i}.flv" "rtmp://127.0.0.1:$r/live/$p{i}")
  done
  local IFS=,; echo "${list[*]}"
}
STEADY_URLS=$(urls_of steady)
CHURN_URLS=$(urls_of churn)

# The steady publishers: one loadgen process for all STEADY streams, restarted if it exits.
(
  end=$(( SECONDS + TOTAL_S ))
  while (( SECONDS < end )); do
    echo "$(now) start" >>"$OUT/steady_publisher.restarts"
    timeout $(( TOTAL_S + 30 )) taskset -c "$LOADGEN_CPUS" $LG publish --url "rtmp://127.0.0.1:$O_RTMP/live/steady{i}" \
      --streams "$STEADY" "${PROFILE[@]}" --duration "${TOTAL_S}s" >>"$OUT/steady_publisher.log" 2>&1 || true
    sleep 1
  done
) &
pids+=($!)
for _ in $(seq 100); do
  [[ $(metrics_of "$O_ADMIN" | sum_of ringcast_publishers) == "$STEADY" ]] && break; sleep 0.2
done

# Background sampler: every SAMPLE_EVERY s, one line per server process.
sample_line() {  # name pid port -> "name fds rss_kb conns viewers streams publishers"
  local name=$1 pid=$2 port=$3 m fds rss
  fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  m=$(metrics_of "$port")
  echo "$name $fds $rss $(sum_of ringcast_open_connections <<<"$m") $(sum_of ringcast_viewers <<<"$m")" \
       "$(sum_of ringcast_streams <<<"$m") $(sum_of ringcast_publishers <<<"$m")"
}
(
  end=$(( SECONDS + TOTAL_S ))
  while (( SECONDS < end )); do
    t=$(now)
    while read -r name pid port _; do echo "$t $(sample_line "$name" "$pid" "$port")"; done <"$OUT/procs"
    # Whole-machine context for any stall: per-CPU jiffies (busy = not idle/iowait).
    awk -v t="$t" '/^cpu[0-9]/ {printf "%s %s %d %d\n", t, $1, $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat >>"$OUT/cpu.log"
    sleep "$SAMPLE_EVERY"
  done >>"$OUT/samples.log"
) &
pids+=($!)

# Viewer runs one after another until $2 (SECONDS): $1 = steady|churn.
viewer_loop() {
  local kind=$1 until=$2 n=0 urls count streams d
  if [[ $kind == steady ]]; then urls=$STEADY_URLS count=$VIEWERS streams=$STEADY
  else urls=$CHURN_URLS count=$CHURN_VIEWERS streams=$CHURN; fi
  (( count > 0 && streams > 0 )) || return 0
  while (( SECONDS + 5 < until )); do
    d=$(( 5 + RANDOM % 8 )); (( SECONDS + d <= until )) || d=$(( until - SECONDS ))
    n=$((n + 1))
    local json="$OUT/runs/$kind-$CYCLE_NO-$n.json"
    echo "$(now) $json" >>"$OUT/runs/$kind.index"
    timeout $(( d + 40 )) taskset -c "$LOADGEN_CPUS" $LG play --url "$urls" --streams "$streams" \
      --viewers "$count" --ramp 0 --sample 1 --setup-timeout 10s --duration "${d}s" --cores 1 \
      --json "$json" >>"$OUT/$kind-viewers.log" 2>&1 || true
  done
}

# Churn publishers: each CHURN stream reconnects every 4-12 s until $1 (SECONDS).
churn_publishers() {
  local until=$1 i
  for (( i = 0; i < CHURN; i++ )); do
    (
      while (( SECONDS + 4 < until )); do
        d=$(( 4 + RANDOM % 9 )); (( SECONDS + d <= until )) || d=$(( until - SECONDS ))
        timeout $(( d + 20 )) taskset -c "$LOADGEN_CPUS" $LG publish --url "rtmp://127.0.0.1:$O_RTMP/live/churn$i" \
          "${PROFILE[@]}" --duration "${d}s" >>"$OUT/churn_publishers.log" 2>&1 || true
        sleep 0.$(( RANDOM % 10 ))
      done
    ) &
    cycle_pids+=($!)
  done
}

# Waits until all load is gone: no viewers anywhere, edges without streams, the origin
# with exactly the steady streams and publishers. Prints the seconds it took, or fails.
quiesce() {
  local start=$SECONDS ok line
  while (( SECONDS - start < QUIESCE_LIMIT )); do
    ok=1
    while read -r name pid port _; do
      read -r _ _ _ _ viewers streams pubs <<<"$(sample_line "$name" "$pid" "$port")"
      if [[ $name == origin ]]; then want=$STEADY; else want=0; fi
      [[ $viewers == 0 && $streams == "$want" && $pubs == "$want" ]] || ok=0
    done <"$OUT/procs"
    (( ok )) && { echo $(( SECONDS - start )); return 0; }
    sleep 1
  done
  echo "timeout"; return 1
}

# Snapshot of every process at a quiesce point: "label name fds rss_kb conns viewers streams publishers".
snapshot() { while read -r name pid port _; do echo "$1 $(sample_line "$name" "$pid" "$port")"; done <"$OUT/procs"; }

run_cycle() {  # $1 = cycle label, $2 = seconds of churn
  CYCLE_NO=$1
  local until=$(( SECONDS + $2 )) fault_at=$(( SECONDS + $2 * 3 / 10 ))
  cycle_pids=()
  viewer_loop steady "$until" &
  cycle_pids+=($!)
  viewer_loop churn "$until" &
  cycle_pids+=($!)
  churn_publishers "$until"
  while (( SECONDS < fault_at )); do sleep 0.5; done
  local f0; f0=$(now)
  kill -STOP "$O_PID"; sleep "$FAULT"; kill -CONT "$O_PID"
  echo "$f0 $(now)" >>"$OUT/faults"
  while (( SECONDS < until )); do sleep 0.5; done
  wait "${cycle_pids[@]}"  # they end by themselves at $until
  cycle_pids=()
  local q rc=0
  q=$(quiesce) || rc=1
  echo "$1 $q" >>"$OUT/quiesce.log"
  snapshot "$1" >>"$OUT/snapshots.log"
  return $rc
}

echo "# soak: $CYCLES cycles of ${CYCLE}s (+1 warm-up), origin stopped ${FAULT}s per cycle; $STEADY steady + $CHURN churn streams;" \
     "$VIEWERS + $CHURN_VIEWERS viewers per run over HTTP-FLV and RTMP on origin + 2 edges; servers on CPU $SERVER_CPUS, loadgen on CPU $LOADGEN_CPUS"
: >"$OUT/snapshots.log"
snapshot cold >>"$OUT/snapshots.log"
failed=0
run_cycle warmup "$(( CYCLE / 2 ))" || { echo "warm-up did not quiesce"; failed=1; }
sed -n 's/^warmup /baseline /p' "$OUT/snapshots.log" >>"$OUT/snapshots.log"
for c in $(seq 1 "$CYCLES"); do
  run_cycle "$c" "$CYCLE" || { echo "cycle $c did not quiesce within ${QUIESCE_LIMIT}s"; failed=1; }
  echo "cycle $c/$CYCLES done, quiesced in $(awk -v c="$c" '$1==c {print $2}' "$OUT/quiesce.log") s"
done

python3 - "$OUT" "$FAULT" "$RECOVER" "$FD_SLACK" "$RSS_GROWTH_MB" "$RSS_SLACK_MB" "$failed" <<'PY'
import glob, json, os, sys
out, fault_s, recover, fd_slack, growth_mb, rss_mb, failed = sys.argv[1], *map(float, sys.argv[2:7]), int(sys.argv[7])
faults = [tuple(map(float, l.split())) for l in open(f"{out}/faults")]
windows = [(a - 2, b + recover) for a, b in faults]
in_fault = lambda t: any(a <= t <= b for a, b in windows)
bad = []

# Quiesce points: per process, fds / RSS / connections / viewers / streams.
snaps = {}
for line in open(f"{out}/snapshots.log"):
    label, name, fds, rss, conns, viewers, streams, pubs = line.split()
    snaps.setdefault(label, {})[name] = dict(fds=fds, rss=rss, conns=conns, viewers=viewers, streams=streams, pubs=pubs)
labels = [l for l in snaps if l not in ("cold", "warmup")]
names = list(snaps["baseline"])
print("\nquiesce points (fds / RSS MiB / connections / viewers / streams):")
print("%-10s" % "point" + "".join("%-34s" % n for n in names))
for label in ["cold"] + labels:
    row = ["%s / %.1f / %s / %s / %s" % (s["fds"], int(s["rss"]) / 1024, s["conns"], s["viewers"], s["streams"])
           for s in (snaps[label][n] for n in names)]
    print("%-10s" % label + "".join("%-34s" % r for r in row))
last = labels[-1]
for n in names:
    b, e = snaps["baseline"][n], snaps[last][n]
    if "-" in (e["fds"], e["conns"]) or int(e["fds"]) - int(b["fds"]) > fd_slack or int(e["fds"]) < int(b["fds"]) - fd_slack:
        bad.append(f"{n}: fds {b['fds']} at baseline, {e['fds']} at the end")
    if e["conns"] != b["conns"]:
        bad.append(f"{n}: connections {b['conns']} at baseline, {e['conns']} at the end")
    if e["viewers"] != "0" or e["streams"] != b["streams"]:
        bad.append(f"{n}: viewers {e['viewers']} / streams {e['streams']} at the end (baseline {b['streams']} streams)")
    end_kb, base_kb = int(e["rss"]), int(b["rss"])
    if end_kb > base_kb + growth_mb * 1024:
        bad.append(f"{n}: RSS {end_kb/1024:.1f} MiB at the end, more than {growth_mb:.0f} MiB above the baseline {base_kb/1024:.1f}")
    first_half = labels[: max(1, (len(labels) + 1) // 2)]
    warm_kb = max(int(snaps[l][n]["rss"]) for l in ["baseline"] + first_half[1:])
    if len(labels) > 2 and end_kb > warm_kb + rss_mb * 1024:
        bad.append(f"{n}: RSS {end_kb/1024:.1f} MiB at the end, more than {rss_mb:.0f} MiB above the first half's {warm_kb/1024:.1f} (still growing)")

# Servers answering: every sample outside a fault window (the origin is stopped inside).
samples = [l.split() for l in open(f"{out}/samples.log")]
peak = {}
for t, name, fds, rss, conns, *_ in samples:
    now = (int(fds), int(rss), int(conns) if conns != "-" else 0)
    peak[name] = tuple(max(a, b) for a, b in zip(peak.get(name, now), now))
    if conns == "-" and not in_fault(float(t)):
        bad.append(f"{name}: /metrics did not answer within 2 s at {float(t):.0f}, outside any fault")
print("\npeak over %d samples (fds / RSS MiB / connections): %s" % (
    len(samples) // max(1, len(names)),
    ", ".join("%s %d / %.1f / %d" % (n, p[0], p[1] / 1024, p[2]) for n, p in peak.items())))

# Viewer runs: per-second stalls / failures / missing frames, placed in wall time.
def runs(kind):
    path = f"{out}/runs/{kind}.index"
    for line in open(path) if os.path.exists(path) else []:
        start, js = line.split()
        try:
            yield float(start), json.load(open(js))
        except (OSError, ValueError):
            yield float(start), None
cpu = {}
for line in open(f"{out}/cpu.log"):
    t, name, busy, idle = line.split()
    cpu.setdefault(name, []).append((float(t), int(busy), int(idle)))
def cpu_near(bad_seconds):
    ts = sorted({float(b.split()[1].rstrip(":")) for b in bad_seconds})
    lo, hi = ts[0] - 3, ts[-1] + 3
    parts = []
    for name, rows in sorted(cpu.items()):
        inside = [r for r in rows if lo <= r[0] <= hi]
        if len(inside) >= 2:
            (t0, b0, i0), (t1, b1, i1) = inside[0], inside[-1]
            parts.append("%s %.0f%%" % (name, 100.0 * (b1 - b0) / max(1, (b1 - b0) + (i1 - i0))))
    return ", ".join(parts) or "no samples"
for kind in ("steady", "churn"):
    n = played = stalls = fails = missing = 0
    clean_bad = []
    reports = 0
    for start, r in runs(kind):
        n += 1
        if r is None:
            if kind == "steady" and not in_fault(start):
                clean_bad.append(f"run at {start:.0f} wrote no report")
            continue
        reports += 1
        c = r["counters"]
        played += c["viewers_playing"]; stalls += c["stalls"]; missing += c["missing_frames"]
        fails += sum(f["count"] for f in r["failures"])
        for s in r["timeline"]:
            t = start + s["second"]
            if (s["stalls"] or s["failures"] or s["missing_frames"]) and not in_fault(t):
                clean_bad.append(f"second {t:.0f}: {s['stalls']} stalls, {s['failures']} failures, {s['missing_frames']} missing")
    print(f"{kind} viewers: {n} runs ({reports} reports), {played} viewers played, {stalls} stalls, {fails} failures, {missing} missing frames in all"
          + (f"; outside faults: {len(clean_bad)} bad seconds" if kind == "steady" else " (not judged: their publishers leave)"))
    if kind == "steady" and clean_bad:
        print("  CPU busy %% around those seconds (from /proc/stat, all processes on the box): " + cpu_near(clean_bad))
    if kind == "steady":
        if played == 0:
            bad.append("no steady viewer ever played")
        bad += [f"steady viewers, {b}" for b in clean_bad[:20]]
restarts = sum(1 for _ in open(f"{out}/steady_publisher.restarts")) - 1
if restarts:
    print(f"steady publisher restarted {restarts} times")
print(f"faults injected: {len(faults)} origin stops of {fault_s:.0f} s")
whole = []
for name, rows in sorted(cpu.items()):
    (t0, b0, i0), (t1, b1, i1) = rows[0], rows[-1]
    whole.append("%s %.0f%%" % (name, 100.0 * (b1 - b0) / max(1, (b1 - b0) + (i1 - i0))))
print("CPU busy over the run (whole box, incl. loadgen and anything else running): " + ", ".join(whole))
if failed:
    bad.append("a quiesce point was not reached (see quiesce.log)")
print("\nverdict: " + ("FLAT: fds, connections, viewers and streams back to baseline, RSS flat, no stall outside the faults" if not bad else "NOT FLAT"))
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
