//! HTTP/1.1: request-head parsing (via `httparse`), the server connection's
//! request state and deadlines, and response-head writing for
//! HTTP-FLV, the API and the status page; plus the client side (GET writer,
//! response-head parser, chunked decoder) for origin pull and loadgen.

pub mod chunked;
pub mod client;
pub mod connection;
pub mod error;
pub mod range;
pub mod request;
pub mod response;

pub use connection::{HttpConnection, HttpTimeout, HttpTimeouts};
pub use error::HttpError;
pub use request::{Method, Parsed, Request, RequestLimits, RequestParser, Version};
pub use response::{BodyFraming, ResponseContext};
