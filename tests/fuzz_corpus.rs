//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/*`) through
//! the same function its fuzz target runs (`ringcast::fuzzing`), so every plain
//! `cargo test` exercises them. A target without a corpus, or a corpus without a
//! target, fails the test.

use std::path::Path;

use ringcast::fuzzing::TARGETS;

#[test]
fn every_committed_corpus_replays_without_a_finding() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut replayed = 0;
    for (name, run) in TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no corpus for target {name} at {dir:?}: {e}"));
        let mut files = 0;
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path:?}: {e}"));
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(
                outcome.is_ok(),
                "fuzz target {name} panics on committed input {path:?}"
            );
            files += 1;
        }
        assert!(files > 0, "corpus of {name} is empty");
        replayed += files;
    }
    for entry in std::fs::read_dir(&root).expect("fuzz/corpus") {
        let name = entry.expect("corpus dir").file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "corpus {name} has no target in ringcast::fuzzing::TARGETS"
        );
    }
    assert!(replayed >= TARGETS.len());
}

#[test]
fn every_fuzz_target_is_listed_in_the_fuzz_crate_and_runs_the_library_body() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml lacks [[bin]] {name}"
        );
        let source = std::fs::read_to_string(fuzz.join(format!("fuzz_targets/{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz_targets/{name}.rs: {e}"));
        assert!(
            source.contains(&format!("ringcast::fuzzing::{name}(")),
            "fuzz_targets/{name}.rs must call ringcast::fuzzing::{name}"
        );
    }
}
