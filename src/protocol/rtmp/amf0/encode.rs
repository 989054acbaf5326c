//! AMF0 encoding into a `BytesMut`.
//!
//! The `write_*` helpers let command encoders emit values without first building
//! an [`Amf0Value`] tree.

use bytes::{BufMut, BytesMut};

use super::{marker, Amf0Error, Amf0Value};

/// Longest key or short string the 16-bit length field can describe.
const MAX_SHORT: usize = u16::MAX as usize;
/// Longest long string / array the 32-bit length field can describe.
const MAX_LONG: usize = u32::MAX as usize;

/// Writes a Number.
pub fn write_number(out: &mut BytesMut, n: f64) {
    out.put_u8(marker::NUMBER);
    out.put_f64(n);
}

/// Writes a Boolean.
pub fn write_bool(out: &mut BytesMut, b: bool) {
    out.put_u8(marker::BOOLEAN);
    out.put_u8(u8::from(b));
}

/// Writes Null.
pub fn write_null(out: &mut BytesMut) {
    out.put_u8(marker::NULL);
}

/// Writes a String, or a Long String when it exceeds 65535 bytes.
pub fn write_string(out: &mut BytesMut, s: &str) -> Result<(), Amf0Error> {
    if s.len() <= MAX_SHORT {
        out.put_u8(marker::STRING);
        out.put_u16(s.len() as u16);
    } else if s.len() <= MAX_LONG {
        out.put_u8(marker::LONG_STRING);
        out.put_u32(s.len() as u32);
    } else {
        return Err(Amf0Error::ValueTooLong {
            len: s.len(),
            limit: MAX_LONG,
        });
    }
    out.put_slice(s.as_bytes());
    Ok(())
}

/// Writes an object key (no marker, 16-bit length).
pub fn write_key(out: &mut BytesMut, key: &str) -> Result<(), Amf0Error> {
    if key.len() > MAX_SHORT {
        return Err(Amf0Error::KeyTooLong {
            len: key.len(),
            limit: MAX_SHORT,
        });
    }
    out.put_u16(key.len() as u16);
    out.put_slice(key.as_bytes());
    Ok(())
}

/// Writes the empty key and object-end marker closing an object or ECMA array.
pub fn write_object_end(out: &mut BytesMut) {
    out.put_slice(&[0x00, 0x00, marker::OBJECT_END]);
}

/// Writes an Object from borrowed `(key, value)` pairs.
pub fn write_object<'a>(
    out: &mut BytesMut,
    props: impl IntoIterator<Item = (&'a str, &'a Amf0Value)>,
) -> Result<(), Amf0Error> {
    out.put_u8(marker::OBJECT);
    write_properties(out, props)
}

fn write_properties<'a>(
    out: &mut BytesMut,
    props: impl IntoIterator<Item = (&'a str, &'a Amf0Value)>,
) -> Result<(), Amf0Error> {
    for (k, v) in props {
        write_key(out, k)?;
        v.encode(out)?;
    }
    write_object_end(out);
    Ok(())
}

fn checked_u32(len: usize) -> Result<u32, Amf0Error> {
    u32::try_from(len).map_err(|_| Amf0Error::ValueTooLong {
        len,
        limit: MAX_LONG,
    })
}

