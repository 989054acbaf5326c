//! Writers for the legacy FLV audio/video tag-body headers (FLV spec v10.1 E.4.2,
//! E.4.3) and the AVC/AAC sequence headers behind them, for anything that
//! publishes (loadgen's synthetic source, tests). The readers are
//! [`super::codec`] and [`super::config`]; these write what they read.

use bytes::{BufMut, BytesMut};
use thiserror::Error;

use super::aac::SAMPLE_RATES;

/// Legacy AVC video tag-body header: frame type/codec id, AVCPacketType, 24-bit
/// composition time offset.
pub const AVC_TAG_HEADER_LEN: usize = 5;
/// AAC audio tag-body header: sound format/rate/size/type, AACPacketType.
pub const AAC_TAG_HEADER_LEN: usize = 2;
/// Legacy FLV video codec id of H.264.
const CODEC_ID_AVC: u8 = 7;
/// Frame type 1 (keyframe) and 2 (inter frame), in the high nibble.
const FRAME_KEY: u8 = 1 << 4;
const FRAME_INTER: u8 = 2 << 4;
/// Sound format 10 (AAC); the spec fixes rate 3 (44 kHz), 16-bit, stereo for AAC, the
/// real layout being in the AudioSpecificConfig.
const AAC_SOUND_BYTE: u8 = 0xAF;
/// Composition time offsets are signed 24-bit.
const CTS_RANGE: std::ops::RangeInclusive<i32> = -(1 << 23)..=(1 << 23) - 1;
/// AAC-LC and the other object types below 31 fit the 5-bit field written here.
const MAX_SHORT_OBJECT_TYPE: u8 = 30;
/// `channelConfiguration` is 4 bits; 0..=7 are defined.
const MAX_CHANNEL_CONFIG: u8 = 7;

/// `AVCPacketType` (FLV spec E.4.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AvcPacketType {
    /// An AVCDecoderConfigurationRecord follows.
    SequenceHeader = 0,
    /// NAL units with length prefixes follow.
    Nalu = 1,
    /// End of sequence; nothing follows.
    EndOfSequence = 2,
}

/// `AACPacketType` (FLV spec E.4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AacPacketType {
    /// An AudioSpecificConfig follows.
    SequenceHeader = 0,
    /// Raw AAC frame data follows.
    Raw = 1,
}

/// Why a tag body could not be written.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TagBodyError {
    /// The composition time offset does not fit the signed 24-bit field.
    #[error("composition time {cts} outside -2^23..2^23")]
    CompositionTimeOutOfRange {
        /// The requested offset in ms.
        cts: i32,
    },
    /// NAL length prefixes can only be 1, 2 or 4 bytes.
    #[error("NAL length size {size} is not 1, 2 or 4")]
    BadNalLengthSize {
        /// The requested size.
        size: u8,
    },
    /// An SPS needs its NAL header and the profile, compatibility and level bytes.
    #[error("SPS of {len} bytes is shorter than {min}")]
    SpsTooShort {
        /// Its length.
        len: usize,
        /// The 4 bytes the record copies from it.
        min: usize,
    },
    /// A parameter set longer than its 16-bit length field.
    #[error("parameter set of {len} bytes exceeds {limit}")]
    ParameterSetTooLarge {
        /// Its length.
        len: usize,
        /// `u16::MAX`.
        limit: usize,
    },
    /// An AAC object type, sample rate or channel configuration this writer cannot express.
    #[error("AAC {what} {value} not supported")]
    UnsupportedAac {
        /// Which field.
        what: &'static str,
        /// The requested value.
        value: u32,
    },
}

/// The 5-byte header of a legacy AVC video tag body.
pub fn avc_tag_header(
    keyframe: bool,
    packet_type: AvcPacketType,
    composition_time: i32,
) -> Result<[u8; AVC_TAG_HEADER_LEN], TagBodyError> {
    if !CTS_RANGE.contains(&composition_time) {
        return Err(TagBodyError::CompositionTimeOutOfRange {
            cts: composition_time,
        });
    }
    let frame = if keyframe { FRAME_KEY } else { FRAME_INTER };
    let [_, c0, c1, c2] = composition_time.to_be_bytes();
    Ok([frame | CODEC_ID_AVC, packet_type as u8, c0, c1, c2])
}

