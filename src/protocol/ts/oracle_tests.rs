//! The muxer's output read back by an independent parser (the `mpeg2ts` crate):
//! real FLV fixtures in, every packet, table and PES checked.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use mpeg2ts::es::StreamType;
use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};

use super::*;
use crate::protocol::flv::fixture_frames;
use crate::protocol::flv::frame::TimestampUnwrapper;
use crate::protocol::{Frame, FrameKind};

/// A muxer for both tracks that has taken `frames`' sequence headers (each
/// accepted as a config) and opened a segment, with the bytes written so far.
fn configured(frames: &[Frame]) -> (TsMuxer, BytesMut) {
    let mut m = TsMuxer::new(both(), TsLimits::default()).unwrap();
    let mut out = BytesMut::new();
    for f in frames.iter().filter(|f| f.sequence_header) {
        assert_eq!(m.write_frame(f, 0, &mut out), Ok(Written::Config));
    }
    m.start_segment(&mut out);
    (m, out)
}

/// The first AAC frame (not the sequence header) of `frames`.
fn first_audio(frames: &[Frame]) -> &Frame {
    frames
        .iter()
        .find(|f| f.kind == FrameKind::Audio && !f.sequence_header)
        .unwrap()
}

/// Muxes `frames` into segments: a new one at every random access point once the
/// current one holds `min_frames` media frames.
fn mux(frames: &[Frame], tracks: TsTracks, min_frames: usize) -> Vec<Bytes> {
    let mut m = TsMuxer::new(tracks, TsLimits::default()).unwrap();
    let mut unwrap = TimestampUnwrapper::default();
    let (mut segments, mut out, mut in_segment) = (Vec::new(), BytesMut::new(), None);
    for f in frames {
        if m.is_random_access(f) && !matches!(in_segment, Some(n) if n < min_frames) {
            if in_segment.is_some() {
                segments.push(out.split().freeze());
            }
            m.start_segment(&mut out);
            in_segment = Some(0);
        }
        let dts = unwrap.unwrap(f.timestamp);
        if in_segment.is_none() && !f.sequence_header {
            continue; // before the first random access point
        }
        if let Written::Pes { .. } = m.write_frame(f, dts, &mut out).unwrap() {
            *in_segment.as_mut().unwrap() += 1;
        }
    }
    segments.push(out.split().freeze());
    segments
}

/// What the oracle read.
#[derive(Default, Debug)]
struct Parsed {
    packets: usize,
    pmt_streams: Vec<(StreamType, u16)>,
    pcr_pid: Option<u16>,
    /// (pid, pcr base) in order.
    pcrs: Vec<(u16, u64)>,
    /// PES starts on the video PID that carried a PCR / random_access_indicator.
    video_starts: usize,
    video_starts_with_pcr: usize,
    video_starts_with_rai: usize,
    /// (stream_id, pts, dts) per PES, and its data.
    pes: Vec<(u8, u64, Option<u64>, Vec<u8>)>,
}

fn parse(ts: &[u8]) -> Parsed {
    assert_eq!(ts.len() % TS_PACKET_SIZE, 0, "whole packets only");
    let mut p = Parsed::default();
    let mut reader = TsPacketReader::new(ts);
    let mut cc: HashMap<u16, u8> = HashMap::new();
    while let Some(pkt) = reader.read_ts_packet().unwrap() {
        p.packets += 1;
        let pid = pkt.header.pid.as_u16();
        let counter = pkt.header.continuity_counter.as_u8();
        if let Some(last) = cc.get(&pid) {
            let want = if pkt.payload.is_some() {
                (last + 1) & 0x0F
            } else {
                *last
            };
            assert_eq!(counter, want, "continuity on PID {pid:#x}");
        }
        cc.insert(pid, counter);
        let pcr = pkt.adaptation_field.as_ref().and_then(|a| a.pcr);
        if let Some(pcr) = pcr {
            // The extension is always 0 here, so the 27 MHz value is base × 300.
            p.pcrs.push((pid, pcr.as_u64() / 300));
        }
        match &pkt.payload {
            Some(TsPayload::Pmt(pmt)) => {
                p.pmt_streams = pmt
                    .es_info
                    .iter()
                    .map(|e| (e.stream_type, e.elementary_pid.as_u16()))
                    .collect();
                p.pcr_pid = pmt.pcr_pid.map(|x| x.as_u16());
            }
            Some(TsPayload::PesStart(_)) if pid == PID_VIDEO => {
                p.video_starts += 1;
                p.video_starts_with_pcr += usize::from(pcr.is_some());
                let rai = pkt
                    .adaptation_field
                    .as_ref()
                    .is_some_and(|a| a.random_access_indicator);
                p.video_starts_with_rai += usize::from(rai);
            }
            _ => {}
        }
    }
    let mut pes = PesPacketReader::new(TsPacketReader::new(ts));
    while let Some(pkt) = pes.read_pes_packet().unwrap() {
        p.pes.push((
            pkt.header.stream_id.as_u8(),
            pkt.header.pts.unwrap().as_u64(),
            pkt.header.dts.map(|d| d.as_u64()),
            pkt.data,
        ));
    }
    p
}

