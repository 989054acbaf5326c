//! Bounded AMF0 decoding from a byte slice.

use super::{marker, Amf0Error, Amf0Value};
use crate::protocol::reader::{Reader, ShortInput};

/// Bounds the work and memory one AMF0 body may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amf0Limits {
    /// Maximum nesting of objects / arrays (a top-level object is depth 1).
    pub max_depth: usize,
    /// Maximum number of values decoded by one decoder, nested ones included.
    pub max_values: usize,
    /// Maximum length in bytes of a string, long string or object key.
    pub max_string_len: usize,
    /// Maximum size of the whole input.
    pub max_input_len: usize,
}

impl Default for Amf0Limits {
    fn default() -> Self {
        Amf0Limits {
            max_depth: 32,
            max_values: 16 * 1024,
            max_string_len: 64 * 1024,
            max_input_len: 1024 * 1024,
        }
    }
}

/// Reads consecutive AMF0 values from a slice.
///
/// Counters (values decoded) accumulate across calls, so the limits apply to the
/// whole body, e.g. a command name followed by its arguments.
#[derive(Debug)]
pub struct Amf0Decoder<'a> {
    input: Reader<'a>,
    input_len: usize,
    limits: Amf0Limits,
    values: usize,
}

impl<'a> Amf0Decoder<'a> {
    /// A decoder positioned at the start of `input`.
    pub fn new(input: &'a [u8], limits: Amf0Limits) -> Self {
        Amf0Decoder {
            input: Reader::new(input),
            input_len: input.len(),
            limits,
            values: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.input.consumed()
    }

    /// The bytes not consumed yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.input.rest()
    }

    /// True once every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// Decodes the next value.
    pub fn decode(&mut self) -> Result<Amf0Value, Amf0Error> {
        if self.input_len > self.limits.max_input_len {
            return Err(Amf0Error::InputTooLarge {
                len: self.input_len,
                limit: self.limits.max_input_len,
            });
        }
        self.value(0)
    }

    /// Decodes values until the input is exhausted.
    pub fn decode_all(&mut self) -> Result<Vec<Amf0Value>, Amf0Error> {
        let mut out = Vec::new();
        while !self.is_empty() {
            out.push(self.decode()?);
        }
        Ok(out)
    }

    /// A short read as the typed error: where the bytes would start and how
    /// many were missing.
    fn truncated(&self, short: ShortInput) -> Amf0Error {
        Amf0Error::Truncated {
            offset: self.input.consumed(),
            needed: short.needed.saturating_sub(short.available),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        self.input.take(n).map_err(|e| self.truncated(e))
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        self.input.u8().map_err(|e| self.truncated(e))
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        self.input.be_u16().map_err(|e| self.truncated(e))
    }

    fn i16(&mut self) -> Result<i16, Amf0Error> {
        self.input.be_i16().map_err(|e| self.truncated(e))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        self.input.be_u32().map_err(|e| self.truncated(e))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        self.input.be_f64().map_err(|e| self.truncated(e))
    }

    fn utf8(&mut self, len: usize) -> Result<String, Amf0Error> {
        if len > self.limits.max_string_len {
            return Err(Amf0Error::StringTooLong {
                len,
                limit: self.limits.max_string_len,
            });
        }
        let offset = self.position();
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| Amf0Error::InvalidUtf8 { offset })
    }

