//! A bounded lock-free single-producer single-consumer ring, the only channel
//! between two cores.
//!
//! Head and tail sit on separate cache lines, and each side caches the other's
//! index so the shared line is read only when the cached view says full/empty.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam::utils::CachePadded;
use thiserror::Error;

/// Largest accepted capacity: a cross-core queue deeper than this is a design bug.
pub const MAX_CAPACITY: usize = 1 << 20;

/// Why a ring could not be created.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpscError {
    /// Capacity must be a power of two between 1 and [`MAX_CAPACITY`].
    #[error("spsc capacity {capacity} is not a power of two in 1..={limit}")]
    BadCapacity {
        /// The requested capacity.
        capacity: usize,
        /// [`MAX_CAPACITY`].
        limit: usize,
    },
}

struct Shared<T> {
    /// Next slot the consumer reads; written by the consumer only.
    head: CachePadded<AtomicUsize>,
    /// Next slot the producer writes; written by the producer only.
    tail: CachePadded<AtomicUsize>,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
}

// SAFETY: a slot is accessed by exactly one side at a time, handed over through the
// release/acquire pair on head/tail; T itself moves between threads, so T: Send.
unsafe impl<T: Send> Sync for Shared<T> {}
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        for pos in head..tail {
            if let Some(slot) = self.slots.get(pos & self.mask) {
                // SAFETY: slots in head..tail were written and not yet read; both
                // halves are gone, so nobody else touches them.
                unsafe { (*slot.get()).assume_init_drop() };
            }
        }
    }
}

/// The sending half; owned by one thread.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    /// Last head value seen; the ring has at least `capacity - (tail - cached_head)` free.
    cached_head: Cell<usize>,
    tail: Cell<usize>,
}

/// The receiving half; owned by one thread.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// Last tail value seen; at least `cached_tail - head` items are ready.
    cached_tail: Cell<usize>,
    head: Cell<usize>,
}

// SAFETY: each half is used by one thread at a time (no Clone, &mut-free API is
// still single-threaded because the halves are !Sync).
unsafe impl<T: Send> Send for Producer<T> {}
unsafe impl<T: Send> Send for Consumer<T> {}

/// Creates a ring holding up to `capacity` items (a power of two).
pub fn channel<T>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), SpscError> {
    if !capacity.is_power_of_two() || capacity > MAX_CAPACITY {
        return Err(SpscError::BadCapacity {
            capacity,
            limit: MAX_CAPACITY,
        });
    }
    let slots = (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        slots,
        mask: capacity - 1,
    });
    Ok((
        Producer {
            shared: Arc::clone(&shared),
            cached_head: Cell::new(0),
            tail: Cell::new(0),
        },
        Consumer {
            shared,
            cached_tail: Cell::new(0),
            head: Cell::new(0),
        },
    ))
}

impl<T> Producer<T> {
    /// Enqueues `item`, or gives it back if the ring is full.
    pub fn push(&self, item: T) -> Result<(), T> {
        let tail = self.tail.get();
        let capacity = self.shared.mask + 1;
        if tail.wrapping_sub(self.cached_head.get()) >= capacity {
            self.cached_head
                .set(self.shared.head.load(Ordering::Acquire));
            if tail.wrapping_sub(self.cached_head.get()) >= capacity {
                return Err(item);
            }
        }
        let Some(slot) = self.shared.slots.get(tail & self.shared.mask) else {
            return Err(item);
        };
        // SAFETY: the slot is outside head..tail, so the consumer does not read it.
        unsafe { (*slot.get()).write(item) };
        let tail = tail.wrapping_add(1);
        self.tail.set(tail);
        self.shared.tail.store(tail, Ordering::Release);
        Ok(())
    }

    /// Items currently queued (a snapshot; the consumer may be draining).
    pub fn len(&self) -> usize {
        self.tail
            .get()
            .wrapping_sub(self.shared.head.load(Ordering::Acquire))
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maximum number of queued items.
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }
}

impl<T> Consumer<T> {
    /// The head index and its slot when an item is ready there, re-reading the
    /// producer's tail only when the cached view is empty (one shared-line read
    /// per batch of items, not per item).
    fn ready_slot(&self) -> Option<(usize, &UnsafeCell<MaybeUninit<T>>)> {
        let head = self.head.get();
        if head == self.cached_tail.get() {
            self.cached_tail
                .set(self.shared.tail.load(Ordering::Acquire));
            if head == self.cached_tail.get() {
                return None;
            }
        }
        let slot = self.shared.slots.get(head & self.shared.mask)?;
        Some((head, slot))
    }

