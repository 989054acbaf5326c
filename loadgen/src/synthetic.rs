//! A media source that needs no encoder: H.264/AAC-shaped FLV frames at a set
//! bitrate and GOP.
//!
//! Frames are structurally valid (a real avcC with the SPS/PPS x264 writes for
//! 640x360 Main@3.0, an AAC-LC AudioSpecificConfig, one IDR or non-IDR slice NAL unit
//! per video frame, padded to size) so servers classify, cache and relay them like
//! camera output; the slice data itself is filler, so decoders will not show a
//! picture. That is enough to load a relay, which never decodes.

use bytes::{BufMut, BytesMut};
use ringcast::protocol::flv::metadata::{CodecId, Metadata};
use ringcast::protocol::flv::tag_body::{
    aac_tag_header, avc_tag_header, write_aac_sequence_header, write_avc_sequence_header,
    AacPacketType, AvcPacketType, AAC_TAG_HEADER_LEN, AVC_TAG_HEADER_LEN,
};
use ringcast::protocol::{Frame, FrameKind};
use thiserror::Error;

/// SPS of 640x360 H.264 Main profile level 3.0, as written by x264.
pub(crate) const SPS: [u8; 24] = [
    0x67, 0x4d, 0x40, 0x1e, 0xec, 0xa0, 0x50, 0x17, 0xfc, 0xb8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00,
    0x80, 0x00, 0x00, 0x1e, 0x07, 0x8b, 0x16, 0xcb,
];
/// The matching PPS.
pub(crate) const PPS: [u8; 5] = [0x68, 0xeb, 0xe3, 0xcb, 0x20];
/// AAC-LC (object type 2), stereo (channel configuration 2), at [`AAC_SAMPLE_RATE`].
const AAC_OBJECT_TYPE: u8 = 2;
const AAC_CHANNEL_CONFIG: u8 = 2;
/// AAC samples per frame and sample rate: one audio frame every ~23.2 ms.
const AAC_FRAME_SAMPLES: u64 = 1024;
const AAC_SAMPLE_RATE: u64 = 44_100;
/// NAL unit length prefix size our avcC declares (lengthSizeMinusOne = 3).
pub const NAL_LENGTH_SIZE: u8 = 4;
/// FLV AVC tag header + NAL length + NAL header: the smallest video tag we make.
const MIN_VIDEO_TAG: usize = AVC_TAG_HEADER_LEN + NAL_LENGTH_SIZE as usize + 1;
/// An IDR frame is this many times the size of a non-IDR frame, like real encoders.
const KEYFRAME_WEIGHT: u64 = 4;
/// Bounds that keep a typo from asking for absurd frames.
const MAX_VIDEO_BITRATE: u64 = 200_000_000;
const MAX_FPS: u32 = 240;
const MAX_GOP_MS: u32 = 60_000;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntheticConfig {
    /// Video bits per second (FLV tag bodies, without container overhead).
    pub video_bitrate: u64,
    /// Audio bits per second; 0 for a video-only stream.
    pub audio_bitrate: u64,
    /// Video frames per second.
    pub fps: u32,
    /// Keyframe interval in milliseconds.
    pub gop_ms: u32,
}

/// A configuration outside what the generator supports.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SyntheticConfigError {
    /// Frame rate is zero or above the limit.
    #[error("fps {fps} outside 1..={limit}")]
    Fps {
        /// Requested frame rate.
        fps: u32,
        /// Largest accepted.
        limit: u32,
    },
    /// GOP is shorter than one frame or longer than the limit.
    #[error("gop {gop_ms} ms outside one frame..={limit} ms")]
    Gop {
        /// Requested GOP in ms.
        gop_ms: u32,
        /// Largest accepted.
        limit: u32,
    },
    /// Video bitrate above the limit.
    #[error("video bitrate {bitrate} above {limit} bit/s")]
    Bitrate {
        /// Requested bitrate.
        bitrate: u64,
        /// Largest accepted.
        limit: u64,
    },
}

