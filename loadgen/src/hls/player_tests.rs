//! The player against ringcast's own sans-IO HLS packager (the real one, not a
//! stand-in): loadgen's synthetic publisher's stamped frames go into a
//! `Packager` on a simulated clock, and every request the player writes is
//! answered from `Packager::answer` — held while the packager says wait, streamed
//! chunk by chunk for an LL-DASH segment in progress — as HTTP/1.1 responses fed
//! back in small reads.

use bytes::BytesMut;
use ringcast::protocol::hls::urls::{self, Resource};
use ringcast::protocol::hls::{Answer, Packager, PackagerConfig, PackagerEvent, Start};
use ringcast::protocol::{Frame, FrameKind};

use super::player::{Flow, HlsPlayer, Mode};
use crate::stamp::{stamp_avc_tag, Stamp};
use crate::stats::{Interval, RequestKind};
use crate::synthetic::{SyntheticConfig, SyntheticSource, NAL_LENGTH_SIZE};
use crate::viewer::Now;

const BASE_UNIX_US: u64 = 1_800_000_000_000_000;
const STEP_MS: u64 = 10;

fn now(ms: u64) -> Now {
    Now {
        mono_us: ms * 1000,
        unix_us: BASE_UNIX_US + ms * 1000,
    }
}

/// A publisher feeding ringcast's packager in real time (simulated).
struct Origin {
    pkg: Packager,
    src: SyntheticSource,
    sequence: u64,
    events: Vec<PackagerEvent>,
    video_pushed: u64,
}

impl Origin {
    fn new(audio: bool) -> Self {
        let src = SyntheticSource::new(SyntheticConfig {
            video_bitrate: 300_000,
            audio_bitrate: if audio { 32_000 } else { 0 },
            fps: 25,
            gop_ms: 1000,
        })
        .unwrap();
        let mut pkg =
            Packager::new("live", "s", PackagerConfig::default(), Start::Publish).unwrap();
        let mut events = Vec::new();
        for f in src.sequence_headers() {
            pkg.push(&f, 0, BASE_UNIX_US / 1000, &mut events);
        }
        Origin {
            pkg,
            src,
            sequence: 0,
            events,
            video_pushed: 0,
        }
    }

    /// Pushes every frame due by `t_ms`.
    fn advance_to(&mut self, t_ms: u64) {
        while self.src.next_timestamp() <= t_ms {
            let mut f: Frame = self.src.next_frame();
            if f.kind == FrameKind::Video {
                let mut stamped = Vec::new();
                let stamp = Stamp {
                    sent_unix_us: now(u64::from(f.timestamp)).unix_us,
                    sequence: self.sequence,
                };
                stamp_avc_tag(&f.payload, NAL_LENGTH_SIZE, stamp, &mut stamped).unwrap();
                f.payload = stamped.into();
                self.sequence += 1;
                self.video_pushed += 1;
            }
            let dts = u64::from(f.timestamp);
            self.pkg
                .push(&f, dts, now(dts).unix_us / 1000, &mut self.events);
            self.events.clear();
        }
    }
}

/// What the in-memory server holds for the player.
enum Held {
    None,
    /// A request the packager said to wait for: (resource, query, since).
    Waiting(Resource, String, u64),
    /// An LL-DASH segment in progress: (track, msn, next part).
    Streaming(ringcast::protocol::hls::TrackKind, u64, u32),
}

fn head(status: u16, len: Option<usize>, close: bool) -> Vec<u8> {
    let close = if close { "Connection: close\r\n" } else { "" };
    match len {
        Some(n) => format!("HTTP/1.1 {status} X\r\n{close}Content-Length: {n}\r\n\r\n"),
        None => format!("HTTP/1.1 {status} X\r\n{close}Transfer-Encoding: chunked\r\n\r\n"),
    }
    .into_bytes()
}

fn chunk(body: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
    out
}

struct Run {
    iv: Interval,
    origin: Origin,
    requests: Vec<String>,
    error: Option<super::player::HlsError>,
}

