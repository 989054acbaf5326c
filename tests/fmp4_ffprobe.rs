//! ffprobe/ffmpeg as the oracle for ringcast's fMP4 muxer: real frames (the
//! committed FLV fixtures demuxed by ringcast's own FLV demuxer, and HEVC made by
//! ffmpeg's libx265) go through `protocol::fmp4`, are written to a temp dir as
//! `init.mp4` followed by the concatenated chunks (what a player appends), and
//! must decode with no error, with the right codec, size and frame count.
//!
//! A missing ffmpeg/ffprobe fails the test naming the tool; it never skips.

mod common;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::media::{decodes_cleanly, encode_testsrc, is_coded, probe_streams, repeat, run_tool};
use common::media::{flv_fixture, TempDir};
use ringcast::protocol::fmp4::{write_chunk, write_init, ChunkInput, ChunkLimits, Track};
use ringcast::protocol::{Frame, FrameKind};

/// Reads `init + chunks` back with mp4-atom (an independent parser): one track,
/// every chunk one traf/trun, `tfdt` chained across chunks, samples counted,
/// durations summing to the span, sync flags exactly on the keyframes.
fn check_with_mp4_atom(track: &Track, file: &[u8], frames: &[Frame], total_ticks: u64) {
    use mp4_atom::{Decode, Ftyp, Mdat, Moof, Moov};
    let mut buf = file;
    Ftyp::decode(&mut buf).unwrap();
    let moov = Moov::decode(&mut buf).unwrap();
    assert_eq!(moov.trak.len(), 1);
    assert_eq!(moov.trak[0].tkhd.track_id, track.track_id);
    assert_eq!(moov.trak[0].mdia.mdhd.timescale, track.timescale);
    let mut next_tfdt = 0;
    let mut index = 0;
    let mut sequence = 0;
    while !buf.is_empty() {
        let moof = Moof::decode(&mut buf).unwrap();
        let mdat = Mdat::decode(&mut buf).unwrap();
        assert!(
            moof.mfhd.sequence_number > sequence,
            "mfhd numbers increase"
        );
        sequence = moof.mfhd.sequence_number;
        let [traf] = moof.traf.as_slice() else {
            panic!("one traf per moof")
        };
        let [trun] = traf.trun.as_slice() else {
            panic!("one trun per traf")
        };
        assert_eq!(
            traf.tfdt.as_ref().unwrap().base_media_decode_time,
            next_tfdt
        );
        let mut bytes = 0;
        for e in trun.samples.iter() {
            let sync = e.flags.unwrap() & 0x0001_0000 == 0;
            let expect_sync = frames[index].kind == FrameKind::Audio || frames[index].keyframe;
            assert_eq!(sync, expect_sync, "sync flag of sample {index}");
            next_tfdt += u64::from(e.duration.unwrap());
            bytes += e.size.unwrap() as usize;
            index += 1;
        }
        assert_eq!(bytes, mdat.data.len());
    }
    assert_eq!(index, frames.len(), "one sample per frame");
    assert_eq!(next_tfdt, total_ticks, "durations sum to the span");
}

/// Packages `frames` (coded frames of one track, decode order) as chunks of at
/// most `per_chunk` frames, the way a packager cuts parts, and writes
/// `init + chunks` to `path`. Returns the number of chunks.
fn package(track: &Track, frames: &[Frame], per_chunk: usize, last_ms: u32, path: &Path) -> usize {
    let mut file = write_init(track).unwrap().to_vec();
    let groups: Vec<&[Frame]> = frames.chunks(per_chunk).collect();
    let base = frames[0].timestamp;
    for (i, g) in groups.iter().enumerate() {
        let last_duration_ms = match groups.get(i + 1) {
            Some(next) => next[0].timestamp - g[g.len() - 1].timestamp,
            None => last_ms,
        };
        let chunk = write_chunk(
            track,
            &ChunkInput {
                sequence_number: i as u32 + 1,
                frames: g,
                first_dts_ms: u64::from(g[0].timestamp - base),
                last_duration_ms,
            },
            &ChunkLimits::default(),
        )
        .unwrap();
        // Gathered form: header then the shared sample slices.
        file.extend_from_slice(&chunk.header);
        for s in &chunk.samples {
            file.extend_from_slice(s);
        }
    }
    let span_ms = u64::from(frames[frames.len() - 1].timestamp - base + last_ms);
    check_with_mp4_atom(
        track,
        &file,
        frames,
        span_ms * u64::from(track.timescale) / 1000,
    );
    std::fs::write(path, file).unwrap();
    groups.len()
}

