//! FLV file header and tag header: the fixed-size framing around tag bodies.
//!
//! Layout of an FLV stream (FLV spec v10.1, annex E):
//! `header(9) | PreviousTagSize0(4) | tag1 header(11) | body1 | PreviousTagSize1(4) | ...`
//! where PreviousTagSizeN = 11 + DataSize of tag N. HTTP-FLV egress pairs each tag
//! header with the PreviousTagSize *before* it (see [`write_tag_prefix`]) so the
//! per-viewer bytes form one contiguous 15-byte block ahead of the shared body.

use bytes::{BufMut, BytesMut};

use super::error::FlvError;
use super::frame::{Frame, FrameKind};

/// Size of the FLV file header (signature, version, flags, DataOffset).
pub const FILE_HEADER_LEN: usize = 9;
/// Size of an FLV tag header.
pub const TAG_HEADER_LEN: usize = 11;
/// Size of a PreviousTagSize field.
pub const PREV_TAG_SIZE_LEN: usize = 4;
/// Size of the per-viewer block written by [`write_tag_prefix`].
pub const TAG_PREFIX_LEN: usize = PREV_TAG_SIZE_LEN + TAG_HEADER_LEN;
/// Size of the block written by [`write_file_header`]: header + PreviousTagSize0.
pub const FILE_HEADER_WITH_PTS0_LEN: usize = FILE_HEADER_LEN + PREV_TAG_SIZE_LEN;
/// Largest tag body the 24-bit DataSize field can describe.
pub const MAX_TAG_DATA_SIZE: u32 = 0x00FF_FFFF;

const SIGNATURE: [u8; 3] = *b"FLV";
const VERSION: u8 = 1;
const FLAG_AUDIO: u8 = 0x04;
const FLAG_VIDEO: u8 = 0x01;
/// Filter bit of the tag type byte: the body is encrypted / pre-processed.
const FILTER_BIT: u8 = 0x20;
const TAG_TYPE_MASK: u8 = 0x1F;

/// The FLV file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// TypeFlagsAudio: the file announces audio tags.
    pub has_audio: bool,
    /// TypeFlagsVideo: the file announces video tags.
    pub has_video: bool,
    /// DataOffset: header length in bytes (9 for version 1; larger values are
    /// reserved for future versions and the extra bytes are skipped).
    pub data_offset: u32,
}

impl FileHeader {
    /// Decodes and validates the 9-byte header.
    ///
    /// The flag bits are taken as advisory: many encoders set them wrongly, so the
    /// demuxer never drops tags because a flag is clear.
    pub fn decode(b: &[u8; FILE_HEADER_LEN]) -> Result<Self, FlvError> {
        let [s0, s1, s2, version, flags, o0, o1, o2, o3] = *b;
        if [s0, s1, s2] != SIGNATURE {
            return Err(FlvError::BadSignature {
                found: [s0, s1, s2],
            });
        }
        if version != VERSION {
            return Err(FlvError::UnsupportedVersion { version });
        }
        let data_offset = u32::from_be_bytes([o0, o1, o2, o3]);
        if data_offset < FILE_HEADER_LEN as u32 {
            return Err(FlvError::HeaderTooShort { data_offset });
        }
        Ok(FileHeader {
            has_audio: flags & FLAG_AUDIO != 0,
            has_video: flags & FLAG_VIDEO != 0,
            data_offset,
        })
    }

    /// Encodes the header (always DataOffset 9, since we write version 1).
    pub fn encode(&self, out: &mut [u8; FILE_HEADER_LEN]) {
        let flags = if self.has_audio { FLAG_AUDIO } else { 0 }
            | if self.has_video { FLAG_VIDEO } else { 0 };
        let [o0, o1, o2, o3] = (FILE_HEADER_LEN as u32).to_be_bytes();
        *out = [
            SIGNATURE[0],
            SIGNATURE[1],
            SIGNATURE[2],
            VERSION,
            flags,
            o0,
            o1,
            o2,
            o3,
        ];
    }
}

/// An FLV tag header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagHeader {
    /// TagType (low 5 bits of the first byte): 8 audio, 9 video, 18 script.
    pub tag_type: u8,
    /// Filter bit: the body is encrypted.
    pub filter: bool,
    /// DataSize: body length in bytes (24-bit).
    pub data_size: u32,
    /// Timestamp in ms: 24 low bits plus the TimestampExtended high byte.
    pub timestamp: u32,
    /// StreamID: always 0 in valid files; kept only for diagnostics.
    pub stream_id: u32,
}

