//! Peels the FLV / Enhanced RTMP tag-body framing off a [`Frame`] and decides
//! whether TS can carry its codec: H.264 video and AAC audio only.
//!
//! Everything else is refused with [`TsError::UnsupportedCodec`], per track, so
//! the caller can leave that track out with one warning while the other track
//! (and HTTP-FLV) carries on.

use super::error::{TrackKind, TsError};
use crate::protocol::flv::codec::ex_packet_type;
use crate::protocol::{Frame, FrameKind};

/// FLV frame type 5: a video info/command frame, no picture.
const FRAME_TYPE_COMMAND: u8 = 5;
/// Legacy FLV video codec id of H.264.
const CODEC_ID_AVC: u8 = 7;
/// Legacy AVCPacketType values (FLV spec E.4.3.1).
const AVC_SEQUENCE_HEADER: u8 = 0;
const AVC_NALU: u8 = 1;
const AVC_END_OF_SEQUENCE: u8 = 2;
/// Legacy FLV SoundFormat of AAC and of the Enhanced RTMP ExAudioTagHeader.
const SOUND_FORMAT_AAC: u8 = 10;
const SOUND_FORMAT_EX: u8 = 9;
/// Enhanced RTMP AudioPacketType values.
const EX_AUDIO_SEQUENCE_START: u8 = 0;
const EX_AUDIO_CODED_FRAMES: u8 = 1;
const EX_AUDIO_SEQUENCE_END: u8 = 2;
const EX_AUDIO_MULTICHANNEL_CONFIG: u8 = 4;

/// What a video tag body holds, as far as the TS muxer cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VideoBody<'a> {
    /// An AVCDecoderConfigurationRecord.
    Config(&'a [u8]),
    /// Length-prefixed NAL units with their composition time offset in ms.
    Coded {
        /// PTS − DTS in ms (signed 24-bit on the wire).
        cts_ms: i32,
        /// AVCC NAL units.
        nalus: &'a [u8],
    },
    /// Carries no picture (end of sequence, command frame, metadata).
    Nothing,
}

/// What an audio tag body holds, as far as the TS muxer cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AudioBody<'a> {
    /// An AudioSpecificConfig.
    Config(&'a [u8]),
    /// One raw AAC frame.
    Raw(&'a [u8]),
    /// Carries no audio (sequence end, multichannel config).
    Nothing,
}

/// Whether TS can carry `frame`'s track: `Ok(Some(track))` if it can,
/// `Ok(None)` for script data (not a track), [`TsError::UnsupportedCodec`] (or
/// another typed error for a body too short to tell) if it cannot.
///
/// A packager calls this on a stream's first audio and video frames (sequence
/// headers or, for codecs without one such as MP3, the first coded frame) to
/// decide the [`super::TsTracks`].
pub fn track_support(frame: &Frame) -> Result<Option<TrackKind>, TsError> {
    match frame.kind {
        FrameKind::Script => Ok(None),
        FrameKind::Video => video_body(&frame.payload).map(|_| Some(TrackKind::Video)),
        FrameKind::Audio => audio_body(&frame.payload).map(|_| Some(TrackKind::Audio)),
    }
}

fn truncated(what: &'static str) -> TsError {
    TsError::Truncated { what }
}

fn unsupported_video(codec: &'static str) -> TsError {
    TsError::UnsupportedCodec {
        track: TrackKind::Video,
        codec,
    }
}

/// Signed 24-bit big-endian composition time offset.
fn cts(bytes: &[u8]) -> Result<i32, TsError> {
    let Some(&[a, b, c]) = bytes.first_chunk::<3>() else {
        return Err(truncated("composition time"));
    };
    // Place the 24 bits at the top, then shift back arithmetically to sign-extend.
    Ok(i32::from_be_bytes([a, b, c, 0]) >> 8)
}

/// Parses a video tag body: legacy AVC (codec id 7) or Enhanced RTMP `avc1`.
pub(crate) fn video_body(body: &[u8]) -> Result<VideoBody<'_>, TsError> {
    let b0 = *body.first().ok_or(truncated("video tag header"))?;
    if b0 & 0x80 != 0 {
        return ex_video_body(b0, body);
    }
    match b0 & 0x0F {
        CODEC_ID_AVC => {}
        2 => return Err(unsupported_video("H.263")),
        3 | 6 => return Err(unsupported_video("Screen video")),
        4 | 5 => return Err(unsupported_video("VP6")),
        12 => return Err(unsupported_video("HEVC")),
        _ => return Err(unsupported_video("unknown")),
    }
    if b0 >> 4 == FRAME_TYPE_COMMAND {
        return Ok(VideoBody::Nothing);
    }
    let [_, packet_type, rest @ ..] = body else {
        return Err(truncated("AVC packet type"));
    };
    match *packet_type {
        AVC_SEQUENCE_HEADER => Ok(VideoBody::Config(
            rest.get(3..).ok_or(truncated("AVC sequence header"))?,
        )),
        AVC_NALU => Ok(VideoBody::Coded {
            cts_ms: cts(rest)?,
            nalus: rest.get(3..).ok_or(truncated("AVC NALU packet"))?,
        }),
        AVC_END_OF_SEQUENCE => Ok(VideoBody::Nothing),
        packet_type => Err(TsError::UnsupportedPacketType {
            track: TrackKind::Video,
            packet_type,
        }),
    }
}

