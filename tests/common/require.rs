//! External tools the tests drive. A missing tool fails the test with a message
//! naming the tool and the Debian package that provides it (`./tests/run.sh`
//! installs them all); a test never passes by skipping its real peer.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The path of `command` on `PATH` (or `command` itself when it names a file);
/// panics naming the command and `package` when it is missing.
pub fn command(command: &str, package: &str) -> PathBuf {
    let candidate = Path::new(command);
    if candidate.components().count() > 1 {
        return file(command, package);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "required tool `{command}` not found on PATH: install the Debian package \
                 `{package}` (./tests/run.sh installs it)"
            )
        })
}

/// `path` itself; panics naming it and `package` when the file is missing.
pub fn file(path: &str, package: &str) -> PathBuf {
    assert!(
        Path::new(path).exists(),
        "required file `{path}` missing: install the Debian package `{package}` \
         (./tests/run.sh installs it)"
    );
    PathBuf::from(path)
}