/// Generates frames in timestamp order, audio and video interleaved.
#[derive(Debug)]
pub struct SyntheticSource {
    config: SyntheticConfig,
    gop_frames: u64,
    keyframe_bytes: usize,
    interframe_bytes: usize,
    audio_frame_bytes: usize,
    next_video: u64,
    next_audio: u64,
    filler_state: u32,
}

impl SyntheticSource {
    /// Checks `config` and precomputes frame sizes.
    pub fn new(config: SyntheticConfig) -> Result<Self, SyntheticConfigError> {
        if config.fps == 0 || config.fps > MAX_FPS {
            return Err(SyntheticConfigError::Fps {
                fps: config.fps,
                limit: MAX_FPS,
            });
        }
        let gop_frames = config.gop_ms as u64 * config.fps as u64 / 1000;
        if gop_frames == 0 || config.gop_ms > MAX_GOP_MS {
            return Err(SyntheticConfigError::Gop {
                gop_ms: config.gop_ms,
                limit: MAX_GOP_MS,
            });
        }
        if config.video_bitrate > MAX_VIDEO_BITRATE {
            return Err(SyntheticConfigError::Bitrate {
                bitrate: config.video_bitrate,
                limit: MAX_VIDEO_BITRATE,
            });
        }
        // Bytes per GOP split so that one keyframe weighs KEYFRAME_WEIGHT interframes.
        let gop_bytes = config.video_bitrate / 8 * gop_frames / config.fps as u64;
        let interframe = gop_bytes / (KEYFRAME_WEIGHT + gop_frames - 1);
        let interframe_bytes = (interframe as usize).max(MIN_VIDEO_TAG);
        let keyframe_bytes =
            ((gop_bytes - interframe * (gop_frames - 1)) as usize).max(MIN_VIDEO_TAG);
        let audio_frame_bytes = (config.audio_bitrate * AAC_FRAME_SAMPLES / AAC_SAMPLE_RATE / 8)
            as usize
            + AAC_TAG_HEADER_LEN;
        Ok(SyntheticSource {
            config,
            gop_frames,
            keyframe_bytes,
            interframe_bytes,
            audio_frame_bytes,
            next_video: 0,
            next_audio: 0,
            filler_state: 0x9e37_79b9,
        })
    }

    /// Video frames per keyframe interval.
    pub fn gop_frames(&self) -> u64 {
        self.gop_frames
    }

    /// `onMetaData` describing the stream, as encoders send it first.
    fn metadata(&self) -> Option<Frame> {
        let has_audio = self.config.audio_bitrate > 0;
        let meta = Metadata {
            duration: Some(0.0),
            width: Some(640.0),
            height: Some(360.0),
            videodatarate: Some(self.config.video_bitrate as f64 / 1000.0),
            framerate: Some(f64::from(self.config.fps)),
            videocodecid: Some(CodecId::Legacy(7)),
            audiodatarate: has_audio.then(|| self.config.audio_bitrate as f64 / 1000.0),
            audiosamplerate: has_audio.then_some(AAC_SAMPLE_RATE as f64),
            audiosamplesize: has_audio.then_some(16.0),
            stereo: has_audio.then_some(true),
            audiocodecid: has_audio.then_some(CodecId::Legacy(10)),
            encoder: Some("ringcast-loadgen synthetic".into()),
            ..Metadata::default()
        };
        // Encoding a fixed set of numbers and short strings cannot fail; skip it if it did.
        meta.to_payload()
            .ok()
            .map(|p| Frame::new(FrameKind::Script, 0, p))
    }

    /// Metadata and the codec configuration frames a publisher sends before any
    /// media frame.
    pub fn sequence_headers(&self) -> Vec<Frame> {
        let mut frames: Vec<Frame> = self.metadata().into_iter().collect();
        // Fixed, valid parameters: the writers cannot refuse them; skip a header if they did.
        let mut avc = BytesMut::new();
        if write_avc_sequence_header(&SPS, &PPS, NAL_LENGTH_SIZE, &mut avc).is_ok() {
            frames.push(Frame::new(FrameKind::Video, 0, avc.freeze()));
        }
        let mut aac = BytesMut::new();
        if self.config.audio_bitrate > 0
            && write_aac_sequence_header(
                AAC_OBJECT_TYPE,
                AAC_SAMPLE_RATE as u32,
                AAC_CHANNEL_CONFIG,
                &mut aac,
            )
            .is_ok()
        {
            frames.push(Frame::new(FrameKind::Audio, 0, aac.freeze()));
        }
        frames
    }

