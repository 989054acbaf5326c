//! What the timeline reports: where a frame was placed, and the parts and
//! segments opened, closed and evicted.

/// Where a pushed frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Into part `(msn, part)`.
    Placed {
        /// Segment.
        msn: u64,
        /// Part within it.
        part: u32,
    },
    /// Not packaged: before the first provable segment start (or a track the
    /// stream was not declared with).
    Dropped,
}

/// Something the caller (muxers, waiters, the mesh) must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimelineEvent {
    /// A segment opened (its first part opened with it).
    SegmentOpened {
        /// Its number.
        msn: u64,
    },
    /// A part completed: blocking reloads waiting for it can be answered.
    PartClosed {
        /// Segment.
        msn: u64,
        /// Part.
        part: u32,
    },
    /// A part opened (the next preload hint).
    PartOpened {
        /// Segment.
        msn: u64,
        /// Part.
        part: u32,
    },
    /// A segment completed (also emitted for GAP segments).
    SegmentClosed {
        /// Its number.
        msn: u64,
    },
    /// A segment left the window; its bytes can go (requests for it now 404).
    Evicted {
        /// Its number.
        msn: u64,
    },
}
