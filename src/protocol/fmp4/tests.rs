//! Box-by-box checks of init segments and chunks against an independent parser
//! (`mp4-atom`), fed with real frames from the committed FLV fixtures.

use bytes::Bytes;
use mp4_atom::{Codec, Decode, Ftyp, Mdat, Moof, Moov};

use super::chunk::{NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS};
use super::*;
use crate::protocol::flv::{FlvDemuxer, FlvLimits};
use crate::protocol::{Frame, FrameKind};

const AVC420: &[u8] = include_bytes!("../../../tests/data/flv/avc420_aac_320x180.flv");
const AVC444: &[u8] = include_bytes!("../../../tests/data/flv/avc444_aac_320x240.flv");

/// (video sequence header, audio sequence header, coded video, coded audio).
fn demux(file: &[u8]) -> (Frame, Frame, Vec<Frame>, Vec<Frame>) {
    let mut d = FlvDemuxer::new(FlvLimits::default());
    let mut frames = Vec::new();
    d.decode_all(file, &mut frames).unwrap();
    let vseq = frames
        .iter()
        .find(|f| f.kind == FrameKind::Video && f.sequence_header)
        .unwrap()
        .clone();
    let aseq = frames
        .iter()
        .find(|f| f.kind == FrameKind::Audio && f.sequence_header)
        .unwrap()
        .clone();
    let video = frames
        .iter()
        // ffmpeg ends the file with an AVC end-of-sequence tag (packet type 2): not a sample.
        .filter(|f| f.kind == FrameKind::Video && f.payload.get(1) == Some(&1))
        .cloned()
        .collect();
    let audio = frames
        .iter()
        .filter(|f| f.kind == FrameKind::Audio && !f.sequence_header)
        .cloned()
        .collect();
    (vseq, aseq, video, audio)
}

fn parse_init(init: &[u8]) -> (Ftyp, Moov) {
    let mut buf = init;
    let ftyp = Ftyp::decode(&mut buf).unwrap();
    let moov = Moov::decode(&mut buf).unwrap();
    assert!(buf.is_empty(), "trailing bytes after moov");
    (ftyp, moov)
}

fn parse_chunk(chunk: &Chunk) -> (Moof, Mdat, usize) {
    let bytes = chunk.to_bytes();
    let mut buf: &[u8] = &bytes;
    let moof = Moof::decode(&mut buf).unwrap();
    let moof_len = bytes.len() - buf.len();
    let mdat = Mdat::decode(&mut buf).unwrap();
    assert!(buf.is_empty(), "trailing bytes after mdat");
    (moof, mdat, moof_len)
}

#[test]
fn avc_init_reads_back() {
    let (vseq, _, _, _) = demux(AVC420);
    let track = Track::from_sequence_header(1, &vseq).unwrap();
    assert_eq!(
        track.media,
        TrackMedia::Video {
            width: 320,
            height: 180
        }
    );
    let init = write_init(&track).unwrap();
    let (ftyp, moov) = parse_init(&init);
    assert_eq!(ftyp.major_brand, b"iso6".into());
    assert!(ftyp.compatible_brands.contains(&b"cmfc".into()));
    assert_eq!(moov.trak.len(), 1);
    let trak = &moov.trak[0];
    assert_eq!(trak.tkhd.track_id, 1);
    assert_eq!(trak.tkhd.width.integer(), 320);
    assert_eq!(trak.tkhd.height.integer(), 180);
    assert_eq!(trak.mdia.mdhd.timescale, VIDEO_TIMESCALE);
    assert_eq!(trak.mdia.hdlr.handler, b"vide".into());
    assert!(trak.mdia.minf.vmhd.is_some());
    match &trak.mdia.minf.stbl.stsz.samples {
        mp4_atom::StszSamples::Identical { count, .. } => assert_eq!(*count, 0),
        mp4_atom::StszSamples::Different { sizes } => assert!(sizes.is_empty()),
    }
    let Codec::Avc1(avc1) = &trak.mdia.minf.stbl.stsd.codecs[0] else {
        panic!("not avc1: {:?}", trak.mdia.minf.stbl.stsd.codecs)
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (320, 180));
    assert_eq!(avc1.avcc.avc_profile_indication, 77, "Main profile");
    // The SPS inside avcC is the FLV record's, byte for byte.
    let record = &vseq.payload[5..];
    let sps_len = usize::from(u16::from_be_bytes([record[6], record[7]]));
    assert_eq!(
        avc1.avcc.sequence_parameter_sets[0],
        &record[8..8 + sps_len]
    );
    let trex = &moov.mvex.as_ref().unwrap().trex[0];
    assert_eq!(
        (trex.track_id, trex.default_sample_description_index),
        (1, 1)
    );
}

