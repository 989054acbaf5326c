//! H.264 for TS: AVCC (length-prefixed NAL units, as FLV carries them) to Annex B
//! (start codes, as TS carries them), with an access unit delimiter first and the
//! SPS/PPS of the last sequence header before every IDR picture.
//!
//! Conversion is two passes over the frame, so nothing is buffered: [`plan`]
//! validates every length prefix and sizes the output, then [`write_access_unit`]
//! streams the pieces into a [`Sink`] (the TS packetizer), which cannot fail.

use super::error::TsError;

/// The Annex B start code written before every NAL unit (4-byte form, valid
/// everywhere, required before parameter sets and an access unit's first NAL).
const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// An access unit delimiter NAL (type 9) with primary_pic_type 7 (any slice type).
const AUD: [u8; 6] = [0, 0, 0, 1, 0x09, 0xF0];
/// NAL unit types used here (H.264 Table 7-1).
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
/// Upper bound on a sequence header's parameter sets in Annex B form. Real ones are
/// well under 1 KiB; the bound keeps a hostile record from growing per-stream state.
pub const MAX_PARAMETER_SETS: usize = 64 * 1024;

/// Something the Annex B bytes are written into.
pub(crate) trait Sink {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// What the muxer keeps from an AVCDecoderConfigurationRecord.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AvcParams {
    /// Bytes in each NAL unit length prefix.
    pub nal_length_size: u8,
    /// Every SPS then every PPS of the record, each behind a start code.
    pub parameter_sets: Vec<u8>,
}

/// Bounds-checked big-endian cursor over a record.
struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TsError> {
        let truncated = TsError::Truncated {
            what: "AVCDecoderConfigurationRecord",
        };
        let (head, tail) = self.data.split_at_checked(n).ok_or(truncated)?;
        self.data = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, TsError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn u16(&mut self) -> Result<usize, TsError> {
        let hi = self.u8()?;
        let lo = self.u8()?;
        Ok(usize::from(u16::from_be_bytes([hi, lo])))
    }
}

/// Reads the NAL length size and all SPS/PPS of an AVCDecoderConfigurationRecord
/// (ISO 14496-15 §5.3.3.1).
pub(crate) fn parse_avcc_record(record: &[u8]) -> Result<AvcParams, TsError> {
    let mut c = Cursor { data: record };
    let _version_profile_compat_level = c.take(4)?;
    // 1..=4; 3-byte prefixes are reserved in the record but unambiguous to read.
    let nal_length_size = (c.u8()? & 0x03) + 1;
    let mut parameter_sets = Vec::new();
    let num_sps = c.u8()? & 0x1F;
    copy_sets(&mut c, usize::from(num_sps), &mut parameter_sets)?;
    let num_pps = c.u8()?;
    copy_sets(&mut c, usize::from(num_pps), &mut parameter_sets)?;
    Ok(AvcParams {
        nal_length_size,
        parameter_sets,
    })
}

fn copy_sets(c: &mut Cursor<'_>, count: usize, out: &mut Vec<u8>) -> Result<(), TsError> {
    for _ in 0..count {
        let len = c.u16()?;
        let set = c.take(len)?;
        let grown = out.len() + START_CODE.len() + set.len();
        if grown > MAX_PARAMETER_SETS {
            return Err(TsError::ParameterSetsTooLarge {
                len: grown,
                limit: MAX_PARAMETER_SETS,
            });
        }
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(set);
    }
    Ok(())
}

/// Iterates the NAL units of an AVCC buffer; stops after the first error.
struct Nalus<'a> {
    data: &'a [u8],
    length_size: usize,
}

impl<'a> Iterator for Nalus<'a> {
    type Item = Result<&'a [u8], TsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        let result = self.next_nalu();
        if result.is_err() {
            self.data = &[];
        }
        Some(result)
    }
}

