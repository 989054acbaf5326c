//! HLS, LL-HLS and LL-DASH viewers: playlist and manifest parsing, fMP4 and
//! MPEG-TS demuxing, a player's buffer, and the player state machine, all
//! sans-IO (time passed in); the worker drives [`player::HlsPlayer`] over its
//! io_uring connections like the other viewer kinds.

pub mod fmp4;
pub mod http;
pub mod m3u8;
pub mod mpd;
pub mod nal;
pub mod playback;
pub mod player;
pub mod ts;

#[cfg(test)]
mod player_tests;
