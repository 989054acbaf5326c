//! Chunk header wire format (RTMP spec 5.3.1): the 1–3 byte basic header, the
//! 0/3/7/11 byte message header, and the optional 4-byte extended timestamp.

use super::error::EncodeError;

/// Smallest chunk stream id a message may use (0 and 1 select the wider basic headers).
pub const MIN_CSID: u32 = 2;
/// Largest chunk stream id (3-byte basic header: 64 + 65535).
pub const MAX_CSID: u32 = 65599;
/// Chunk size both sides start with until a Set Chunk Size.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// The timestamp field value saying "the real value is in the extended field".
pub const EXTENDED_TIMESTAMP_MARKER: u32 = 0x00FF_FFFF;
/// Longest possible chunk header: 3 (basic) + 11 (fmt 0) + 4 (extended timestamp).
pub const MAX_CHUNK_HEADER_LEN: usize = 18;
/// Largest message the 24-bit length field can carry.
pub const MAX_MESSAGE_LEN: u32 = 0x00FF_FFFF;

/// Message header length for each fmt (0..=3).
pub(crate) const MESSAGE_HEADER_LEN: [usize; 4] = [11, 7, 3, 0];

/// Fails unless `csid` can be written in a basic header.
pub(crate) fn check_csid(csid: u32) -> Result<(), EncodeError> {
    if (MIN_CSID..=MAX_CSID).contains(&csid) {
        Ok(())
    } else {
        Err(EncodeError::InvalidCsid { csid })
    }
}

/// Writes the basic header for a valid csid (see [`check_csid`]) at the start of
/// `out`, returning its length. The narrowest form is used, as the spec requires.
pub(crate) fn write_basic_header(
    fmt: u8,
    csid: u32,
    out: &mut [u8; MAX_CHUNK_HEADER_LEN],
) -> usize {
    let fmt_bits = (fmt & 0x03) << 6;
    if csid < 64 {
        out[0] = fmt_bits | csid as u8;
        1
    } else if csid < 64 + 256 {
        out[0] = fmt_bits;
        out[1] = (csid - 64) as u8;
        2
    } else {
        let id = (csid - 64) as u16;
        out[0] = fmt_bits | 1;
        out[1..3].copy_from_slice(&id.to_le_bytes());
        3
    }
}

/// Parses a basic header: `Some((fmt, csid, len))`, or `None` when `buf` is too short.
pub(crate) fn parse_basic_header(buf: &[u8]) -> Option<(u8, u32, usize)> {
    let first = *buf.first()?;
    let fmt = first >> 6;
    match first & 0x3F {
        0 => Some((fmt, u32::from(*buf.get(1)?) + 64, 2)),
        1 => {
            let lo = u32::from(*buf.get(1)?);
            let hi = u32::from(*buf.get(2)?);
            Some((fmt, hi * 256 + lo + 64, 3))
        }
        id => Some((fmt, u32::from(id), 1)),
    }
}

/// Reads a big-endian 24-bit field.
pub(crate) fn read_u24(b: &[u8]) -> Option<u32> {
    let b = b.get(..3)?;
    Some(u32::from_be_bytes([0, b[0], b[1], b[2]]))
}

/// Reads a big-endian 32-bit field.
pub(crate) fn read_u32(b: &[u8]) -> Option<u32> {
    let b: [u8; 4] = b.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn put_u24(out: &mut [u8], v: u32) {
    out.copy_from_slice(&v.to_be_bytes()[1..4]);
}

/// The fields of one chunk header as the encoder chooses them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeaderFields {
    /// 0..=3.
    pub fmt: u8,
    /// A valid csid.
    pub csid: u32,
    /// Absolute timestamp (fmt 0) or delta (fmt 1/2/3).
    pub time: u32,
    /// Payload length (fmt 0/1).
    pub len: u32,
    /// Message type id (fmt 0/1).
    pub type_id: u8,
    /// Message stream id (fmt 0).
    pub stream_id: u32,
}

impl HeaderFields {
    /// Whether this header (and the fmt-3 continuations after it) carry the
    /// extended timestamp field.
    pub fn extended(&self) -> bool {
        self.time >= EXTENDED_TIMESTAMP_MARKER
    }
}

