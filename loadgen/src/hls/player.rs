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

use std::collections::VecDeque;

use bytes::BytesMut;
use thiserror::Error;

use super::fmp4::{parse_init, Fmp4ReadError, Fmp4Reader, InitInfo};
use super::http::{write_get, ResponseError, ResponseEvent, ResponseReader};
use super::m3u8::{self, MediaPlaylist, PlaylistError};
use super::mpd::{self, Manifest, MpdError};
use super::nal::{classify_annexb, classify_length_prefixed};
use super::playback::{MediaFrame, Playback};
use super::ts::{TsReadError, TsReader};
use crate::stamp::{find_stamp_annexb, find_stamp_in_nals};
use crate::stats::{FailureKind, Interval, Phase, RequestKind};
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

    fn on_body(&mut self, d: &[u8], now: Now, iv: &mut Interval) -> Result<(), HlsError> {
        let Some(req) = &self.inflight else {
            return Ok(());
        };
        let kind = req.kind;
        self.body_len = self.body_len.saturating_add(d.len());
        let limit = match kind {
            RequestKind::Part | RequestKind::Segment => MAX_MEDIA_BODY,
            RequestKind::Init => MAX_INIT_BODY,
            _ => MAX_TEXT_BODY,
        };
        if self.body_len > limit {
            return Err(HlsError::TooLarge { kind, limit });
        }
        if self.status != 200 {
            return Ok(());
        }
        match kind {
            RequestKind::Part | RequestKind::Segment => {
                if req.track == Track::Video {
                    self.demux(d, now, iv)?;
                } else if self.playback.is_some() {
                    // Audio: count its samples (one per AAC frame), no buffer model.
                    let mut n = 0;
                    self.fmp4_audio
                        .get_or_insert_with(|| Fmp4Reader::new(MAX_MEDIA_BODY))
                        .push(d, |_| n += 1)?;
                    iv.counters.audio_frames += n;
                }
            }
            _ => self.body.extend_from_slice(d),
        }
        Ok(())
    }

    /// Demuxes video bytes into the playback buffer (sampled viewers only).
    fn demux(&mut self, d: &[u8], now: Now, iv: &mut Interval) -> Result<(), HlsError> {
        let Some(playback) = self.playback.as_mut() else {
            return Ok(());
        };
        if self.mode == Mode::Ts {
            let ts = self.ts.get_or_insert_with(|| TsReader::new(MAX_MEDIA_BODY));
            ts.push(d, |f| on_ts_frame(playback, f, now, iv))?;
            return Ok(());
        }
        let Some(info) = self.video.init else {
            return Ok(()); // no init yet: nothing to place samples with
        };
        let reader = self
            .fmp4_video
            .get_or_insert_with(|| Fmp4Reader::new(MAX_MEDIA_BODY));
        let nls = info.nal_len_size.unwrap_or(4);
        let scale = u128::from(info.timescale.max(1));
        let us = |ticks: u128| u64::try_from(ticks * 1_000_000 / scale).unwrap_or(u64::MAX);
        reader.push(d, |s| {
            let au = classify_length_prefixed(s.data, nls);
            let pts = (i128::from(s.dts) + i128::from(s.cts)).max(0) as u128;
            playback.on_frame(
                MediaFrame {
                    dts_us: us(u128::from(s.dts)),
                    pts_us: us(pts),
                    duration_us: us(u128::from(s.duration)),
                    picture: au.picture,
                    keyframe: au.keyframe,
                    stamp: find_stamp_in_nals(s.data, nls),
                },
                now,
                iv,
            )
        })?;
        Ok(())
    }

    fn on_end(&mut self, now: Now, iv: &mut Interval, out: &mut BytesMut) -> Result<(), HlsError> {
        let Some(req) = self.inflight.take() else {
            return Ok(());
        };
        self.deadline_us = None;
        let ok = self.status == 200;
        iv.requests.record(req.kind, ok);
        if matches!(req.kind, RequestKind::Part | RequestKind::Segment) {
            // The end of a whole TS segment closes its last access unit.
            if let (Some(ts), Some(playback)) = (self.ts.as_mut(), self.playback.as_mut()) {
                ts.finish(|f| on_ts_frame(playback, f, now, iv));
            }
            for r in [&mut self.fmp4_video, &mut self.fmp4_audio]
                .into_iter()
                .flatten()
            {
                r.reset();
            }
        }
        if !ok {
            return self.on_error(req, now);
        }
        self.errors_in_a_row = 0;
        let body = std::mem::take(&mut self.body);
        let text = || String::from_utf8_lossy(&body).into_owned();
        match req.kind {
            RequestKind::Multivariant => {
                let mv = m3u8::parse_multivariant(&text())?;
                self.video.playlist_path = self.resolve(&self.entry_path, &mv.variant)?;
                if let Some(a) = mv.audio {
                    self.audio = Some(TrackState {
                        playlist_path: self.resolve(&self.entry_path, &a)?,
                        ..TrackState::default()
                    });
                }
                let path = self.video.playlist_path.clone();
                self.enqueue(RequestKind::Playlist, Track::Video, path, None);
            }
            RequestKind::Playlist | RequestKind::BlockingReload => {
                let pl = m3u8::parse_media(&text())?;
                self.on_playlist(req.track, pl, now)?;
            }
            RequestKind::Init => {
                let info = parse_init(&body)?;
                if req.track == Track::Video {
                    self.video.init = Some(info);
                }
            }
            RequestKind::Part | RequestKind::Segment => {
                self.streaming = true;
                if self.mode == Mode::Dash {
                    self.next_msn = self.next_msn.map(|n| n + 1);
                }
            }
            RequestKind::Mpd => {
                let m = mpd::parse(&text())?;
                self.on_manifest(m, now)?;
            }
        }
        self.body = body;
        self.body.clear();
        self.next(now, out)
    }

    fn on_error(&mut self, req: Req, now: Now) -> Result<(), HlsError> {
        self.errors_in_a_row += 1;
        if self.errors_in_a_row >= MAX_ERRORS_IN_A_ROW {
            // A stream that played and now answers 404 everywhere has ended
            // (ringcast forgets a stream when its publisher leaves).
            if self.streaming && self.status == 404 {
                return Err(HlsError::Ended);
            }
            return Err(HlsError::Status(self.status));
        }
        tracing::debug!(status = self.status, path = req.path, pos = ?req.pos, "HLS request failed");
        match req.kind {
            // A part or segment gone (we fell behind) or not there: start over
            // from the playlist, like a player's resync.
            RequestKind::Part | RequestKind::Segment | RequestKind::Init => {
                self.queue.clear();
                self.cursor = None;
                self.fetched_hint = None;
                self.pending_audio = None;
                self.next_msn = None;
                let (kind, path) = match self.mode {
                    Mode::Dash => (RequestKind::Mpd, self.entry_path.clone()),
                    _ => (RequestKind::Playlist, self.video.playlist_path.clone()),
                };
                self.enqueue(kind, Track::Video, path, None);
            }
            // Playlists (a 503 for a reload held too long, a stream not live yet):
            // ask again shortly.
            _ => self.queue.push_front(req),
        }
        self.wake_at_us = Some(now.mono_us + RETRY_US);
        Ok(())
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

    fn on_playlist(&mut self, track: Track, pl: MediaPlaylist, now: Now) -> Result<(), HlsError> {
        self.target_duration_ms = pl.target_duration_ms;
        self.last_reload_us = now.mono_us;
        let Some(state) = self.track_mut(track) else {
            return Ok(());
        };
        let base = state.playlist_path.clone();
        let map = pl.map.clone();
        state.playlist = Some(pl);
        if let Some(map) = map {
            let path = self.resolve(&base, &map)?;
            let new_init = self.track_mut(track).is_some_and(|state| {
                let new = state.init_path.as_deref() != Some(path.as_str());
                if new {
                    state.init_path = Some(path.clone());
                }
                new
            });
            if new_init {
                self.enqueue(RequestKind::Init, track, path, None);
            }
        }
        if self.mode == Mode::Ts {
            return self.plan_ts();
        }
        if track == Track::Audio {
            if let (Some(pos), Some(audio)) = (self.pending_audio, &self.audio) {
                if let (Found::Listed(u) | Found::Hint(u), _) = audio.find(pos) {
                    let p = self.resolve(&audio.playlist_path, &u)?;
                    self.pending_audio = None;
                    self.enqueue(RequestKind::Part, Track::Audio, p, Some(pos));
                } else {
                    let p = directive(&audio.playlist_path, pos);
                    self.enqueue(RequestKind::BlockingReload, Track::Audio, p, None);
                }
            }
        }
        if track == Track::Video && self.cursor.is_none() {
            let Some(pl) = &self.video.playlist else {
                return Ok(());
            };
            let hold_back = pl
                .part_hold_back_ms
                .or(pl.part_target_ms.map(|t| 3 * t))
                .unwrap_or(3 * pl.target_duration_ms);
            let start = pl.start_part(hold_back);
            self.cursor = start.map(|p| (p.msn, p.index));
            if let (Some(first), Some(playback)) = (start, self.playback.as_mut()) {
                // Seek to PART-HOLD-BACK behind the end, past the keyframe we start from.
                let from_start: u64 = pl
                    .parts
                    .iter()
                    .skip_while(|p| (p.msn, p.index) != (first.msn, first.index))
                    .map(|p| p.duration_ms)
                    .sum();
                playback.start_after(from_start.saturating_sub(hold_back) * 1000);
            }
            if self.cursor.is_none() {
                // No independent part listed yet: look again shortly.
                self.wake_at_us = Some(now.mono_us + RETRY_US);
                let path = self.video.playlist_path.clone();
                self.enqueue(RequestKind::Playlist, Track::Video, path, None);
                return Ok(());
            }
            if let Some(a) = &self.audio {
                if a.playlist.is_none() {
                    let path = a.playlist_path.clone();
                    self.enqueue(RequestKind::Playlist, Track::Audio, path, None);
                }
            }
        }
        Ok(())
    }

    fn plan_ts(&mut self) -> Result<(), HlsError> {
        let Some(pl) = &self.video.playlist else {
            return Ok(());
        };
        let last = pl.segments.last().map(|s| s.msn);
        let first = pl.segments.first().map(|s| s.msn);
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(());
        };
        let mut next = match self.next_msn {
            // Fell out of the window: start over at the live point.
            Some(n) if n >= first => n,
            _ => first.max(last.saturating_sub(2)),
        };
        let last_ms = pl
            .segments
            .last()
            .map_or(pl.target_duration_ms, |s| s.duration_ms.max(100));
        let todo: Vec<(u64, String)> = pl
            .segments
            .iter()
            .filter(|s| s.msn >= next && !s.gap)
            .map(|s| (s.msn, s.uri.clone()))
            .collect();
        let base = self.video.playlist_path.clone();
        for (msn, uri) in todo {
            let path = self.resolve(&base, &uri)?;
            self.enqueue(RequestKind::Segment, Track::Video, path, Some((msn, 0)));
            next = msn + 1;
        }
        // Like hls.js: reload after the last segment's duration when the playlist
        // grew, after half of it when it did not.
        let grew = self.next_msn != Some(next);
        self.reload_interval_us = if grew { last_ms * 1000 } else { last_ms * 500 };
        self.next_msn = Some(next);
        Ok(())
    }

    fn on_manifest(&mut self, m: Manifest, now: Now) -> Result<(), HlsError> {
        self.last_reload_us = now.mono_us;
        self.mpd_due_us = now.mono_us + m.min_update_ms.unwrap_or(2000) * 1000;
        let Some(v) = &m.video else {
            self.manifest = Some(m);
            return Ok(());
        };
        self.target_duration_ms = v
            .segments
            .iter()
            .map(|s| s.duration * 1000 / v.timescale)
            .max()
            .unwrap_or(self.target_duration_ms);
        let init = self.resolve(&self.entry_path, &v.init)?;
        if self.video.init_path.as_deref() != Some(init.as_str()) {
            self.video.init_path = Some(init.clone());
            self.enqueue(RequestKind::Init, Track::Video, init, None);
        }
        let first = v.segments.first().map(|s| s.number);
        self.next_msn = match (self.next_msn, first) {
            (Some(n), Some(f)) if n >= f => Some(n),
            // Start like dash.js in low-latency mode: the segment holding "live edge
            // minus the target latency" (the one being produced, usually), seeking
            // into it; else (no clock in the MPD) the segment being produced.
            _ => match (m.availability_start_ms, m.target_latency_ms) {
                (Some(ast), Some(target)) => {
                    let want = (now.unix_us / 1000)
                        .saturating_sub(ast)
                        .saturating_sub(target);
                    let at = v.segment_at(want);
                    if let (Some((_, start)), Some(p)) = (at, self.playback.as_mut()) {
                        p.start_after(want.saturating_sub(start) * 1000);
                    }
                    at.map(|(n, _)| n).or_else(|| v.next_number())
                }
                _ => v.next_number(),
            },
        };
        self.manifest = Some(m);
        Ok(())
    }

    /// Sends the next request, or schedules it.
    fn next(&mut self, now: Now, out: &mut BytesMut) -> Result<(), HlsError> {
        if self.wake_at_us.is_some_and(|w| w > now.mono_us) {
            return Ok(());
        }
        if let Some(req) = self.queue.pop_front() {
            self.send(req, now, out);
            return Ok(());
        }
        match self.mode {
            Mode::LlHls => self.next_ll(now, out),
            Mode::Ts => {
                if self.video.playlist.as_ref().is_some_and(|p| p.ended) {
                    return Err(HlsError::Ended);
                }
                let due = self.last_reload_us + self.reload_interval_us;
                if now.mono_us < due {
                    self.wake_at_us = Some(due);
                    return Ok(());
                }
                self.send_video_playlist(now, out);
                Ok(())
            }
            Mode::Dash => {
                let video = self.manifest.as_ref().and_then(|m| m.video.as_ref());
                let (Some(v), Some(n)) = (video, self.next_msn) else {
                    // Nothing playable listed yet: read the MPD again shortly.
                    return self.send_mpd_later(now);
                };
                if now.mono_us >= self.mpd_due_us {
                    let path = self.entry_path.clone();
                    self.send(
                        Req {
                            kind: RequestKind::Mpd,
                            track: Track::Video,
                            path,
                            pos: None,
                        },
                        now,
                        out,
                    );
                    return Ok(());
                }
                let path = self.resolve(&self.entry_path, &v.media_url(n))?;
                self.send(
                    Req {
                        kind: RequestKind::Segment,
                        track: Track::Video,
                        path,
                        pos: Some((n, 0)),
                    },
                    now,
                    out,
                );
                Ok(())
            }
        }
    }

    fn send_mpd_later(&mut self, now: Now) -> Result<(), HlsError> {
        let path = self.entry_path.clone();
        self.enqueue(RequestKind::Mpd, Track::Video, path, None);
        self.wake_at_us = Some(now.mono_us + RETRY_US);
        Ok(())
    }

    /// LL-HLS: the video part at the cursor, then the audio part at the same
    /// position; a blocking reload when the playlist does not have them yet.
    fn next_ll(&mut self, now: Now, out: &mut BytesMut) -> Result<(), HlsError> {
        let Some(cursor) = self.cursor else {
            self.send_video_playlist(now, out);
            return Ok(());
        };
        let (found, pos) = self.video.find(cursor);
        self.cursor = Some(pos);
        let (track, state_path) = (Track::Video, self.video.playlist_path.clone());
        match found {
            Found::Listed(_) | Found::Hint(_) => {
                let (uri, is_hint) = match found {
                    Found::Hint(u) => (u, true),
                    Found::Listed(u) => (u, false),
                    Found::Missing => (String::new(), false),
                };
                let path = self.resolve(&state_path, &uri)?;
                self.cursor = Some((pos.0, pos.1 + 1));
                self.fetched_hint = is_hint.then_some(pos);
                self.enqueue(RequestKind::Part, track, path, Some(pos));
                if let Some(audio) = &self.audio {
                    let apath = audio.playlist_path.clone();
                    match audio.find(pos) {
                        (Found::Listed(u) | Found::Hint(u), _) => {
                            let p = self.resolve(&apath, &u)?;
                            self.enqueue(RequestKind::Part, Track::Audio, p, Some(pos));
                        }
                        (Found::Missing, _) => {
                            // The audio playlist is behind: reload it for this part
                            // (held until it exists), then fetch the part.
                            let p = directive(&apath, pos);
                            self.enqueue(RequestKind::BlockingReload, Track::Audio, p, None);
                            self.pending_audio = Some(pos);
                        }
                    }
                }
            }
            Found::Missing => {
                if self.video.playlist.as_ref().is_some_and(|p| p.ended) {
                    return Err(HlsError::Ended);
                }
                // Right after a hint: ask for the playlist that lists it (answered at
                // once, naming the next hint); else wait for the part wanted.
                let at = self.fetched_hint.take().unwrap_or(pos);
                let p = directive(&state_path, at);
                self.enqueue(RequestKind::BlockingReload, track, p, None);
            }
        }
        if let Some(req) = self.queue.pop_front() {
            self.send(req, now, out);
        }
        Ok(())
    }
}

/// `path?_HLS_msn=M&_HLS_part=P`.
fn directive(path: &str, (msn, part): (u64, u32)) -> String {
    format!("{path}?_HLS_msn={msn}&_HLS_part={part}")
}

fn on_ts_frame(playback: &mut Playback, f: super::ts::TsFrame<'_>, now: Now, iv: &mut Interval) {
    let au = classify_annexb(f.data);
    playback.on_frame(
        MediaFrame {
            dts_us: f.dts * 100 / 9,
            pts_us: f.pts * 100 / 9,
            // Not in the PES: the playback buffer uses the step between frames.
            duration_us: 0,
            picture: au.picture,
            keyframe: au.keyframe,
            stamp: find_stamp_annexb(f.data),
        },
        now,
        iv,
    );
}