    fn count_value(&mut self) -> Result<(), Amf0Error> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(Amf0Error::TooManyValues {
                limit: self.limits.max_values,
            });
        }
        Ok(())
    }

    fn enter(&self, depth: usize) -> Result<usize, Amf0Error> {
        let inner = depth + 1;
        if inner > self.limits.max_depth {
            return Err(Amf0Error::DepthExceeded {
                limit: self.limits.max_depth,
            });
        }
        Ok(inner)
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, Amf0Error> {
        self.count_value()?;
        let offset = self.position();
        let m = self.u8()?;
        Ok(match m {
            marker::NUMBER => Amf0Value::Number(self.f64()?),
            marker::BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            marker::STRING => {
                let len = self.u16()? as usize;
                Amf0Value::String(self.utf8(len)?)
            }
            marker::LONG_STRING => {
                let len = self.u32()? as usize;
                Amf0Value::String(self.utf8(len)?)
            }
            marker::OBJECT => {
                let inner = self.enter(depth)?;
                Amf0Value::Object(self.properties(inner)?)
            }
            marker::ECMA_ARRAY => {
                let inner = self.enter(depth)?;
                // The count is only a hint (encoders get it wrong); the object end is
                // what terminates the properties.
                let _count_hint = self.u32()?;
                Amf0Value::EcmaArray(self.properties(inner)?)
            }
            marker::STRICT_ARRAY => {
                let inner = self.enter(depth)?;
                let count = self.u32()?;
                // Every element takes at least one byte, so the remaining input bounds
                // the count before anything is allocated for it.
                let limit = self
                    .input
                    .remaining()
                    .min(self.limits.max_values.saturating_sub(self.values));
                if count as usize > limit {
                    return Err(Amf0Error::ArrayTooLong { count, limit });
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(inner)?);
                }
                Amf0Value::StrictArray(items)
            }
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED => Amf0Value::Undefined,
            marker::DATE => {
                let ms = self.f64()?;
                let tz = self.i16()?;
                Amf0Value::Date { ms, tz }
            }
            marker::OBJECT_END => return Err(Amf0Error::UnexpectedObjectEnd { offset }),
            marker::REFERENCE => return Err(Amf0Error::ReferenceNotSupported { offset }),
            marker::AVMPLUS_OBJECT => return Err(Amf0Error::Amf3NotSupported { offset }),
            marker::MOVIECLIP
            | marker::RECORDSET
            | marker::UNSUPPORTED
            | marker::XML_DOCUMENT
            | marker::TYPED_OBJECT => {
                return Err(Amf0Error::UnsupportedMarker { marker: m, offset })
            }
            other => {
                return Err(Amf0Error::UnknownMarker {
                    marker: other,
                    offset,
                })
            }
        })
    }

    /// Reads `key, value` pairs up to the empty key + object-end marker.
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            let key_len = self.u16()? as usize;
            if key_len == 0 && self.input.peek() == Some(marker::OBJECT_END) {
                self.input.take_up_to(1);
                return Ok(props);
            }
            let key = self.utf8(key_len)?;
            let value = self.value(depth)?;
            props.push((key, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_one(bytes: &[u8]) -> Result<Amf0Value, Amf0Error> {
        Amf0Decoder::new(bytes, Amf0Limits::default()).decode()
    }

    #[test]
    fn decodes_scalars() {
        let mut b = vec![0x00];
        b.extend_from_slice(&1.5f64.to_be_bytes());
        assert_eq!(decode_one(&b), Ok(Amf0Value::Number(1.5)));
        assert_eq!(decode_one(&[0x01, 0x00]), Ok(Amf0Value::Boolean(false)));
        assert_eq!(decode_one(&[0x01, 0x02]), Ok(Amf0Value::Boolean(true)));
        assert_eq!(
            decode_one(&[0x02, 0x00, 0x02, b'h', b'i']),
            Ok(Amf0Value::string("hi"))
        );
        assert_eq!(
            decode_one(&[0x0C, 0, 0, 0, 1, b'x']),
            Ok(Amf0Value::string("x"))
        );
        assert_eq!(decode_one(&[0x05]), Ok(Amf0Value::Null));
        assert_eq!(decode_one(&[0x06]), Ok(Amf0Value::Undefined));
        let mut d = vec![0x0B];
        d.extend_from_slice(&1000.0f64.to_be_bytes());
        d.extend_from_slice(&(-60i16).to_be_bytes());
        assert_eq!(
            decode_one(&d),
            Ok(Amf0Value::Date {
                ms: 1000.0,
                tz: -60
            })
        );
    }

    #[test]
    fn decodes_object_with_properties_in_wire_order() {
        let b = [
            0x03, 0x00, 0x01, b'b', 0x05, 0x00, 0x01, b'a', 0x01, 0x01, 0x00, 0x00, 0x09,
        ];
        let v = decode_one(&b).unwrap();
        assert_eq!(
            v,
            Amf0Value::object([("b", Amf0Value::Null), ("a", Amf0Value::Boolean(true))])
        );
    }

    #[test]
    fn ecma_array_count_is_only_a_hint() {
        // Declares 7 entries but holds one.
        let b = [0x08, 0, 0, 0, 7, 0x00, 0x01, b'k', 0x05, 0x00, 0x00, 0x09];
        assert_eq!(
            decode_one(&b),
            Ok(Amf0Value::EcmaArray(vec![("k".into(), Amf0Value::Null)]))
        );
    }

    #[test]
    fn empty_key_with_a_value_is_a_property_not_the_end() {
        let b = [0x03, 0x00, 0x00, 0x05, 0x00, 0x00, 0x09];
        assert_eq!(
            decode_one(&b),
            Ok(Amf0Value::object([("", Amf0Value::Null)]))
        );
    }

    #[test]
    fn truncated_object_is_a_typed_error() {
        let b = [
            0x03, 0x00, 0x03, b'a', b'p', b'p', 0x02, 0x00, 0x04, b'l', b'i',
        ];
        assert!(matches!(decode_one(&b), Err(Amf0Error::Truncated { .. })));
        // Missing the object end entirely.
        let b = [0x03, 0x00, 0x01, b'a', 0x05];
        assert!(matches!(
            decode_one(&b),
            Err(Amf0Error::Truncated {
                offset: 5,
                needed: 2
            })
        ));
        assert!(matches!(
            decode_one(&[]),
            Err(Amf0Error::Truncated {
                offset: 0,
                needed: 1
            })
        ));
        assert!(matches!(
            decode_one(&[0x00, 1, 2]),
            Err(Amf0Error::Truncated { .. })
        ));
    }

    #[test]
    fn nesting_depth_1000_is_rejected_with_the_limit() {
        let mut b = Vec::new();
        for _ in 0..1000 {
            b.extend_from_slice(&[0x03, 0x00, 0x01, b'x']);
        }
        b.push(0x05);
        for _ in 0..1000 {
            b.extend_from_slice(&[0x00, 0x00, 0x09]);
        }
        assert_eq!(decode_one(&b), Err(Amf0Error::DepthExceeded { limit: 32 }));
        // Strict arrays nest too.
        let mut b = Vec::new();
        for _ in 0..1000 {
            b.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
        }
        b.push(0x05);
        assert_eq!(decode_one(&b), Err(Amf0Error::DepthExceeded { limit: 32 }));
    }

    #[test]
    fn depth_exactly_at_the_limit_is_accepted() {
        let limits = Amf0Limits {
            max_depth: 3,
            ..Amf0Limits::default()
        };
        let mut b = Vec::new();
        for _ in 0..3 {
            b.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
        }
        b.push(0x05);
        assert!(Amf0Decoder::new(&b, limits).decode().is_ok());
        let mut b = [0x0A, 0, 0, 0, 1].repeat(4);
        b.push(0x05);
        assert_eq!(
            Amf0Decoder::new(&b, limits).decode(),
            Err(Amf0Error::DepthExceeded { limit: 3 })
        );
    }

    #[test]
    fn rejected_markers_have_their_own_errors() {
        assert_eq!(
            decode_one(&[0x07, 0, 0]),
            Err(Amf0Error::ReferenceNotSupported { offset: 0 })
        );
        assert_eq!(
            decode_one(&[0x11, 0x01]),
            Err(Amf0Error::Amf3NotSupported { offset: 0 })
        );
        for m in [0x04, 0x0D, 0x0E, 0x0F, 0x10] {
            assert_eq!(
                decode_one(&[m]),
                Err(Amf0Error::UnsupportedMarker {
                    marker: m,
                    offset: 0
                })
            );
        }
        assert_eq!(
            decode_one(&[0x42]),
            Err(Amf0Error::UnknownMarker {
                marker: 0x42,
                offset: 0
            })
        );
        assert_eq!(
            decode_one(&[0x09]),
            Err(Amf0Error::UnexpectedObjectEnd { offset: 0 })
        );
    }

    #[test]
    fn string_limits_apply_before_reading() {
        let limits = Amf0Limits {
            max_string_len: 4,
            ..Amf0Limits::default()
        };
        let b = [0x02, 0x00, 0x05, b'a', b'b', b'c', b'd', b'e'];
        assert_eq!(
            Amf0Decoder::new(&b, limits).decode(),
            Err(Amf0Error::StringTooLong { len: 5, limit: 4 })
        );
        // A 4 GiB long string is refused by its declared length, without allocating.
        let b = [0x0C, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(matches!(
            decode_one(&b),
            Err(Amf0Error::StringTooLong {
                len: 0xFFFF_FFFF,
                ..
            })
        ));
        assert_eq!(
            decode_one(&[0x02, 0x00, 0x02, 0xC3, 0x28]),
            Err(Amf0Error::InvalidUtf8 { offset: 3 })
        );
    }

    #[test]
    fn strict_array_count_is_bounded_by_the_input() {
        let b = [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05];
        assert!(matches!(
            decode_one(&b),
            Err(Amf0Error::ArrayTooLong {
                count: 0xFFFF_FFFF,
                limit: 1
            })
        ));
    }

    #[test]
    fn value_count_and_input_size_are_bounded() {
        let limits = Amf0Limits {
            max_values: 3,
            ..Amf0Limits::default()
        };
        let b = [0x05, 0x05, 0x05, 0x05];
        let mut d = Amf0Decoder::new(&b, limits);
        assert_eq!(d.decode_all(), Err(Amf0Error::TooManyValues { limit: 3 }));
        let limits = Amf0Limits {
            max_input_len: 2,
            ..Amf0Limits::default()
        };
        assert_eq!(
            Amf0Decoder::new(&b, limits).decode(),
            Err(Amf0Error::InputTooLarge { len: 4, limit: 2 })
        );
    }

    #[test]
    fn decoder_tracks_position_across_values() {
        let b = [0x05, 0x02, 0x00, 0x01, b'z', 0x06];
        let mut d = Amf0Decoder::new(&b, Amf0Limits::default());
        assert_eq!(d.decode(), Ok(Amf0Value::Null));
        assert_eq!(d.position(), 1);
        assert_eq!(d.decode(), Ok(Amf0Value::string("z")));
        assert_eq!(d.remaining(), &[0x06]);
        assert_eq!(d.decode_all(), Ok(vec![Amf0Value::Undefined]));
        assert!(d.is_empty());
    }
}
