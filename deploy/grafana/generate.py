#!/usr/bin/env python3
"""Generates ringcast.json, the Grafana dashboard for ringcast's metrics.

The dashboard is kept as code so panels stay consistent (same variables, units,
layout); run `python3 deploy/grafana/generate.py [OUT]` after editing and commit both.
tests/metrics_grafana.rs checks every series it uses is one ringcast exports and
that every query parses as PromQL.
"""

import json
import os
import sys

SEL = 'instance=~"$instance"'
RATE = "$__rate_interval"

panels = []
_next_id = [1]
_y = [0]


def _id():
    i = _next_id[0]
    _next_id[0] += 1
    return i


def row(title):
    panels.append({"type": "row", "title": title, "id": _id(), "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": _y[0]}, "panels": []})
    _y[0] += 1


def _targets(queries):
    return [{"datasource": {"type": "prometheus", "uid": "${datasource}"}, "expr": expr,
             "legendFormat": legend, "refId": chr(ord("A") + i)}
            for i, (expr, legend) in enumerate(queries)]


def timeseries_row(specs):
    """specs: list of (title, unit, [(expr, legend)], description); laid out side by side."""
    width = 24 // len(specs)
    for n, (title, unit, queries, description) in enumerate(specs):
        panels.append({
            "type": "timeseries", "title": title, "description": description, "id": _id(),
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": width, "x": n * width, "y": _y[0]},
            "fieldConfig": {"defaults": {"unit": unit, "custom": {"fillOpacity": 10, "lineWidth": 1}},
                            "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi", "sort": "desc"}},
            "targets": _targets(queries),
        })
    _y[0] += 8


def stat_row(specs):
    width = 24 // len(specs)
    for n, (title, unit, expr) in enumerate(specs):
        panels.append({
            "type": "stat", "title": title, "id": _id(),
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 4, "w": width, "x": n * width, "y": _y[0]},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area"},
            "targets": _targets([(expr, "")]),
        })
    _y[0] += 4


def quantile(q):
    return (f"histogram_quantile({q}, sum by (le) (rate(ringcast_server_latency_seconds_bucket{{{SEL}}}[{RATE}])))",
            f"p{int(q * 100)}")


row("Overview")
stat_row([
    ("Viewers", "short", f"sum(ringcast_viewers{{{SEL}}})"),
    ("Streams", "short", f"sum(ringcast_streams{{{SEL}}})"),
    ("Publishers", "short", f"sum(ringcast_publishers{{{SEL}}})"),
    ("Egress", "bps", f"sum(rate(ringcast_sent_bytes_total{{{SEL}}}[{RATE}])) * 8"),
    ("Latency p99", "s", quantile(0.99)[0]),
    ("Boxes up", "short", f"count(ringcast_build_info{{{SEL}}})"),
])

row("Audience and traffic")
timeseries_row([
    ("Viewers by protocol", "short", [(f"sum by (protocol) (ringcast_viewers{{{SEL}}})", "{{protocol}}")],
     "Viewers attached, summed over cores and boxes."),
    ("Egress by protocol", "bps",
     [(f"sum by (protocol) (rate(ringcast_sent_bytes_total{{{SEL}}}[{RATE}])) * 8", "{{protocol}}")],
     "Bits per second written to viewer sockets."),
    ("Ingest by source", "bps",
     [(f"sum by (source) (rate(ringcast_received_bytes_total{{{SEL}}}[{RATE}])) * 8", "{{source}}")],
     "Media bits per second from publishers and origin pulls."),
])
timeseries_row([
    ("Frames sent / s", "short",
     [(f"sum by (protocol) (rate(ringcast_sent_frames_total{{{SEL}}}[{RATE}]))", "{{protocol}}")],
     "One per viewer per frame."),
    ("Frames received / s", "short",
     [(f"sum by (source) (rate(ringcast_received_frames_total{{{SEL}}}[{RATE}]))", "{{source}}")], ""),
    ("GOP cache", "bytes", [(f"sum by (instance) (ringcast_gop_cache_bytes{{{SEL}}})", "{{instance}}")],
     "Memory held by GOP caches, cross-core replicas included."),
])

row("Connections")
timeseries_row([
    ("Accepted / s", "short",
     [(f"sum by (listener) (rate(ringcast_connections_accepted_total{{{SEL}}}[{RATE}]))", "{{listener}}")], ""),
    ("Refused / s", "short",
     [(f"sum by (reason) (rate(ringcast_connections_refused_total{{{SEL}}}[{RATE}]))", "{{reason}}")],
     "Limits reached, auth failures, duplicate publishes, unknown streams."),
    ("Closed / s", "short",
     [(f"sum by (reason) (rate(ringcast_connections_closed_total{{{SEL}}}[{RATE}]))", "{{reason}}")], ""),
])
timeseries_row([
    ("Open connections", "short",
     [(f"sum by (listener) (ringcast_open_connections{{{SEL}}})", "{{listener}}")], ""),
    ("Accept errors / s", "short",
     [(f"sum by (errno) (rate(ringcast_accept_errors_total{{{SEL}}}[{RATE}]))", "{{errno}}")],
     "emfile: raise LimitNOFILE; enfile: raise fs.file-max (see tuning/)."),
    ("Failures / s", "short",
     [(f"sum by (side) (rate(ringcast_failures_total{{{SEL}}}[{RATE}]))", "{{side}}")],
     "Sessions ended by an error, by side."),
])

