//! A bounds-checked cursor over input bytes.
//!
//! Protocol code never indexes or slices what the peer controls (the layer is
//! `deny(clippy::indexing_slicing)`): it reads through a [`Reader`], whose every
//! read either returns the bytes or a [`ShortInput`] saying how many bytes were
//! needed and how many were there. Incremental decoders map that to "wait for
//! more input"; whole-message parsers map it to their own typed error.

use thiserror::Error;

/// A read ran past the end of the input.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("input too short: needed {needed} bytes, {available} available")]
pub struct ShortInput {
    /// Bytes the read needed.
    pub needed: usize,
    /// Bytes that were left.
    pub available: usize,
}

/// A cursor over `&[u8]`: reads advance it, and a read that does not fit leaves
/// it where it was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reader<'a> {
    rest: &'a [u8],
    consumed: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self {
            rest: input,
            consumed: 0,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Bytes read (or skipped) so far.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// The unread bytes, without advancing.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    fn short(&self, needed: usize) -> ShortInput {
        ShortInput {
            needed,
            available: self.rest.len(),
        }
    }

    /// The next byte, without advancing.
    pub fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next `n` bytes, without advancing.
    pub fn peek_slice(&self, n: usize) -> Result<&'a [u8], ShortInput> {
        self.rest.get(..n).ok_or_else(|| self.short(n))
    }

    /// The next `N` bytes as an array, without advancing.
    pub fn peek_array<const N: usize>(&self) -> Result<[u8; N], ShortInput> {
        match self.rest.split_first_chunk::<N>() {
            Some((head, _)) => Ok(*head),
            None => Err(self.short(N)),
        }
    }

    /// Reads the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ShortInput> {
        if n > self.rest.len() {
            return Err(self.short(n));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        self.consumed += n;
        Ok(head)
    }

    /// Reads up to `n` bytes: all of them if fewer are left.
    pub fn take_up_to(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        self.consumed += n;
        head
    }

    /// Reads everything that is left.
    pub fn take_rest(&mut self) -> &'a [u8] {
        self.take_up_to(self.rest.len())
    }

    /// Skips the next `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), ShortInput> {
        self.take(n).map(|_| ())
    }

    /// Reads the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], ShortInput> {
        match self.rest.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.rest = tail;
                self.consumed += N;
                Ok(*head)
            }
            None => Err(self.short(N)),
        }
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, ShortInput> {
        self.array::<1>().map(|[b]| b)
    }

    /// Reads a big-endian `u16`.
    pub fn be_u16(&mut self) -> Result<u16, ShortInput> {
        self.array().map(u16::from_be_bytes)
    }

    /// Reads a big-endian `i16`.
    pub fn be_i16(&mut self) -> Result<i16, ShortInput> {
        self.array().map(i16::from_be_bytes)
    }

    /// Reads a big-endian 24-bit unsigned integer.
    pub fn be_u24(&mut self) -> Result<u32, ShortInput> {
        self.array()
            .map(|[a, b, c]: [u8; 3]| u32::from_be_bytes([0, a, b, c]))
    }

    /// Reads a big-endian `u32`.
    pub fn be_u32(&mut self) -> Result<u32, ShortInput> {
        self.array().map(u32::from_be_bytes)
    }

    /// Reads a little-endian `u32` (RTMP's message stream id).
    pub fn le_u32(&mut self) -> Result<u32, ShortInput> {
        self.array().map(u32::from_le_bytes)
    }

    /// Reads a big-endian IEEE 754 double.
    pub fn be_f64(&mut self) -> Result<f64, ShortInput> {
        self.array().map(f64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_integers_in_order() {
        let mut r = Reader::new(&[1, 0x02, 0x03, 0x04, 0x05, 0x06, 9, 8, 7, 6, 0xff]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.be_u16(), Ok(0x0203));
        assert_eq!(r.be_u24(), Ok(0x040506));
        assert_eq!(r.be_u32(), Ok(0x09080706));
        assert_eq!(r.consumed(), 10);
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.peek(), Some(0xff));
        assert_eq!(r.take_rest(), &[0xff]);
        assert!(r.is_empty());
        assert_eq!(r.peek(), None);
    }

    #[test]
    fn a_short_read_names_needed_and_available_and_does_not_advance() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(
            r.be_u32(),
            Err(ShortInput {
                needed: 4,
                available: 3
            })
        );
        assert_eq!(r.remaining(), 3);
        assert_eq!(
            r.take(5),
            Err(ShortInput {
                needed: 5,
                available: 3
            })
        );
        assert_eq!(r.take(2), Ok(&[1u8, 2][..]));
        assert_eq!(
            r.skip(2),
            Err(ShortInput {
                needed: 2,
                available: 1
            })
        );
        assert_eq!(
            r.be_u16().unwrap_err().to_string(),
            "input too short: needed 2 bytes, 1 available"
        );
        assert_eq!(r.u8(), Ok(3));
        assert_eq!(r.u8().unwrap_err().needed, 1);
    }

    #[test]
    fn peeks_do_not_advance_and_take_up_to_stops_at_the_end() {
        let mut r = Reader::new(&[0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18, 7]);
        assert_eq!(r.peek_array::<2>(), Ok([0x40, 0x09]));
        assert_eq!(r.peek_slice(3), Ok(&[0x40u8, 0x09, 0x21][..]));
        assert_eq!(r.be_f64(), Ok(std::f64::consts::PI));
        assert_eq!(r.peek_slice(2).unwrap_err().available, 1);
        assert_eq!(r.take_up_to(10), &[7]);
        assert_eq!(r.take_up_to(10), &[] as &[u8]);
        let mut r = Reader::new(&[1, 0, 0, 0, 0xff, 0xfe]);
        assert_eq!(r.le_u32(), Ok(1));
        assert_eq!(r.be_i16(), Ok(-2));
    }
}
