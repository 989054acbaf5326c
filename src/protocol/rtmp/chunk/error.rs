//! What can go wrong decoding or encoding chunks.

use thiserror::Error;

/// A peer sent a chunk stream the decoder refuses; the connection should close.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// Set Chunk Size with a value of 0.
    #[error("peer set chunk size 0")]
    ChunkSizeZero,
    /// Set Chunk Size above the configured (or absolute) cap.
    #[error("peer set chunk size {size}, above the limit {limit}")]
    ChunkSizeTooLarge {
        /// The requested chunk size.
        size: u32,
        /// The cap in force.
        limit: u32,
    },
    /// A message header declared a payload longer than allowed.
    #[error("message of {len} bytes on csid {csid} exceeds the limit {limit}")]
    MessageTooLarge {
        /// The chunk stream it arrived on.
        csid: u32,
        /// The declared length.
        len: u32,
        /// The cap in force.
        limit: u32,
    },
    /// A fmt 1/2/3 header on a chunk stream that never had a fmt 0 header.
    #[error("fmt {fmt} header on csid {csid} with no prior fmt 0 header")]
    NoPriorHeader {
        /// The chunk stream id.
        csid: u32,
        /// The header format used (1, 2 or 3).
        fmt: u8,
    },
    /// A fmt 0/1/2 header while that chunk stream's message is half assembled.
    #[error("fmt {fmt} header on csid {csid} while its message has {remaining} bytes to go")]
    HeaderDuringAssembly {
        /// The chunk stream id.
        csid: u32,
        /// The header format used (0, 1 or 2).
        fmt: u8,
        /// Payload bytes the interrupted message still expected.
        remaining: u32,
    },
    /// More distinct chunk stream ids than allowed.
    #[error("peer opened more than {limit} chunk streams")]
    TooManyChunkStreams {
        /// The cap in force.
        limit: usize,
    },
    /// Half-assembled messages together would hold more than allowed.
    #[error("{len} bytes in half-assembled messages exceeds the limit {limit}")]
    AssemblingTooMuch {
        /// What would be held with the new message.
        len: usize,
        /// The cap in force.
        limit: usize,
    },
    /// A Set Chunk Size or Abort message whose payload is shorter than 4 bytes.
    #[error("control message type {type_id} with a {len}-byte payload, needs 4")]
    ShortControlMessage {
        /// Message type id (1 or 2).
        type_id: u8,
        /// Its payload length.
        len: usize,
    },
    /// The decoder lost track of one of its own chunk streams (a bug, never
    /// the peer's input); the connection closes instead of the process panicking.
    #[error("chunk stream index {index} not found")]
    UnknownStreamIndex {
        /// The index.
        index: usize,
    },
}

/// A message the encoder cannot put on the wire (a caller bug, not a peer's).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The csid is outside 2..=65599.
    #[error("chunk stream id {csid} outside 2..=65599")]
    InvalidCsid {
        /// The csid given.
        csid: u32,
    },
    /// The payload does not fit the 24-bit message length field.
    #[error("payload of {len} bytes exceeds the 24-bit length limit {limit}")]
    PayloadTooLarge {
        /// The payload length.
        len: usize,
        /// 0xFFFFFF.
        limit: usize,
    },
    /// A chunk size of 0 or above 2^31−2.
    #[error("chunk size {size} outside 1..={limit}")]
    InvalidChunkSize {
        /// The chunk size given.
        size: u32,
        /// The largest allowed.
        limit: u32,
    },
}
