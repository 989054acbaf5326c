//! The cropping window H.264 (`frame_cropping`) and H.265 (`conformance_window`)
//! sequence parameter sets share: a flag, then four offsets in chroma sample units,
//! scaled to luma samples by the chroma subsampling (H.264 §7.4.2.1.1, H.265 §7.4.3.2.1).

use super::config::CodecConfigError;
use super::nal_bits::NalBitReader;

/// How one codec spells its cropping window.
pub(super) struct CropSyntax {
    /// The offsets' syntax element names, in bitstream order: left, right, top, bottom.
    pub offsets: [&'static str; 4],
    /// Largest offset accepted, so the scaled sums cannot overflow.
    pub max_offset: u32,
    /// The window's name in errors.
    pub window: &'static str,
}

/// Reads the cropping flag and, when set, the window; returns the picture size
/// left of `width` x `height` (luma samples). `field_factor` is 2 for H.264
/// field-coded pictures, whose vertical crop unit doubles, else 1.
pub(super) fn cropped_size(
    r: &mut NalBitReader<'_>,
    syntax: &CropSyntax,
    chroma_format_idc: u32,
    separate_colour_plane: bool,
    field_factor: u32,
    width: u32,
    height: u32,
) -> Result<(u32, u32), CodecConfigError> {
    let (mut crop_x, mut crop_y) = (0, 0);
    if r.bit()? {
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_w, sub_h) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let [left, right, top, bottom] = syntax.offsets;
        let left = r.ue_max(left, syntax.max_offset)?;
        let right = r.ue_max(right, syntax.max_offset)?;
        let top = r.ue_max(top, syntax.max_offset)?;
        let bottom = r.ue_max(bottom, syntax.max_offset)?;
        crop_x = sub_w * (left + right);
        crop_y = sub_h * field_factor * (top + bottom);
    }
    if crop_x >= width || crop_y >= height {
        return Err(CodecConfigError::ValueOutOfRange {
            field: syntax.window,
            value: u64::from(crop_x.max(crop_y)),
            limit: u64::from(width.min(height)),
        });
    }
    Ok((width - crop_x, height - crop_y))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYNTAX: CropSyntax = CropSyntax {
        offsets: ["left", "right", "top", "bottom"],
        max_offset: 1 << 16,
        window: "test window",
    };

    #[test]
    fn offsets_scale_by_chroma_subsampling_and_field_coding() {
        // flag 1, left 0, right 0, top 0, bottom 4 (ue: 1 1 1 00101).
        let bits = [0xF2, 0x80];
        let mut r = NalBitReader::new(&bits);
        assert_eq!(
            cropped_size(&mut r, &SYNTAX, 1, false, 1, 1920, 1088).unwrap(),
            (1920, 1080)
        );
        let mut r = NalBitReader::new(&bits);
        assert_eq!(
            cropped_size(&mut r, &SYNTAX, 1, false, 2, 1920, 1088).unwrap(),
            (1920, 1072)
        );
        // 4:4:4 coded as separate planes crops in luma units.
        let mut r = NalBitReader::new(&bits);
        assert_eq!(
            cropped_size(&mut r, &SYNTAX, 3, true, 1, 1920, 1088).unwrap(),
            (1920, 1084)
        );
    }

    #[test]
    fn no_flag_keeps_the_coded_size() {
        let mut r = NalBitReader::new(&[0x00]);
        assert_eq!(
            cropped_size(&mut r, &SYNTAX, 1, false, 1, 640, 360).unwrap(),
            (640, 360)
        );
    }

    #[test]
    fn a_window_as_large_as_the_picture_is_out_of_range() {
        // flag 1, left 1, right 1, top 0, bottom 0: 4 luma columns off a 4-wide picture.
        let mut r = NalBitReader::new(&[0xA5, 0x80]);
        assert_eq!(
            cropped_size(&mut r, &SYNTAX, 1, false, 1, 4, 16),
            Err(CodecConfigError::ValueOutOfRange {
                field: "test window",
                value: 4,
                limit: 4
            })
        );
    }
}
