//! One simulated HLS / LL-HLS / LL-DASH player, sans-IO: it writes the next
//! request into a buffer, reads responses from the bytes the worker hands it, and
//! says when it wants to be woken (a timed reload, a request deadline). Time is
//! passed in. One keep-alive connection, one request in flight at a time.
//!
//! * **LL-HLS** (`…/{stream}.m3u8`), like hls.js in low-latency mode: multivariant
//!   playlist → video media playlist (and the audio rendition's) → init segments
//!   → start at the newest independent part PART-HOLD-BACK behind the live edge →
//!   fetch listed parts until caught up, then the `EXT-X-PRELOAD-HINT` part (the
//!   server holds it until it exists) and, for each part, the audio part at the
//!   same position; then a blocking reload (`_HLS_msn`/`_HLS_part` of the part just
//!   fetched, answered at once, naming the next hint; or of the part wanted next,
//!   held by the server until it exists).
//! * **TS HLS** (`…/{stream}-ts.m3u8`), like hls.js without low latency: start three
//!   segments from the end, fetch whole segments, reload after the last segment's
//!   duration (half of it when the playlist did not grow).
//! * **LL-DASH** (`…/{stream}.mpd`), like dash.js in low-latency mode: the video
//!   representation's init, then the segment holding "live edge minus the target
//!   latency" (usually the one being produced, which ringcast lists as the last
//!   `S` and streams chunk by chunk as it is produced); then the next; the MPD again every `minimumUpdatePeriod`. The
//!   audio adaptation set is not fetched (one connection streams one segment at a
//!   time).
//!
//! Sampled viewers demux the video they receive ([`super::fmp4`], [`super::ts`])
//! into a [`Playback`] buffer; all viewers count bytes and requests. Every body is
//! capped; so are the work queue and consecutive errors.

mod error;
mod planning;
mod responses;

use std::collections::VecDeque;

use bytes::BytesMut;

use super::fmp4::{Fmp4Reader, InitInfo};
use super::http::{write_get, ResponseEvent, ResponseReader};
use super::m3u8::{self, MediaPlaylist};
use super::mpd::Manifest;
use super::playback::Playback;
use super::ts::TsReader;
use crate::stats::{Interval, Phase, RequestKind};
use crate::viewer::Now;

/// Largest playlist or MPD accepted.
pub const MAX_TEXT_BODY: usize = 512 * 1024;
/// Largest init segment accepted.
pub const MAX_INIT_BODY: usize = 256 * 1024;
/// Largest part or segment accepted (and largest box or PES demuxed).
pub const MAX_MEDIA_BODY: usize = 32 << 20;
/// Most requests queued ahead.
pub const MAX_QUEUE: usize = 64;
/// Consecutive failed requests after which the viewer gives up.
pub const MAX_ERRORS_IN_A_ROW: u32 = 8;
/// A request unanswered this long fails the viewer (at least; see [`request_timeout_us`]).
pub const MIN_REQUEST_TIMEOUT_US: u64 = 10_000_000;
/// Wait before retrying after an error answer.
const RETRY_US: u64 = 250_000;

/// What the connection should do after bytes were handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The server closes this connection (`Connection: close`, e.g. its
    /// requests-per-connection limit): open a new one and call
    /// [`HlsPlayer::reconnected`].
    Reconnect,
}

/// Which protocol a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// LL-HLS over fMP4 (`.m3u8`).
    LlHls,
    /// Classic MPEG-TS HLS (`-ts.m3u8`).
    Ts,
    /// LL-DASH (`.mpd`).
    Dash,
}

impl Mode {
    /// The mode a request path names, if it is an HLS/DASH one.
    pub fn of_path(path: &str) -> Option<Mode> {
        let p = path.split('?').next().unwrap_or(path);
        if p.ends_with("-ts.m3u8") {
            Some(Mode::Ts)
        } else if p.ends_with(".m3u8") {
            Some(Mode::LlHls)
        } else if p.ends_with(".mpd") {
            Some(Mode::Dash)
        } else {
            None
        }
    }
}

pub use error::HlsError;

/// The longest a request may stay unanswered: blocking requests are held up to
/// three target durations by the server, so four, and at least
/// [`MIN_REQUEST_TIMEOUT_US`].
pub fn request_timeout_us(target_duration_ms: u64) -> u64 {
    (target_duration_ms * 4000).max(MIN_REQUEST_TIMEOUT_US)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Track {
    Video,
    Audio,
}

/// A request and what its answer is for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Req {
    kind: RequestKind,
    track: Track,
    path: String,
    /// LL-HLS part (or TS/DASH segment) position, for the log.
    pos: Option<(u64, u32)>,
}

