//! RFC 6381 `CODECS` strings from the codec configurations the FLV layer
//! parses out of sequence headers (multivariant playlist and MPD).

use std::fmt::Write as _;

use crate::protocol::flv::aac::AacConfig;
use crate::protocol::flv::config::VideoConfig;

/// `avc1.PPCCLL` / `hvc1.P.C.TLL.B0` for a video configuration.
pub fn video_codec_string(config: &VideoConfig) -> String {
    let mut s = String::new();
    match config {
        VideoConfig::Avc(c) => {
            let _ = write!(
                s,
                "avc1.{:02x}{:02x}{:02x}",
                c.profile_idc, c.constraint_flags, c.level_idc
            );
        }
        VideoConfig::Hevc(c) => {
            // ISO/IEC 14496-15 E.3: profile, compatibility flags (bit-reversed
            // hex; the profile's own flag), tier + level, constraint byte.
            let compat = 1u32.checked_shl(u32::from(c.profile_idc)).unwrap_or(0);
            let tier = if c.high_tier { 'H' } else { 'L' };
            let _ = write!(
                s,
                "hvc1.{}.{:x}.{}{}.B0",
                c.profile_idc, compat, tier, c.level_idc
            );
        }
    }
    s
}

/// `mp4a.40.N` for an AAC configuration (N = the audio object type).
pub fn audio_codec_string(config: &AacConfig) -> String {
    format!("mp4a.40.{}", config.object_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::flv::config::{parse_audio_sequence_header, parse_video_sequence_header};

    #[test]
    fn aac_lc_is_mp4a_40_2() {
        // AAC sequence header: 0xAF 0x00, then AudioSpecificConfig 0x12 0x10
        // (AAC-LC, 44.1 kHz, stereo).
        let cfg = parse_audio_sequence_header(&[0xAF, 0x00, 0x12, 0x10])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(audio_codec_string(&cfg), "mp4a.40.2");
    }

    #[test]
    fn avc_string_carries_profile_constraints_and_level() {
        // High profile (100), constraints 0, level 3.1 (31), from a real
        // AVCDecoderConfigurationRecord with a 640x360 SPS.
        let sps: &[u8] = &[
            0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00,
            0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
        ];
        let pps: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
        let mut body = vec![0x17, 0x00, 0, 0, 0, 1, 0x64, 0x00, 0x1f, 0xff, 0xe1];
        body.extend_from_slice(&u16::try_from(sps.len()).unwrap_or(0).to_be_bytes());
        body.extend_from_slice(sps);
        body.push(1);
        body.extend_from_slice(&u16::try_from(pps.len()).unwrap_or(0).to_be_bytes());
        body.extend_from_slice(pps);
        let cfg = parse_video_sequence_header(&body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(video_codec_string(&cfg), "avc1.64001f");
    }
}