/// A fault the in-memory server injects.
#[derive(Clone, Copy)]
enum Fault {
    None,
    /// `Connection: close` after every n-th answer (a keep-alive request limit).
    CloseEvery(usize),
    /// Every n-th blocking reload answered with this status.
    FailReloads(usize, u16),
    /// Every n-th part answered with this status.
    FailParts(usize, u16),
}

/// Plays `path` from `join_ms` to `end_ms` of the stream.
fn play(path: &str, audio: bool, join_ms: u64, end_ms: u64) -> Run {
    play_faulty(path, audio, join_ms, end_ms, Fault::None)
}

/// Like [`play`], with `fault` injected.
fn play_faulty(path: &str, audio: bool, join_ms: u64, end_ms: u64, fault: Fault) -> Run {
    let mut origin = Origin::new(audio);
    origin.advance_to(join_ms);
    let mut iv = Interval::default();
    let mut out = BytesMut::new();
    let mode = Mode::of_path(path).unwrap();
    let mut player = HlsPlayer::start(mode, "127.0.0.1:8080", path, true, now(join_ms), &mut out);
    let mut held = Held::None;
    let mut requests = Vec::new();
    let mut error = None;
    let mut responses = 0usize;
    let (mut reloads, mut parts) = (0usize, 0usize);
    let mut reconnects = 0u64;
    let mut t = join_ms;
    'run: while t < end_ms {
        origin.advance_to(t);
        // Serve until the player waits for something.
        for _ in 0..64 {
            if !out.is_empty() {
                let text = String::from_utf8(out.to_vec()).unwrap();
                out.clear();
                let target = text
                    .strip_prefix("GET ")
                    .and_then(|r| r.split(' ').next())
                    .unwrap();
                assert!(text.contains("Host: 127.0.0.1:8080\r\n"));
                requests.push(target.to_owned());
                let (p, q) = target.split_once('?').unwrap_or((target, ""));
                let parsed = urls::parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
                held = Held::Waiting(parsed.resource, q.to_owned(), t);
            }
            let mut wire = Vec::new();
            match &mut held {
                Held::None => break,
                Held::Waiting(resource, query, since) => {
                    // Faults are decided once per request, when it arrives.
                    let fail = match (fault, *resource) {
                        (Fault::FailReloads(n, status), Resource::MediaPlaylist(_))
                            if query.contains("_HLS_msn") && *since == t =>
                        {
                            reloads += 1;
                            reloads.is_multiple_of(n).then_some(status)
                        }
                        (Fault::FailParts(n, status), Resource::Part { .. }) if *since == t => {
                            parts += 1;
                            parts.is_multiple_of(n).then_some(status)
                        }
                        _ => None,
                    };
                    let answer = match fail {
                        Some(status) => Err(status),
                        None => origin
                            .pkg
                            .answer(*resource, query, *since, t)
                            .map_err(|e| e.status()),
                    };
                    match answer {
                        Ok(Answer::Serve(reply)) => {
                            let body = reply.body.to_bytes();
                            responses += 1;
                            let close = matches!(fault, Fault::CloseEvery(n) if responses.is_multiple_of(n));
                            wire = head(200, Some(body.len()), close);
                            wire.extend_from_slice(&body);
                            held = Held::None;
                        }
                        Ok(Answer::Wait(_)) => break,
                        Ok(Answer::InProgress { track, msn }) => {
                            wire = head(200, None, false);
                            held = Held::Streaming(track, msn, 0);
                        }
                        Err(status) => {
                            wire = head(status, Some(0), false);
                            held = Held::None;
                        }
                    }
                }
                Held::Streaming(track, msn, next) => {
                    let c = origin.pkg.segment_chunks(*track, *msn, *next).unwrap();
                    if !c.body.is_empty() {
                        wire.extend_from_slice(&chunk(&c.body.to_bytes()));
                    }
                    *next = c.next_part;
                    if c.complete {
                        wire.extend_from_slice(b"0\r\n\r\n");
                        held = Held::None;
                    }
                }
            }
            if wire.is_empty() {
                break;
            }
            for piece in wire.chunks(1400) {
                match player.on_bytes(piece, now(t), &mut iv, &mut out) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Reconnect) => {
                        out.clear();
                        reconnects += 1;
                        player.reconnected(now(t), &mut out).unwrap();
                    }
                    Err(e) => {
                        error = Some(e);
                        break 'run;
                    }
                }
            }
        }
        if let Err(e) = player.on_timer(now(t), &mut out) {
            error = Some(e);
            break;
        }
        t += STEP_MS;
    }
    player.finish(now(t), &mut iv);
    iv.counters.reconnects = reconnects;
    Run {
        iv,
        origin,
        requests,
        error,
    }
}

