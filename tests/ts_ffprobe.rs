//! The MPEG-TS muxer's segments decoded by ffmpeg/ffprobe: real H.264 + AAC
//! frames (the committed FLV fixtures, demuxed by ringcast's own FLV demuxer and
//! looped to more than 100 video frames) are cut into segments at keyframes,
//! written to a temp dir and decoded one by one and through a hand-written m3u8,
//! which proves they concatenate across segment boundaries.
//!
//! ffmpeg and ffprobe must be installed (`tests/run.sh` installs them); a missing
//! tool fails the test and names it.

mod common;

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use common::media::{decodes_cleanly, flv_fixture, frames_read, is_coded, probe_streams};
use common::media::{repeat, run_tool, TempDir};
use ringcast::protocol::flv::frame::TimestampUnwrapper;
use ringcast::protocol::ts::{TsLimits, TsMuxer, TsTracks, Written, PTS_DELAY_MS};
use ringcast::protocol::{Frame, FrameKind};
use serde_json::Value;

/// The file's media frames `loops` times over, each pass shifted by the file's
/// length so timestamps keep rising, as a publisher looping the file would send.
fn looped(frames: &[Frame], loops: u32) -> Vec<Frame> {
    let end = |kind, step| {
        frames
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.timestamp + step)
            .max()
            .unwrap_or(0)
    };
    // One video frame (40 ms at 25 fps) or AAC frame (≤ 24 ms) past the last.
    let period = end(FrameKind::Video, 40).max(end(FrameKind::Audio, 24));
    let period = period.div_ceil(40) * 40;
    let media: Vec<Frame> = frames
        .iter()
        .filter(|f| f.kind != FrameKind::Script)
        .cloned()
        .collect();
    repeat(&media, loops, period)
}

/// One muxed segment: its bytes, and its first and end times in ms.
struct Segment {
    bytes: Vec<u8>,
    start_ms: i64,
    end_ms: i64,
}

/// Cuts `frames` into segments the way a packager does: at a random access point
/// once the open segment is at least `target_ms` long.
fn segment(frames: &[Frame], tracks: TsTracks, target_ms: i64) -> Vec<Segment> {
    let mut m = TsMuxer::new(tracks, TsLimits::default()).expect("muxer");
    let mut unwrap = TimestampUnwrapper::default();
    let mut out = BytesMut::new();
    let mut segments: Vec<Segment> = Vec::new();
    let mut open: Option<i64> = None;
    let mut last_ms = 0;
    for f in frames {
        let dts = unwrap.unwrap(f.timestamp);
        if m.is_random_access(f) && !matches!(open, Some(start) if dts - start < target_ms) {
            if let Some(start) = open {
                segments.push(Segment {
                    bytes: out.split().to_vec(),
                    start_ms: start,
                    end_ms: dts,
                });
            }
            m.start_segment(&mut out);
            open = Some(dts);
        }
        if open.is_none() && !f.sequence_header {
            continue;
        }
        if let Written::Pes { .. } = m.write_frame(f, dts, &mut out).expect("muxes") {
            last_ms = dts;
        }
    }
    let start = open.expect("at least one segment");
    segments.push(Segment {
        bytes: out.split().to_vec(),
        start_ms: start,
        end_ms: last_ms + 40,
    });
    segments
}

/// Writes the segments and a hand-written live-style m3u8 over them; returns the
/// playlist's path.
fn write_hls(dir: &Path, segments: &[Segment]) -> PathBuf {
    let mut m3u8 = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    let longest = segments
        .iter()
        .map(|s| s.end_ms - s.start_ms)
        .max()
        .unwrap_or(0);
    m3u8 += &format!("#EXT-X-TARGETDURATION:{}\n", (longest + 999) / 1000);
    m3u8 += "#EXT-X-MEDIA-SEQUENCE:0\n";
    for (i, s) in segments.iter().enumerate() {
        let name = format!("seg{i}.ts");
        std::fs::write(dir.join(&name), &s.bytes).expect("write segment");
        m3u8 += &format!(
            "#EXTINF:{:.3},\n{name}\n",
            (s.end_ms - s.start_ms) as f64 / 1000.0
        );
    }
    m3u8 += "#EXT-X-ENDLIST\n";
    let path = dir.join("index.m3u8");
    std::fs::write(&path, m3u8).expect("write playlist");
    path
}

fn stream<'a>(streams: &'a [Value], kind: &str) -> &'a Value {
    streams
        .iter()
        .find(|s| s["codec_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} stream in {streams:?}"))
}