/// ffprobe's view of stream 0: codec, tag, size, sample rate, channels, decoded frames.
fn probe(path: &Path) -> serde_json::Value {
    probe_streams(path).swap_remove(0)
}

/// ffprobe's packets of stream 0: (dts, pts, keyframe), in file order.
fn packets(path: &Path) -> Vec<(i64, i64, bool)> {
    let (out, _) = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "0",
            "-show_entries",
            "packet=dts,pts,flags",
            "-of",
            "json",
            path.to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["dts"].as_i64().unwrap(),
                p["pts"].as_i64().unwrap(),
                p["flags"].as_str().unwrap().starts_with('K'),
            )
        })
        .collect()
}

/// Checks ffprobe's timestamps against the frames packaged: DTS = the frame's
/// timestamp on the 90 kHz timeline (so tfdt chained across chunks), PTS = DTS +
/// composition offset, keyframe flags exactly on the FLV keyframes.
fn check_video_timing(path: &Path, frames: &[Frame]) {
    let pk = packets(path);
    assert_eq!(pk.len(), frames.len());
    let base = frames[0].timestamp;
    for (i, ((dts, pts, key), f)) in pk.iter().zip(frames).enumerate() {
        let cts = i64::from(i32::from_be_bytes([f.payload[2], f.payload[3], f.payload[4], 0]) >> 8);
        assert_eq!(*dts, i64::from(f.timestamp - base) * 90, "dts of frame {i}");
        assert_eq!(
            *pts,
            (i64::from(f.timestamp - base) + cts) * 90,
            "pts of frame {i}"
        );
        assert_eq!(*key, f.keyframe, "keyframe flag of frame {i}");
    }
}

/// The committed fixture's frames: (video seq hdr, audio seq hdr, video, audio).
fn fixture(name: &str) -> (Frame, Frame, Vec<Frame>, Vec<Frame>) {
    let frames = flv_fixture(name);
    let find = |kind| {
        frames
            .iter()
            .find(|f: &&Frame| f.kind == kind && f.sequence_header)
            .unwrap()
            .clone()
    };
    let coded = |kind| -> Vec<Frame> {
        frames
            .iter()
            .filter(|f| is_coded(f, kind))
            .cloned()
            .collect()
    };
    (
        find(FrameKind::Video),
        find(FrameKind::Audio),
        coded(FrameKind::Video),
        coded(FrameKind::Audio),
    )
}

/// Repeats a closed GOP (it starts with an IDR) `times` times on one timeline,
/// so a short committed fixture yields a long enough stream.
fn looped(frames: &[Frame], times: u32, step_ms: u32) -> Vec<Frame> {
    let span = frames[frames.len() - 1].timestamp - frames[0].timestamp + step_ms;
    repeat(frames, times, span)
}

/// Packages a video track's frames into `<codec>.mp4` in `dir` as 8-frame
/// chunks (320 ms parts at 25 fps, under a 1/3 s PART-TARGET), after checking
/// the track's size; ffmpeg must decode it cleanly and ffprobe must see
/// `codec` with `tag`, the size, and every packaged frame. Returns the number
/// of chunks and the file.
fn package_video(
    dir: &TempDir,
    track: &Track,
    frames: &[Frame],
    (codec, tag): (&str, &str),
    (width, height): (u64, u64),
) -> (usize, PathBuf) {
    assert_eq!(
        track.media,
        ringcast::protocol::fmp4::TrackMedia::Video {
            width: width as u32,
            height: height as u32
        }
    );
    let path = dir.join(format!("{codec}.mp4"));
    let chunks = package(track, frames, 8, 40, &path);
    decodes_cleanly(&path);
    let s = probe(&path);
    assert_eq!(s["codec_name"], codec);
    assert_eq!(s["codec_tag_string"], tag);
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(width), Some(height))
    );
    let n: usize = s["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert_eq!(n, frames.len(), "every packaged frame decodes");
    (chunks, path)
}

