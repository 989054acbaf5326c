//! Real web players in headless Chromium against a real ringcast: the page
//! server (the test's own origin, so media is cross-origin), Chromium started
//! and always killed with its whole process group, and the page's report.
//!
//! `tests/browser/` holds the pages and the pinned player libraries
//! (`package.json`, `package-lock.json`; `npm ci` there installs them, as
//! `tests/run.sh` does). A missing Chromium or library fails the test naming it.

#![allow(dead_code)]

pub mod chromium;
pub mod page_server;
pub mod report;
pub mod tls;

pub use chromium::Chromium;
pub use page_server::{browser_dir, PageServer};
pub use report::Report;
pub use tls::TestCert;

use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest a browser test may take in total (CI stays bounded).
pub const MAX_RUN: Duration = Duration::from_secs(60);

/// One browser test at a time per test binary (see [`one_at_a_time`]).
static ONE_TEST: Mutex<()> = Mutex::new(());

/// Taken first by every browser test and held to its end: two tests at once
/// on a small CI machine (two ffmpeg encoders, two Chromiums decoding) would
/// measure each other, not ringcast, and a test waiting for its turn after
/// starting its publisher could outlive it.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_TEST
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A player library, from its npm package in `tests/browser/node_modules`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Library {
    /// mpegts.js: HTTP-FLV (and MPEG-TS) over fetch into MSE.
    Mpegts,
    /// hls.js: HLS and LL-HLS into MSE.
    Hls,
    /// dash.js: DASH and LL-DASH into MSE.
    Dash,
}

impl Library {
    /// The npm package name.
    pub fn package(self) -> &'static str {
        match self {
            Library::Mpegts => "mpegts.js",
            Library::Hls => "hls.js",
            Library::Dash => "dashjs",
        }
    }

    /// Its browser build, relative to `tests/browser/`: the unminified one
    /// where the package has it, so a failure's stack trace names functions.
    pub fn file(self) -> &'static str {
        match self {
            Library::Mpegts => "node_modules/mpegts.js/dist/mpegts.js",
            Library::Hls => "node_modules/hls.js/dist/hls.js",
            Library::Dash => "node_modules/dashjs/dist/modern/umd/dash.all.debug.js",
        }
    }

    /// The test page that plays with it.
    pub fn page(self) -> &'static str {
        match self {
            Library::Mpegts => "flv.html",
            Library::Hls => "hls.html",
            Library::Dash => "dash.html",
        }
    }

    /// Panics naming the package when its browser build is not installed.
    pub fn require(self) {
        let file = browser_dir().join(self.file());
        assert!(
            file.is_file(),
            "required npm package `{}` missing ({} not found): run `npm ci` in tests/browser \
             (./tests/run.sh does it; needs node/npm)",
            self.package(),
            file.display()
        );
    }
}

/// How a run is set up beyond the defaults (an HTTP page, Chromium trusting
/// no extra certificate).
#[derive(Default)]
pub struct Options<'a> {
    /// Serve the page over HTTPS with this certificate (Chromium trusts it).
    pub https_page: Option<&'a TestCert>,
    /// More certificates Chromium trusts (a ringcast serving HTTPS).
    pub trust: Vec<&'a TestCert>,
    /// More `name=value` pairs for the page's query (player settings the page
    /// reads, such as dash.html's `live_delay`).
    pub query: Vec<(&'a str, String)>,
}

/// [`play_with`] with the default [`Options`]: an HTTP page.
pub fn play(library: Library, media_url: &str, play: Duration, limit: Duration) -> Report {
    play_with(library, media_url, play, limit, &Options::default())
}

/// One bounded playback: `library`'s page (over HTTPS with
/// `options.https_page`, `options.query` added to its query) plays `media_url` in headless Chromium
/// for `play` after its first frame; the page must send its final report
/// within `limit` (at most [`MAX_RUN`]) of its launch. Chromium is killed (its whole process
/// group) before this returns or panics, and every one of its processes must
/// be gone. Panics with the last interim report and Chromium's stderr when no
/// final report comes.
pub fn play_with(
    library: Library,
    media_url: &str,
    play: Duration,
    limit: Duration,
    options: &Options,
) -> Report {
    assert!(limit <= MAX_RUN, "a browser run is bounded by {MAX_RUN:?}");
    library.require();
    let pages = PageServer::start(options.https_page.map(TestCert::server_config));
    // The page gives up a little before the harness does, so a slow start
    // still yields a final report saying how far it got.
    let page_deadline = limit.saturating_sub(Duration::from_secs(3));
    let mut url = format!(
        "{}/pages/{}?src={}&play_ms={}&deadline_ms={}",
        pages.origin(),
        library.page(),
        encode(media_url),
        play.as_millis(),
        page_deadline.as_millis()
    );
    for (name, value) in &options.query {
        url.push_str(&format!("&{}={}", encode(name), encode(value)));
    }
    let pins: Vec<&str> = (options.https_page.iter().chain(&options.trust))
        .map(|cert| cert.spki_pin.as_str())
        .collect();
    let flags = if pins.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "--ignore-certificate-errors-spki-list={}",
            pins.join(",")
        )]
    };
    let mut browser = Chromium::launch(&url, &flags);
    let outcome = wait_final(&pages, &mut browser, limit);
    let stderr = browser.stderr_tail();
    let activity = pages.activity();
    let left = browser.close();
    assert!(
        left.is_empty(),
        "Chromium processes {left:?} still alive after killing its process group"
    );
    match outcome {
        Ok(report) => report,
        Err((why, last)) => panic!(
            "{} on {media_url}: {why}\npage server: {activity}\nlast interim report: {}\n\
             Chromium stderr (tail):\n{stderr}",
            library.package(),
            last.as_deref().unwrap_or("none")
        ),
    }
}

/// Waits for the final report; on failure, why and the last interim report's summary.
fn wait_final(
    pages: &PageServer,
    browser: &mut Chromium,
    limit: Duration,
) -> Result<Report, (String, Option<String>)> {
    let deadline = Instant::now() + limit;
    let mut last = None;
    loop {
        if let Some(status) = browser.exited() {
            return Err((format!("Chromium exited early ({status})"), last));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err((format!("no final report within {limit:?}"), last));
        }
        match pages
            .reports
            .recv_timeout(left.min(Duration::from_millis(200)))
        {
            Ok(body) => match Report::parse(&body) {
                Ok(r) if r.final_ => return Ok(r),
                Ok(r) => last = Some(r.summary()),
                Err(e) => return Err((format!("unreadable report ({e}): {body}"), last)),
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(("page server stopped".to_string(), last))
            }
        }
    }
}

/// Percent-encodes `s` for a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
