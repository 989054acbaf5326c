//! From an FLV tag body to an fMP4 sample: strip the FLV/Enhanced RTMP tag
//! header, keep the coded data as it is (AVCC / hvcC length-prefixed NAL units,
//! AV1 OBUs, raw AAC), and read the composition time offset.

use bytes::Bytes;

use super::error::Fmp4Error;
use super::track::Fmp4Codec;
use crate::protocol::flv::codec::ex_packet_type;
use crate::protocol::{Frame, FrameKind};

/// Legacy AVC/HEVC packet type 1: NAL units.
const LEGACY_NALU: u8 = 1;
/// AAC packet type 1 / Enhanced audio CodedFrames.
const AUDIO_RAW: u8 = 1;

/// One sample's data and timing, borrowed from its frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleData {
    /// The coded bytes: a slice of the frame's payload, never a copy.
    pub data: Bytes,
    /// Composition time minus decode time, in milliseconds (signed).
    pub cts_ms: i32,
    /// A sync sample (keyframe; every AAC frame).
    pub sync: bool,
}

/// Signed 24-bit big-endian.
fn si24(b: &[u8]) -> Option<i32> {
    let [a, b, c] = *b else { return None };
    Some(i32::from_be_bytes([a, b, c, 0]) >> 8)
}

/// Extracts the sample a frame carries for a track of `codec`. `index` names the
/// frame in errors.
pub fn sample_from_frame(
    codec: Fmp4Codec,
    frame: &Frame,
    index: usize,
) -> Result<SampleData, Fmp4Error> {
    let body = &frame.payload;
    let b0 = *body.first().ok_or(Fmp4Error::NotACodedFrame {
        index,
        expected: kind_name(codec),
    })?;
    let not_coded = Fmp4Error::NotACodedFrame {
        index,
        expected: kind_name(codec),
    };
    match (codec.is_video(), frame.kind) {
        (true, FrameKind::Video) | (false, FrameKind::Audio) => {}
        _ => return Err(not_coded),
    }
    if codec == Fmp4Codec::Aac {
        let start = match b0 >> 4 {
            10 if body.get(1) == Some(&AUDIO_RAW) => 2,
            9 if b0 & 0x0F == AUDIO_RAW && body.get(1..5) == Some(b"mp4a".as_slice()) => 5,
            10 | 9 => return Err(not_coded),
            _ => return Err(Fmp4Error::CodecMismatch { index }),
        };
        return Ok(SampleData {
            data: body.slice(start..),
            cts_ms: 0,
            sync: true,
        });
    }
    if b0 & 0x80 != 0 {
        // ExVideoTagHeader: [IsExHeader|FrameType:3|PacketType:4][FourCC:4].
        let packet_type = b0 & 0x0F;
        if packet_type == ex_packet_type::MULTITRACK || packet_type == ex_packet_type::MOD_EX {
            return Err(Fmp4Error::UnsupportedPacketType(packet_type));
        }
        let fourcc: &[u8] = match codec {
            Fmp4Codec::Avc => b"avc1",
            Fmp4Codec::Hevc => b"hvc1",
            _ => b"av01",
        };
        if body.get(1..5).ok_or(not_coded.clone())? != fourcc {
            return Err(Fmp4Error::CodecMismatch { index });
        }
        if (b0 >> 4) & 0x07 == 5 {
            return Err(not_coded); // command frame, no picture
        }
        let (start, cts_ms) = match packet_type {
            // avc1/hvc1 CodedFrames carry a composition time; av01's never does.
            ex_packet_type::CODED_FRAMES if codec != Fmp4Codec::Av1 => (
                8,
                si24(body.get(5..8).ok_or(not_coded.clone())?).unwrap_or(0),
            ),
            ex_packet_type::CODED_FRAMES | ex_packet_type::CODED_FRAMES_X => (5, 0),
            _ => return Err(not_coded),
        };
        let mut data = body.slice(start.min(body.len())..);
        if codec == Fmp4Codec::Av1 {
            data = strip_temporal_delimiters(data);
        }
        return Ok(SampleData {
            data,
            cts_ms,
            sync: frame.keyframe,
        });
    }
    // Legacy: [FrameType:4|CodecId:4][AVCPacketType][CompositionTime:3].
    let codec_id = b0 & 0x0F;
    let expected_id = match codec {
        Fmp4Codec::Avc => 7,
        Fmp4Codec::Hevc => 12,
        _ => return Err(Fmp4Error::CodecMismatch { index }),
    };
    if codec_id != expected_id {
        return Err(Fmp4Error::CodecMismatch { index });
    }
    if body.get(1) != Some(&LEGACY_NALU) || b0 >> 4 == 5 {
        return Err(not_coded);
    }
    let cts_ms = si24(body.get(2..5).ok_or(not_coded)?).unwrap_or(0);
    Ok(SampleData {
        data: body.slice(5..),
        cts_ms,
        sync: frame.keyframe,
    })
}

/// AV1 OBU type of a temporal delimiter.
const OBU_TEMPORAL_DELIMITER: u8 = 2;

