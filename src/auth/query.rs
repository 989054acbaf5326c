//! Reading `name=value` pairs from a query string without allocating.

/// The raw value of the first `name=` parameter of `query` (no percent-decoding:
/// every value ringcast signs is written without characters that need it).
pub(crate) fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A decimal number of at most 19 digits (no sign, no spaces).
pub(crate) fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A hexadecimal number of at most 16 digits, either case.
pub(crate) fn hexadecimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_value() {
        let q = "a=1&exp=99&kid=k&exp=5&flag";
        assert_eq!(param(q, "exp"), Some("99"));
        assert_eq!(param(q, "kid"), Some("k"));
        assert_eq!(param(q, "flag"), None);
        assert_eq!(param(q, "ex"), None);
        assert_eq!(param("", "a"), None);
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(decimal("1700000000"), Some(1_700_000_000));
        assert_eq!(decimal("+1"), None);
        assert_eq!(decimal(""), None);
        assert_eq!(decimal("12345678901234567890"), None);
        assert_eq!(hexadecimal("5C2ACB7F"), Some(0x5C2A_CB7F));
        assert_eq!(hexadecimal("5c2acb7f"), Some(0x5C2A_CB7F));
        assert_eq!(hexadecimal("0x1"), None);
    }
}
