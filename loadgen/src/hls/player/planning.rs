//! What to fetch next: media playlists and the MPD as they arrive, the TS
//! segment plan, LL-HLS parts and blocking reloads, and LL-DASH segments.

use bytes::BytesMut;

use crate::hls::m3u8::MediaPlaylist;
use crate::hls::mpd::Manifest;
use crate::stats::RequestKind;
use crate::viewer::Now;

use super::*;

impl HlsPlayer {
    pub(super) fn on_playlist(
        &mut self,
        track: Track,
        pl: MediaPlaylist,
        now: Now,
    ) -> Result<(), HlsError> {
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

    pub(super) fn plan_ts(&mut self) -> Result<(), HlsError> {
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

    pub(super) fn on_manifest(&mut self, m: Manifest, now: Now) -> Result<(), HlsError> {
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
    pub(super) fn next(&mut self, now: Now, out: &mut BytesMut) -> Result<(), HlsError> {
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

    pub(super) fn send_mpd_later(&mut self, now: Now) -> Result<(), HlsError> {
        let path = self.entry_path.clone();
        self.enqueue(RequestKind::Mpd, Track::Video, path, None);
        self.wake_at_us = Some(now.mono_us + RETRY_US);
        Ok(())
    }

    /// LL-HLS: the video part at the cursor, then the audio part at the same
    /// position; a blocking reload when the playlist does not have them yet.
    pub(super) fn next_ll(&mut self, now: Now, out: &mut BytesMut) -> Result<(), HlsError> {
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
pub(super) fn directive(path: &str, (msn, part): (u64, u32)) -> String {
    format!("{path}?_HLS_msn={msn}&_HLS_part={part}")
}
