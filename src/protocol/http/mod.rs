//! HTTP/1.1: request-head parsing (via `httparse`) and response-head writing for
//! HTTP-FLV, the API and the status page.

pub mod error;
pub mod request;
pub mod response;

pub use error::HttpError;
pub use request::{Method, Parsed, Request, RequestLimits, RequestParser, Version};
pub use response::{BodyFraming, ResponseContext};