/// The 2-byte header of an AAC audio tag body.
pub const fn aac_tag_header(packet_type: AacPacketType) -> [u8; AAC_TAG_HEADER_LEN] {
    [AAC_SOUND_BYTE, packet_type as u8]
}

/// Writes a whole AVC sequence-header tag body: the keyframe tag header, then an
/// AVCDecoderConfigurationRecord (ISO 14496-15 §5.3.3.1) with one SPS and one PPS.
pub fn write_avc_sequence_header(
    sps: &[u8],
    pps: &[u8],
    nal_length_size: u8,
    out: &mut BytesMut,
) -> Result<(), TagBodyError> {
    if !matches!(nal_length_size, 1 | 2 | 4) {
        return Err(TagBodyError::BadNalLengthSize {
            size: nal_length_size,
        });
    }
    let Some(&[_, profile, compatibility, level]) = sps.first_chunk::<4>() else {
        return Err(TagBodyError::SpsTooShort {
            len: sps.len(),
            min: 4,
        });
    };
    let sps_len = parameter_set_len(sps)?;
    let pps_len = parameter_set_len(pps)?;
    out.reserve(AVC_TAG_HEADER_LEN + 11 + sps.len() + pps.len());
    out.put_slice(&avc_tag_header(true, AvcPacketType::SequenceHeader, 0)?);
    // configurationVersion 1, then reserved bits set around lengthSizeMinusOne and numOfSPS.
    out.put_slice(&[
        1,
        profile,
        compatibility,
        level,
        0xFC | (nal_length_size - 1),
        0xE0 | 1,
    ]);
    out.put_u16(sps_len);
    out.put_slice(sps);
    out.put_u8(1);
    out.put_u16(pps_len);
    out.put_slice(pps);
    Ok(())
}

fn parameter_set_len(set: &[u8]) -> Result<u16, TagBodyError> {
    u16::try_from(set.len()).map_err(|_| TagBodyError::ParameterSetTooLarge {
        len: set.len(),
        limit: usize::from(u16::MAX),
    })
}

