//! Viewers on a core: attaching one to a stream (local or replicated from the
//! owner core), filling its gathered send from the shard, and ending it.

use super::conn::{Egress, FrameBody, Hold, ViewerState};
use super::egress_flv::STAGED_PAYLOAD_SLOT;
use super::egress_rtmp::{RtmpFrameBytes, RTMP_SLOT};
use super::worker::CoreState;
use super::MeshMsg;
use crate::config::TimestampMode;
use crate::metrics::{CloseReason, DropReason, WsCloseLabel};
use crate::runtime::outbox::{Outbox, PREFIX_SLOT};
use crate::runtime::region::SendRegion;
use crate::stream::{
    BatchStatus, Opened, OutFrame, Role, StreamKey, TimelineMode, ViewerLimits, ViewerOptions,
};

/// Why a play request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// No publisher (and no origin) has the stream.
    #[error("stream {0} not found")]
    NotFound(StreamKey),
    /// The shard refused (limits).
    #[error("cannot add viewer: {0}")]
    Refused(#[from] crate::stream::ShardError),
}

impl CoreState {
    /// The viewer options the configuration asks for.
    pub fn viewer_options(&self) -> ViewerOptions {
        let c = &self.shared.config;
        ViewerOptions {
            gop_cache: c.stream.gop_cache,
            timeline: match c.stream.timestamps {
                TimestampMode::ZeroBased => TimelineMode::ZeroBased,
                TimestampMode::Source => TimelineMode::Source,
            },
            limits: ViewerLimits {
                soft_lag_ms: c.viewer.soft_lag.as_millis() as u64,
                soft_lag_bytes: c.viewer.soft_lag_bytes as u64,
                hard_lag_ms: c.viewer.hard_lag.as_millis() as u64,
                hard_lag_bytes: c.viewer.hard_lag_bytes as u64,
            },
        }
    }

    /// Makes connection `slot` a viewer of `key` with the given framing.
    pub fn start_viewer(
        &mut self,
        slot: u32,
        key: &StreamKey,
        egress: Egress,
    ) -> Result<(), PlayError> {
        let now_ms = self.now_ms();
        let Some((stream_id, owner)) = self.shared.directory.lookup(key) else {
            return Err(PlayError::NotFound(key.clone()));
        };
        if owner != self.core {
            let opened = self.shard.open_stream(
                key.clone(),
                stream_id,
                Role::Replica { owner_core: owner },
                now_ms,
            )?;
            if opened == Opened::New {
                if let Some((to, msg)) = self.shard.subscribe_msg(stream_id) {
                    self.mesh.send(&self.metrics, to, MeshMsg::Stream(msg));
                }
            }
        }
        let mut options = self.viewer_options();
        if self.conns.at(slot).is_some_and(|c| c.source_timeline) {
            options.timeline = TimelineMode::Source;
        }
        let id = self.shard.add_viewer(stream_id, options)?;
        let protocol = egress.protocol();
        self.viewer_conns.insert(id, slot);
        self.metrics.viewers.inc(protocol);
        self.report.viewer_joined(stream_id, protocol);
        if let Some(conn) = self.conns.at(slot) {
            // Viewers send nothing we wait for: their sessions have no deadline
            // while they play, and the slow-viewer bounds govern them.
            conn.viewer = Some(ViewerState {
                id,
                egress,
                finished: false,
            });
        }
        // The join's first send (the GOP cache) goes ahead of the core's viewers.
        self.sends.mark_urgent(&mut self.conns, slot);
        Ok(())
    }