fn concat(segments: &[Bytes]) -> Vec<u8> {
    segments.iter().flat_map(|s| s.iter().copied()).collect()
}

fn both() -> TsTracks {
    TsTracks {
        video: true,
        audio: true,
    }
}

#[test]
fn real_file_parses_back_with_continuity_pcr_and_monotone_timestamps() {
    let frames = fixture_frames("avc420_aac_320x180.flv");
    let segments = mux(&frames, both(), 0);
    let ts = concat(&segments);
    let p = parse(&ts);
    assert_eq!(
        p.pmt_streams,
        vec![
            (StreamType::H264, PID_VIDEO),
            (StreamType::AdtsAac, PID_AUDIO)
        ]
    );
    assert_eq!(p.pcr_pid, Some(PID_VIDEO));
    // AVC NALU packets only: ffmpeg ends the file with an end-of-sequence tag.
    let video_frames = frames
        .iter()
        .filter(|f| f.kind == FrameKind::Video && f.payload.get(1) == Some(&1))
        .count();
    let audio_frames = frames
        .iter()
        .filter(|f| f.kind == FrameKind::Audio && !f.sequence_header)
        .count();
    let video: Vec<_> = p.pes.iter().filter(|x| x.0 == 0xE0).collect();
    let audio: Vec<_> = p.pes.iter().filter(|x| x.0 == 0xC0).collect();
    assert_eq!((video.len(), audio.len()), (video_frames, audio_frames));
    assert_eq!(p.video_starts, video_frames);
    assert_eq!(
        p.video_starts_with_pcr, video_frames,
        "PCR on every video PES"
    );
    assert!(p.pcrs.iter().all(|(pid, _)| *pid == PID_VIDEO));
    assert!(p.pcrs.windows(2).all(|w| w[0].1 <= w[1].1), "PCR monotone");
    let dts = |x: &(u8, u64, Option<u64>, Vec<u8>)| x.2.unwrap_or(x.1);
    assert!(
        video.windows(2).all(|w| dts(w[0]) < dts(w[1])),
        "video DTS rises"
    );
    assert!(audio.windows(2).all(|w| w[0].1 < w[1].1), "audio PTS rises");
    assert!(video.iter().all(|v| v.1 >= dts(v)), "PTS ≥ DTS");
    // Each PES's DTS comes at or after the PCR carried with it.
    let first_pcr = p.pcrs[0].1;
    assert_eq!(dts(video[0]) - first_pcr, (PTS_DELAY_MS * 90) as u64);
    // Frame timing survives: the FLV timestamps, at 90 kHz, plus the delay.
    let first_video_ts = frames
        .iter()
        .find(|f| f.kind == FrameKind::Video && !f.sequence_header)
        .unwrap()
        .timestamp;
    assert_eq!(
        dts(video[0]),
        (i64::from(first_video_ts) + PTS_DELAY_MS) as u64 * 90
    );
    for a in &audio {
        // ADTS sync word, frame length = the whole PES payload.
        assert_eq!((a.3[0], a.3[1]), (0xFF, 0xF1));
        let len =
            (usize::from(a.3[3] & 3) << 11) | usize::from(a.3[4]) << 3 | usize::from(a.3[5] >> 5);
        assert_eq!(len, a.3.len());
    }
}

