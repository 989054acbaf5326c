//! The tuning kit: `tuning/check` verdicts on fake /proc and /sys trees, and the
//! sysctl file, limits and systemd unit agreeing with each other and the checker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "common/require.rs"]
mod require;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A fake `/proc` + `/sys` in a temp dir, removed on drop.
struct FakeBox {
    dir: PathBuf,
}

impl FakeBox {
    fn new(
        tag: &str,
        sysctls: &BTreeMap<String, String>,
        mem_kib: u64,
        nic_mbps: Option<u64>,
    ) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ringcast-tuning-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (key, value) in sysctls {
            let path = dir.join("proc/sys").join(key.replace('.', "/"));
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(
                &path,
                format!(
                    "{}\n",
                    value.split_whitespace().collect::<Vec<_>>().join("\t")
                ),
            )
            .expect("write sysctl");
        }
        std::fs::create_dir_all(dir.join("proc")).expect("mkdir proc");
        std::fs::write(
            dir.join("proc/meminfo"),
            format!("MemTotal:       {mem_kib} kB\nMemFree: 1 kB\n"),
        )
        .expect("meminfo");
        let eth = dir.join("sys/class/net/eth0");
        std::fs::create_dir_all(eth.join("device")).expect("mkdir eth0");
        std::fs::write(eth.join("operstate"), "up\n").expect("operstate");
        std::fs::write(
            eth.join("speed"),
            format!("{}\n", nic_mbps.map_or(-1, |m| m as i64)),
        )
        .expect("speed");
        // A virtual interface (no device link) must not count towards capacity.
        let veth = dir.join("sys/class/net/veth0");
        std::fs::create_dir_all(&veth).expect("mkdir veth");
        std::fs::write(veth.join("operstate"), "up\n").expect("operstate");
        std::fs::write(veth.join("speed"), "100000\n").expect("speed");
        Self { dir }
    }

    fn check(&self, args: &[&str]) -> Output {
        Command::new("python3")
            .arg(Path::new(ROOT).join("tuning/check"))
            .arg("--proc-root")
            .arg(self.dir.join("proc"))
            .arg("--sys-root")
            .arg(self.dir.join("sys"))
            .args(args)
            .output()
            .expect("run tuning/check (python3)")
    }

    /// Runs the checker for `viewers` under the given RLIMIT_NOFILE and
    /// RLIMIT_MEMLOCK (plus `extra` flags); returns its exit code and report.
    fn verdict(
        &self,
        viewers: &str,
        nofile: &str,
        memlock: &str,
        extra: &[&str],
    ) -> (Option<i32>, String) {
        let mut args = vec![
            "--viewers",
            viewers,
            "--nofile",
            nofile,
            "--memlock",
            memlock,
        ];
        args.extend_from_slice(extra);
        let out = self.check(&args);
        (out.status.code(), stdout(&out))
    }
}

impl Drop for FakeBox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The settings of tuning/sysctl.conf (optional `-` prefix stripped).
fn recommended_sysctls() -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(Path::new(ROOT).join("tuning/sysctl.conf")).expect("sysctl.conf");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().trim_start_matches('-').to_owned(),
                v.trim().to_owned(),
            )
        })
        .collect()
}

/// `LimitNOFILE` from tuning/ringcast.service.
fn unit_nofile() -> String {
    let unit =
        std::fs::read_to_string(Path::new(ROOT).join("tuning/ringcast.service")).expect("unit");
    unit.lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .expect("unit sets LimitNOFILE")
        .to_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn status_of(report: &str, setting: &str) -> Option<String> {
    report
        .lines()
        .find(|l| l.starts_with(setting))
        .and_then(|l| {
            l.split_whitespace()
                .find(|w| ["ok", "WARN", "FAIL"].contains(w))
                .map(str::to_owned)
        })
}

/// Asserts the report rates `setting` as `status` (`ok`, `WARN` or `FAIL`).
fn assert_status(report: &str, setting: &str, status: &str) {
    assert_eq!(
        status_of(report, setting).as_deref(),
        Some(status),
        "{setting} in:\n{report}"
    );
}

const GIB_IN_KIB: u64 = 1024 * 1024;

#[test]
fn box_tuned_with_the_kit_holds_100k_viewers_with_no_warnings() {
    let fake = FakeBox::new(
        "tuned",
        &recommended_sysctls(),
        64 * GIB_IN_KIB,
        Some(100_000),
    );
    let nofile = unit_nofile();
    let bitrate_and_cores = ["--bitrate-kbps", "500", "--cores", "16"];
    let (code, report) = fake.verdict("100000", &nofile, "unlimited", &bitrate_and_cores);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("can hold 100000 viewers"), "{report}");
    assert!(
        !report.contains("WARN") && !report.contains("FAIL"),
        "kit and checker disagree:\n{report}"
    );
    assert_status(&report, "net.ipv4.tcp_notsent_lowat", "ok");
    assert_status(&report, "NIC egress", "ok");
}

