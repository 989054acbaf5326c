//! The cross-core mesh in the real server, squeezed: a one-slot control ring and
//! the smallest media ring. Every subscription and snapshot still arrives (control
//! backs up, never drops), and replica viewers on the other core play without a
//! gap.

mod common;

use std::time::Duration;

use common::*;
use ringcast::protocol::FrameKind;

/// Plays `path` until `pictures` coded pictures came, each at most 80 ms after
/// the previous one (25 fps: a larger step is a lost frame); returns the viewer,
/// still connected.
fn watch(port: u16, path: &str, pictures: u32) -> FlvViewer {
    let mut viewer = FlvViewer::connect(port, path);
    let mut last_ts = None::<u32>;
    let mut seen = 0;
    while seen < pictures {
        let frame = viewer
            .next_frame()
            .unwrap_or_else(|| panic!("{path}: ended after {seen} pictures"));
        if frame.kind != FrameKind::Video || frame.sequence_header {
            continue;
        }
        match last_ts {
            None => assert!(frame.keyframe, "{path}: first picture must be a keyframe"),
            Some(prev) => {
                let step = frame.timestamp.wrapping_sub(prev);
                assert!(step <= 80, "{path}: gap of {step} ms after {seen} pictures");
            }
        }
        last_ts = Some(frame.timestamp);
        seen += 1;
    }
    viewer
}

fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

#[test]
fn a_one_slot_control_ring_still_delivers_every_subscription() {
    let server = Server::start(
        2,
        "[runtime]\ncross_core_control_queue = 1\ncross_core_queue = 64\n",
    );
    let names = ["m1", "m2"];
    let mut publishers: Vec<Proc> = names
        .iter()
        .map(|n| publish(&server.rtmp_url("live", n), 60))
        .collect();
    for n in names {
        wait_live(&server, "live", n, Duration::from_secs(20));
    }
    let port = server.http_port;
    let viewers: Vec<_> = names
        .iter()
        .flat_map(|n| (0..12).map(move |_| format!("/live/{n}.flv")))
        .map(|path| std::thread::spawn(move || watch(port, &path, 50)))
        .collect();
    // Keep every viewer connected until the API has been read.
    let viewers: Vec<FlvViewer> = viewers.into_iter().map(|v| v.join().unwrap()).collect();
    for n in names {
        let by_core = viewers_by_core(&server, "live", n);
        assert_eq!(by_core.iter().sum::<u64>(), 12, "{by_core:?}");
        assert!(
            by_core.iter().all(|&c| c > 0),
            "SO_REUSEPORT put viewers of {n} on both cores: {by_core:?}"
        );
    }
    drop(viewers);
    let (status, metrics) = server.http_get("/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        counter(
            &metrics,
            "ringcast_dropped_frames_total{reason=\"mesh_gap\"}"
        ),
        0.0
    );
    assert_eq!(
        counter(
            &metrics,
            "ringcast_dropped_frames_total{reason=\"queue_cap\"}"
        ),
        0.0
    );
    for p in &mut publishers {
        p.kill();
    }
}
