//! Two pinned cores play ping-pong over the mesh, each sleeping in its reactor
//! until the other's eventfd wake-up arrives.

use std::time::{Duration, Instant};

use ringcast::runtime::cores::{CoreSlot, CoreThreads, Cores};
use ringcast::runtime::mesh::{CoreLink, Mesh};
use ringcast::runtime::{Reactor, ReactorConfig};

const WAKE: u64 = 7;
const ROUNDS: u64 = 2_000;

/// Runs one core: answers every `n` with `n + 1` until `n` reaches `ROUNDS`.
/// Returns (items received, wake completions seen, elapsed).
fn play(slot: CoreSlot, mut link: CoreLink<u64>) -> (u64, u64, Duration) {
    let cfg = ReactorConfig {
        entries: 32,
        recv_buffers: 2,
        recv_buffer_size: 64,
        ..ReactorConfig::default()
    };
    let mut reactor = Reactor::new(&cfg).unwrap();
    let mut counter = Box::new(0u64);
    // SAFETY: `counter` is boxed and outlives the reactor's use of it (the loop).
    unsafe {
        reactor
            .read_eventfd(link.wake_fd(), &mut *counter, WAKE)
            .unwrap()
    };
    let peer = 1 - slot.index;
    let started = Instant::now();
    if slot.index == 0 {
        link.send(peer, 0).unwrap();
        link.flush_wakeups();
    }
    let (mut received, mut wakes) = (0u64, 0u64);
    let deadline = started + Duration::from_secs(20);
    let mut done = false;
    while !done && Instant::now() < deadline {
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(200)))
            .unwrap();
        let mut rearm = false;
        reactor.drain_completions(|_, c| {
            assert_eq!(c.user_data, WAKE);
            assert_eq!(c.result, 8, "eventfd read: {:?}", c.error());
            wakes += 1;
            rearm = true;
        });
        if rearm {
            // SAFETY: as above.
            unsafe {
                reactor
                    .read_eventfd(link.wake_fd(), &mut *counter, WAKE)
                    .unwrap()
            };
        }
        let mut replies = Vec::new();
        link.drain(|from, n| {
            assert_eq!(from, peer);
            received += 1;
            if n + 1 >= ROUNDS {
                done = true;
            }
            if n < ROUNDS {
                replies.push(n + 1);
            }
        });
        for n in replies {
            link.send(peer, n).unwrap();
        }
        link.flush_wakeups();
    }
    (received, wakes, started.elapsed())
}

#[test]
fn two_cores_ping_pong_with_wakeups() {
    let links = Mesh::new::<u64>(2, 64).unwrap();
    // Two pinned cores need two CPUs: a one-CPU machine fails here, by name,
    // rather than skipping the test.
    let cpus = Cores::All.resolve().unwrap().len();
    assert!(
        cpus >= 2,
        "needs two CPUs to pin two cores; this machine has {cpus}"
    );
    let cores = Cores::Count(2);
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let threads = CoreThreads::spawn(&cores, links, move |slot, link| {
        let result = play(slot, link);
        tx.lock().unwrap().send((slot.index, result)).unwrap();
    });
    let threads = threads.expect("spawn two pinned cores");
    threads.join().unwrap();
    let mut results: Vec<_> = rx.iter().collect();
    results.sort_by_key(|(i, _)| *i);
    let total: u64 = results.iter().map(|(_, (r, _, _))| r).sum();
    // Items 0..=ROUNDS each cross once.
    assert_eq!(
        total,
        ROUNDS + 1,
        "every hop arrived exactly once: {results:?}"
    );
    for (index, (received, wakes, elapsed)) in &results {
        // The peer waits for each reply before sending, so hops mostly need a wake each.
        assert!(
            *wakes >= received / 2,
            "core {index}: {wakes} wakes for {received} items"
        );
        eprintln!(
            "core {index}: {received} items, {wakes} wakes, {:.1} us per round trip",
            elapsed.as_secs_f64() * 1e6 / (ROUNDS / 2) as f64
        );
    }
}