impl TagHeader {
    /// Decodes an 11-byte tag header. Never fails: every bit pattern is a header;
    /// the demuxer decides what to accept.
    pub fn decode(b: &[u8; TAG_HEADER_LEN]) -> Self {
        let [t, s0, s1, s2, ts0, ts1, ts2, ts_ext, id0, id1, id2] = *b;
        TagHeader {
            tag_type: t & TAG_TYPE_MASK,
            filter: t & FILTER_BIT != 0,
            data_size: u32::from_be_bytes([0, s0, s1, s2]),
            timestamp: u32::from_be_bytes([ts_ext, ts0, ts1, ts2]),
            stream_id: u32::from_be_bytes([0, id0, id1, id2]),
        }
    }

    /// Encodes the header; fails if `data_size` does not fit 24 bits.
    /// The stream id is written as 0, as the format requires.
    pub fn encode(&self, out: &mut [u8; TAG_HEADER_LEN]) -> Result<(), FlvError> {
        if self.data_size > MAX_TAG_DATA_SIZE {
            return Err(FlvError::TagTooLarge {
                len: self.data_size,
                limit: MAX_TAG_DATA_SIZE,
            });
        }
        let t = (self.tag_type & TAG_TYPE_MASK) | if self.filter { FILTER_BIT } else { 0 };
        let [_, s0, s1, s2] = self.data_size.to_be_bytes();
        let [ts_ext, ts0, ts1, ts2] = self.timestamp.to_be_bytes();
        *out = [t, s0, s1, s2, ts0, ts1, ts2, ts_ext, 0, 0, 0];
        Ok(())
    }
}

/// The PreviousTagSize value that follows a tag with a `body_len`-byte body.
pub const fn prev_tag_size_for(body_len: u32) -> u32 {
    body_len.saturating_add(TAG_HEADER_LEN as u32)
}

/// Writes the per-viewer bytes that precede a shared tag body on an HTTP-FLV
/// connection: `[PreviousTagSize (4) | tag header (11)]`.
///
/// `prev_tag_size` is the size of the tag this viewer was sent before (use
/// [`prev_tag_size_for`]), or 0 right after a 9-byte header. If the connection
/// started with the 13 bytes of [`write_file_header`] (which end in
/// PreviousTagSize0), send only `out[PREV_TAG_SIZE_LEN..]` for the first tag.
/// Fails only if `body_len` does not fit the 24-bit DataSize.
#[inline]
pub fn write_tag_prefix(
    prev_tag_size: u32,
    kind: FrameKind,
    timestamp: u32,
    body_len: u32,
    out: &mut [u8; TAG_PREFIX_LEN],
) -> Result<(), FlvError> {
    if body_len > MAX_TAG_DATA_SIZE {
        return Err(FlvError::TagTooLarge {
            len: body_len,
            limit: MAX_TAG_DATA_SIZE,
        });
    }
    let [p0, p1, p2, p3] = prev_tag_size.to_be_bytes();
    let [_, s0, s1, s2] = body_len.to_be_bytes();
    let [ts_ext, ts0, ts1, ts2] = timestamp.to_be_bytes();
    *out = [
        p0,
        p1,
        p2,
        p3,
        kind.tag_type(),
        s0,
        s1,
        s2,
        ts0,
        ts1,
        ts2,
        ts_ext,
        0,
        0,
        0,
    ];
    Ok(())
}

/// Writes the FLV file header followed by PreviousTagSize0 (13 bytes): what an
/// HTTP-FLV response body or an FLV file starts with.
pub fn write_file_header(
    has_audio: bool,
    has_video: bool,
    out: &mut [u8; FILE_HEADER_WITH_PTS0_LEN],
) {
    let mut header = [0u8; FILE_HEADER_LEN];
    FileHeader {
        has_audio,
        has_video,
        data_offset: FILE_HEADER_LEN as u32,
    }
    .encode(&mut header);
    let (head, pts0) = out.split_at_mut(FILE_HEADER_LEN);
    head.copy_from_slice(&header);
    pts0.copy_from_slice(&[0; PREV_TAG_SIZE_LEN]);
}

