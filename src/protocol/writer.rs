//! Writing into small fixed buffers the code sized itself (chunk headers, FLV
//! tag prefixes), without indexing.
//!
//! The buffers are sized by constants for the longest thing written into them,
//! so a write never runs out of room; if one ever did, the bytes that do not fit
//! are dropped (and a debug build asserts) instead of panicking in production.

/// A cursor writing into `&mut [u8]` from its start.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `bytes`.
    pub fn put(&mut self, bytes: &[u8]) {
        let free = self.buf.get_mut(self.len..).unwrap_or_default();
        let n = copy_prefix(free, bytes);
        debug_assert_eq!(n, bytes.len(), "Writer buffer sized too small");
        self.len += n;
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    /// Appends the low 24 bits of `v`, big-endian.
    pub fn be_u24(&mut self, v: u32) {
        let [_, a, b, c] = v.to_be_bytes();
        self.put(&[a, b, c]);
    }

    /// Appends a big-endian `u32`.
    pub fn be_u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    /// Appends a little-endian `u16`.
    pub fn le_u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }

    /// Appends a little-endian `u32`.
    pub fn le_u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }

    /// The bytes written, ending the writer's borrow.
    pub fn into_written(self) -> &'a [u8] {
        let buf: &'a [u8] = self.buf;
        buf.get(..self.len).unwrap_or_default()
    }
}

/// Copies as much of `src` as fits to the start of `dst`; returns how many bytes.
pub fn copy_prefix(dst: &mut [u8], src: &[u8]) -> usize {
    let n = dst.len().min(src.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_fields_in_order() {
        let mut buf = [0u8; 16];
        let mut w = Writer::new(&mut buf);
        assert!(w.is_empty());
        w.u8(7);
        w.be_u24(0x0102_0304);
        w.be_u32(0x0506_0708);
        w.le_u16(0x0a09);
        w.le_u32(0x0e0d_0c0b);
        assert_eq!(w.len(), 14);
        assert_eq!(
            w.into_written(),
            &[7, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
        );
    }

    #[test]
    fn copy_prefix_stops_at_the_shorter_side() {
        let mut dst = [0u8; 3];
        assert_eq!(copy_prefix(&mut dst, &[1, 2, 3, 4]), 3);
        assert_eq!(dst, [1, 2, 3]);
        assert_eq!(copy_prefix(&mut dst, &[9]), 1);
        assert_eq!(dst, [9, 2, 3]);
    }
}
