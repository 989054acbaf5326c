//! What viewers and publishers saw, in a shape that merges exactly.
//!
//! Each worker thread keeps one [`Interval`] for all its viewers and ships it every
//! second (counters as deltas, histograms as hdrhistogram V2 serialisations) to the
//! parent process, which adds them up: histograms of the same bounds add without
//! loss, so the parent's percentiles are those of every sample of every child.

use std::fmt;

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where in its life a connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// TCP connect.
    Connect,
    /// RTMP handshake, or sending the HTTP request.
    Handshake,
    /// RTMP connect/play/publish commands, or the HTTP response head.
    Request,
    /// While media flows.
    Streaming,
}

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureKind {
    /// Connection refused or unreachable.
    Refused,
    /// No progress within the phase's time limit.
    Timeout,
    /// Connection reset or another socket error.
    Io,
    /// Peer closed before the run's end.
    EarlyEof,
    /// HTTP status other than 200.
    HttpStatus,
    /// RTMP `_error` / `onStatus` error level, or a publish/play refusal.
    Rejected,
    /// Bytes that the protocol decoder refused.
    Protocol,
}

impl Phase {
    const ALL: [Phase; 4] = [
        Phase::Connect,
        Phase::Handshake,
        Phase::Request,
        Phase::Streaming,
    ];
}

impl FailureKind {
    const ALL: [FailureKind; 7] = [
        FailureKind::Refused,
        FailureKind::Timeout,
        FailureKind::Io,
        FailureKind::EarlyEof,
        FailureKind::HttpStatus,
        FailureKind::Rejected,
        FailureKind::Protocol,
    ];
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Plain event counts; all are deltas over an interval except the `*_up` gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Viewers connected and not yet closed (gauge).
    pub viewers_up: u64,
    /// Publishers connected and sending (gauge).
    pub publishers_up: u64,
    /// Viewer connection attempts started.
    pub viewers_started: u64,
    /// Viewers that received their first keyframe.
    pub viewers_playing: u64,
    /// Bytes received by all viewers (sampled or not).
    pub bytes_received: u64,
    /// Video frames parsed by sampled viewers.
    pub video_frames: u64,
    /// Of which keyframes.
    pub keyframes: u64,
    /// Audio frames parsed by sampled viewers.
    pub audio_frames: u64,
    /// Video frames that carried our stamp.
    pub stamped_frames: u64,
    /// Frames missing by stamp sequence gaps.
    pub missing_frames: u64,
    /// Stamps that went backwards (publisher restart or reordering).
    pub sequence_resets: u64,
    /// Gaps of more than the stall threshold without video (sampled viewers).
    pub stalls: u64,
    /// Gaps of more than the stall threshold without any byte (all viewers).
    pub byte_stalls: u64,
    /// Frames sent by publishers.
    pub published_frames: u64,
    /// Bytes of media sent by publishers (tag bodies).
    pub published_bytes: u64,
    /// Setup deadlines passed while the server's bytes sat unread in the client's
    /// socket: loadgen's own lag, judged again a second later instead of failing.
    #[serde(default)]
    pub late_reads: u64,
    /// HLS/DASH connections the server closed and the viewer replaced.
    #[serde(default)]
    pub reconnects: u64,
    /// TLS handshakes completed (`https://`, `rtmps://`).
    #[serde(default)]
    pub tls_handshakes: u64,
}

impl Counters {
    /// Adds `other` into `self`; gauges add too, as they come from disjoint workers.
    pub fn add(&mut self, o: &Counters) {
        self.viewers_up += o.viewers_up;
        self.publishers_up += o.publishers_up;
        self.viewers_started += o.viewers_started;
        self.viewers_playing += o.viewers_playing;
        self.bytes_received += o.bytes_received;
        self.video_frames += o.video_frames;
        self.keyframes += o.keyframes;
        self.audio_frames += o.audio_frames;
        self.stamped_frames += o.stamped_frames;
        self.missing_frames += o.missing_frames;
        self.sequence_resets += o.sequence_resets;
        self.stalls += o.stalls;
        self.byte_stalls += o.byte_stalls;
        self.published_frames += o.published_frames;
        self.published_bytes += o.published_bytes;
        self.late_reads += o.late_reads;
        self.reconnects += o.reconnects;
        self.tls_handshakes += o.tls_handshakes;
    }
}

