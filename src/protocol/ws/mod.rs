//! WebSocket (RFC 6455), server side, sans-IO: the opening handshake
//! ([`handshake`]), the headers of the frames the server sends ([`frame`]) and a
//! bounded parser of the frames a client sends ([`reader`]).
//!
//! ringcast uses WebSocket only to carry an FLV stream to players (WebSocket-FLV):
//! the server sends binary messages, the client sends nothing but control frames.
//! So the parser never buffers a data payload (it skips it, bounded by a message
//! size limit) and holds at most one header and one control payload (125 bytes).

pub mod frame;
pub mod handshake;
pub mod reader;

pub use frame::{write_frame_header, CloseCode, Opcode, MAX_SERVER_HEADER};
pub use handshake::{upgrade_request, write_switching_protocols, HandshakeError, WsAccept};
pub use reader::{ControlPayload, FrameReader, Incoming, WsError};
