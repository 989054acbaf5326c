//! HLS requests answered later, per core: blocking playlist reloads and
//! preload-hint parts (until their part lands), in-progress LL-DASH segments
//! (streamed as their parts land) and requests waiting for another core's
//! view. Keyed by stream, so a new view re-asks only that stream's waiters;
//! bounded per core (`hls.max_waiters_per_core`: past it, 503); every waiter
//! has a deadline, checked by the core's 100 ms sweep.

use std::collections::HashMap;

use super::routes::HlsRequest;
use crate::protocol::hls::TrackKind;
use crate::stream::StreamId;

/// An in-progress fMP4 segment being streamed with chunked transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streaming {
    /// Its track.
    pub track: TrackKind,
    /// Its number.
    pub msn: u64,
    /// The next part to send.
    pub next_part: u32,
}

/// One held request.
#[derive(Clone, Debug)]
pub struct Waiter {
    /// Its connection.
    pub slot: u32,
    /// The stream it waits on.
    pub stream_id: StreamId,
    /// The request.
    pub req: HlsRequest,
    /// When it is answered 503 (ms on the core clock).
    pub deadline_ms: u64,
    /// Set once its chunked response has started.
    pub streaming: Option<Streaming>,
}

/// The waiters of one core.
pub struct Waiters {
    by_stream: HashMap<StreamId, Vec<Waiter>>,
    /// Which stream each waiting connection waits on (one request per
    /// connection waits at a time: later ones are parked behind it).
    by_slot: HashMap<u32, StreamId>,
    count: usize,
    cap: usize,
}

impl Waiters {
    /// None waiting; at most `cap`.
    pub fn new(cap: usize) -> Waiters {
        Waiters {
            by_stream: HashMap::new(),
            by_slot: HashMap::new(),
            count: 0,
            cap: cap.max(1),
        }
    }

    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.count
    }

    /// No request waits.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether a request of `stream_id` waits here.
    pub fn has_stream(&self, stream_id: StreamId) -> bool {
        self.by_stream.contains_key(&stream_id)
    }

    /// Holds `w`; gives it back when the core already holds the most.
    pub fn add(&mut self, w: Waiter) -> Result<(), Box<Waiter>> {
        if self.count >= self.cap {
            return Err(Box::new(w));
        }
        self.count += 1;
        self.by_slot.insert(w.slot, w.stream_id);
        self.by_stream.entry(w.stream_id).or_default().push(w);
        Ok(())
    }

    /// Takes the waiter of connection `slot` (its deadline passed).
    pub fn take_slot(&mut self, slot: u32) -> Option<Waiter> {
        let stream_id = self.by_slot.remove(&slot)?;
        let list = self.by_stream.get_mut(&stream_id)?;
        let pos = list.iter().position(|w| w.slot == slot)?;
        let w = list.swap_remove(pos);
        if list.is_empty() {
            self.by_stream.remove(&stream_id);
        }
        self.count -= 1;
        Some(w)
    }

    /// Takes every waiter of `stream_id` (to be asked again; re-add those
    /// that still wait).
    pub fn take_stream(&mut self, stream_id: StreamId) -> Vec<Waiter> {
        let taken = self.by_stream.remove(&stream_id).unwrap_or_default();
        for w in &taken {
            self.by_slot.remove(&w.slot);
        }
        self.count -= taken.len();
        taken
    }

    /// Takes every waiter whose deadline is at or before `now_ms`.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<Waiter> {
        let mut due = Vec::new();
        self.by_stream.retain(|_, list| {
            let mut i = 0;
            while i < list.len() {
                if list[i].deadline_ms <= now_ms {
                    due.push(list.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            !list.is_empty()
        });
        for w in &due {
            self.by_slot.remove(&w.slot);
        }
        self.count -= due.len();
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::hls::urls::Resource;
    use crate::protocol::http::response::ResponseContext;
    use crate::stream::StreamKey;

    fn waiter(stream: u64, deadline_ms: u64) -> Waiter {
        Waiter {
            slot: 1,
            stream_id: StreamId(stream),
            req: HlsRequest {
                key: StreamKey::new("live", "a").unwrap(),
                resource: Resource::Multivariant,
                query: String::new(),
                ctx: ResponseContext::for_bad_request(),
                since_ms: 0,
                generation: 0,
                range: None,
            },
            deadline_ms,
            streaming: None,
        }
    }

    #[test]
    fn waiters_are_bounded_taken_by_stream_and_by_deadline() {
        let mut w = Waiters::new(3);
        w.add(waiter(1, 100)).unwrap();
        w.add(waiter(1, 300)).unwrap();
        w.add(waiter(2, 200)).unwrap();
        assert!(w.add(waiter(2, 200)).is_err(), "over the cap");
        assert_eq!(w.len(), 3);
        let due = w.take_due(200);
        assert_eq!(due.len(), 2);
        assert_eq!(w.len(), 1);
        assert!(w.take_stream(StreamId(2)).is_empty());
        assert!(w.has_stream(StreamId(1)) && !w.has_stream(StreamId(2)));
        assert_eq!(w.take_stream(StreamId(1)).len(), 1);
        assert!(w.is_empty());
        w.add(waiter(3, 1)).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w.take_slot(1).map(|x| x.stream_id), Some(StreamId(3)));
        assert!(w.is_empty() && w.take_slot(1).is_none());
    }
}