/// Appends one whole tag in file order: `tag header | body | PreviousTagSize`.
///
/// Following the output of [`write_file_header`], repeated calls produce a
/// valid FLV file. Meant for tools and tests; the server uses [`write_tag_prefix`].
pub fn encode_tag(frame: &Frame, out: &mut BytesMut) -> Result<(), FlvError> {
    let body_len = u32::try_from(frame.payload.len()).unwrap_or(u32::MAX);
    let header = TagHeader {
        tag_type: frame.kind.tag_type(),
        filter: false,
        data_size: body_len,
        timestamp: frame.timestamp,
        stream_id: 0,
    };
    let mut hdr = [0u8; TAG_HEADER_LEN];
    header.encode(&mut hdr)?;
    out.reserve(TAG_HEADER_LEN + frame.payload.len() + PREV_TAG_SIZE_LEN);
    out.put_slice(&hdr);
    out.put_slice(&frame.payload);
    out.put_u32(prev_tag_size_for(body_len));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn file_header_round_trip_and_bytes() {
        let mut out = [0u8; FILE_HEADER_WITH_PTS0_LEN];
        write_file_header(true, true, &mut out);
        assert_eq!(out, [b'F', b'L', b'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0]);
        let mut head = [0u8; FILE_HEADER_LEN];
        head.copy_from_slice(&out[..FILE_HEADER_LEN]);
        let h = FileHeader::decode(&head).unwrap();
        assert_eq!(
            h,
            FileHeader {
                has_audio: true,
                has_video: true,
                data_offset: 9
            }
        );
        write_file_header(false, true, &mut out);
        assert_eq!(out[4], 1);
        write_file_header(true, false, &mut out);
        assert_eq!(out[4], 4);
    }

    #[test]
    fn file_header_rejects_bad_input() {
        assert_eq!(
            FileHeader::decode(b"FLX\x01\x05\0\0\0\x09"),
            Err(FlvError::BadSignature { found: *b"FLX" })
        );
        assert_eq!(
            FileHeader::decode(b"FLV\x02\x05\0\0\0\x09"),
            Err(FlvError::UnsupportedVersion { version: 2 })
        );
        assert_eq!(
            FileHeader::decode(b"FLV\x01\x05\0\0\0\x08"),
            Err(FlvError::HeaderTooShort { data_offset: 8 })
        );
    }

    #[test]
    fn tag_header_uses_extended_timestamp_as_high_byte() {
        let h = TagHeader {
            tag_type: 9,
            filter: false,
            data_size: 0x01_0203,
            timestamp: 0x8812_3456,
            stream_id: 0,
        };
        let mut b = [0u8; TAG_HEADER_LEN];
        h.encode(&mut b).unwrap();
        assert_eq!(b, [9, 0x01, 0x02, 0x03, 0x12, 0x34, 0x56, 0x88, 0, 0, 0]);
        assert_eq!(TagHeader::decode(&b), h);
    }

    #[test]
    fn tag_header_decodes_filter_bit_and_masks_reserved_bits() {
        let h = TagHeader::decode(&[0xE8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(h.tag_type, 8);
        assert!(h.filter);
        assert_eq!(h.stream_id, 7);
    }

    #[test]
    fn tag_header_rejects_oversized_body() {
        let h = TagHeader {
            tag_type: 9,
            filter: false,
            data_size: 0x0100_0000,
            timestamp: 0,
            stream_id: 0,
        };
        assert_eq!(
            h.encode(&mut [0; TAG_HEADER_LEN]),
            Err(FlvError::TagTooLarge {
                len: 0x0100_0000,
                limit: MAX_TAG_DATA_SIZE
            })
        );
    }

    #[test]
    fn tag_prefix_layout() {
        let mut p = [0u8; TAG_PREFIX_LEN];
        write_tag_prefix(
            0x0000_0123,
            FrameKind::Audio,
            0x0102_0304,
            0x00_0506,
            &mut p,
        )
        .unwrap();
        assert_eq!(p, [0, 0, 1, 0x23, 8, 0, 5, 6, 2, 3, 4, 1, 0, 0, 0]);
        assert!(write_tag_prefix(0, FrameKind::Video, 0, MAX_TAG_DATA_SIZE + 1, &mut p).is_err());
    }

    #[test]
    fn encode_tag_matches_prefix_form() {
        let frame = Frame::new(
            FrameKind::Video,
            40,
            Bytes::from_static(&[0x17, 1, 0, 0, 0, 0xAA]),
        );
        let mut file = BytesMut::new();
        encode_tag(&frame, &mut file).unwrap();
        assert_eq!(file.len(), TAG_HEADER_LEN + 6 + PREV_TAG_SIZE_LEN);
        assert_eq!(&file[file.len() - 4..], &17u32.to_be_bytes());

        // The prefix form of the same tag, preceded by PreviousTagSize 0.
        let mut p = [0u8; TAG_PREFIX_LEN];
        write_tag_prefix(0, FrameKind::Video, 40, 6, &mut p).unwrap();
        assert_eq!(&p[PREV_TAG_SIZE_LEN..], &file[..TAG_HEADER_LEN]);
    }
}