fn requests(iv: &Interval, kind: RequestKind) -> u64 {
    iv.requests.ok[kind as usize]
}

fn latency_ms(iv: &Interval, q: f64) -> u64 {
    iv.hist.latency_us.value_at_quantile(q) / 1000
}

#[test]
fn ll_hls_plays_parts_one_hold_back_behind_live() {
    let run = play("/live/s.m3u8", true, 5_000, 15_000);
    assert_eq!(run.error, None, "requests: {:?}", run.requests);
    let (iv, c) = (&run.iv, run.iv.counters);
    assert_eq!(c.viewers_playing, 1);
    assert_eq!(c.stalls, 0, "stall ms max {}", iv.hist.stall_ms.max());
    assert_eq!(c.missing_frames, 0);
    assert_eq!(c.stamped_frames, c.video_frames);
    // Joined about 1 s behind live at 5 s and played to 15 s: ~11 s of 25 fps.
    assert!(
        (250..=300).contains(&c.video_frames),
        "{} frames",
        c.video_frames
    );
    assert!(c.audio_frames > 300, "{} audio frames", c.audio_frames);
    assert_eq!(c.keyframes, iv.hist.gop_frames.len() + 1);
    // PART-HOLD-BACK is 1.002 s: shown 1-1.5 s after being sent.
    let (p50, max) = (latency_ms(iv, 0.5), latency_ms(iv, 1.0));
    assert!((900..=1600).contains(&p50), "latency p50 {p50} ms");
    assert!(max <= 2000, "latency max {max} ms");
    assert!(
        iv.hist.startup_ms.max() <= 100,
        "startup {}",
        iv.hist.startup_ms.max()
    );
    assert_eq!(requests(iv, RequestKind::Multivariant), 1);
    assert_eq!(requests(iv, RequestKind::Init), 2);
    // One video and one audio part per 1/3 s part, each with a reload.
    let parts = requests(iv, RequestKind::Part);
    // (A 1 s GOP of 40 ms frames makes parts of 320, 320, 320 and 40 ms.)
    assert!(
        (60..=110).contains(&parts),
        "{parts} parts: {:?}",
        run.requests
    );
    assert!(requests(iv, RequestKind::BlockingReload) >= parts / 2);
    assert_eq!(iv.requests.errors, [0; 7], "{:?}", run.requests);
    assert!(
        run.requests.iter().any(|r| r.contains("?_HLS_msn=")),
        "blocking reloads"
    );
    assert!(run.origin.video_pushed >= 370);
}

#[test]
fn ts_hls_fetches_whole_segments_three_from_the_end() {
    let run = play("/live/s-ts.m3u8", true, 9_000, 19_000);
    assert_eq!(run.error, None, "requests: {:?}", run.requests);
    let (iv, c) = (&run.iv, run.iv.counters);
    assert_eq!((c.viewers_playing, c.stalls, c.missing_frames), (1, 0, 0));
    assert_eq!(c.stamped_frames, c.video_frames);
    assert!(c.video_frames >= 250, "{} frames", c.video_frames);
    // Three 2 s segments behind live: shown ~4-7 s after being sent.
    let p50 = latency_ms(iv, 0.5);
    assert!((3500..=8000).contains(&p50), "latency p50 {p50} ms");
    assert_eq!(requests(iv, RequestKind::Part), 0);
    assert!(requests(iv, RequestKind::Segment) >= 5);
    assert!(
        requests(iv, RequestKind::Playlist) >= 5,
        "reloads every half target duration: {:?}",
        run.requests
    );
    assert_eq!(iv.requests.errors, [0; 7]);
}

