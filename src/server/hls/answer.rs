//! Answering an HLS request from a view: the bytes with their headers
//! (`Range` on immutable bodies), a hold (blocking reload, preload hint), or
//! an in-progress fMP4 segment streamed with chunked transfer as its parts
//! land.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::routes::{kind, HlsRequest, VIEW_WAIT_MS};
use super::waiters::Streaming;
use crate::metrics::{CloseReason, HlsKind};
use crate::protocol::hls::serve::{Answer, Cacheability};
use crate::protocol::hls::{Body, HlsView, RequestError};
use crate::protocol::http::range::{parse_range, ByteRange, RangeRequest};
use crate::protocol::http::response::{self, BodyFraming, LAST_CHUNK};
use crate::server::worker::CoreState;
use crate::stream::StreamId;

/// The bytes of `body` in `r` (slices of its pieces; nothing copied).
fn slice_body(body: &Body, r: ByteRange) -> Body {
    let mut out = Vec::new();
    let mut at = 0u64;
    for p in body.pieces() {
        let (start, end) = (at, at + p.len() as u64);
        at = end;
        if end <= r.first || start > r.last {
            continue;
        }
        let from = r.first.saturating_sub(start) as usize;
        let to = ((r.last + 1).min(end) - start) as usize;
        out.push(p.slice(from..to));
    }
    Body::from_pieces(out)
}

/// `Cache-Control` of a reply.
fn cache_control(cache: Cacheability, view: &HlsView) -> String {
    let timing = view.state().map(|s| s.timing);
    match cache {
        Cacheability::Immutable => "max-age=31536000, immutable".to_owned(),
        // Whole seconds: a 334 ms part target gives 0 (revalidate each time).
        Cacheability::ShortLived => {
            format!("max-age={}", timing.map_or(0, |t| t.part_target_ms / 1_000))
        }
        Cacheability::BlockingReload => format!(
            "max-age={}",
            timing.map_or(0, |t| t.target_duration_s.saturating_mul(3))
        ),
    }
}

impl CoreState {
    /// Answers (or holds) a request from `view`.
    pub(super) fn hls_answer(
        &mut self,
        slot: u32,
        stream_id: StreamId,
        req: HlsRequest,
        view: &Arc<HlsView>,
        streaming: Option<Streaming>,
    ) -> bool {
        if let Some(st) = streaming {
            return self.hls_stream_more(slot, stream_id, req, view, st);
        }
        let now = self.now_ms();
        let ctx = req.ctx;
        let k = kind(&req.resource, &req.query);
        match view.answer(req.resource, &req.query, req.since_ms, now) {
            Ok(Answer::Serve(reply)) => {
                let cc = cache_control(reply.cache, view);
                let total = reply.body.len() as u64;
                // Ranges of immutable bodies only (a playlist changes under them).
                let range = if reply.cache == Cacheability::Immutable {
                    parse_range(req.range.as_deref(), total)
                } else {
                    RangeRequest::Whole
                };
                let mut head = BytesMut::new();
                let (status, body, content_range) = match range {
                    RangeRequest::Whole => (200, reply.body.clone(), None),
                    RangeRequest::Part(r) => (
                        206,
                        slice_body(&reply.body, r),
                        Some(format!("bytes {}-{}/{total}", r.first, r.last)),
                    ),
                    RangeRequest::Unsatisfiable => {
                        self.metrics.hls.error(416);
                        let cr = format!("bytes */{total}");
                        response::write_body_head(
                            &ctx,
                            416,
                            reply.content_type,
                            Some(0),
                            &[("Content-Range", &cr)],
                            &mut head,
                        );
                        return self.respond_bytes(slot, head.freeze(), None, ctx.keep_alive);
                    }
                };
                let mut extra: Vec<(&str, &str)> = vec![("Cache-Control", &cc)];
                if reply.cache == Cacheability::Immutable {
                    extra.push(("Accept-Ranges", "bytes"));
                }
                if let Some(cr) = &content_range {
                    extra.push(("Content-Range", cr));
                }
                response::write_body_head(
                    &ctx,
                    status,
                    reply.content_type,
                    Some(body.len() as u64),
                    &extra,
                    &mut head,
                );
                let body = (!ctx.head_only).then_some(&body);
                if let Some(b) = body {
                    self.metrics.hls.bytes(k, b.len() as u64);
                }
                self.respond_bytes(slot, head.freeze(), body, ctx.keep_alive)
            }
            Ok(Answer::Wait(p)) => self.hls_wait(slot, stream_id, req, p.deadline_ms, None),
            Ok(Answer::InProgress { track, msn }) => {
                let mut head = BytesMut::new();
                let framing = response::write_body_head(
                    &ctx,
                    200,
                    crate::protocol::hls::serve::M4S_TYPE,
                    None,
                    &[("Cache-Control", "no-cache")],
                    &mut head,
                );
                if framing == BodyFraming::None {
                    return self.respond_bytes(slot, head.freeze(), None, ctx.keep_alive);
                }
                if !self.queue_bytes(slot, head.freeze()) {
                    return false;
                }
                let st = Streaming {
                    track,
                    msn,
                    next_part: 0,
                };
                self.hls_stream_more(slot, stream_id, req, view, st)
            }
            // Live, but no keyframe packaged yet (a stream just started, an
            // edge pull just connected): wait a little for it. An edge's
            // packager joins the origin's stream and publishes from the first
            // keyframe it can prove starts a segment, up to one segment target
            // (plus a GOP) after the pull's first frames: that long more.
            Err(RequestError::NotStarted)
                if now < req.since_ms.saturating_add(self.not_started_wait_ms()) =>
            {
                let deadline_ms = req.since_ms.saturating_add(self.not_started_wait_ms());
                self.hls_wait(slot, stream_id, req, deadline_ms, None)
            }
            Err(e) => {
                if e != RequestError::NotStarted {
                    tracing::debug!(core = self.core, key = %req.key, error = %e, "HLS request refused");
                }
                self.hls_error(slot, ctx, e.status())
            }
        }
    }

