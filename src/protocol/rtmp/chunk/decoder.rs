//! Incoming chunk stream reassembly (RTMP spec 5.3), sans-IO.
//!
//! Bytes go in as they arrive, in any split; complete messages come out one at a
//! time. Payload bytes are copied once, straight from the input into a buffer of
//! exactly the message length from the caller's [`PayloadAllocator`]; only a
//! chunk header cut by a read boundary (at most 18 bytes) is held on the side.
//!
//! With [`ChunkDecoder::set_skip_media`] on, audio and video messages are not
//! assembled at all: their chunks are walked (headers parsed, payload bytes counted
//! and stepped over) and each comes out as a [`SkippedMessage`], its header only.

use bytes::{Bytes, BytesMut};
use tracing::{debug, trace};

use super::error::ChunkError;
use super::header::{
    message_header_len, parse_basic_header, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP_MARKER,
    MAX_CHUNK_HEADER_LEN,
};
use super::limits::ChunkLimits;
use crate::protocol::payload::PayloadAllocator;
use crate::protocol::reader::Reader;
use crate::protocol::rtmp::message::{type_id, RtmpMessage};
use crate::protocol::writer::copy_prefix;

/// What one [`ChunkDecoder::decode`] call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes consumed; call again with the rest (it may hold more messages).
    pub consumed: usize,
    /// The message completed by those bytes, if any.
    pub message: Option<Incoming>,
}

/// A message the decoder completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Assembled with its payload.
    Message(RtmpMessage),
    /// An audio or video message walked past without its payload (only with
    /// [`ChunkDecoder::set_skip_media`] on).
    Skipped(SkippedMessage),
}

/// The header of a message whose payload the decoder skipped: everything an
/// [`RtmpMessage`] has but the payload, and the payload's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedMessage {
    /// Chunk stream id it arrived on.
    pub csid: u32,
    /// Absolute timestamp in ms, as [`RtmpMessage::timestamp`].
    pub timestamp: u32,
    /// Message type id: audio (8) or video (9).
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// Payload bytes stepped over (never 0: empty messages are assembled).
    pub len: u32,
}

/// How far the message in progress on one chunk stream got.
#[derive(Debug)]
enum Progress {
    /// No message in progress.
    Idle,
    /// The payload so far.
    Assembling(BytesMut),
    /// A media message being skipped: how many payload bytes went by.
    Skipping { received: usize },
}

impl Progress {
    /// Payload bytes received of the message in progress, if there is one.
    fn received(&self) -> Option<usize> {
        match self {
            Progress::Idle => None,
            Progress::Assembling(buf) => Some(buf.len()),
            Progress::Skipping { received } => Some(*received),
        }
    }
}

/// The last header seen on one chunk stream, and its message in progress.
#[derive(Debug)]
struct ChunkStream {
    csid: u32,
    /// Absolute timestamp of the current (or last) message.
    timestamp: u32,
    /// The last timestamp field value: a delta after fmt 1/2, the absolute
    /// timestamp after fmt 0 (what a fmt 3 new message adds, as ffmpeg and SRS do).
    delta: u32,
    /// Whether that last field was carried in the extended timestamp.
    extended: bool,
    len: u32,
    type_id: u8,
    stream_id: u32,
    /// The message in progress, if any.
    progress: Progress,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// The next byte starts a chunk header.
    Header,
    /// `remaining` bytes of the current chunk's body, for stream index `stream`.
    Body { stream: usize, remaining: usize },
}

enum HeaderOutcome {
    Incomplete,
    Parsed {
        len: usize,
        message: Option<Incoming>,
    },
}

/// Stream `i`: an index the decoder handed out (streams are only added, never
/// removed), so the error is unreachable; it closes the connection rather than
/// panic if that ever changed.
fn stream_at(streams: &mut [ChunkStream], i: usize) -> Result<&mut ChunkStream, ChunkError> {
    streams
        .get_mut(i)
        .ok_or(ChunkError::UnknownStreamIndex { index: i })
}

/// Room for leftover bytes plus enough new input to finish any header.
const STASH_LEN: usize = 2 * MAX_CHUNK_HEADER_LEN;