#[test]
fn ll_dash_streams_the_segment_in_progress() {
    let run = play("/live/s.mpd", true, 5_000, 15_000);
    assert_eq!(run.error, None, "requests: {:?}", run.requests);
    let (iv, c) = (&run.iv, run.iv.counters);
    assert_eq!((c.viewers_playing, c.missing_frames, c.stalls), (1, 0, 0));
    assert_eq!(c.stamped_frames, c.video_frames);
    assert!(c.video_frames >= 230, "{} frames", c.video_frames);
    // The MPD's target latency (PART-HOLD-BACK + one part = 1.336 s).
    let p50 = latency_ms(iv, 0.5);
    assert!((1200..=1600).contains(&p50), "latency p50 {p50} ms");
    assert_eq!(requests(iv, RequestKind::Init), 1);
    assert!(requests(iv, RequestKind::Segment) >= 4);
    assert!(requests(iv, RequestKind::Mpd) >= 2, "MPD refreshed");
    assert_eq!(iv.requests.errors, [0; 7], "{:?}", run.requests);
}

#[test]
fn video_only_ll_hls_needs_no_audio_rendition() {
    let run = play("/live/s.m3u8", false, 3_000, 8_000);
    assert_eq!(run.error, None, "requests: {:?}", run.requests);
    let c = run.iv.counters;
    assert_eq!((c.viewers_playing, c.stalls, c.missing_frames), (1, 0, 0));
    assert_eq!(c.audio_frames, 0);
    assert_eq!(requests(&run.iv, RequestKind::Init), 1);
    assert!(run.requests.iter().all(|r| !r.contains("/a/")));
}

#[test]
fn a_server_closing_keep_alive_connections_is_reconnected_to() {
    let run = play_faulty("/live/s.m3u8", true, 5_000, 10_000, Fault::CloseEvery(7));
    assert_eq!(run.error, None, "requests: {:?}", run.requests);
    let c = run.iv.counters;
    assert_eq!((c.viewers_playing, c.stalls, c.missing_frames), (1, 0, 0));
    assert!(c.reconnects >= 5, "{} reconnects", c.reconnects);
    assert_eq!(run.iv.requests.errors, [0; 7]);
}

#[test]
fn refused_reloads_are_retried_and_lost_parts_resynced() {
    let run = play_faulty(
        "/live/s.m3u8",
        false,
        5_000,
        12_000,
        Fault::FailReloads(4, 503),
    );
    assert_eq!(run.error, None, "requests: {:?}", run.requests);
    let c = run.iv.counters;
    assert_eq!((c.viewers_playing, c.missing_frames), (1, 0));
    let reload_errors = run.iv.requests.errors[RequestKind::BlockingReload as usize];
    assert!(reload_errors >= 3, "{reload_errors} refused reloads");
    // Each refused reload is asked again 250 ms later: the part comes later, the
    // buffer (1 s) covers it.
    assert_eq!(c.stalls, 0);
    assert!(latency_ms(&run.iv, 0.99) < 1600);

    let run = play_faulty(
        "/live/s.m3u8",
        false,
        5_000,
        12_000,
        Fault::FailParts(10, 404),
    );
    assert_eq!(run.error, None, "requests: {:?}", run.requests);
    let iv = &run.iv;
    assert!(iv.requests.errors[RequestKind::Part as usize] >= 2);
    // Resynced from the playlist each time, and kept playing to the end.
    assert!(requests(iv, RequestKind::Playlist) >= 3);
    assert!(requests(iv, RequestKind::Part) >= 20);
    assert!(latency_ms(iv, 1.0) < 3000);
}

#[test]
fn a_stream_that_is_never_served_fails_the_viewer_with_its_status() {
    let run = play_faulty(
        "/live/s.m3u8",
        false,
        5_000,
        8_000,
        Fault::FailReloads(1, 503),
    );
    // The first plain playlist loads; every blocking reload is refused.
    assert_eq!(
        run.error,
        Some(super::player::HlsError::Status(503)),
        "requests: {:?}",
        run.requests
    );
    assert_eq!(
        run.iv.requests.errors[RequestKind::BlockingReload as usize],
        u64::from(super::player::MAX_ERRORS_IN_A_ROW)
    );
}