#[test]
fn high444_avcc_keeps_its_extension() {
    let (vseq, _, _, _) = demux(AVC444);
    let track = Track::from_sequence_header(1, &vseq).unwrap();
    let (_, moov) = parse_init(&write_init(&track).unwrap());
    let Codec::Avc1(avc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("not avc1")
    };
    assert_eq!(avc1.avcc.avc_profile_indication, 244);
    assert_eq!(avc1.avcc.ext.as_ref().unwrap().chroma_format, 3);
    assert_eq!((avc1.visual.width, avc1.visual.height), (320, 240));
}

#[test]
fn aac_init_reads_back() {
    let (_, aseq, _, _) = demux(AVC420);
    let track = Track::from_sequence_header(2, &aseq).unwrap();
    assert_eq!(track.timescale, 48_000);
    let (_, moov) = parse_init(&write_init(&track).unwrap());
    let trak = &moov.trak[0];
    assert_eq!(trak.tkhd.track_id, 2);
    assert_eq!(trak.mdia.mdhd.timescale, 48_000);
    assert_eq!(trak.mdia.hdlr.handler, b"soun".into());
    assert!(trak.mdia.minf.smhd.is_some());
    let Codec::Mp4a(mp4a) = &trak.mdia.minf.stbl.stsd.codecs[0] else {
        panic!("not mp4a")
    };
    assert_eq!(mp4a.audio.channel_count, 2);
    assert_eq!(mp4a.audio.sample_rate.integer(), 48_000);
    let dc = &mp4a.esds.es_desc.dec_config;
    assert_eq!((dc.object_type_indication, dc.stream_type), (0x40, 5));
    let dsi = dc.dec_specific.as_ref().unwrap();
    assert_eq!(dsi.profile, 2, "AAC-LC");
    assert_eq!(dsi.chan_conf, 2);
    assert_eq!(dsi.freq_index, 3, "48 kHz");
}

#[test]
fn av1_init_from_enhanced_sequence_start() {
    // av1C: 4 fixed bytes then a sequence header OBU for 1280x720
    // (reduced-still-picture off, no timing info, one operating point at level 8).
    let seq_obu = [0x00, 0x00, 0x00, 0x42, 0xA6, 0x7F, 0xD9, 0xE0];
    let mut body = vec![
        0x90, b'a', b'v', b'0', b'1', 0x81, 0x08, 0x0C, 0x00, 0x0A, 8,
    ];
    body.extend_from_slice(&seq_obu);
    let frame = Frame::new(FrameKind::Video, 0, Bytes::from(body));
    let track = Track::from_sequence_header(1, &frame).unwrap();
    assert_eq!(track.codec, Fmp4Codec::Av1);
    assert_eq!(
        track.media,
        TrackMedia::Video {
            width: 1280,
            height: 720
        }
    );
    let (_, moov) = parse_init(&write_init(&track).unwrap());
    let Codec::Av01(av01) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("not av01")
    };
    assert_eq!((av01.visual.width, av01.visual.height), (1280, 720));
    assert_eq!(av01.av1c.seq_level_idx_0, 8);
    assert_eq!(
        av01.av1c.config_obus,
        &[0x0A, 8, 0x00, 0x00, 0x00, 0x42, 0xA6, 0x7F, 0xD9, 0xE0]
    );
}

#[test]
fn refused_codecs_are_typed() {
    let mp3 = Frame::new(FrameKind::Audio, 0, Bytes::from_static(&[0x2F, 0xFF, 0xFB]));
    assert_eq!(
        Track::from_sequence_header(2, &mp3),
        Err(Fmp4Error::UnsupportedAudioCodec(
            crate::protocol::flv::codec::AudioCodec::Mp3
        ))
    );
    let speex = Frame::new(FrameKind::Audio, 0, Bytes::from_static(&[0xB2, 0x00]));
    assert!(matches!(
        Track::from_sequence_header(2, &speex),
        Err(Fmp4Error::UnsupportedAudioCodec(_))
    ));
    let opus = Frame::new(FrameKind::Audio, 0, Bytes::from_static(b"\x90Opus\x01"));
    assert!(matches!(
        Track::from_sequence_header(2, &opus),
        Err(Fmp4Error::UnsupportedAudioCodec(_))
    ));
    let vp6 = Frame::new(FrameKind::Video, 0, Bytes::from_static(&[0x14, 0, 0]));
    assert!(matches!(
        Track::from_sequence_header(1, &vp6),
        Err(Fmp4Error::UnsupportedVideoCodec(_))
    ));
    let vp9 = Frame::new(FrameKind::Video, 0, Bytes::from_static(b"\x90vp09\x01"));
    assert!(matches!(
        Track::from_sequence_header(1, &vp9),
        Err(Fmp4Error::UnsupportedVideoCodec(_))
    ));
    let multitrack = Frame::new(FrameKind::Video, 0, Bytes::from_static(b"\x96\x00hvc1"));
    assert_eq!(
        Track::from_sequence_header(1, &multitrack),
        Err(Fmp4Error::UnsupportedPacketType(6))
    );
    let ts_av1 = Frame::new(FrameKind::Video, 0, Bytes::from_static(b"\x95av01\x00"));
    assert_eq!(
        Track::from_sequence_header(1, &ts_av1),
        Err(Fmp4Error::UnsupportedPacketType(5))
    );
    let oversized = {
        let mut b = vec![0x17, 0, 0, 0, 0];
        b.resize(5 + track::MAX_CONFIG_RECORD + 1, 0);
        Frame::new(FrameKind::Video, 0, Bytes::from(b))
    };
    assert_eq!(
        Track::from_sequence_header(1, &oversized),
        Err(Fmp4Error::ConfigTooLarge {
            size: track::MAX_CONFIG_RECORD + 1,
            limit: track::MAX_CONFIG_RECORD
        })
    );
}

