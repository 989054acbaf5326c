//! Answering a request from a packager's store, so a reactor can serve HLS
//! and DASH without knowing either: the bytes, their content type and how
//! long a cache may keep them; or "hold it until `(msn, part)`"; or a typed
//! error with its HTTP status. Requests are answered from an [`HlsView`]
//! (an immutable snapshot of the packager), so the owner core and every
//! other core answer from the same type.

use thiserror::Error;

use super::packager::Packager;
use super::request::{decide_on, Decision, DirectiveError, Directives, Pending};
use super::store::{slot, Body};
use super::timeline::TrackKind;
use super::urls::Resource;
use super::view::HlsView;

/// `Content-Type` of playlists.
pub const M3U8_TYPE: &str = "application/vnd.apple.mpegurl";
/// `Content-Type` of the MPD.
pub const MPD_TYPE: &str = "application/dash+xml";
/// `Content-Type` of a video init segment.
pub const VIDEO_MP4_TYPE: &str = "video/mp4";
/// `Content-Type` of an audio init segment.
pub const AUDIO_MP4_TYPE: &str = "audio/mp4";
/// `Content-Type` of fMP4 parts and segments.
pub const M4S_TYPE: &str = "video/iso.segment";
/// `Content-Type` of MPEG-TS segments.
pub const TS_TYPE: &str = "video/mp2t";

/// How long a cache may keep a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cacheability {
    /// Inits, parts, segments: one URL, one set of bytes, forever
    /// (`max-age` long, `immutable`).
    Immutable,
    /// A playlist or MPD without directives: changes every part
    /// (`max-age` about one part target).
    ShortLived,
    /// A blocking-reload answer: its URL (`_HLS_msn`/`_HLS_part`) names the
    /// version, so it may be cached like a segment while it is in the window
    /// (`max-age` of a few target durations).
    BlockingReload,
}

/// A response a reactor can send as is.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The body (gathered pieces; [`Body::to_bytes`] for one buffer).
    pub body: Body,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its cache class.
    pub cache: Cacheability,
}

/// What to do with a request now.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Send this.
    Serve(Reply),
    /// Hold the request; ask again on [`super::packager::PackagerEvent::PartReady`]
    /// for that part and at `deadline_ms` (then it is [`RequestError::TimedOut`]).
    Wait(Pending),
    /// The fMP4 segment asked for is being produced (LL-DASH asks for it
    /// `availabilityTimeOffset` early): stream it with chunked transfer via
    /// [`Packager::segment_chunks`], from part 0, then again from the
    /// returned `next_part` on each `PartReady` of that segment, until
    /// `complete`.
    InProgress {
        /// Its track.
        track: TrackKind,
        /// Its number.
        msn: u64,
    },
}

/// Part of a segment's bytes, for streaming the segment being produced.
#[derive(Clone, Debug)]
pub struct SegmentChunks {
    /// The chunks of parts `from_part..next_part`, back to back (may be empty).
    pub body: Body,
    /// The part to ask from next time.
    pub next_part: u32,
    /// The segment is closed: nothing follows.
    pub complete: bool,
}

/// Why a request cannot be served.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RequestError {
    /// A malformed or out-of-range `_HLS_*` directive: 400.
    #[error("bad delivery directive: {0}")]
    BadDirective(#[from] DirectiveError),
    /// Not in the store: never made, not made yet (beyond the preload hint)
    /// or evicted: 404.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Held past 3 x TARGETDURATION: 503.
    #[error("blocked past three target durations")]
    TimedOut,
    /// The stream has no packaged media yet (no coded frame, or no carried
    /// track): 503, or held like an HTTP-FLV play waiting for the publisher.
    #[error("stream not packaged yet")]
    NotStarted,
}

impl RequestError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::BadDirective(_) => 400,
            RequestError::NotFound(_) => 404,
            RequestError::TimedOut | RequestError::NotStarted => 503,
        }
    }
}

fn serve(
    body: Option<&Body>,
    content_type: &'static str,
    cache: Cacheability,
    what: &'static str,
) -> Result<Answer, RequestError> {
    body.map(|b| {
        Answer::Serve(Reply {
            body: b.clone(),
            content_type,
            cache,
        })
    })
    .ok_or(RequestError::NotFound(what))
}

