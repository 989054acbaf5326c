//! Memory held by idle streams: what a stream keeps for its lifetime (metadata,
//! sequence headers) must cost about its own size, not the 4 MiB payload-arena
//! block it arrived in.

mod common;

use std::time::{Duration, Instant};

use common::raw_rtmp::*;
use common::*;

const STREAMS: usize = 1000;
/// Audio frames each publisher sends after its headers, and their size: about
/// 300 KB per stream, so the 1,000 bursts fill ~70 arena blocks in turn.
const BURST_FRAMES: usize = 100;
const FRAME_BYTES: usize = 3000;

/// Sum of a metric's samples whose label set contains `label`.
fn metric_with(server: &Server, name: &str, label: &str) -> f64 {
    let (_, body) = server.http_get("/metrics");
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_thousand_idle_streams_hold_memory_for_what_they_keep() {
    // One core, so every payload goes through one arena; idle publishers stay.
    let server = Server::start(1, "[limits]\nidle_timeout = \"1h\"\n");
    let baseline = server.rss_bytes();
    let mut publishers = Vec::with_capacity(STREAMS);
    let burst: Vec<_> = (0..BURST_FRAMES)
        .map(|i| audio_frame(23 * i as u32, FRAME_BYTES))
        .collect();
    for i in 0..STREAMS {
        let mut p = RawClient::publish(
            server.rtmp_port,
            "live",
            &format!("idle{i}"),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|events| panic!("publisher {i} not started: {events:?}"));
        p.send(&[metadata_frame(), audio_header_frame(), video_header_frame()])
            .unwrap();
        p.send(&burst).unwrap();
        publishers.push(p);
    }
    // Wait until the server has taken in every frame, so what is held is final.
    let expected = (STREAMS * (3 + BURST_FRAMES)) as f64;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = metric_with(
            &server,
            "ringcast_received_frames_total",
            "source=\"publisher\"",
        );
        if got >= expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server took in {got} of {expected} frames"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, streams) = server.http_get("/metrics");
    assert!(
        streams.contains(&format!("ringcast_streams {STREAMS}")),
        "every stream still live"
    );
    let held = server.rss_bytes().saturating_sub(baseline);
    let sent = (STREAMS * BURST_FRAMES * FRAME_BYTES) as u64;
    // What the streams keep: a few hundred bytes of context each, plus per
    // connection and per stream state. Budget 48 KiB each, plus the arena's own
    // footprint (current block + retired ones kept for reuse, 9 x 4 MiB) and
    // slack for the allocator. Pinned blocks would hold roughly all `sent`.
    let budget = (STREAMS as u64) * (48 << 10) + (9 * (4 << 20)) + (16 << 20);
    eprintln!(
        "rss grew {} MiB for {STREAMS} idle streams after {} MiB of media (budget {} MiB)",
        held >> 20,
        sent >> 20,
        budget >> 20
    );
    assert!(
        held < budget,
        "idle streams hold {held} bytes, more than the {budget} their state needs"
    );
    drop(publishers);
}
