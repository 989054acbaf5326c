//! One pinned thread per selected core.
//!
//! Each thread is named `ringcast-core-N` (N = its index among the selected
//! cores, which is also its mesh index) and pinned to its CPU, so its ring,
//! buffers and caches stay local. Shutdown is the caller's protocol (a mesh
//! message or a flag); [`CoreThreads::join`] waits for every thread.

use std::thread::JoinHandle;

use serde::Deserialize;
use thiserror::Error;

/// Which cores to run on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cores {
    /// Every core the process may run on.
    #[default]
    All,
    /// The first `n` available cores.
    Count(usize),
    /// These CPU ids.
    List(Vec<usize>),
}

/// Why the core threads could not be started or finished badly.
#[derive(Debug, Error)]
pub enum CoresError {
    /// The selection resolved to no cores.
    #[error("no cores selected")]
    NoCores,
    /// More cores asked for than exist.
    #[error("{requested} cores requested, {available} available")]
    TooMany {
        /// Requested count.
        requested: usize,
        /// Cores the process may use.
        available: usize,
    },
    /// A listed CPU id is not available to this process.
    #[error("cpu {cpu} is not available to this process")]
    UnknownCpu {
        /// The CPU id.
        cpu: usize,
    },
    /// `states` did not have one entry per core.
    #[error("{states} per-core states for {cores} cores")]
    StateCount {
        /// States given.
        states: usize,
        /// Cores selected.
        cores: usize,
    },
    /// Spawning a thread failed.
    #[error("spawning core thread {index}: {source}")]
    Spawn {
        /// Core index.
        index: usize,
        /// The OS error.
        source: std::io::Error,
    },
    /// A core thread panicked.
    #[error("core thread {index} panicked")]
    Panicked {
        /// Core index.
        index: usize,
    },
}

/// Where a core thread runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreSlot {
    /// Index among the selected cores (0..n): the mesh index.
    pub index: usize,
    /// The CPU id it is pinned to.
    pub cpu: usize,
}

impl Cores {
    /// The CPU ids this selection means on this machine, in order.
    pub fn resolve(&self) -> Result<Vec<usize>, CoresError> {
        let available: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let cpus = match self {
            Cores::All => available,
            Cores::Count(n) => {
                if *n > available.len() {
                    return Err(CoresError::TooMany {
                        requested: *n,
                        available: available.len(),
                    });
                }
                available.into_iter().take(*n).collect()
            }
            Cores::List(list) => {
                if let Some(&cpu) = list.iter().find(|cpu| !available.contains(cpu)) {
                    return Err(CoresError::UnknownCpu { cpu });
                }
                let mut cpus = list.clone();
                cpus.dedup();
                cpus
            }
        };
        if cpus.is_empty() {
            return Err(CoresError::NoCores);
        }
        Ok(cpus)
    }
}

/// The running core threads.
pub struct CoreThreads {
    handles: Vec<(usize, JoinHandle<()>)>,
}

impl CoreThreads {
    /// Starts one pinned thread per selected core, handing thread `i` its slot and
    /// `states[i]` (e.g. its mesh link and listener config).
    pub fn spawn<S, F>(cores: &Cores, states: Vec<S>, f: F) -> Result<CoreThreads, CoresError>
    where
        S: Send + 'static,
        F: Fn(CoreSlot, S) + Send + Sync + 'static,
    {
        let cpus = cores.resolve()?;
        if states.len() != cpus.len() {
            return Err(CoresError::StateCount {
                states: states.len(),
                cores: cpus.len(),
            });
        }
        let f = std::sync::Arc::new(f);
        let mut threads = CoreThreads {
            handles: Vec::with_capacity(cpus.len()),
        };
        for (index, (cpu, state)) in cpus.into_iter().zip(states).enumerate() {
            let f = std::sync::Arc::clone(&f);
            let slot = CoreSlot { index, cpu };
            let handle = std::thread::Builder::new()
                .name(format!("ringcast-core-{index}"))
                .spawn(move || {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                        tracing::warn!(index, cpu, "could not pin core thread");
                    }
                    f(slot, state)
                })
                .map_err(|source| CoresError::Spawn { index, source })?;
            threads.handles.push((index, handle));
        }
        Ok(threads)
    }

    /// Number of threads.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// True if no thread was started.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Waits for every thread; reports the first that panicked.
    pub fn join(self) -> Result<(), CoresError> {
        let mut first_panic = None;
        for (index, handle) in self.handles {
            if handle.join().is_err() && first_panic.is_none() {
                first_panic = Some(CoresError::Panicked { index });
            }
        }
        first_panic.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn threads_are_named_pinned_and_joined() {
        let (tx, rx) = mpsc::channel();
        let cpus = Cores::All.resolve().unwrap();
        let states: Vec<u32> = (0..cpus.len() as u32).map(|i| i * 10).collect();
        let threads = CoreThreads::spawn(&Cores::All, states, move |slot, state| {
            // SAFETY: sched_getcpu has no preconditions.
            let running_on = unsafe { libc::sched_getcpu() };
            let name = std::thread::current().name().map(str::to_owned);
            tx.send((slot, state, name, running_on)).unwrap();
        })
        .unwrap();
        assert_eq!(threads.len(), cpus.len());
        threads.join().unwrap();
        let mut seen: Vec<_> = rx.iter().collect();
        seen.sort_by_key(|(slot, ..)| slot.index);
        for (i, (slot, state, name, running_on)) in seen.into_iter().enumerate() {
            assert_eq!(slot.index, i);
            assert_eq!(state, i as u32 * 10);
            assert_eq!(name.as_deref(), Some(format!("ringcast-core-{i}").as_str()));
            assert_eq!(running_on as usize, slot.cpu);
        }
    }

    #[test]
    fn selections_are_validated() {
        let n = Cores::All.resolve().unwrap().len();
        assert_eq!(Cores::Count(1).resolve().unwrap().len(), 1);
        assert!(matches!(
            Cores::Count(n + 1).resolve(),
            Err(CoresError::TooMany { .. })
        ));
        assert!(matches!(
            Cores::Count(0).resolve(),
            Err(CoresError::NoCores)
        ));
        assert!(matches!(
            Cores::List(vec![100_000]).resolve(),
            Err(CoresError::UnknownCpu { cpu: 100_000 })
        ));
        assert!(matches!(
            CoreThreads::spawn(&Cores::Count(1), vec![1, 2], |_, _: i32| {}),
            Err(CoresError::StateCount {
                states: 2,
                cores: 1
            })
        ));
    }

    #[test]
    fn a_panicking_core_is_reported() {
        let threads =
            CoreThreads::spawn(&Cores::Count(1), vec![()], |_, ()| panic!("boom")).unwrap();
        assert!(matches!(
            threads.join(),
            Err(CoresError::Panicked { index: 0 })
        ));
    }
}