    /// Sends the parts of an in-progress segment that landed since the last
    /// call; ends the body once the segment is complete, else waits again.
    fn hls_stream_more(
        &mut self,
        slot: u32,
        stream_id: StreamId,
        req: HlsRequest,
        view: &Arc<HlsView>,
        mut st: Streaming,
    ) -> bool {
        let chunked = req.ctx.version == crate::protocol::http::request::Version::Http11;
        let chunks = match view.segment_chunks(st.track, st.msn, st.next_part) {
            Ok(c) => c,
            Err(_) => {
                // Gone mid-body (evicted, stream gone): no status can be sent
                // now, and ending the body would fake a complete segment.
                self.conns.close_later(slot, CloseReason::StreamEnded);
                return false;
            }
        };
        let len = chunks.body.len();
        if len > 0 {
            self.metrics.hls.bytes(HlsKind::Segment, len as u64);
            let mut pieces: Vec<Bytes> = Vec::with_capacity(chunks.body.pieces().len() + 2);
            if chunked {
                let mut line = [0u8; response::CHUNK_SIZE_LINE_MAX];
                let n = response::write_chunk_size_line(len as u32, &mut line);
                pieces.push(Bytes::copy_from_slice(&line[..n]));
            }
            pieces.extend(chunks.body.pieces().iter().cloned());
            if chunked {
                pieces.push(Bytes::from_static(response::CHUNK_END));
            }
            for p in pieces {
                if !self.queue_bytes(slot, p) {
                    return false;
                }
            }
        }
        st.next_part = chunks.next_part;
        if chunks.complete {
            let end = if chunked {
                Bytes::from_static(LAST_CHUNK)
            } else {
                Bytes::new()
            };
            let keep = req.ctx.keep_alive && chunked;
            return self.respond_bytes(slot, end, None, keep);
        }
        self.mark_send(slot);
        let deadline = self.now_ms().saturating_add(
            view.state()
                .map_or(VIEW_WAIT_MS, |s| s.timing.block_limit_ms()),
        );
        self.hls_wait(slot, stream_id, req, deadline, Some(st))
    }
}

impl CoreState {
    /// How long a request of a live stream waits for its first packaged
    /// keyframe: [`VIEW_WAIT_MS`] plus one segment target.
    fn not_started_wait_ms(&self) -> u64 {
        let target = self.shared.config.hls.segment_target.as_millis();
        VIEW_WAIT_MS.saturating_add(u64::try_from(target).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_headers_by_class() {
        let empty = HlsView::empty();
        assert_eq!(
            cache_control(Cacheability::Immutable, &empty),
            "max-age=31536000, immutable"
        );
        assert_eq!(cache_control(Cacheability::ShortLived, &empty), "max-age=0");
        assert_eq!(
            cache_control(Cacheability::BlockingReload, &empty),
            "max-age=0"
        );
    }

    #[test]
    fn ranges_slice_the_shared_pieces() {
        let a = Bytes::from_static(b"0123");
        let body = Body::from_pieces(vec![
            a.clone(),
            Bytes::from_static(b"4567"),
            Bytes::from_static(b"89"),
        ]);
        let cut = slice_body(&body, ByteRange { first: 2, last: 8 });
        assert_eq!(&cut.to_bytes()[..], b"2345678");
        assert_eq!(
            cut.pieces()[0].as_ptr(),
            a[2..].as_ptr(),
            "a slice, not a copy"
        );
        let last = slice_body(&body, ByteRange { first: 9, last: 9 });
        assert_eq!(&last.to_bytes()[..], b"9");
    }
}