    /// Appends the viewer's next frames to its send being assembled.
    pub(super) fn fill_viewer_send(&mut self, slot: u32, now_ms: u64) {
        let max_bytes = self.shared.config.runtime.max_bytes_per_send;
        let mut batch = std::mem::take(&mut self.batch);
        let mut outcome = BatchStatus::Idle;
        while let Some(conn) = self.conns.at(slot) {
            let Some(viewer) = conn.viewer.as_ref() else {
                break;
            };
            if viewer.finished || !conn.outbox.has_room() || conn.outbox.bytes_queued() >= max_bytes
            {
                break;
            }
            let room = conn.outbox.frames_room();
            let budget = max_bytes - conn.outbox.bytes_queued();
            let id = viewer.id;
            let before = self.shard.counters().dropped_slow;
            batch.clear();
            outcome = self.shard.next_batch(id, now_ms, room, budget, &mut batch);
            let dropped = self.shard.counters().dropped_slow - before;
            if dropped > 0 {
                self.metrics
                    .frames_dropped
                    .add(DropReason::SlowViewer, dropped);
            }
            let Some(conn) = self.conns.at(slot) else {
                break;
            };
            let Some(viewer) = conn.viewer.as_mut() else {
                break;
            };
            let protocol = viewer.egress.protocol();
            if let Some(region) = self.region.as_mut() {
                adopt_region_scratch(&mut conn.outbox, region);
            }
            let mut sent = 0u64;
            for out in batch.drain(..) {
                if push_frame(
                    &mut conn.outbox,
                    &mut viewer.egress,
                    out,
                    self.region.as_mut(),
                ) {
                    sent += 1;
                }
            }
            self.metrics.frames_sent.add(protocol, sent);
            if outcome != BatchStatus::Ready {
                break;
            }
        }
        self.batch = batch;
        match outcome {
            BatchStatus::Finished => self.finish_viewer(slot),
            BatchStatus::Close(reason) => {
                if reason.is_slow() {
                    self.metrics.slow_viewer_closes.inc();
                    tracing::info!(core = self.core, %reason, "closing slow viewer");
                }
                if let Some(conn) = self.conns.at(slot) {
                    // Only what was being gathered: this runs before the send is submitted.
                    let _ = conn.outbox.release();
                }
                self.conns.close_later(
                    slot,
                    if reason.is_slow() {
                        CloseReason::SlowViewer
                    } else {
                        CloseReason::StreamEnded
                    },
                );
            }
            BatchStatus::Ready | BatchStatus::Idle => {}
        }
    }

    /// Ends a viewer cleanly: the end-of-stream bytes of its protocol, then close
    /// (HTTP) or back to an idle session (RTMP).
    pub fn finish_viewer(&mut self, slot: u32) {
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let Some(viewer) = conn.viewer.as_mut() else {
            return;
        };
        if viewer.finished {
            return;
        }
        viewer.finished = true;
        conn.close_reason = CloseReason::StreamEnded;
        match &mut viewer.egress {
            Egress::Flv(flv) => {
                if flv.is_websocket() {
                    self.metrics.ws_closes.inc(WsCloseLabel::StreamEnded);
                }
                let mut end = [0u8; PREFIX_SLOT];
                let n = flv.finish(&mut end);
                let end = bytes::Bytes::copy_from_slice(&end[..n]);
                let _ = conn.outbox.queue_in_order(end, Hold::Bytes);
                conn.close_after_flush = true;
            }
            Egress::Rtmp(_) => {
                self.rtmp_play_ended(slot);
            }
        }
        self.sends.mark_ready(&mut self.conns, slot);
    }
}

/// Moves a viewer's prefix scratch into the registered region (once, on its first
/// batch) so its sends can be fixed-buffer; stays on the heap when the region's
/// slots are all taken.
fn adopt_region_scratch(outbox: &mut Outbox<Hold>, region: &mut SendRegion) {
    if outbox.wants_region_scratch() {
        let _ = outbox.adopt_scratch(region.scratch());
    }
}

/// Adds one frame to a viewer's send. False if it could not be framed. With a
/// region and region scratch, the body sent is the core's copy in the region (made
/// by the first viewer that sends the frame), so the whole send can be fixed-buffer.
fn push_frame(
    outbox: &mut Outbox<Hold>,
    egress: &mut Egress,
    out: OutFrame,
    region: Option<&mut SendRegion>,
) -> bool {
    let region = region.filter(|_| outbox.has_region_scratch());
    let ts = out.timestamp;
    match egress {
        Egress::Flv(flv) => {
            let frame = out.entry.frame();
            let mut prefix = [0u8; PREFIX_SLOT];
            let Some(n) = flv.frame_prefix(frame.kind, ts, frame.payload.len(), &mut prefix) else {
                return false;
            };
            let body = match region {
                Some(region) => {
                    out.entry.encoding(STAGED_PAYLOAD_SLOT, |f| {
                        region
                            .stage(&f.payload)
                            .unwrap_or_else(|| f.payload.clone())
                    });
                    FrameBody::Encoding(STAGED_PAYLOAD_SLOT)
                }
                None => FrameBody::Payload,
            };
            outbox.push_frame(
                |s| {
                    s[..n].copy_from_slice(&prefix[..n]);
                    n
                },
                Hold::Frame(out, body),
            )
        }
        Egress::Rtmp(rtmp) => {
            let mut scratch = [0u8; PREFIX_SLOT];
            match rtmp.frame(&out.entry, ts, &mut scratch, region) {
                Some(RtmpFrameBytes::Shared { prefix_len, .. }) => outbox.push_frame(
                    |s| {
                        s[..prefix_len].copy_from_slice(&scratch[..prefix_len]);
                        prefix_len
                    },
                    Hold::Frame(out, FrameBody::Encoding(RTMP_SLOT)),
                ),
                Some(RtmpFrameBytes::Private(bytes)) => {
                    outbox.push_frame(|_| 0, Hold::Bytes(bytes))
                }
                None => false,
            }
        }
    }
}