/// Drops the temporal delimiter OBUs that lead an AV1 temporal unit: AV1-ISOBMFF
/// §2.4 says samples should not carry them. They come first in a temporal unit,
/// so this is a re-slice, not a copy. Anything unparseable is left as it is.
fn strip_temporal_delimiters(mut data: Bytes) -> Bytes {
    // [header][leb128 size=0] with has_size_field set: the form encoders write.
    while let [header, size, ..] = data.as_ref() {
        let is_td =
            (header >> 3) & 0x0F == OBU_TEMPORAL_DELIMITER && header & 0x06 == 0x02 && *size == 0;
        if !is_td {
            break;
        }
        data = data.slice(2..);
    }
    data
}

fn kind_name(codec: Fmp4Codec) -> &'static str {
    if codec.is_video() {
        "video"
    } else {
        "audio"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(payload: &[u8]) -> Frame {
        Frame::new(FrameKind::Video, 0, Bytes::copy_from_slice(payload))
    }

    #[test]
    fn legacy_avc_strips_five_bytes_and_reads_negative_cts() {
        let f = video(&[0x17, 1, 0xFF, 0xFF, 0xD8, 0, 0, 0, 1, 0x65]);
        let s = sample_from_frame(Fmp4Codec::Avc, &f, 0).unwrap();
        assert_eq!(s.data.as_ref(), &[0, 0, 0, 1, 0x65]);
        assert_eq!(s.cts_ms, -40);
        assert!(s.sync);
        let inter = video(&[0x27, 1, 0, 0, 80, 0, 0, 0, 1, 0x41]);
        let s = sample_from_frame(Fmp4Codec::Avc, &inter, 3).unwrap();
        assert_eq!((s.cts_ms, s.sync), (80, false));
    }

    #[test]
    fn sequence_headers_and_end_of_sequence_are_not_samples() {
        for p in [[0x17, 0, 0, 0, 0], [0x17, 2, 0, 0, 0]] {
            assert_eq!(
                sample_from_frame(Fmp4Codec::Avc, &video(&p), 4),
                Err(Fmp4Error::NotACodedFrame {
                    index: 4,
                    expected: "video"
                })
            );
        }
    }

    #[test]
    fn codec_mismatch_is_refused() {
        let hevc = video(&[0x1C, 1, 0, 0, 0, 1]);
        assert_eq!(
            sample_from_frame(Fmp4Codec::Avc, &hevc, 1),
            Err(Fmp4Error::CodecMismatch { index: 1 })
        );
        assert!(sample_from_frame(Fmp4Codec::Hevc, &hevc, 1).is_ok());
        let audio = Frame::new(FrameKind::Audio, 0, Bytes::from_static(&[0xAF, 1, 9]));
        assert!(matches!(
            sample_from_frame(Fmp4Codec::Avc, &audio, 0),
            Err(Fmp4Error::NotACodedFrame { .. })
        ));
    }

    #[test]
    fn enhanced_forms() {
        let coded = video(&[0x91, b'h', b'v', b'c', b'1', 0, 0, 40, 0xAA]);
        let s = sample_from_frame(Fmp4Codec::Hevc, &coded, 0).unwrap();
        assert_eq!((s.data.as_ref(), s.cts_ms, s.sync), (&[0xAA][..], 40, true));
        let x = video(&[0xA3, b'h', b'v', b'c', b'1', 0xBB]);
        let s = sample_from_frame(Fmp4Codec::Hevc, &x, 0).unwrap();
        assert_eq!((s.data.as_ref(), s.cts_ms, s.sync), (&[0xBB][..], 0, false));
        // av01 CodedFrames has no composition time field; the leading
        // temporal delimiter (0x12 0x00) is dropped.
        let av1 = video(&[0x91, b'a', b'v', b'0', b'1', 0x12, 0x00, 0x32, 0x01, 0x07]);
        let s = sample_from_frame(Fmp4Codec::Av1, &av1, 0).unwrap();
        assert_eq!(s.data.as_ref(), &[0x32, 0x01, 0x07]);
        let multitrack = video(&[0x96, b'h', b'v', b'c', b'1']);
        assert_eq!(
            sample_from_frame(Fmp4Codec::Hevc, &multitrack, 0),
            Err(Fmp4Error::UnsupportedPacketType(6))
        );
    }

    #[test]
    fn aac_legacy_and_enhanced() {
        let legacy = Frame::new(FrameKind::Audio, 0, Bytes::from_static(&[0xAF, 1, 1, 2]));
        let s = sample_from_frame(Fmp4Codec::Aac, &legacy, 0).unwrap();
        assert_eq!((s.data.as_ref(), s.sync), (&[1, 2][..], true));
        let ex = Frame::new(
            FrameKind::Audio,
            0,
            Bytes::from_static(&[0x91, b'm', b'p', b'4', b'a', 7]),
        );
        assert_eq!(
            sample_from_frame(Fmp4Codec::Aac, &ex, 0)
                .unwrap()
                .data
                .as_ref(),
            &[7]
        );
        let seq = Frame::new(
            FrameKind::Audio,
            0,
            Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
        );
        assert!(matches!(
            sample_from_frame(Fmp4Codec::Aac, &seq, 0),
            Err(Fmp4Error::NotACodedFrame { .. })
        ));
        let mp3 = Frame::new(FrameKind::Audio, 0, Bytes::from_static(&[0x2F, 0xFF]));
        assert_eq!(
            sample_from_frame(Fmp4Codec::Aac, &mp3, 2),
            Err(Fmp4Error::CodecMismatch { index: 2 })
        );
    }
}
