//! A bounded parser of the frames a client sends to a WebSocket-FLV server.
//!
//! The client of an FLV stream has nothing to say but control frames, so data
//! payloads are skipped, never buffered (a message over
//! [`ReaderLimits::max_message`] is refused), and the parser holds at most one
//! frame header (14 bytes) and one control payload (125 bytes), however the input
//! is split. Pings are answered by the most recent one only (RFC 6455 §5.5.3
//! allows it), so a ping flood cannot queue replies. After a close frame or an
//! error the parser reads nothing more.

use super::frame::{CloseCode, Opcode, MAX_CONTROL_PAYLOAD};

/// Longest client frame header: 2 + 8 (64-bit length) + 4 (mask).
const MAX_CLIENT_HEADER: usize = 14;

/// Limits on what a client may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Most bytes of one data message (all its fragments): larger → close 1009.
    pub max_message: u64,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        // A player has no reason to send data to a stream; a little is tolerated.
        ReaderLimits { max_message: 4096 }
    }
}

/// A frame the client sent that closes the connection (with the close code to send).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// Client frames must be masked (RFC 6455 §5.1).
    #[error("unmasked client frame")]
    Unmasked,
    /// RSV1-3 set without a negotiated extension.
    #[error("reserved bits set")]
    ReservedBits,
    /// An opcode RFC 6455 reserves.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A control frame without FIN.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload.
    #[error("control frame of {0} bytes (limit 125)")]
    ControlTooLong(u64),
    /// A 64-bit length with its most significant bit set.
    #[error("frame length over 2^63")]
    LengthOverflow,
    /// A continuation frame with no message to continue.
    #[error("continuation frame outside a fragmented message")]
    StrayContinuation,
    /// A new data message before the fragmented one ended.
    #[error("data frame inside a fragmented message")]
    InterleavedMessage,
    /// A data message over the limit.
    #[error("client message of at least {len} bytes (limit {limit})")]
    MessageTooBig {
        /// Bytes the message has reached.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// A close frame with a 1-byte payload or a code that may not be sent.
    #[error("bad close frame")]
    BadClose,
    /// A close reason that is not UTF-8.
    #[error("close reason is not UTF-8")]
    CloseReasonNotUtf8,
}

impl WsError {
    /// The code of the close frame the server answers with.
    pub fn close_code(self) -> CloseCode {
        match self {
            WsError::MessageTooBig { .. } => CloseCode::MessageTooBig,
            WsError::CloseReasonNotUtf8 => CloseCode::InvalidPayload,
            _ => CloseCode::ProtocolError,
        }
    }
}

/// A control frame's payload (at most 125 bytes), unmasked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ControlPayload {
    buf: [u8; MAX_CONTROL_PAYLOAD],
    len: u8,
}

impl ControlPayload {
    const EMPTY: ControlPayload = ControlPayload {
        buf: [0; MAX_CONTROL_PAYLOAD],
        len: 0,
    };

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl std::fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ControlPayload({} bytes)", self.len)
    }
}

/// What one [`FrameReader::push`] found that the server must act on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Incoming {
    /// Answer with a pong carrying this payload (the latest ping's).
    pub pong: Option<ControlPayload>,
    /// The client sent a close frame: answer with a close carrying this code
    /// (`None`: an empty close), then close the connection.
    pub close: Option<Option<u16>>,
    /// Data payload bytes skipped.
    pub data_bytes: u64,
}

/// Where the parser is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Collecting a frame header.
    Header,
    /// Reading a payload: `left` bytes to go.
    Payload { opcode: Opcode, left: u64 },
    /// A close was received or an error found: nothing more is read.
    Done,
}

/// The incoming side of one WebSocket connection.
#[derive(Debug)]
pub struct FrameReader {
    limits: ReaderLimits,
    state: State,
    header: [u8; MAX_CLIENT_HEADER],
    header_len: usize,
    mask: [u8; 4],
    /// Payload bytes of the current frame read so far (for the mask's phase).
    offset: u64,
    control: ControlPayload,
    /// Bytes of the data message being received (all its fragments so far).
    message_len: u64,
    /// A fragmented data message is open (its last frame had no FIN).
    in_message: bool,
}