impl<'a> Nalus<'a> {
    fn next_nalu(&mut self) -> Result<&'a [u8], TsError> {
        let (prefix, rest) =
            self.data
                .split_at_checked(self.length_size)
                .ok_or(TsError::Truncated {
                    what: "NAL unit length",
                })?;
        let len = prefix
            .iter()
            .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
        let (nalu, rest) = rest.split_at_checked(len).ok_or(TsError::NaluOverrun {
            len,
            remaining: rest.len(),
        })?;
        self.data = rest;
        Ok(nalu)
    }
}

fn nal_type(nalu: &[u8]) -> Option<u8> {
    nalu.first().map(|b| b & 0x1F)
}

/// A frame's NAL units other than empty ones and access unit delimiters (the
/// muxer writes its own AUD first).
fn kept_nalus(nalus: &[u8], length_size: u8) -> impl Iterator<Item = Result<&[u8], TsError>> {
    Nalus {
        data: nalus,
        length_size: usize::from(length_size),
    }
    .filter(|n| {
        n.as_ref()
            .map_or(true, |n| !n.is_empty() && nal_type(n) != Some(NAL_AUD))
    })
}

/// The shape of one access unit in Annex B form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AccessUnitPlan {
    /// Annex B bytes the access unit takes, AUD and inserted parameter sets included.
    pub len: usize,
    /// The sequence header's SPS/PPS go before the frame's own NAL units.
    pub insert_parameter_sets: bool,
    /// The frame holds an IDR slice.
    pub idr: bool,
    /// The frame holds no NAL unit that is written (nothing to mux).
    pub empty: bool,
}

/// Validates a frame's AVCC NAL units and sizes their Annex B form.
///
/// Parameter sets are inserted before an IDR (or a frame the FLV header calls a
/// keyframe) unless the frame carries both an SPS and a PPS in band already, so
/// a player can start at any segment.
pub(crate) fn plan(
    nalus: &[u8],
    params: &AvcParams,
    flv_keyframe: bool,
) -> Result<AccessUnitPlan, TsError> {
    let (mut len, mut idr, mut sps, mut pps, mut count) = (AUD.len(), false, false, false, 0usize);
    for nalu in kept_nalus(nalus, params.nal_length_size) {
        let nalu = nalu?;
        len += START_CODE.len() + nalu.len();
        count += 1;
        match nal_type(nalu) {
            Some(NAL_IDR) => idr = true,
            Some(NAL_SPS) => sps = true,
            Some(NAL_PPS) => pps = true,
            _ => {}
        }
    }
    let insert_parameter_sets = (idr || flv_keyframe) && !(sps && pps);
    if insert_parameter_sets {
        len += params.parameter_sets.len();
    }
    Ok(AccessUnitPlan {
        len,
        insert_parameter_sets,
        idr,
        empty: count == 0,
    })
}