/// Reassembles RTMP messages from one connection's incoming chunk stream.
///
/// It applies Set Chunk Size (type 1) and Abort (type 2) itself, the moment they
/// complete, because they change how the following bytes parse; they are still
/// returned so the session sees them.
#[derive(Debug)]
pub struct ChunkDecoder {
    limits: ChunkLimits,
    chunk_size: u32,
    streams: Vec<ChunkStream>,
    last_stream: usize,
    phase: Phase,
    /// Input bytes already counted as consumed but not yet processed: a cut
    /// header, or bytes that turned out to follow a header.
    pending: [u8; MAX_CHUNK_HEADER_LEN],
    pending_len: usize,
    /// Payload bytes reserved by messages in progress (skipped ones included,
    /// so skipping accepts and refuses exactly the streams assembling does).
    assembling_bytes: usize,
    bytes_received: u64,
    /// Whether audio and video messages starting from now are skipped.
    skip_media: bool,
}

impl ChunkDecoder {
    /// A decoder at the protocol's initial chunk size of 128.
    pub fn new(limits: ChunkLimits) -> Self {
        Self {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
            last_stream: 0,
            phase: Phase::Header,
            pending: [0; MAX_CHUNK_HEADER_LEN],
            pending_len: 0,
            assembling_bytes: 0,
            bytes_received: 0,
            skip_media: false,
        }
    }

    /// Skips (true) or assembles (false, the default) the payloads of audio and
    /// video messages (types 8 and 9) that start after this call; a message
    /// already in progress finishes the way it started.
    ///
    /// A skipped message comes out as [`Incoming::Skipped`] when its last chunk
    /// has gone by, at the same point, with the same header fields and the same
    /// byte counts as it would have been assembled; no payload buffer is
    /// allocated and no payload byte copied. Every other message type (control,
    /// commands, data, aggregates) and empty messages are still assembled, and
    /// every limit and error is the same either way.
    pub fn set_skip_media(&mut self, skip: bool) {
        self.skip_media = skip;
    }

    /// Whether audio and video payloads are being skipped.
    pub fn skips_media(&self) -> bool {
        self.skip_media
    }

    /// The peer's current chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Total bytes consumed since creation (for Acknowledgement sequence numbers,
    /// which the session adds to the handshake's bytes and wraps at 2^32).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// The limits in force.
    pub fn limits(&self) -> &ChunkLimits {
        &self.limits
    }

    /// Consumes input until one message completes or the input runs out.
    ///
    /// Bytes not consumed (only when a message was returned) must be passed
    /// again, and after a message keep calling, even with nothing left, until
    /// no message comes back: a few held-back bytes may complete another one.
    /// [`decode_all`](Self::decode_all) does both. After an error the decoder's
    /// state is undefined: close the connection.
    pub fn decode(
        &mut self,
        input: &[u8],
        alloc: &mut impl PayloadAllocator,
    ) -> Result<Decoded, ChunkError> {
        let mut consumed = 0;
        // Leftover bytes go first, topped up from the input in a small stash so a
        // header cut across reads parses as if it had arrived whole.
        while self.pending_len > 0 {
            let mut stash = [0u8; STASH_LEN];
            let pending = self.pending.get(..self.pending_len).unwrap_or_default();
            let old = copy_prefix(&mut stash, pending);
            let top_up = input.get(consumed..).unwrap_or_default();
            let extra = copy_prefix(stash.get_mut(old..).unwrap_or_default(), top_up);
            self.pending_len = 0;
            let (used, message) = self.run(stash.get(..old + extra).unwrap_or_default(), alloc)?;
            if let Some(message) = message {
                if used < old {
                    // Some leftover bytes are still unprocessed; keep them pending.
                    let rest = stash.get(used..old).unwrap_or_default();
                    self.pending_len = copy_prefix(&mut self.pending, rest);
                } else {
                    consumed += used - old;
                }
                self.bytes_received += consumed as u64;
                return Ok(Decoded {
                    consumed,
                    message: Some(message),
                });
            }
            consumed += extra;
            if extra == 0 {
                break;
            }
        }
        let (used, message) = self.run(input.get(consumed..).unwrap_or_default(), alloc)?;
        consumed += used;
        self.bytes_received += consumed as u64;
        Ok(Decoded { consumed, message })
    }

