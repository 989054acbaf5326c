//! A track as the fMP4 muxer sees it, built from an FLV sequence-header tag
//! body: codec, timescale, picture size or sample rate, and the codec
//! configuration record the sample entry carries verbatim.

use bytes::Bytes;

use super::av1::av1c_dimensions;
use super::error::Fmp4Error;
use crate::protocol::flv::aac::parse_audio_specific_config;
use crate::protocol::flv::avc::parse_avc_config;
use crate::protocol::flv::codec::{
    ex_packet_type, AudioCodec, AudioTagInfo, VideoCodec, VideoTagInfo,
};
use crate::protocol::flv::config::CodecConfigError;
use crate::protocol::flv::hevc::parse_hevc_config;
use crate::protocol::{Frame, FrameKind};

/// Video timescale: 90 kHz, so millisecond FLV timestamps map exactly (×90) and
/// the value matches MPEG-TS clocks, which keeps TS and fMP4 outputs comparable.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// Largest codec configuration record accepted (SPS/PPS/VPS sets are a few hundred bytes).
pub const MAX_CONFIG_RECORD: usize = 64 * 1024;

/// Length of the FLV video tag header before a configuration record, in both
/// legacy (`[codec][packet type][cts:3]`) and Enhanced RTMP (`[flags][FourCC:4]`) forms.
const VIDEO_HEADER_LEN: usize = 5;

/// Codecs the muxer writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fmp4Codec {
    /// H.264: `avc1` + `avcC`.
    Avc,
    /// H.265: `hvc1` + `hvcC`.
    Hevc,
    /// AV1: `av01` + `av1C`.
    Av1,
    /// AAC: `mp4a` + `esds`.
    Aac,
}

impl Fmp4Codec {
    /// The codec as FLV's codec recognition names it (video codecs only).
    pub fn video_codec(self) -> Option<VideoCodec> {
        match self {
            Fmp4Codec::Avc => Some(VideoCodec::Avc),
            Fmp4Codec::Hevc => Some(VideoCodec::Hevc),
            Fmp4Codec::Av1 => Some(VideoCodec::Av1),
            Fmp4Codec::Aac => None,
        }
    }

    /// True for the video codecs.
    pub fn is_video(self) -> bool {
        self.video_codec().is_some()
    }
}

/// What kind of media a track carries, with the parameters its sample entry needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackMedia {
    /// Video, with the displayed picture size from the sequence header.
    Video {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// Audio.
    Audio {
        /// Sample rate in Hz (the AAC core rate); also the track's timescale.
        sample_rate: u32,
        /// Channel count (2 when the config defers to a program config element).
        channels: u16,
    },
}

/// One track of an fMP4 stream: everything the init segment and the chunks need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    /// `track_ID` in `tkhd`, `trex` and `tfhd` (non-zero).
    pub track_id: u32,
    /// The codec.
    pub codec: Fmp4Codec,
    /// Ticks per second of the track's media timeline (`mdhd`).
    pub timescale: u32,
    /// Video or audio parameters.
    pub media: TrackMedia,
    /// `avcC` / `hvcC` / `av1C` record, or the AAC AudioSpecificConfig: a slice of
    /// the sequence header's payload, written into the sample entry unchanged.
    pub config: Bytes,
}

impl Track {
    /// A track from a sequence-header frame (video or audio).
    pub fn from_sequence_header(track_id: u32, frame: &Frame) -> Result<Track, Fmp4Error> {
        match frame.kind {
            FrameKind::Video => Track::video(track_id, &frame.payload),
            FrameKind::Audio => Track::audio(track_id, &frame.payload),
            FrameKind::Script => Err(Fmp4Error::NotACodedFrame {
                index: 0,
                expected: "sequence header",
            }),
        }
    }

