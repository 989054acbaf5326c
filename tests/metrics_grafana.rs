//! The Grafana dashboard only queries series ringcast exports, every query is
//! valid PromQL, and the committed JSON matches its generator.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

#[path = "common/require.rs"]
mod require;

use ringcast::metrics::exported_family_names;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join("deploy/grafana/ringcast.json"))
        .expect("dashboard");
    serde_json::from_str(&text).expect("dashboard is JSON")
}

fn exprs(d: &serde_json::Value) -> Vec<String> {
    d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect()
}

/// Every `ringcast_…` identifier in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("ringcast_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn every_queried_series_is_exported() {
    let exported: BTreeSet<&str> = exported_family_names().collect();
    let d = dashboard();
    let all = exprs(&d);
    assert!(all.len() >= 20, "dashboard has {} queries", all.len());
    let mut used = BTreeSet::new();
    for expr in &all {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "query uses no ringcast series: {expr}");
        for name in names {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| exported.contains(b)))
                .unwrap_or(&name)
                .to_owned();
            assert!(
                exported.contains(family.as_str()),
                "{name} in `{expr}` is not exported"
            );
            used.insert(family);
        }
    }
    for required in [
        "ringcast_viewers",
        "ringcast_sent_bytes_total",
        "ringcast_connections_refused_total",
        "ringcast_dropped_frames_total",
        "ringcast_reactor_busy_ratio",
        "ringcast_reactor_sends_per_submit",
        "ringcast_server_latency_seconds",
        "ringcast_accept_errors_total",
        "ringcast_failures_total",
        "ringcast_origin_pull_failures_total",
        "ringcast_gop_cache_bytes",
    ] {
        assert!(used.contains(required), "dashboard never shows {required}");
    }
}

#[test]
fn panels_have_unique_ids_and_fit_the_grid() {
    let d = dashboard();
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().expect("panels") {
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "duplicate id {}",
            p["id"]
        );
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().expect("x"), g["w"].as_u64().expect("w"));
        assert!(
            x + w <= 24,
            "panel {} overflows the 24-column grid",
            p["title"]
        );
    }
    assert_eq!(d["uid"], "ringcast-edge");
}

#[test]
fn every_query_is_valid_promql() {
    let promtool = require::command("promtool", "prometheus");
    // A rule file with one recording rule per query: `promtool check rules` parses them.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs(&dashboard()).iter().enumerate() {
        let concrete = expr
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*");
        let quoted = serde_json::to_string(&concrete).expect("quote");
        rules.push_str(&format!(
            "      - record: ringcast:dashboard_query_{i}\n        expr: {quoted}\n"
        ));
    }
    let path = std::env::temp_dir().join(format!(
        "ringcast-dashboard-rules-{}.yml",
        std::process::id()
    ));
    std::fs::write(&path, rules).expect("write rules");
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("promtool");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "promtool rejected a dashboard query:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn committed_json_matches_generator() {
    let out_path =
        std::env::temp_dir().join(format!("ringcast-dashboard-{}.json", std::process::id()));
    let status = Command::new("python3")
        .arg(Path::new(ROOT).join("deploy/grafana/generate.py"))
        .arg(&out_path)
        .status()
        .expect("python3");
    assert!(status.success());
    let generated = std::fs::read_to_string(&out_path).expect("generated");
    let _ = std::fs::remove_file(&out_path);
    let committed = std::fs::read_to_string(Path::new(ROOT).join("deploy/grafana/ringcast.json"))
        .expect("committed");
    assert!(
        generated == committed,
        "deploy/grafana/ringcast.json is stale: rerun deploy/grafana/generate.py"
    );
}
