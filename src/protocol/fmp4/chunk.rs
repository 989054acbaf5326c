//! A media chunk: `moof(mfhd, traf(tfhd, tfdt, trun)) + mdat` for one track,
//! which is at once an LL-HLS part and an LL-DASH (CMAF) chunk.
//!
//! Times come from the caller's stream timeline (milliseconds since the
//! stream's origin, as the FLV timestamps say), never from a clock, and every
//! tick value is computed from an absolute millisecond time, so
//! `tfdt` of the next chunk equals this chunk's `tfdt` + durations whenever the
//! caller passes `last_duration_ms` = next chunk's first DTS − this chunk's last DTS.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::Fmp4Error;
use super::sample::{sample_from_frame, SampleData};
use super::track::Track;
use super::writer::BoxWriter;
use crate::protocol::flv::frame::timestamp_delta;
use crate::protocol::Frame;

/// `tfhd` flag: offsets are relative to the `moof` (CMAF §7.3.2.1).
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags.
const TRUN_DATA_OFFSET: u32 = 0x00_0001;
const TRUN_DURATION: u32 = 0x00_0100;
const TRUN_SIZE: u32 = 0x00_0200;
const TRUN_FLAGS: u32 = 0x00_0400;
const TRUN_CTS: u32 = 0x00_0800;
/// Sample flags (ISO 14496-12 §8.8.3.1): sync = depends on no other sample;
/// non-sync = depends on others and `sample_is_non_sync_sample`.
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// See [`SYNC_SAMPLE_FLAGS`].
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;
/// Size of the `mdat` box header written at the end of [`Chunk::header`].
pub const MDAT_HEADER_LEN: usize = 8;

/// Bounds on one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Most samples in one chunk (bounds the `trun` and the header allocation).
    pub max_samples: usize,
    /// Most media bytes in one chunk's `mdat`.
    pub max_bytes: usize,
}

impl Default for ChunkLimits {
    /// 1,024 samples (over 20 s of 48 kHz AAC; parts are 1/3 s) and 16 MiB.
    fn default() -> Self {
        ChunkLimits {
            max_samples: 1024,
            max_bytes: 16 << 20,
        }
    }
}

/// What a chunk is built from.
#[derive(Clone, Copy, Debug)]
pub struct ChunkInput<'a> {
    /// `mfhd.sequence_number`: the caller numbers chunks from the stream's
    /// timeline so every box numbers them alike.
    pub sequence_number: u32,
    /// Coded frames of the track, in decode order (no sequence headers).
    pub frames: &'a [Frame],
    /// Decode time of `frames[0]` on the stream timeline, in milliseconds
    /// (e.g. its timestamp extended by [`crate::protocol::flv::frame::TimestampUnwrapper`]).
    /// The following frames are placed by their timestamps' distance from `frames[0]`.
    pub first_dts_ms: u64,
    /// Duration of the last frame, in milliseconds.
    pub last_duration_ms: u32,
}

/// A finished chunk: the box header bytes and the sample bytes, not joined.
///
/// The samples are slices of the frames' payloads (refcounted, never copied),
/// so a chunk costs its ~100-byte header plus nothing; a sender writes
/// `header` then `samples` as one gathered write, the way HTTP-FLV already
/// sends shared bodies. [`Chunk::to_bytes`] joins them once when one
/// contiguous buffer is wanted (a whole segment, a `Range` response).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// `moof` followed by the `mdat` box header.
    pub header: Bytes,
    /// The `mdat` payload, one entry per sample, in order.
    pub samples: Vec<Bytes>,
    /// `tfdt.baseMediaDecodeTime`, in the track's timescale.
    pub base_media_decode_time: u64,
    /// Sum of the sample durations, in the track's timescale.
    pub duration: u64,
    /// The `mfhd.sequence_number` written.
    pub sequence_number: u32,
    /// True when the first sample is a sync sample (a segment may start here).
    pub starts_with_sync: bool,
}

impl Chunk {
    /// Total size in bytes (header + samples).
    pub fn len(&self) -> usize {
        self.header.len() + self.samples.iter().map(Bytes::len).sum::<usize>()
    }

    /// Never true: a chunk holds at least one sample and its boxes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The chunk as one contiguous buffer (one copy of the samples).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len());
        out.put_slice(&self.header);
        for s in &self.samples {
            out.put_slice(s);
        }
        out.freeze()
    }
}