/// What an HLS/DASH viewer asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RequestKind {
    /// The LL-HLS multivariant playlist.
    Multivariant,
    /// A media playlist without delivery directives (first load, TS reloads).
    Playlist,
    /// A media playlist with `_HLS_msn`/`_HLS_part` (blocking reload).
    BlockingReload,
    /// An LL-HLS part (listed, or the preload hint the server holds).
    Part,
    /// A whole segment (MPEG-TS, or a DASH segment streamed while produced).
    Segment,
    /// An fMP4 init segment.
    Init,
    /// The DASH manifest.
    Mpd,
}

impl RequestKind {
    /// Every kind, in report order.
    pub const ALL: [RequestKind; 7] = [
        RequestKind::Multivariant,
        RequestKind::Playlist,
        RequestKind::BlockingReload,
        RequestKind::Part,
        RequestKind::Segment,
        RequestKind::Init,
        RequestKind::Mpd,
    ];
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// HLS/DASH requests by kind: answered with 200 (`ok`) or not (`errors`: another
/// status, or no answer in time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests {
    /// Answered with 200, by [`RequestKind`] index.
    pub ok: [u64; 7],
    /// Answered otherwise, by [`RequestKind`] index.
    pub errors: [u64; 7],
}

impl Requests {
    /// Counts one answered request.
    pub fn record(&mut self, kind: RequestKind, ok: bool) {
        let slot = if ok { &mut self.ok } else { &mut self.errors };
        if let Some(n) = slot.get_mut(kind as usize) {
            *n += 1;
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, o: &Requests) {
        for (a, b) in self.ok.iter_mut().zip(o.ok) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(o.errors) {
            *a += b;
        }
    }

    /// All requests answered, ok or not.
    pub fn total(&self) -> u64 {
        self.ok.iter().chain(self.errors.iter()).sum()
    }
}

/// Failure counts by phase and kind, fixed-size so counting one costs no allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failures([[u64; FailureKind::ALL.len()]; Phase::ALL.len()]);

impl Failures {
    /// Counts one failure.
    pub fn record(&mut self, phase: Phase, kind: FailureKind) {
        self.0[phase as usize][kind as usize] += 1;
    }

    /// Count for one phase and kind.
    pub fn get(&self, phase: Phase, kind: FailureKind) -> u64 {
        self.0[phase as usize][kind as usize]
    }

    /// All failures.
    pub fn total(&self) -> u64 {
        self.0.iter().flatten().sum()
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Failures) {
        for (row, orow) in self.0.iter_mut().zip(other.0.iter()) {
            for (c, o) in row.iter_mut().zip(orow.iter()) {
                *c += o;
            }
        }
    }

    /// Non-zero entries, for reports.
    pub fn entries(&self) -> Vec<(Phase, FailureKind, u64)> {
        let mut v = Vec::new();
        for p in Phase::ALL {
            for k in FailureKind::ALL {
                let n = self.get(p, k);
                if n > 0 {
                    v.push((p, k, n));
                }
            }
        }
        v
    }
}

/// How many histograms [`Histograms`] holds (and a report line carries).
const HISTOGRAMS: usize = 6;

/// The distributions loadgen reports.
#[derive(Clone, Debug)]
pub struct Histograms {
    /// End-to-end latency from the publisher's stamp to a viewer's receipt, µs.
    pub latency_us: Histogram<u64>,
    /// Connect start to first keyframe, ms.
    pub startup_ms: Histogram<u64>,
    /// Length of each stall, ms.
    pub stall_ms: Histogram<u64>,
    /// Video frames from one keyframe to the next (GOP length as received).
    pub gop_frames: Histogram<u64>,
    /// How long each worker loop turn took to handle its completions and timers, µs:
    /// if this nears the stall threshold, loadgen itself is the bottleneck.
    pub turn_us: Histogram<u64>,
    /// Connect start to TLS handshake done, µs (`https://`, `rtmps://`).
    pub tls_handshake_us: Histogram<u64>,
}

fn histogram(high: u64) -> Histogram<u64> {
    // Bounds are constants known valid for hdrhistogram, so this cannot fail.
    Histogram::new_with_bounds(1, high, 3)
        .unwrap_or_else(|_| unreachable!("constant histogram bounds"))
}

impl Default for Histograms {
    fn default() -> Self {
        Histograms {
            latency_us: histogram(600_000_000),
            startup_ms: histogram(3_600_000),
            stall_ms: histogram(3_600_000),
            gop_frames: histogram(1_000_000),
            turn_us: histogram(600_000_000),
            tls_handshake_us: histogram(600_000_000),
        }
    }
}

/// Errors merging or decoding a worker's report.
#[derive(Debug, Error)]
pub enum StatsError {
    /// A histogram did not fit in ours (different bounds).
    #[error("histogram merge: {0:?}")]
    Merge(hdrhistogram::AdditionError),
    /// A serialised histogram failed to decode.
    #[error("histogram decode: {0}")]
    Decode(String),
    /// A report line was not valid JSON of the expected shape.
    #[error("report line: {0}")]
    Json(#[from] serde_json::Error),
}

impl Histograms {
    fn each_mut(&mut self) -> [&mut Histogram<u64>; HISTOGRAMS] {
        [
            &mut self.latency_us,
            &mut self.startup_ms,
            &mut self.stall_ms,
            &mut self.gop_frames,
            &mut self.turn_us,
            &mut self.tls_handshake_us,
        ]
    }