/// Writes the access unit [`plan`] sized: AUD, parameter sets if planned, then
/// each NAL unit behind a start code. Exactly `plan.len` bytes go into `sink`.
pub(crate) fn write_access_unit(
    nalus: &[u8],
    params: &AvcParams,
    plan: &AccessUnitPlan,
    sink: &mut impl Sink,
) {
    sink.put(&AUD);
    if plan.insert_parameter_sets {
        sink.put(&params.parameter_sets);
    }
    // `plan` already validated every prefix, so no error can appear here.
    for nalu in kept_nalus(nalus, params.nal_length_size).flatten() {
        sink.put(&START_CODE);
        sink.put(nalu);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x42, 0xC0, 0x1F, 0xD9];
    const PPS: &[u8] = &[0x68, 0xCE, 0x3C, 0x80];

    fn record(length_size_minus_one: u8) -> Vec<u8> {
        let mut r = vec![1, 0x42, 0xC0, 0x1F, 0xFC | length_size_minus_one, 0xE1];
        r.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
        r.extend_from_slice(SPS);
        r.push(1);
        r.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
        r.extend_from_slice(PPS);
        r
    }

    fn avcc(nalus: &[&[u8]], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nalus {
            out.extend_from_slice(&n.len().to_be_bytes()[8 - size..]);
            out.extend_from_slice(n);
        }
        out
    }

    fn convert(nalus: &[u8], params: &AvcParams, key: bool) -> Vec<u8> {
        let p = plan(nalus, params, key).unwrap();
        let mut out = Vec::new();
        write_access_unit(nalus, params, &p, &mut out);
        assert_eq!(out.len(), p.len, "plan sized the output exactly");
        out
    }

    #[test]
    fn record_gives_length_size_and_annexb_parameter_sets() {
        let p = parse_avcc_record(&record(3)).unwrap();
        assert_eq!(p.nal_length_size, 4);
        let mut want = vec![0, 0, 0, 1];
        want.extend_from_slice(SPS);
        want.extend_from_slice(&[0, 0, 0, 1]);
        want.extend_from_slice(PPS);
        assert_eq!(p.parameter_sets, want);
        assert_eq!(parse_avcc_record(&record(1)).unwrap().nal_length_size, 2);
        let r = record(3);
        for cut in 0..r.len() {
            assert!(parse_avcc_record(&r[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn idr_gets_aud_then_sps_pps_then_its_nalus() {
        let params = parse_avcc_record(&record(3)).unwrap();
        let sei: &[u8] = &[0x06, 5, 1, 0x80];
        let idr: &[u8] = &[0x65, 0x88, 0x84];
        let out = convert(&avcc(&[sei, idr], 4), &params, true);
        let mut want = AUD.to_vec();
        want.extend_from_slice(&params.parameter_sets);
        for n in [sei, idr] {
            want.extend_from_slice(&START_CODE);
            want.extend_from_slice(n);
        }
        assert_eq!(out, want);
    }

    #[test]
    fn non_idr_gets_only_the_aud_and_existing_auds_are_dropped() {
        let params = parse_avcc_record(&record(1)).unwrap();
        let aud: &[u8] = &[0x09, 0x30];
        let slice: &[u8] = &[0x41, 0x9A, 0x02];
        let out = convert(&avcc(&[aud, slice, &[]], 2), &params, false);
        let mut want = AUD.to_vec();
        want.extend_from_slice(&START_CODE);
        want.extend_from_slice(slice);
        assert_eq!(out, want);
    }

    #[test]
    fn in_band_parameter_sets_are_not_duplicated() {
        let params = parse_avcc_record(&record(3)).unwrap();
        let idr: &[u8] = &[0x65, 0x88];
        let p = plan(&avcc(&[SPS, PPS, idr], 4), &params, true).unwrap();
        assert!(p.idr && !p.insert_parameter_sets);
        let p = plan(&avcc(&[PPS, idr], 4), &params, false).unwrap();
        assert!(p.insert_parameter_sets, "an SPS alone is missing");
    }

    #[test]
    fn overrunning_and_truncated_prefixes_are_errors() {
        let params = parse_avcc_record(&record(3)).unwrap();
        assert_eq!(
            plan(&[0, 0, 0, 9, 0x65, 1], &params, false),
            Err(TsError::NaluOverrun {
                len: 9,
                remaining: 2
            })
        );
        assert!(matches!(
            plan(&[0, 0], &params, false),
            Err(TsError::Truncated { .. })
        ));
        assert!(plan(&[], &params, false).unwrap().empty);
    }

    #[test]
    fn oversized_parameter_sets_are_refused() {
        let big = vec![0x67; 60_000];
        let mut r = vec![1, 0x42, 0xC0, 0x1F, 0xFF, 0xE2];
        for _ in 0..2 {
            r.extend_from_slice(&(big.len() as u16).to_be_bytes());
            r.extend_from_slice(&big);
        }
        r.push(0);
        assert!(matches!(
            parse_avcc_record(&r),
            Err(TsError::ParameterSetsTooLarge { .. })
        ));
    }
}
