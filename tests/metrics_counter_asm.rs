//! A counter increment compiles to a plain load + add + store: no `lock` prefix
//! (x86-64) and no atomic read-modify-write instruction (aarch64).
//!
//! Compiles `src/metrics/local.rs` itself with `rustc -O --emit asm` next to a
//! `fetch_add` control, so the check covers the real code at release
//! optimisation without needing a release build of the whole crate.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const PROBES: &str = r#"
#[path = "LOCAL_RS"]
mod local;
use std::sync::atomic::{AtomicU64, Ordering};

#[no_mangle]
pub fn ringcast_probe_counter_inc(c: &local::LocalCounter) { c.inc() }

#[no_mangle]
pub fn ringcast_probe_histogram_observe(h: &local::LocalHistogram, ns: u64) { h.observe_ns(ns) }

#[no_mangle]
pub fn ringcast_probe_fetch_add(c: &AtomicU64) { c.fetch_add(1, Ordering::Relaxed); }
"#;

/// The assembly lines of function `name` in rustc's `--emit asm` output.
fn function_body<'a>(asm: &'a str, name: &str) -> Vec<&'a str> {
    let label = format!("{name}:");
    asm.lines()
        .skip_while(|l| l.trim() != label)
        .skip(1)
        .take_while(|l| {
            !l.trim_start().starts_with(".Lfunc_end") && !l.trim_start().starts_with(".size")
        })
        .filter(|l| !l.trim_start().starts_with('.') && !l.trim_start().starts_with('#'))
        .collect()
}

#[test]
fn counter_increment_has_no_locked_instruction() {
    let arch = std::env::consts::ARCH;
    let is_rmw: fn(&str) -> bool = match arch {
        "x86_64" => |l| l.trim_start().starts_with("lock"),
        "aarch64" => |l| {
            ["ldadd", "ldxr", "ldaxr", "stxr", "stlxr", "cas"]
                .iter()
                .any(|op| l.trim_start().starts_with(op))
        },
        _ => panic!(
            "no instruction check for {arch}: add this architecture's atomic read-modify-write \
             mnemonics here"
        ),
    };
    let dir = std::env::temp_dir().join(format!("ringcast-asm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let local_rs = Path::new(ROOT).join("src/metrics/local.rs");
    let src = dir.join("probes.rs");
    std::fs::write(
        &src,
        PROBES.replace("LOCAL_RS", &local_rs.display().to_string()),
    )
    .expect("write probes");
    let asm_path = dir.join("probes.s");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(rustc)
        .args([
            "--edition=2021",
            "--crate-type=lib",
            "-O",
            "--emit=asm",
            "-o",
        ])
        .arg(&asm_path)
        .arg(&src)
        .output()
        .expect("run rustc");
    assert!(
        out.status.success(),
        "rustc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asm = std::fs::read_to_string(&asm_path).expect("asm");
    let _ = std::fs::remove_dir_all(&dir);

    let inc = function_body(&asm, "ringcast_probe_counter_inc");
    assert!(!inc.is_empty(), "probe not found in asm");
    assert!(
        !inc.iter().any(|l| is_rmw(l)),
        "counter inc uses an atomic RMW:\n{}",
        inc.join("\n")
    );
    let observe = function_body(&asm, "ringcast_probe_histogram_observe");
    assert!(
        !observe.iter().any(|l| is_rmw(l)),
        "histogram observe uses an atomic RMW:\n{}",
        observe.join("\n")
    );
    // Control: the same check does see fetch_add's RMW, so a passing test means something.
    let control = function_body(&asm, "ringcast_probe_fetch_add");
    assert!(
        control.iter().any(|l| is_rmw(l)),
        "control not detected:\n{}",
        control.join("\n")
    );
    eprintln!("counter inc on {arch}:\n{}", inc.join("\n"));
}
