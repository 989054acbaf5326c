//! The layer rules of DESIGN.md ("Layers"), checked on the source tree, so that a
//! change breaking one fails here naming the file:
//!
//! * protocol (`src/protocol`) imports none of runtime, stream, server, edge,
//!   metrics, config, and uses no sockets, threads, files or clocks;
//! * runtime (`src/runtime`) imports none of protocol, stream, server, edge;
//! * stream (`src/stream`) imports neither server nor edge, nor the RTMP/HTTP
//!   wire codecs, and uses no sockets;
//! * edge (`src/edge`, the sans-IO part) does not import server;
//! * auth (`src/auth`, signed URLs: strings and time in, a decision out)
//!   imports no other layer and uses no sockets, threads, files or clocks;
//! * tls (`src/tls`, the sans-IO TLS glue) imports no other layer, uses no
//!   sockets, threads or clocks, and reads files only in `src/tls/load.rs`
//!   (the PEM loader);
//! * `src/payload.rs`, the allocator trait both protocol and runtime use, imports
//!   no layer at all;
//! * the layers' `mod.rs` keep their `forbid(unsafe_code)` (protocol, stream,
//!   edge, auth, tls) and the protocol, auth and tls layers their `deny` of indexing,
//!   `unwrap` and `expect`,
//!   which no non-test protocol code may `allow` again.
//!
//! Only non-test code counts: files declared under `#[cfg(test)]` and
//! everything after a file's first `#[cfg(test)]` are left out, as are comments.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// One source file: its path from the crate root, its module path, and its
/// non-test code without comments.
struct Source {
    path: PathBuf,
    module: Vec<String>,
    code: String,
}

/// Drops `//` comments (doc comments included) and block comments.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_block = false;
    for line in text.lines() {
        let mut rest = line;
        let mut kept = String::new();
        loop {
            if in_block {
                match rest.find("*/") {
                    Some(end) => {
                        rest = &rest[end + 2..];
                        in_block = false;
                    }
                    None => break,
                }
            } else {
                let line_comment = rest.find("//");
                let block = rest.find("/*");
                match (line_comment, block) {
                    (Some(l), Some(b)) if b < l => {
                        kept.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    (Some(l), _) => {
                        kept.push_str(&rest[..l]);
                        break;
                    }
                    (None, Some(b)) => {
                        kept.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    (None, None) => {
                        kept.push_str(rest);
                        break;
                    }
                }
            }
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// A file's non-test code without comments, and the modules it declares under
/// `#[cfg(test)]` (test-only files). An inline `#[cfg(test)] mod x { .. }` is
/// taken to run to the end of the file, as this crate's test modules do.
fn split_test_code(text: &str) -> (String, Vec<String>) {
    let code = strip_comments(text);
    let mut non_test = String::with_capacity(code.len());
    let mut test_mods = Vec::new();
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            non_test.push_str(line);
            non_test.push('\n');
            continue;
        }
        let next = lines.next().unwrap_or_default().trim();
        let decl = next
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ");
        match decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            Some(name) => test_mods.push(name.trim().to_string()),
            None => break,
        }
    }
    (non_test, test_mods)
}

/// The non-test sources of the module tree rooted at `root` (a `mod.rs` or a
/// single file), whose module path is `module`.
fn module_tree(crate_root: &Path, root: &Path, module: Vec<String>, out: &mut Vec<Source>) {
    let text = fs::read_to_string(crate_root.join(root))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()));
    let (code, test_mods) = split_test_code(&text);
    let dir = if root.file_name().is_some_and(|n| n == "mod.rs") {
        root.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        root.with_extension("")
    };
    for line in code.lines().map(str::trim) {
        let decl = line
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ");
        let Some(name) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) else {
            continue;
        };
        let name = name.trim();
        if test_mods.iter().any(|t| t == name) {
            continue;
        }
        let file = dir.join(format!("{name}.rs"));
        let child = if crate_root.join(&file).exists() {
            file
        } else {
            dir.join(name).join("mod.rs")
        };
        let mut child_module = module.clone();
        child_module.push(name.to_string());
        module_tree(crate_root, &child, child_module, out);
    }
    out.push(Source {
        path: root.to_path_buf(),
        module,
        code,
    });
}

