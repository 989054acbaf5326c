//! Codec parameters from sequence-header tag bodies: profile, level, picture size,
//! sample rate, channels. What the API and status page show about a stream.
//!
//! Input is a whole FLV audio/video tag body (== RTMP message payload) that
//! [`crate::protocol::Frame::sequence_header`] flagged; the FLV/Enhanced RTMP
//! framing is peeled here and the record handed to [`super::avc`],
//! [`super::hevc`] or [`super::aac`].

use thiserror::Error;

use super::aac::{parse_audio_specific_config, AacConfig};
use super::avc::{parse_avc_config, AvcConfig};
use super::codec::{ex_packet_type, VideoCodec, VideoTagInfo};
use super::hevc::{parse_hevc_config, HevcConfig};

/// Why codec parameters could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum CodecConfigError {
    /// The tag body is not a sequence header (configuration record).
    #[error("not a sequence header")]
    NotASequenceHeader,
    /// A codec whose configuration we do not decode.
    #[error("codec configuration not supported")]
    UnsupportedCodec,
    /// The record or parameter set ended early.
    #[error("{what} truncated")]
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// A configuration record version other than 1.
    #[error("configuration record version {version} unsupported")]
    UnsupportedVersion {
        /// The version byte.
        version: u8,
    },
    /// The record carries no parameter set of the kind needed.
    #[error("no {what} in configuration record")]
    NoParameterSet {
        /// Which parameter set (e.g. `SPS`).
        what: &'static str,
    },
    /// An exp-Golomb code with more leading zeros than any valid field has.
    #[error("exp-Golomb code longer than {limit} leading zeros")]
    ExpGolombTooLong {
        /// The most leading zeros accepted.
        limit: u32,
    },
    /// A field holds a value beyond its allowed range.
    #[error("{field} = {value} exceeds the limit {limit}")]
    ValueOutOfRange {
        /// The syntax element.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The largest value accepted.
        limit: u64,
    },
}

/// Decoded video codec configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoConfig {
    /// H.264.
    Avc(AvcConfig),
    /// H.265.
    Hevc(HevcConfig),
}

impl VideoConfig {
    /// The codec.
    pub fn codec(&self) -> VideoCodec {
        match self {
            VideoConfig::Avc(_) => VideoCodec::Avc,
            VideoConfig::Hevc(_) => VideoCodec::Hevc,
        }
    }

    /// Displayed picture size in pixels.
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            VideoConfig::Avc(c) => (c.sps.width, c.sps.height),
            VideoConfig::Hevc(c) => (c.sps.width, c.sps.height),
        }
    }

    /// `profile_idc` as the codec numbers it.
    pub fn profile_idc(&self) -> u8 {
        match self {
            VideoConfig::Avc(c) => c.profile_idc,
            VideoConfig::Hevc(c) => c.profile_idc,
        }
    }

    /// Level as a decimal number (e.g. 3.1), normalising H.264's ×10 and H.265's ×30.
    pub fn level(&self) -> f32 {
        match self {
            VideoConfig::Avc(c) => f32::from(c.level_idc) / 10.0,
            VideoConfig::Hevc(c) => f32::from(c.level_idc) / 30.0,
        }
    }
}

/// Reads the codec configuration from a video sequence-header tag body: legacy
/// AVC (codec id 7) / HEVC (id 12) with a 5-byte header, or Enhanced RTMP
/// `avc1` / `hvc1` SequenceStart with a 5-byte header.
pub fn parse_video_sequence_header(body: &[u8]) -> Result<VideoConfig, CodecConfigError> {
    let info = VideoTagInfo::parse(body).ok_or(CodecConfigError::Truncated {
        what: "video tag header",
    })?;
    if !info.sequence_header {
        return Err(CodecConfigError::NotASequenceHeader);
    }
    if info.enhanced
        && body
            .first()
            .is_some_and(|b| b & 0x0F != ex_packet_type::SEQUENCE_START)
    {
        return Err(CodecConfigError::UnsupportedCodec);
    }
    // Legacy: [frame/codec][AVCPacketType][CompositionTime:3]; enhanced: [flags][FourCC:4].
    let record = body.get(5..).ok_or(CodecConfigError::Truncated {
        what: "video tag header",
    })?;
    match info.codec {
        Some(VideoCodec::Avc) => parse_avc_config(record).map(VideoConfig::Avc),
        Some(VideoCodec::Hevc) => parse_hevc_config(record).map(VideoConfig::Hevc),
        _ => Err(CodecConfigError::UnsupportedCodec),
    }
}

