//! AMF0: the value encoding of RTMP command (type 20) and data (type 18) messages.
//!
//! [`Amf0Decoder`] reads values from a byte slice under explicit [`Amf0Limits`]
//! (nesting depth, value count, string length, input size) and reports every
//! violation as a typed [`Amf0Error`]. [`Amf0Value::encode`] and the `write_*`
//! helpers in [`encode`] write into a `BytesMut`.
//!
//! Long strings (marker 0x0C) decode into [`Amf0Value::String`]; the encoder picks
//! the short or long form from the length, so both round-trip.

pub mod decode;
pub mod encode;
mod error;
mod value;

pub use decode::{Amf0Decoder, Amf0Limits};
pub use error::Amf0Error;
pub use value::Amf0Value;

/// AMF0 type markers (AMF0 spec, section 2.1).
pub mod marker {
    /// IEEE-754 double, big endian.
    pub const NUMBER: u8 = 0x00;
    /// One byte, 0 = false.
    pub const BOOLEAN: u8 = 0x01;
    /// UTF-8 with a u16 length.
    pub const STRING: u8 = 0x02;
    /// Anonymous object: key/value pairs up to an object end.
    pub const OBJECT: u8 = 0x03;
    /// Reserved, not supported by Flash Player.
    pub const MOVIECLIP: u8 = 0x04;
    /// Null.
    pub const NULL: u8 = 0x05;
    /// Undefined.
    pub const UNDEFINED: u8 = 0x06;
    /// Reference to an earlier complex value (u16 index).
    pub const REFERENCE: u8 = 0x07;
    /// Associative array: u32 count hint, then pairs up to an object end.
    pub const ECMA_ARRAY: u8 = 0x08;
    /// Terminates an object's or ECMA array's properties (after an empty key).
    pub const OBJECT_END: u8 = 0x09;
    /// Dense array: u32 count, then that many values.
    pub const STRICT_ARRAY: u8 = 0x0A;
    /// Date: f64 ms since the epoch, then an i16 time zone (reserved, 0).
    pub const DATE: u8 = 0x0B;
    /// UTF-8 with a u32 length.
    pub const LONG_STRING: u8 = 0x0C;
    /// The "unsupported" marker.
    pub const UNSUPPORTED: u8 = 0x0D;
    /// Reserved, not supported by Flash Player.
    pub const RECORDSET: u8 = 0x0E;
    /// XML document as a long string.
    pub const XML_DOCUMENT: u8 = 0x0F;
    /// Object with a class name.
    pub const TYPED_OBJECT: u8 = 0x10;
    /// Switch to AMF3 for the following value.
    pub const AVMPLUS_OBJECT: u8 = 0x11;
}