/// The crate's top-level modules a piece of code names: `crate::x`,
/// `crate::{x, y::z}`, and `super::` chains that climb to the crate root.
fn top_modules_used(code: &str, module_depth: usize) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let after = &rest[at + "crate::".len()..];
        if !preceded_by_ident {
            if let Some(group) = after.trim_start().strip_prefix('{') {
                // Top-level names of a group: the first segment of each entry.
                let mut depth = 0usize;
                let mut entry_start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => entry_start = true,
                        c if entry_start && !c.is_whitespace() => {
                            let name = ident(&group[i..]);
                            if !name.is_empty() && name != "self" {
                                used.insert(name);
                            }
                            entry_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                let name = ident(after);
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        }
        rest = after;
    }
    if module_depth > 0 {
        let climb = "super::".repeat(module_depth);
        let mut rest = code;
        while let Some(at) = rest.find(&climb) {
            let after = &rest[at + climb.len()..];
            let name = ident(after);
            if !name.is_empty() && name != "super" {
                used.insert(name);
            }
            rest = after;
        }
    }
    used
}

fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The non-test sources of the top-level module `name` (`src/name/mod.rs` or
/// `src/name.rs`).
fn layer(name: &str) -> Vec<Source> {
    let root = crate_root();
    let dir_root = PathBuf::from("src").join(name).join("mod.rs");
    let file_root = PathBuf::from("src").join(format!("{name}.rs"));
    let start = if root.join(&dir_root).exists() {
        dir_root
    } else {
        file_root
    };
    let mut out = Vec::new();
    module_tree(&root, &start, vec![name.to_string()], &mut out);
    assert!(!out.is_empty(), "no sources found for {name}");
    out
}

/// Every file of `sources` that names one of `forbidden` top-level modules,
/// as "file: names crate::x".
fn import_violations(sources: &[Source], forbidden: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    for s in sources {
        for name in top_modules_used(&s.code, s.module.len()) {
            if forbidden.contains(&name.as_str()) {
                bad.push(format!("{}: names crate::{name}", s.path.display()));
            }
        }
    }
    bad
}

/// Socket types no sans-I/O layer may name.
const SOCKET_TYPES: &[&str] = &["TcpStream", "TcpListener", "UdpSocket"];

/// Clock reads and raw I/O no sans-I/O layer may use.
const NO_CLOCKS_OR_RAW_IO: &[&str] = &[
    "Instant::now",
    "SystemTime::now",
    "io_uring",
    "libc::",
    "socket2",
];

/// Every file of `sources` whose code contains one of `needles`.
fn text_violations(sources: &[Source], needles: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    for s in sources {
        for needle in needles {
            if s.code.contains(needle) {
                bad.push(format!("{}: uses `{needle}`", s.path.display()));
            }
        }
    }
    bad
}

fn assert_none(what: &str, bad: Vec<String>) {
    assert!(bad.is_empty(), "{what}:\n  {}", bad.join("\n  "));
}

#[test]
fn protocol_imports_no_other_layer_and_does_no_io() {
    let protocol = layer("protocol");
    assert!(
        protocol.len() > 50,
        "the scan found only {} files",
        protocol.len()
    );
    assert_none(
        "the protocol layer (sans-IO) imports another layer",
        import_violations(
            &protocol,
            &["runtime", "stream", "server", "edge", "metrics", "config"],
        ),
    );
    assert_none(
        "the protocol layer touches sockets, threads, files or clocks",
        text_violations(
            &protocol,
            &[
                &["std::net", "std::thread", "std::fs"][..],
                NO_CLOCKS_OR_RAW_IO,
            ]
            .concat(),
        ),
    );
}

#[test]
fn runtime_imports_no_protocol_stream_server_or_edge() {
    assert_none(
        "the runtime imports a layer above it",
        import_violations(&layer("runtime"), &["protocol", "stream", "server", "edge"]),
    );
}

#[test]
fn stream_knows_no_sockets_or_wire_codecs() {
    let stream = layer("stream");
    assert_none(
        "the stream layer imports server or edge",
        import_violations(&stream, &["server", "edge"]),
    );
    assert_none(
        "the stream layer uses a wire codec or sockets",
        text_violations(
            &stream,
            &["protocol::rtmp", "protocol::http", "std::net", "io_uring"],
        ),
    );
}

#[test]
fn edge_sans_io_part_does_not_import_the_server() {
    assert_none(
        "the edge layer imports the server",
        import_violations(&layer("edge"), &["server"]),
    );
}

#[test]
fn auth_is_sans_io_and_imports_no_layer() {
    let auth = layer("auth");
    assert_none(
        "the auth layer imports another layer",
        import_violations(
            &auth,
            &[
                "protocol", "runtime", "stream", "server", "edge", "metrics", "config",
            ],
        ),
    );
    assert_none(
        "the auth layer touches sockets, threads, files or clocks",
        text_violations(
            &auth,
            &[
                SOCKET_TYPES,
                &["std::thread", "std::fs"],
                NO_CLOCKS_OR_RAW_IO,
            ]
            .concat(),
        ),
    );
}

#[test]
fn tls_is_sans_io_imports_no_layer_and_reads_files_only_in_its_loader() {
    let tls = layer("tls");
    assert!(tls.len() >= 4, "the scan found only {} files", tls.len());
    assert_none(
        "the tls layer imports another layer",
        import_violations(
            &tls,
            &[
                "protocol", "runtime", "stream", "server", "edge", "metrics", "config", "auth",
            ],
        ),
    );
    assert_none(
        "the tls layer touches sockets, threads or clocks",
        text_violations(
            &tls,
            &[SOCKET_TYPES, &["std::thread"], NO_CLOCKS_OR_RAW_IO].concat(),
        ),
    );
    let outside_loader: Vec<Source> = tls
        .into_iter()
        .filter(|s| s.path != Path::new("src/tls/load.rs"))
        .collect();
    assert_none(
        "the tls layer reads files outside src/tls/load.rs",
        text_violations(
            &outside_loader,
            &["std::fs", "File::open", "load_native_certs"],
        ),
    );
}

#[test]
fn payload_allocator_sits_below_every_layer() {
    assert_none(
        "src/payload.rs imports a layer",
        import_violations(
            &layer("payload"),
            &[
                "protocol", "runtime", "stream", "server", "edge", "metrics", "config",
            ],
        ),
    );
}

/// The inner attributes of a file: `#![...]` lines, whitespace removed.
fn inner_attributes(path: &str) -> Vec<String> {
    let text = fs::read_to_string(crate_root().join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    strip_comments(&text)
        .lines()
        .filter(|l| l.trim_start().starts_with("#!["))
        .map(|l| l.split_whitespace().collect())
        .collect()
}

#[test]
fn layer_roots_keep_their_forbid_and_deny_attributes() {
    let mut bad = Vec::new();
    for path in [
        "src/protocol/mod.rs",
        "src/stream/mod.rs",
        "src/edge/mod.rs",
        "src/auth/mod.rs",
        "src/tls/mod.rs",
        "src/payload.rs",
    ] {
        if !inner_attributes(path).contains(&"#![forbid(unsafe_code)]".to_string()) {
            bad.push(format!("{path}: lost #![forbid(unsafe_code)]"));
        }
    }
    for root in ["src/protocol/mod.rs", "src/auth/mod.rs", "src/tls/mod.rs"] {
        let attributes = inner_attributes(root);
        for lint in [
            "clippy::indexing_slicing",
            "clippy::unwrap_used",
            "clippy::expect_used",
        ] {
            if !attributes
                .iter()
                .any(|a| a.starts_with("#![deny(") && a.contains(lint))
            {
                bad.push(format!("{root}: lost #![deny({lint})]"));
            }
        }
    }
    assert_none("a layer root lost an attribute", bad);
}

#[test]
fn no_protocol_code_allows_indexing_or_unwrap_again() {
    let needles: Vec<String> = ["indexing_slicing", "unwrap_used", "expect_used"]
        .iter()
        .map(|lint| format!("allow(clippy::{lint}"))
        .collect();
    let mut bad = Vec::new();
    for s in layer("protocol")
        .into_iter()
        .chain(layer("auth"))
        .chain(layer("tls"))
    {
        let code: String = s.code.split_whitespace().collect();
        for needle in &needles {
            if code.contains(needle.as_str()) {
                bad.push(format!("{}: {needle})", s.path.display()));
            }
        }
    }
    assert_none(
        "non-test protocol, auth or tls code re-allows a denied lint",
        bad,
    );
}

/// The checks themselves: each finds what it is meant to find.
#[test]
fn the_scanner_finds_imports_in_every_form() {
    let code = strip_comments(
        "use crate::runtime::arena::AlignedArena; // crate::server\n\
         /* crate::edge */ use crate::{metrics, stream::Shard};\n\
         use crate::{\n    config::Config,\n    protocol::{Frame, payload},\n};\n\
         let x = super::super::server::thing; let y = mycrate::edge::z;\n",
    );
    let used = top_modules_used(&code, 2);
    let expected: BTreeSet<String> = [
        "runtime", "metrics", "stream", "config", "protocol", "server",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(used, expected);
    // One `super::` from a module two deep stays inside the layer.
    assert!(top_modules_used("use super::chunk::X;", 2).is_empty());

    let (non_test, test_mods) = split_test_code(
        "use crate::payload::X;\n#[cfg(test)]\nmod decoder_tests;\nfn f() {}\n#[cfg(test)]\nmod tests { use crate::server::Y; }\n",
    );
    assert_eq!(test_mods, vec!["decoder_tests".to_string()]);
    assert!(non_test.contains("crate::payload") && !non_test.contains("crate::server"));
}
