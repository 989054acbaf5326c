//! Packing of io_uring `user_data`: which connection slot, which incarnation of
//! it, and which operation a completion belongs to.
//!
//! The generation makes a late completion for a closed-and-reused slot
//! recognisable, so it is dropped instead of touching the new connection.

/// What an operation was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Multishot accept on a listener (slot = listener index).
    Accept = 1,
    /// Multishot receive.
    Recv = 2,
    /// A gathered send.
    Send = 3,
    /// Close of the socket.
    Close = 4,
    /// Cross-core wake-up (eventfd read).
    Wake = 5,
    /// Anything whose completion carries no meaning (cancel).
    Ignore = 6,
    /// An outbound connect (origin pull).
    Connect = 7,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        Some(match v {
            1 => Op::Accept,
            2 => Op::Recv,
            3 => Op::Send,
            4 => Op::Close,
            5 => Op::Wake,
            6 => Op::Ignore,
            7 => Op::Connect,
            _ => return None,
        })
    }
}

/// A decoded `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// The operation.
    pub op: Op,
    /// Connection slab index (or listener index for [`Op::Accept`]).
    pub slot: u32,
    /// The slot's generation when the operation was submitted.
    pub generation: u32,
}

impl Token {
    /// A token for `op` on `slot` at `generation` (only the low 24 bits are kept).
    pub fn new(op: Op, slot: u32, generation: u32) -> Token {
        Token {
            op,
            slot,
            generation: generation & 0xff_ffff,
        }
    }

    /// Packs into 64 bits: op (8) | generation (24) | slot (32).
    pub fn pack(self) -> u64 {
        (self.op as u64) << 56 | ((self.generation as u64) & 0xff_ffff) << 32 | self.slot as u64
    }

    /// Unpacks; None for a value no token produced.
    pub fn unpack(v: u64) -> Option<Token> {
        Some(Token {
            op: Op::from_u8((v >> 56) as u8)?,
            slot: v as u32,
            generation: ((v >> 32) & 0xff_ffff) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_generation_wraps_to_24_bits() {
        for op in [
            Op::Accept,
            Op::Recv,
            Op::Send,
            Op::Close,
            Op::Wake,
            Op::Ignore,
            Op::Connect,
        ] {
            let t = Token::new(op, u32::MAX - 3, 0x1234_5678);
            assert_eq!(Token::unpack(t.pack()), Some(t));
            assert_eq!(t.generation, 0x34_5678);
        }
        assert_eq!(Token::unpack(0), None);
    }
}
