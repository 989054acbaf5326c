//! HLS / LL-HLS / LL-DASH packaging, sans-IO: the timeline (which frame goes in
//! which part and segment, and their numbers), the URL scheme, playlist and MPD
//! rendering, and blocking-reload decisions. Byte muxing (fMP4, MPEG-TS) lives
//! beside it; [`packager`] joins them per stream (frames in; stored parts,
//! segments and rendered playlists out; `serve` answers requests from them).

pub mod codecs;
pub mod config;
pub mod mpd;
pub mod packager;
pub mod playlist;
pub mod render;
pub mod request;
pub mod serve;
pub mod store;
pub mod timeline;
pub mod urls;
pub mod view;

pub use config::{HlsConfig, Timing};
pub use packager::{
    Packager, PackagerConfig, PackagerError, PackagerEvent, PackagerWarning, Start,
};
pub use serve::{Answer, Cacheability, Reply, RequestError, SegmentChunks};
pub use store::{Body, Store};
pub use timeline::{FrameMeta, StartPoint, Timeline, TimelineEvent, TrackKind, Tracks};
pub use view::HlsView;

#[cfg(test)]
mod packager_tests;
#[cfg(test)]
mod playlist_tests;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod timeline_tests;
