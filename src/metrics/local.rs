//! Single-writer primitives: a counter, a gauge and a fixed-bucket histogram that
//! one core writes and the scraper reads.
//!
//! The owning core updates them with a relaxed `load` + `store` pair instead of a
//! `fetch_add`: with one writer no update can be lost, and on x86-64 this compiles to
//! a plain `mov`/`add`/`mov` with no `lock` prefix, so a counter bump costs the same
//! as incrementing a local variable. The scraper's relaxed `load` may see a value a
//! few increments old, which is fine for monitoring.
//!
//! **Contract:** only the core that owns a value calls its mutating methods. Two
//! writers would lose increments (never memory safety, just accuracy).

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count written by exactly one core.
#[derive(Debug, Default)]
pub struct LocalCounter(AtomicU64);

impl LocalCounter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Adds one. Owner core only.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`. Owner core only. Wraps at `u64::MAX` rather than panicking; at a
    /// billion increments a second that takes 584 years.
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Back to zero, for owner-private window accumulators (never for an
    /// exported counter, which Prometheus expects to only grow).
    #[inline]
    pub(crate) fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// The current value, readable from any thread.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (open viewers, cached bytes) written by exactly
/// one core. Signed so that a core which saw a viewer leave that it never counted
/// (a wiring bug) shows up as a negative number instead of wrapping to 2^64.
#[derive(Debug, Default)]
pub struct LocalGauge(AtomicU64);

impl LocalGauge {
    /// A gauge at zero.
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Sets the value. Owner core only.
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.store(v as u64, Ordering::Relaxed);
    }

    /// Adds `delta` (may be negative). Owner core only.
    #[inline]
    pub fn add(&self, delta: i64) {
        let v = self.0.load(Ordering::Relaxed) as i64;
        self.0
            .store(v.wrapping_add(delta) as u64, Ordering::Relaxed);
    }

    /// Adds one. Owner core only.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtracts one. Owner core only.
    #[inline]
    pub fn dec(&self) {
        self.add(-1);
    }

    /// The current value, readable from any thread.
    #[inline]
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed) as i64
    }
}

/// A floating-point gauge (a ratio) written by exactly one core, stored as the
/// bits of an `f64`.
#[derive(Debug, Default)]
pub struct LocalRatio(AtomicU64);

impl LocalRatio {
    /// A ratio at 0.0.
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Sets the value. Owner core only.
    #[inline]
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    /// The current value, readable from any thread.
    #[inline]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Upper bounds, in nanoseconds, of the server-latency histogram buckets: 10 µs to
/// 10 s. Observations have microsecond resolution; the buckets are fine at the low
/// end because an edge that is keeping up relays a frame (cross-core hop included)
/// in tens to hundreds of µs; coarse at the top because anything past a second is
/// a viewer that is about to be cut off as slow.
pub const LATENCY_BUCKETS_NS: [u64; 18] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

/// Number of finite buckets in [`LATENCY_BUCKETS_NS`].
pub const LATENCY_BUCKET_COUNT: usize = LATENCY_BUCKETS_NS.len();

/// A fixed-bucket latency histogram written by exactly one core. Bucket counts are
/// non-cumulative here (one store per observation) and made cumulative at scrape
/// time; the total count is derived from the buckets so that it always equals the
/// `+Inf` bucket, as Prometheus requires.
#[derive(Debug, Default)]
pub struct LocalHistogram {
    /// One slot per finite bucket plus the overflow (`+Inf`) slot.
    buckets: [LocalCounter; LATENCY_BUCKET_COUNT + 1],
    sum_ns: LocalCounter,
}

impl LocalHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one observation of `ns` nanoseconds. Owner core only.
    #[inline]
    pub fn observe_ns(&self, ns: u64) {
        let idx = LATENCY_BUCKETS_NS.partition_point(|&bound| bound < ns);
        // partition_point returns at most LATENCY_BUCKET_COUNT, the overflow slot.
        if let Some(bucket) = self.buckets.get(idx) {
            bucket.inc();
        }
        self.sum_ns.add(ns);
    }

    /// Adds this histogram's per-bucket counts and sum into `acc`, for summing
    /// across cores at scrape time.
    pub fn accumulate_into(&self, acc: &mut HistogramTotals) {
        for (total, bucket) in acc.buckets.iter_mut().zip(self.buckets.iter()) {
            *total = total.wrapping_add(bucket.get());
        }
        acc.sum_ns = acc.sum_ns.wrapping_add(self.sum_ns.get());
    }
}

/// Histogram values summed over cores: non-cumulative bucket counts (the last slot
/// is the overflow past the largest bound) and the sum of observations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramTotals {
    /// Non-cumulative counts; index `LATENCY_BUCKET_COUNT` is the `+Inf` overflow.
    pub buckets: [u64; LATENCY_BUCKET_COUNT + 1],
    /// Sum of all observations, in nanoseconds.
    pub sum_ns: u64,
}

impl HistogramTotals {
    /// Total number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().fold(0u64, |a, b| a.wrapping_add(*b))
    }

    /// `(upper bound in seconds, cumulative count)` for each finite bucket.
    pub fn cumulative_seconds(&self) -> Vec<(f64, u64)> {
        let mut running = 0u64;
        LATENCY_BUCKETS_NS
            .iter()
            .zip(self.buckets.iter())
            .map(|(bound, n)| {
                running = running.wrapping_add(*n);
                (*bound as f64 / 1e9, running)
            })
            .collect()
    }
}

/// Upper bounds of the bytes-per-send histogram: 256 B to 4 MiB by powers of
/// four. A lone audio frame is a few hundred bytes, a video frame of a 600 kb/s
/// stream a few KiB, a GOP burst at join hundreds of KiB.
pub const SEND_BYTES_BUCKETS: [u64; 9] = [
    256,
    1 << 10,
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    2 << 20,
    4 << 20,
];

/// Upper bounds of the frames-per-send histogram: one frame per send is the
/// costliest case; a send is capped by `runtime.max_frames_per_send`.
pub const SEND_FRAMES_BUCKETS: [u64; 10] = [0, 1, 2, 3, 4, 6, 8, 16, 32, 64];

/// A fixed-bucket histogram of unitless counts (bytes, frames) written by
/// exactly one core. `N` is the number of slots: one per bound of `bounds` plus
/// the overflow (`+Inf`) slot. Counts are non-cumulative here and made
/// cumulative at scrape time.
#[derive(Debug)]
pub struct ValueHistogram<const N: usize> {
    bounds: &'static [u64],
    buckets: [LocalCounter; N],
    sum: LocalCounter,
}

impl<const N: usize> ValueHistogram<N> {
    /// An empty histogram over `bounds` (strictly increasing, `N - 1` of them).
    pub fn new(bounds: &'static [u64]) -> Self {
        debug_assert_eq!(bounds.len() + 1, N, "one slot per bound plus +Inf");
        Self {
            bounds,
            buckets: std::array::from_fn(|_| LocalCounter::new()),
            sum: LocalCounter::new(),
        }
    }

    /// Records one observation. Owner core only.
    #[inline]
    pub fn observe(&self, v: u64) {
        let idx = self.bounds.partition_point(|&bound| bound < v);
        if let Some(bucket) = self.buckets.get(idx) {
            bucket.inc();
        }
        self.sum.add(v);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.buckets
            .iter()
            .fold(0u64, |a, b| a.wrapping_add(b.get()))
    }

    /// Sum of the observations.
    pub fn sum(&self) -> u64 {
        self.sum.get()
    }

    /// `(upper bound, cumulative count)` for each finite bucket.
    pub fn cumulative(&self) -> Vec<(u64, u64)> {
        let mut running = 0u64;
        self.bounds
            .iter()
            .zip(self.buckets.iter())
            .map(|(bound, n)| {
                running = running.wrapping_add(n.get());
                (*bound, running)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_adds_and_wraps() {
        let c = LocalCounter::new();
        c.inc();
        c.add(41);
        assert_eq!(c.get(), 42);
        c.add(u64::MAX);
        assert_eq!(c.get(), 41);
    }

    #[test]
    fn gauge_goes_up_down_and_below_zero() {
        let g = LocalGauge::new();
        g.inc();
        g.inc();
        g.dec();
        assert_eq!(g.get(), 1);
        g.add(-3);
        assert_eq!(g.get(), -2);
        g.set(1_000_000);
        assert_eq!(g.get(), 1_000_000);
    }

    #[test]
    fn ratio_round_trips_f64() {
        let r = LocalRatio::new();
        assert_eq!(r.get(), 0.0);
        r.set(0.375);
        assert_eq!(r.get(), 0.375);
    }

    #[test]
    fn histogram_puts_bounds_in_their_own_bucket() {
        let h = LocalHistogram::new();
        h.observe_ns(10_000); // exactly the first bound: le=0.00001 includes it
        h.observe_ns(10_001); // just past it: second bucket
        h.observe_ns(0);
        h.observe_ns(u64::MAX / 2); // past every bound: overflow
        let mut t = HistogramTotals::default();
        h.accumulate_into(&mut t);
        assert_eq!(t.buckets[0], 2);
        assert_eq!(t.buckets[1], 1);
        assert_eq!(t.buckets[LATENCY_BUCKET_COUNT], 1);
        assert_eq!(t.count(), 4);
        let cum = t.cumulative_seconds();
        assert_eq!(cum.len(), LATENCY_BUCKET_COUNT);
        assert_eq!(cum[0], (0.00001, 2));
        assert_eq!(cum[1].1, 3);
        assert_eq!(cum.last().map(|c| c.1), Some(3)); // overflow not in finite buckets
    }

    #[test]
    fn histograms_sum_across_cores() {
        let a = LocalHistogram::new();
        let b = LocalHistogram::new();
        a.observe_ns(1_000_000);
        b.observe_ns(1_000_000);
        b.observe_ns(3_000_000);
        let mut t = HistogramTotals::default();
        a.accumulate_into(&mut t);
        b.accumulate_into(&mut t);
        assert_eq!(t.count(), 3);
        assert_eq!(t.sum_ns, 5_000_000);
    }

    #[test]
    fn bucket_bounds_are_strictly_increasing() {
        assert!(LATENCY_BUCKETS_NS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn value_histogram_buckets_and_overflow() {
        let h: ValueHistogram<{ SEND_FRAMES_BUCKETS.len() + 1 }> =
            ValueHistogram::new(&SEND_FRAMES_BUCKETS);
        h.observe(1);
        h.observe(1);
        h.observe(5); // le=6
        h.observe(1000); // past every bound
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum(), 1007);
        let cum = h.cumulative();
        assert_eq!(cum.len(), SEND_FRAMES_BUCKETS.len());
        assert_eq!(cum[1], (1, 2));
        assert_eq!(cum[5], (6, 3));
        assert_eq!(cum.last(), Some(&(64, 3)));
        assert!(SEND_BYTES_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert!(SEND_FRAMES_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }
}
