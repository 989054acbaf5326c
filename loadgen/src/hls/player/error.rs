//! [`HlsError`]: why a player gave up, and the phase and failure kind each
//! error is counted under.

use thiserror::Error;

use crate::hls::fmp4::Fmp4ReadError;
use crate::hls::http::ResponseError;
use crate::hls::m3u8::PlaylistError;
use crate::hls::mpd::MpdError;
use crate::hls::ts::TsReadError;
use crate::stats::{FailureKind, Phase, RequestKind};

use super::*;

/// Why a player gave up.
#[derive(Debug, Error, PartialEq)]
pub enum HlsError {
    /// HTTP framing broken.
    #[error(transparent)]
    Http(#[from] ResponseError),
    /// Too many error answers in a row; the last status.
    #[error("HTTP status {0} ({MAX_ERRORS_IN_A_ROW} failed requests in a row)")]
    Status(u16),
    /// A playlist could not be read.
    #[error(transparent)]
    Playlist(#[from] PlaylistError),
    /// The MPD could not be read.
    #[error(transparent)]
    Mpd(#[from] MpdError),
    /// fMP4 media could not be read.
    #[error(transparent)]
    Fmp4(#[from] Fmp4ReadError),
    /// TS media could not be read.
    #[error(transparent)]
    Ts(#[from] TsReadError),
    /// A body over its cap.
    #[error("{kind} body over {limit} bytes")]
    TooLarge {
        /// What was being fetched.
        kind: RequestKind,
        /// The cap.
        limit: usize,
    },
    /// A request went unanswered past its deadline.
    #[error("{0} request unanswered in time")]
    Timeout(RequestKind),
    /// The server closed the connection twice with no response in between.
    #[error("server closed the connection")]
    Closed,
    /// The stream ended (`EXT-X-ENDLIST`, or 404s after it played).
    #[error("stream ended")]
    Ended,
    /// A playlist named a URI on another server.
    #[error("URI on another server: {0}")]
    ForeignUri(String),
}

impl HlsError {
    /// Phase and kind to count this failure under; `streaming` once media flowed.
    pub fn classify(&self, streaming: bool) -> (Phase, FailureKind) {
        let phase = if streaming {
            Phase::Streaming
        } else {
            Phase::Request
        };
        let kind = match self {
            HlsError::Status(_) => FailureKind::HttpStatus,
            HlsError::Timeout(_) => FailureKind::Timeout,
            HlsError::Closed | HlsError::Ended => FailureKind::EarlyEof,
            _ => FailureKind::Protocol,
        };
        (phase, kind)
    }
}
