//! A bounded big-endian box writer: boxes are opened, filled and closed, and the
//! 32-bit size of each is patched in when it closes.
//!
//! Every write goes through [`BoxWriter`], which refuses to grow past the limit it
//! was built with, so no input can make the muxer allocate without bound.

use super::error::Fmp4Error;

/// Writes boxes into one `Vec<u8>`, never past `limit` bytes.
#[derive(Debug)]
pub struct BoxWriter {
    buf: Vec<u8>,
    limit: usize,
    /// Offsets of the size fields of the boxes still open (innermost last).
    open: Vec<usize>,
}

/// Deepest box nesting the muxer writes (`moov/trak/mdia/minf/stbl/stsd/avc1/avcC` is 8).
const MAX_DEPTH: usize = 12;

impl BoxWriter {
    /// A writer that fails with [`Fmp4Error::HeaderTooLarge`] past `limit` bytes.
    pub fn new(limit: usize) -> Self {
        BoxWriter {
            buf: Vec::with_capacity(limit.min(1024)),
            limit,
            open: Vec::with_capacity(MAX_DEPTH),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn reserve(&self, n: usize) -> Result<(), Fmp4Error> {
        match self.buf.len().checked_add(n) {
            Some(total) if total <= self.limit => Ok(()),
            _ => Err(Fmp4Error::HeaderTooLarge { limit: self.limit }),
        }
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> Result<(), Fmp4Error> {
        self.reserve(b.len())?;
        self.buf.extend_from_slice(b);
        Ok(())
    }

    /// Appends `n` zero bytes (reserved fields).
    pub fn zeros(&mut self, n: usize) -> Result<(), Fmp4Error> {
        self.reserve(n)?;
        self.buf.resize(self.buf.len() + n, 0);
        Ok(())
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> Result<(), Fmp4Error> {
        self.bytes(&[v])
    }

    /// Appends a big-endian u16.
    pub fn u16(&mut self, v: u16) -> Result<(), Fmp4Error> {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends the low 24 bits of `v`, big-endian.
    pub fn u24(&mut self, v: u32) -> Result<(), Fmp4Error> {
        let b = v.to_be_bytes();
        self.bytes(&[b[1], b[2], b[3]])
    }

    /// Appends a big-endian u32.
    pub fn u32(&mut self, v: u32) -> Result<(), Fmp4Error> {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian i32.
    pub fn i32(&mut self, v: i32) -> Result<(), Fmp4Error> {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian u64.
    pub fn u64(&mut self, v: u64) -> Result<(), Fmp4Error> {
        self.bytes(&v.to_be_bytes())
    }

    /// Opens a plain box: a size placeholder and the type.
    pub fn start(&mut self, kind: &[u8; 4]) -> Result<(), Fmp4Error> {
        if self.open.len() >= MAX_DEPTH {
            return Err(Fmp4Error::HeaderTooLarge { limit: self.limit });
        }
        self.open.push(self.buf.len());
        self.u32(0)?;
        self.bytes(kind)
    }

    /// Opens a full box: a plain box followed by version and 24-bit flags.
    pub fn start_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) -> Result<(), Fmp4Error> {
        self.start(kind)?;
        self.u8(version)?;
        self.u24(flags)
    }

    /// Closes the innermost open box, patching its size.
    pub fn end(&mut self) -> Result<(), Fmp4Error> {
        let at = self.open.pop().ok_or(Fmp4Error::Internal {
            what: "box closed that was never opened",
        })?;
        let size = u32::try_from(self.buf.len() - at)
            .map_err(|_| Fmp4Error::HeaderTooLarge { limit: self.limit })?;
        self.patch_u32(at, size)
    }

    /// Overwrites four bytes at `at` (a field whose value is known only later).
    pub fn patch_u32(&mut self, at: usize, v: u32) -> Result<(), Fmp4Error> {
        let slot = self.buf.get_mut(at..at + 4).ok_or(Fmp4Error::Internal {
            what: "patch outside the written bytes",
        })?;
        slot.copy_from_slice(&v.to_be_bytes());
        Ok(())
    }

    /// The bytes written; fails if a box was left open.
    pub fn finish(self) -> Result<Vec<u8>, Fmp4Error> {
        if !self.open.is_empty() {
            return Err(Fmp4Error::Internal {
                what: "box left open",
            });
        }
        Ok(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sizes_are_patched() {
        let mut w = BoxWriter::new(64);
        w.start(b"moov").unwrap();
        w.start_full(b"mvhd", 1, 0x000203).unwrap();
        w.u16(0xABCD).unwrap();
        w.end().unwrap();
        w.end().unwrap();
        let b = w.finish().unwrap();
        assert_eq!(
            b,
            [
                0, 0, 0, 22, b'm', b'o', b'o', b'v', 0, 0, 0, 14, b'm', b'v', b'h', b'd', 1, 0, 2,
                3, 0xAB, 0xCD
            ]
        );
    }

    #[test]
    fn limit_is_enforced() {
        let mut w = BoxWriter::new(10);
        w.start(b"free").unwrap();
        assert_eq!(w.zeros(3), Err(Fmp4Error::HeaderTooLarge { limit: 10 }));
    }

    #[test]
    fn unbalanced_boxes_are_internal_errors() {
        let mut w = BoxWriter::new(64);
        assert!(matches!(w.end(), Err(Fmp4Error::Internal { .. })));
        w.start(b"free").unwrap();
        assert!(matches!(w.finish(), Err(Fmp4Error::Internal { .. })));
    }
}
