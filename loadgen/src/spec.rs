//! What one worker process is asked to do, passed from the parent as JSON.
//!
//! The parent splits the run into worker processes (see [`crate::orchestrate`]);
//! each gets a [`WorkerSpec`] naming its share of viewers or publishers and the run's
//! common clock, so seconds line up across processes when results are merged.

use serde::{Deserialize, Serialize};

/// Where publishers' media comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceSpec {
    /// Encoder-free frames (see [`crate::synthetic`]).
    Synthetic {
        /// Video bit/s.
        video_bitrate: u64,
        /// Audio bit/s, 0 for none.
        audio_bitrate: u64,
        /// Frames per second.
        fps: u32,
        /// Keyframe interval, ms.
        gop_ms: u32,
    },
    /// An FLV file, looped with rebased timestamps.
    File {
        /// Path to the file.
        path: String,
    },
}

/// Whether a worker plays or publishes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Role {
    /// Viewers of `url` (HTTP-FLV or RTMP play).
    Viewers {
        /// Fraction of viewers that fully parse frames.
        sample: f64,
    },
    /// Publishers to `url` (RTMP).
    Publishers {
        /// Media source.
        source: SourceSpec,
    },
    /// Clients of an `https://` or `rtmps://` `url` that connect, complete a TLS
    /// handshake and close, over and over (`loadgen handshakes`).
    Handshakes,
}

/// One worker process's share of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// Viewers or publishers.
    pub role: Role,
    /// Target URL; `{i}` in it is replaced by the stream index.
    pub url: String,
    /// Number of distinct streams (`{i}` runs over 0..streams); viewers spread over them.
    pub streams: u32,
    /// This worker's clients are global indices `first + k * step` for `k < count`.
    pub first: u64,
    /// Stride between this worker's global indices (= number of workers of this role).
    pub step: u64,
    /// How many clients this worker runs.
    pub count: u64,
    /// Clients started per second over the whole run (all workers); 0 = all at once.
    pub ramp_per_sec: f64,
    /// Run start, µs since the UNIX epoch, common to all workers of a run: seconds are
    /// counted from here, so every worker's second N is the same wall-clock second.
    pub start_unix_us: u64,
    /// Clients start this long after the run start (viewers wait for publishers).
    pub start_delay_ms: u64,
    /// Run length from `start_unix_us`, ms.
    pub duration_ms: u64,
    /// Source addresses 127.0.0.1 ..= 127.0.0.`source_ips` are used round-robin.
    pub source_ips: u8,
    /// Core to pin the worker thread to.
    pub core: Option<usize>,
    /// Connect + handshake + first media byte must happen within this, ms.
    pub setup_timeout_ms: u64,
    /// `https://` / `rtmps://`: PEM file of trusted CA certificates; `None`: the
    /// system store.
    #[serde(default)]
    pub ca: Option<String>,
}

impl WorkerSpec {
    /// Global index of this worker's `k`-th client.
    pub fn global_index(&self, k: u64) -> u64 {
        self.first + k * self.step
    }

    /// When client `k` starts, µs after the run start.
    pub fn start_offset_us(&self, k: u64) -> u64 {
        let delay = self.start_delay_ms * 1000;
        if self.ramp_per_sec <= 0.0 {
            return delay;
        }
        delay + (self.global_index(k) as f64 / self.ramp_per_sec * 1e6) as u64
    }

    /// Which stream client `k` uses.
    pub fn stream_of(&self, k: u64) -> u32 {
        (self.global_index(k) % self.streams.max(1) as u64) as u32
    }

    /// Source address octet for client `k` (127.0.0.x): round-robin over this worker's
    /// own clients, so every worker uses every address whatever the worker count
    /// (by global index, 6 workers and 6 addresses gave each worker one address).
    pub fn source_octet(&self, k: u64) -> u8 {
        (1 + k % self.source_ips.max(1) as u64) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WorkerSpec {
        WorkerSpec {
            role: Role::Viewers { sample: 1.0 },
            url: "http://127.0.0.1/x.flv".into(),
            streams: 2,
            first: 1,
            step: 3,
            count: 4,
            ramp_per_sec: 100.0,
            start_unix_us: 0,
            start_delay_ms: 0,
            duration_ms: 1000,
            source_ips: 4,
            core: None,
            setup_timeout_ms: 5000,
            ca: None,
        }
    }

    #[test]
    fn interleaved_indices_ramp_streams_and_sources() {
        let s = spec();
        let idx: Vec<u64> = (0..s.count).map(|k| s.global_index(k)).collect();
        assert_eq!(idx, [1, 4, 7, 10]);
        assert_eq!(
            s.start_offset_us(1),
            40_000,
            "global viewer 4 at 100/s starts at 40 ms"
        );
        assert_eq!(
            (0..4).map(|k| s.stream_of(k)).collect::<Vec<_>>(),
            [1, 0, 1, 0]
        );
        assert_eq!(
            (0..5).map(|k| s.source_octet(k)).collect::<Vec<_>>(),
            [1, 2, 3, 4, 1]
        );
        let all_at_once = WorkerSpec {
            ramp_per_sec: 0.0,
            ..spec()
        };
        assert_eq!(all_at_once.start_offset_us(3), 0);
        let delayed = WorkerSpec {
            start_delay_ms: 2000,
            ..spec()
        };
        assert_eq!(delayed.start_offset_us(1), 2_040_000);
    }

    #[test]
    fn round_trips_through_json() {
        let s = WorkerSpec {
            role: Role::Publishers {
                source: SourceSpec::Synthetic {
                    video_bitrate: 1,
                    audio_bitrate: 2,
                    fps: 3,
                    gop_ms: 4,
                },
            },
            ..spec()
        };
        let back: WorkerSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