    /// Decodes all of `input`, appending every completed message to `out`.
    /// Returns how many messages were added. Skipped messages (see
    /// [`set_skip_media`](Self::set_skip_media)) are passed over: use
    /// [`decode`](Self::decode) to see them.
    pub fn decode_all(
        &mut self,
        mut input: &[u8],
        alloc: &mut impl PayloadAllocator,
        out: &mut Vec<RtmpMessage>,
    ) -> Result<usize, ChunkError> {
        let before = out.len();
        loop {
            let d = self.decode(input, alloc)?;
            input = input.get(d.consumed..).unwrap_or_default();
            match d.message {
                Some(Incoming::Message(m)) => out.push(m),
                Some(Incoming::Skipped(_)) => continue,
                None if input.is_empty() => return Ok(out.len() - before),
                None => continue,
            }
        }
    }

    /// Processes `data` until a message completes (returning how far it got) or
    /// all of it is used (a cut header is then saved in `pending`).
    fn run(
        &mut self,
        data: &[u8],
        alloc: &mut impl PayloadAllocator,
    ) -> Result<(usize, Option<Incoming>), ChunkError> {
        let mut data = Reader::new(data);
        loop {
            match self.phase {
                Phase::Body { stream, remaining } => {
                    if data.is_empty() {
                        return Ok((data.consumed(), None));
                    }
                    let Some(s) = self.streams.get_mut(stream) else {
                        self.phase = Phase::Header;
                        continue;
                    };
                    let received = match &mut s.progress {
                        Progress::Idle => {
                            // Aborted mid-chunk cannot happen: aborts apply between messages.
                            self.phase = Phase::Header;
                            continue;
                        }
                        Progress::Assembling(buf) => {
                            let chunk = data.take_up_to(remaining);
                            buf.extend_from_slice(chunk);
                            chunk.len()
                        }
                        Progress::Skipping { received } => {
                            let n = data.take_up_to(remaining).len();
                            *received += n;
                            n
                        }
                    };
                    if received < remaining {
                        self.phase = Phase::Body {
                            stream,
                            remaining: remaining - received,
                        };
                        return Ok((data.consumed(), None));
                    }
                    self.phase = Phase::Header;
                    if s.progress.received().unwrap_or_default() >= s.len as usize {
                        let message = self.finish(stream)?;
                        return Ok((data.consumed(), Some(message)));
                    }
                }
                Phase::Header => {
                    let rest = data.rest();
                    if rest.is_empty() {
                        return Ok((data.consumed(), None));
                    }
                    match self.read_header(rest, alloc)? {
                        HeaderOutcome::Incomplete => {
                            // A header is at most MAX_CHUNK_HEADER_LEN bytes, so
                            // an incomplete one fits in `pending` whole.
                            self.pending_len = copy_prefix(&mut self.pending, rest);
                            return Ok((data.consumed() + rest.len(), None));
                        }
                        HeaderOutcome::Parsed { len, message } => {
                            data.take_up_to(len);
                            if message.is_some() {
                                return Ok((data.consumed(), message));
                            }
                        }
                    }
                }
            }
        }
    }

    fn find(&mut self, csid: u32) -> Option<usize> {
        if self
            .streams
            .get(self.last_stream)
            .is_some_and(|s| s.csid == csid)
        {
            return Some(self.last_stream);
        }
        let idx = self.streams.iter().position(|s| s.csid == csid)?;
        self.last_stream = idx;
        Some(idx)
    }