#[test]
fn idr_access_unit_starts_with_aud_then_sps_pps() {
    let frames = fixture_frames("avc444_aac_320x240.flv");
    let p = parse(&concat(&mux(&frames, both(), 0)));
    let video: Vec<_> = p.pes.iter().filter(|x| x.0 == 0xE0).collect();
    let first = &video[0].3;
    assert_eq!(&first[..6], &[0, 0, 0, 1, 0x09, 0xF0], "AUD first");
    assert_eq!(
        (&first[6..10], first[10] & 0x1F),
        (&[0, 0, 0, 1][..], 7),
        "SPS"
    );
    let nal_types = |au: &[u8]| -> Vec<u8> {
        au.windows(5)
            .filter(|w| w[..4] == [0, 0, 0, 1])
            .map(|w| w[4] & 0x1F)
            .collect()
    };
    let types = nal_types(first);
    let idr_at = types.iter().position(|t| *t == 5).unwrap();
    assert!(
        types[..idr_at].contains(&8),
        "PPS before the IDR: {types:?}"
    );
    assert_eq!(
        p.video_starts_with_rai, 1,
        "only the one keyframe is random access"
    );
    for v in &video[1..] {
        let t = nal_types(&v.3);
        assert_eq!(t[0], 9);
        assert!(
            !t.contains(&7) && !t.contains(&5),
            "no SPS on non-IDR: {t:?}"
        );
    }
}

#[test]
fn audio_only_and_video_only_tables() {
    let frames = fixture_frames("avc420_aac_320x180.flv");
    let audio_only: Vec<Frame> = frames
        .iter()
        .filter(|f| f.kind != FrameKind::Video)
        .cloned()
        .collect();
    let tracks = TsTracks {
        video: false,
        audio: true,
    };
    let segments = mux(&audio_only, tracks, 5);
    assert!(segments.len() > 1, "audio-only cuts at audio frames");
    for s in &segments {
        let p = parse(s);
        assert_eq!(p.pmt_streams, vec![(StreamType::AdtsAac, PID_AUDIO)]);
        assert_eq!(p.pcr_pid, Some(PID_AUDIO));
        assert!(!p.pcrs.is_empty() && p.pcrs.iter().all(|(pid, _)| *pid == PID_AUDIO));
    }
    let video_only = TsTracks {
        video: true,
        audio: false,
    };
    // Audio frames given to a video-only muxer are skipped, not errors.
    let p = parse(&concat(&mux(&frames, video_only, 0)));
    assert_eq!(p.pmt_streams, vec![(StreamType::H264, PID_VIDEO)]);
    assert!(p.pes.iter().all(|x| x.0 == 0xE0) && !p.pes.is_empty());
}

#[test]
fn segments_each_open_with_pat_pmt_and_counters_continue_across_them() {
    let frames = fixture_frames("avc420_aac_320x180.flv");
    // Cut at every audio frame of an audio-only stream: many small segments.
    let audio_only: Vec<Frame> = frames
        .iter()
        .filter(|f| f.kind == FrameKind::Audio)
        .cloned()
        .collect();
    let tracks = TsTracks {
        video: false,
        audio: true,
    };
    let segments = mux(&audio_only, tracks, 1);
    assert!(
        segments.len() > 16,
        "enough segments to wrap the PAT counter"
    );
    for s in &segments {
        assert_eq!(
            &s[..4],
            &[0x47, 0x40, 0x00, 0x10 | (s[3] & 0x0F)],
            "PAT first"
        );
        assert_eq!(s[188 + 1] & 0x1F, (PID_PMT >> 8) as u8, "PMT second");
    }
    // `parse` asserts continuity across the concatenation.
    let p = parse(&concat(&segments));
    assert_eq!(p.pes.len(), segments.len());
}

#[test]
fn a_segment_opening_with_audio_gets_a_pcr_before_it() {
    let frames = fixture_frames("avc420_aac_320x180.flv");
    let (mut m, mut out) = configured(&frames);
    let audio = first_audio(&frames);
    let w = m.write_frame(audio, 100, &mut out).unwrap();
    assert!(matches!(w, Written::Pes { packets } if packets >= 2));
    let p = parse(&out);
    assert_eq!(p.pcrs, vec![(PID_VIDEO, 100 * 90)]);
    // The PCR-only packet comes right after PAT and PMT.
    assert_eq!(out[2 * 188 + 2], PID_VIDEO as u8);
}

