//! The one deadline a session waits on at a time: what for, since when, and
//! for how long. Time is the caller's millisecond clock, passed in.

use super::SessionError;

/// A pending deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wait {
    /// What the session waits for (named in the timeout error).
    pub(crate) phase: &'static str,
    /// When the wait started (ms).
    pub(crate) since_ms: u64,
    /// How long it may last (ms).
    pub(crate) limit_ms: u64,
}

impl Wait {
    /// A wait for `phase` starting at `since_ms`, lasting `limit_ms`.
    pub(crate) fn new(phase: &'static str, since_ms: u64, limit_ms: u64) -> Wait {
        Wait {
            phase,
            since_ms,
            limit_ms,
        }
    }

    /// When it runs out.
    pub(crate) fn deadline(&self) -> u64 {
        self.since_ms.saturating_add(self.limit_ms)
    }

    /// The timeout error once `now_ms` reached the deadline.
    pub(crate) fn check(&self, now_ms: u64) -> Result<(), SessionError> {
        if now_ms >= self.deadline() {
            return Err(SessionError::TimedOut {
                phase: self.phase,
                limit_ms: self.limit_ms,
            });
        }
        Ok(())
    }
}
