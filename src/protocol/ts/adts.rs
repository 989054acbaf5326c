//! AAC for TS: each raw AAC frame goes out behind a 7-byte ADTS header
//! (ISO 14496-3 §1.A.2) built from the stream's AudioSpecificConfig.

use super::error::TsError;
use crate::protocol::flv::aac::{read_asc_fields, SAMPLE_RATES};
use crate::protocol::flv::config::CodecConfigError;

/// ADTS header length without CRC (protection_absent = 1).
pub(crate) const ADTS_HEADER_LEN: usize = 7;
/// `aac_frame_length` is 13 bits and counts the header.
pub(crate) const MAX_RAW_AAC: usize = (1 << 13) - 1 - ADTS_HEADER_LEN;

/// The three AudioSpecificConfig values an ADTS header repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AdtsParams {
    /// ADTS `profile` = audio object type − 1 (0 Main, 1 LC, 2 SSR, 3 LTP).
    pub profile: u8,
    /// `sampling_frequency_index` of the core coder.
    pub sampling_index: u8,
    /// `channel_configuration` (1..=7).
    pub channel_config: u8,
}

/// The `samplingFrequencyIndex` of `rate`: ADTS can only name the standard rates.
fn index_of_rate(rate: u32) -> Result<u8, TsError> {
    SAMPLE_RATES
        .iter()
        .position(|r| *r == rate)
        .map(|i| i as u8)
        .ok_or(TsError::AdtsUnsupported {
            field: "sample rate",
            value: rate,
        })
}

/// Reads what ADTS needs from an AudioSpecificConfig (ISO 14496-3 §1.6.2.1).
///
/// HE-AAC (v1/v2) with explicit SBR signalling is written as its AAC-LC core at
/// the core rate: ADTS cannot signal SBR, and decoders find it implicitly.
pub(crate) fn parse_asc(asc: &[u8]) -> Result<AdtsParams, TsError> {
    let truncated = TsError::Truncated {
        what: "AudioSpecificConfig",
    };
    let f = read_asc_fields(asc).map_err(|e| match e {
        // Indices 13 and 14 are reserved.
        CodecConfigError::ValueOutOfRange { value, .. } => TsError::AdtsUnsupported {
            field: "sampling frequency index",
            value: value as u32,
        },
        _ => truncated.clone(),
    })?;
    // An explicit rate maps back to its index when it is a standard one.
    let sampling_index = index_of_rate(f.sample_rate)?;
    let channel_config = u32::from(f.channel_config);
    let mut object_type = u32::from(f.object_type);
    if let Some(extension_rate) = f.extension_sample_rate {
        // Ignored, but like the core rate it must be one ADTS could name.
        index_of_rate(extension_rate)?;
        object_type = u32::from(f.core_object_type.ok_or(truncated)?);
    }
    if !(1..=4).contains(&object_type) {
        return Err(TsError::AdtsUnsupported {
            field: "audio object type",
            value: object_type,
        });
    }
    // 0 means "see the program config element", which ADTS would need in-band.
    if !(1..=7).contains(&channel_config) {
        return Err(TsError::AdtsUnsupported {
            field: "channel configuration",
            value: channel_config,
        });
    }
    Ok(AdtsParams {
        profile: (object_type - 1) as u8,
        sampling_index,
        channel_config: channel_config as u8,
    })
}