impl FrameReader {
    /// A reader enforcing `limits`.
    pub fn new(limits: ReaderLimits) -> Self {
        FrameReader {
            limits,
            state: State::Header,
            header: [0; MAX_CLIENT_HEADER],
            header_len: 0,
            mask: [0; 4],
            offset: 0,
            control: ControlPayload::EMPTY,
            message_len: 0,
            in_message: false,
        }
    }

    /// A close was received or an error found: further input is ignored.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads `input` (any split of the client's bytes). An error means: send a
    /// close with [`WsError::close_code`] and close the connection.
    pub fn push(&mut self, mut input: &[u8]) -> Result<Incoming, WsError> {
        let mut found = Incoming::default();
        while !input.is_empty() {
            match self.state {
                State::Done => break,
                State::Header => {
                    let Some((&byte, rest)) = input.split_first() else {
                        break;
                    };
                    input = rest;
                    if let Some(slot) = self.header.get_mut(self.header_len) {
                        *slot = byte;
                    }
                    self.header_len += 1;
                    self.on_header_byte(&mut found).inspect_err(|_| {
                        self.state = State::Done;
                    })?;
                }
                State::Payload { opcode, left } => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    let (chunk, rest) = input.split_at_checked(take).unwrap_or((input, &[]));
                    input = rest;
                    if opcode.is_control() {
                        self.read_control(chunk);
                    } else {
                        found.data_bytes += chunk.len() as u64;
                    }
                    let left = left - chunk.len() as u64;
                    self.offset += chunk.len() as u64;
                    self.state = State::Payload { opcode, left };
                    if left == 0 {
                        self.end_frame(opcode, &mut found).inspect_err(|_| {
                            self.state = State::Done;
                        })?;
                    }
                }
            }
        }
        Ok(found)
    }

    /// Checks the header as soon as each part of it is in; starts the payload
    /// once it is whole.
    fn on_header_byte(&mut self, found: &mut Incoming) -> Result<(), WsError> {
        let [b0, b1, ..] = self.header;
        if self.header_len < 2 {
            return Ok(());
        }
        let fin = b0 & 0x80 != 0;
        let opcode_bits = b0 & 0x0F;
        let opcode = Opcode::from_bits(opcode_bits).ok_or(WsError::ReservedOpcode(opcode_bits))?;
        let len7 = b1 & 0x7F;
        if self.header_len == 2 {
            if b0 & 0x70 != 0 {
                return Err(WsError::ReservedBits);
            }
            if b1 & 0x80 == 0 {
                return Err(WsError::Unmasked);
            }
            if opcode.is_control() {
                if !fin {
                    return Err(WsError::FragmentedControl);
                }
                if usize::from(len7) > MAX_CONTROL_PAYLOAD {
                    return Err(WsError::ControlTooLong(u64::from(len7)));
                }
            }
        }
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        if self.header_len < 2 + ext + 4 {
            return Ok(());
        }
        let ext_bytes = self.header.get(2..2 + ext).unwrap_or_default();
        let len = match len7 {
            126 | 127 => ext_bytes
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
            n => u64::from(n),
        };
        if len >> 63 != 0 {
            return Err(WsError::LengthOverflow);
        }
        if let Some(mask) = self.header.get(2 + ext..2 + ext + 4) {
            self.mask.copy_from_slice(mask);
        }
        if !opcode.is_control() {
            self.check_data_frame(opcode, fin, len)?;
        }
        self.header_len = 0;
        self.offset = 0;
        self.control = ControlPayload::EMPTY;
        self.state = State::Payload { opcode, left: len };
        if len == 0 {
            self.end_frame(opcode, found)?;
        }
        Ok(())
    }

    /// Fragmentation rules and the message size bound, checked before any payload.
    fn check_data_frame(&mut self, opcode: Opcode, fin: bool, len: u64) -> Result<(), WsError> {
        match (opcode, self.in_message) {
            (Opcode::Continuation, false) => return Err(WsError::StrayContinuation),
            (Opcode::Continuation, true) => {}
            (_, true) => return Err(WsError::InterleavedMessage),
            (_, false) => self.message_len = 0,
        }
        self.message_len = self.message_len.saturating_add(len);
        if self.message_len > self.limits.max_message {
            return Err(WsError::MessageTooBig {
                len: self.message_len,
                limit: self.limits.max_message,
            });
        }
        self.in_message = !fin;
        Ok(())
    }

    /// Unmasks control payload bytes into the control buffer.
    fn read_control(&mut self, chunk: &[u8]) {
        let start = usize::from(self.control.len);
        for (i, &byte) in chunk.iter().enumerate() {
            let phase = ((self.offset + i as u64) % 4) as usize;
            let key = self.mask.get(phase).copied().unwrap_or(0);
            if let Some(slot) = self.control.buf.get_mut(start + i) {
                *slot = byte ^ key;
            }
        }
        let len = (start + chunk.len()).min(MAX_CONTROL_PAYLOAD);
        self.control.len = len as u8;
    }

    /// A frame's payload is all in.
    fn end_frame(&mut self, opcode: Opcode, found: &mut Incoming) -> Result<(), WsError> {
        self.state = State::Header;
        match opcode {
            Opcode::Ping => found.pong = Some(self.control),
            Opcode::Close => {
                found.close = Some(close_code(self.control.as_bytes())?);
                self.state = State::Done;
            }
            Opcode::Pong | Opcode::Text | Opcode::Binary | Opcode::Continuation => {}
        }
        Ok(())
    }
}

