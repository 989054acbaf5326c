//! Errors from FLV tag encoding and demuxing, each naming the limit or rule broken.

use thiserror::Error;

/// Why FLV bytes were rejected (demux) or could not be written (encode).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FlvError {
    /// The stream does not start with `FLV`.
    #[error("bad FLV signature {found:02x?}, expected \"FLV\"")]
    BadSignature {
        /// The three bytes found instead.
        found: [u8; 3],
    },
    /// Only FLV version 1 exists.
    #[error("unsupported FLV version {version}, expected 1")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The header's DataOffset points inside the 9-byte header.
    #[error("FLV header DataOffset {data_offset} is below the 9-byte minimum")]
    HeaderTooShort {
        /// The DataOffset field.
        data_offset: u32,
    },
    /// The header's DataOffset asks us to skip more than allowed.
    #[error("FLV header DataOffset {data_offset} exceeds the limit {limit}")]
    HeaderTooLarge {
        /// The DataOffset field.
        data_offset: u32,
        /// [`crate::protocol::flv::demux::FlvLimits::max_header_size`].
        limit: u32,
    },
    /// A tag body is larger than the configured (or the 24-bit wire) limit.
    #[error("FLV tag body of {len} bytes exceeds the limit {limit}")]
    TagTooLarge {
        /// The tag's DataSize.
        len: u32,
        /// The limit broken.
        limit: u32,
    },
    /// The tag has the Filter bit set: its body is encrypted, which we cannot relay.
    #[error("FLV tag type {tag_type} is encrypted (Filter bit set)")]
    Encrypted {
        /// The tag type (low 5 bits).
        tag_type: u8,
    },
    /// A tag type other than audio (8), video (9) or script (18) under the `Error` policy.
    #[error("unknown FLV tag type {tag_type}")]
    UnknownTagType {
        /// The tag type (low 5 bits).
        tag_type: u8,
    },
    /// Too many unknown tags in a row under the `Skip` policy: probably not FLV.
    #[error("more than {limit} consecutive unknown FLV tags")]
    TooManyUnknownTags {
        /// [`crate::protocol::flv::demux::FlvLimits::max_consecutive_unknown_tags`].
        limit: u32,
    },
    /// PreviousTagSize disagrees with the tag before it (strict mode only).
    #[error("PreviousTagSize {found} does not match the previous tag's size {expected}")]
    PreviousTagSizeMismatch {
        /// 11 + the previous tag's DataSize (0 before the first tag).
        expected: u32,
        /// The value on the wire.
        found: u32,
    },
    /// The input ended in the middle of a header or tag.
    #[error("FLV stream truncated: {missing} more bytes were expected")]
    Truncated {
        /// Bytes still missing from the element being read.
        missing: u32,
    },
}
