//! Choosing the carried tracks: sequence headers, the tracks left out (one
//! warning each), starting the timeline on the first coded frame, and the
//! MPEG-TS muxer that follows the tracks.

use bytes::BytesMut;

use crate::protocol::flv::frame::Frame;
use crate::protocol::fmp4::{write_init, Fmp4Codec, Track, TrackMedia};
use crate::protocol::ts::{self, TsMuxer, TsTracks};

use super::*;
use crate::protocol::hls::playlist::InitRef;
use crate::protocol::hls::store::slot;
use crate::protocol::hls::timeline::{Timeline, TrackKind};
use crate::protocol::hls::urls::config_id;

impl Packager {
    pub(super) fn left_out(
        &mut self,
        kind: TrackKind,
        frame: &Frame,
        out: &mut Vec<PackagerEvent>,
    ) {
        let s = slot(kind);
        if self.warned.get(s).copied().unwrap_or(true) {
            return;
        }
        if let Some(w) = self.warned.get_mut(s) {
            *w = true;
        }
        let reason = match (
            ts::track_support(frame),
            self.timeline.is_some() && frame.sequence_header,
        ) {
            (Err(e), _) => e.to_string(),
            (Ok(_), true) => "its sequence header came after the stream started".to_owned(),
            (Ok(_), false) => "no sequence header before its first frame".to_owned(),
        };
        out.push(PackagerEvent::Warning(PackagerWarning::TrackLeftOut {
            track: kind,
            reason,
        }));
    }

    pub(super) fn warn_left_out(
        &mut self,
        kind: TrackKind,
        reason: String,
        out: &mut Vec<PackagerEvent>,
    ) {
        if let Some(w) = self.warned.get_mut(slot(kind)) {
            if !*w {
                *w = true;
                out.push(PackagerEvent::Warning(PackagerWarning::TrackLeftOut {
                    track: kind,
                    reason,
                }));
            }
        }
    }

    pub(super) fn on_sequence_header(
        &mut self,
        kind: TrackKind,
        frame: &Frame,
        out: &mut Vec<PackagerEvent>,
    ) {
        let id = match kind {
            TrackKind::Video => VIDEO_TRACK_ID,
            TrackKind::Audio => AUDIO_TRACK_ID,
        };
        let track = match Track::from_sequence_header(id, frame) {
            Ok(t) => t,
            Err(e) => {
                self.warn_left_out(kind, e.to_string(), out);
                return;
            }
        };
        let cid = config_id(&track.config);
        let started = self.timeline.is_some();
        let s = slot(kind);
        let existing = self.tracks.get(s).and_then(Option::as_ref).map(|t| {
            (
                t.current_id(),
                t.track.codec.is_video() == track.codec.is_video(),
            )
        });
        match existing {
            None if started => {
                // The tracks are fixed for the packager's life.
                self.left_out(kind, frame, out);
                return;
            }
            None => {
                let init = match write_init(&track) {
                    Ok(b) => b,
                    Err(e) => {
                        self.warn_left_out(kind, e.to_string(), out);
                        return;
                    }
                };
                self.store.add_init(kind, cid, init);
                let step = match track.media {
                    TrackMedia::Audio { sample_rate, .. } => {
                        1_024_000u32.div_ceil(sample_rate.max(1)).max(1)
                    }
                    TrackMedia::Video { .. } => 40,
                };
                if let Some(t) = self.tracks.get_mut(s) {
                    *t = Some(TrackState {
                        track,
                        seq: frame.clone(),
                        inits: vec![InitRef {
                            from_epoch: 0,
                            id: cid,
                        }],
                        open: Vec::new(),
                        open_first_dts: 0,
                        last_dts: None,
                        last_step_ms: step,
                    });
                }
            }
            Some((current, _)) if current == cid => {
                if let Some(Some(t)) = self.tracks.get_mut(s) {
                    t.seq = frame.clone();
                }
            }
            Some(_) => {
                let init = match write_init(&track) {
                    Ok(b) => b,
                    Err(e) => {
                        self.warn_left_out(kind, e.to_string(), out);
                        return;
                    }
                };
                // A new configuration needs a new EXT-X-MAP: from the next
                // publisher epoch (a new publisher, or one we start here).
                let published = self
                    .timeline
                    .as_ref()
                    .is_some_and(|tl| tl.last_msn().is_some());
                let from_epoch = if published {
                    if !self.pending_publisher {
                        if let Some(tl) = &mut self.timeline {
                            tl.new_publisher();
                        }
                        self.pending_publisher = true;
                    }
                    self.current_epoch().saturating_add(1)
                } else {
                    0
                };
                self.store.add_init(kind, cid, init);
                if let Some(Some(t)) = self.tracks.get_mut(s) {
                    t.inits.retain(|i| i.from_epoch < from_epoch);
                    t.inits.push(InitRef {
                        from_epoch,
                        id: cid,
                    });
                    let excess = t
                        .inits
                        .len()
                        .saturating_sub(crate::protocol::hls::store::MAX_INITS_PER_TRACK);
                    t.inits.drain(..excess);
                    t.track = track;
                    t.seq = frame.clone();
                }
            }
        }
        if let Some(ts) = &mut self.ts {
            let mut scratch = BytesMut::new();
            let _ = ts.muxer.write_frame(frame, 0, &mut scratch);
        }
    }

    pub(super) fn current_epoch(&self) -> u64 {
        self.timeline.as_ref().map_or(0, |tl| {
            tl.open_segment_flags()
                .map(|(_, e, _)| e)
                .or_else(|| tl.segments().back().map(|s| s.epoch))
                .unwrap_or(0)
        })
    }

    /// Fixes the tracks at the first coded frame; false when nothing can be
    /// packaged (yet).
    pub(super) fn start_timeline(
        &mut self,
        kind: TrackKind,
        frame: &Frame,
        out: &mut Vec<PackagerEvent>,
    ) -> bool {
        let tracks = Tracks {
            video: self.tracks.first().is_some_and(Option::is_some),
            audio: self.tracks.get(1).is_some_and(Option::is_some),
        };
        if !(tracks.video || tracks.audio) {
            self.left_out(kind, frame, out);
            return false;
        }
        let Ok(tl) = Timeline::new(self.config.timeline_config(), tracks, self.start) else {
            return false;
        };
        self.timeline = Some(tl);
        // TS carries H.264 and AAC only: HEVC/AV1 video means no TS at all.
        let video_codec = self
            .tracks
            .first()
            .and_then(Option::as_ref)
            .map(|t| t.track.codec);
        if let Some(c) = video_codec.filter(|c| *c != Fmp4Codec::Avc) {
            self.ts_disabled = true;
            out.push(PackagerEvent::Warning(PackagerWarning::NoTsRendition {
                reason: format!("MPEG-TS here carries H.264 only, the video is {c:?}"),
            }));
        } else {
            self.ts = self.new_ts_muxer();
        }
        true
    }

    pub(super) fn new_ts_muxer(&self) -> Option<TsState> {
        if self.ts_disabled {
            return None;
        }
        let tracks = TsTracks {
            video: self.tracks.first().is_some_and(Option::is_some),
            audio: self.tracks.get(1).is_some_and(Option::is_some),
        };
        let mut muxer = TsMuxer::new(tracks, self.config.ts).ok()?;
        let mut scratch = BytesMut::new();
        for t in self.tracks.iter().flatten() {
            let _ = muxer.write_frame(&t.seq, 0, &mut scratch);
        }
        Some(TsState {
            muxer,
            msn: None,
            buf: BytesMut::new(),
        })
    }
}