fn check_avc_fixture(name: &str, loops: u32, width: u64, height: u64, rate: &str) {
    let (vseq, aseq, video, audio) = fixture(name);
    assert!(video[0].keyframe, "fixture GOP starts with an IDR");
    let dir = TempDir::new("fmp4", name);

    let video = looped(&video, loops, 40);
    let track = Track::from_sequence_header(1, &vseq).unwrap();
    let (chunks, vpath) = package_video(&dir, &track, &video, ("h264", "avc1"), (width, height));
    assert!(chunks > 10);
    assert!(video.len() >= 100, "{} frames", video.len());
    check_video_timing(&vpath, &video);

    let audio_track = Track::from_sequence_header(2, &aseq).unwrap();
    let step = 1024 * 1000 / audio_track.timescale;
    let audio = looped(&audio, loops, step);
    let apath = dir.join("audio.mp4");
    package(&audio_track, &audio, 16, step, &apath);
    decodes_cleanly(&apath);
    let s = probe(&apath);
    assert_eq!(s["codec_name"], "aac");
    assert_eq!(s["codec_tag_string"], "mp4a");
    assert_eq!(s["sample_rate"], rate);
    let n: usize = s["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert_eq!(n, audio.len(), "every packaged AAC frame decodes");
    assert!(n >= 100, "{n} audio frames");
    // Audio DTS: each frame's millisecond time on the sample-rate timeline.
    let rate = u64::from(audio_track.timescale);
    let base = audio[0].timestamp;
    let pk = packets(&apath);
    assert_eq!(pk.len(), audio.len());
    for ((dts, _, key), f) in pk.iter().zip(&audio) {
        assert_eq!(*dts as u64, u64::from(f.timestamp - base) * rate / 1000);
        assert!(key, "every AAC frame is a sync sample");
    }
}

#[test]
fn avc420_and_aac48k_fixture_decodes() {
    check_avc_fixture("avc420_aac_320x180.flv", 12, 320, 180, "48000");
}

#[test]
fn avc444_and_aac44k_fixture_decodes() {
    check_avc_fixture("avc444_aac_320x240.flv", 5, 320, 240, "44100");
}

/// Splits an Annex B byte stream into NAL units (start codes removed).
fn annexb_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let mut end = starts.get(k + 1).map_or(data.len(), |n| n - 3);
            // A 4-byte start code leaves a zero byte before the next unit.
            while end > s && data[end - 1] == 0 {
                end -= 1;
            }
            &data[s..end]
        })
        .collect()
}

/// Removes emulation-prevention bytes (`00 00 03` → `00 00`).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// An HEVCDecoderConfigurationRecord (ISO 14496-15 §8.3.3) for 8-bit 4:2:0,
/// 4-byte lengths, with the profile/tier/level copied from the SPS.
fn hvcc(vps: &[u8], sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let rbsp = unescape(&sps[2..]);
    // rbsp[0]: vps id, max_sub_layers, nesting; rbsp[1..13]: general profile_tier_level.
    let ptl = &rbsp[1..13];
    let mut r = vec![1];
    r.extend_from_slice(ptl);
    r.extend_from_slice(&[0xF0, 0x00, 0xFC, 0xFD, 0xF8, 0xF8, 0x00, 0x00, 0x0F, 3]);
    for (kind, nal) in [(32u8, vps), (33, sps), (34, pps)] {
        r.push(0x80 | kind);
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        r.extend_from_slice(nal);
    }
    r
}

