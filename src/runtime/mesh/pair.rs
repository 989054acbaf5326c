//! One ordered core pair's queues: a control and a media ring, each with a
//! backlog on the sending core, and one stamp counter shared by both lanes so the
//! receiving core hands items out in the order they entered the rings.

use std::collections::VecDeque;

use super::Lane;
use crate::runtime::spsc::{Consumer, Producer};

/// An item and its place in the pair's single send order (both lanes share one
/// counter, so the receiver can replay the exact order in which items entered
/// the rings).
pub(super) struct Stamped<T> {
    pub(super) stamp: u64,
    pub(super) item: T,
}

/// Our side of the queues to one peer.
pub(super) struct Outbound<T> {
    pub(super) control: Producer<Stamped<T>>,
    pub(super) media: Producer<Stamped<T>>,
    /// Control items waiting for room; never dropped.
    pub(super) control_backlog: VecDeque<T>,
    /// Media items waiting for room; at most `MeshConfig::media_backlog`.
    pub(super) media_backlog: VecDeque<T>,
    /// Stamp of the next item to enter either ring.
    pub(super) next_stamp: u64,
    /// Sent to since the last `flush_wakeups`.
    pub(super) dirty: bool,
}

impl<T> Outbound<T> {
    pub(super) fn push(&mut self, lane: Lane, item: T) -> Result<(), T> {
        let ring = match lane {
            Lane::Control => &self.control,
            Lane::Media => &self.media,
        };
        ring.push(Stamped {
            stamp: self.next_stamp,
            item,
        })
        .map_err(|s| s.item)?;
        self.next_stamp += 1;
        self.dirty = true;
        Ok(())
    }

    /// Moves backed-up items into the rings: control first, and media only once
    /// no control item waits, so media never overtakes control.
    pub(super) fn flush(&mut self) {
        while let Some(item) = self.control_backlog.pop_front() {
            if let Err(item) = self.push(Lane::Control, item) {
                self.control_backlog.push_front(item);
                return;
            }
        }
        while let Some(item) = self.media_backlog.pop_front() {
            if let Err(item) = self.push(Lane::Media, item) {
                self.media_backlog.push_front(item);
                return;
            }
        }
    }
}

/// Our side of the queues from one peer.
pub(super) struct Inbound<T> {
    pub(super) control: Consumer<Stamped<T>>,
    pub(super) media: Consumer<Stamped<T>>,
    /// Stamp of the next item to hand out.
    pub(super) next_stamp: u64,
}

impl<T> Inbound<T> {
    /// The next item in send order, from whichever lane holds it.
    pub(super) fn take(&mut self) -> Option<T> {
        for attempt in 0..2 {
            let want = self.next_stamp;
            let control = self.control.peek().map(|s| s.stamp);
            let media = self.media.peek().map(|s| s.stamp);
            let lane = if control == Some(want) {
                Lane::Control
            } else if media == Some(want) {
                Lane::Media
            } else if control.is_none() && media.is_none() {
                return None;
            } else if attempt == 0 {
                // A lane that looked empty may have been filled after we looked;
                // seeing a later stamp on the other lane guarantees a second look
                // finds the wanted one (the producer pushed it first).
                continue;
            } else {
                // Unreachable while the producer stamps in push order; resync
                // rather than stall the pair forever.
                tracing::error!(
                    want,
                    ?control,
                    ?media,
                    "mesh: stamp out of order; resyncing"
                );
                debug_assert!(
                    false,
                    "mesh stamp {want} missing: control {control:?}, media {media:?}"
                );
                if control.unwrap_or(u64::MAX) < media.unwrap_or(u64::MAX) {
                    Lane::Control
                } else {
                    Lane::Media
                }
            };
            let ring = match lane {
                Lane::Control => &self.control,
                Lane::Media => &self.media,
            };
            let stamped = ring.pop()?;
            self.next_stamp = stamped.stamp + 1;
            return Some(stamped.item);
        }
        None
    }

