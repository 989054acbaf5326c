//! Where the per-frame prefixes are written: heap scratch, or a slot of the
//! core's registered send region, so that sends whose bodies are staged in the
//! region too can name it as a fixed buffer.

use super::{Outbox, SendBody, SendInFlight, State, PREFIX_SLOT};
use crate::runtime::region::ScratchSlot;

/// Scratch for the per-frame prefixes: heap memory, or a slot of the core's
/// registered region (then sends whose bodies are in the region too can name it).
pub(super) enum Scratch {
    Heap(Box<[u8]>),
    Region(ScratchSlot),
}

impl Scratch {
    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Scratch::Heap(b) => b,
            Scratch::Region(slot) => slot.bytes_mut(),
        }
    }
}

impl<H: SendBody> Outbox<H> {
    /// As [`Outbox::new`], with scratch in a registered region's slot. The slot must
    /// hold at least `PREFIX_SLOT * max_frames` bytes; `max_frames` is cut to fit.
    pub fn with_region_scratch(
        max_frames: usize,
        control_limit: usize,
        mut slot: ScratchSlot,
    ) -> Self {
        let max_frames = max_frames
            .max(1)
            .min(slot.bytes_mut().len() / PREFIX_SLOT)
            .max(1);
        if slot.bytes_mut().len() < PREFIX_SLOT {
            return Self::new(max_frames, control_limit);
        }
        Self::with_scratch(max_frames, control_limit, Scratch::Region(slot))
    }

    /// Its scratch lives in a registered region.
    pub fn has_region_scratch(&self) -> bool {
        matches!(self.mem.scratch, Scratch::Region(_))
    }

    /// True once per outbox while its scratch is on the heap and no prefix is in
    /// use (idle, or assembling with no frame yet): the moment to call
    /// [`Outbox::adopt_scratch`].
    pub fn wants_region_scratch(&self) -> bool {
        let unused =
            self.state == State::Idle || (self.state == State::Assembling && self.frames == 0);
        !self.scratch_asked && unused && !self.has_region_scratch()
    }

    /// Moves the prefix scratch into a registered region's slot (`None`: the region
    /// had none; not asked again). Refused unless [`Outbox::wants_region_scratch`];
    /// a slot smaller than this outbox's scratch is refused too.
    pub fn adopt_scratch(&mut self, slot: Option<ScratchSlot>) -> Result<(), SendInFlight> {
        if !self.wants_region_scratch() {
            return Err(SendInFlight);
        }
        self.scratch_asked = true;
        if let Some(mut slot) = slot {
            if slot.bytes_mut().len() >= PREFIX_SLOT * self.max_frames {
                self.mem.scratch = Scratch::Region(slot);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::outbox::test_support::{iovecs, prefixed};
    use crate::runtime::region::{RegionConfig, SendRegion};
    use bytes::Bytes;

    #[test]
    fn region_scratch_and_staged_bodies_put_every_iovec_in_the_region() {
        let cfg = RegionConfig {
            scratch_slots: 2,
            scratch_slot_size: 4 * PREFIX_SLOT,
            staging_bytes: 1 << 16,
            block_size: 1 << 16,
        };
        let mut region = SendRegion::new(cfg).unwrap();
        let mut outbox: Outbox<Bytes> =
            Outbox::with_region_scratch(64, 64, region.scratch().unwrap());
        assert!(outbox.has_region_scratch());
        outbox.begin().unwrap();
        for i in 0..4u8 {
            let staged = region.stage(&[i; 1000]).unwrap();
            assert!(prefixed(&mut outbox, b'0' + i, staged));
        }
        assert!(!outbox.has_room(), "max_frames cut to what the slot holds");
        let msg = outbox.finish().unwrap();
        let iovs = iovecs(msg);
        assert_eq!(iovs.len(), 8);
        assert!(iovs.iter().all(|&(p, l)| region.mem().contains(p, l)));
        // A heap body breaks the rule: the caller must then use the non-fixed path.
        let mut other: Outbox<Bytes> =
            Outbox::with_region_scratch(4, 64, region.scratch().unwrap());
        other.begin().unwrap();
        assert!(prefixed(&mut other, b'x', Bytes::from(vec![9u8; 10])));
        let iovs = iovecs(other.finish().unwrap());
        assert!(region.mem().contains(iovs[0].0, iovs[0].1));
        assert!(!region.mem().contains(iovs[1].0, iovs[1].1));
        other.on_failed();
        outbox.on_failed();
    }
}