row("Delivery quality")
timeseries_row([
    ("Server latency", "s", [quantile(0.5), quantile(0.9), quantile(0.99)],
     "Frame received (on the core that ingested it) to viewer send completed, cross-core hop "
     "included; microsecond resolution, buckets from 10 µs."),
    ("Dropped frames / s", "short",
     [(f"sum by (reason) (rate(ringcast_dropped_frames_total{{{SEL}}}[{RATE}]))", "{{reason}}")],
     "slow_viewer: skipped non-keyframes for lagging viewers; queue_cap: a bounded queue was full "
     "(per-send cap, cross-core media backlog); mesh_gap: frames a cross-core replica missed or "
     "skipped until the next keyframe."),
    ("Slow viewer closes / s", "short",
     [(f"sum(rate(ringcast_slow_viewer_closes_total{{{SEL}}}[{RATE}]))", "closes")], ""),
])
timeseries_row([
    ("Origin pulls / s", "short", [
        (f"sum(rate(ringcast_origin_pull_attempts_total{{{SEL}}}[{RATE}]))", "attempts"),
        (f"sum(rate(ringcast_origin_pull_failures_total{{{SEL}}}[{RATE}]))", "failures"),
        (f"sum(rate(ringcast_origin_pull_recoveries_total{{{SEL}}}[{RATE}]))", "recoveries"),
    ], ""),
])

row("Reactor")
timeseries_row([
    ("Reactor busy (CPU)", "percentunit",
     [(f"ringcast_reactor_busy_ratio{{{SEL}}}", "{{instance}} core {{core}}")],
     "CPU share of each core thread (user + system, kernel send work included) over the last "
     "second. Near 1.0 = saturated; size a box to keep it below ~0.7 at peak."),
    ("Sends per submit", "short",
     [(f"ringcast_reactor_sends_per_submit{{{SEL}}}", "{{instance}} core {{core}}")],
     "Batching: send operations per io_uring_enter."),
    ("Submits / s", "short",
     [(f"sum by (core) (rate(ringcast_reactor_submits_total{{{SEL}}}[{RATE}]))", "core {{core}}")], ""),
])
timeseries_row([
    ("Sends per viewer per second", "short",
     [(f"ringcast_reactor_sends_per_viewer_per_second{{{SEL}}}", "{{instance}} core {{core}}")],
     "Each send pays a fixed kernel cost: fewer sends per viewer = more viewers per core."),
    ("Sends / s", "short",
     [(f"sum by (core) (rate(ringcast_reactor_sends_total{{{SEL}}}[{RATE}]))", "core {{core}}")], ""),
    ("CPU seconds per send", "s",
     [(f"sum by (core) (rate(ringcast_reactor_busy_seconds_total{{{SEL}}}[{RATE}])) / "
       f"sum by (core) (rate(ringcast_reactor_sends_total{{{SEL}}}[{RATE}]))", "core {{core}}")],
     "Core CPU per send: with sends per viewer per second, how many viewers a core holds."),
])
timeseries_row([
    ("Frames per send", "short", [
        (f"sum by (core) (rate(ringcast_reactor_send_frames_sum{{{SEL}}}[{RATE}])) / "
         f"sum by (core) (rate(ringcast_reactor_send_frames_count{{{SEL}}}[{RATE}]))",
         "mean core {{core}}"),
        (f"histogram_quantile(0.5, sum by (le) (rate(ringcast_reactor_send_frames_bucket{{{SEL}}}[{RATE}])))",
         "p50"),
    ], "Media frames carried per send; 1 is the costliest."),
    ("Bytes per send", "bytes", [
        (f"sum by (core) (rate(ringcast_reactor_send_bytes_sum{{{SEL}}}[{RATE}])) / "
         f"sum by (core) (rate(ringcast_reactor_send_bytes_count{{{SEL}}}[{RATE}]))",
         "mean core {{core}}"),
        (f"histogram_quantile(0.99, sum by (le) (rate(ringcast_reactor_send_bytes_bucket{{{SEL}}}[{RATE}])))",
         "p99"),
    ], ""),
])

dashboard = {
    "uid": "ringcast-edge",
    "title": "ringcast edge",
    "description": "Live-streaming edge: viewers, traffic, connections, delivery quality, reactor load.",
    "tags": ["ringcast", "streaming"],
    "timezone": "browser",
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "refresh": "10s",
    "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source",
         "current": {}, "hide": 0},
        {"name": "instance", "type": "query", "label": "Instance",
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": {"query": "label_values(ringcast_build_info, instance)", "refId": "instance"},
         "definition": "label_values(ringcast_build_info, instance)",
         "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2, "current": {}, "hide": 0},
    ]},
    "panels": panels,
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "ringcast.json")
with open(out, "w") as f:
    json.dump(dashboard, f, indent=2)
    f.write("\n")