#[test]
fn misuse_and_limits_are_typed_errors_with_nothing_written() {
    let frames = fixture_frames("avc420_aac_320x180.flv");
    let key = frames.iter().find(|f| f.keyframe).unwrap();
    let seq = frames
        .iter()
        .find(|f| f.kind == FrameKind::Video && f.sequence_header)
        .unwrap();
    let mut out = BytesMut::new();
    assert!(matches!(
        TsMuxer::new(
            TsTracks {
                video: false,
                audio: false
            },
            TsLimits::default()
        ),
        Err(TsError::NoTracks)
    ));
    let mut m = TsMuxer::new(both(), TsLimits { max_pes_size: 100 }).unwrap();
    assert_eq!(
        m.write_frame(key, 0, &mut out),
        Err(TsError::MissingConfig {
            track: TrackKind::Video
        })
    );
    m.write_frame(seq, 0, &mut out).unwrap();
    assert_eq!(m.write_frame(key, 0, &mut out), Err(TsError::NoSegment));
    m.start_segment(&mut out);
    let before = out.len();
    assert!(matches!(
        m.write_frame(key, 0, &mut out),
        Err(TsError::PesTooLarge { limit: 100, .. })
    ));
    assert_eq!(out.len(), before, "nothing written on error");
    let hevc = Frame::new(FrameKind::Video, 0, Bytes::from_static(b"\x91hvc1\0\0\0"));
    assert_eq!(
        m.write_frame(&hevc, 0, &mut out),
        Err(TsError::UnsupportedCodec {
            track: TrackKind::Video,
            codec: "HEVC"
        })
    );
    let script = Frame::new(FrameKind::Script, 0, Bytes::from_static(b"\x02"));
    assert_eq!(m.write_frame(&script, 0, &mut out), Ok(Written::Skipped));
    assert_eq!(out.len(), before);
}

#[test]
fn corrupt_frames_never_panic() {
    let frames = fixture_frames("avc444_aac_320x240.flv");
    let (mut m, mut out) = configured(&frames);
    for f in frames.iter().take(12) {
        for cut in 0..f.payload.len().min(300) {
            let mut bad = f.clone();
            bad.payload = f.payload.slice(..cut);
            let before = out.len();
            let _ = m.write_frame(&bad, 0, &mut out);
            assert_eq!((out.len() - before) % TS_PACKET_SIZE, 0);
        }
    }
    parse(&out);
}

/// The same frames in Enhanced RTMP form (`avc1` CodedFrames with a composition
/// time, `mp4a` CodedFrames, SequenceStart for both).
fn enhanced(frames: &[Frame]) -> Vec<Frame> {
    frames
        .iter()
        .map(|f| {
            let p = &f.payload;
            let body: Vec<u8> = match (f.kind, p.get(1)) {
                (FrameKind::Video, Some(0)) => [&b"\x90avc1"[..], &p[5..]].concat(),
                (FrameKind::Video, Some(1)) => {
                    let frame_type = if f.keyframe { 0x10 } else { 0x20 };
                    [&[0x81 | frame_type][..], b"avc1", &p[2..]].concat()
                }
                (FrameKind::Video, _) => b"\x92avc1".to_vec(),
                (FrameKind::Audio, Some(0)) => [&b"\x90mp4a"[..], &p[2..]].concat(),
                (FrameKind::Audio, _) => [&b"\x91mp4a"[..], &p[2..]].concat(),
                (FrameKind::Script, _) => p.to_vec(),
            };
            Frame::new(f.kind, f.timestamp, Bytes::from(body))
        })
        .collect()
}

#[test]
fn enhanced_rtmp_input_gives_byte_identical_segments() {
    let frames = fixture_frames("avc444_aac_320x240.flv");
    let ex = enhanced(&frames);
    let m = TsMuxer::new(both(), TsLimits::default()).unwrap();
    let starts = |fs: &[Frame]| fs.iter().filter(|f| m.is_random_access(f)).count();
    assert_eq!(
        (starts(&ex), starts(&frames)),
        (1, 1),
        "the IDR, not the end-of-sequence tag"
    );
    assert_eq!(mux(&ex, both(), 0), mux(&frames, both(), 0));
}

#[test]
fn pcr_never_steps_back_when_audio_leads_video() {
    let frames = fixture_frames("avc420_aac_320x180.flv");
    let (mut m, mut out) = configured(&frames);
    let audio = first_audio(&frames);
    let key = frames.iter().find(|f| f.keyframe).unwrap();
    m.write_frame(audio, 100, &mut out).unwrap();
    m.write_frame(key, 80, &mut out).unwrap();
    let p = parse(&out);
    assert_eq!(p.pcrs, vec![(PID_VIDEO, 9000), (PID_VIDEO, 9000)]);
    let video = p.pes.iter().find(|x| x.0 == 0xE0).unwrap();
    assert_eq!(
        video.2.unwrap_or(video.1),
        ((80 + PTS_DELAY_MS) * 90) as u64
    );
}
