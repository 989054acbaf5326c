//! The decoded AMF0 value tree.

/// One AMF0 value. Objects and ECMA arrays keep their properties in wire order,
/// because RTMP peers (and `onMetaData` readers) are sensitive to it.
#[derive(Clone, Debug, PartialEq)]
pub enum Amf0Value {
    /// 0x00: a double.
    Number(f64),
    /// 0x01.
    Boolean(bool),
    /// 0x02 or 0x0C (long string): the encoder picks the form from the length.
    String(String),
    /// 0x03: anonymous object.
    Object(Vec<(String, Amf0Value)>),
    /// 0x05.
    Null,
    /// 0x06.
    Undefined,
    /// 0x08: associative array (its count field is only a hint and is recomputed).
    EcmaArray(Vec<(String, Amf0Value)>),
    /// 0x0A: dense array.
    StrictArray(Vec<Amf0Value>),
    /// 0x0B: milliseconds since the Unix epoch and a (reserved) time zone.
    Date {
        /// Milliseconds since 1970-01-01 UTC.
        ms: f64,
        /// Time zone offset field, reserved by the spec (0 when written by Flash).
        tz: i16,
    },
}

impl Amf0Value {
    /// Builds a string value.
    pub fn string(s: impl Into<String>) -> Self {
        Amf0Value::String(s.into())
    }

    /// Builds an object from `(key, value)` pairs.
    pub fn object<K: Into<String>>(props: impl IntoIterator<Item = (K, Amf0Value)>) -> Self {
        Amf0Value::Object(props.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The string, for String values.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, for Number values.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The boolean, for Boolean values.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf0Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The properties, for Object and ECMA array values.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            _ => None,
        }
    }

    /// The first property named `key`, for Object and ECMA array values.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Null or Undefined: what RTMP peers send for "no command object".
    pub fn is_nullish(&self) -> bool {
        matches!(self, Amf0Value::Null | Amf0Value::Undefined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_finds_first_matching_property_in_objects_and_ecma_arrays() {
        let obj = Amf0Value::object([
            ("app", Amf0Value::string("live")),
            ("app", Amf0Value::string("shadowed")),
            ("n", Amf0Value::Number(3.0)),
        ]);
        assert_eq!(obj.get("app").and_then(Amf0Value::as_str), Some("live"));
        assert_eq!(obj.get("n").and_then(Amf0Value::as_number), Some(3.0));
        assert_eq!(obj.get("missing"), None);
        let arr = Amf0Value::EcmaArray(vec![("k".into(), Amf0Value::Boolean(true))]);
        assert_eq!(arr.get("k").and_then(Amf0Value::as_bool), Some(true));
        assert_eq!(Amf0Value::Null.get("k"), None);
        assert!(Amf0Value::Undefined.is_nullish());
        assert!(!Amf0Value::Number(0.0).is_nullish());
    }
}
