//! Frame headers the server writes (never masked) and close codes.

use crate::protocol::writer::Writer;

/// Most bytes a server frame header takes: 2, plus 8 for a 64-bit length.
pub const MAX_SERVER_HEADER: usize = 10;

/// Longest payload of a control frame (ping, pong, close).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest control frame the server writes: header (2) + payload (125).
pub const MAX_CONTROL_FRAME: usize = 2 + MAX_CONTROL_PAYLOAD;

/// Frame opcodes (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// A further fragment of a data message.
    Continuation,
    /// A UTF-8 text message.
    Text,
    /// A binary message.
    Binary,
    /// Close.
    Close,
    /// Ping.
    Ping,
    /// Pong.
    Pong,
}

impl Opcode {
    /// The opcode for the 4 low bits of a frame's first byte; None for reserved values.
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    /// Its 4-bit value.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping or pong: never fragmented, payload at most 125 bytes.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Close status codes the server sends (RFC 6455 §7.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the stream ended.
    Normal,
    /// 1002: the client broke the protocol (unmasked frame, bad opcode, ...).
    ProtocolError,
    /// 1007: a close reason that is not UTF-8.
    InvalidPayload,
    /// 1009: a client message over the size limit.
    MessageTooBig,
}

impl CloseCode {
    /// The number on the wire.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::ProtocolError => 1002,
            CloseCode::InvalidPayload => 1007,
            CloseCode::MessageTooBig => 1009,
        }
    }
}

/// Writes an unmasked, final frame header for a `payload_len`-byte payload at the
/// start of `out` (which must hold [`MAX_SERVER_HEADER`] bytes) and returns its
/// length: 2, 4 or 10 bytes.
pub fn write_frame_header(opcode: Opcode, payload_len: u64, out: &mut [u8]) -> usize {
    let mut w = Writer::new(out);
    w.u8(0x80 | opcode.bits());
    if payload_len < 126 {
        w.u8(payload_len as u8);
    } else if let Ok(len) = u16::try_from(payload_len) {
        w.u8(126);
        w.put(&len.to_be_bytes());
    } else {
        w.u8(127);
        // The most significant bit must be 0 (RFC 6455 §5.2).
        w.put(&(payload_len & (u64::MAX >> 1)).to_be_bytes());
    }
    w.len()
}

/// Writes a whole control frame (`payload` cut to 125 bytes) into `out` and
/// returns its length.
pub fn write_control_frame(
    opcode: Opcode,
    payload: &[u8],
    out: &mut [u8; MAX_CONTROL_FRAME],
) -> usize {
    let payload = payload.get(..MAX_CONTROL_PAYLOAD).unwrap_or(payload);
    let n = write_frame_header(opcode, payload.len() as u64, out);
    let mut w = Writer::new(out.get_mut(n..).unwrap_or_default());
    w.put(payload);
    n + w.len()
}

/// Writes a close frame carrying `code` (no reason text) and returns its length (4).
pub fn write_close_frame(code: u16, out: &mut [u8; MAX_CONTROL_FRAME]) -> usize {
    write_control_frame(Opcode::Close, &code.to_be_bytes(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths_switch_at_126_and_65536() {
        let mut out = [0u8; MAX_SERVER_HEADER];
        assert_eq!(write_frame_header(Opcode::Binary, 0, &mut out), 2);
        assert_eq!(&out[..2], &[0x82, 0]);
        assert_eq!(write_frame_header(Opcode::Binary, 125, &mut out), 2);
        assert_eq!(&out[..2], &[0x82, 125]);
        assert_eq!(write_frame_header(Opcode::Binary, 126, &mut out), 4);
        assert_eq!(&out[..4], &[0x82, 126, 0, 126]);
        assert_eq!(write_frame_header(Opcode::Binary, 65_535, &mut out), 4);
        assert_eq!(&out[..4], &[0x82, 126, 0xff, 0xff]);
        assert_eq!(write_frame_header(Opcode::Binary, 65_536, &mut out), 10);
        assert_eq!(&out[..10], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn control_frames_are_cut_to_125_bytes() {
        let mut out = [0u8; MAX_CONTROL_FRAME];
        let n = write_control_frame(Opcode::Pong, &[7u8; 300], &mut out);
        assert_eq!(n, 127);
        assert_eq!(&out[..2], &[0x8A, 125]);
        let n = write_close_frame(1009, &mut out);
        assert_eq!(&out[..n], &[0x88, 2, 0x03, 0xF1]);
    }

    #[test]
    fn opcodes_round_trip() {
        for bits in 0..16u8 {
            if let Some(op) = Opcode::from_bits(bits) {
                assert_eq!(op.bits(), bits);
            }
        }
        assert_eq!(Opcode::from_bits(0x3), None);
        assert_eq!(Opcode::from_bits(0xB), None);
    }
}
