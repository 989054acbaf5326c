//! A media source that loops an FLV file, rebasing timestamps so the stream runs
//! forward forever, as a camera would.
//!
//! The file is demuxed once with ringcast's [`FlvDemuxer`] and kept in memory as
//! frames (payloads are refcounted, so every loop reuses the same bytes).

use ringcast::protocol::flv::config::{parse_video_sequence_header, VideoConfig};
use ringcast::protocol::flv::{FlvDemuxer, FlvError, FlvLimits};
use ringcast::protocol::{Frame, FrameKind};
use thiserror::Error;

/// Largest FLV file accepted: it is held in memory whole.
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// Why a file cannot be used as a source.
#[derive(Debug, Error)]
pub enum FileSourceError {
    /// Reading failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file exceeds [`MAX_FILE_BYTES`].
    #[error("{path} is {len} bytes, over the {limit}-byte limit for a looped source")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        len: u64,
        /// [`MAX_FILE_BYTES`].
        limit: u64,
    },
    /// The FLV is malformed.
    #[error("demuxing: {0}")]
    Flv(#[from] FlvError),
    /// The file has no coded video frame.
    #[error("no video frames in the file")]
    NoVideo,
}

/// Loops an FLV file's frames with timestamps that keep increasing.
#[derive(Clone, Debug)]
pub struct FileSource {
    headers: Vec<Frame>,
    media: Vec<Frame>,
    /// Length of one loop, ms: first keyframe to last video frame plus one frame interval.
    loop_ms: u64,
    first_ts: u32,
    next: usize,
    loops: u64,
    nal_len_size: u8,
}