/// Splits `frames` into chunks of `per_chunk`, each ending where the next begins.
fn chunks_of(track: &Track, frames: &[Frame], per_chunk: usize, last_ms: u32) -> Vec<Chunk> {
    let base = frames[0].timestamp;
    let groups: Vec<&[Frame]> = frames.chunks(per_chunk).collect();
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let last_duration_ms = match groups.get(i + 1) {
                Some(next) => next[0].timestamp - g[g.len() - 1].timestamp,
                None => last_ms,
            };
            let input = ChunkInput {
                sequence_number: 100 + i as u32,
                frames: g,
                first_dts_ms: 10_000 + u64::from(g[0].timestamp - base),
                last_duration_ms,
            };
            write_chunk(track, &input, &ChunkLimits::default()).unwrap()
        })
        .collect()
}

#[test]
fn video_chunks_read_back_with_continuous_tfdt() {
    let (vseq, _, video, _) = demux(AVC420);
    assert!(video.len() >= 10);
    let track = Track::from_sequence_header(1, &vseq).unwrap();
    let chunks = chunks_of(&track, &video, 4, 40);
    let mut expected_tfdt = 10_000 * 90;
    let mut frame_index = 0;
    let mut total = 0u64;
    for (i, chunk) in chunks.iter().enumerate() {
        let (moof, mdat, moof_len) = parse_chunk(chunk);
        assert_eq!(moof.mfhd.sequence_number, 100 + i as u32);
        assert_eq!(moof.traf.len(), 1);
        let traf = &moof.traf[0];
        assert_eq!(traf.tfhd.track_id, 1);
        assert!(traf.tfhd.default_base_is_moof);
        let tfdt = traf.tfdt.as_ref().unwrap().base_media_decode_time;
        assert_eq!(
            tfdt, expected_tfdt,
            "tfdt continues from the previous chunk"
        );
        assert_eq!(tfdt, chunk.base_media_decode_time);
        assert_eq!(traf.trun.len(), 1);
        let trun = &traf.trun[0];
        assert_eq!(trun.data_offset, Some(moof_len as i32 + 8));
        let mut offset = 0;
        let mut chunk_duration = 0;
        for entry in trun.samples.iter() {
            let frame = &video[frame_index];
            let sample = sample::sample_from_frame(track.codec, frame, 0).unwrap();
            let size = entry.size.unwrap() as usize;
            assert_eq!(&mdat.data[offset..offset + size], sample.data.as_ref());
            offset += size;
            let flags = entry.flags.unwrap();
            if frame.keyframe {
                assert_eq!(flags, SYNC_SAMPLE_FLAGS);
            } else {
                assert_eq!(flags, NON_SYNC_SAMPLE_FLAGS);
            }
            assert_eq!(entry.cts, Some(i64::from(sample.cts_ms) * 90));
            if let Some(next) = video.get(frame_index + 1) {
                assert_eq!(
                    entry.duration,
                    Some((next.timestamp - frame.timestamp) * 90),
                    "duration from successive DTS"
                );
            } else {
                assert_eq!(entry.duration, Some(40 * 90), "caller's last duration");
            }
            chunk_duration += u64::from(entry.duration.unwrap());
            frame_index += 1;
        }
        assert_eq!(offset, mdat.data.len());
        assert_eq!(chunk_duration, chunk.duration);
        expected_tfdt += chunk_duration;
        total += chunk_duration;
    }
    assert_eq!(frame_index, video.len(), "every frame is a sample");
    let span = video[video.len() - 1].timestamp - video[0].timestamp + 40;
    assert_eq!(
        total,
        u64::from(span) * 90,
        "durations sum to the stream's span"
    );
    assert!(chunks[0].starts_with_sync);
}

