//! H.265: the HEVCDecoderConfigurationRecord (`hvcC`, ISO 14496-15 §8.3.3.1) carried
//! in an HEVC sequence header, and the SPS fields (ITU-T H.265 §7.3.2.2) that give
//! the picture size.

use super::config::CodecConfigError;
use super::crop::{cropped_size, CropSyntax};
use super::nal_bits::NalBitReader;
use crate::protocol::reader::{Reader, ShortInput};

/// Fixed part of an hvcC record before its NAL unit arrays.
const HVCC_FIXED_LEN: usize = 23;
/// NAL unit type of a sequence parameter set.
const NAL_SPS: u8 = 33;
/// Largest picture dimension accepted, beyond any level's limit.
const MAX_DIMENSION: u32 = 16384;
/// Bits of a profile_tier_level's general or sub-layer profile part.
const PROFILE_BITS: u32 = 88;

/// What the API reports about an H.265 stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HevcConfig {
    /// `general_profile_idc` (1 Main, 2 Main 10, 4 range extensions, ...).
    pub profile_idc: u8,
    /// `general_tier_flag`: the High tier.
    pub high_tier: bool,
    /// `general_level_idc` = level × 30 (e.g. 93 = level 3.1).
    pub level_idc: u8,
    /// Bytes in each NAL unit length prefix (1, 2 or 4).
    pub nal_length_size: u8,
    /// From the first SPS.
    pub sps: HevcSps,
}

/// Fields decoded from an H.265 SPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HevcSps {
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Displayed width in pixels (after the conformance window).
    pub width: u32,
    /// Displayed height in pixels (after the conformance window).
    pub height: u32,
}

/// Parses an hvcC record and the first SPS in its arrays.
pub fn parse_hevc_config(record: &[u8]) -> Result<HevcConfig, CodecConfigError> {
    let truncated = CodecConfigError::Truncated {
        what: "HEVCDecoderConfigurationRecord",
    };
    let mut r = Reader::new(record);
    let mut fixed = Reader::new(r.take(HVCC_FIXED_LEN).map_err(|_| truncated)?);
    // configurationVersion, general_profile_space/tier/profile_idc, then (after
    // 10 bytes of compatibility/constraint flags) general_level_idc; after 8
    // more, lengthSizeMinusOne and numOfArrays.
    let (version, ptl, level_idc, length_byte, num_arrays) = (|| {
        let version = fixed.u8()?;
        let ptl = fixed.u8()?;
        fixed.skip(10)?;
        let level_idc = fixed.u8()?;
        fixed.skip(8)?;
        Ok::<_, ShortInput>((version, ptl, level_idc, fixed.u8()?, fixed.u8()?))
    })()
    .map_err(|_| truncated)?;
    if version != 1 {
        return Err(CodecConfigError::UnsupportedVersion { version });
    }
    let mut sps = None;
    // Each array and NAL unit consumes at least 2 bytes, so these loops are
    // bounded by the record's length.
    for _ in 0..num_arrays {
        let type_byte = r.u8().map_err(|_| truncated)?;
        let nal_count = r.be_u16().map_err(|_| truncated)?;
        for _ in 0..nal_count {
            let len = r.be_u16().map_err(|_| truncated)?;
            let nal = r.take(usize::from(len)).map_err(|_| truncated)?;
            if type_byte & 0x3F == NAL_SPS && sps.is_none() {
                sps = Some(nal);
            }
        }
    }
    let sps = sps.ok_or(CodecConfigError::NoParameterSet { what: "SPS" })?;
    Ok(HevcConfig {
        profile_idc: ptl & 0x1F,
        high_tier: ptl & 0x20 != 0,
        level_idc,
        nal_length_size: (length_byte & 0x03) + 1,
        sps: parse_hevc_sps(sps)?,
    })
}