    /// Parses one chunk header at the start of `rest` and applies it; nothing
    /// changes unless the whole header is there.
    fn read_header(
        &mut self,
        rest: &[u8],
        alloc: &mut impl PayloadAllocator,
    ) -> Result<HeaderOutcome, ChunkError> {
        let Some((fmt, csid, basic_len)) = parse_basic_header(rest) else {
            return Ok(HeaderOutcome::Incomplete);
        };
        let idx = self.find(csid);
        if fmt == 3 {
            return self.read_fmt3(rest, csid, basic_len, idx, alloc);
        }
        let mut header = Reader::new(rest);
        let mut fields = match header
            .skip(basic_len)
            .and_then(|()| header.take(message_header_len(fmt)))
        {
            Ok(fields) => Reader::new(fields),
            Err(_) => return Ok(HeaderOutcome::Incomplete),
        };
        let ts_field = fields.be_u24().unwrap_or_default();
        let extended = ts_field == EXTENDED_TIMESTAMP_MARKER;
        let time = if extended {
            let Ok(ext) = header.be_u32() else {
                return Ok(HeaderOutcome::Incomplete);
            };
            ext
        } else {
            ts_field
        };
        let len = header.consumed();
        match idx.and_then(|i| self.streams.get(i)) {
            Some(s) => {
                if let Some(received) = s.progress.received() {
                    return Err(ChunkError::HeaderDuringAssembly {
                        csid,
                        fmt,
                        remaining: s.len.saturating_sub(received as u32),
                    });
                }
            }
            None if fmt != 0 => return Err(ChunkError::NoPriorHeader { csid, fmt }),
            None => {}
        }
        let (msg_len, msg_type) = if fmt <= 1 {
            (Some(fields.be_u24().unwrap_or_default()), fields.u8().ok())
        } else {
            (None, None)
        };
        let msg_stream = if fmt == 0 { fields.le_u32().ok() } else { None };
        if let Some(l) = msg_len {
            if l > self.limits.max_message_len {
                return Err(ChunkError::MessageTooLarge {
                    csid,
                    len: l,
                    limit: self.limits.max_message_len,
                });
            }
        }
        let i = match idx {
            Some(i) => i,
            None => self.add_stream(csid)?,
        };
        let s = stream_at(&mut self.streams, i)?;
        s.timestamp = if fmt == 0 {
            time
        } else {
            s.timestamp.wrapping_add(time)
        };
        s.delta = time;
        s.extended = extended;
        if let Some(l) = msg_len {
            s.len = l;
        }
        if let Some(t) = msg_type {
            s.type_id = t;
        }
        if let Some(id) = msg_stream {
            s.stream_id = id;
        }
        let message = self.start_message(i, alloc)?;
        Ok(HeaderOutcome::Parsed { len, message })
    }

    /// A fmt 3 header: a continuation of the message in progress, or a new
    /// message repeating the previous header (and delta).
    fn read_fmt3(
        &mut self,
        rest: &[u8],
        csid: u32,
        basic_len: usize,
        idx: Option<usize>,
        alloc: &mut impl PayloadAllocator,
    ) -> Result<HeaderOutcome, ChunkError> {
        let Some(i) = idx else {
            return Err(ChunkError::NoPriorHeader { csid, fmt: 3 });
        };
        let chunk_size = self.chunk_size as usize;
        let s = stream_at(&mut self.streams, i)?;
        let mut len = basic_len;
        if s.extended {
            // The spec repeats the extended timestamp in fmt 3 chunks after a header
            // that had one; some peers omit it. Like SRS, take the 4 bytes as the
            // field only when they equal the value it would repeat.
            let mut after = Reader::new(rest);
            let Ok(ext) = after.skip(basic_len).and_then(|()| after.be_u32()) else {
                return Ok(HeaderOutcome::Incomplete);
            };
            if ext == s.delta {
                len += 4;
            } else {
                trace!(csid, "fmt 3 chunk without the repeated extended timestamp");
            }
        }
        if let Some(received) = s.progress.received() {
            let remaining = (s.len as usize).saturating_sub(received);
            self.phase = Phase::Body {
                stream: i,
                remaining: remaining.min(chunk_size),
            };
            return Ok(HeaderOutcome::Parsed { len, message: None });
        }
        s.timestamp = s.timestamp.wrapping_add(s.delta);
        let message = self.start_message(i, alloc)?;
        Ok(HeaderOutcome::Parsed { len, message })
    }

    fn add_stream(&mut self, csid: u32) -> Result<usize, ChunkError> {
        if self.streams.len() >= self.limits.max_chunk_streams {
            return Err(ChunkError::TooManyChunkStreams {
                limit: self.limits.max_chunk_streams,
            });
        }
        self.streams.push(ChunkStream {
            csid,
            timestamp: 0,
            delta: 0,
            extended: false,
            len: 0,
            type_id: 0,
            stream_id: 0,
            progress: Progress::Idle,
        });
        self.last_stream = self.streams.len() - 1;
        Ok(self.last_stream)
    }

