//! The core thread's CPU clock, sampled against wall time for the reactor's
//! busy accounting: what the thread really used, the kernel's work inside
//! `io_uring_enter` (inline sends of a submit) included.

use std::time::{Duration, Instant};

use crate::metrics::ReactorMetrics;

/// How often the CPU clock is read: often enough that a window's edge is off by
/// at most this much, rarely enough that the read (a system call) costs nothing
/// measurable at tens of thousands of turns a second.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// CPU time (user + system) the calling thread has used, in nanoseconds, or
/// `None` if the clock cannot be read (never on Linux).
pub fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64)
}

/// The last sample of both clocks, owned by one core's thread.
pub struct CpuSampler {
    wall: Instant,
    cpu_ns: u64,
}

impl CpuSampler {
    /// Starts sampling on the calling thread (the core's own).
    pub fn start() -> CpuSampler {
        CpuSampler {
            wall: Instant::now(),
            cpu_ns: thread_cpu_ns().unwrap_or(0),
        }
    }

    /// When [`SAMPLE_EVERY`] has passed since the last sample, reads the CPU
    /// clock and records the CPU and wall time since then into `reactor`
    /// (`viewers`: the core's viewers now). Call on the core's own thread.
    pub fn sample_if_due(&mut self, now: Instant, reactor: &ReactorMetrics, viewers: usize) {
        let wall = now.saturating_duration_since(self.wall);
        if wall < SAMPLE_EVERY {
            return;
        }
        let Some(cpu_ns) = thread_cpu_ns() else {
            return;
        };
        reactor.record_cpu(
            cpu_ns.saturating_sub(self.cpu_ns),
            wall.as_nanos() as u64,
            viewers as u64,
        );
        self.wall = now;
        self.cpu_ns = cpu_ns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_clock_counts_this_threads_work_only() {
        let before = thread_cpu_ns().expect("CLOCK_THREAD_CPUTIME_ID");
        // Spin until the clock has visibly advanced: it counts our own work.
        let mut x = 0u64;
        while thread_cpu_ns().expect("clock") < before + 2_000_000 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        // Another thread's spinning is not ours: the clock of a thread that
        // sleeps while another spins barely moves.
        let spinner = std::thread::spawn(|| {
            let start = thread_cpu_ns().expect("clock");
            while thread_cpu_ns().expect("clock") < start + 20_000_000 {}
        });
        let mine = thread_cpu_ns().expect("clock");
        spinner.join().expect("spinner");
        assert!(thread_cpu_ns().expect("clock") - mine < 10_000_000);
    }

    #[test]
    fn samples_record_busy_plus_idle_as_wall_time() {
        let r = ReactorMetrics::new();
        let mut s = CpuSampler::start();
        let start = s.wall;
        // Not due yet: nothing recorded.
        s.sample_if_due(start, &r, 1);
        assert_eq!(r.busy_ns() + r.idle_ns(), 0);
        let later = start + SAMPLE_EVERY * 3;
        s.sample_if_due(later, &r, 1);
        assert_eq!(
            r.busy_ns() + r.idle_ns(),
            (SAMPLE_EVERY * 3).as_nanos() as u64
        );
    }
}