/// Video frame presentation times ffprobe decodes from `input`, in seconds.
fn video_frame_times(input: &Path) -> Vec<f64> {
    let input = input.to_str().expect("utf-8 path");
    let (stdout, _) = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
            input,
        ],
    );
    stdout
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

fn count(frames: &[Frame], kind: FrameKind) -> u64 {
    // Coded frames only: not sequence headers, not AVC end-of-sequence tags.
    frames.iter().filter(|f| is_coded(f, kind)).count() as u64
}

fn check_av_file(name: &str, loops: u32, size: (u64, u64), rate: &str, channels: u64) {
    let frames = looped(&flv_fixture(name), loops);
    let video_frames = count(&frames, FrameKind::Video);
    assert!(video_frames >= 100, "{video_frames} video frames");
    let tracks = TsTracks {
        video: true,
        audio: true,
    };
    let segments = segment(&frames, tracks, 1000);
    assert!(segments.len() >= 3, "{} segments", segments.len());
    let dir = TempDir::new("ts", name);
    let playlist = write_hls(&dir.0, &segments);

    let mut per_segment = 0;
    for i in 0..segments.len() {
        let seg = dir.0.join(format!("seg{i}.ts"));
        decodes_cleanly(&seg);
        let streams = probe_streams(&seg);
        let v = stream(&streams, "video");
        assert_eq!(v["codec_name"], "h264");
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(size.0), Some(size.1))
        );
        per_segment += frames_read(v);
        let a = stream(&streams, "audio");
        assert_eq!(a["codec_name"], "aac");
        assert_eq!(
            (a["sample_rate"].as_str(), a["channels"].as_u64()),
            (Some(rate), Some(channels))
        );
    }
    assert_eq!(
        per_segment, video_frames,
        "every segment decodes on its own"
    );

    decodes_cleanly(&playlist);
    let streams = probe_streams(&playlist);
    assert_eq!(frames_read(stream(&streams, "video")), video_frames);
    assert_eq!(
        frames_read(stream(&streams, "audio")),
        count(&frames, FrameKind::Audio)
    );
    // Across the playlist, every picture is presented exactly when the input
    // said (DTS + composition time, plus the muxer's fixed delay): nothing lost,
    // shifted or duplicated at the segment boundaries.
    let mut want: Vec<i64> = frames
        .iter()
        .filter(|f| f.kind == FrameKind::Video && f.payload.get(1) == Some(&1))
        .map(|f| {
            let cts = f.payload.get(2..5).expect("AVC header");
            let cts = i32::from_be_bytes([cts[0], cts[1], cts[2], 0]) >> 8;
            i64::from(f.timestamp) + i64::from(cts) + PTS_DELAY_MS
        })
        .collect();
    want.sort_unstable();
    let got: Vec<i64> = video_frame_times(&playlist)
        .iter()
        .map(|t| (t * 1000.0).round() as i64)
        .collect();
    assert_eq!(got, want);
}

#[test]
fn high444_segments_and_playlist_decode() {
    check_av_file("avc444_aac_320x240.flv", 5, (320, 240), "44100", 1);
}

#[test]
fn main420_segments_and_playlist_decode() {
    check_av_file("avc420_aac_320x180.flv", 12, (320, 180), "48000", 2);
}

/// Muxes `frames` with only the `kind` ("audio" or "video") track into 1 s
/// segments (at least 3), writes them with a playlist, and checks that ffmpeg
/// decodes the playlist and ffprobe finds that one stream alone; returns it.
fn only_stream(frames: &[Frame], kind: &str) -> Value {
    let tracks = TsTracks {
        video: kind == "video",
        audio: kind == "audio",
    };
    let segments = segment(frames, tracks, 1000);
    assert!(segments.len() >= 3, "{} segments", segments.len());
    let dir = TempDir::new("ts", &format!("{kind}-only"));
    let playlist = write_hls(&dir.0, &segments);
    decodes_cleanly(&playlist);
    let streams = probe_streams(&playlist);
    assert_eq!(streams.len(), 1, "{kind} only: {streams:?}");
    stream(&streams, kind).clone()
}

#[test]
fn audio_only_and_video_only_streams_decode() {
    let frames = looped(&flv_fixture("avc420_aac_320x180.flv"), 12);
    let audio_only: Vec<Frame> = frames
        .iter()
        .filter(|f| f.kind == FrameKind::Audio)
        .cloned()
        .collect();
    let a = only_stream(&audio_only, "audio");
    assert_eq!(a["codec_name"], "aac");
    assert_eq!(frames_read(&a), count(&audio_only, FrameKind::Audio));

    let v = only_stream(&frames, "video");
    assert_eq!(frames_read(&v), count(&frames, FrameKind::Video));
    assert!(frames_read(&v) >= 100);
}
