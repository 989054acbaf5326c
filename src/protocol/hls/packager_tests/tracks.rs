//! Which tracks are carried: one-track streams, codecs left out, HEVC
//! without a TS rendition, and timestamps that stop advancing.

use super::*;

fn only(kind: FrameKind, loops: u64) -> (Packager, Vec<PackagerEvent>) {
    let (seq, coded) = stream(AVC420, loops, 0);
    let mut p = Packager::new("live", "one", PackagerConfig::default(), Start::Publish).unwrap();
    let mut ev = Vec::new();
    for f in seq.iter().filter(|f| f.kind == kind) {
        p.push(f, 0, 0, &mut ev);
    }
    let coded: Vec<_> = coded.into_iter().filter(|(f, _)| f.kind == kind).collect();
    feed(&mut p, &coded, &mut ev);
    (p, ev)
}

#[test]
fn audio_only_and_video_only_streams_have_one_rendition() {
    for (kind, track, other) in [
        (FrameKind::Audio, TrackKind::Audio, TrackKind::Video),
        (FrameKind::Video, TrackKind::Video, TrackKind::Audio),
    ] {
        let (p, ev) = only(kind, 30);
        assert!(!ev.iter().any(|e| matches!(e, PackagerEvent::Warning(_))));
        let tl = p.timeline().unwrap();
        assert!(tl.segments().len() >= 3, "{kind:?}");
        let mv = text(&p, Resource::Multivariant, "");
        assert!(!mv.contains("EXT-X-MEDIA"), "{mv}");
        assert!(mv.contains(&format!(
            "one/{}.m3u8",
            crate::protocol::hls::urls::track_letter(track)
        )));
        let msn = tl.segments()[0].msn;
        serve(&p, Resource::Segment { track, msn }, "");
        serve(&p, Resource::TsSegment { msn }, "");
        assert_eq!(
            p.answer(Resource::MediaPlaylist(other), "", 0, 0)
                .unwrap_err()
                .status(),
            404
        );
        assert!(!text(&p, Resource::MediaPlaylist(track), "").contains("RENDITION-REPORT"));
    }
}

#[test]
fn a_codec_neither_muxer_carries_is_left_out_with_one_warning() {
    let (seq, coded) = stream(AVC420, 20, 0);
    let mut p = Packager::new("live", "mp3", PackagerConfig::default(), Start::Publish).unwrap();
    let mut ev = Vec::new();
    for f in seq.iter().filter(|f| f.kind == FrameKind::Video) {
        p.push(f, 0, 0, &mut ev);
    }
    // MP3 (sound format 2), 44.1 kHz stereo: no sequence header at all.
    let mp3 = Frame::new(
        FrameKind::Audio,
        0,
        Bytes::from_static(&[0x2F, 0xFF, 0xFB, 0x90, 0x00]),
    );
    for (f, dts) in &coded {
        let f = if f.kind == FrameKind::Audio { &mp3 } else { f };
        p.push(f, *dts, 0, &mut ev);
    }
    let warnings = warnings(&ev);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(matches!(
        warnings[0],
        PackagerWarning::TrackLeftOut {
            track: TrackKind::Audio,
            ..
        }
    ));
    assert!(warnings[0].to_string().contains("MP3") || warnings[0].to_string().contains("Mp3"));
    assert!(p.has_ts());
    let mv = text(&p, Resource::Multivariant, "");
    assert!(!mv.contains("mp4a"));
}

/// From `ffmpeg -f lavfi -i testsrc=size=352x200 -c:v libx265 -f hevc`
/// (the same parameter sets as `flv::hevc`'s tests).
const HEVC_VPS: &[u8] = &[
    0x40, 0x01, 0x0C, 0x01, 0xFF, 0xFF, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03,
    0x00, 0x00, 0x03, 0x00, 0x3C, 0x95, 0x98, 0x09,
];
const HEVC_SPS: &[u8] = &[
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x3C, 0xA0, 0x0B, 0x08, 0x0C, 0x96, 0x59, 0x59, 0xA4, 0x93, 0x2B, 0xC0, 0x5A, 0x02, 0x00,
    0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10,
];
const HEVC_PPS: &[u8] = &[0x44, 0x01, 0xC1, 0x72, 0xB4, 0x62, 0x40];

/// Legacy FLV HEVC (codec id 12) tags: the hvcC sequence header and coded
/// frames (length-prefixed NAL units; fMP4 does not decode them).
fn hevc_tags(count: u64) -> (Frame, Vec<(Frame, u64)>) {
    let mut seq = vec![
        0x1C, 0, 0, 0, 0, 1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 60, 0xF0, 0, 0xFC, 0xFD,
        0xF8, 0xF8, 0, 0, 0x0F, 3,
    ];
    for (t, nal) in [(32u8, HEVC_VPS), (33, HEVC_SPS), (34, HEVC_PPS)] {
        seq.extend_from_slice(&[0x80 | t, 0, 1]);
        seq.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        seq.extend_from_slice(nal);
    }
    let seq = Frame::new(FrameKind::Video, 0, Bytes::from(seq));
    let frames = (0..count)
        .map(|i| {
            let key = i % 25 == 0;
            let nal: &[u8] = if key {
                &[0x26, 0x01, 0xAF]
            } else {
                &[0x02, 0x01, 0xD0]
            };
            let mut body = vec![if key { 0x1C } else { 0x2C }, 1, 0, 0, 0];
            body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            body.extend_from_slice(nal);
            let dts = i * 40;
            (
                Frame::new(FrameKind::Video, dts as u32, Bytes::from(body)),
                dts,
            )
        })
        .collect();
    (seq, frames)
}