/// Writes a whole AAC sequence-header tag body: the tag header, then a 2-byte
/// AudioSpecificConfig (ISO 14496-3 §1.6.2.1) for `object_type` (2 = AAC-LC) at one
/// of the standard sample rates with `channel_config` (1 mono, 2 stereo, ...).
pub fn write_aac_sequence_header(
    object_type: u8,
    sample_rate: u32,
    channel_config: u8,
    out: &mut BytesMut,
) -> Result<(), TagBodyError> {
    if object_type == 0 || object_type > MAX_SHORT_OBJECT_TYPE {
        return Err(TagBodyError::UnsupportedAac {
            what: "object type",
            value: u32::from(object_type),
        });
    }
    let Some(rate_index) = SAMPLE_RATES.iter().position(|&r| r == sample_rate) else {
        return Err(TagBodyError::UnsupportedAac {
            what: "sample rate",
            value: sample_rate,
        });
    };
    if channel_config > MAX_CHANNEL_CONFIG {
        return Err(TagBodyError::UnsupportedAac {
            what: "channel configuration",
            value: u32::from(channel_config),
        });
    }
    // 5 bits object type, 4 bits rate index, 4 bits channels, 3 bits GASpecificConfig zeros.
    let asc = (u16::from(object_type) << 11)
        | ((rate_index as u16) << 7)
        | (u16::from(channel_config) << 3);
    out.put_slice(&aac_tag_header(AacPacketType::SequenceHeader));
    out.put_u16(asc);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::flv::codec::{AudioCodec, AudioTagInfo, VideoCodec, VideoTagInfo};
    use crate::protocol::flv::config::{parse_audio_sequence_header, parse_video_sequence_header};

    /// SPS of 640x360 H.264 Main profile level 3.0, as written by x264.
    const SPS: [u8; 24] = [
        0x67, 0x4d, 0x40, 0x1e, 0xec, 0xa0, 0x50, 0x17, 0xfc, 0xb8, 0x08, 0x80, 0x00, 0x00, 0x03,
        0x00, 0x80, 0x00, 0x00, 0x1e, 0x07, 0x8b, 0x16, 0xcb,
    ];
    const PPS: [u8; 5] = [0x68, 0xeb, 0xe3, 0xcb, 0x20];

    #[test]
    fn avc_sequence_header_reads_back_through_the_parsers() {
        let mut out = BytesMut::new();
        write_avc_sequence_header(&SPS, &PPS, 4, &mut out).unwrap();
        let info = VideoTagInfo::parse(&out).unwrap();
        assert_eq!(info.codec, Some(VideoCodec::Avc));
        assert!(info.sequence_header);
        assert_eq!(
            out.first(),
            Some(&0x17),
            "frame type 1 (key), codec 7, as encoders write it"
        );
        let config = parse_video_sequence_header(&out).unwrap();
        assert_eq!(config.dimensions(), (640, 360));
        assert_eq!(config.profile_idc(), 77);
        assert_eq!(out.len(), AVC_TAG_HEADER_LEN + 11 + SPS.len() + PPS.len());
        assert_eq!(out.get(out.len() - PPS.len()..), Some(&PPS[..]));
    }

    #[test]
    fn avc_tag_headers_carry_frame_type_packet_type_and_signed_cts() {
        assert_eq!(
            avc_tag_header(true, AvcPacketType::Nalu, 0),
            Ok([0x17, 1, 0, 0, 0])
        );
        assert_eq!(
            avc_tag_header(false, AvcPacketType::Nalu, -2),
            Ok([0x27, 1, 0xff, 0xff, 0xfe])
        );
        assert_eq!(
            avc_tag_header(false, AvcPacketType::EndOfSequence, 0x12_3456),
            Ok([0x27, 2, 0x12, 0x34, 0x56])
        );
        assert_eq!(
            avc_tag_header(true, AvcPacketType::Nalu, 1 << 23),
            Err(TagBodyError::CompositionTimeOutOfRange { cts: 1 << 23 })
        );
        let inter = avc_tag_header(false, AvcPacketType::Nalu, 0).unwrap();
        let info = VideoTagInfo::parse(&inter).unwrap();
        assert!(!info.keyframe && !info.sequence_header);
    }

    #[test]
    fn aac_sequence_header_reads_back_through_the_parsers() {
        let mut out = BytesMut::new();
        write_aac_sequence_header(2, 44_100, 2, &mut out).unwrap();
        assert_eq!(
            &out[..],
            &[0xAF, 0, 0x12, 0x10],
            "the ASC every AAC-LC stereo 44.1k encoder writes"
        );
        let info = AudioTagInfo::parse(&out).unwrap();
        assert_eq!(info.codec, AudioCodec::Aac);
        let asc = parse_audio_sequence_header(&out).unwrap();
        assert_eq!(
            (asc.object_type, asc.sample_rate, asc.channels),
            (2, 44_100, 2)
        );
        assert_eq!(aac_tag_header(AacPacketType::Raw), [0xAF, 1]);
    }

    #[test]
    fn unwritable_configs_are_typed_errors() {
        let mut out = BytesMut::new();
        assert_eq!(
            write_avc_sequence_header(&SPS, &PPS, 3, &mut out),
            Err(TagBodyError::BadNalLengthSize { size: 3 })
        );
        assert_eq!(
            write_avc_sequence_header(&SPS[..3], &PPS, 4, &mut out),
            Err(TagBodyError::SpsTooShort { len: 3, min: 4 })
        );
        let huge = vec![0x68; 70_000];
        assert_eq!(
            write_avc_sequence_header(&SPS, &huge, 4, &mut out),
            Err(TagBodyError::ParameterSetTooLarge {
                len: 70_000,
                limit: 65_535
            })
        );
        assert_eq!(
            write_aac_sequence_header(2, 44_000, 2, &mut out),
            Err(TagBodyError::UnsupportedAac {
                what: "sample rate",
                value: 44_000
            })
        );
        assert_eq!(
            write_aac_sequence_header(31, 44_100, 2, &mut out),
            Err(TagBodyError::UnsupportedAac {
                what: "object type",
                value: 31
            })
        );
        assert_eq!(
            write_aac_sequence_header(2, 44_100, 8, &mut out),
            Err(TagBodyError::UnsupportedAac {
                what: "channel configuration",
                value: 8
            })
        );
        assert!(out.is_empty(), "nothing written on error");
    }
}