/// `ms` on a `timescale` timeline, rounded down; exact for 90 kHz and 1 kHz.
fn ticks(ms: u64, timescale: u32) -> Result<u64, Fmp4Error> {
    u64::try_from(u128::from(ms) * u128::from(timescale) / 1000).map_err(|_| {
        Fmp4Error::TimeOutOfRange {
            what: "decode time",
        }
    })
}

/// Builds one chunk of `track` from `input`.
pub fn write_chunk(
    track: &Track,
    input: &ChunkInput<'_>,
    limits: &ChunkLimits,
) -> Result<Chunk, Fmp4Error> {
    let frames = input.frames;
    let first = frames.first().ok_or(Fmp4Error::EmptyChunk)?;
    if frames.len() > limits.max_samples {
        return Err(Fmp4Error::TooManySamples {
            count: frames.len(),
            limit: limits.max_samples,
        });
    }
    // mdat's 32-bit size field also bounds the payload.
    let max_bytes = limits.max_bytes.min(u32::MAX as usize - MDAT_HEADER_LEN);

    let mut samples: Vec<SampleData> = Vec::with_capacity(frames.len());
    let mut dts_ms: Vec<u64> = Vec::with_capacity(frames.len() + 1);
    let mut total = 0usize;
    for (index, frame) in frames.iter().enumerate() {
        let s = sample_from_frame(track.codec, frame, index)?;
        total = total
            .checked_add(s.data.len())
            .filter(|t| *t <= max_bytes)
            .ok_or(Fmp4Error::ChunkTooLarge { limit: max_bytes })?;
        let offset = i64::from(timestamp_delta(frame.timestamp, first.timestamp));
        let dts = i64::try_from(input.first_dts_ms)
            .ok()
            .and_then(|f| f.checked_add(offset))
            .and_then(|d| u64::try_from(d).ok())
            .ok_or(Fmp4Error::TimeOutOfRange {
                what: "frame decode time",
            })?;
        if let Some(&prev) = dts_ms.last() {
            if dts < prev {
                return Err(Fmp4Error::NonMonotonicTimestamp {
                    index,
                    back_ms: i64::try_from(prev - dts).unwrap_or(i64::MAX),
                });
            }
        }
        dts_ms.push(dts);
        samples.push(s);
    }
    let last_dts = dts_ms.last().copied().unwrap_or(input.first_dts_ms);
    let end_ms = last_dts
        .checked_add(u64::from(input.last_duration_ms))
        .ok_or(Fmp4Error::TimeOutOfRange {
            what: "chunk end time",
        })?;
    dts_ms.push(end_ms);

    let timescale = track.timescale;
    let base = ticks(input.first_dts_ms, timescale)?;
    let with_cts = track.codec.is_video();
    let per_sample = if with_cts { 16 } else { 12 };
    // moof 8 + mfhd 16 + traf 8 + tfhd 16 + tfdt 20 + trun 20, then the entries.
    let fixed = 88 + MDAT_HEADER_LEN;
    let mut w = BoxWriter::new(fixed + per_sample * samples.len());

    w.start(b"moof")?;
    w.start_full(b"mfhd", 0, 0)?;
    w.u32(input.sequence_number)?;
    w.end()?;
    w.start(b"traf")?;
    w.start_full(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF)?;
    w.u32(track.track_id)?;
    w.end()?;
    w.start_full(b"tfdt", 1, 0)?;
    w.u64(base)?;
    w.end()?;
    let mut flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS;
    if with_cts {
        flags |= TRUN_CTS;
    }
    // Version 1: signed composition offsets, so B-frames need no edit list.
    w.start_full(b"trun", 1, flags)?;
    w.u32(
        u32::try_from(samples.len()).map_err(|_| Fmp4Error::TooManySamples {
            count: samples.len(),
            limit: limits.max_samples,
        })?,
    )?;
    let data_offset_at = w.len();
    w.u32(0)?; // data_offset, patched once the moof size is known
    let mut duration = 0u64;
    for (i, s) in samples.iter().enumerate() {
        let (Some(&dts), Some(&next)) = (dts_ms.get(i), dts_ms.get(i + 1)) else {
            return Err(Fmp4Error::Internal {
                what: "decode times shorter than samples",
            });
        };
        let start = ticks(dts, timescale)?;
        let d = ticks(next, timescale)? - start;
        duration += d;
        w.u32(u32::try_from(d).map_err(|_| Fmp4Error::TimeOutOfRange {
            what: "sample duration",
        })?)?;
        w.u32(
            u32::try_from(s.data.len())
                .map_err(|_| Fmp4Error::ChunkTooLarge { limit: max_bytes })?,
        )?;
        w.u32(if s.sync {
            SYNC_SAMPLE_FLAGS
        } else {
            NON_SYNC_SAMPLE_FLAGS
        })?;
        if with_cts {
            let pts_ms = i128::from(dts) + i128::from(s.cts_ms);
            let out_of_range = || Fmp4Error::TimeOutOfRange {
                what: "composition time",
            };
            let abs_ticks = i128::from(ticks(
                u64::try_from(pts_ms.unsigned_abs()).map_err(|_| out_of_range())?,
                timescale,
            )?);
            // A negative PTS (B-frames right at the timeline's origin) rounds symmetrically.
            let pts = if pts_ms < 0 { -abs_ticks } else { abs_ticks };
            w.i32(i32::try_from(pts - i128::from(start)).map_err(|_| {
                Fmp4Error::TimeOutOfRange {
                    what: "composition offset",
                }
            })?)?;
        }
    }
    w.end()?; // trun
    w.end()?; // traf
    w.end()?; // moof
    let moof_len = w.len();
    let data_offset =
        u32::try_from(moof_len + MDAT_HEADER_LEN).map_err(|_| Fmp4Error::HeaderTooLarge {
            limit: fixed + per_sample * samples.len(),
        })?;
    w.patch_u32(data_offset_at, data_offset)?;
    // The mdat's size covers the samples that follow the header.
    let mdat_size = u32::try_from(MDAT_HEADER_LEN + total)
        .map_err(|_| Fmp4Error::ChunkTooLarge { limit: max_bytes })?;
    w.u32(mdat_size)?;
    w.bytes(b"mdat")?;
    let header = w.finish()?;
    let starts_with_sync = samples.first().is_some_and(|s| s.sync);
    Ok(Chunk {
        header: Bytes::from(header),
        samples: samples.into_iter().map(|s| s.data).collect(),
        base_media_decode_time: base,
        duration,
        sequence_number: input.sequence_number,
        starts_with_sync,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::fmp4::track::{Fmp4Codec, TrackMedia};
    use crate::protocol::FrameKind;

    fn video_track() -> Track {
        Track {
            track_id: 1,
            codec: Fmp4Codec::Avc,
            timescale: 90_000,
            media: TrackMedia::Video {
                width: 16,
                height: 16,
            },
            config: Bytes::new(),
        }
    }

    fn avc(ts: u32, key: bool, cts: i32, data: &[u8]) -> Frame {
        let c = cts.to_be_bytes();
        let mut p = vec![if key { 0x17 } else { 0x27 }, 1, c[1], c[2], c[3]];
        p.extend_from_slice(data);
        Frame::new(FrameKind::Video, ts, Bytes::from(p))
    }

    #[test]
    fn moof_layout_byte_by_byte() {
        let frames = [avc(1000, true, 80, &[1, 2, 3]), avc(1040, false, -40, &[4])];
        let input = ChunkInput {
            sequence_number: 9,
            frames: &frames,
            first_dts_ms: 5_000,
            last_duration_ms: 40,
        };
        let c = write_chunk(&video_track(), &input, &ChunkLimits::default()).unwrap();
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[0, 0, 0, 0x78][..], b"moof",
            &[0, 0, 0, 16], b"mfhd", &[0, 0, 0, 0], &[0, 0, 0, 9],
            &[0, 0, 0, 0x60], b"traf",
            &[0, 0, 0, 16], b"tfhd", &[0, 2, 0, 0], &[0, 0, 0, 1],
            &[0, 0, 0, 20], b"tfdt", &[1, 0, 0, 0], &450_000u64.to_be_bytes(),
            &[0, 0, 0, 52], b"trun", &[1, 0, 0x0F, 0x01], &[0, 0, 0, 2],
            &[0, 0, 0, 0x78 + 8],
            // sample 1: 40 ms, 3 bytes, sync, +80 ms
            &3600u32.to_be_bytes(), &[0, 0, 0, 3], &[2, 0, 0, 0], &7200i32.to_be_bytes(),
            // sample 2: 40 ms (caller's last duration), 1 byte, non-sync, -40 ms
            &3600u32.to_be_bytes(), &[0, 0, 0, 1], &[1, 1, 0, 0], &(-3600i32).to_be_bytes(),
            &[0, 0, 0, 12], b"mdat",
        ]
        .concat();
        assert_eq!(c.header.as_ref(), expected.as_slice());
        assert_eq!(
            c.samples,
            vec![Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[4])]
        );
        assert_eq!(c.base_media_decode_time, 450_000);
        assert_eq!(c.duration, 7200);
        assert!(c.starts_with_sync);
        assert_eq!(c.len(), expected.len() + 4);
        assert_eq!(&c.to_bytes()[expected.len()..], &[1, 2, 3, 4]);
    }

    #[test]
    fn audio_ticks_come_from_absolute_milliseconds() {
        let track = Track {
            track_id: 2,
            codec: Fmp4Codec::Aac,
            timescale: 44_100,
            media: TrackMedia::Audio {
                sample_rate: 44_100,
                channels: 1,
            },
            config: Bytes::new(),
        };
        let frames: Vec<Frame> = [0u32, 23, 46]
            .iter()
            .map(|&t| Frame::new(FrameKind::Audio, t, Bytes::from_static(&[0xAF, 1, 0x21])))
            .collect();
        let limits = ChunkLimits::default();
        let one = write_chunk(
            &track,
            &ChunkInput {
                sequence_number: 1,
                frames: &frames[..2],
                first_dts_ms: 1_001,
                last_duration_ms: 23,
            },
            &limits,
        )
        .unwrap();
        let two = write_chunk(
            &track,
            &ChunkInput {
                sequence_number: 2,
                frames: &frames[2..],
                first_dts_ms: 1_047,
                last_duration_ms: 23,
            },
            &limits,
        )
        .unwrap();
        // 1001 ms -> 44144.1 -> 44144; 1047 ms -> 46172.7 -> 46172.
        assert_eq!(one.base_media_decode_time, 44_144);
        assert_eq!(two.base_media_decode_time, 46_172);
        assert_eq!(
            one.base_media_decode_time + one.duration,
            two.base_media_decode_time
        );
    }

    proptest::proptest! {
        /// Arbitrary tag bodies and times never panic: a chunk or a typed error.
        #[test]
        fn arbitrary_frames_never_panic(
            bodies in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24), 1..12),
            steps in proptest::collection::vec(proptest::prelude::any::<u16>(), 12),
            first_dts_ms in proptest::prelude::any::<u64>(),
            last_duration_ms in proptest::prelude::any::<u32>(),
            audio in proptest::prelude::any::<bool>(),
        ) {
            let mut ts = 0u32;
            let frames: Vec<Frame> = bodies
                .into_iter()
                .zip(&steps)
                .map(|(b, step)| {
                    ts = ts.wrapping_add(u32::from(*step));
                    let kind = if audio { FrameKind::Audio } else { FrameKind::Video };
                    Frame::new(kind, ts, Bytes::from(b))
                })
                .collect();
            let mut track = video_track();
            if audio {
                track.codec = Fmp4Codec::Aac;
                track.timescale = 44_100;
            }
            let input = ChunkInput { sequence_number: 1, frames: &frames, first_dts_ms, last_duration_ms };
            if let Ok(c) = write_chunk(&track, &input, &ChunkLimits::default()) {
                proptest::prop_assert_eq!(c.samples.len(), frames.len());
            }
        }
    }

    #[test]
    fn durations_that_do_not_fit_are_refused() {
        let frames = [avc(0, true, 0, &[1])];
        let mut input = ChunkInput {
            sequence_number: 0,
            frames: &frames,
            first_dts_ms: 0,
            last_duration_ms: u32::MAX,
        };
        assert_eq!(
            write_chunk(&video_track(), &input, &ChunkLimits::default()),
            Err(Fmp4Error::TimeOutOfRange {
                what: "sample duration"
            })
        );
        input.last_duration_ms = 40;
        input.first_dts_ms = u64::MAX;
        assert!(matches!(
            write_chunk(&video_track(), &input, &ChunkLimits::default()),
            Err(Fmp4Error::TimeOutOfRange { .. })
        ));
    }
}
