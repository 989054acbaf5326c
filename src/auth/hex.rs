//! Fixed-size decoding of signatures (hex, base64url) onto the stack.

/// Decodes `N` bytes from exactly `2 * N` hex digits, either case.
pub(crate) fn decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let mut v = 0u8;
        for &c in pair {
            v = (v << 4) | nibble(c)?;
        }
        *byte = v;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Writes `bytes` as lowercase hex into `out` (which must be twice as long).
pub(crate) fn encode_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        for (slot, n) in pair.iter_mut().zip([b >> 4, b & 0x0f]) {
            *slot = DIGITS.get(usize::from(n)).copied().unwrap_or(b'0');
        }
    }
}

/// Decodes 16 bytes from unpadded base64url (nginx `secure_link` accepts
/// exactly that: 22 characters, or 24 with `==` padding).
pub(crate) fn decode_base64url_16(s: &str) -> Option<[u8; 16]> {
    let s = s.strip_suffix("==").unwrap_or(s);
    if s.len() != 22 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut n = 0usize;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    // 22 characters carry 132 bits: the last 4 must be zero (canonical form).
    (n == 16 && acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let mut s = [0u8; 8];
        encode_into(&[0xde, 0xad, 0xbe, 0xef], &mut s);
        assert_eq!(&s, b"deadbeef");
        assert_eq!(decode::<4>("DEADbeef"), Some([0xde, 0xad, 0xbe, 0xef]));
        assert_eq!(decode::<4>("deadbee"), None);
        assert_eq!(decode::<4>("deadbeeg"), None);
    }

    #[test]
    fn base64url_of_an_md5() {
        // python3: base64.urlsafe_b64encode(bytes(range(16))) == b'AAECAwQFBgcICQoLDA0ODw=='
        let want: [u8; 16] = core::array::from_fn(|i| i as u8);
        assert_eq!(decode_base64url_16("AAECAwQFBgcICQoLDA0ODw"), Some(want));
        assert_eq!(decode_base64url_16("AAECAwQFBgcICQoLDA0ODw=="), Some(want));
        assert_eq!(decode_base64url_16("AAECAwQFBgcICQoLDA0ODx"), None);
        assert_eq!(decode_base64url_16("AAECAwQFBgcICQoLDA0OD+"), None);
        assert_eq!(decode_base64url_16("short"), None);
    }
}
