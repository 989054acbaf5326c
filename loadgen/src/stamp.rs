//! End-to-end latency stamps carried inside the H.264 bitstream.
//!
//! Servers may rewrite FLV/RTMP timestamps (every viewer gets its own timeline in
//! ringcast), so the publisher's send time cannot travel in the tag header. It travels
//! instead in an SEI `user_data_unregistered` NAL unit (H.264 7.3.2.3, D.1.6) put in
//! front of the coded slices of every video frame: decoders skip SEI they do not
//! know, relays pass NAL units through untouched, and each viewer can read the
//! publisher's wall-clock send time and a per-publisher sequence number back out.

use ringcast::protocol::flv::tag_body::AVC_TAG_HEADER_LEN;
use thiserror::Error;

/// Identifies our SEI among the others (x264 writes its own version string as one).
pub const STAMP_UUID: [u8; 16] = [
    0x7a, 0x1c, 0x52, 0x9e, 0x3b, 0x44, 0x4f, 0x0d, 0x9a, 0x61, 0xc2, 0x0e, 0x5d, 0x88, 0x17, 0xb3,
];

/// NAL unit type of an SEI message.
const NAL_TYPE_SEI: u8 = 6;
/// NAL unit type of an access unit delimiter, which must stay first in its access unit.
const NAL_TYPE_AUD: u8 = 9;
/// SEI payload type `user_data_unregistered`.
const SEI_USER_DATA_UNREGISTERED: u8 = 5;
/// UUID + send time (u64) + sequence (u64).
const STAMP_PAYLOAD_LEN: usize = 32;
/// Escaped SEI NAL unit is at most this long: header, type, size, payload with one
/// emulation-prevention byte per two payload bytes in the worst case, trailing bits.
const MAX_SEI_NAL_LEN: usize = 3 + STAMP_PAYLOAD_LEN + STAMP_PAYLOAD_LEN / 2 + 1;
/// How many NAL units of a frame are examined when looking for the stamp: we put it
/// first (or right after an AUD), so a frame that lacks it is given up on quickly.
const MAX_NALS_SCANNED: usize = 4;

/// What the publisher wrote into a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Publisher wall clock at send time, microseconds since the UNIX epoch.
    pub sent_unix_us: u64,
    /// Per-publisher video frame counter, starting at 0, +1 per video frame.
    pub sequence: u64,
}

/// Why a video tag could not be stamped.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum StampError {
    /// The tag is not a legacy-FLV AVC coded-frame tag (codec id 7, AVCPacketType 1).
    #[error("not an AVC coded frame tag")]
    NotAvcCodedFrame,
    /// The AVC NAL unit length field size is not 1, 2 or 4 bytes.
    #[error("unsupported NAL length size {0} (must be 1, 2 or 4)")]
    BadNalLengthSize(u8),
    /// A NAL unit length runs past the end of the tag.
    #[error("NAL unit of {len} bytes at offset {offset} overruns the {available}-byte tag")]
    NalOverrun {
        /// Declared NAL length.
        len: usize,
        /// Offset of the length field in the tag body.
        offset: usize,
        /// Tag body length.
        available: usize,
    },
}

/// Reads a `size`-byte big-endian NAL length at `at`.
fn read_nal_len(body: &[u8], at: usize, size: usize) -> Option<usize> {
    let field = body.get(at..at.checked_add(size)?)?;
    Some(field.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize))
}

fn check_len_size(nal_len_size: u8) -> Result<usize, StampError> {
    match nal_len_size {
        1 | 2 | 4 => Ok(nal_len_size as usize),
        n => Err(StampError::BadNalLengthSize(n)),
    }
}

