//! Bounds the chunk decoder enforces on what a peer may make it hold.

/// The largest chunk size the protocol allows (the field is 31 bits) minus one:
/// 2^31−1 is what broken or hostile peers send, so it is always rejected.
pub const ABSOLUTE_MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFE;

/// Limits for one [`ChunkDecoder`](super::ChunkDecoder); every one of them
/// breaks with its own [`ChunkError`](super::ChunkError) variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Largest chunk size a peer may set with Set Chunk Size (clamped to
    /// [`ABSOLUTE_MAX_CHUNK_SIZE`]). Default 16 MiB.
    pub max_chunk_size: u32,
    /// Largest message payload accepted, in bytes. Default 4 MiB.
    pub max_message_len: u32,
    /// Most distinct chunk stream ids a peer may use on one connection (each
    /// costs a header record). Default 64.
    pub max_chunk_streams: usize,
    /// Most payload bytes held across all half-assembled messages at once.
    /// Default 16 MiB.
    pub max_assembling_bytes: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        Self {
            max_chunk_size: 16 * 1024 * 1024,
            max_message_len: 4 * 1024 * 1024,
            max_chunk_streams: 64,
            max_assembling_bytes: 16 * 1024 * 1024,
        }
    }
}

impl ChunkLimits {
    /// The chunk size cap actually enforced.
    pub(crate) fn effective_max_chunk_size(&self) -> u32 {
        self.max_chunk_size.min(ABSOLUTE_MAX_CHUNK_SIZE)
    }
}
