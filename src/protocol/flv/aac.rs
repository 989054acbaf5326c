//! AAC AudioSpecificConfig (ISO 14496-3 §1.6.2.1): the 2+ bytes an AAC sequence
//! header carries, which say the profile, sample rate and channel layout.

use super::config::CodecConfigError;

/// Sample rates by `samplingFrequencyIndex` (indices 13 and 14 are reserved).
pub(crate) const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];
/// Escape value of `samplingFrequencyIndex`: an explicit 24-bit rate follows.
const EXPLICIT_RATE: u32 = 15;
/// Object type 5: SBR (HE-AAC); 29: PS (HE-AAC v2). Both signal an extension rate.
const AOT_SBR: u8 = 5;
const AOT_PS: u8 = 29;

/// What the API reports about an AAC stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AacConfig {
    /// `audioObjectType` as signalled (2 = AAC-LC, 5 = HE-AAC, 29 = HE-AAC v2).
    pub object_type: u8,
    /// Core sample rate in Hz.
    pub sample_rate: u32,
    /// Output sample rate of SBR (HE-AAC), when signalled explicitly.
    pub extension_sample_rate: Option<u32>,
    /// `channelConfiguration` (0 = defined in the stream's program config element).
    pub channel_config: u8,
    /// Number of channels that configuration means (0 if not stated here).
    pub channels: u8,
}

impl AacConfig {
    /// A short profile name for display (`LC`, `HE-AAC`, ...).
    pub fn profile_name(&self) -> &'static str {
        match self.object_type {
            1 => "Main",
            2 => "LC",
            3 => "SSR",
            4 => "LTP",
            AOT_SBR => "HE-AAC",
            AOT_PS => "HE-AACv2",
            23 => "LD",
            39 => "ELD",
            _ => "other",
        }
    }
}

/// The leading AudioSpecificConfig fields as signalled, before interpretation
/// (shared with the TS muxer, which repeats some of them in ADTS headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AscFields {
    /// `audioObjectType` as signalled.
    pub object_type: u8,
    /// Core sample rate in Hz (an explicit 24-bit rate as given).
    pub sample_rate: u32,
    /// `channelConfiguration`.
    pub channel_config: u8,
    /// SBR/PS only: the extension sample rate.
    pub extension_sample_rate: Option<u32>,
    /// SBR/PS only: the core coder's object type that follows the extension
    /// rate; `None` when the config ends before it.
    pub core_object_type: Option<u8>,
}

/// Reads the leading fields of an AudioSpecificConfig (ISO 14496-3 §1.6.2.1).
pub(crate) fn read_asc_fields(asc: &[u8]) -> Result<AscFields, CodecConfigError> {
    let mut r = Bits { data: asc, pos: 0 };
    let object_type = r.object_type()?;
    let sample_rate = r.sample_rate()?;
    let channel_config = r.take(4)? as u8;
    let (extension_sample_rate, core_object_type) =
        if object_type == AOT_SBR || object_type == AOT_PS {
            let extension = r.sample_rate()?;
            (Some(extension), r.object_type().ok())
        } else {
            (None, None)
        };
    Ok(AscFields {
        object_type,
        sample_rate,
        channel_config,
        extension_sample_rate,
        core_object_type,
    })
}

/// Parses an AudioSpecificConfig.
pub fn parse_audio_specific_config(asc: &[u8]) -> Result<AacConfig, CodecConfigError> {
    let AscFields {
        object_type,
        sample_rate,
        channel_config,
        extension_sample_rate,
        ..
    } = read_asc_fields(asc)?;
    let channels = match channel_config {
        1..=6 => channel_config,
        7 | 12 => 8,
        11 => 7,
        13 => 24,
        14 => 8,
        _ => 0,
    };
    Ok(AacConfig {
        object_type,
        sample_rate,
        extension_sample_rate,
        channel_config,
        channels,
    })
}

/// MSB-first bit reader over a plain (unescaped) byte slice.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> Result<u32, CodecConfigError> {
        let mut v = 0u32;
        for _ in 0..n.min(32) {
            let byte = self
                .data
                .get(self.pos / 8)
                .ok_or(CodecConfigError::Truncated {
                    what: "AudioSpecificConfig",
                })?;
            v = v << 1 | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }

    fn object_type(&mut self) -> Result<u8, CodecConfigError> {
        let t = self.take(5)?;
        Ok(if t == 31 { 32 + self.take(6)? } else { t } as u8)
    }

    fn sample_rate(&mut self) -> Result<u32, CodecConfigError> {
        let index = self.take(4)?;
        if index == EXPLICIT_RATE {
            return self.take(24);
        }
        SAMPLE_RATES
            .get(index as usize)
            .copied()
            .ok_or(CodecConfigError::ValueOutOfRange {
                field: "samplingFrequencyIndex",
                value: u64::from(index),
                limit: SAMPLE_RATES.len() as u64 - 1,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_44100_stereo() {
        let c = parse_audio_specific_config(&[0x12, 0x10]).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 44100, 2));
        assert_eq!(c.profile_name(), "LC");
        assert_eq!(c.extension_sample_rate, None);
    }

    #[test]
    fn he_aac_with_explicit_sbr_rate() {
        // AOT 5, 24 kHz core (index 6), stereo, extension index 3 (48 kHz), AOT 2.
        let c = parse_audio_specific_config(&[0x2B, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (5, 24000, 2));
        assert_eq!(c.extension_sample_rate, Some(48000));
    }

    #[test]
    fn explicit_rate_and_escaped_object_type() {
        // AOT escape 31 + 6 bits (=7 -> 39, ELD), rate index 15 + 24-bit 0x00BB80 (48000), config 1.
        let bits =
            "11111".to_owned() + "000111" + "1111" + "000000001011101110000000" + "0001" + "00000";
        let bytes: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |a, b| a << 1 | (b - b'0')))
            .collect();
        let c = parse_audio_specific_config(&bytes).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (39, 48000, 1));
    }

    #[test]
    fn bad_input_is_typed() {
        assert!(matches!(
            parse_audio_specific_config(&[0x12]),
            Err(CodecConfigError::Truncated { .. })
        ));
        assert!(matches!(
            parse_audio_specific_config(&[0x16, 0x90]),
            Err(CodecConfigError::ValueOutOfRange {
                field: "samplingFrequencyIndex",
                value: 13,
                ..
            })
        ));
    }
}