#[test]
fn untuned_limits_fail_and_name_the_setting() {
    let mut sysctls = recommended_sysctls();
    sysctls.insert("fs.file-max".into(), "65536".into());
    let fake = FakeBox::new("filemax", &sysctls, 64 * GIB_IN_KIB, Some(100_000));
    let bitrate = ["--bitrate-kbps", "500"];
    let (code, report) = fake.verdict("100000", "1048576", "unlimited", &bitrate);
    assert_eq!(code, Some(1), "{report}");
    assert_status(&report, "fs.file-max", "FAIL");
    assert!(
        report.contains("CANNOT hold 100000 viewers: fs.file-max"),
        "{report}"
    );

    let (code, report) = fake.verdict("100000", "1024", "unlimited", &bitrate);
    assert_eq!(code, Some(1));
    assert_status(&report, "RLIMIT_NOFILE", "FAIL");
}

#[test]
fn memory_bandwidth_and_io_uring_are_capacity_limits() {
    let sysctls = recommended_sysctls();
    let small = FakeBox::new("mem", &sysctls, 2 * GIB_IN_KIB, Some(100_000));
    let (code, report) = small.verdict("50000", "1048576", "unlimited", &[]);
    assert_eq!(code, Some(1));
    assert_status(&report, "MemTotal", "FAIL");

    // 1000 viewers x 2.5 Mb/s = 2.5 Gb/s does not fit a 1 Gb/s link (veth0 ignored).
    let slow = FakeBox::new("nic", &sysctls, 64 * GIB_IN_KIB, Some(1000));
    let (code, report) = slow.verdict("1000", "1048576", "unlimited", &[]);
    assert_eq!(code, Some(1));
    assert_status(&report, "NIC egress", "FAIL");

    let mut no_uring = sysctls.clone();
    no_uring.insert("kernel.io_uring_disabled".into(), "2".into());
    let off = FakeBox::new("uring", &no_uring, 64 * GIB_IN_KIB, Some(100_000));
    let (code, report) = off.verdict("10", "1048576", "unlimited", &[]);
    assert_eq!(code, Some(1));
    assert_status(&report, "kernel.io_uring_disabled", "FAIL");
}

#[test]
fn untuned_defaults_only_warn_for_a_small_audience() {
    let mut defaults = BTreeMap::new();
    for (k, v) in [
        ("fs.file-max", "9223372036854775807"),
        ("fs.nr_open", "1048576"),
        ("net.core.somaxconn", "4096"),
        ("net.ipv4.tcp_mem", "190000 253000 380000"),
        ("net.ipv4.tcp_notsent_lowat", "4294967295"),
        ("net.core.default_qdisc", "pfifo_fast"),
    ] {
        defaults.insert(k.to_owned(), v.to_owned());
    }
    let fake = FakeBox::new("defaults", &defaults, 8 * GIB_IN_KIB, Some(10_000));
    let (code, report) = fake.verdict("500", "65536", "8388608", &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_status(&report, "net.ipv4.tcp_notsent_lowat", "WARN");
    assert_status(&report, "net.core.default_qdisc", "WARN");
    assert_status(&report, "RLIMIT_MEMLOCK", "WARN");
}

#[test]
fn bad_arguments_exit_2_and_real_box_gets_a_verdict() {
    let out = Command::new("python3")
        .arg(Path::new(ROOT).join("tuning/check"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "--viewers is required");
    let out = Command::new("python3")
        .arg(Path::new(ROOT).join("tuning/check"))
        .args(["--viewers", "1"])
        .output()
        .expect("run");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("fs.nr_open"));
}

#[test]
fn limits_file_matches_the_unit() {
    let limits =
        std::fs::read_to_string(Path::new(ROOT).join("tuning/limits.conf")).expect("limits.conf");
    let nofile = unit_nofile();
    assert!(limits.lines().any(|l| l.starts_with("ringcast")
        && l.contains("hard")
        && l.contains("nofile")
        && l.ends_with(&nofile)));
    let nr_open: u64 = recommended_sysctls()["fs.nr_open"]
        .parse()
        .expect("nr_open");
    assert!(
        nofile.parse::<u64>().expect("LimitNOFILE") <= nr_open,
        "LimitNOFILE above fs.nr_open fails at start"
    );
}

#[test]
fn systemd_unit_verifies() {
    require::command("systemd-analyze", "systemd");
    let unit =
        std::fs::read_to_string(Path::new(ROOT).join("tuning/ringcast.service")).expect("unit");
    // The binary is not installed here; point ExecStart at one that exists.
    let unit = unit.replace("/usr/local/bin/ringcast", "/bin/true");
    let dir = std::env::temp_dir().join(format!("ringcast-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("ringcast.service");
    std::fs::write(&path, unit).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let _ = std::fs::remove_dir_all(&dir);
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        msg.trim().is_empty() && out.status.success(),
        "systemd-analyze verify:\n{msg}"
    );
}