    fn each(&self) -> [&Histogram<u64>; HISTOGRAMS] {
        [
            &self.latency_us,
            &self.startup_ms,
            &self.stall_ms,
            &self.gop_frames,
            &self.turn_us,
            &self.tls_handshake_us,
        ]
    }

    /// Adds `other`'s samples into `self`, exactly.
    pub fn add(&mut self, other: &Histograms) -> Result<(), StatsError> {
        for (h, o) in self.each_mut().into_iter().zip(other.each()) {
            h.add(o).map_err(StatsError::Merge)?;
        }
        Ok(())
    }

    /// Empties all histograms, keeping their allocation.
    pub fn reset(&mut self) {
        for h in self.each_mut() {
            h.reset();
        }
    }
}

/// Everything one worker saw in one reporting interval.
#[derive(Clone, Debug, Default)]
pub struct Interval {
    /// Counters (deltas) and gauges.
    pub counters: Counters,
    /// Failures by phase and kind.
    pub failures: Failures,
    /// Distributions.
    pub hist: Histograms,
    /// HLS/DASH requests by kind.
    pub requests: Requests,
}

/// The line format children write to their parent.
#[derive(Serialize, Deserialize)]
struct WireInterval {
    second: u32,
    counters: Counters,
    failures: Vec<(Phase, FailureKind, u64)>,
    /// base64 of hdrhistogram V2 serialisations, in [`Histograms::each`] order.
    hist: Vec<String>,
    #[serde(default)]
    requests: Requests,
}

impl Interval {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Interval) -> Result<(), StatsError> {
        self.counters.add(&other.counters);
        self.failures.add(&other.failures);
        self.requests.add(&other.requests);
        self.hist.add(&other.hist)
    }

    /// Clears deltas and histograms for the next interval; gauges are kept.
    pub fn reset(&mut self) {
        let gauges = (self.counters.viewers_up, self.counters.publishers_up);
        self.counters = Counters {
            viewers_up: gauges.0,
            publishers_up: gauges.1,
            ..Counters::default()
        };
        self.failures = Failures::default();
        self.requests = Requests::default();
        self.hist.reset();
    }

    /// Encodes this interval as one JSON line (no trailing newline) for `second`.
    pub fn to_line(&self, second: u32) -> Result<String, StatsError> {
        let mut hist = Vec::with_capacity(HISTOGRAMS);
        let mut buf = Vec::new();
        for h in self.hist.each() {
            buf.clear();
            V2Serializer::new()
                .serialize(h, &mut buf)
                .map_err(|e| StatsError::Decode(format!("serialise: {e:?}")))?;
            hist.push(base64::engine::general_purpose::STANDARD.encode(&buf));
        }
        let wire = WireInterval {
            second,
            counters: self.counters,
            failures: self.failures.entries(),
            hist,
            requests: self.requests,
        };
        Ok(serde_json::to_string(&wire)?)
    }