/// HEVC from libx265 → Enhanced RTMP tag bodies (`hvc1` SequenceStart with an
/// hvcC, CodedFrames / CodedFramesX) → ringcast's own FLV codec parsing
/// ([`Frame::new`], [`Track`]) → fMP4 → ffprobe.
#[test]
fn hevc_from_x265_via_enhanced_rtmp_decodes() {
    let dir = TempDir::new("fmp4", "hevc");
    let raw = dir.join("in.hevc");
    encode_testsrc(
        "size=320x240:rate=25",
        "4.8",
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "keyint=25:min-keyint=25:bframes=0:log-level=error",
            "-f",
            "hevc",
            raw.to_str().unwrap(),
        ],
    );
    let data = std::fs::read(&raw).unwrap();
    let nals = annexb_nals(&data);
    let nal_type = |n: &[u8]| (n[0] >> 1) & 0x3F;
    let find = |t| *nals.iter().find(|n| nal_type(n) == t).unwrap();
    let record = hvcc(find(32), find(33), find(34));

    let mut seq = vec![0x90, b'h', b'v', b'c', b'1'];
    seq.extend_from_slice(&record);
    let seq = Frame::new(FrameKind::Video, 0, Bytes::from(seq));
    assert!(seq.sequence_header);

    // Access units: a new one starts at a slice whose first_slice_segment_in_pic_flag is set.
    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    let mut pending: Vec<&[u8]> = Vec::new();
    for n in nals {
        let t = nal_type(n);
        match t {
            32..=35 => {} // parameter sets live in hvcC (hvc1); AUDs are not carried
            0..=31 => {
                if n[2] & 0x80 != 0 {
                    units.push(std::mem::take(&mut pending));
                }
                units.last_mut().unwrap().push(n);
            }
            _ => pending.push(n), // SEI and the like: belong to the next picture
        }
    }
    let frames: Vec<Frame> = units
        .iter()
        .enumerate()
        .map(|(i, au)| {
            let irap = au.iter().any(|n| (16..=23).contains(&nal_type(n)));
            // Keyframes as CodedFrames with a zero composition time, others as CodedFramesX.
            let mut body = if irap {
                vec![0x91, b'h', b'v', b'c', b'1', 0, 0, 0]
            } else {
                vec![0xA3, b'h', b'v', b'c', b'1']
            };
            for n in au {
                body.extend_from_slice(&(n.len() as u32).to_be_bytes());
                body.extend_from_slice(n);
            }
            Frame::new(FrameKind::Video, i as u32 * 40, Bytes::from(body))
        })
        .collect();
    assert!(frames.len() >= 100, "{} access units", frames.len());
    assert_eq!(
        frames.iter().filter(|f| f.keyframe).count(),
        frames.len().div_ceil(25)
    );

    let track = Track::from_sequence_header(1, &seq).unwrap();
    let (_, path) = package_video(&dir, &track, &frames, ("hevc", "hvc1"), (320, 240));
    let pk = packets(&path);
    assert_eq!(pk.len(), frames.len());
    for ((dts, pts, key), f) in pk.iter().zip(&frames) {
        assert_eq!(
            (*dts, *pts, *key),
            (
                i64::from(f.timestamp) * 90,
                i64::from(f.timestamp) * 90,
                f.keyframe
            )
        );
    }
}

