//! A panic on any core thread ends the whole process with a failure status and a log
//! line naming the core, instead of leaving the other cores serving around keys the
//! dead core owned. Uses the debug-build fault-injection hook
//! (`RINGCAST_DEBUG_PANIC_CORE`), so it exists only in debug test builds.
#![cfg(debug_assertions)]

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Proc};

#[test]
fn a_core_panic_ends_the_process_naming_the_core() {
    // Two cores, the second panics once it has served for a while.
    let (rtmp, http) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["serve", "--cores", "2"])
        .args([
            "--rtmp",
            &format!("127.0.0.1:{rtmp}"),
            "--http",
            &format!("127.0.0.1:{http}"),
            "--admin",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .env("RUST_LOG", "info")
        .env("RINGCAST_DEBUG_PANIC_CORE", "1@1500")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringcast");
    let mut server = Proc {
        child,
        name: "ringcast".into(),
    };
    let mut stderr = server.child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    // It serves first (the panic is not a startup failure)...
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(Instant::now() < deadline, "ringcast never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...then the whole process ends by itself, however many cores are left.
    let status = server
        .wait_for(Duration::from_secs(60))
        .expect("ringcast kept running after a core panicked");
    let log = log.join().unwrap();
    assert_eq!(
        status.code(),
        Some(101),
        "exit status of a core panic: {status:?}\n{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("panicked; ending the process"));
    let line = line.unwrap_or_else(|| panic!("no log line about the panic:\n{log}"));
    assert!(
        line.contains("ERROR") && line.contains("core 1 panicked"),
        "the line names core 1: {line}"
    );
}