    /// Dequeues one item, if any.
    pub fn pop(&self) -> Option<T> {
        let (head, slot) = self.ready_slot()?;
        // SAFETY: head < tail, so the producer wrote this slot and released it.
        let item = unsafe { (*slot.get()).assume_init_read() };
        let head = head.wrapping_add(1);
        self.head.set(head);
        self.shared.head.store(head, Ordering::Release);
        Some(item)
    }

    /// The next item without taking it, if any (re-reads the producer's tail
    /// when the cached view is empty, like [`Consumer::pop`]).
    pub fn peek(&self) -> Option<&T> {
        let (_, slot) = self.ready_slot()?;
        // SAFETY: head < tail, so the producer wrote this slot and released it, and
        // it stays untouched until the consumer (which `&self` borrows) pops it.
        Some(unsafe { (*slot.get()).assume_init_ref() })
    }

    /// Dequeues up to `max` items into `f`, publishing the new head once at the end
    /// so a batch costs one store on the shared line. Returns how many were taken.
    pub fn pop_batch(&self, max: usize, mut f: impl FnMut(T)) -> usize {
        let head = self.head.get();
        let tail = self.shared.tail.load(Ordering::Acquire);
        self.cached_tail.set(tail);
        let n = tail.wrapping_sub(head).min(max);
        for i in 0..n {
            let pos = head.wrapping_add(i);
            let Some(slot) = self.shared.slots.get(pos & self.shared.mask) else {
                break;
            };
            // SAFETY: pos is in head..tail: written by the producer and released.
            let item = unsafe { (*slot.get()).assume_init_read() };
            // Advance before calling out so a panic in `f` cannot cause a double drop.
            self.head.set(pos.wrapping_add(1));
            f(item);
        }
        self.shared.head.store(self.head.get(), Ordering::Release);
        n
    }

    /// Items currently ready (a snapshot).
    pub fn len(&self) -> usize {
        self.shared
            .tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head.get())
    }

    /// True when nothing is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Publish how far we read so Shared's drop only drops unread items.
        self.shared.head.store(self.head.get(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn capacity_must_be_a_power_of_two() {
        assert!(channel::<u8>(3).is_err());
        assert!(channel::<u8>(0).is_err());
        assert_eq!(
            channel::<u8>(MAX_CAPACITY * 2).err(),
            Some(SpscError::BadCapacity {
                capacity: MAX_CAPACITY * 2,
                limit: MAX_CAPACITY
            })
        );
    }

    #[test]
    fn full_ring_returns_the_item_and_fifo_order_holds() {
        let (tx, rx) = channel(4).unwrap();
        for i in 0..4 {
            tx.push(i).unwrap();
        }
        assert_eq!(tx.push(9), Err(9));
        assert_eq!(rx.pop(), Some(0));
        tx.push(4).unwrap();
        let mut got = Vec::new();
        assert_eq!(rx.pop_batch(16, |x| got.push(x)), 4);
        assert_eq!(got, [1, 2, 3, 4]);
        assert_eq!(rx.pop(), None);
        assert!(tx.is_empty());
    }

    #[test]
    fn peek_shows_the_head_without_taking_it() {
        let (tx, rx) = channel(2).unwrap();
        assert_eq!(rx.peek(), None);
        tx.push(5).unwrap();
        assert_eq!(rx.peek(), Some(&5));
        assert_eq!(rx.peek(), Some(&5));
        assert_eq!(rx.pop(), Some(5));
        assert_eq!(rx.peek(), None);
    }

    #[test]
    fn pop_batch_respects_max() {
        let (tx, rx) = channel(8).unwrap();
        for i in 0..6 {
            tx.push(i).unwrap();
        }
        let mut got = Vec::new();
        assert_eq!(rx.pop_batch(4, |x| got.push(x)), 4);
        assert_eq!(rx.len(), 2);
        assert_eq!(got, [0, 1, 2, 3]);
    }

    #[test]
    fn unread_items_are_dropped_with_the_ring() {
        struct Counted<'a>(&'a AtomicUsize);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let drops = AtomicUsize::new(0);
        {
            let (tx, rx) = channel(8).unwrap();
            for _ in 0..5 {
                assert!(tx.push(Counted(&drops)).is_ok());
            }
            drop(rx.pop());
            assert_eq!(drops.load(Ordering::Relaxed), 1);
        }
        assert_eq!(drops.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn two_threads_pass_every_item_in_order() {
        const COUNT: u64 = 200_000;
        let (tx, rx) = channel::<u64>(64).unwrap();
        let producer = std::thread::spawn(move || {
            let mut next = 0;
            while next < COUNT {
                if tx.push(next).is_ok() {
                    next += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        });
        let mut expected = 0u64;
        while expected < COUNT {
            let n = rx.pop_batch(32, |x| {
                assert_eq!(x, expected);
                expected += 1;
            });
            if n == 0 {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.pop(), None);
    }
}