    pub(super) fn is_empty(&self) -> bool {
        self.control.is_empty() && self.media.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::mesh::tests::sized;
    use crate::runtime::mesh::{Mesh, Refused};

    #[test]
    fn full_media_ring_backs_up_then_refuses() {
        let mut links = Mesh::new::<u32>(2, sized(2, 2, 1)).unwrap();
        links[1].send(0, Lane::Media, 1).unwrap();
        links[1].send(0, Lane::Media, 2).unwrap();
        links[1].send(0, Lane::Media, 3).unwrap();
        assert_eq!(links[1].backlog(), (0, 1));
        assert_eq!(links[1].send(0, Lane::Media, 4), Err(Refused::Full(4)));
        let mut got = Vec::new();
        links[0].drain(|_, x| got.push(x));
        links[1].flush_backlogs();
        links[0].drain(|_, x| got.push(x));
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(links[1].backlog(), (0, 0));
    }

    #[test]
    fn a_full_control_ring_backs_up_without_limit_and_drains_in_order() {
        let mut links = Mesh::new::<u32>(2, sized(2, 2, 0)).unwrap();
        for i in 0..100 {
            links[0].send(1, Lane::Control, i).unwrap();
        }
        assert_eq!(links[0].backlog(), (98, 0));
        assert_eq!(
            links[0].send(1, Lane::Media, 100),
            Err(Refused::Full(100)),
            "media never jumps control"
        );
        let mut got = Vec::new();
        while got.len() < 100 {
            links[0].flush_backlogs();
            assert!(links[1].drain(|_, x| got.push(x)) > 0);
        }
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(links[0].backlog(), (0, 0));
    }

    #[test]
    fn the_receiver_replays_the_send_order_across_lanes() {
        let mut links = Mesh::new::<u32>(2, sized(8, 8, 8)).unwrap();
        let lanes = [
            Lane::Control,
            Lane::Media,
            Lane::Media,
            Lane::Control,
            Lane::Media,
            Lane::Control,
            Lane::Control,
        ];
        for (i, lane) in lanes.into_iter().enumerate() {
            links[0].send(1, lane, i as u32).unwrap();
        }
        let mut got = Vec::new();
        links[1].drain(|_, x| got.push(x));
        assert_eq!(got, [0, 1, 2, 3, 4, 5, 6]);
    }

    /// Two threads, tiny rings, lanes chosen pseudo-randomly: the receiver sees
    /// every item, each lane in order, and no media item ahead of a control item
    /// sent before it (the stamp merge holds under real concurrency).
    #[test]
    fn two_threads_keep_the_pair_order_across_lanes() {
        const COUNT: u32 = 100_000;
        let mut links = Mesh::new::<(bool, u32)>(2, sized(2, 2, COUNT as usize)).unwrap();
        let (mut rx, mut tx) = (links.pop().unwrap(), links.pop().unwrap());
        let producer = std::thread::spawn(move || {
            let mut x = 0x9e37_79b9u32;
            for n in 0..COUNT {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let control = x.is_multiple_of(4);
                let lane = if control { Lane::Control } else { Lane::Media };
                assert!(tx.send(1, lane, (control, n)).is_ok());
                tx.flush_backlogs();
            }
            while tx.backlog() != (0, 0) {
                tx.flush_backlogs();
                std::thread::yield_now();
            }
        });
        let mut got = Vec::with_capacity(COUNT as usize);
        while got.len() < COUNT as usize {
            if rx.drain(|_, item| got.push(item)) == 0 {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        let mut last = [None::<u32>; 2];
        let mut last_control_seen = None::<u32>;
        let mut controls_sent_before = 0usize;
        let all_controls: Vec<u32> = {
            let mut c: Vec<u32> = got.iter().filter(|(c, _)| *c).map(|&(_, n)| n).collect();
            c.sort_unstable();
            c
        };
        for &(control, n) in &got {
            let lane = usize::from(control);
            assert!(last[lane].is_none_or(|p| p < n), "lane out of order at {n}");
            last[lane] = Some(n);
            if control {
                last_control_seen = Some(n);
                controls_sent_before += 1;
            } else {
                let sent_before = all_controls.partition_point(|&c| c < n);
                assert!(
                    controls_sent_before >= sent_before,
                    "media {n} overtook control (last {last_control_seen:?})"
                );
            }
        }
        let mut ns: Vec<u32> = got.iter().map(|&(_, n)| n).collect();
        ns.sort_unstable();
        assert_eq!(ns, (0..COUNT).collect::<Vec<_>>());
    }

    /// A deliberately tiny ring and a receiver that drains rarely: every control
    /// item arrives, in order, and never behind media sent after it; only media is
    /// refused.
    #[test]
    fn control_is_never_dropped_with_a_tiny_ring() {
        let mut links = Mesh::new::<(Lane, u32)>(2, sized(2, 2, 4)).unwrap();
        let (mut sent_control, mut refused_media) = (0u32, 0u32);
        // (lane, index) in send order, as accepted by `send`.
        let mut accepted: Vec<(Lane, u32)> = Vec::new();
        let mut got: Vec<(Lane, u32)> = Vec::new();
        for round in 0..200u32 {
            for i in 0..5u32 {
                let n = round * 5 + i;
                let lane = if n % 3 == 0 {
                    Lane::Control
                } else {
                    Lane::Media
                };
                if lane == Lane::Control {
                    sent_control += 1;
                }
                match links[0].send(1, lane, (lane, n)) {
                    Ok(()) => accepted.push((lane, n)),
                    Err(Refused::Full((Lane::Media, _))) => refused_media += 1,
                    Err(other) => panic!("control refused: {other:?}"),
                }
            }
            links[0].flush_backlogs();
            if round % 7 == 0 {
                links[1].drain(|_, item| got.push(item));
            }
        }
        while links[0].backlog() != (0, 0) || got.len() < accepted.len() {
            links[0].flush_backlogs();
            assert!(links[1].drain(|_, item| got.push(item)) > 0 || links[0].backlog() != (0, 0));
        }
        assert!(refused_media > 0, "the tiny ring must have overflowed");
        let controls: Vec<u32> = got
            .iter()
            .filter(|(l, _)| *l == Lane::Control)
            .map(|&(_, n)| n)
            .collect();
        assert_eq!(
            controls.len() as u32,
            sent_control,
            "every control item arrived"
        );
        assert!(controls.windows(2).all(|w| w[0] < w[1]), "control in order");
        let media: Vec<u32> = got
            .iter()
            .filter(|(l, _)| *l == Lane::Media)
            .map(|&(_, n)| n)
            .collect();
        assert!(media.windows(2).all(|w| w[0] < w[1]), "media in order");
        // Media never overtakes control sent before it.
        for (pos, &(lane, n)) in got.iter().enumerate() {
            if lane == Lane::Media {
                let earlier_controls = controls.iter().filter(|&&c| c < n).count();
                let seen = got
                    .iter()
                    .take(pos)
                    .filter(|(l, _)| *l == Lane::Control)
                    .count();
                assert!(seen >= earlier_controls, "media {n} overtook control");
            }
        }
        let mut sorted_accepted = accepted.clone();
        sorted_accepted.sort_by_key(|&(_, n)| n);
        let mut sorted_got = got.clone();
        sorted_got.sort_by_key(|&(_, n)| n);
        assert_eq!(
            sorted_got, sorted_accepted,
            "everything accepted arrived once"
        );
    }
}