#[derive(Debug, Default)]
struct TrackState {
    playlist_path: String,
    playlist: Option<MediaPlaylist>,
    /// The init segment path fetched (or being fetched).
    init_path: Option<String>,
    init: Option<InitInfo>,
}

/// Where the next part is in a playlist: listed (its URI), the preload hint, or not
/// there yet.
enum Found {
    Listed(String),
    Hint(String),
    Missing,
}

impl TrackState {
    /// Finds part `pos` (normalising `(m, n)` past a closed segment's last part to
    /// `(m + 1, 0)`, as the server does).
    fn find(&self, pos: (u64, u32)) -> (Found, (u64, u32)) {
        let Some(pl) = &self.playlist else {
            return (Found::Missing, pos);
        };
        let (m, n) = pos;
        let closed_with = pl
            .segments
            .iter()
            .find(|s| s.msn == m)
            .map(|_| pl.parts.iter().filter(|p| p.msn == m).count());
        let pos = match closed_with {
            Some(count) if count > 0 && n as usize >= count => (m + 1, 0),
            _ => pos,
        };
        if let Some(p) = pl.parts.iter().find(|p| (p.msn, p.index) == pos) {
            return (Found::Listed(p.uri.clone()), pos);
        }
        let hint_pos = match pl.last_part() {
            Some((lm, _)) if pl.segments.last().is_some_and(|s| s.msn >= lm) => (lm + 1, 0),
            Some((lm, ln)) => (lm, ln + 1),
            None => (pl.next_msn(), 0),
        };
        match &pl.preload_hint {
            Some(uri) if hint_pos == pos => (Found::Hint(uri.clone()), pos),
            _ => (Found::Missing, pos),
        }
    }
}

/// One player.
#[derive(Debug)]
pub struct HlsPlayer {
    mode: Mode,
    authority: String,
    entry_path: String,
    reader: ResponseReader,
    inflight: Option<Req>,
    queue: VecDeque<Req>,
    status: u16,
    close_after: bool,
    body: Vec<u8>,
    body_len: usize,
    video: TrackState,
    audio: Option<TrackState>,
    /// LL-HLS: the next part position wanted.
    cursor: Option<(u64, u32)>,
    /// LL-HLS: the hint just fetched; the next reload asks for it (answered at once).
    fetched_hint: Option<(u64, u32)>,
    /// LL-HLS: the audio part to fetch once the audio playlist lists it.
    pending_audio: Option<(u64, u32)>,
    /// TS: the next segment wanted; DASH: the next `$Number$`.
    next_msn: Option<u64>,
    manifest: Option<Manifest>,
    last_reload_us: u64,
    /// TS: wait before the next playlist reload, µs.
    reload_interval_us: u64,
    mpd_due_us: u64,
    wake_at_us: Option<u64>,
    deadline_us: Option<u64>,
    target_duration_ms: u64,
    errors_in_a_row: u32,
    /// Responses completed since the connection was last replaced.
    responses_on_connection: u32,
    streaming: bool,
    playback: Option<Playback>,
    fmp4_video: Option<Fmp4Reader>,
    fmp4_audio: Option<Fmp4Reader>,
    ts: Option<TsReader>,
}

impl HlsPlayer {
    /// A player of `entry_path` on `authority` (`host:port`), starting at `now`,
    /// whose first request goes to `out`. Sampled players demux video.
    pub fn start(
        mode: Mode,
        authority: &str,
        entry_path: &str,
        sampled: bool,
        now: Now,
        out: &mut BytesMut,
    ) -> Self {
        let mut p = HlsPlayer {
            mode,
            authority: authority.to_owned(),
            entry_path: entry_path.to_owned(),
            reader: ResponseReader::default(),
            inflight: None,
            queue: VecDeque::new(),
            status: 0,
            close_after: false,
            body: Vec::new(),
            body_len: 0,
            video: TrackState::default(),
            audio: None,
            cursor: None,
            fetched_hint: None,
            pending_audio: None,
            next_msn: None,
            manifest: None,
            last_reload_us: 0,
            reload_interval_us: 0,
            mpd_due_us: 0,
            wake_at_us: None,
            deadline_us: None,
            target_duration_ms: 0,
            errors_in_a_row: 0,
            responses_on_connection: 0,
            streaming: false,
            playback: sampled.then(|| Playback::new(now)),
            fmp4_video: None,
            fmp4_audio: None,
            ts: None,
        };
        let kind = match mode {
            Mode::LlHls => RequestKind::Multivariant,
            Mode::Ts => RequestKind::Playlist,
            Mode::Dash => RequestKind::Mpd,
        };
        if mode == Mode::Ts {
            p.video.playlist_path = entry_path.to_owned();
        }
        let first = Req {
            kind,
            track: Track::Video,
            path: entry_path.to_owned(),
            pos: None,
        };
        p.send(first, now, out);
        p
    }