impl HlsView {
    /// Answers a request for `resource` (from [`super::urls::parse`]) with
    /// `query` (without `?`; `_HLS_*` directives apply to media playlists,
    /// anything else, e.g. a play token, is ignored). `since_ms` is when the
    /// request arrived, `now_ms` now (any one monotonic clock).
    pub fn answer(
        &self,
        resource: Resource,
        query: &str,
        since_ms: u64,
        now_ms: u64,
    ) -> Result<Answer, RequestError> {
        let tl = self.state.as_ref().ok_or(RequestError::NotStarted)?;
        let r = &self.playlists;
        // Nothing rendered yet: a joining box still waiting for a keyframe
        // it can prove starts a segment.
        if r.multivariant.is_none() {
            return Err(RequestError::NotStarted);
        }
        match resource {
            Resource::Multivariant => serve(
                r.multivariant.as_ref(),
                M3U8_TYPE,
                Cacheability::ShortLived,
                "multivariant playlist",
            ),
            Resource::TsPlaylist => serve(
                r.ts.as_ref(),
                M3U8_TYPE,
                Cacheability::ShortLived,
                "TS playlist",
            ),
            Resource::Mpd => serve(r.mpd.as_ref(), MPD_TYPE, Cacheability::ShortLived, "MPD"),
            Resource::MediaPlaylist(track) => {
                if !self.carries(track) {
                    return Err(RequestError::NotFound("media playlist"));
                }
                let d = Directives::parse(query)?;
                match decide_on(tl, &d, since_ms, now_ms) {
                    Decision::Ready => {
                        let list = if d.skip { &r.media_delta } else { &r.media };
                        let cache = if d.is_blocking() {
                            Cacheability::BlockingReload
                        } else {
                            Cacheability::ShortLived
                        };
                        serve(
                            list.get(slot(track)).and_then(Option::as_ref),
                            M3U8_TYPE,
                            cache,
                            "media playlist",
                        )
                    }
                    Decision::Wait(p) => Ok(Answer::Wait(p)),
                    Decision::BadRequest(e) => Err(RequestError::BadDirective(e)),
                    Decision::TimedOut => Err(RequestError::TimedOut),
                }
            }
            Resource::Init { track, id } => serve(
                self.store.init(track, id),
                match track {
                    TrackKind::Video => VIDEO_MP4_TYPE,
                    TrackKind::Audio => AUDIO_MP4_TYPE,
                },
                Cacheability::Immutable,
                "init segment",
            ),
            Resource::Part { track, msn, part } => {
                if let Some(b) = self.store.part(track, msn, part) {
                    return serve(Some(b), M4S_TYPE, Cacheability::Immutable, "part");
                }
                // The preload hint: held until it lands (LL-HLS §6.2.6).
                if tl.open_part == Some((msn, part)) && self.carries(track) && !tl.finished {
                    let deadline_ms = since_ms.saturating_add(tl.timing.block_limit_ms());
                    if now_ms >= deadline_ms {
                        return Err(RequestError::TimedOut);
                    }
                    return Ok(Answer::Wait(Pending {
                        msn,
                        part: Some(part),
                        deadline_ms,
                    }));
                }
                Err(RequestError::NotFound("part"))
            }
            Resource::Segment { track, msn } => {
                if tl.open_msn == Some(msn) && self.carries(track) {
                    return Ok(Answer::InProgress { track, msn });
                }
                serve(
                    self.store.segment(track, msn),
                    M4S_TYPE,
                    Cacheability::Immutable,
                    "segment",
                )
            }
            Resource::TsSegment { msn } => serve(
                self.store.ts(msn),
                super::serve::TS_TYPE,
                Cacheability::Immutable,
                "TS segment",
            ),
        }
    }

    /// The chunks of fMP4 segment `msn` of `track` from part `from_part` on:
    /// the closed parts so far for the segment being produced, or the rest
    /// of a closed one (`complete`). The same bytes as the parts and the
    /// whole segment, so a streamed segment equals the stored one.
    pub fn segment_chunks(
        &self,
        track: TrackKind,
        msn: u64,
        from_part: u32,
    ) -> Result<SegmentChunks, RequestError> {
        let tl = self.state.as_ref().ok_or(RequestError::NotStarted)?;
        let complete = if tl.open_msn == Some(msn) {
            false
        } else if self.store.segment(track, msn).is_some() {
            true
        } else {
            return Err(RequestError::NotFound("segment"));
        };
        let (pieces, next_part) = self.store.parts_from(track, msn, from_part);
        Ok(SegmentChunks {
            body: Body::from_pieces(pieces),
            next_part,
            complete,
        })
    }
}

impl Packager {
    /// [`HlsView::answer`] on the packager's current state (builds a view:
    /// a server keeps one [`Packager::view`] per change instead).
    pub fn answer(
        &self,
        resource: Resource,
        query: &str,
        since_ms: u64,
        now_ms: u64,
    ) -> Result<Answer, RequestError> {
        self.view().answer(resource, query, since_ms, now_ms)
    }

    /// [`HlsView::segment_chunks`] on the packager's current state.
    pub fn segment_chunks(
        &self,
        track: TrackKind,
        msn: u64,
        from_part: u32,
    ) -> Result<SegmentChunks, RequestError> {
        self.view().segment_chunks(track, msn, from_part)
    }

    /// How many times the playlists have been rendered (once per timeline
    /// change, whatever the number of requests).
    pub fn rendered_versions(&self) -> u64 {
        self.rendered.versions
    }
}