    fn video_ts(&self, index: u64) -> u64 {
        index * 1000 / self.config.fps as u64
    }

    fn audio_ts(&self, index: u64) -> u64 {
        index * AAC_FRAME_SAMPLES * 1000 / AAC_SAMPLE_RATE
    }

    /// Millisecond timestamp (unwrapped) of the frame [`Self::next_frame`] returns next.
    pub fn next_timestamp(&self) -> u64 {
        let v = self.video_ts(self.next_video);
        if self.config.audio_bitrate == 0 {
            return v;
        }
        v.min(self.audio_ts(self.next_audio))
    }

    /// The next frame, in timestamp order.
    pub fn next_frame(&mut self) -> Frame {
        let video_ts = self.video_ts(self.next_video);
        let audio_due = self.config.audio_bitrate > 0 && self.audio_ts(self.next_audio) < video_ts;
        if audio_due {
            let ts = self.audio_ts(self.next_audio);
            self.next_audio += 1;
            let mut body = BytesMut::with_capacity(self.audio_frame_bytes);
            body.put_slice(&aac_tag_header(AacPacketType::Raw));
            self.fill(&mut body, self.audio_frame_bytes);
            return Frame::new(FrameKind::Audio, ts as u32, body.freeze());
        }
        let keyframe = self.next_video.is_multiple_of(self.gop_frames);
        self.next_video += 1;
        let size = if keyframe {
            self.keyframe_bytes
        } else {
            self.interframe_bytes
        };
        let mut body = BytesMut::with_capacity(size);
        // Composition time 0 is always in range.
        let header = avc_tag_header(keyframe, AvcPacketType::Nalu, 0).unwrap_or_default();
        body.put_slice(&header);
        body.put_u32((size - AVC_TAG_HEADER_LEN - NAL_LENGTH_SIZE as usize) as u32);
        // IDR slice (type 5, nal_ref_idc 3) or non-IDR slice (type 1, nal_ref_idc 2).
        body.put_u8(if keyframe { 0x65 } else { 0x41 });
        self.fill(&mut body, size);
        Frame::new(FrameKind::Video, video_ts as u32, body.freeze())
    }

