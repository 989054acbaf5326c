//! AV1 picture size from an `av1C` record (AV1-ISOBMFF §2.3): the record's
//! `configOBUs` carry the sequence header OBU, whose `max_frame_{width,height}`
//! the visual sample entry and `tkhd` need. ringcast's FLV layer does not parse
//! AV1, so the few fields needed are read here (AV1 spec §5.5).

use crate::protocol::flv::config::CodecConfigError;

/// Fixed part of `av1C`: marker/version, profile/level, flags, delay.
const AV1C_FIXED_LEN: usize = 4;
/// OBU type of a sequence header.
const OBU_SEQUENCE_HEADER: u8 = 1;

const TRUNCATED: CodecConfigError = CodecConfigError::Truncated {
    what: "AV1 sequence header",
};

/// MSB-first bit reader over raw (unescaped) AV1 bytes.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Result<u32, CodecConfigError> {
        let byte = *self.data.get(self.pos / 8).ok_or(TRUNCATED)?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(u32::from(bit))
    }

    /// `f(n)` for n ≤ 32.
    fn f(&mut self, n: u32) -> Result<u32, CodecConfigError> {
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        u32::try_from(v).map_err(|_| TRUNCATED)
    }

    /// `uvlc()`: only skipped here, so its value is not needed.
    fn skip_uvlc(&mut self) -> Result<(), CodecConfigError> {
        let mut zeros = 0u32;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros >= 32 {
                // The spec's escape: a value of 2^32 - 1, no suffix bits follow.
                return Ok(());
            }
        }
        self.f(zeros).map(|_| ())
    }
}

