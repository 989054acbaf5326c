//! The one media unit every layer passes around.
//!
//! A [`Frame`] is an FLV tag body with its type and timestamp. RTMP audio (8),
//! video (9) and data (18) messages carry exactly these bodies, so the RTMP
//! decoder, the FLV demuxer, the stream layer and both egress encoders share it.

use bytes::Bytes;

/// What a frame carries: the FLV tag type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// FLV tag type 8 / RTMP message type 8.
    Audio,
    /// FLV tag type 9 / RTMP message type 9.
    Video,
    /// FLV tag type 18 / RTMP message type 18 (AMF0 data, e.g. `onMetaData`).
    Script,
}

impl FrameKind {
    /// The FLV tag type byte (also the RTMP message type id).
    pub const fn tag_type(self) -> u8 {
        match self {
            FrameKind::Audio => 8,
            FrameKind::Video => 9,
            FrameKind::Script => 18,
        }
    }

    /// Maps an FLV tag type / RTMP message type id to a kind.
    pub const fn from_tag_type(t: u8) -> Option<Self> {
        match t {
            8 => Some(FrameKind::Audio),
            9 => Some(FrameKind::Video),
            18 => Some(FrameKind::Script),
            _ => None,
        }
    }
}

/// One audio, video or script frame.
///
/// `timestamp` is the 32-bit millisecond timestamp as carried on the wire; it
/// wraps after ~49.7 days, so compare timestamps with [`timestamp_delta`], never
/// with `<`. `keyframe` and `sequence_header` are derived from the payload once,
/// when the frame is created (see [`crate::protocol::flv::codec`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Milliseconds, 32-bit wrapping.
    pub timestamp: u32,
    /// Audio, video or script.
    pub kind: FrameKind,
    /// A video keyframe (random access point). Always false for audio/script.
    pub keyframe: bool,
    /// A codec configuration record (AVC/HEVC/AV1 decoder config, AAC
    /// AudioSpecificConfig). Viewers need it before any coded frame.
    pub sequence_header: bool,
    /// The FLV tag body, exactly as carried in the RTMP message payload.
    pub payload: Bytes,
}

impl Frame {
    /// Builds a frame and classifies it (keyframe / sequence header) from its payload.
    pub fn new(kind: FrameKind, timestamp: u32, payload: Bytes) -> Self {
        let (keyframe, sequence_header) = match kind {
            FrameKind::Video => {
                let info = super::codec::VideoTagInfo::parse(&payload);
                (
                    info.is_some_and(|i| i.keyframe),
                    info.is_some_and(|i| i.sequence_header),
                )
            }
            FrameKind::Audio => (
                false,
                super::codec::AudioTagInfo::parse(&payload).is_some_and(|i| i.sequence_header),
            ),
            FrameKind::Script => (false, false),
        };
        Frame {
            timestamp,
            kind,
            keyframe,
            sequence_header,
            payload,
        }
    }

    /// True for a video frame that is neither a keyframe nor a sequence header:
    /// the only kind a slow viewer may skip.
    pub fn is_droppable(&self) -> bool {
        self.kind == FrameKind::Video && !self.keyframe && !self.sequence_header
    }
}

/// Signed distance `later - earlier` between two wrapping 32-bit timestamps.
///
/// Correct as long as the true distance is under 2^31 ms (~24.8 days).
pub const fn timestamp_delta(later: u32, earlier: u32) -> i32 {
    later.wrapping_sub(earlier) as i32
}

/// Extends wrapping 32-bit timestamps to a 64-bit timeline.
///
/// Feed timestamps in arrival order; each is placed nearest to the previous one,
/// so a wrap from `0xFFFF_FFxx` to `0x0000_00xx` moves forward, not back 49 days.
#[derive(Clone, Debug, Default)]
pub struct TimestampUnwrapper {
    last: Option<(u32, i64)>,
}

impl TimestampUnwrapper {
    /// Returns `ts` on the extended timeline.
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        let ext = match self.last {
            None => ts as i64,
            Some((raw, ext)) => ext + timestamp_delta(ts, raw) as i64,
        };
        self.last = Some((ts, ext));
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_handles_wraparound() {
        assert_eq!(timestamp_delta(5, u32::MAX - 4), 10);
        assert_eq!(timestamp_delta(u32::MAX - 4, 5), -10);
        assert_eq!(timestamp_delta(1000, 40), 960);
    }

    #[test]
    fn unwrapper_moves_forward_across_the_wrap() {
        let mut u = TimestampUnwrapper::default();
        assert_eq!(u.unwrap(u32::MAX - 20), (u32::MAX - 20) as i64);
        assert_eq!(u.unwrap(10), u32::MAX as i64 + 11);
        assert_eq!(
            u.unwrap(5),
            u32::MAX as i64 + 6,
            "small backward step stays small"
        );
    }

    #[test]
    fn kind_maps_tag_types() {
        for k in [FrameKind::Audio, FrameKind::Video, FrameKind::Script] {
            assert_eq!(FrameKind::from_tag_type(k.tag_type()), Some(k));
        }
        assert_eq!(FrameKind::from_tag_type(20), None);
    }
}
