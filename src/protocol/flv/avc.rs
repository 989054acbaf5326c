//! H.264: the AVCDecoderConfigurationRecord (ISO 14496-15 §5.3.3.1) carried in an
//! AVC sequence header, and the SPS fields (ITU-T H.264 §7.3.2.1.1) that give the
//! picture size.

use super::config::CodecConfigError;
use super::crop::{cropped_size, CropSyntax};
use super::nal_bits::NalBitReader;
use crate::protocol::reader::Reader;

/// Largest picture width/height in macroblocks accepted (16384 pixels), far
/// beyond any level's limit, so size arithmetic cannot overflow.
const MAX_MBS: u32 = 1024;
/// Bound on `num_ref_frames_in_pic_order_cnt_cycle` (H.264 caps it at 255).
const MAX_POC_CYCLE: u32 = 255;

/// What the API reports about an H.264 stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcConfig {
    /// `AVCProfileIndication` (66 baseline, 77 main, 100 high, 244 high 4:4:4, ...).
    pub profile_idc: u8,
    /// `profile_compatibility` (constraint_set flags).
    pub constraint_flags: u8,
    /// `AVCLevelIndication` × 10 (e.g. 31 = level 3.1).
    pub level_idc: u8,
    /// Bytes in each NAL unit length prefix (1, 2 or 4).
    pub nal_length_size: u8,
    /// From the first SPS.
    pub sps: AvcSps,
}

/// Fields decoded from an H.264 SPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvcSps {
    /// `profile_idc`.
    pub profile_idc: u8,
    /// `level_idc`.
    pub level_idc: u8,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma bit depth.
    pub bit_depth: u8,
    /// Displayed width in pixels (after cropping).
    pub width: u32,
    /// Displayed height in pixels (after cropping).
    pub height: u32,
}

/// Parses an AVCDecoderConfigurationRecord and its first SPS.
pub fn parse_avc_config(record: &[u8]) -> Result<AvcConfig, CodecConfigError> {
    let truncated = CodecConfigError::Truncated {
        what: "AVCDecoderConfigurationRecord",
    };
    let [version, profile_idc, constraint_flags, level_idc, length_size, num_sps, rest @ ..] =
        record
    else {
        return Err(truncated);
    };
    if *version != 1 {
        return Err(CodecConfigError::UnsupportedVersion { version: *version });
    }
    if num_sps & 0x1F == 0 {
        return Err(CodecConfigError::NoParameterSet { what: "SPS" });
    }
    let mut r = Reader::new(rest);
    let sps = r
        .be_u16()
        .and_then(|len| r.take(usize::from(len)))
        .map_err(|_| truncated)?;
    Ok(AvcConfig {
        profile_idc: *profile_idc,
        constraint_flags: *constraint_flags,
        level_idc: *level_idc,
        nal_length_size: (length_size & 0x03) + 1,
        sps: parse_avc_sps(sps)?,
    })
}