/// Writes the escaped SEI NAL unit carrying `stamp` into `out`; returns its length.
fn write_sei_nal(stamp: Stamp, out: &mut [u8; MAX_SEI_NAL_LEN]) -> usize {
    let mut raw = [0u8; STAMP_PAYLOAD_LEN];
    raw[..16].copy_from_slice(&STAMP_UUID);
    raw[16..24].copy_from_slice(&stamp.sent_unix_us.to_be_bytes());
    raw[24..32].copy_from_slice(&stamp.sequence.to_be_bytes());
    out[0] = NAL_TYPE_SEI; // forbidden_zero 0, nal_ref_idc 0
    out[1] = SEI_USER_DATA_UNREGISTERED;
    out[2] = STAMP_PAYLOAD_LEN as u8;
    let mut n = 3;
    // Emulation prevention (7.4.1): after two zero bytes, a byte <= 3 gets a 0x03 first.
    let mut zeros = 0;
    for &b in raw.iter() {
        if zeros >= 2 && b <= 3 {
            out[n] = 0x03;
            n += 1;
            zeros = 0;
        }
        out[n] = b;
        n += 1;
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    // rbsp_trailing_bits; 0x80 cannot form a start code with preceding zeros.
    out[n] = 0x80;
    n + 1
}

/// Copies `avc_tag` (an FLV AVC video tag body whose NAL units have `nal_len_size`-byte
/// length prefixes) into `out` with an SEI NAL unit carrying `stamp` inserted before
/// the first NAL unit that is not an access unit delimiter.
pub fn stamp_avc_tag(
    avc_tag: &[u8],
    nal_len_size: u8,
    stamp: Stamp,
    out: &mut Vec<u8>,
) -> Result<(), StampError> {
    let size = check_len_size(nal_len_size)?;
    let is_avc_coded = avc_tag.first().is_some_and(|b| b & 0x0f == 7) && avc_tag.get(1) == Some(&1);
    if !is_avc_coded || avc_tag.len() < AVC_TAG_HEADER_LEN {
        return Err(StampError::NotAvcCodedFrame);
    }
    let mut insert_at = AVC_TAG_HEADER_LEN;
    if let Some(first_len) = read_nal_len(avc_tag, insert_at, size) {
        let nal_type = avc_tag.get(insert_at + size).map(|h| h & 0x1f);
        if nal_type == Some(NAL_TYPE_AUD) {
            let end = insert_at + size + first_len;
            if end > avc_tag.len() {
                return Err(StampError::NalOverrun {
                    len: first_len,
                    offset: insert_at,
                    available: avc_tag.len(),
                });
            }
            insert_at = end;
        }
    }
    let mut sei = [0u8; MAX_SEI_NAL_LEN];
    let sei_len = write_sei_nal(stamp, &mut sei);
    out.clear();
    out.reserve(avc_tag.len() + size + sei_len);
    out.extend_from_slice(&avc_tag[..insert_at]);
    out.extend_from_slice(&(sei_len as u32).to_be_bytes()[4 - size..]);
    out.extend_from_slice(&sei[..sei_len]);
    out.extend_from_slice(&avc_tag[insert_at..]);
    Ok(())
}

/// Finds our stamp in an FLV AVC video tag body, if the frame carries one.
///
/// Never allocates and never panics on any input: it looks at the first few NAL
/// units only and returns `None` for anything malformed.
pub fn find_stamp(avc_tag: &[u8], nal_len_size: u8) -> Option<Stamp> {
    if avc_tag.first()? & 0x0f != 7 || *avc_tag.get(1)? != 1 {
        return None;
    }
    find_stamp_in_nals(avc_tag.get(AVC_TAG_HEADER_LEN..)?, nal_len_size)
}

/// Finds our stamp in length-prefixed NAL units (an FLV AVC tag body after its
/// header, or an fMP4 AVC sample), looking at the first few NAL units only.
pub fn find_stamp_in_nals(nals: &[u8], nal_len_size: u8) -> Option<Stamp> {
    let size = check_len_size(nal_len_size).ok()?;
    let mut at = 0;
    for _ in 0..MAX_NALS_SCANNED {
        let len = read_nal_len(nals, at, size)?;
        let start = at.checked_add(size)?;
        let nal = nals.get(start..start.checked_add(len)?)?;
        if nal.first().map(|h| h & 0x1f) == Some(NAL_TYPE_SEI) {
            if let Some(stamp) = parse_stamp_sei(nal) {
                return Some(stamp);
            }
        }
        at = start + len;
    }
    None
}

/// Finds our stamp in an Annex B access unit (an MPEG-TS PES payload): NAL units
/// after `00 00 01` start codes, looking at the first few only.
pub fn find_stamp_annexb(es: &[u8]) -> Option<Stamp> {
    let mut rest = es;
    for _ in 0..MAX_NALS_SCANNED {
        let start = find_start_code(rest)?;
        let nal_from = rest.get(start + 3..)?;
        let end = find_start_code(nal_from).unwrap_or(nal_from.len());
        let nal = nal_from.get(..end)?;
        if nal.first().map(|h| h & 0x1f) == Some(NAL_TYPE_SEI) {
            if let Some(stamp) = parse_stamp_sei(nal) {
                return Some(stamp);
            }
        }
        rest = nal_from.get(end..)?;
    }
    None
}

/// Offset of the first `00 00 01` in `b`.
fn find_start_code(b: &[u8]) -> Option<usize> {
    b.windows(3).position(|w| w == [0, 0, 1])
}

/// Parses an SEI NAL unit whose first message is our `user_data_unregistered`.
fn parse_stamp_sei(nal: &[u8]) -> Option<Stamp> {
    // Undo emulation prevention for just as many bytes as the stamp needs.
    let mut rbsp = [0u8; 2 + STAMP_PAYLOAD_LEN];
    let mut n = 0;
    let mut zeros = 0;
    for &b in nal.get(1..)? {
        if n == rbsp.len() {
            break;
        }
        if zeros >= 2 && b == 0x03 {
            zeros = 0;
            continue;
        }
        rbsp[n] = b;
        n += 1;
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    if n < rbsp.len()
        || rbsp[0] != SEI_USER_DATA_UNREGISTERED
        || rbsp[1] as usize != STAMP_PAYLOAD_LEN
    {
        return None;
    }
    let payload = &rbsp[2..];
    if payload[..16] != STAMP_UUID {
        return None;
    }
    let sent_unix_us = u64::from_be_bytes(payload[16..24].try_into().ok()?);
    let sequence = u64::from_be_bytes(payload[24..32].try_into().ok()?);
    Some(Stamp {
        sent_unix_us,
        sequence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avc_tag(keyframe: bool, nals: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        for nal in nals {
            v.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            v.extend_from_slice(nal);
        }
        v
    }

    #[test]
    fn round_trips_including_values_that_need_escaping() {
        let tag = avc_tag(true, &[&[0x65, 0x88, 0x84, 0x00, 0x10]]);
        for stamp in [
            Stamp {
                sent_unix_us: 0,
                sequence: 0,
            },
            Stamp {
                sent_unix_us: 1_763_700_000_123_456,
                sequence: 1,
            },
            Stamp {
                sent_unix_us: 0x0000_0003_0000_0001,
                sequence: 0x0300_0000_0000_0002,
            },
            Stamp {
                sent_unix_us: u64::MAX,
                sequence: u64::MAX,
            },
        ] {
            let mut out = Vec::new();
            stamp_avc_tag(&tag, 4, stamp, &mut out).unwrap();
            assert_eq!(find_stamp(&out, 4), Some(stamp));
            // The original slice is still there, intact, after the SEI.
            assert!(out.ends_with(&tag[5..]));
        }
    }

    #[test]
    fn escaped_sei_contains_no_start_code_emulation() {
        let tag = avc_tag(false, &[&[0x41, 0x9a]]);
        let mut out = Vec::new();
        stamp_avc_tag(
            &tag,
            4,
            Stamp {
                sent_unix_us: 0,
                sequence: 0,
            },
            &mut out,
        )
        .unwrap();
        let sei_len = u32::from_be_bytes(out[5..9].try_into().unwrap()) as usize;
        let sei = &out[9..9 + sei_len];
        assert_eq!(sei[0], 0x06);
        for w in sei.windows(3) {
            assert!(
                !(w[0] == 0 && w[1] == 0 && w[2] <= 3 && w[2] != 3),
                "emulated start code in {sei:02x?}"
            );
        }
        assert_eq!(*sei.last().unwrap(), 0x80);
    }

    #[test]
    fn sei_goes_after_an_access_unit_delimiter() {
        let tag = avc_tag(true, &[&[0x09, 0xf0], &[0x65, 0x88]]);
        let mut out = Vec::new();
        let stamp = Stamp {
            sent_unix_us: 42,
            sequence: 7,
        };
        stamp_avc_tag(&tag, 4, stamp, &mut out).unwrap();
        assert_eq!(&out[5..11], &[0, 0, 0, 2, 0x09, 0xf0]);
        assert_eq!(out[15] & 0x1f, 6);
        assert_eq!(find_stamp(&out, 4), Some(stamp));
    }

    #[test]
    fn two_byte_nal_lengths_work() {
        let mut tag = vec![0x27, 1, 0, 0, 0];
        tag.extend_from_slice(&[0, 2, 0x41, 0x9a]);
        let mut out = Vec::new();
        let stamp = Stamp {
            sent_unix_us: 9,
            sequence: 3,
        };
        stamp_avc_tag(&tag, 2, stamp, &mut out).unwrap();
        assert_eq!(find_stamp(&out, 2), Some(stamp));
    }

    #[test]
    fn refuses_what_it_cannot_stamp() {
        let mut out = Vec::new();
        let s = Stamp {
            sent_unix_us: 1,
            sequence: 1,
        };
        assert_eq!(
            stamp_avc_tag(&[0x17, 0, 1, 2, 3], 4, s, &mut out),
            Err(StampError::NotAvcCodedFrame)
        );
        assert_eq!(
            stamp_avc_tag(&[0xaf, 1], 4, s, &mut out),
            Err(StampError::NotAvcCodedFrame)
        );
        assert_eq!(
            stamp_avc_tag(&avc_tag(true, &[]), 3, s, &mut out),
            Err(StampError::BadNalLengthSize(3))
        );
        let aud_overrun = [0x17, 1, 0, 0, 0, 0, 0, 0, 9, 0x09];
        assert!(matches!(
            stamp_avc_tag(&aud_overrun, 4, s, &mut out),
            Err(StampError::NalOverrun { .. })
        ));
    }

    #[test]
    fn unstamped_foreign_and_truncated_frames_yield_none() {
        assert_eq!(find_stamp(&avc_tag(true, &[&[0x65, 1, 2]]), 4), None);
        // x264's own version SEI has a different UUID.
        let mut foreign = vec![0x06, 0x05, 32];
        foreign.extend_from_slice(&[0x11; 32]);
        foreign.push(0x80);
        assert_eq!(find_stamp(&avc_tag(true, &[&foreign]), 4), None);
        let mut out = Vec::new();
        stamp_avc_tag(
            &avc_tag(true, &[&[0x65]]),
            4,
            Stamp {
                sent_unix_us: 5,
                sequence: 5,
            },
            &mut out,
        )
        .unwrap();
        for cut in 0..out.len() - 6 {
            assert_eq!(find_stamp(&out[..cut], 4), None, "cut at {cut}");
        }
        assert_eq!(find_stamp(&[], 4), None);
        assert_eq!(
            find_stamp(&[0x17, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], 4),
            None
        );
    }
}
