//! Chunk header wire format (RTMP spec 5.3.1): the 1–3 byte basic header, the
//! 0/3/7/11 byte message header, and the optional 4-byte extended timestamp.

use super::error::EncodeError;
use crate::protocol::reader::Reader;
use crate::protocol::writer::Writer;

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
    let mut w = Writer::new(out);
    put_basic_header(&mut w, fmt, csid);
    w.len()
}

/// Appends the basic header for a valid csid to `w`.
pub(crate) fn put_basic_header(w: &mut Writer<'_>, fmt: u8, csid: u32) {
    let fmt_bits = (fmt & 0x03) << 6;
    if csid < 64 {
        w.u8(fmt_bits | csid as u8);
    } else if csid < 64 + 256 {
        w.u8(fmt_bits);
        w.u8((csid - 64) as u8);
    } else {
        w.u8(fmt_bits | 1);
        w.le_u16((csid - 64) as u16);
    }
}

/// Parses a basic header: `Some((fmt, csid, len))`, or `None` when `buf` is too short.
pub(crate) fn parse_basic_header(buf: &[u8]) -> Option<(u8, u32, usize)> {
    let mut r = Reader::new(buf);
    let first = r.u8().ok()?;
    let fmt = first >> 6;
    let csid = match first & 0x3F {
        0 => u32::from(r.u8().ok()?) + 64,
        1 => {
            let lo = u32::from(r.u8().ok()?);
            let hi = u32::from(r.u8().ok()?);
            hi * 256 + lo + 64
        }
        id => u32::from(id),
    };
    Some((fmt, csid, r.consumed()))
}

/// Message header length for `fmt` (its two bits: 0..=3).
pub(crate) fn message_header_len(fmt: u8) -> usize {
    match fmt {
        0 => 11,
        1 => 7,
        2 => 3,
        _ => 0,
    }
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
    let mut w = Writer::new(out);
    put_basic_header(&mut w, h.fmt, h.csid);
    if h.fmt <= 2 {
        w.be_u24(h.time.min(EXTENDED_TIMESTAMP_MARKER));
    }
    if h.fmt <= 1 {
        w.be_u24(h.len);
        w.u8(h.type_id);
    }
    if h.fmt == 0 {
        w.le_u32(h.stream_id);
    }
    if h.extended() {
        w.be_u32(h.time);
    }
    w.len()
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
