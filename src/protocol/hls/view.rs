//! An immutable snapshot of one stream's packager: every stored body, the
//! current playlists and the few timeline numbers a request is decided on.
//! Built once per packager change ([`Packager::view`]) and shared (`Arc`) by
//! the owner core and every core that serves the stream, so each core
//! answers HLS/DASH requests from its own copy with no lock per request.

use super::packager::Packager;
use super::request::TimelineState;
use super::store::{slot, Body, Store};
use super::timeline::TrackKind;

/// The playlists of one version (each rendered once, shared).
#[derive(Clone, Debug, Default)]
pub struct Playlists {
    /// `{stream}.m3u8`.
    pub multivariant: Option<Body>,
    /// The media playlists (video, audio), full.
    pub media: [Option<Body>; 2],
    /// The media playlists, `_HLS_skip` delta.
    pub media_delta: [Option<Body>; 2],
    /// `{stream}-ts.m3u8`.
    pub ts: Option<Body>,
    /// `{stream}.mpd`.
    pub mpd: Option<Body>,
}

/// One stream's packaged output at one moment; `Send + Sync`, immutable.
#[derive(Clone, Debug)]
pub struct HlsView {
    pub(crate) state: Option<TimelineState>,
    pub(crate) tracks: [bool; 2],
    pub(crate) store: Store,
    pub(crate) playlists: Playlists,
    version: u64,
}

impl HlsView {
    /// A view of a stream with nothing packaged yet (every request:
    /// [`super::RequestError::NotStarted`]).
    pub fn empty() -> Self {
        HlsView {
            state: None,
            tracks: [false, false],
            store: Store::default(),
            playlists: Playlists::default(),
            version: 0,
        }
    }

    /// The packager's render count when the view was taken: a later view of
    /// the same packager has a higher one.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The timeline numbers (None before the first coded frame).
    pub fn state(&self) -> Option<&TimelineState> {
        self.state.as_ref()
    }

    /// Whether `track` is carried.
    pub fn carries(&self, track: TrackKind) -> bool {
        self.tracks.get(slot(track)).copied().unwrap_or(false)
    }

    /// The stream ended (`EXT-X-ENDLIST`).
    pub fn is_finished(&self) -> bool {
        self.state.is_some_and(|s| s.finished)
    }

    /// The stored bodies.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Packager {
    /// A snapshot of everything this packager serves now (handles only; no
    /// media is copied).
    pub fn view(&self) -> HlsView {
        let r = &self.rendered;
        HlsView {
            state: self.timeline.as_ref().map(TimelineState::of),
            tracks: [
                self.tracks.first().is_some_and(Option::is_some),
                self.tracks.get(1).is_some_and(Option::is_some),
            ],
            store: self.store.clone(),
            playlists: Playlists {
                multivariant: r.multivariant.clone(),
                media: r.media.clone(),
                media_delta: r.media_delta.clone(),
                ts: r.ts.clone(),
                mpd: r.mpd.clone(),
            },
            version: r.versions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_cross_cores() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<HlsView>();
        assert!(HlsView::empty()
            .answer(super::super::urls::Resource::Multivariant, "", 0, 0)
            .is_err());
    }
}
