//! What each core tells the API: its streams' statistics and its viewer counts,
//! published a few times a second (never per frame) and merged on request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::api::{self, AudioInfo, StreamSnapshot, VideoInfo, ViewerCounts};
use super::worker::CoreState;
use crate::metrics::Protocol;
use crate::stream::{Listing, Shard, StreamId, StreamStats};

/// A core's live bookkeeping, updated as viewers and publishers come and go.
#[derive(Default)]
pub struct CoreReport {
    viewers: HashMap<StreamId, ViewerCounts>,
    publishers: HashMap<StreamId, Option<SocketAddr>>,
    origins: HashMap<StreamId, String>,
}

impl CoreReport {
    /// `stream` is pulled on this core from the origin at `url`.
    pub fn origin_started(&mut self, stream: StreamId, url: String) {
        self.origins.insert(stream, url);
    }

    /// `stream` is no longer pulled here.
    pub fn origin_stopped(&mut self, stream: StreamId) {
        self.origins.remove(&stream);
    }

    /// A viewer started watching `stream` over `protocol`.
    pub fn viewer_joined(&mut self, stream: StreamId, protocol: Protocol) {
        self.viewers.entry(stream).or_default().add(protocol, 1);
    }

    /// A viewer stopped watching.
    pub fn viewer_left(&mut self, stream: StreamId, protocol: Protocol) {
        if let Some(counts) = self.viewers.get_mut(&stream) {
            counts.sub(protocol, 1);
            if counts.total() == 0 {
                self.viewers.remove(&stream);
            }
        }
    }

    /// `n` HLS/DASH sessions (an estimate) watch `stream` on this core.
    pub fn set_hls_sessions(&mut self, stream: StreamId, n: u64) {
        let counts = self.viewers.entry(stream).or_default();
        counts.hls = n;
        if counts.total() == 0 {
            self.viewers.remove(&stream);
        }
    }

    /// A publisher from `peer` started feeding `stream` on this core.
    pub fn publisher_started(&mut self, stream: StreamId, peer: Option<SocketAddr>) {
        self.publishers.insert(stream, peer);
    }

    /// The publisher of `stream` left.
    pub fn publisher_stopped(&mut self, stream: StreamId) {
        self.publishers.remove(&stream);
    }
}

/// A core's report as the API reads it.
#[derive(Clone, Debug, Default)]
pub struct CorePublished {
    /// Statistics of the streams this core owns.
    pub owned: Vec<StreamStats>,
    /// Publisher addresses of owned streams.
    pub publishers: HashMap<StreamId, Option<SocketAddr>>,
    /// Viewers on this core per stream.
    pub viewers: HashMap<StreamId, ViewerCounts>,
    /// Origin URLs of streams pulled by this core.
    pub origins: HashMap<StreamId, String>,
}

impl CoreReport {
    /// What the API is told now: the statistics of the streams `shard` owns and
    /// this report's bookkeeping; with the bytes `shard`'s GOP caches hold (a
    /// gauge cheaper to recompute here than to track).
    pub fn snapshot(&self, shard: &Shard) -> (CorePublished, usize) {
        let owned: Vec<StreamStats> = shard.all_stats().filter(|s| s.owned).cloned().collect();
        let gop_bytes: usize = shard
            .all_stats()
            .filter_map(|s| shard.ring_usage(s.stream_id))
            .map(|(_, bytes)| bytes)
            .sum();
        let published = CorePublished {
            owned,
            publishers: self.publishers.clone(),
            viewers: self.viewers.clone(),
            origins: self.origins.clone(),
        };
        (published, gop_bytes)
    }
}

impl CoreState {
    /// Publishes this core's report and refreshes gauges that are cheaper to
    /// recompute than to track.
    pub(super) fn publish_report(&mut self) {
        let (published, gop_bytes) = self.report.snapshot(&self.shard);
        self.metrics.gop_cache_bytes.set(gop_bytes as i64);
        self.shared.publish_report(self.core, published);
    }
}

/// Builds the API's stream list from the directory and every core's report.
pub fn stream_snapshots(
    listings: &[Listing],
    reports: &[CorePublished],
    epoch: Instant,
) -> Vec<StreamSnapshot> {
    let now_ms = epoch.elapsed().as_millis() as u64;
    let mut out: Vec<StreamSnapshot> = listings
        .iter()
        .map(|l| {
            let owner = reports.get(l.claim.owner_core);
            let stats =
                owner.and_then(|r| r.owned.iter().find(|s| s.stream_id == l.claim.stream_id));
            let viewers_by_core: Vec<u64> = reports
                .iter()
                .map(|r| r.viewers.get(&l.claim.stream_id).map_or(0, |v| v.total()))
                .collect();
            let viewers = reports
                .iter()
                .filter_map(|r| r.viewers.get(&l.claim.stream_id))
                .fold(ViewerCounts::default(), |acc, v| acc.plus(v));
            StreamSnapshot {
                app: l.key.app().to_owned(),
                name: l.key.name().to_owned(),
                publisher_addr: owner
                    .and_then(|r| r.publishers.get(&l.claim.stream_id).copied().flatten()),
                origin: owner.and_then(|r| r.origins.get(&l.claim.stream_id).cloned()),
                video: stats.and_then(|s| {
                    s.video_codec.map(|c| VideoInfo {
                        codec: api::video_codec_name(c).to_owned(),
                        width: s.width,
                        height: s.height,
                        fps: (s.fps_x100 > 0).then(|| s.fps_x100 as f64 / 100.0),
                    })
                }),
                audio: stats.and_then(|s| {
                    s.audio_codec.map(|c| AudioInfo {
                        codec: api::audio_codec_name(c).to_owned(),
                        sample_rate: None,
                        channels: None,
                    })
                }),
                bitrate_in_bps: stats.map_or(0, |s| s.bitrate_bps),
                viewers,
                viewers_by_core,
                core: l.claim.owner_core,
                uptime_secs: stats.map_or(0, |s| now_ms.saturating_sub(s.created_at_ms) / 1000),
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.app, &a.name).cmp(&(&b.app, &b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Role, ShardConfig, StreamKey};

    #[test]
    fn snapshot_lists_owned_streams_and_the_bookkeeping() {
        let mut shard = Shard::new(0, ShardConfig::default());
        let (owned, replica) = (StreamId(1), StreamId(2));
        let key = |n| StreamKey::new("live", n).unwrap();
        shard
            .open_stream(key("a"), owned, Role::Owner { generation: 1 }, 0)
            .unwrap();
        shard
            .open_stream(key("b"), replica, Role::Replica { owner_core: 1 }, 0)
            .unwrap();
        let mut report = CoreReport::default();
        report.publisher_started(owned, None);
        report.viewer_joined(replica, Protocol::HttpFlv);
        report.origin_started(owned, "rtmp://o/live".to_owned());
        let (published, gop_bytes) = report.snapshot(&shard);
        assert_eq!(
            published
                .owned
                .iter()
                .map(|s| s.stream_id)
                .collect::<Vec<_>>(),
            vec![owned]
        );
        assert!(published.publishers.contains_key(&owned));
        assert_eq!(published.viewers.get(&replica).map(|c| c.total()), Some(1));
        assert_eq!(
            published.origins.get(&owned).map(String::as_str),
            Some("rtmp://o/live")
        );
        assert_eq!(gop_bytes, 0, "no frames yet");
    }
}