/// The ADTS header for one raw AAC frame of `raw_len` bytes.
pub(crate) fn adts_header(
    p: &AdtsParams,
    raw_len: usize,
) -> Result<[u8; ADTS_HEADER_LEN], TsError> {
    if raw_len > MAX_RAW_AAC {
        return Err(TsError::AacFrameTooLarge {
            len: raw_len,
            limit: MAX_RAW_AAC,
        });
    }
    let frame_len = (raw_len + ADTS_HEADER_LEN) as u32;
    // 0x7FF: buffer fullness "variable bit rate"; one raw data block per frame.
    let fullness = 0x7FFu32;
    Ok([
        0xFF,
        // syncword low bits, MPEG-4, layer 0, protection_absent.
        0xF1,
        (p.profile << 6) | (p.sampling_index << 2) | (p.channel_config >> 2),
        ((p.channel_config & 0x03) << 6) | (frame_len >> 11) as u8,
        (frame_len >> 3) as u8,
        ((frame_len & 0x07) << 5) as u8 | (fullness >> 6) as u8,
        ((fullness & 0x3F) << 2) as u8,
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Reads an ADTS header back field by field (an independent bit-level decode).
    fn fields(h: &[u8; 7]) -> [u32; 8] {
        let v = h.iter().fold(0u64, |a, b| a << 8 | u64::from(*b));
        let at = |shift: u32, bits: u32| ((v >> (56 - shift - bits)) & ((1 << bits) - 1)) as u32;
        [
            at(0, 12),  // syncword
            at(12, 1),  // ID
            at(15, 1),  // protection_absent
            at(16, 2),  // profile
            at(18, 4),  // sampling_frequency_index
            at(23, 3),  // channel_configuration
            at(30, 13), // aac_frame_length
            at(43, 11), // adts_buffer_fullness
        ]
    }

    #[test]
    fn lc_44100_mono_header_bits() {
        // ASC 0x12 0x08: AOT 2, index 4 (44.1 kHz), 1 channel.
        let p = parse_asc(&[0x12, 0x08]).unwrap();
        assert_eq!(
            p,
            AdtsParams {
                profile: 1,
                sampling_index: 4,
                channel_config: 1
            }
        );
        let h = adts_header(&p, 300).unwrap();
        assert_eq!(fields(&h), [0xFFF, 0, 1, 1, 4, 1, 307, 0x7FF]);
        assert_eq!(h[6] & 0x03, 0, "one raw data block");
    }

    #[test]
    fn lc_48000_stereo_and_max_length() {
        let p = parse_asc(&[0x11, 0x90]).unwrap();
        let h = adts_header(&p, MAX_RAW_AAC).unwrap();
        assert_eq!(fields(&h), [0xFFF, 0, 1, 1, 3, 2, 8191, 0x7FF]);
        assert_eq!(
            adts_header(&p, MAX_RAW_AAC + 1),
            Err(TsError::AacFrameTooLarge {
                len: MAX_RAW_AAC + 1,
                limit: MAX_RAW_AAC
            })
        );
    }

    #[test]
    fn he_aac_is_written_as_its_lc_core() {
        // AOT 5, 24 kHz core (index 6), stereo, extension index 3 (48 kHz), core AOT 2.
        let p = parse_asc(&[0x2B, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!((p.profile, p.sampling_index, p.channel_config), (1, 6, 2));
    }

    #[test]
    fn explicit_standard_rate_maps_back_to_its_index() {
        // AOT 2, index 15 + 0x00BB80 (48000), channel config 2.
        let bits = "00010".to_owned() + "1111" + "000000001011101110000000" + "0010" + "000";
        let bytes: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |a, b| a << 1 | (b - b'0')) << (8 - c.len()))
            .collect();
        let p = parse_asc(&bytes).unwrap();
        assert_eq!((p.sampling_index, p.channel_config), (3, 2));
    }

    #[test]
    fn inexpressible_configs_are_typed_errors() {
        // AOT 23 (LD).
        assert!(matches!(
            parse_asc(&[0xBA, 0x08]),
            Err(TsError::AdtsUnsupported {
                field: "audio object type",
                value: 23
            })
        ));
        // Channel config 0 (PCE).
        assert!(matches!(
            parse_asc(&[0x12, 0x00]),
            Err(TsError::AdtsUnsupported {
                field: "channel configuration",
                ..
            })
        ));
        assert!(matches!(parse_asc(&[0x12]), Err(TsError::Truncated { .. })));
    }
}
