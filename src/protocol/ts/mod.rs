//! Sans-IO MPEG-TS muxer for classic HLS (`{stream}-ts.m3u8`).
//!
//! [`Frame`](crate::protocol::Frame)s in (FLV tag bodies: H.264 from legacy FLV or
//! Enhanced RTMP `avc1`, AAC from legacy FLV or Enhanced RTMP `mp4a`), whole
//! 188-byte transport packets out into a caller's `BytesMut`, one segment at a
//! time; the caller (the HLS packager) decides where segments start.
//!
//! - PAT + PMT at every [`TsMuxer::start_segment`], listing only the tracks
//!   present (audio-only and video-only streams work); PCR on the video PID, or
//!   the audio PID when there is no video.
//! - H.264: AVCC → Annex B with an AUD first and the last sequence header's
//!   SPS/PPS before every IDR; PTS = DTS + composition time, 90 kHz.
//! - AAC: every raw frame behind an ADTS header built from the AudioSpecificConfig.
//! - Codecs TS cannot carry here are refused per track ([`track_support`],
//!   [`TsError::UnsupportedCodec`]).
//!
//! Module map: `codec` peels FLV framing, `h264` and `adts` rewrite the
//! elementary streams, `pes` writes PES headers and clocks, `psi` the tables,
//! `packet` cuts everything into 188-byte packets, `muxer` ties them together.

#![forbid(unsafe_code)]
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod adts;
mod codec;
mod error;
mod h264;
mod muxer;
mod packet;
mod pes;
mod psi;

#[cfg(test)]
mod oracle_tests;

pub use codec::track_support;
pub use error::{TrackKind, TsError};
pub use h264::MAX_PARAMETER_SETS;
pub use muxer::{TsLimits, TsMuxer, TsTracks, Written};
pub use packet::TS_PACKET_SIZE;
pub use pes::PTS_DELAY_MS;
pub use psi::{PID_AUDIO, PID_PMT, PID_VIDEO};