    /// A video track from a video sequence-header tag body: legacy AVC (7) /
    /// HEVC (12), or Enhanced RTMP `avc1` / `hvc1` / `av01` SequenceStart.
    pub fn video(track_id: u32, body: &Bytes) -> Result<Track, Fmp4Error> {
        let info = VideoTagInfo::parse(body).ok_or(CodecConfigError::Truncated {
            what: "video tag header",
        })?;
        let packet_type = body.first().map_or(0, |b| b & 0x0F);
        if info.enhanced
            && (packet_type == ex_packet_type::MULTITRACK || packet_type == ex_packet_type::MOD_EX)
        {
            return Err(Fmp4Error::UnsupportedPacketType(packet_type));
        }
        let codec = match info.codec {
            Some(VideoCodec::Avc) => Fmp4Codec::Avc,
            Some(VideoCodec::Hevc) => Fmp4Codec::Hevc,
            Some(VideoCodec::Av1) if info.enhanced => Fmp4Codec::Av1,
            other => return Err(Fmp4Error::UnsupportedVideoCodec(other)),
        };
        if info.enhanced {
            if packet_type != ex_packet_type::SEQUENCE_START {
                return Err(if info.sequence_header {
                    // AV1's MPEG-2 TS form of the sequence start.
                    Fmp4Error::UnsupportedPacketType(packet_type)
                } else {
                    Fmp4Error::NotACodedFrame {
                        index: 0,
                        expected: "video sequence header",
                    }
                });
            }
        } else if !info.sequence_header {
            return Err(Fmp4Error::NotACodedFrame {
                index: 0,
                expected: "video sequence header",
            });
        }
        let config = config_slice(body, VIDEO_HEADER_LEN)?;
        let (width, height) = match codec {
            Fmp4Codec::Avc => {
                let c = parse_avc_config(&config)?;
                (c.sps.width, c.sps.height)
            }
            Fmp4Codec::Hevc => {
                let c = parse_hevc_config(&config)?;
                (c.sps.width, c.sps.height)
            }
            Fmp4Codec::Av1 => av1c_dimensions(&config)?,
            Fmp4Codec::Aac => {
                return Err(Fmp4Error::Internal {
                    what: "audio codec chosen for a video tag",
                })
            }
        };
        Ok(Track {
            track_id,
            codec,
            timescale: VIDEO_TIMESCALE,
            media: TrackMedia::Video { width, height },
            config,
        })
    }

    /// An audio track from an AAC sequence-header tag body: legacy
    /// `[0xAx, 0x00, ASC..]` or Enhanced RTMP `[0x90, "mp4a", ASC..]`.
    pub fn audio(track_id: u32, body: &Bytes) -> Result<Track, Fmp4Error> {
        let info = AudioTagInfo::parse(body).ok_or(CodecConfigError::Truncated {
            what: "audio tag header",
        })?;
        let header_len = match info.codec {
            AudioCodec::Aac => 2,
            AudioCodec::Enhanced if body.get(1..5) == Some(b"mp4a".as_slice()) => 5,
            other => return Err(Fmp4Error::UnsupportedAudioCodec(other)),
        };
        if !info.sequence_header {
            return Err(Fmp4Error::NotACodedFrame {
                index: 0,
                expected: "audio sequence header",
            });
        }
        let config = config_slice(body, header_len)?;
        let asc = parse_audio_specific_config(&config)?;
        if asc.sample_rate == 0 {
            return Err(Fmp4Error::TimeOutOfRange {
                what: "AAC sample rate",
            });
        }
        Ok(Track {
            track_id,
            codec: Fmp4Codec::Aac,
            timescale: asc.sample_rate,
            media: TrackMedia::Audio {
                sample_rate: asc.sample_rate,
                channels: if asc.channels == 0 {
                    2
                } else {
                    u16::from(asc.channels)
                },
            },
            config,
        })
    }
}

/// The record after the tag header, bounded by [`MAX_CONFIG_RECORD`].
fn config_slice(body: &Bytes, header_len: usize) -> Result<Bytes, Fmp4Error> {
    if body.len() < header_len {
        return Err(CodecConfigError::Truncated {
            what: "sequence header",
        }
        .into());
    }
    let size = body.len() - header_len;
    if size > MAX_CONFIG_RECORD {
        return Err(Fmp4Error::ConfigTooLarge {
            size,
            limit: MAX_CONFIG_RECORD,
        });
    }
    Ok(body.slice(header_len..))
}
