//! The packager's rendered playlists: each version rendered once, when the
//! timeline changes, into shared bytes every request (and every waiter)
//! gets a handle to.
//!
//! Media playlists (full and `_HLS_skip` delta) change with every part;
//! the multivariant playlist, the TS playlist and the MPD only when a
//! segment closes or leaves the window (their content is whole segments and
//! the peak bandwidth).

use bytes::Bytes;

use crate::protocol::flv::config::parse_audio_sequence_header;
use crate::protocol::flv::config::parse_video_sequence_header;
use crate::protocol::fmp4::{Fmp4Codec, TrackMedia};

use super::codecs::{audio_codec_string, video_codec_string};
use super::mpd::{render_mpd, MpdParams, MpdTrack};
use super::packager::TrackState;
use super::playlist::{
    render_media, render_multivariant, render_ts, skippable_segments, MediaParams, Variants,
    VideoVariant,
};
use super::store::{slot, Body, Store};
use super::timeline::{Timeline, TrackKind};

/// BANDWIDTH before any segment closed (bits per second).
pub const FALLBACK_BANDWIDTH: u64 = 1_000_000;

/// The current version of every playlist of a stream.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    /// `{stream}.m3u8`.
    pub multivariant: Option<Body>,
    /// `{stream}/{v,a}.m3u8`, full.
    pub media: [Option<Body>; 2],
    /// `{stream}/{v,a}.m3u8?_HLS_skip=YES` (the full one when nothing can be skipped).
    pub media_delta: [Option<Body>; 2],
    /// `{stream}-ts.m3u8`.
    pub ts: Option<Body>,
    /// `{stream}.mpd`.
    pub mpd: Option<Body>,
    /// Renders so far (tests check "once per change").
    pub versions: u64,
    scratch: String,
}

fn body(s: &str) -> Body {
    Body::from_bytes(Bytes::copy_from_slice(s.as_bytes()))
}

/// `av01.P.LLT.DD` from an `av1C` record (AV1 codec ISO-BMFF binding §5).
pub fn av1_codec_string(av1c: &[u8]) -> String {
    let b1 = av1c.get(1).copied().unwrap_or(0);
    let b2 = av1c.get(2).copied().unwrap_or(0);
    let profile = b1 >> 5;
    let level = b1 & 0x1F;
    let tier = if b2 & 0x80 != 0 { 'H' } else { 'M' };
    let depth = match (b2 & 0x40 != 0, b2 & 0x20 != 0) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    format!("av01.{profile}.{level:02}{tier}.{depth:02}")
}

/// The RFC 6381 codec string of a carried track.
pub(crate) fn codec_string(t: &TrackState) -> String {
    match t.track.codec {
        Fmp4Codec::Av1 => av1_codec_string(&t.track.config),
        Fmp4Codec::Aac => parse_audio_sequence_header(&t.seq.payload)
            .map(|c| audio_codec_string(&c))
            .unwrap_or_else(|_| "mp4a.40.2".to_owned()),
        Fmp4Codec::Avc | Fmp4Codec::Hevc => parse_video_sequence_header(&t.seq.payload)
            .map(|c| video_codec_string(&c))
            .unwrap_or_else(|_| "avc1.42e01e".to_owned()),
    }
}

fn resolution(t: &TrackState) -> Option<(u32, u32)> {
    match t.track.media {
        TrackMedia::Video { width, height } => Some((width, height)),
        TrackMedia::Audio { .. } => None,
    }
}

/// Peak bits per second of `tracks` over the window's stored fMP4 segments
/// (what a player downloads; the timeline's byte counts include the TS copy),
/// or `fallback` before any segment closed.
fn bandwidth(tl: &Timeline, store: &Store, tracks: &[TrackKind], fallback: u64) -> u64 {
    tl.segments()
        .iter()
        .filter(|s| s.duration_ms > 0 && !s.gap)
        .map(|s| {
            let bytes: u64 = tracks
                .iter()
                .filter_map(|t| store.segment(*t, s.msn))
                .map(|b| b.len() as u64)
                .sum();
            bytes.saturating_mul(8_000) / s.duration_ms
        })
        .max()
        .unwrap_or(fallback)
        .max(1)
}

impl Rendered {
    /// Renders the playlists affected by a timeline change (`whole`: a
    /// segment closed or left, so all of them).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn render(
        &mut self,
        tl: &Timeline,
        store: &Store,
        stream: &str,
        tracks: &[Option<TrackState>; 2],
        has_ts: bool,
        utc_timing_url: &str,
        whole: bool,
        now_unix_ms: u64,
    ) {
        self.versions = self.versions.saturating_add(1);
        let mut out = std::mem::take(&mut self.scratch);
        let carried = |k: TrackKind| tracks.get(slot(k)).and_then(Option::as_ref);
        let both = carried(TrackKind::Video).is_some() && carried(TrackKind::Audio).is_some();
        let skippable = skippable_segments(tl) > 0;
        for kind in [TrackKind::Video, TrackKind::Audio] {
            let Some(t) = carried(kind) else {
                continue;
            };
            let mut params = MediaParams {
                track: kind,
                inits: &t.inits,
                other_rendition: both,
                skip: false,
            };
            render_media(&mut out, tl, params);
            let full = body(&out);
            let delta = if skippable {
                params.skip = true;
                render_media(&mut out, tl, params);
                body(&out)
            } else {
                full.clone()
            };
            if let Some(m) = self.media.get_mut(slot(kind)) {
                *m = Some(full);
            }
            if let Some(m) = self.media_delta.get_mut(slot(kind)) {
                *m = Some(delta);
            }
        }
        if !whole && self.multivariant.is_some() {
            self.scratch = out;
            return;
        }
        let video = carried(TrackKind::Video);
        let audio = carried(TrackKind::Audio);
        let variants = Variants {
            video: video.map(|t| VideoVariant {
                codecs: codec_string(t),
                resolution: resolution(t),
            }),
            audio_codecs: audio.map(codec_string),
            bandwidth: bandwidth(
                tl,
                store,
                &[TrackKind::Video, TrackKind::Audio],
                FALLBACK_BANDWIDTH,
            ),
        };
        render_multivariant(&mut out, stream, &variants);
        self.multivariant = Some(body(&out));
        if has_ts {
            render_ts(&mut out, tl, stream);
            self.ts = Some(body(&out));
        }
        let mpd_track = |t: &TrackState, kind: TrackKind| MpdTrack {
            codecs: codec_string(t),
            init_id: t.inits.last().map_or(0, |i| i.id),
            bandwidth: bandwidth(tl, store, &[kind], FALLBACK_BANDWIDTH / 8),
            resolution: resolution(t),
        };
        let params = MpdParams {
            stream,
            utc_timing_url,
            video: video.map(|t| mpd_track(t, TrackKind::Video)),
            audio: audio.map(|t| mpd_track(t, TrackKind::Audio)),
            now_unix_ms,
        };
        // No segment yet (a new publisher's first keyframe still to come):
        // no MPD, the request waits for one (`RequestError::NotStarted`).
        self.mpd = render_mpd(&mut out, tl, &params).then(|| body(&out));
        self.scratch = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn av1_codec_strings_follow_the_binding() {
        // marker/version, profile 0 level 8, tier 0 8-bit.
        assert_eq!(av1_codec_string(&[0x81, 0x08, 0x0C, 0x00]), "av01.0.08M.08");
        // profile 1 level 13, high tier, 10-bit.
        assert_eq!(av1_codec_string(&[0x81, 0x2D, 0xC0, 0x00]), "av01.1.13H.10");
    }
}