/// Reads a leb128 (at most 8 bytes, AV1 spec §4.10.5) from the front of `data`.
fn leb128(data: &[u8]) -> Result<(u64, usize), CodecConfigError> {
    let mut value = 0u64;
    for i in 0..8 {
        let b = *data.get(i).ok_or(TRUNCATED)?;
        value |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(TRUNCATED)
}

/// Finds the sequence header OBU's payload among `obus` (low-overhead format).
fn sequence_header_obu(mut obus: &[u8]) -> Result<&[u8], CodecConfigError> {
    while let Some(&header) = obus.first() {
        let obu_type = (header >> 3) & 0x0F;
        let has_extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        let mut at = 1 + usize::from(has_extension);
        let size = if has_size {
            let (size, n) = leb128(obus.get(at..).ok_or(TRUNCATED)?)?;
            at += n;
            usize::try_from(size).map_err(|_| TRUNCATED)?
        } else {
            // Without a size field the OBU runs to the end of the record.
            obus.len().saturating_sub(at)
        };
        let end = at.checked_add(size).ok_or(TRUNCATED)?;
        let payload = obus.get(at..end).ok_or(TRUNCATED)?;
        if obu_type == OBU_SEQUENCE_HEADER {
            return Ok(payload);
        }
        obus = obus.get(end..).unwrap_or_default();
    }
    Err(CodecConfigError::NoParameterSet {
        what: "sequence header OBU",
    })
}

/// `(max_frame_width, max_frame_height)` of the sequence header in an `av1C` record.
pub fn av1c_dimensions(av1c: &[u8]) -> Result<(u32, u32), CodecConfigError> {
    let marker = *av1c.first().ok_or(TRUNCATED)?;
    if marker != 0x81 {
        // marker bit 1 + version 1 is the only defined value.
        return Err(CodecConfigError::UnsupportedVersion { version: marker });
    }
    let obus = av1c.get(AV1C_FIXED_LEN..).ok_or(TRUNCATED)?;
    let seq = sequence_header_obu(obus)?;
    let mut r = Bits { data: seq, pos: 0 };
    let _seq_profile = r.f(3)?;
    let _still_picture = r.f(1)?;
    let reduced_still_picture_header = r.f(1)? == 1;
    if reduced_still_picture_header {
        let _seq_level_idx = r.f(5)?;
    } else {
        let timing_info_present = r.f(1)? == 1;
        let mut decoder_model_info_present = false;
        let mut buffer_delay_length = 0;
        if timing_info_present {
            r.f(32)?; // num_units_in_display_tick
            r.f(32)?; // time_scale
            if r.f(1)? == 1 {
                r.skip_uvlc()?; // num_ticks_per_picture_minus_1
            }
            decoder_model_info_present = r.f(1)? == 1;
            if decoder_model_info_present {
                buffer_delay_length = r.f(5)? + 1;
                r.f(32)?; // num_units_in_decoding_tick
                r.f(5)?; // buffer_removal_time_length_minus_1
                r.f(5)?; // frame_presentation_time_length_minus_1
            }
        }
        let initial_display_delay_present = r.f(1)? == 1;
        let operating_points = r.f(5)? + 1;
        for _ in 0..operating_points {
            r.f(12)?; // operating_point_idc
            let seq_level_idx = r.f(5)?;
            if seq_level_idx > 7 {
                r.f(1)?; // seq_tier
            }
            if decoder_model_info_present && r.f(1)? == 1 {
                r.f(buffer_delay_length)?; // decoder_buffer_delay
                r.f(buffer_delay_length)?; // encoder_buffer_delay
                r.f(1)?; // low_delay_mode_flag
            }
            if initial_display_delay_present && r.f(1)? == 1 {
                r.f(4)?; // initial_display_delay_minus_1
            }
        }
    }
    let width_bits = r.f(4)? + 1;
    let height_bits = r.f(4)? + 1;
    let width = r.f(width_bits)?.saturating_add(1);
    let height = r.f(height_bits)?.saturating_add(1);
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes MSB-first bits, to build sequence headers field by field.
    struct BitOut(Vec<u8>, u32);
    impl BitOut {
        fn put(&mut self, n: u32, v: u32) {
            for i in (0..n).rev() {
                if self.1.is_multiple_of(8) {
                    self.0.push(0);
                }
                let bit = ((v >> i) & 1) as u8;
                let last = self.0.last_mut().unwrap();
                *last |= bit << (7 - (self.1 % 8));
                self.1 += 1;
            }
        }
    }

    fn av1c_with(seq: Vec<u8>) -> Vec<u8> {
        let mut rec = vec![0x81, 0x08, 0x0C, 0x00];
        rec.push(OBU_SEQUENCE_HEADER << 3 | 0x02);
        rec.push(seq.len() as u8);
        rec.extend(seq);
        rec
    }

    #[test]
    fn reads_size_of_a_plain_sequence_header() {
        let mut b = BitOut(Vec::new(), 0);
        b.put(3, 0); // profile
        b.put(1, 0); // still
        b.put(1, 0); // reduced
        b.put(1, 0); // timing info
        b.put(1, 0); // initial display delay
        b.put(5, 0); // one operating point
        b.put(12, 0);
        b.put(5, 8); // level 8 > 7: tier bit follows
        b.put(1, 0);
        b.put(4, 10); // width bits - 1
        b.put(4, 9); // height bits - 1
        b.put(11, 1279);
        b.put(10, 719);
        assert_eq!(av1c_dimensions(&av1c_with(b.0)).unwrap(), (1280, 720));
    }

    #[test]
    fn skips_timing_and_decoder_model_info() {
        let mut b = BitOut(Vec::new(), 0);
        b.put(3, 0);
        b.put(1, 0);
        b.put(1, 0);
        b.put(1, 1); // timing info present
        b.put(32, 1);
        b.put(32, 30);
        b.put(1, 1); // equal picture interval
        b.put(3, 0b010); // uvlc: one leading zero, then "1", then 1 suffix bit
        b.put(1, 1); // decoder model info present
        b.put(5, 9); // buffer_delay_length_minus_1 -> 10 bits
        b.put(32, 1);
        b.put(5, 0);
        b.put(5, 0);
        b.put(1, 1); // initial display delay present
        b.put(5, 0);
        b.put(12, 0);
        b.put(5, 4);
        b.put(1, 1); // decoder model present for this op
        b.put(10, 5);
        b.put(10, 5);
        b.put(1, 0);
        b.put(1, 1); // initial display delay present for this op
        b.put(4, 3);
        b.put(4, 8);
        b.put(4, 8);
        b.put(9, 319);
        b.put(9, 239);
        assert_eq!(av1c_dimensions(&av1c_with(b.0)).unwrap(), (320, 240));
    }

    #[test]
    fn rejects_bad_records() {
        assert_eq!(
            av1c_dimensions(&[0x80, 0, 0, 0]),
            Err(CodecConfigError::UnsupportedVersion { version: 0x80 })
        );
        assert!(matches!(
            av1c_dimensions(&[0x81, 0, 0, 0]),
            Err(CodecConfigError::NoParameterSet { .. })
        ));
        // A sequence header cut short.
        assert_eq!(av1c_dimensions(&av1c_with(vec![0x00])), Err(TRUNCATED));
    }
}
