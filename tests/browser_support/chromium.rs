//! Debian's Chromium, headless, in a process group of its own with a throwaway
//! profile. Closing it kills the whole group and then any process still
//! naming the profile (Chromium's helpers), so no browser outlives its test.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long closing waits for Chromium's processes to be gone.
const CLOSE_LIMIT: Duration = Duration::from_secs(10);
/// How much of Chromium's stderr a failure message quotes.
const STDERR_TAIL: usize = 4000;

/// The flags every run uses. Headless with the new headless mode; no sandbox
/// (containers and CI runners have no user namespaces for it); no GPU and no
/// /dev/shm (small in containers); autoplay without a gesture, muted; nothing
/// in the background that would reach outside loopback or throttle the page.
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--window-size=640,480",
];

/// A running headless Chromium.
pub struct Chromium {
    child: Child,
    /// Everything of this run (profile, temp files, stderr), removed on close.
    dir: PathBuf,
    /// Its profile directory (`--user-data-dir`).
    pub profile: PathBuf,
    stderr: PathBuf,
    closed: bool,
}

impl Chromium {
    /// Starts `chromium` (from PATH) at `url`, with `extra` flags after [`FLAGS`].
    pub fn launch(url: &str, extra: &[String]) -> Chromium {
        let exe = crate::common::require::command("chromium", "chromium");
        let dir = std::env::temp_dir().join(format!(
            "ringcast-chromium-{}-{}",
            std::process::id(),
            unique()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let (profile, tmp) = (dir.join("profile"), dir.join("tmp"));
        for d in [&profile, &tmp] {
            std::fs::create_dir_all(d).expect("chromium run dir");
        }
        let stderr = dir.join("stderr.log");
        let log = std::fs::File::create(&stderr).expect("chromium stderr file");
        let child = Command::new(exe)
            .args(FLAGS)
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            // No session bus in a container: tell Chromium not to look for one.
            .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
            // Its shared-memory files (no /dev/shm) go in the run dir, removed on close.
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn chromium");
        Chromium {
            child,
            dir,
            profile,
            stderr,
            closed: false,
        }
    }

    /// Chromium's exit status if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The end of what Chromium wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let start = text.len().saturating_sub(STDERR_TAIL);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }

    /// Kills Chromium's process group and any process left naming its profile,
    /// waits until they are gone, removes the run dir. Returns the ids of the
    /// processes still alive after [`CLOSE_LIMIT`] (empty when all went).
    pub fn close(&mut self) -> Vec<u32> {
        if self.closed {
            return Vec::new();
        }
        self.closed = true;
        let group = self.child.id() as i32;
        // SAFETY: kill(2) on our own child's process group; no memory involved.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + CLOSE_LIMIT;
        let mut left = self.stragglers();
        while !left.is_empty() && Instant::now() < deadline {
            for &pid in &left {
                // SAFETY: as above, on a process whose command line names our profile.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(50));
            left = self.stragglers();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        left
    }

    /// Live (not zombie) processes whose command line names this profile.
    fn stragglers(&self) -> Vec<u32> {
        let needle = format!("--user-data-dir={}", self.profile.display());
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                !is_zombie(*pid)
                    && cmdline
                        .split(|&b| b == 0)
                        .any(|arg| arg == needle.as_bytes())
            })
            .collect()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.close();
    }
}

/// Whether process `pid` is a zombie (or already gone): its state, the first
/// field after the parenthesised command name in `/proc/PID/stat`, is `Z`.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        state.starts_with('Z')
    })
}

/// A number unique within this process (two browsers in one test binary).
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