    /// Begins the message whose header was just applied to stream `i`; an empty
    /// message is complete at once.
    fn start_message(
        &mut self,
        i: usize,
        alloc: &mut impl PayloadAllocator,
    ) -> Result<Option<Incoming>, ChunkError> {
        let s = stream_at(&mut self.streams, i)?;
        let len = s.len as usize;
        let skip = self.skip_media && matches!(s.type_id, type_id::AUDIO | type_id::VIDEO);
        if len == 0 {
            s.progress = Progress::Assembling(BytesMut::new());
            self.phase = Phase::Header;
            return self.finish(i).map(Some);
        }
        let held = self.assembling_bytes + len;
        if held > self.limits.max_assembling_bytes {
            return Err(ChunkError::AssemblingTooMuch {
                len: held,
                limit: self.limits.max_assembling_bytes,
            });
        }
        stream_at(&mut self.streams, i)?.progress = if skip {
            Progress::Skipping { received: 0 }
        } else {
            Progress::Assembling(alloc.allocate(len))
        };
        self.assembling_bytes = held;
        self.phase = Phase::Body {
            stream: i,
            remaining: len.min(self.chunk_size as usize),
        };
        Ok(None)
    }

    /// Hands out stream `i`'s completed message, applying it first if it
    /// changes how the chunk stream parses.
    fn finish(&mut self, i: usize) -> Result<Incoming, ChunkError> {
        let s = stream_at(&mut self.streams, i)?;
        let payload: Bytes = match std::mem::replace(&mut s.progress, Progress::Idle) {
            Progress::Assembling(buf) => buf.freeze(),
            Progress::Skipping { received } => {
                self.assembling_bytes = self.assembling_bytes.saturating_sub(received);
                // Only audio and video are skipped, and those are neither Set
                // Chunk Size nor Abort: nothing to apply.
                return Ok(Incoming::Skipped(SkippedMessage {
                    csid: s.csid,
                    timestamp: s.timestamp,
                    type_id: s.type_id,
                    stream_id: s.stream_id,
                    len: received as u32,
                }));
            }
            Progress::Idle => Bytes::new(),
        };
        self.assembling_bytes = self.assembling_bytes.saturating_sub(payload.len());
        let message = RtmpMessage {
            csid: s.csid,
            timestamp: s.timestamp,
            type_id: s.type_id,
            stream_id: s.stream_id,
            payload,
        };
        match message.type_id {
            type_id::SET_CHUNK_SIZE => self.apply_set_chunk_size(&message.payload)?,
            type_id::ABORT => self.apply_abort(&message.payload)?,
            _ => {}
        }
        Ok(Incoming::Message(message))
    }

    fn apply_set_chunk_size(&mut self, payload: &[u8]) -> Result<(), ChunkError> {
        let size = Reader::new(payload)
            .be_u32()
            .map_err(|_| ChunkError::ShortControlMessage {
                type_id: type_id::SET_CHUNK_SIZE,
                len: payload.len(),
            })?;
        let limit = self.limits.effective_max_chunk_size();
        if size == 0 {
            return Err(ChunkError::ChunkSizeZero);
        }
        if size > limit {
            return Err(ChunkError::ChunkSizeTooLarge { size, limit });
        }
        debug!(size, "peer chunk size");
        self.chunk_size = size;
        Ok(())
    }

    fn apply_abort(&mut self, payload: &[u8]) -> Result<(), ChunkError> {
        let csid = Reader::new(payload)
            .be_u32()
            .map_err(|_| ChunkError::ShortControlMessage {
                type_id: type_id::ABORT,
                len: payload.len(),
            })?;
        let found = self.find(csid).and_then(|i| self.streams.get_mut(i));
        if let Some(s) = found {
            if let Some(dropped) = s.progress.received() {
                s.progress = Progress::Idle;
                let reserved = s.len as usize;
                self.assembling_bytes = self.assembling_bytes.saturating_sub(reserved);
                debug!(csid, dropped, "peer aborted a message");
            }
        }
        Ok(())
    }
}
