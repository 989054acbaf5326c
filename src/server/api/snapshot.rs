//! A point-in-time view of the server and its streams, as the API reports it.
//!
//! The server assembles one from each core's stream table and the metrics when a
//! request needs it; the renderers here only read it. Every type serialises to
//! the JSON the API returns.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Serialize;

use crate::metrics::{Listener, MetricsRegistry, Protocol, RefuseReason};
use crate::protocol::flv::codec::{AudioCodec, VideoCodec};

/// Everything the API and status page show.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServerSnapshot {
    /// Server-wide facts.
    pub server: ServerInfo,
    /// Live streams, in the order the status page lists them.
    pub streams: Vec<StreamSnapshot>,
}

impl ServerSnapshot {
    /// The stream `app`/`name`, if live.
    pub fn stream(&self, app: &str, name: &str) -> Option<&StreamSnapshot> {
        self.streams.iter().find(|s| s.app == app && s.name == name)
    }

    /// Adds viewers counted on a core that does not own `app`/`name` (a cross-core
    /// replica) to the owner's entry. Returns false if no such stream is listed,
    /// e.g. it ended between the owner's and the replica's report.
    pub fn add_viewers(&mut self, app: &str, name: &str, viewers: ViewerCounts) -> bool {
        match self
            .streams
            .iter_mut()
            .find(|s| s.app == app && s.name == name)
        {
            Some(stream) => {
                stream.viewers = stream.viewers.plus(&viewers);
                true
            }
            None => false,
        }
    }

    /// Viewers of every stream, by protocol.
    pub fn total_viewers(&self) -> ViewerCounts {
        self.streams
            .iter()
            .fold(ViewerCounts::default(), |acc, s| acc.plus(&s.viewers))
    }
}

/// Server-wide facts for `GET /api/v1/server`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServerInfo {
    /// ringcast version.
    pub version: String,
    /// Reactor cores running.
    pub cores: usize,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// Connection counts.
    pub connections: ConnectionCounts,
    /// Configured limits by name (`max_connections`, `max_viewers_per_stream`, ...),
    /// as a map so the API need not change when the config gains a limit.
    pub limits: BTreeMap<String, u64>,
}

/// Connection counts, summed over cores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionCounts {
    /// Open right now.
    pub open: u64,
    /// Accepted since start.
    pub accepted_total: u64,
    /// Refused since start.
    pub refused_total: u64,
}

impl ConnectionCounts {
    /// Sums the per-core counters of `metrics`.
    pub fn from_metrics(metrics: &MetricsRegistry) -> Self {
        let mut c = Self::default();
        for core in metrics.cores() {
            for &l in <Listener as crate::metrics::LabelValue>::ALL {
                c.open = c
                    .open
                    .saturating_add(core.open_connections.get(l).max(0) as u64);
                c.accepted_total = c
                    .accepted_total
                    .saturating_add(core.connections_accepted.get(l));
            }
            for &r in <RefuseReason as crate::metrics::LabelValue>::ALL {
                c.refused_total = c
                    .refused_total
                    .saturating_add(core.connections_refused.get(r));
            }
        }
        c
    }
}

/// One live stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StreamSnapshot {
    /// RTMP application (`live`).
    pub app: String,
    /// Stream name / key.
    pub name: String,
    /// Remote address of the publisher; `None` when the stream is pulled from an origin.
    pub publisher_addr: Option<SocketAddr>,
    /// Origin URL when the stream is pulled rather than published here.
    pub origin: Option<String>,
    /// Video track, if any has been seen.
    pub video: Option<VideoInfo>,
    /// Audio track, if any has been seen.
    pub audio: Option<AudioInfo>,
    /// Ingest bitrate over the last few seconds, bits per second.
    pub bitrate_in_bps: u64,
    /// Viewers on every core, by protocol.
    pub viewers: ViewerCounts,
    /// Viewers on each core (index = core), all protocols: shows the cross-core fan-out.
    pub viewers_by_core: Vec<u64>,
    /// Index of the core that owns the stream.
    pub core: usize,
    /// Seconds since the stream started.
    pub uptime_secs: u64,
}

/// A stream's video track.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VideoInfo {
    /// Codec name (see [`video_codec_name`]).
    pub codec: String,
    /// Width in pixels, once known from metadata or the sequence header.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// Frames per second.
    pub fps: Option<f64>,
}

/// A stream's audio track.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AudioInfo {
    /// Codec name (see [`audio_codec_name`]).
    pub codec: String,
    /// Sample rate in Hz, once known.
    pub sample_rate: Option<u32>,
    /// Channel count, once known.
    pub channels: Option<u8>,
}

/// Viewer counts by egress protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ViewerCounts {
    /// HTTP-FLV viewers.
    pub http_flv: u64,
    /// RTMP viewers.
    pub rtmp: u64,
    /// HLS viewers.
    pub hls: u64,
    /// WebSocket-FLV viewers.
    pub ws_flv: u64,
}

impl ViewerCounts {
    /// All protocols together.
    pub fn total(&self) -> u64 {
        self.http_flv
            .saturating_add(self.rtmp)
            .saturating_add(self.hls)
            .saturating_add(self.ws_flv)
    }