impl FileSource {
    /// Reads and demuxes `path`.
    pub fn open(path: &str) -> Result<Self, FileSourceError> {
        let io = |source| FileSourceError::Io {
            path: path.to_string(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_FILE_BYTES {
            return Err(FileSourceError::TooLarge {
                path: path.into(),
                len,
                limit: MAX_FILE_BYTES,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Self::from_flv(&bytes)
    }

    /// Builds a source from a whole FLV file in memory.
    pub fn from_flv(bytes: &[u8]) -> Result<Self, FileSourceError> {
        let mut demux = FlvDemuxer::new(FlvLimits::default());
        let mut frames = Vec::new();
        demux.decode_all(bytes, &mut frames)?;
        let mut headers = Vec::new();
        let mut media = Vec::new();
        let mut nal_len_size = 4;
        for f in frames {
            if f.sequence_header || f.kind == FrameKind::Script {
                // Keep the first of each kind: a mid-file repeat would restart decoders.
                if !headers.iter().any(|h: &Frame| h.kind == f.kind) {
                    if let (FrameKind::Video, Ok(VideoConfig::Avc(avc))) =
                        (f.kind, parse_video_sequence_header(&f.payload))
                    {
                        nal_len_size = avc.nal_length_size;
                    }
                    headers.push(f);
                }
            } else {
                media.push(f);
            }
        }
        let video: Vec<u32> = media
            .iter()
            .filter(|f| f.kind == FrameKind::Video)
            .map(|f| f.timestamp)
            .collect();
        let (Some(&first_v), Some(&last_v)) = (video.first(), video.last()) else {
            return Err(FileSourceError::NoVideo);
        };
        let frame_ms = if video.len() > 1 {
            (ringcast::protocol::flv::frame::timestamp_delta(last_v, first_v).max(0) as u64
                / (video.len() as u64 - 1))
                .max(1)
        } else {
            40
        };
        // Start the loop on a keyframe so every repetition is decodable from its start,
        // and make one loop exactly as long as its video, so keyframe spacing holds
        // across the seam; audio outside that window would overlap the next loop.
        let Some(first_key) = media.iter().position(|f| f.keyframe) else {
            return Err(FileSourceError::NoVideo);
        };
        let first_ts = media[first_key].timestamp;
        let loop_ms = ringcast::protocol::flv::frame::timestamp_delta(last_v, first_ts).max(0)
            as u64
            + frame_ms;
        media.retain(|f| {
            let offset = ringcast::protocol::flv::frame::timestamp_delta(f.timestamp, first_ts);
            offset >= 0 && (offset as u64) < loop_ms
        });
        media.drain(..media.iter().position(|f| f.keyframe).unwrap_or(0));
        Ok(FileSource {
            headers,
            media,
            loop_ms,
            first_ts,
            next: 0,
            loops: 0,
            nal_len_size,
        })
    }

    /// Metadata and sequence headers, sent once before the media.
    pub fn sequence_headers(&self) -> Vec<Frame> {
        self.headers
            .iter()
            .map(|f| Frame {
                timestamp: 0,
                ..f.clone()
            })
            .collect()
    }

    /// The AVC NAL length size the file's avcC declares.
    pub fn nal_len_size(&self) -> u8 {
        self.nal_len_size
    }

    /// Media frames in one loop.
    pub fn frames_per_loop(&self) -> usize {
        self.media.len()
    }

    fn rebased(&self, f: &Frame) -> u64 {
        let offset = ringcast::protocol::flv::frame::timestamp_delta(f.timestamp, self.first_ts)
            .max(0) as u64;
        self.loops * self.loop_ms + offset
    }

    /// Unwrapped timestamp (ms) of the next frame.
    pub fn next_timestamp(&self) -> u64 {
        self.media.get(self.next).map_or(0, |f| self.rebased(f))
    }

    /// The next frame, timestamps rebased onto an ever-increasing timeline.
    pub fn next_frame(&mut self) -> Frame {
        let Some(f) = self.media.get(self.next) else {
            // `from_flv` guarantees at least one video frame; an empty list cannot happen.
            return Frame::new(FrameKind::Script, 0, bytes::Bytes::new());
        };
        let ts = self.rebased(f);
        let frame = Frame {
            timestamp: ts as u32,
            ..f.clone()
        };
        self.next += 1;
        if self.next == self.media.len() {
            self.next = 0;
            self.loops += 1;
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use ringcast::protocol::flv::tag::{encode_tag, write_file_header, FILE_HEADER_WITH_PTS0_LEN};

    use crate::synthetic::{SyntheticConfig, SyntheticSource};

    /// A 2-second FLV (25 fps, 1 s GOP) starting at timestamp 1000, like a cut recording.
    fn file() -> Vec<u8> {
        let mut hdr = [0u8; FILE_HEADER_WITH_PTS0_LEN];
        write_file_header(true, true, &mut hdr);
        let mut out = BytesMut::from(&hdr[..]);
        let mut src = SyntheticSource::new(SyntheticConfig {
            video_bitrate: 100_000,
            audio_bitrate: 32_000,
            fps: 25,
            gop_ms: 1000,
        })
        .unwrap();
        for f in src.sequence_headers() {
            encode_tag(&f, &mut out).unwrap();
        }
        while src.next_timestamp() < 2000 {
            let mut f = src.next_frame();
            f.timestamp += 1000;
            encode_tag(&f, &mut out).unwrap();
        }
        out.to_vec()
    }

    #[test]
    fn loops_with_increasing_timestamps_and_same_gop() {
        let mut src = FileSource::from_flv(&file()).unwrap();
        assert_eq!(
            src.sequence_headers().len(),
            3,
            "metadata, AVC and AAC headers"
        );
        let per_loop = src.frames_per_loop();
        let mut last = 0u64;
        let mut keys = Vec::new();
        let mut video = 0;
        for _ in 0..per_loop * 3 {
            let ts = src.next_timestamp();
            let f = src.next_frame();
            assert_eq!(ts as u32, f.timestamp);
            assert!(ts >= last, "timestamps never go back: {ts} after {last}");
            last = ts;
            if f.kind == FrameKind::Video {
                if f.keyframe {
                    keys.push((video, ts));
                }
                video += 1;
            }
        }
        assert_eq!(video, 150);
        assert_eq!(
            keys.iter().map(|k| k.0).collect::<Vec<_>>(),
            [0, 25, 50, 75, 100, 125]
        );
        // Keyframes stay 1 s apart across the loop seam.
        assert!(keys.windows(2).all(|w| w[1].1 - w[0].1 == 1000), "{keys:?}");
        assert_eq!(keys[0].1, 0, "rebased to start at 0");
    }

    #[test]
    fn rejects_files_it_cannot_loop() {
        assert!(matches!(
            FileSource::from_flv(b"NOTFLV!!!!!!!"),
            Err(FileSourceError::Flv(_))
        ));
        let mut hdr = [0u8; FILE_HEADER_WITH_PTS0_LEN];
        write_file_header(true, true, &mut hdr);
        assert!(matches!(
            FileSource::from_flv(&hdr),
            Err(FileSourceError::NoVideo)
        ));
        assert!(matches!(
            FileSource::open("/nonexistent.flv"),
            Err(FileSourceError::Io { .. })
        ));
    }
}
