//! Bit reader for H.264/H.265 parameter sets: MSB-first bits, exp-Golomb codes,
//! and on-the-fly removal of emulation-prevention bytes (`00 00 03`), so NAL
//! units are parsed in place without an unescaped copy.

use super::config::CodecConfigError;

/// Longest exp-Golomb prefix accepted: 31 leading zeros codes values up to 2^32 - 2,
/// more than any syntax element we read can legally hold.
const MAX_EXP_GOLOMB_ZEROS: u32 = 31;

/// Reads bits from a NAL unit payload (after its header bytes).
#[derive(Clone, Debug)]
pub struct NalBitReader<'a> {
    data: &'a [u8],
    pos: usize,
    zeros: u8,
    cur: u8,
    left: u8,
}

impl<'a> NalBitReader<'a> {
    /// A reader over escaped NAL bytes.
    pub fn new(data: &'a [u8]) -> Self {
        NalBitReader {
            data,
            pos: 0,
            zeros: 0,
            cur: 0,
            left: 0,
        }
    }

    fn raw_byte(&mut self) -> Result<u8, CodecConfigError> {
        let b = *self.data.get(self.pos).ok_or(CodecConfigError::Truncated {
            what: "parameter set",
        })?;
        self.pos += 1;
        Ok(b)
    }

    fn next_byte(&mut self) -> Result<u8, CodecConfigError> {
        let mut b = self.raw_byte()?;
        if self.zeros >= 2 && b == 3 {
            self.zeros = 0;
            b = self.raw_byte()?;
        }
        self.zeros = if b == 0 {
            self.zeros.saturating_add(1)
        } else {
            0
        };
        Ok(b)
    }

    /// One bit.
    pub fn bit(&mut self) -> Result<bool, CodecConfigError> {
        if self.left == 0 {
            self.cur = self.next_byte()?;
            self.left = 8;
        }
        self.left -= 1;
        Ok((self.cur >> self.left) & 1 == 1)
    }

    /// `n` bits (n ≤ 32) as an unsigned number, MSB first.
    pub fn bits(&mut self, n: u32) -> Result<u32, CodecConfigError> {
        let mut v: u64 = 0;
        for _ in 0..n.min(32) {
            v = v << 1 | u64::from(self.bit()?);
        }
        Ok(v as u32)
    }

    /// Skips `n` bits.
    pub fn skip(&mut self, n: u32) -> Result<(), CodecConfigError> {
        for _ in 0..n {
            self.bit()?;
        }
        Ok(())
    }

    /// An unsigned exp-Golomb code, ue(v).
    pub fn ue(&mut self) -> Result<u32, CodecConfigError> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > MAX_EXP_GOLOMB_ZEROS {
                return Err(CodecConfigError::ExpGolombTooLong {
                    limit: MAX_EXP_GOLOMB_ZEROS,
                });
            }
        }
        let suffix = u64::from(self.bits(zeros)?);
        Ok(((1u64 << zeros) - 1 + suffix) as u32)
    }

    /// A signed exp-Golomb code, se(v).
    pub fn se(&mut self) -> Result<i64, CodecConfigError> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }

    /// ue(v) that must not exceed `limit`; `field` names it in the error.
    pub fn ue_max(&mut self, field: &'static str, limit: u32) -> Result<u32, CodecConfigError> {
        let v = self.ue()?;
        if v > limit {
            return Err(CodecConfigError::ValueOutOfRange {
                field,
                value: u64::from(v),
                limit: u64::from(limit),
            });
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_values() {
        // Codes: 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3, 00111 -> 6; packed MSB first.
        let bits = "1".to_owned() + "010" + "011" + "00100" + "00111" + "0000000";
        let bytes: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |a, b| a << 1 | (b - b'0')))
            .collect();
        let mut r = NalBitReader::new(&bytes);
        let got: Vec<u32> = (0..5).map(|_| r.ue().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3, 6]);
    }

    #[test]
    fn signed_exp_golomb() {
        // 010 -> +1, 011 -> -1, 00100 -> +2
        let mut r = NalBitReader::new(&[0b0100_1100, 0b1000_0000]);
        assert_eq!(
            (r.se().unwrap(), r.se().unwrap(), r.se().unwrap()),
            (1, -1, 2)
        );
    }

    #[test]
    fn emulation_prevention_bytes_are_skipped() {
        let mut r = NalBitReader::new(&[0x00, 0x00, 0x03, 0x01, 0xFF]);
        assert_eq!(r.bits(24).unwrap(), 0x000001);
        assert_eq!(r.bits(8).unwrap(), 0xFF);
        // A 03 not after two zeros is data.
        let mut r = NalBitReader::new(&[0x00, 0x03, 0x00]);
        assert_eq!(r.bits(24).unwrap(), 0x000300);
    }

    #[test]
    fn errors_instead_of_panics() {
        assert!(matches!(
            NalBitReader::new(&[0x00]).bits(9),
            Err(CodecConfigError::Truncated { .. })
        ));
        let zeros = [0u8; 8];
        assert_eq!(
            NalBitReader::new(&zeros).ue(),
            Err(CodecConfigError::ExpGolombTooLong { limit: 31 })
        );
        let mut r = NalBitReader::new(&[0b0001_0000]);
        assert!(matches!(
            r.ue_max("x", 6),
            Err(CodecConfigError::ValueOutOfRange {
                value: 7,
                limit: 6,
                ..
            })
        ));
    }
}