    /// Element-wise sum (to merge counts from several cores).
    pub fn plus(&self, other: &Self) -> Self {
        Self {
            http_flv: self.http_flv.saturating_add(other.http_flv),
            rtmp: self.rtmp.saturating_add(other.rtmp),
            hls: self.hls.saturating_add(other.hls),
            ws_flv: self.ws_flv.saturating_add(other.ws_flv),
        }
    }

    /// Adds `n` viewers of `protocol`.
    pub fn add(&mut self, protocol: Protocol, n: u64) {
        let slot = match protocol {
            Protocol::HttpFlv => &mut self.http_flv,
            Protocol::Rtmp => &mut self.rtmp,
            Protocol::Hls => &mut self.hls,
            Protocol::WsFlv => &mut self.ws_flv,
        };
        *slot = slot.saturating_add(n);
    }

    /// Removes `n` viewers of `protocol` (never below zero).
    pub fn sub(&mut self, protocol: Protocol, n: u64) {
        let slot = match protocol {
            Protocol::HttpFlv => &mut self.http_flv,
            Protocol::Rtmp => &mut self.rtmp,
            Protocol::Hls => &mut self.hls,
            Protocol::WsFlv => &mut self.ws_flv,
        };
        *slot = slot.saturating_sub(n);
    }
}

/// The name the API uses for a video codec.
pub fn video_codec_name(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::H263 => "h263",
        VideoCodec::Screen => "screen",
        VideoCodec::Vp6 => "vp6",
        VideoCodec::Avc => "h264",
        VideoCodec::Hevc => "h265",
        VideoCodec::Av1 => "av1",
        VideoCodec::Vp9 => "vp9",
    }
}

/// The name the API uses for an audio codec.
pub fn audio_codec_name(codec: AudioCodec) -> &'static str {
    match codec {
        AudioCodec::Aac => "aac",
        AudioCodec::Mp3 => "mp3",
        AudioCodec::Speex => "speex",
        AudioCodec::Enhanced => "enhanced",
        AudioCodec::Other(_) => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Listener, RefuseReason};

    #[test]
    fn viewer_counts_add_and_total() {
        let mut v = ViewerCounts::default();
        v.add(Protocol::HttpFlv, 3);
        v.add(Protocol::Hls, 1);
        let w = v.plus(&ViewerCounts {
            http_flv: 1,
            rtmp: 2,
            hls: 0,
            ws_flv: 0,
        });
        assert_eq!(
            w,
            ViewerCounts {
                http_flv: 4,
                rtmp: 2,
                hls: 1,
                ws_flv: 0,
            }
        );
        assert_eq!(w.total(), 7);
    }

    #[test]
    fn connection_counts_sum_cores() {
        let reg = MetricsRegistry::new(2).unwrap();
        reg.core(0).unwrap().open_connections.add(Listener::Rtmp, 2);
        reg.core(1).unwrap().open_connections.add(Listener::Http, 5);
        reg.core(1)
            .unwrap()
            .connections_accepted
            .add(Listener::Http, 9);
        reg.core(0)
            .unwrap()
            .connections_refused
            .inc(RefuseReason::ConnectionLimit);
        let c = ConnectionCounts::from_metrics(&reg);
        assert_eq!(
            c,
            ConnectionCounts {
                open: 7,
                accepted_total: 9,
                refused_total: 1
            }
        );
    }

    #[test]
    fn snapshot_finds_streams_and_sums_viewers() {
        let snap = ServerSnapshot {
            server: ServerInfo::default(),
            streams: vec![
                StreamSnapshot {
                    app: "live".into(),
                    name: "a".into(),
                    viewers: ViewerCounts {
                        http_flv: 1,
                        rtmp: 0,
                        hls: 0,
                        ws_flv: 0,
                    },
                    ..Default::default()
                },
                StreamSnapshot {
                    app: "live".into(),
                    name: "b".into(),
                    viewers: ViewerCounts {
                        http_flv: 2,
                        rtmp: 1,
                        hls: 0,
                        ws_flv: 0,
                    },
                    ..Default::default()
                },
            ],
        };
        assert_eq!(snap.stream("live", "b").map(|s| s.viewers.rtmp), Some(1));
        assert!(snap.stream("other", "b").is_none());
        assert_eq!(snap.total_viewers().total(), 4);
    }

    #[test]
    fn replica_viewers_merge_into_the_owner_entry() {
        let mut snap = ServerSnapshot {
            server: ServerInfo::default(),
            streams: vec![StreamSnapshot {
                app: "live".into(),
                name: "a".into(),
                core: 0,
                ..Default::default()
            }],
        };
        let remote = ViewerCounts {
            http_flv: 5,
            rtmp: 0,
            hls: 2,
            ws_flv: 0,
        };
        assert!(snap.add_viewers("live", "a", remote));
        assert!(snap.add_viewers("live", "a", remote));
        assert!(!snap.add_viewers("live", "gone", remote));
        assert_eq!(
            snap.streams[0].viewers,
            ViewerCounts {
                http_flv: 10,
                rtmp: 0,
                hls: 4,
                ws_flv: 0,
            }
        );
    }

    #[test]
    fn codec_names() {
        assert_eq!(video_codec_name(VideoCodec::Avc), "h264");
        assert_eq!(video_codec_name(VideoCodec::Hevc), "h265");
        assert_eq!(audio_codec_name(AudioCodec::Aac), "aac");
        assert_eq!(audio_codec_name(AudioCodec::Other(3)), "other");
    }
}