    /// Decodes a line written by [`Interval::to_line`]; returns its second too.
    pub fn from_line(line: &str) -> Result<(u32, Interval), StatsError> {
        let wire: WireInterval = serde_json::from_str(line)?;
        let mut out = Interval {
            counters: wire.counters,
            requests: wire.requests,
            ..Interval::default()
        };
        for (p, k, n) in wire.failures {
            out.failures.0[p as usize][k as usize] += n;
        }
        if wire.hist.len() != HISTOGRAMS {
            return Err(StatsError::Decode(format!(
                "{} histograms, expected {HISTOGRAMS}",
                wire.hist.len()
            )));
        }
        let mut de = Deserializer::new();
        for (slot, b64) in out.hist.each_mut().into_iter().zip(wire.hist.iter()) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| StatsError::Decode(e.to_string()))?;
            let h: Histogram<u64> = de
                .deserialize(&mut bytes.as_slice())
                .map_err(|e| StatsError::Decode(format!("{e:?}")))?;
            slot.add(&h).map_err(StatsError::Merge)?;
        }
        Ok((wire.second, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_round_trip_is_exact() {
        let mut a = Interval::default();
        a.counters.viewers_up = 3;
        a.counters.video_frames = 250;
        a.counters.missing_frames = 2;
        a.failures.record(Phase::Connect, FailureKind::Refused);
        a.failures.record(Phase::Request, FailureKind::HttpStatus);
        a.failures.record(Phase::Request, FailureKind::HttpStatus);
        for v in [150u64, 1_200, 33_000, 33_001, 2_000_000] {
            a.hist.latency_us.record(v).unwrap();
        }
        a.hist.gop_frames.record(25).unwrap();
        a.requests.record(RequestKind::Part, true);
        a.requests.record(RequestKind::BlockingReload, false);
        let line = a.to_line(7).unwrap();
        assert!(!line.contains('\n'));
        let (second, b) = Interval::from_line(&line).unwrap();
        assert_eq!(second, 7);
        assert_eq!(b.counters, a.counters);
        assert_eq!(b.failures, a.failures);
        assert_eq!(b.requests, a.requests);
        assert_eq!(b.requests.total(), 2);
        assert_eq!(b.hist.latency_us, a.hist.latency_us);
        assert_eq!(b.hist.gop_frames.max(), 25);
    }

    #[test]
    fn merging_children_equals_one_big_histogram() {
        let mut whole = Histograms::default();
        let mut merged = Interval::default();
        for child in 0..4u64 {
            let mut part = Interval::default();
            for i in 0..1000u64 {
                let v = 1 + (i * 7919 + child * 104_729) % 500_000;
                part.hist.latency_us.record(v).unwrap();
                whole.latency_us.record(v).unwrap();
            }
            part.counters.bytes_received = 10;
            let (_, decoded) = Interval::from_line(&part.to_line(0).unwrap()).unwrap();
            merged.add(&decoded).unwrap();
        }
        assert_eq!(merged.hist.latency_us, whole.latency_us);
        assert_eq!(merged.counters.bytes_received, 40);
        for q in [0.5, 0.99, 0.999] {
            assert_eq!(
                merged.hist.latency_us.value_at_quantile(q),
                whole.latency_us.value_at_quantile(q)
            );
        }
    }

    #[test]
    fn reset_keeps_gauges_only() {
        let mut a = Interval::default();
        a.counters.viewers_up = 5;
        a.counters.publishers_up = 1;
        a.counters.stalls = 2;
        a.failures.record(Phase::Streaming, FailureKind::EarlyEof);
        a.hist.stall_ms.record(700).unwrap();
        a.reset();
        assert_eq!(
            (
                a.counters.viewers_up,
                a.counters.publishers_up,
                a.counters.stalls
            ),
            (5, 1, 0)
        );
        assert_eq!(a.failures.total(), 0);
        assert_eq!(a.hist.stall_ms.len(), 0);
    }

    #[test]
    fn garbage_lines_are_errors_not_panics() {
        assert!(Interval::from_line("").is_err());
        assert!(Interval::from_line("{\"second\":1}").is_err());
        let bad_hist = r#"{"second":1,"counters":{"viewers_up":0,"publishers_up":0,"viewers_started":0,"viewers_playing":0,"bytes_received":0,"video_frames":0,"keyframes":0,"audio_frames":0,"stamped_frames":0,"missing_frames":0,"sequence_resets":0,"stalls":0,"byte_stalls":0,"published_frames":0,"published_bytes":0},"failures":[],"hist":["AAAA","!!","","","",""]}"#;
        assert!(matches!(
            Interval::from_line(bad_hist),
            Err(StatsError::Decode(_))
        ));
    }
}
