//! Reading responses: bodies (playlists, manifests, media), demuxing the
//! sampled viewers' video into the playback buffer, a response's end, and
//! failed requests.

use bytes::BytesMut;

use crate::hls::fmp4::{parse_init, Fmp4Reader};
use crate::hls::m3u8;
use crate::hls::mpd;
use crate::hls::nal::{classify_annexb, classify_length_prefixed};
use crate::hls::playback::{MediaFrame, Playback};
use crate::hls::ts::TsReader;
use crate::stamp::{find_stamp_annexb, find_stamp_in_nals};
use crate::stats::{Interval, RequestKind};
use crate::viewer::Now;

use super::*;

impl HlsPlayer {
    pub(super) fn on_body(
        &mut self,
        d: &[u8],
        now: Now,
        iv: &mut Interval,
    ) -> Result<(), HlsError> {
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
    pub(super) fn demux(&mut self, d: &[u8], now: Now, iv: &mut Interval) -> Result<(), HlsError> {
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

    pub(super) fn on_end(
        &mut self,
        now: Now,
        iv: &mut Interval,
        out: &mut BytesMut,
    ) -> Result<(), HlsError> {
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

    pub(super) fn on_error(&mut self, req: Req, now: Now) -> Result<(), HlsError> {
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
}

pub(super) fn on_ts_frame(
    playback: &mut Playback,
    f: crate::hls::ts::TsFrame<'_>,
    now: Now,
    iv: &mut Interval,
) {
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