impl Amf0Value {
    /// Appends this value's AMF0 encoding to `out`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), Amf0Error> {
        match self {
            Amf0Value::Number(n) => write_number(out, *n),
            Amf0Value::Boolean(b) => write_bool(out, *b),
            Amf0Value::String(s) => write_string(out, s)?,
            Amf0Value::Object(props) => {
                write_object(out, props.iter().map(|(k, v)| (k.as_str(), v)))?
            }
            Amf0Value::Null => write_null(out),
            Amf0Value::Undefined => out.put_u8(marker::UNDEFINED),
            Amf0Value::EcmaArray(props) => {
                out.put_u8(marker::ECMA_ARRAY);
                out.put_u32(checked_u32(props.len())?);
                write_properties(out, props.iter().map(|(k, v)| (k.as_str(), v)))?;
            }
            Amf0Value::StrictArray(items) => {
                out.put_u8(marker::STRICT_ARRAY);
                out.put_u32(checked_u32(items.len())?);
                for item in items {
                    item.encode(out)?;
                }
            }
            Amf0Value::Date { ms, tz } => {
                out.put_u8(marker::DATE);
                out.put_f64(*ms);
                out.put_i16(*tz);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Amf0Decoder, Amf0Limits};
    use super::*;
    use proptest::prelude::*;

    fn encoded(v: &Amf0Value) -> Vec<u8> {
        let mut out = BytesMut::new();
        v.encode(&mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn encodes_known_bytes() {
        assert_eq!(
            encoded(&Amf0Value::string("ab")),
            [0x02, 0x00, 0x02, b'a', b'b']
        );
        assert_eq!(encoded(&Amf0Value::Boolean(true)), [0x01, 0x01]);
        assert_eq!(
            encoded(&Amf0Value::object([("a", Amf0Value::Null)])),
            [0x03, 0x00, 0x01, b'a', 0x05, 0x00, 0x00, 0x09]
        );
        assert_eq!(
            encoded(&Amf0Value::EcmaArray(vec![(
                "a".into(),
                Amf0Value::Undefined
            )])),
            [0x08, 0, 0, 0, 1, 0x00, 0x01, b'a', 0x06, 0x00, 0x00, 0x09]
        );
        assert_eq!(
            encoded(&Amf0Value::StrictArray(vec![Amf0Value::Null])),
            [0x0A, 0, 0, 0, 1, 0x05]
        );
        let mut num = vec![0x00];
        num.extend_from_slice(&2.0f64.to_be_bytes());
        assert_eq!(encoded(&Amf0Value::Number(2.0)), num);
    }

    #[test]
    fn long_strings_switch_to_the_long_form_and_decode_back() {
        let s = "x".repeat(70_000);
        let bytes = encoded(&Amf0Value::string(s.clone()));
        assert_eq!(bytes[0], marker::LONG_STRING);
        assert_eq!(&bytes[1..5], &70_000u32.to_be_bytes());
        let limits = Amf0Limits {
            max_string_len: 100_000,
            ..Amf0Limits::default()
        };
        assert_eq!(
            Amf0Decoder::new(&bytes, limits).decode(),
            Ok(Amf0Value::String(s))
        );
    }

    #[test]
    fn oversized_key_is_refused() {
        let v = Amf0Value::object([("k".repeat(70_000), Amf0Value::Null)]);
        assert_eq!(
            v.encode(&mut BytesMut::new()),
            Err(Amf0Error::KeyTooLong {
                len: 70_000,
                limit: 65535
            })
        );
    }

    fn arb_value() -> impl Strategy<Value = Amf0Value> {
        let leaf = prop_oneof![
            (-1e15f64..1e15).prop_map(Amf0Value::Number),
            any::<bool>().prop_map(Amf0Value::Boolean),
            ".{0,20}".prop_map(Amf0Value::String),
            Just(Amf0Value::Null),
            Just(Amf0Value::Undefined),
            ((-1e13f64..1e13), any::<i16>()).prop_map(|(ms, tz)| Amf0Value::Date { ms, tz }),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(("[a-zA-Z]{1,8}", inner.clone()), 0..6)
                    .prop_map(Amf0Value::Object),
                prop::collection::vec(("[a-zA-Z]{0,8}", inner.clone()), 0..6)
                    .prop_map(Amf0Value::EcmaArray),
                prop::collection::vec(inner, 0..6).prop_map(Amf0Value::StrictArray),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trips(values in prop::collection::vec(arb_value(), 1..4)) {
            let mut out = BytesMut::new();
            for v in &values {
                v.encode(&mut out).unwrap();
            }
            let mut d = Amf0Decoder::new(&out, Amf0Limits::default());
            prop_assert_eq!(d.decode_all().unwrap(), values);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let mut d = Amf0Decoder::new(&bytes, Amf0Limits::default());
            let _ = d.decode_all();
        }
    }
}