/// Splits a low-overhead AV1 temporal unit into OBUs: (type, whole OBU bytes, payload).
fn obus(mut tu: &[u8]) -> Vec<(u8, &[u8], &[u8])> {
    let mut out = Vec::new();
    while !tu.is_empty() {
        let header = tu[0];
        assert!(header & 0x02 != 0, "IVF OBUs carry size fields");
        let mut at = 1 + usize::from(header & 0x04 != 0);
        let mut size = 0usize;
        for i in 0..8 {
            let b = tu[at];
            at += 1;
            size |= usize::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        out.push(((header >> 3) & 0x0F, &tu[..at + size], &tu[at..at + size]));
        tu = &tu[at + size..];
    }
    out
}

/// AV1 from libaom → Enhanced RTMP `av01` tag bodies (SequenceStart with an
/// av1C whose configOBUs hold the sequence header) → fMP4 → ffprobe (dav1d / libaom).
#[test]
fn av1_from_libaom_via_enhanced_rtmp_decodes() {
    let dir = TempDir::new("fmp4", "av1");
    let ivf = dir.join("in.ivf");
    encode_testsrc(
        "size=320x240:rate=25",
        "4.8",
        &[
            "-c:v",
            "libaom-av1",
            "-usage",
            "realtime",
            "-cpu-used",
            "8",
            "-lag-in-frames",
            "0",
            "-g",
            "25",
            "-b:v",
            "200k",
            ivf.to_str().unwrap(),
        ],
    );
    let data = std::fs::read(&ivf).unwrap();
    assert_eq!(&data[..4], b"DKIF");
    let header_len = usize::from(u16::from_le_bytes([data[6], data[7]]));
    let mut rest = &data[header_len..];
    let mut tus = Vec::new();
    while rest.len() >= 12 {
        let size = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        tus.push(&rest[12..12 + size]);
        rest = &rest[12 + size..];
    }

    // The sequence header OBU, and av1C's profile/level byte from its first fields.
    let (_, seq_obu, seq_payload) = obus(tus[0]).into_iter().find(|o| o.0 == 1).unwrap();
    let profile = seq_payload[0] >> 5;
    assert_eq!(
        seq_payload[0] & 0x1C,
        0,
        "not still, not reduced, no timing info"
    );
    // After profile(3) still(1) reduced(1) timing(1) delay(1) count(5) idc(12): level(5), bits 24..29.
    let level = (u32::from_be_bytes(seq_payload[..4].try_into().unwrap()) >> 3) & 0x1F;
    assert_eq!(seq_payload[0] & 0x02, 0, "no initial display delay info");
    let mut av1c = vec![0x81, profile << 5 | level as u8, 0x0C, 0x00];
    av1c.extend_from_slice(seq_obu);
    let mut seq = vec![0x90, b'a', b'v', b'0', b'1'];
    seq.extend_from_slice(&av1c);
    let seq = Frame::new(FrameKind::Video, 0, Bytes::from(seq));

    let frames: Vec<Frame> = tus
        .iter()
        .enumerate()
        .map(|(i, tu)| {
            let obus = obus(tu);
            // frame (6) or frame header (3): show_existing_frame = 0, frame_type = KEY_FRAME (0).
            let first = obus.iter().find(|o| o.0 == 6 || o.0 == 3).unwrap().2[0];
            let key = first & 0xE0 == 0;
            let mut body = if key {
                vec![0x91, b'a', b'v', b'0', b'1']
            } else {
                vec![0xA1, b'a', b'v', b'0', b'1']
            };
            // The whole temporal unit, temporal delimiter included, as a publisher sends it.
            body.extend_from_slice(tu);
            Frame::new(FrameKind::Video, i as u32 * 40, Bytes::from(body))
        })
        .collect();
    assert!(frames.len() >= 100, "{} temporal units", frames.len());
    assert!(frames[0].keyframe);
    assert!(frames.iter().filter(|f| f.keyframe).count() >= 2);

    let track = Track::from_sequence_header(1, &seq).unwrap();
    // The muxer drops the leading temporal delimiter (AV1-ISOBMFF §2.4).
    assert_eq!(&frames[0].payload[5..7], &[0x12, 0x00]);
    let first = ringcast::protocol::fmp4::write_chunk(
        &track,
        &ChunkInput {
            sequence_number: 0,
            frames: &frames[..1],
            first_dts_ms: 0,
            last_duration_ms: 40,
        },
        &ChunkLimits::default(),
    )
    .unwrap();
    assert_eq!(first.samples[0].as_ref(), &frames[0].payload[7..]);
    let (_, path) = package_video(&dir, &track, &frames, ("av1", "av01"), (320, 240));
    let pk = packets(&path);
    assert_eq!(pk.len(), frames.len());
    for ((dts, _, key), f) in pk.iter().zip(&frames) {
        assert_eq!((*dts, *key), (i64::from(f.timestamp) * 90, f.keyframe));
    }
}
