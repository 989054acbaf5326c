//! The playlists rendered by `protocol::hls`, read by ffmpeg's own HLS
//! demuxer: ffmpeg encodes a 12 s, 30 fps, 2 s GOP H.264 stream into fMP4 and
//! MPEG-TS segments; the segments are laid out under ringcast's URL scheme as
//! the timeline numbers them, the multivariant, LL-HLS media and TS playlists
//! are written beside them, and ffprobe must decode all 360 frames through
//! each playlist. ffmpeg and ffprobe are required (the test fails naming the
//! missing tool).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};

use common::media::{encode_testsrc, run_tool, TempDir};
use ringcast::protocol::hls::playlist::{
    render_media, render_multivariant, render_ts, InitRef, MediaParams, Variants, VideoVariant,
};
use ringcast::protocol::hls::timeline::{FrameMeta, StartPoint, Timeline, TrackKind, Tracks};
use ringcast::protocol::hls::urls::{self, Resource};
use ringcast::protocol::hls::HlsConfig;

const FRAMES: u64 = 360;

fn encode(dir: &Path, kind: &str, ext: &str) -> Vec<PathBuf> {
    let seg = dir.join(format!("ff-{kind}-%d.{ext}"));
    let list = dir.join(format!("ff-{kind}.m3u8"));
    encode_testsrc(
        "size=320x240:rate=30",
        "12",
        &[
            "-c:v",
            "libx264",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
            "-bf",
            "0",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_playlist_type",
            "vod",
            "-hls_segment_type",
            kind,
            "-hls_fmp4_init_filename",
            "ff-init.mp4",
            "-hls_segment_filename",
            seg.to_str().unwrap(),
            list.to_str().unwrap(),
        ],
    );
    (0..)
        .map(|i| dir.join(format!("ff-{kind}-{i}.{ext}")))
        .take_while(|p| p.exists())
        .collect()
}

fn count_frames(playlist: &Path) -> u64 {
    let (out, _) = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            playlist.to_str().unwrap(),
        ],
    );
    // A multivariant playlist lists the stream once per program as well.
    let first = out.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    first
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe said {out:?}"))
}

#[test]
fn ffmpeg_plays_every_frame_through_the_rendered_playlists() {
    let tmp = TempDir::new("hlsplay", "playlists");
    let dir = tmp.0.clone();
    let stream_dir = dir.join("cam");
    std::fs::create_dir_all(stream_dir.join("v")).unwrap();

    // The timeline, fed the same stream's frame metadata.
    let mut tl = Timeline::new(
        HlsConfig::default(),
        Tracks {
            video: true,
            audio: false,
        },
        StartPoint::PublishStart,
    )
    .unwrap();
    let mut ev = Vec::new();
    for i in 0..FRAMES {
        let f = FrameMeta {
            track: TrackKind::Video,
            keyframe: i % 60 == 0,
            dts_ms: i * 1000 / 30,
            size: 1000,
        };
        tl.push(f, 1_800_000_000_000, &mut ev);
    }
    tl.finish(12_000, &mut ev);
    let msns: Vec<u64> = tl.segments().iter().map(|s| s.msn).collect();
    assert_eq!(msns, (0..6).collect::<Vec<_>>());

    // fMP4: segments under their URLs.
    let fmp4 = encode(&dir, "fmp4", "m4s");
    assert_eq!(fmp4.len(), msns.len(), "ffmpeg cut as many segments");
    let init = std::fs::read(dir.join("ff-init.mp4")).unwrap();
    let id = urls::config_id(&init);
    let mut rel = String::new();
    urls::write_track_file(
        &mut rel,
        Resource::Init {
            track: TrackKind::Video,
            id,
        },
    );
    std::fs::write(stream_dir.join(&rel), &init).unwrap();
    for (msn, src) in msns.iter().zip(&fmp4) {
        rel.clear();
        urls::write_track_file(
            &mut rel,
            Resource::Segment {
                track: TrackKind::Video,
                msn: *msn,
            },
        );
        std::fs::copy(src, stream_dir.join(&rel)).unwrap();
    }
    let mut text = String::new();
    render_media(
        &mut text,
        &tl,
        MediaParams {
            track: TrackKind::Video,
            inits: &[InitRef { from_epoch: 0, id }],
            other_rendition: false,
            skip: false,
        },
    );
    assert!(
        text.contains("#EXT-X-PART:"),
        "the LL tags are there for ffmpeg to skip"
    );
    std::fs::write(stream_dir.join("v.m3u8"), &text).unwrap();
    render_multivariant(
        &mut text,
        "cam",
        &Variants {
            video: Some(VideoVariant {
                codecs: "avc1.64000d".into(),
                resolution: Some((320, 240)),
            }),
            audio_codecs: None,
            bandwidth: 500_000,
        },
    );
    std::fs::write(dir.join("cam.m3u8"), &text).unwrap();
    assert_eq!(
        count_frames(&dir.join("cam.m3u8")),
        FRAMES,
        "LL-HLS via the multivariant playlist"
    );

    // MPEG-TS: segments under their URLs, the classic playlist beside.
    let ts = encode(&dir, "mpegts", "ts");
    assert_eq!(ts.len(), msns.len());
    for (msn, src) in msns.iter().zip(&ts) {
        let mut p = String::new();
        urls::write_path(&mut p, "live", "cam", Resource::TsSegment { msn: *msn });
        let file = p.strip_prefix("/live/").unwrap();
        std::fs::copy(src, dir.join(file)).unwrap();
    }
    render_ts(&mut text, &tl, "cam");
    std::fs::write(dir.join("cam-ts.m3u8"), &text).unwrap();
    assert_eq!(
        count_frames(&dir.join("cam-ts.m3u8")),
        FRAMES,
        "TS playlist"
    );
}