    /// Pads `body` to `size` with never-zero pseudo-random bytes: incompressible like
    /// real slice data, and free of start-code emulation.
    fn fill(&mut self, body: &mut BytesMut, size: usize) {
        while body.len() < size {
            // xorshift32
            let mut x = self.filler_state;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            self.filler_state = x;
            for b in x.to_le_bytes() {
                if body.len() < size {
                    body.put_u8(b | 0x01);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast::protocol::flv::codec::{AudioCodec, AudioTagInfo, VideoCodec, VideoTagInfo};
    use ringcast::protocol::flv::config::{
        parse_audio_sequence_header, parse_video_sequence_header,
    };

    fn config() -> SyntheticConfig {
        SyntheticConfig {
            video_bitrate: 600_000,
            audio_bitrate: 64_000,
            fps: 25,
            gop_ms: 1000,
        }
    }

    #[test]
    fn sequence_headers_are_real_avcc_and_asc() {
        let src = SyntheticSource::new(config()).unwrap();
        let mut hdrs = src.sequence_headers();
        assert_eq!(hdrs.len(), 3);
        let meta = hdrs.remove(0);
        assert_eq!(meta.kind, FrameKind::Script);
        let parsed = Metadata::parse(&meta.payload, Default::default()).unwrap();
        assert_eq!(
            (parsed.width, parsed.height, parsed.framerate),
            (Some(640.0), Some(360.0), Some(25.0))
        );
        assert!(hdrs.iter().all(|f| f.sequence_header));
        // ringcast's own codec-config parsers read them as 640x360 AVC and AAC-LC stereo.
        let video = parse_video_sequence_header(&hdrs[0].payload).unwrap();
        assert_eq!(video.dimensions(), (640, 360));
        let audio = parse_audio_sequence_header(&hdrs[1].payload).unwrap();
        assert_eq!(
            (audio.object_type, audio.sample_rate, audio.channels),
            (2, 44_100, 2)
        );
        let avc = &hdrs[0].payload;
        assert_eq!(
            VideoTagInfo::parse(avc).unwrap().codec,
            Some(VideoCodec::Avc)
        );
        assert_eq!(avc[5], 1, "configurationVersion");
        assert_eq!(avc[9] & 0x03, NAL_LENGTH_SIZE - 1);
        assert_eq!(avc[10] & 0x1f, 1, "one SPS");
        assert_eq!(&avc[13..13 + SPS.len()], &SPS);
        assert_eq!(
            AudioTagInfo::parse(&hdrs[1].payload).unwrap().codec,
            AudioCodec::Aac
        );
    }

    #[test]
    fn hits_bitrate_gop_and_frame_rate_over_ten_seconds() {
        let mut src = SyntheticSource::new(config()).unwrap();
        let (mut video_bytes, mut audio_bytes, mut video, mut keys) =
            (0usize, 0usize, 0u64, Vec::new());
        let mut last_ts = 0u32;
        while src.next_timestamp() < 10_000 {
            let f = src.next_frame();
            assert!(f.timestamp >= last_ts, "timestamps never go back");
            last_ts = f.timestamp;
            match f.kind {
                FrameKind::Video => {
                    video_bytes += f.payload.len();
                    if f.keyframe {
                        keys.push(video);
                    }
                    video += 1;
                }
                _ => audio_bytes += f.payload.len(),
            }
        }
        assert_eq!(video, 250);
        assert_eq!(keys, (0..10).map(|k| k * 25).collect::<Vec<_>>());
        let video_bps = video_bytes as f64 * 8.0 / 10.0;
        assert!(
            (video_bps - 600_000.0).abs() < 6_000.0,
            "video {video_bps} bit/s"
        );
        let audio_bps = audio_bytes as f64 * 8.0 / 10.0;
        assert!(
            (audio_bps - 64_000.0).abs() < 2_000.0,
            "audio {audio_bps} bit/s"
        );
    }

    #[test]
    fn frames_are_one_slice_nal_without_start_code_emulation() {
        let mut src = SyntheticSource::new(SyntheticConfig {
            audio_bitrate: 0,
            ..config()
        })
        .unwrap();
        for i in 0..30 {
            let f = src.next_frame();
            assert_eq!(f.kind, FrameKind::Video);
            assert_eq!(f.keyframe, i % 25 == 0);
            let p = &f.payload;
            let nal_len = u32::from_be_bytes(p[5..9].try_into().unwrap()) as usize;
            assert_eq!(9 + nal_len, p.len());
            assert_eq!(p[9] & 0x1f, if f.keyframe { 5 } else { 1 });
            assert!(p[10..].iter().all(|&b| b != 0));
        }
    }

    #[test]
    fn rejects_impossible_configs() {
        let bad_fps = SyntheticConfig { fps: 0, ..config() };
        assert!(matches!(
            SyntheticSource::new(bad_fps),
            Err(SyntheticConfigError::Fps { .. })
        ));
        let bad_gop = SyntheticConfig {
            gop_ms: 10,
            ..config()
        };
        assert!(matches!(
            SyntheticSource::new(bad_gop),
            Err(SyntheticConfigError::Gop { .. })
        ));
        let bad_rate = SyntheticConfig {
            video_bitrate: u64::MAX,
            ..config()
        };
        assert!(matches!(
            SyntheticSource::new(bad_rate),
            Err(SyntheticConfigError::Bitrate { .. })
        ));
        // Tiny bitrates still make well-formed frames.
        let mut tiny = SyntheticSource::new(SyntheticConfig {
            video_bitrate: 8,
            ..config()
        })
        .unwrap();
        assert!(tiny.next_frame().payload.len() >= MIN_VIDEO_TAG);
    }
}
