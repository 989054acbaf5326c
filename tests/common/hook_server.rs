//! The real hook server process (`tests/hooks/hook_server.py`, SRS
//! `http_hooks` style) that the `[hooks]` end-to-end tests point ringcast at,
//! and the log of the requests it received.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{http_request, require, Proc};

/// The hook server process (killed on drop) and its port.
pub struct HookServer {
    _proc: Proc,
    /// The loopback port it listens on (picked by the OS).
    pub port: u16,
}

impl HookServer {
    /// Starts it on an OS-picked port and reads the port it prints
    /// (`PORT n`); fails naming python3 when that is missing.
    pub fn start() -> HookServer {
        require::command("python3", "python3");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hooks/hook_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("hook server said {line:?}"));
        HookServer {
            _proc: Proc {
                child,
                name: "hook server".into(),
            },
            port,
        }
    }

    /// The URL of `path` on it.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request it received: `{"path", "body"}`.
    pub fn requests(&self) -> Vec<Value> {
        let (status, body) = http_request(self.port, "GET", "/log");
        assert_eq!(status, 200);
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap()
    }

    /// The bodies of the requests with `action`.
    pub fn bodies(&self, action: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .map(|r| r["body"].clone())
            .filter(|b| b["action"] == action)
            .collect()
    }
}
