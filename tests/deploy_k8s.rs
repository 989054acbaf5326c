//! The Kubernetes manifests in `deploy/k8s`: schema-valid (strict), and what
//! they embed works: the ringcast configs parse and validate, the edge's
//! origins are usable origin URLs, and the Prometheus config passes promtool.

use std::path::Path;
use std::process::Command;

#[path = "common/require.rs"]
mod require;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/k8s");

/// The block scalar `key: |` of a YAML file (indented deeper than the key).
fn block(yaml: &str, key: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    let header = lines.next().unwrap_or_else(|| panic!("no block {key}"));
    let key_indent = header.len() - header.trim_start().len();
    let body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > key_indent)
        .collect();
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap();
    body.iter()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(DIR).join(name)).unwrap()
}

#[test]
fn manifests_pass_strict_schema_validation() {
    // check.sh builds a venv and pip-installs the validator into it.
    require::command("python3", "python3");
    let out = Command::new(Path::new(DIR).join("check.sh"))
        .output()
        .expect("run deploy/k8s/check.sh");
    assert!(
        out.status.success(),
        "kubernetes-validate failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn embedded_ringcast_configs_load() {
    let config = read("10-config.yaml");
    let origin =
        ringcast::config::Config::from_toml(&block(&config, "origin.toml")).expect("origin.toml");
    assert!(
        origin.edge.origins.is_empty(),
        "the origin pulls from nobody"
    );
    let edge =
        ringcast::config::Config::from_toml(&block(&config, "edge.toml")).expect("edge.toml");
    assert!(!edge.edge.allow_publish);
    // The admin routes (probes, Prometheus) are on port 9090, off loopback, so with a token.
    for config in [&origin, &edge] {
        assert_eq!(config.api.admin_listen.port(), 9090);
        config
            .validate_exposure()
            .expect("admin routes off loopback carry [api] token");
    }
    let prometheus = block(&read("40-prometheus.yaml"), "prometheus.yml");
    assert!(
        prometheus.contains("port: 9090") && !prometheus.contains("port: 8080"),
        "Prometheus scrapes the admin port: {prometheus}"
    );
    for manifest in ["20-origin.yaml", "30-edge.yaml"] {
        let text = read(manifest);
        assert!(
            text.contains("prometheus.io/port: \"9090\"") && text.contains("containerPort: 9090"),
            "{manifest} exposes and annotates the admin port"
        );
    }
    let daemonset = read("30-edge.yaml");
    let origins: Vec<&str> = daemonset
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("- "))
        .filter(|a| a.starts_with("rtmp://") || a.starts_with("http://"))
        .collect();
    assert_eq!(origins.len(), 2, "{origins:?}");
    for url in origins {
        ringcast::edge::origin::Origin::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

#[test]
fn embedded_prometheus_config_passes_promtool() {
    require::command("promtool", "prometheus");
    let dir = std::env::temp_dir().join(format!("ringcast-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, block(&read("40-prometheus.yaml"), "prometheus.yml")).unwrap();
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {text}");
}