/// Enhanced RTMP ExVideoTagHeader: `[1|frame type:3|packet type:4][FourCC:4]...`.
fn ex_video_body(b0: u8, body: &[u8]) -> Result<VideoBody<'_>, TsError> {
    let packet_type = b0 & 0x0F;
    // Multitrack and ModEx put more bytes before the FourCC; not handled here.
    if packet_type >= ex_packet_type::MULTITRACK {
        return Err(TsError::UnsupportedPacketType {
            track: TrackKind::Video,
            packet_type,
        });
    }
    let fourcc = body.get(1..5).ok_or(truncated("video FourCC"))?;
    match fourcc {
        b"avc1" => {}
        b"hvc1" => return Err(unsupported_video("HEVC")),
        b"av01" => return Err(unsupported_video("AV1")),
        b"vp09" => return Err(unsupported_video("VP9")),
        _ => return Err(unsupported_video("unknown")),
    }
    if (b0 >> 4) & 0x07 == FRAME_TYPE_COMMAND {
        return Ok(VideoBody::Nothing);
    }
    let rest = body.get(5..).ok_or(truncated("video FourCC"))?;
    match packet_type {
        ex_packet_type::SEQUENCE_START => Ok(VideoBody::Config(rest)),
        ex_packet_type::CODED_FRAMES => Ok(VideoBody::Coded {
            cts_ms: cts(rest)?,
            nalus: rest.get(3..).ok_or(truncated("composition time"))?,
        }),
        ex_packet_type::CODED_FRAMES_X => Ok(VideoBody::Coded {
            cts_ms: 0,
            nalus: rest,
        }),
        ex_packet_type::SEQUENCE_END | ex_packet_type::METADATA => Ok(VideoBody::Nothing),
        packet_type => Err(TsError::UnsupportedPacketType {
            track: TrackKind::Video,
            packet_type,
        }),
    }
}

fn unsupported_audio(codec: &'static str) -> TsError {
    TsError::UnsupportedCodec {
        track: TrackKind::Audio,
        codec,
    }
}

/// Parses an audio tag body: legacy AAC (format 10) or Enhanced RTMP `mp4a`.
pub(crate) fn audio_body(body: &[u8]) -> Result<AudioBody<'_>, TsError> {
    let b0 = *body.first().ok_or(truncated("audio tag header"))?;
    match b0 >> 4 {
        SOUND_FORMAT_AAC => {
            let [_, packet_type, rest @ ..] = body else {
                return Err(truncated("AAC packet type"));
            };
            match *packet_type {
                0 => Ok(AudioBody::Config(rest)),
                1 => Ok(AudioBody::Raw(rest)),
                packet_type => Err(TsError::UnsupportedPacketType {
                    track: TrackKind::Audio,
                    packet_type,
                }),
            }
        }
        SOUND_FORMAT_EX => ex_audio_body(b0 & 0x0F, body),
        0 | 3 => Err(unsupported_audio("PCM")),
        1 => Err(unsupported_audio("ADPCM")),
        2 | 14 => Err(unsupported_audio("MP3")),
        4..=6 => Err(unsupported_audio("Nellymoser")),
        7 => Err(unsupported_audio("G.711 A-law")),
        8 => Err(unsupported_audio("G.711 mu-law")),
        11 => Err(unsupported_audio("Speex")),
        _ => Err(unsupported_audio("unknown")),
    }
}

