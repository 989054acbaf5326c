//! Exponential reconnect delays for upstream connections: 1, 2, 4 … capped at 30 s,
//! back to the start after a success.

/// First retry delay.
pub const FIRST_DELAY_MS: u64 = 1_000;
/// Longest retry delay.
pub const MAX_DELAY_MS: u64 = 30_000;

/// Doubles the delay after each failure, up to a cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    first_ms: u64,
    max_ms: u64,
    next_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(FIRST_DELAY_MS, MAX_DELAY_MS)
    }
}

impl Backoff {
    /// Delays starting at `first_ms`, doubling up to `max_ms` (at least `first_ms`).
    pub fn new(first_ms: u64, max_ms: u64) -> Self {
        let first_ms = first_ms.max(1);
        Backoff {
            first_ms,
            max_ms: max_ms.max(first_ms),
            next_ms: first_ms,
        }
    }

    /// The delay before the next attempt; each call doubles the following one.
    pub fn next_delay_ms(&mut self) -> u64 {
        let delay = self.next_ms;
        self.next_ms = self.next_ms.saturating_mul(2).min(self.max_ms);
        delay
    }

    /// A success: the next failure waits the first delay again.
    pub fn reset(&mut self) {
        self.next_ms = self.first_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay_ms()).collect();
        assert_eq!(
            delays,
            [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
        );
        b.reset();
        assert_eq!(b.next_delay_ms(), 1_000);
    }

    #[test]
    fn degenerate_limits_stay_sane() {
        let mut b = Backoff::new(0, 0);
        assert_eq!(b.next_delay_ms(), 1);
        assert_eq!(b.next_delay_ms(), 1);
        let mut huge = Backoff::new(u64::MAX / 2 + 1, u64::MAX);
        huge.next_delay_ms();
        assert_eq!(
            huge.next_delay_ms(),
            u64::MAX,
            "saturates instead of overflowing"
        );
    }
}