#[test]
fn audio_chunks_are_all_sync_and_sum_to_the_span() {
    let (_, aseq, _, audio) = demux(AVC420);
    let track = Track::from_sequence_header(2, &aseq).unwrap();
    let chunks = chunks_of(&track, &audio, 3, 21);
    let mut expected_tfdt = None;
    let mut count = 0;
    let mut total = 0;
    for chunk in &chunks {
        let (moof, mdat, _) = parse_chunk(chunk);
        let traf = &moof.traf[0];
        let tfdt = traf.tfdt.as_ref().unwrap().base_media_decode_time;
        if let Some(e) = expected_tfdt {
            assert_eq!(tfdt, e);
        }
        let mut d = 0;
        let mut bytes = 0;
        for entry in traf.trun[0].samples.iter() {
            assert_eq!(entry.flags, Some(SYNC_SAMPLE_FLAGS));
            assert_eq!(entry.cts, None, "audio carries no composition offsets");
            d += u64::from(entry.duration.unwrap());
            bytes += entry.size.unwrap() as usize;
            count += 1;
        }
        assert_eq!(bytes, mdat.data.len());
        expected_tfdt = Some(tfdt + d);
        total += d;
    }
    assert_eq!(count, audio.len());
    let span = u64::from(audio[audio.len() - 1].timestamp - audio[0].timestamp + 21);
    // Ticks are derived from absolute milliseconds, so the sum is exact up to
    // the rounding of the two ends.
    let start = 10_000u64 * 48;
    assert_eq!(total, (10_000 + span) * 48 - start);
}

#[test]
fn output_is_deterministic_and_zero_copy() {
    let (vseq, _, video, _) = demux(AVC420);
    let track = Track::from_sequence_header(1, &vseq).unwrap();
    let input = ChunkInput {
        sequence_number: 7,
        frames: &video[..5],
        first_dts_ms: 123_456,
        last_duration_ms: 40,
    };
    let a = write_chunk(&track, &input, &ChunkLimits::default()).unwrap();
    let b = write_chunk(&track, &input, &ChunkLimits::default()).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
    assert_eq!(write_init(&track).unwrap(), write_init(&track).unwrap());
    // Samples point into the frames' own buffers.
    for (s, f) in a.samples.iter().zip(&video) {
        let inside = f.payload.as_ptr_range();
        assert!(inside.contains(&s.as_ptr()));
    }
}

#[test]
fn limits_and_bad_input_are_typed_errors() {
    let (vseq, _, video, _) = demux(AVC420);
    let track = Track::from_sequence_header(1, &vseq).unwrap();
    let input = |frames| ChunkInput {
        sequence_number: 0,
        frames,
        first_dts_ms: 1_000,
        last_duration_ms: 40,
    };
    let small = ChunkLimits {
        max_samples: 2,
        max_bytes: 1 << 20,
    };
    assert_eq!(
        write_chunk(&track, &input(&video[..3]), &small),
        Err(Fmp4Error::TooManySamples { count: 3, limit: 2 })
    );
    let tiny = ChunkLimits {
        max_samples: 10,
        max_bytes: 16,
    };
    assert_eq!(
        write_chunk(&track, &input(&video[..1]), &tiny),
        Err(Fmp4Error::ChunkTooLarge { limit: 16 })
    );
    assert_eq!(
        write_chunk(&track, &input(&[]), &ChunkLimits::default()),
        Err(Fmp4Error::EmptyChunk)
    );
    let backwards = [video[2].clone(), video[1].clone()];
    assert!(matches!(
        write_chunk(&track, &input(&backwards), &ChunkLimits::default()),
        Err(Fmp4Error::NonMonotonicTimestamp { index: 1, .. })
    ));
    let with_seq = [video[0].clone(), vseq.clone()];
    assert!(matches!(
        write_chunk(&track, &input(&with_seq), &ChunkLimits::default()),
        Err(Fmp4Error::NotACodedFrame { index: 1, .. })
    ));
}

proptest::proptest! {
    /// Arbitrary sequence-header bodies never panic the track parser, and any
    /// track it accepts yields an init segment mp4-atom reads.
    #[test]
    fn arbitrary_sequence_headers_never_panic(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        video in proptest::prelude::any::<bool>(),
    ) {
        let kind = if video { FrameKind::Video } else { FrameKind::Audio };
        let frame = Frame::new(kind, 0, Bytes::from(body));
        if let Ok(track) = Track::from_sequence_header(1, &frame) {
            if let Ok(init) = write_init(&track) {
                let mut buf: &[u8] = &init;
                proptest::prop_assert!(Ftyp::decode(&mut buf).is_ok());
            }
        }
    }
}