/// The code of a close payload: none, or a code a peer may send and a UTF-8 reason.
fn close_code(payload: &[u8]) -> Result<Option<u16>, WsError> {
    let Some((code, reason)) = payload.split_first_chunk::<2>() else {
        return if payload.is_empty() {
            Ok(None)
        } else {
            Err(WsError::BadClose)
        };
    };
    let code = u16::from_be_bytes(*code);
    // RFC 6455 §7.4: 1004-1006 and 1015 are never sent; 1012-1014 are registered since.
    if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
        return Err(WsError::BadClose);
    }
    std::str::from_utf8(reason).map_err(|_| WsError::CloseReasonNotUtf8)?;
    Ok(Some(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(b0: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut v = vec![b0];
        match payload.len() {
            n if n < 126 => v.push(0x80 | n as u8),
            n if n < 65536 => {
                v.push(0x80 | 126);
                v.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                v.push(0x80 | 127);
                v.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        v.extend_from_slice(&mask);
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        v
    }

    const M: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn reader() -> FrameReader {
        FrameReader::new(ReaderLimits::default())
    }

    #[test]
    fn ping_is_answered_with_its_payload_however_the_bytes_are_split() {
        let wire = frame(0x89, b"Hello", M);
        for split in 0..=wire.len() {
            let mut r = reader();
            let (a, b) = wire.split_at(split);
            let mut pong = r.push(a).unwrap().pong;
            if let Some(p) = r.push(b).unwrap().pong {
                pong = Some(p);
            }
            assert_eq!(pong.unwrap().as_bytes(), b"Hello", "split at {split}");
        }
    }

    #[test]
    fn only_the_latest_of_several_pings_is_answered() {
        let mut wire = frame(0x89, b"one", M);
        wire.extend(frame(0x89, b"two", M));
        wire.extend(frame(0x8A, b"unsolicited pong", M));
        let got = reader().push(&wire).unwrap();
        assert_eq!(got.pong.unwrap().as_bytes(), b"two");
        assert_eq!(got.close, None);
    }

    #[test]
    fn close_is_echoed_and_ends_reading() {
        let mut wire = frame(0x88, &[0x03, 0xE8, b'b', b'y', b'e'], M);
        wire.extend(frame(0x89, b"after close", M));
        let mut r = reader();
        let got = r.push(&wire).unwrap();
        assert_eq!(got.close, Some(Some(1000)));
        assert_eq!(got.pong, None, "nothing is read after a close");
        assert!(r.is_done());
        assert_eq!(
            reader().push(&frame(0x88, &[], M)).unwrap().close,
            Some(None)
        );
    }

    #[test]
    fn bad_close_payloads_are_protocol_errors() {
        for (payload, err) in [
            (&[0x03][..], WsError::BadClose),
            (&[0x03, 0xED][..], WsError::BadClose), // 1005 is never sent
            (&[0x00, 0x10][..], WsError::BadClose),
            (&[0x03, 0xE8, 0xff, 0xfe][..], WsError::CloseReasonNotUtf8),
        ] {
            assert_eq!(reader().push(&frame(0x88, payload, M)), Err(err));
        }
        assert_eq!(
            WsError::CloseReasonNotUtf8.close_code(),
            CloseCode::InvalidPayload
        );
    }

    #[test]
    fn data_is_skipped_and_bounded() {
        let mut r = reader();
        let got = r.push(&frame(0x82, &[1u8; 4000], M)).unwrap();
        assert_eq!(got.data_bytes, 4000);
        // Fragments add up: 3000 + 2000 > 4096.
        let mut r = reader();
        r.push(&frame(0x02, &[1u8; 3000], M)).unwrap();
        let err = r.push(&frame(0x80, &[1u8; 2000], M)).unwrap_err();
        assert_eq!(
            err,
            WsError::MessageTooBig {
                len: 5000,
                limit: 4096
            }
        );
        assert_eq!(err.close_code(), CloseCode::MessageTooBig);
        assert!(r.is_done());
        // Refused from the header alone: no payload byte needed.
        let wire = frame(0x82, &vec![0u8; 70_000], M);
        assert!(matches!(
            reader().push(&wire[..14]),
            Err(WsError::MessageTooBig { len: 70_000, .. })
        ));
    }

    #[test]
    fn a_ping_between_fragments_is_fine() {
        let mut wire = frame(0x01, b"he", M);
        wire.extend(frame(0x89, b"p", M));
        wire.extend(frame(0x80, b"llo", M));
        let got = reader().push(&wire).unwrap();
        assert_eq!(got.data_bytes, 5);
        assert_eq!(got.pong.unwrap().as_bytes(), b"p");
    }

    #[test]
    fn protocol_violations_close_with_1002() {
        let unmasked = vec![0x82, 0x01, 0x00];
        let cases: Vec<(Vec<u8>, WsError)> = vec![
            (unmasked, WsError::Unmasked),
            (frame(0xC2, b"x", M), WsError::ReservedBits),
            (frame(0x83, b"x", M), WsError::ReservedOpcode(3)),
            (frame(0x09, b"x", M), WsError::FragmentedControl),
            (frame(0x89, &[0u8; 126], M), WsError::ControlTooLong(126)),
            (frame(0x80, b"x", M), WsError::StrayContinuation),
            (
                [frame(0x01, b"a", M), frame(0x81, b"b", M)].concat(),
                WsError::InterleavedMessage,
            ),
            (
                vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
                WsError::LengthOverflow,
            ),
        ];
        for (wire, err) in cases {
            let mut r = reader();
            assert_eq!(r.push(&wire), Err(err), "{wire:02x?}");
            assert_eq!(err.close_code(), CloseCode::ProtocolError);
            assert!(r.is_done());
            assert_eq!(r.push(&frame(0x89, b"x", M)), Ok(Incoming::default()));
        }
    }

    use proptest::prelude::*;

    /// One client frame: opcode bits, FIN, payload, mask; sometimes unmasked.
    fn any_frame() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::sample::select(vec![0x0u8, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xB]),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..300),
            any::<[u8; 4]>(),
            prop::bool::weighted(0.05),
        )
            .prop_map(|(op, fin, payload, mask, unmasked)| {
                let mut f = frame(if fin { 0x80 } else { 0 } | op, &payload, mask);
                if unmasked {
                    f[1] &= 0x7f;
                }
                f
            })
    }

    proptest! {
        /// However a stream of frames is split into reads, the reader decides the
        /// same (first error, close, data skipped, last pong) and never panics.
        #[test]
        fn splits_never_change_the_outcome(
            frames in prop::collection::vec(any_frame(), 0..12),
            read in 1usize..40,
        ) {
            let wire = frames.concat();
            crate::fuzzing::ws_frames(&wire);
            let whole = reader().push(&wire);
            let mut r = reader();
            let mut split: Result<Incoming, WsError> = Ok(Incoming::default());
            for piece in wire.chunks(read) {
                match r.push(piece) {
                    Ok(got) => {
                        let acc = split.as_mut().unwrap();
                        acc.pong = got.pong.or(acc.pong);
                        acc.close = got.close.or(acc.close);
                        acc.data_bytes += got.data_bytes;
                    }
                    Err(e) => {
                        split = Err(e);
                        break;
                    }
                }
            }
            prop_assert_eq!(whole, split);
        }
    }
}