#[test]
fn hevc_goes_out_as_fmp4_only_with_one_warning() {
    let (vseq, video) = hevc_tags(300);
    assert!(vseq.sequence_header && video[0].0.keyframe);
    let (seq, coded) = stream(AVC420, 30, 0);
    let mut frames: Vec<(Frame, u64)> = coded
        .into_iter()
        .filter(|(f, d)| f.kind == FrameKind::Audio && *d < 12_000)
        .chain(video)
        .collect();
    frames.sort_by_key(|(f, d)| (*d, f.kind == FrameKind::Audio));
    let mut p = Packager::new("live", "hevc", PackagerConfig::default(), Start::Publish).unwrap();
    let mut ev = Vec::new();
    p.push(&vseq, 0, 0, &mut ev);
    for f in seq.iter().filter(|f| f.kind == FrameKind::Audio) {
        p.push(f, 0, 0, &mut ev);
    }
    feed(&mut p, &frames, &mut ev);
    let warnings = warnings(&ev);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(matches!(warnings[0], PackagerWarning::NoTsRendition { .. }));
    assert!(!p.has_ts());
    assert_eq!(
        p.answer(Resource::TsPlaylist, "", 0, 0)
            .unwrap_err()
            .status(),
        404
    );
    let mv = text(&p, Resource::Multivariant, "");
    assert!(mv.contains("hvc1.1.2.L60.B0"), "{mv}");
    let msn = p.timeline().unwrap().segments()[0].msn;
    let (seg, _, _) = serve(
        &p,
        Resource::Segment {
            track: TrackKind::Video,
            msn,
        },
        "",
    );
    assert_eq!(&seg[4..8], b"moof");
    assert!(p.answer(Resource::TsSegment { msn }, "", 0, 0).is_err());
    serve(
        &p,
        Resource::Segment {
            track: TrackKind::Audio,
            msn,
        },
        "",
    );
}

#[test]
fn timestamps_that_stop_advancing_cannot_grow_a_part_or_a_ts_segment_without_bound() {
    let mut config = PackagerConfig::default();
    config.chunk.max_samples = 50;
    config.max_ts_segment_bytes = 5_000;
    let (seq, coded) = stream(AVC444, 2, 0);
    let mut p = Packager::new("live", "stuck", config, Start::Publish).unwrap();
    let mut ev = Vec::new();
    for f in &seq {
        p.push(f, 0, 0, &mut ev);
    }
    let video: Vec<&Frame> = coded
        .iter()
        .filter(|(f, _)| f.kind == FrameKind::Video)
        .map(|(f, _)| f)
        .collect();
    // The first keyframe, then 500 frames all at DTS 0.
    for i in 0..500 {
        p.push(video[if i == 0 { 0 } else { 1 + i % 20 }], 0, 0, &mut ev);
    }
    let full = ev
        .iter()
        .filter(|e| {
            matches!(
                e,
                PackagerEvent::Warning(PackagerWarning::PartFull { limit: 50, .. })
            )
        })
        .count();
    assert_eq!(full, 450);
    assert!(ev.iter().any(|e| matches!(
        e,
        PackagerEvent::Warning(PackagerWarning::TsSegmentFull { .. })
    )));
    // The stream resumes: frames that advance time go in, so the part
    // closes at PART-TARGET; over max_samples it is refused (typed, 404) and
    // the next part is whole again.
    for (f, dts) in coded.iter().filter(|(_, d)| *d >= 40) {
        p.push(f, *dts, 0, &mut ev);
    }
    let tl = p.timeline().unwrap();
    let parts = match tl.segment(0) {
        Some(s) => s.parts.as_slice(),
        None => tl.open_segment().unwrap().1,
    };
    assert!(parts[0].video.frames > 50 && parts[0].video.frames < 50 + 334 / 40 + 1);
    assert!(ev.iter().any(|e| matches!(
        e,
        PackagerEvent::Warning(PackagerWarning::Chunk {
            msn: 0,
            part: 0,
            error: crate::protocol::fmp4::Fmp4Error::TooManySamples { .. },
            ..
        })
    )));
    let part = |part| Resource::Part {
        track: TrackKind::Video,
        msn: 0,
        part,
    };
    assert_eq!(p.answer(part(0), "", 0, 0).unwrap_err().status(), 404);
    let (b, _, _) = serve(&p, part(1), "");
    assert_eq!(&b[4..8], b"moof");
}
