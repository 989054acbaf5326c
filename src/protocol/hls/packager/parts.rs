//! Acting on timeline events: closing parts into fMP4 chunks, closing
//! segments (fMP4 and MPEG-TS bodies), eviction, and re-rendering the
//! playlists.

use bytes::{Bytes, BytesMut};

use crate::protocol::fmp4::{write_chunk, ChunkInput};

use super::*;
use crate::protocol::hls::store::{slot, Body};
use crate::protocol::hls::timeline::{Timeline, TimelineEvent, TrackKind};

pub(super) fn low32(ms: u64) -> u32 {
    u32::try_from(ms & 0xFFFF_FFFF).unwrap_or(0)
}

/// `mfhd.sequence_number` of part `(msn, part)`: from the timeline's numbers,
/// so every box writes the same; increasing (it wraps after 2^32 parts).
pub(super) fn chunk_sequence(msn: u64, part: u32, max_parts: usize) -> u32 {
    let per = u64::try_from(max_parts).unwrap_or(u64::MAX).max(1);
    low32(
        msn.wrapping_mul(per)
            .wrapping_add(u64::from(part))
            .wrapping_add(1),
    )
}

impl Packager {
    pub(super) fn handle(
        &mut self,
        events: &[TimelineEvent],
        now_unix_ms: u64,
        out: &mut Vec<PackagerEvent>,
    ) {
        if events.is_empty() {
            return;
        }
        let mut whole = false;
        for ev in events {
            match *ev {
                TimelineEvent::PartClosed { msn, part } => {
                    self.close_part(msn, part, out);
                    out.push(PackagerEvent::PartReady { msn, part });
                }
                TimelineEvent::SegmentClosed { msn } => {
                    self.close_segment(msn);
                    out.push(PackagerEvent::SegmentReady { msn });
                    whole = true;
                }
                TimelineEvent::Evicted { msn } => {
                    self.store.evict(msn);
                    out.push(PackagerEvent::Evicted { msn });
                    whole = true;
                }
                TimelineEvent::SegmentOpened { msn } => {
                    self.open_ts_segment(msn);
                    // The MPD lists the open segment.
                    whole = true;
                }
                TimelineEvent::PartOpened { .. } => {}
            }
        }
        self.render(whole, now_unix_ms);
    }

    pub(super) fn open_ts_segment(&mut self, msn: u64) {
        let discontinuity = self
            .timeline
            .as_ref()
            .and_then(Timeline::open_segment_flags)
            .is_some_and(|(d, _, _)| d);
        if discontinuity {
            self.pending_publisher = false;
            // A new publisher takes a new muxer (its counters and clock restart).
            self.ts = self.new_ts_muxer();
        }
        if let Some(ts) = &mut self.ts {
            ts.buf = BytesMut::new();
            ts.muxer.start_segment(&mut ts.buf);
            ts.msn = Some(msn);
        }
    }

    /// Where part `(msn, part)` ends on the timeline.
    pub(super) fn part_end(&self, msn: u64, part: u32) -> Option<u64> {
        let tl = self.timeline.as_ref()?;
        let parts = match tl.open_segment() {
            Some((m, parts)) if m == msn => parts,
            _ => tl.segment(msn)?.parts.as_slice(),
        };
        parts
            .iter()
            .find(|p| p.index == part)
            .map(|p| p.start_ms.saturating_add(p.duration_ms))
    }

    pub(super) fn close_part(&mut self, msn: u64, part: u32, out: &mut Vec<PackagerEvent>) {
        let end = self.part_end(msn, part);
        let leading = if self.tracks.first().is_some_and(Option::is_some) {
            TrackKind::Video
        } else {
            TrackKind::Audio
        };
        let max_parts = self.config.hls.max_parts_per_segment;
        for kind in [TrackKind::Video, TrackKind::Audio] {
            let Some(Some(st)) = self.tracks.get_mut(slot(kind)) else {
                continue;
            };
            let frames = std::mem::take(&mut st.open);
            let Some(last) = frames.last() else {
                self.store.put_part(kind, msn, part, None);
                continue;
            };
            let last_dts = st.open_first_dts.saturating_add(u64::from(
                last.timestamp.wrapping_sub(low32(st.open_first_dts)),
            ));
            let to_end = end
                .filter(|_| kind == leading)
                .map(|e| e.saturating_sub(last_dts))
                .filter(|d| *d > 0)
                .and_then(|d| u32::try_from(d).ok());
            let last_duration_ms = to_end.unwrap_or(if st.last_step_ms > 0 {
                st.last_step_ms
            } else {
                st.default_step_ms()
            });
            let input = ChunkInput {
                sequence_number: chunk_sequence(msn, part, max_parts),
                frames: &frames,
                first_dts_ms: st.open_first_dts,
                last_duration_ms,
            };
            match write_chunk(&st.track, &input, &self.config.chunk) {
                Ok(chunk) => {
                    let mut pieces = Vec::with_capacity(chunk.samples.len().saturating_add(1));
                    pieces.push(chunk.header);
                    pieces.extend(chunk.samples);
                    self.store
                        .put_part(kind, msn, part, Some(Body::from_pieces(pieces)));
                }
                Err(error) => {
                    self.store.put_part(kind, msn, part, None);
                    out.push(PackagerEvent::Warning(PackagerWarning::Chunk {
                        track: kind,
                        msn,
                        part,
                        error,
                    }));
                }
            }
        }
    }

    pub(super) fn close_segment(&mut self, msn: u64) {
        for kind in [TrackKind::Video, TrackKind::Audio] {
            self.store.seal_segment(kind, msn);
        }
        if let Some(ts) = &mut self.ts {
            if ts.msn == Some(msn) {
                ts.msn = None;
                let buf = std::mem::take(&mut ts.buf);
                // A growing buffer holds up to twice its length and the window
                // keeps segments for seconds: store them at their own size
                // (one copy per segment per stream).
                let bytes = if buf.capacity() > buf.len() + buf.len() / 8 {
                    Bytes::copy_from_slice(&buf)
                } else {
                    buf.freeze()
                };
                self.store.put_ts(msn, bytes);
            }
        }
    }

    pub(super) fn render(&mut self, whole: bool, now_unix_ms: u64) {
        let Some(tl) = &self.timeline else {
            return;
        };
        self.rendered.render(
            tl,
            &self.store,
            &self.stream,
            &self.tracks,
            self.ts.is_some(),
            &self.config.utc_timing_url,
            whole,
            now_unix_ms,
        );
    }
}
