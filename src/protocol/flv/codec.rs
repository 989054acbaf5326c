//! Codec recognition from FLV audio/video tag bodies: which codec, and whether a
//! tag is a keyframe or a sequence header. Covers legacy FLV (AVC id 7, HEVC id 12)
//! and Enhanced RTMP (ExVideoTagHeader with FourCC `avc1`, `hvc1`, `av01`, `vp09`).

/// Video codecs ringcast recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// Sorenson H.263 (legacy id 2).
    H263,
    /// Screen video (legacy ids 3, 6).
    Screen,
    /// On2 VP6 (legacy ids 4, 5).
    Vp6,
    /// H.264 / AVC (legacy id 7, FourCC `avc1`).
    Avc,
    /// H.265 / HEVC (legacy id 12, FourCC `hvc1`).
    Hevc,
    /// AV1 (FourCC `av01`).
    Av1,
    /// VP9 (FourCC `vp09`).
    Vp9,
}

/// Enhanced RTMP video packet types (low nibble of the first byte when the
/// `IsExHeader` bit is set).
pub mod ex_packet_type {
    /// Decoder configuration record.
    pub const SEQUENCE_START: u8 = 0;
    /// Coded frames with a 24-bit composition time offset.
    pub const CODED_FRAMES: u8 = 1;
    /// End of sequence.
    pub const SEQUENCE_END: u8 = 2;
    /// Coded frames, composition time offset implied zero.
    pub const CODED_FRAMES_X: u8 = 3;
    /// AMF-encoded video metadata (e.g. HDR colour info).
    pub const METADATA: u8 = 4;
    /// MPEG-2 TS sequence start (AV1 only).
    pub const MPEG2TS_SEQUENCE_START: u8 = 5;
    /// Multitrack: track ids (and FourCCs) come before the data, a header
    /// layout of its own.
    pub const MULTITRACK: u8 = 6;
    /// ModEx: modifier extensions come before the real packet type.
    pub const MOD_EX: u8 = 7;
}

/// What the first bytes of a video tag body say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoTagInfo {
    /// The codec, if recognised.
    pub codec: Option<VideoCodec>,
    /// A random access point (FLV frame type 1).
    pub keyframe: bool,
    /// A decoder configuration record (AVC/HEVC packet type 0, or ex SequenceStart).
    pub sequence_header: bool,
    /// Enhanced RTMP (ExVideoTagHeader) form.
    pub enhanced: bool,
    /// Frame type 5: a video info/command frame, carries no picture.
    pub command_frame: bool,
}

impl VideoTagInfo {
    /// Parses the tag header; `None` if the body is too short to say.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let b0 = *body.first()?;
        if b0 & 0x80 != 0 {
            // ExVideoTagHeader: [1 bit IsExHeader][3 bits FrameType][4 bits PacketType][FourCC]
            let frame_type = (b0 >> 4) & 0x07;
            let packet_type = b0 & 0x0f;
            let fourcc: [u8; 4] = body.get(1..5)?.try_into().ok()?;
            let codec = match &fourcc {
                b"avc1" => Some(VideoCodec::Avc),
                b"hvc1" => Some(VideoCodec::Hevc),
                b"av01" => Some(VideoCodec::Av1),
                b"vp09" => Some(VideoCodec::Vp9),
                _ => None,
            };
            let sequence_header = packet_type == ex_packet_type::SEQUENCE_START
                || packet_type == ex_packet_type::MPEG2TS_SEQUENCE_START;
            let coded = packet_type == ex_packet_type::CODED_FRAMES
                || packet_type == ex_packet_type::CODED_FRAMES_X;
            return Some(VideoTagInfo {
                codec,
                keyframe: frame_type == 1 && coded,
                sequence_header,
                enhanced: true,
                command_frame: frame_type == 5,
            });
        }
        let frame_type = b0 >> 4;
        let codec = match b0 & 0x0f {
            2 => Some(VideoCodec::H263),
            3 | 6 => Some(VideoCodec::Screen),
            4 | 5 => Some(VideoCodec::Vp6),
            7 => Some(VideoCodec::Avc),
            12 => Some(VideoCodec::Hevc),
            _ => None,
        };
        let has_packet_type = matches!(codec, Some(VideoCodec::Avc | VideoCodec::Hevc));
        let sequence_header = has_packet_type && *body.get(1)? == 0;
        Some(VideoTagInfo {
            codec,
            keyframe: frame_type == 1 && !sequence_header,
            sequence_header,
            enhanced: false,
            command_frame: frame_type == 5,
        })
    }
}

