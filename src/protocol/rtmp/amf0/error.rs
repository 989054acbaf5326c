//! Why an AMF0 body was refused.

use thiserror::Error;

/// An AMF0 decode or encode failure. Each variant names the limit or rule broken.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Amf0Error {
    /// The input ended inside a value.
    #[error("AMF0 input truncated: needed {needed} more bytes at offset {offset}")]
    Truncated {
        /// Offset where the missing bytes would start.
        offset: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// Objects/arrays nested deeper than allowed.
    #[error("AMF0 nesting deeper than {limit}")]
    DepthExceeded {
        /// The configured maximum depth.
        limit: usize,
    },
    /// More values (including nested ones and object keys' values) than allowed.
    #[error("AMF0 body holds more than {limit} values")]
    TooManyValues {
        /// The configured maximum value count.
        limit: usize,
    },
    /// A string or key longer than allowed.
    #[error("AMF0 string of {len} bytes exceeds the limit of {limit}")]
    StringTooLong {
        /// Declared length.
        len: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// The whole input is larger than the decoder accepts.
    #[error("AMF0 input of {len} bytes exceeds the limit of {limit}")]
    InputTooLarge {
        /// Input length.
        len: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// A strict array declares more elements than the limit or the input allow.
    #[error("AMF0 strict array declares {count} elements, limit {limit}")]
    ArrayTooLong {
        /// Declared element count.
        count: u32,
        /// The effective maximum.
        limit: usize,
    },
    /// A string is not valid UTF-8.
    #[error("AMF0 string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Offset of the string's first byte.
        offset: usize,
    },
    /// A reference (0x07): ringcast keeps no reference table, so it cannot resolve one.
    #[error("AMF0 references are not supported (offset {offset})")]
    ReferenceNotSupported {
        /// Offset of the marker.
        offset: usize,
    },
    /// A switch to AMF3 (0x11) where only AMF0 is accepted.
    #[error("AMF3 values are not supported (offset {offset})")]
    Amf3NotSupported {
        /// Offset of the marker.
        offset: usize,
    },
    /// A marker that is reserved or unsupported (movie clip, record set, XML, typed
    /// object, "unsupported").
    #[error("AMF0 marker {marker:#04x} is not supported (offset {offset})")]
    UnsupportedMarker {
        /// The marker byte.
        marker: u8,
        /// Offset of the marker.
        offset: usize,
    },
    /// A byte that is no AMF0 marker at all.
    #[error("unknown AMF0 marker {marker:#04x} at offset {offset}")]
    UnknownMarker {
        /// The marker byte.
        marker: u8,
        /// Offset of the marker.
        offset: usize,
    },
    /// An object-end marker where a value was expected.
    #[error("unexpected AMF0 object end at offset {offset}")]
    UnexpectedObjectEnd {
        /// Offset of the marker.
        offset: usize,
    },
    /// Encoding: an object key longer than the 16-bit length field allows.
    #[error("AMF0 key of {len} bytes exceeds the limit of {limit}")]
    KeyTooLong {
        /// Key length.
        len: usize,
        /// 65535.
        limit: usize,
    },
    /// Encoding: a string or array longer than the 32-bit length field allows.
    #[error("AMF0 value of {len} bytes/elements exceeds the limit of {limit}")]
    ValueTooLong {
        /// Length.
        len: usize,
        /// u32::MAX.
        limit: usize,
    },
}