/// Reads the AAC configuration from an audio sequence-header tag body: legacy
/// `[0xAx, 0x00, ASC..]` or Enhanced RTMP `[0x90, "mp4a", ASC..]`.
pub fn parse_audio_sequence_header(body: &[u8]) -> Result<AacConfig, CodecConfigError> {
    let truncated = CodecConfigError::Truncated {
        what: "audio tag header",
    };
    let b0 = *body.first().ok_or(truncated)?;
    let asc = match b0 >> 4 {
        10 => match body.get(1) {
            Some(0) => body.get(2..).ok_or(truncated)?,
            Some(_) => return Err(CodecConfigError::NotASequenceHeader),
            None => return Err(truncated),
        },
        9 => {
            if b0 & 0x0F != 0 {
                return Err(CodecConfigError::NotASequenceHeader);
            }
            if body.get(1..5).ok_or(truncated)? != b"mp4a" {
                return Err(CodecConfigError::UnsupportedCodec);
            }
            body.get(5..).ok_or(truncated)?
        }
        _ => return Err(CodecConfigError::UnsupportedCodec),
    };
    parse_audio_specific_config(asc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::flv::fixture_frames;
    use crate::protocol::{Frame, FrameKind};

    fn seq(frames: &[Frame], kind: FrameKind) -> &[u8] {
        &frames
            .iter()
            .find(|f| f.kind == kind && f.sequence_header)
            .unwrap()
            .payload
    }

    #[test]
    fn ffmpeg_high444_file() {
        let frames = fixture_frames("avc444_aac_320x240.flv");
        let v = parse_video_sequence_header(seq(&frames, FrameKind::Video)).unwrap();
        assert_eq!(v.codec(), VideoCodec::Avc);
        assert_eq!(v.dimensions(), (320, 240));
        assert_eq!(v.profile_idc(), 244);
        let VideoConfig::Avc(avc) = &v else {
            panic!("not AVC")
        };
        assert_eq!(avc.sps.chroma_format_idc, 3);
        let a = parse_audio_sequence_header(seq(&frames, FrameKind::Audio)).unwrap();
        assert_eq!((a.object_type, a.sample_rate, a.channels), (2, 44100, 1));
    }

    #[test]
    fn ffmpeg_main420_cropped_file() {
        let frames = fixture_frames("avc420_aac_320x180.flv");
        let v = parse_video_sequence_header(seq(&frames, FrameKind::Video)).unwrap();
        assert_eq!(v.dimensions(), (320, 180));
        assert_eq!(v.profile_idc(), 77);
        assert!(v.level() > 1.0);
        let a = parse_audio_sequence_header(seq(&frames, FrameKind::Audio)).unwrap();
        assert_eq!((a.sample_rate, a.channels), (48000, 2));
    }

    #[test]
    fn enhanced_headers_and_non_sequence_headers() {
        let frames = fixture_frames("avc420_aac_320x180.flv");
        let legacy = seq(&frames, FrameKind::Video);
        let mut enhanced = vec![0x90, b'a', b'v', b'c', b'1'];
        enhanced.extend_from_slice(&legacy[5..]);
        assert_eq!(
            parse_video_sequence_header(&enhanced).unwrap().dimensions(),
            (320, 180)
        );
        let audio = seq(&frames, FrameKind::Audio);
        let mut ex_audio = vec![0x90, b'm', b'p', b'4', b'a'];
        ex_audio.extend_from_slice(&audio[2..]);
        assert_eq!(
            parse_audio_sequence_header(&ex_audio).unwrap().sample_rate,
            48000
        );

        assert_eq!(
            parse_video_sequence_header(&[0x17, 1, 0, 0, 0]),
            Err(CodecConfigError::NotASequenceHeader)
        );
        assert_eq!(
            parse_audio_sequence_header(&[0xAF, 1, 0x21]),
            Err(CodecConfigError::NotASequenceHeader)
        );
        assert_eq!(
            parse_video_sequence_header(&[0x90, b'a', b'v', b'0', b'1', 0x81]),
            Err(CodecConfigError::UnsupportedCodec)
        );
        assert_eq!(
            parse_audio_sequence_header(&[0x2F]),
            Err(CodecConfigError::UnsupportedCodec)
        );
    }

    #[test]
    fn every_truncation_of_real_headers_is_an_error_not_a_panic() {
        let frames = fixture_frames("avc444_aac_320x240.flv");
        let video = seq(&frames, FrameKind::Video);
        for cut in 0..video.len() {
            let _ = parse_video_sequence_header(&video[..cut]);
        }
        assert!(parse_video_sequence_header(&video[..12]).is_err());
        let audio = seq(&frames, FrameKind::Audio);
        assert!(parse_audio_sequence_header(&audio[..3]).is_err());
    }
}