/// Audio codecs ringcast recognises (FLV SoundFormat).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// Linear PCM, MP3, Nellymoser, G.711 and other legacy formats.
    Other(u8),
    /// MP3 (format 2).
    Mp3,
    /// AAC (format 10).
    Aac,
    /// Speex (format 11).
    Speex,
    /// Enhanced RTMP ExAudioTagHeader (format 9): codec by FourCC.
    Enhanced,
}

/// What the first bytes of an audio tag body say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioTagInfo {
    /// The codec.
    pub codec: AudioCodec,
    /// AAC AudioSpecificConfig (AACPacketType 0) or enhanced SequenceStart.
    pub sequence_header: bool,
}

impl AudioTagInfo {
    /// Parses the tag header; `None` if the body is too short to say.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let b0 = *body.first()?;
        let format = b0 >> 4;
        let (codec, sequence_header) = match format {
            10 => (AudioCodec::Aac, *body.get(1)? == 0),
            // ExAudioTagHeader: low nibble is the AudioPacketType, 0 = SequenceStart.
            9 => (AudioCodec::Enhanced, b0 & 0x0f == 0),
            2 => (AudioCodec::Mp3, false),
            11 => (AudioCodec::Speex, false),
            f => (AudioCodec::Other(f), false),
        };
        Some(AudioTagInfo {
            codec,
            sequence_header,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_keyframe_and_sequence_header() {
        let seq = VideoTagInfo::parse(&[0x17, 0x00, 0, 0, 0]).unwrap();
        assert!(seq.sequence_header && !seq.keyframe);
        assert_eq!(seq.codec, Some(VideoCodec::Avc));
        let key = VideoTagInfo::parse(&[0x17, 0x01, 0, 0, 0]).unwrap();
        assert!(key.keyframe && !key.sequence_header);
        let inter = VideoTagInfo::parse(&[0x27, 0x01, 0, 0, 0]).unwrap();
        assert!(!inter.keyframe && !inter.sequence_header);
    }

    #[test]
    fn legacy_hevc_id_12() {
        let seq = VideoTagInfo::parse(&[0x1c, 0x00, 0, 0, 0]).unwrap();
        assert_eq!(seq.codec, Some(VideoCodec::Hevc));
        assert!(seq.sequence_header);
    }

    #[test]
    fn enhanced_fourccs() {
        let seq = VideoTagInfo::parse(&[0x90, b'h', b'v', b'c', b'1']).unwrap();
        assert!(seq.enhanced && seq.sequence_header && !seq.keyframe);
        assert_eq!(seq.codec, Some(VideoCodec::Hevc));
        let key = VideoTagInfo::parse(&[0x93, b'a', b'v', b'0', b'1']).unwrap();
        assert!(key.keyframe);
        assert_eq!(key.codec, Some(VideoCodec::Av1));
        let inter = VideoTagInfo::parse(&[0xa1, b'v', b'p', b'0', b'9']).unwrap();
        assert!(!inter.keyframe);
        assert_eq!(inter.codec, Some(VideoCodec::Vp9));
        assert!(VideoTagInfo::parse(&[0x90, b'h']).is_none());
    }

    #[test]
    fn aac_sequence_header() {
        assert!(
            AudioTagInfo::parse(&[0xaf, 0x00, 0x12, 0x10])
                .unwrap()
                .sequence_header
        );
        assert!(
            !AudioTagInfo::parse(&[0xaf, 0x01, 0x21])
                .unwrap()
                .sequence_header
        );
        assert!(AudioTagInfo::parse(&[0xaf]).is_none());
    }
}
