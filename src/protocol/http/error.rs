//! Why an HTTP request head was rejected, and the status code to answer with.

use thiserror::Error;

/// A rejected request. [`HttpError::status`] gives the response status.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HttpError {
    /// The head is not valid HTTP/1.x (`httparse` said why).
    #[error("malformed request head: {reason}")]
    Malformed {
        /// What was wrong.
        reason: &'static str,
    },
    /// The head (request line + headers + blank line) is larger than allowed.
    #[error("request head of at least {len} bytes exceeds the limit {limit}")]
    HeadTooLarge {
        /// Bytes seen so far (the head may be longer still).
        len: usize,
        /// [`crate::protocol::http::request::RequestLimits::max_head`].
        limit: usize,
    },
    /// More header lines than allowed.
    #[error("request has more than {limit} headers")]
    TooManyHeaders {
        /// [`crate::protocol::http::request::RequestLimits::max_headers`].
        limit: usize,
    },
    /// The request target is longer than allowed.
    #[error("request target of {len} bytes exceeds the limit {limit}")]
    PathTooLong {
        /// Length of the raw request target.
        len: usize,
        /// [`crate::protocol::http::request::RequestLimits::max_path`].
        limit: usize,
    },
    /// The target is not an origin-form path, or decodes to something unusable
    /// (bad percent escape, invalid UTF-8, a NUL or other control character).
    #[error("invalid request target: {reason}")]
    InvalidPath {
        /// What was wrong.
        reason: &'static str,
    },
    /// Content-Length is larger than allowed.
    #[error("request body of {len} bytes exceeds the limit {limit}")]
    BodyTooLarge {
        /// The Content-Length.
        len: u64,
        /// [`crate::protocol::http::request::RequestLimits::max_body`].
        limit: u64,
    },
    /// A body without a Content-Length (chunked upload): we do not accept those.
    #[error("request body without Content-Length")]
    LengthRequired,
    /// The method is not served on this resource.
    #[error("method not allowed")]
    MethodNotAllowed,
}

impl HttpError {
    /// The response status this error calls for.
    pub const fn status(&self) -> u16 {
        match self {
            HttpError::Malformed { .. } | HttpError::InvalidPath { .. } => 400,
            HttpError::MethodNotAllowed => 405,
            HttpError::LengthRequired => 411,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::PathTooLong { .. } => 414,
            HttpError::HeadTooLarge { .. } | HttpError::TooManyHeaders { .. } => 431,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(HttpError::Malformed { reason: "x" }.status(), 400);
        assert_eq!(HttpError::InvalidPath { reason: "x" }.status(), 400);
        assert_eq!(HttpError::MethodNotAllowed.status(), 405);
        assert_eq!(HttpError::LengthRequired.status(), 411);
        assert_eq!(HttpError::BodyTooLarge { len: 9, limit: 1 }.status(), 413);
        assert_eq!(HttpError::PathTooLong { len: 9, limit: 1 }.status(), 414);
        assert_eq!(HttpError::HeadTooLarge { len: 9, limit: 1 }.status(), 431);
        assert_eq!(HttpError::TooManyHeaders { limit: 1 }.status(), 431);
    }
}