    /// Whether media has been received (a part or segment answered).
    pub fn streaming(&self) -> bool {
        self.streaming
    }

    /// Whether the viewer counts as set up: playing (sampled) or streaming.
    pub fn set_up(&self) -> bool {
        match &self.playback {
            Some(p) => p.playing(),
            None => self.streaming,
        }
    }

    /// The phase a failure now counts under.
    pub fn phase(&self) -> Phase {
        if self.streaming {
            Phase::Streaming
        } else {
            Phase::Request
        }
    }

    /// When the player wants [`Self::on_timer`] called: a timed request or a deadline.
    pub fn next_due_us(&self) -> Option<u64> {
        match (self.wake_at_us, self.deadline_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Requests the video media playlist (no blocking-reload position).
    fn send_video_playlist(&mut self, now: Now, out: &mut BytesMut) {
        let path = self.video.playlist_path.clone();
        let req = Req {
            kind: RequestKind::Playlist,
            track: Track::Video,
            path,
            pos: None,
        };
        self.send(req, now, out);
    }

    fn send(&mut self, req: Req, now: Now, out: &mut BytesMut) {
        write_get(&req.path, &self.authority, out);
        self.reader.expect();
        self.deadline_us = Some(now.mono_us + request_timeout_us(self.target_duration_ms));
        self.status = 0;
        self.body.clear();
        self.body_len = 0;
        self.inflight = Some(req);
    }

    /// Time passed: sends a timed request, or fails a request past its deadline.
    pub fn on_timer(&mut self, now: Now, out: &mut BytesMut) -> Result<(), HlsError> {
        if let (Some(d), Some(req)) = (self.deadline_us, &self.inflight) {
            if now.mono_us >= d {
                return Err(HlsError::Timeout(req.kind));
            }
        }
        if self.wake_at_us.is_some_and(|w| now.mono_us >= w) {
            self.wake_at_us = None;
            if self.inflight.is_none() {
                self.next(now, out)?;
            }
        }
        Ok(())
    }

    /// Feeds received bytes; a completed response may write the next request to `out`.
    pub fn on_bytes(
        &mut self,
        data: &[u8],
        now: Now,
        iv: &mut Interval,
        out: &mut BytesMut,
    ) -> Result<Flow, HlsError> {
        let mut input = data;
        while let Some(ev) = self.reader.next(&mut input)? {
            match ev {
                ResponseEvent::Head { status, close } => {
                    self.status = status;
                    self.close_after = close;
                }
                ResponseEvent::Data(d) => self.on_body(d, now, iv)?,
                ResponseEvent::End => {
                    self.responses_on_connection += 1;
                    self.on_end(now, iv, out)?;
                    if self.close_after {
                        return Ok(Flow::Reconnect);
                    }
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// Whether a lost connection may be replaced: it answered at least one
    /// request (so a server that closes every connection at once is a failure,
    /// not a reconnect loop).
    pub fn may_reconnect(&self) -> bool {
        self.responses_on_connection > 0
    }

    /// The connection was replaced: the request in flight (if any) is written to
    /// `out` again and its partial response forgotten.
    pub fn reconnected(&mut self, now: Now, out: &mut BytesMut) -> Result<(), HlsError> {
        if !self.may_reconnect() {
            return Err(HlsError::Closed);
        }
        self.responses_on_connection = 0;
        self.close_after = false;
        self.reader = ResponseReader::default();
        for r in [&mut self.fmp4_video, &mut self.fmp4_audio]
            .into_iter()
            .flatten()
        {
            r.reset();
        }
        if let Some(ts) = &mut self.ts {
            ts.finish(|_| {});
        }
        if let Some(req) = self.inflight.take() {
            self.send(req, now, out);
        }
        Ok(())
    }

    /// Closes the books at the end of the run.
    pub fn finish(&mut self, now: Now, iv: &mut Interval) {
        if let Some(p) = &mut self.playback {
            p.finish(now, iv);
        }
    }

    fn resolve(&self, base: &str, uri: &str) -> Result<String, HlsError> {
        m3u8::resolve(base, uri)
            .ok_or_else(|| HlsError::ForeignUri(uri.chars().take(128).collect()))
    }

    fn enqueue(&mut self, kind: RequestKind, track: Track, path: String, pos: Option<(u64, u32)>) {
        if self.queue.len() < MAX_QUEUE {
            self.queue.push_back(Req {
                kind,
                track,
                path,
                pos,
            });
        }
    }

    fn track_mut(&mut self, track: Track) -> Option<&mut TrackState> {
        match track {
            Track::Video => Some(&mut self.video),
            Track::Audio => self.audio.as_mut(),
        }
    }
}