/// Parses an SPS NAL unit (with its 1-byte NAL header, still escaped).
pub fn parse_avc_sps(nal: &[u8]) -> Result<AvcSps, CodecConfigError> {
    let [header, body @ ..] = nal else {
        return Err(CodecConfigError::Truncated { what: "SPS" });
    };
    if header & 0x1F != 7 {
        return Err(CodecConfigError::NoParameterSet { what: "SPS" });
    }
    let mut r = NalBitReader::new(body);
    let profile_idc = r.bits(8)? as u8;
    r.skip(8)?; // constraint_set flags + reserved
    let level_idc = r.bits(8)? as u8;
    r.ue_max("seq_parameter_set_id", 31)?;
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let mut bit_depth = 8;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue_max("chroma_format_idc", 3)?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        bit_depth = 8 + r.ue_max("bit_depth_luma_minus8", 6)?;
        r.ue_max("bit_depth_chroma_minus8", 6)?;
        r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue_max("log2_max_frame_num_minus4", 12)?;
    match r.ue_max("pic_order_cnt_type", 2)? {
        0 => {
            r.ue_max("log2_max_pic_order_cnt_lsb_minus4", 12)?;
        }
        1 => {
            r.skip(1)?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            for _ in 0..r.ue_max("num_ref_frames_in_pic_order_cnt_cycle", MAX_POC_CYCLE)? {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue_max("pic_width_in_mbs_minus1", MAX_MBS - 1)? + 1;
    let height_map_units = r.ue_max("pic_height_in_map_units_minus1", MAX_MBS - 1)? + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.skip(1)?; // mb_adaptive_frame_field_flag
    }
    r.skip(1)?; // direct_8x8_inference_flag
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let width = width_mbs * 16;
    let height = height_map_units * 16 * field_factor;
    let (width, height) = cropped_size(
        &mut r,
        &CropSyntax {
            offsets: [
                "frame_crop_left_offset",
                "frame_crop_right_offset",
                "frame_crop_top_offset",
                "frame_crop_bottom_offset",
            ],
            max_offset: MAX_MBS * 16,
            window: "frame cropping",
        },
        chroma_format_idc,
        separate_colour_plane,
        field_factor,
        width,
        height,
    )?;
    Ok(AvcSps {
        profile_idc,
        level_idc,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth: bit_depth as u8,
        width,
        height,
    })
}

/// Skips a scaling_list() (H.264 §7.3.2.1.1.1); its contents do not affect size.
fn skip_scaling_list(r: &mut NalBitReader<'_>, size: u32) -> Result<(), CodecConfigError> {
    let mut last = 8i64;
    let mut next = 8i64;
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPS from `ffmpeg -f lavfi -i testsrc=size=1280x720 -c:v libx264 -profile:v baseline`.
    const SPS_720P: &[u8] = &[
        0x67, 0x42, 0xC0, 0x1F, 0xD9, 0x00, 0x50, 0x05, 0xBB, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xF1, 0x83, 0x24, 0x80,
    ];
    /// x264 high profile, 1920x1080 interlaced (field coding, 8 lines cropped).
    const SPS_1080I: &[u8] = &[
        0x67, 0x64, 0x00, 0x28, 0xAC, 0xD9, 0x40, 0x78, 0x04, 0x4F, 0xDE, 0x02, 0x20, 0x00, 0x00,
        0x03, 0x00, 0x20, 0x00, 0x00, 0x06, 0x43, 0xE2, 0xC5, 0xB2, 0xC0,
    ];

    #[test]
    fn parses_interlaced_cropped_sps() {
        let sps = parse_avc_sps(SPS_1080I).unwrap();
        assert_eq!((sps.profile_idc, sps.level_idc), (100, 40));
        assert_eq!((sps.width, sps.height), (1920, 1080));
    }

    #[test]
    fn parses_baseline_720p_sps() {
        let sps = parse_avc_sps(SPS_720P).unwrap();
        assert_eq!((sps.profile_idc, sps.level_idc), (66, 31));
        assert_eq!((sps.width, sps.height), (1280, 720));
        assert_eq!(sps.chroma_format_idc, 1);
    }

    #[test]
    fn record_errors_are_typed() {
        assert!(matches!(
            parse_avc_config(&[1, 66]),
            Err(CodecConfigError::Truncated { .. })
        ));
        assert_eq!(
            parse_avc_config(&[2, 66, 0, 31, 0xFF, 0xE1, 0, 0]),
            Err(CodecConfigError::UnsupportedVersion { version: 2 })
        );
        assert_eq!(
            parse_avc_config(&[1, 66, 0, 31, 0xFF, 0xE0]),
            Err(CodecConfigError::NoParameterSet { what: "SPS" })
        );
        assert!(matches!(
            parse_avc_config(&[1, 66, 0, 31, 0xFF, 0xE1, 0, 40, 0x67, 0x42]),
            Err(CodecConfigError::Truncated { .. })
        ));
        let mut rec = vec![1, 66, 0xC0, 31, 0xFF, 0xE1, 0, SPS_720P.len() as u8];
        rec.extend_from_slice(SPS_720P);
        let cfg = parse_avc_config(&rec).unwrap();
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(cfg.sps.width, 1280);
    }

    #[test]
    fn truncated_sps_errors_cleanly() {
        // The size fields end within the first 9 bytes; VUI after them is not read.
        for cut in 0..9 {
            assert!(parse_avc_sps(&SPS_720P[..cut]).is_err(), "cut at {cut}");
        }
        for cut in 9..SPS_720P.len() {
            let _ = parse_avc_sps(&SPS_720P[..cut]);
        }
    }
}
