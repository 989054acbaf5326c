//! Per-stream statistics for the API and per-shard counters for metrics.

use crate::protocol::flv::codec::{AudioCodec, AudioTagInfo, VideoCodec, VideoTagInfo};
use crate::protocol::{Frame, FrameKind};

use super::directory::StreamId;
use super::key::StreamKey;

/// Length of the window over which bitrate and frame rate are measured.
const RATE_WINDOW_MS: u64 = 1_000;

/// A stream's statistics, as reported by the API.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamStats {
    /// The key.
    pub key: StreamKey,
    /// The stream id.
    pub stream_id: StreamId,
    /// True on the owner core, false on a replica.
    pub owned: bool,
    /// False while the publisher is gone (grace period) or after the end.
    pub publishing: bool,
    /// When the stream was opened on this core (`now_ms` of `open_stream`).
    pub created_at_ms: u64,
    /// Frames received.
    pub frames_in: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Bits per second over the last complete window.
    pub bitrate_bps: u64,
    /// Video frames per second over the last complete window (x100 for two decimals).
    pub fps_x100: u64,
    /// Video codec of the last video frame.
    pub video_codec: Option<VideoCodec>,
    /// Audio codec of the last audio frame.
    pub audio_codec: Option<AudioCodec>,
    /// Picture width, if the server learnt it (metadata or sequence header).
    pub width: Option<u32>,
    /// Picture height, if the server learnt it.
    pub height: Option<u32>,
    /// Viewers on this core.
    pub viewers: usize,
    /// Times the timestamp corrector rebased the timeline.
    pub timestamp_rebases: u64,
}

/// Bitrate and frame-rate meter over fixed windows.
#[derive(Clone, Debug, Default)]
pub(crate) struct RateMeter {
    window_start_ms: Option<u64>,
    bytes: u64,
    video_frames: u64,
    pub(crate) bitrate_bps: u64,
    pub(crate) fps_x100: u64,
}

impl RateMeter {
    pub(crate) fn record(&mut self, frame: &Frame, now_ms: u64) {
        let start = *self.window_start_ms.get_or_insert(now_ms);
        let elapsed = now_ms.saturating_sub(start);
        if elapsed >= RATE_WINDOW_MS {
            self.bitrate_bps = self.bytes.saturating_mul(8_000) / elapsed;
            self.fps_x100 = self.video_frames.saturating_mul(100_000) / elapsed;
            self.window_start_ms = Some(now_ms);
            self.bytes = 0;
            self.video_frames = 0;
        }
        self.bytes += frame.payload.len() as u64;
        if frame.kind == FrameKind::Video && !frame.sequence_header {
            self.video_frames += 1;
        }
    }
}

/// Records the codecs a frame reveals.
pub(crate) fn note_codecs(stats: &mut StreamStats, frame: &Frame) {
    match frame.kind {
        FrameKind::Video => {
            if let Some(codec) = VideoTagInfo::parse(&frame.payload).and_then(|i| i.codec) {
                stats.video_codec = Some(codec);
            }
        }
        FrameKind::Audio => {
            if let Some(info) = AudioTagInfo::parse(&frame.payload) {
                stats.audio_codec = Some(info.codec);
            }
        }
        FrameKind::Script => {}
    }
}

/// Counters of one shard, summed across cores by the metrics layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardCounters {
    /// Frames pushed by publishers or replicated in.
    pub frames_in: u64,
    /// Payload bytes pushed.
    pub bytes_in: u64,
    /// Frames handed to viewers.
    pub frames_out: u64,
    /// Payload bytes handed to viewers.
    pub bytes_out: u64,
    /// Non-key video dropped for viewers past their soft bound.
    pub dropped_slow: u64,
    /// Frames passed over by viewers waiting for their first keyframe.
    pub skipped_before_start: u64,
    /// Viewers closed for lag in time.
    pub closed_lag_time: u64,
    /// Viewers closed for lag in bytes.
    pub closed_lag_bytes: u64,
    /// Viewers closed because the ring evicted frames they needed.
    pub closed_evicted: u64,
    /// Frames evicted from rings (all streams).
    pub ring_evictions: u64,
    /// Replicas: frames missed across cores (sequence gaps) plus those skipped
    /// while resyncing at the next keyframe.
    pub mesh_gap: u64,
    /// Streams opened (owned or replicated).
    pub streams_opened: u64,
    /// Streams ended.
    pub streams_ended: u64,
    /// Viewers added.
    pub viewers_added: u64,
    /// Viewers removed.
    pub viewers_removed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn rate_meter_measures_a_window() {
        let mut m = RateMeter::default();
        let f = Frame::new(
            FrameKind::Video,
            0,
            Bytes::from(vec![0x27, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
        );
        for i in 0..=25u64 {
            m.record(&f, i * 40);
        }
        // 25 frames of 10 bytes in 1000 ms
        assert_eq!(m.bitrate_bps, 2_000);
        assert_eq!(m.fps_x100, 2_500);
    }
}