/// Parses an SPS NAL unit (with its 2-byte NAL header, still escaped).
pub fn parse_hevc_sps(nal: &[u8]) -> Result<HevcSps, CodecConfigError> {
    let [h0, _h1, body @ ..] = nal else {
        return Err(CodecConfigError::Truncated { what: "SPS" });
    };
    if (h0 >> 1) & 0x3F != NAL_SPS {
        return Err(CodecConfigError::NoParameterSet { what: "SPS" });
    }
    let mut r = NalBitReader::new(body);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    r.skip(1)?; // sps_temporal_id_nesting_flag
    skip_profile_tier_level(&mut r, max_sub_layers_minus1)?;
    r.ue_max("sps_seq_parameter_set_id", 15)?;
    let chroma_format_idc = r.ue_max("chroma_format_idc", 3)?;
    let separate_colour_plane = chroma_format_idc == 3 && r.bit()?;
    let coded_width = r.ue_max("pic_width_in_luma_samples", MAX_DIMENSION)?;
    let coded_height = r.ue_max("pic_height_in_luma_samples", MAX_DIMENSION)?;
    let (width, height) = cropped_size(
        &mut r,
        &CropSyntax {
            offsets: [
                "conf_win_left_offset",
                "conf_win_right_offset",
                "conf_win_top_offset",
                "conf_win_bottom_offset",
            ],
            max_offset: MAX_DIMENSION,
            window: "conformance window",
        },
        chroma_format_idc,
        separate_colour_plane,
        1,
        coded_width,
        coded_height,
    )?;
    Ok(HevcSps {
        chroma_format_idc: chroma_format_idc as u8,
        width,
        height,
    })
}

/// Skips profile_tier_level(1, max_sub_layers_minus1) (H.265 §7.3.3).
fn skip_profile_tier_level(
    r: &mut NalBitReader<'_>,
    max_sub_layers_minus1: u32,
) -> Result<(), CodecConfigError> {
    r.skip(PROFILE_BITS + 8)?; // general profile + general_level_idc
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(max_sub_layers_minus1 as usize) {
        *p = (r.bit()?, r.bit()?);
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?; // reserved_zero_2bits
    }
    for (profile, level) in present.iter().take(max_sub_layers_minus1 as usize) {
        if *profile {
            r.skip(PROFILE_BITS)?;
        }
        if *level {
            r.skip(8)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From `ffmpeg -f lavfi -i testsrc=size=352x200 -c:v libx265 -f hevc`.
    const VPS: &[u8] = &[
        0x40, 0x01, 0x0C, 0x01, 0xFF, 0xFF, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3C, 0x95, 0x98, 0x09,
    ];
    const SPS_352X200: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3C, 0xA0, 0x0B, 0x08, 0x0C, 0x96, 0x59, 0x59, 0xA4, 0x93, 0x2B, 0xC0, 0x5A,
        0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10,
    ];
    /// Same encoder at 346x198: coded 352x200 with a conformance window.
    const SPS_346X198: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3C, 0xA0, 0x0B, 0x08, 0x0C, 0x9C, 0x95, 0x96, 0x56, 0x69, 0x24, 0xCA, 0xF0,
        0x16, 0x80, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0C, 0x84,
    ];
    const PPS: &[u8] = &[0x44, 0x01, 0xC1, 0x72, 0xB4, 0x62, 0x40];

    fn hvcc(sps: &[u8]) -> Vec<u8> {
        // Main profile, level 2 (60), 4-byte lengths, arrays VPS/SPS/PPS.
        let mut rec = vec![
            1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 60, 0xF0, 0, 0xFC, 0xFD, 0xF8, 0xF8, 0, 0,
            0x0F, 3,
        ];
        for (t, nal) in [(32u8, VPS), (33, sps), (34, PPS)] {
            rec.extend_from_slice(&[0x80 | t, 0, 1]);
            rec.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            rec.extend_from_slice(nal);
        }
        rec
    }

    #[test]
    fn parses_hvcc_and_sps() {
        let cfg = parse_hevc_config(&hvcc(SPS_352X200)).unwrap();
        assert_eq!(
            (cfg.profile_idc, cfg.level_idc, cfg.high_tier),
            (1, 60, false)
        );
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(
            (cfg.sps.width, cfg.sps.height, cfg.sps.chroma_format_idc),
            (352, 200, 1)
        );
    }

    #[test]
    fn applies_conformance_window() {
        let sps = parse_hevc_sps(SPS_346X198).unwrap();
        assert_eq!((sps.width, sps.height), (346, 198));
    }

    #[test]
    fn malformed_records_are_typed_errors() {
        let rec = hvcc(SPS_352X200);
        for cut in 0..rec.len() - SPS_352X200.len() - PPS.len() {
            assert!(parse_hevc_config(&rec[..cut]).is_err(), "cut at {cut}");
        }
        let mut no_sps = rec.clone();
        no_sps[HVCC_FIXED_LEN + 3 + 2 + VPS.len()] = 0x80 | 35;
        assert_eq!(
            parse_hevc_config(&no_sps),
            Err(CodecConfigError::NoParameterSet { what: "SPS" })
        );
        let mut v2 = rec;
        v2[0] = 2;
        assert_eq!(
            parse_hevc_config(&v2),
            Err(CodecConfigError::UnsupportedVersion { version: 2 })
        );
    }
}