/// Writes a full chunk header; the csid must already be valid. For fmt 3,
/// the extended field is written when `h.time` needs it (the sender's header
/// this chunk repeats had one).
pub(crate) fn write_header(h: &HeaderFields, out: &mut [u8; MAX_CHUNK_HEADER_LEN]) -> usize {
    let mut n = write_basic_header(h.fmt, h.csid, out);
    let ts_field = h.time.min(EXTENDED_TIMESTAMP_MARKER);
    if h.fmt <= 2 {
        put_u24(&mut out[n..n + 3], ts_field);
        n += 3;
    }
    if h.fmt <= 1 {
        put_u24(&mut out[n..n + 3], h.len);
        out[n + 3] = h.type_id;
        n += 4;
    }
    if h.fmt == 0 {
        out[n..n + 4].copy_from_slice(&h.stream_id.to_le_bytes());
        n += 4;
    }
    if h.extended() {
        out[n..n + 4].copy_from_slice(&h.time.to_be_bytes());
        n += 4;
    }
    n
}

/// Writes the fmt 0 header that starts a message whose body is a
/// [`SharedChunks`](super::SharedChunks), returning its length.
///
/// The header carries the viewer's own `timestamp` and message `stream_id`; the
/// extended timestamp field is added when `timestamp >= 0xFFFFFF`. In that case
/// the shared body cannot be used (its continuation headers lack the field), see
/// [`SharedChunks::usable_for`](super::SharedChunks::usable_for).
pub fn write_first_header(
    csid: u32,
    timestamp: u32,
    len: u32,
    type_id: u8,
    stream_id: u32,
    out: &mut [u8; MAX_CHUNK_HEADER_LEN],
) -> Result<usize, EncodeError> {
    check_csid(csid)?;
    if len > MAX_MESSAGE_LEN {
        return Err(EncodeError::PayloadTooLarge {
            len: len as usize,
            limit: MAX_MESSAGE_LEN as usize,
        });
    }
    let h = HeaderFields {
        fmt: 0,
        csid,
        time: timestamp,
        len,
        type_id,
        stream_id,
    };
    Ok(write_header(&h, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_widths_round_trip() {
        for (csid, width) in [(2, 1), (63, 1), (64, 2), (319, 2), (320, 3), (65599, 3)] {
            let mut buf = [0u8; MAX_CHUNK_HEADER_LEN];
            let n = write_basic_header(3, csid, &mut buf);
            assert_eq!(n, width, "csid {csid}");
            assert_eq!(parse_basic_header(&buf[..n]), Some((3, csid, width)));
            assert_eq!(parse_basic_header(&buf[..n - 1]), None);
        }
    }

    #[test]
    fn two_byte_form_is_csid_0_and_three_byte_form_is_csid_1() {
        assert_eq!(parse_basic_header(&[0x00, 0x05]), Some((0, 69, 2)));
        assert_eq!(
            parse_basic_header(&[0xC1, 0x01, 0x02]),
            Some((3, 64 + 0x0201, 3))
        );
    }

    #[test]
    fn first_header_uses_extended_timestamp_when_needed() {
        let mut buf = [0u8; MAX_CHUNK_HEADER_LEN];
        let n = write_first_header(6, 1000, 300, 9, 1, &mut buf).unwrap();
        assert_eq!(&buf[..n], &[6, 0, 3, 0xE8, 0, 1, 0x2C, 9, 1, 0, 0, 0]);
        let n = write_first_header(6, 0x0100_0000, 300, 9, 1, &mut buf).unwrap();
        assert_eq!(n, 16);
        assert_eq!(&buf[1..4], &[0xFF, 0xFF, 0xFF]);
        assert_eq!(&buf[12..16], &[1, 0, 0, 0]);
    }

    #[test]
    fn first_header_rejects_bad_csid_and_length() {
        let mut buf = [0u8; MAX_CHUNK_HEADER_LEN];
        assert_eq!(
            write_first_header(1, 0, 1, 9, 1, &mut buf),
            Err(EncodeError::InvalidCsid { csid: 1 })
        );
        assert!(matches!(
            write_first_header(3, 0, 0x0100_0000, 9, 1, &mut buf),
            Err(EncodeError::PayloadTooLarge { .. })
        ));
    }
}