/// Enhanced RTMP ExAudioTagHeader: `[9:4|packet type:4][FourCC:4]...`.
fn ex_audio_body(packet_type: u8, body: &[u8]) -> Result<AudioBody<'_>, TsError> {
    let layout_known = matches!(
        packet_type,
        EX_AUDIO_SEQUENCE_START
            | EX_AUDIO_CODED_FRAMES
            | EX_AUDIO_SEQUENCE_END
            | EX_AUDIO_MULTICHANNEL_CONFIG
    );
    // Multitrack (5) and ModEx (7) put more bytes before the FourCC.
    if !layout_known {
        return Err(TsError::UnsupportedPacketType {
            track: TrackKind::Audio,
            packet_type,
        });
    }
    let fourcc = body.get(1..5).ok_or(truncated("audio FourCC"))?;
    match fourcc {
        b"mp4a" => {}
        b".mp3" => return Err(unsupported_audio("MP3")),
        b"Opus" => return Err(unsupported_audio("Opus")),
        b"ac-3" => return Err(unsupported_audio("AC-3")),
        b"ec-3" => return Err(unsupported_audio("E-AC-3")),
        b"fLaC" => return Err(unsupported_audio("FLAC")),
        _ => return Err(unsupported_audio("unknown")),
    }
    let rest = body.get(5..).ok_or(truncated("audio FourCC"))?;
    Ok(match packet_type {
        EX_AUDIO_SEQUENCE_START => AudioBody::Config(rest),
        EX_AUDIO_CODED_FRAMES => AudioBody::Raw(rest),
        _ => AudioBody::Nothing,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video(payload: &'static [u8]) -> Frame {
        Frame::new(FrameKind::Video, 0, Bytes::from_static(payload))
    }
    fn audio(payload: &'static [u8]) -> Frame {
        Frame::new(FrameKind::Audio, 0, Bytes::from_static(payload))
    }

    #[test]
    fn legacy_avc_bodies() {
        assert_eq!(
            video_body(&[0x17, 0, 0, 0, 0, 1, 2]).unwrap(),
            VideoBody::Config(&[1, 2])
        );
        assert_eq!(
            video_body(&[0x27, 1, 0xFF, 0xFF, 0xD8, 9]).unwrap(),
            VideoBody::Coded {
                cts_ms: -40,
                nalus: &[9]
            }
        );
        assert_eq!(
            video_body(&[0x17, 1, 0, 0, 80]).unwrap(),
            VideoBody::Coded {
                cts_ms: 80,
                nalus: &[]
            }
        );
        assert_eq!(video_body(&[0x17, 2, 0, 0, 0]).unwrap(), VideoBody::Nothing);
        assert_eq!(
            video_body(&[0x17, 1, 0]),
            Err(TsError::Truncated {
                what: "composition time"
            })
        );
    }

    #[test]
    fn enhanced_avc_bodies() {
        assert_eq!(
            video_body(b"\x90avc1\x01").unwrap(),
            VideoBody::Config(&[1])
        );
        assert_eq!(
            video_body(b"\x91avc1\x00\x00\x28\x07").unwrap(),
            VideoBody::Coded {
                cts_ms: 40,
                nalus: &[7]
            }
        );
        assert_eq!(
            video_body(b"\xa3avc1\x07").unwrap(),
            VideoBody::Coded {
                cts_ms: 0,
                nalus: &[7]
            }
        );
        assert_eq!(
            video_body(b"\x97avc1"),
            Err(TsError::UnsupportedPacketType {
                track: TrackKind::Video,
                packet_type: 7
            })
        );
    }

    #[test]
    fn codecs_ts_cannot_carry_are_refused_per_track() {
        let refused = |f: Frame, track, codec| {
            assert_eq!(
                track_support(&f),
                Err(TsError::UnsupportedCodec { track, codec })
            )
        };
        refused(video(b"\x90hvc1\x01"), TrackKind::Video, "HEVC");
        refused(video(b"\x90av01\x01"), TrackKind::Video, "AV1");
        refused(video(&[0x1c, 0, 0, 0, 0]), TrackKind::Video, "HEVC");
        refused(video(&[0x22, 0]), TrackKind::Video, "H.263");
        refused(audio(&[0x2F, 0xFF]), TrackKind::Audio, "MP3");
        refused(audio(&[0xB6, 0]), TrackKind::Audio, "Speex");
        refused(audio(&[0x5C, 0]), TrackKind::Audio, "Nellymoser");
        refused(audio(b"\x91Opus\x00"), TrackKind::Audio, "Opus");
        refused(audio(b"\x91.mp3\x00"), TrackKind::Audio, "MP3");
        assert_eq!(
            track_support(&video(&[0x17, 0, 0, 0, 0])),
            Ok(Some(TrackKind::Video))
        );
        assert_eq!(
            track_support(&audio(&[0xAF, 0, 0x12, 0x10])),
            Ok(Some(TrackKind::Audio))
        );
        assert_eq!(
            track_support(&audio(b"\x90mp4a\x12\x10")),
            Ok(Some(TrackKind::Audio))
        );
        let script = Frame::new(FrameKind::Script, 0, Bytes::from_static(b"x"));
        assert_eq!(track_support(&script), Ok(None));
    }

    #[test]
    fn aac_bodies() {
        assert_eq!(
            audio_body(&[0xAF, 0, 0x12, 0x10]).unwrap(),
            AudioBody::Config(&[0x12, 0x10])
        );
        assert_eq!(
            audio_body(&[0xAF, 1, 0x21]).unwrap(),
            AudioBody::Raw(&[0x21])
        );
        assert_eq!(
            audio_body(b"\x91mp4a\x21").unwrap(),
            AudioBody::Raw(&[0x21])
        );
        assert_eq!(audio_body(b"\x92mp4a").unwrap(), AudioBody::Nothing);
        assert!(matches!(
            audio_body(b"\x95\x00mp4a"),
            Err(TsError::UnsupportedPacketType { .. })
        ));
        assert!(matches!(
            audio_body(&[0xAF]),
            Err(TsError::Truncated { .. })
        ));
    }
}
