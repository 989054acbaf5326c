//! HTTP/1.1: request-head parsing (via `httparse`) and response-head writing for
//! HTTP-FLV, the API and the status page.

pub mod request;
pub mod response;
