//! What counts as a failure or a refusal in the metrics: which side a closing
//! connection was on and whether its reason is an error, and which refusal
//! reason a stream-layer error stands for. Kept apart from the paths that
//! close and refuse so every path classifies the same way.

use super::conn::{Conn, Proto};
use super::viewer_send::PlayError;
use super::worker::CoreState;
use crate::metrics::{CloseReason, FailureSide, RefuseReason};
use crate::stream::{DirectoryError, ShardError};

/// What a connection was doing when it closed, as far as failures go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An RTMP connection still publishing (no unpublish came first).
    Publisher,
    /// A connection attached to a stream as a viewer: RTMP play, HTTP-FLV, or
    /// a push relay once its target accepted (it is counted as a viewer too).
    Viewer,
    /// Anything else: handshakes, API requests, refused requests, origin
    /// pulls (their failures are counted by the pull, see `origin_conn`).
    Other,
}

impl Role {
    /// The role of `conn` now.
    pub fn of(conn: &Conn) -> Role {
        match &conn.proto {
            Proto::Rtmp(rc) if rc.publishing.is_some() => Role::Publisher,
            _ if conn.viewer.is_some() => Role::Viewer,
            _ => Role::Other,
        }
    }
}

/// The failure side to count when a connection in `role` closes for `reason`,
/// or `None` when that close is an ordinary end.
///
/// A publisher fails when its connection ends before it unpublished: timed
/// out, broke the protocol, hit a socket error or simply vanished. A viewer
/// fails when the server cut it (too slow, broken protocol, socket error,
/// timeout); a viewer hanging up, a stream ending, a kick or a shutdown are
/// ordinary ends on either side.
pub fn failure_side(role: Role, reason: CloseReason) -> Option<FailureSide> {
    use CloseReason::*;
    match (role, reason) {
        (Role::Publisher, Timeout | ProtocolError | IoError | PeerClosed) => {
            Some(FailureSide::Publisher)
        }
        (Role::Viewer, Timeout | ProtocolError | IoError | SlowViewer) => Some(FailureSide::Viewer),
        _ => None,
    }
}

/// The refusal reason for a publish the directory turned down.
pub fn claim_refusal(e: &DirectoryError) -> RefuseReason {
    match e {
        DirectoryError::Taken { .. } => RefuseReason::DuplicatePublish,
        DirectoryError::Full { .. } => RefuseReason::StreamLimit,
    }
}

/// The refusal reason for a stream or viewer the shard turned down.
pub fn shard_refusal(e: &ShardError) -> RefuseReason {
    match e {
        ShardError::TooManyStreams { .. } => RefuseReason::StreamLimit,
        ShardError::TooManyViewers { .. } => RefuseReason::ViewerLimit,
        // The stream went away between the lookup and the attach.
        _ => RefuseReason::StreamNotFound,
    }
}

/// The refusal reason for a play that could not start.
pub fn play_refusal(e: &PlayError) -> RefuseReason {
    match e {
        PlayError::NotFound(_) => RefuseReason::StreamNotFound,
        PlayError::Refused(e) => shard_refusal(e),
    }
}

impl CoreState {
    /// Counts the close of `slot` for `reason` as a failure if it is one.
    /// Called before the close detaches the connection from its stream.
    pub(super) fn count_close_failure(&mut self, slot: u32, reason: CloseReason) {
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        if let Some(side) = failure_side(Role::of(conn), reason) {
            self.metrics.failures.inc(side);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::StreamKey;

    #[test]
    fn errors_fail_their_side_and_ordinary_ends_do_not() {
        use CloseReason::*;
        for reason in [Timeout, ProtocolError, IoError, PeerClosed] {
            assert_eq!(
                failure_side(Role::Publisher, reason),
                Some(FailureSide::Publisher),
                "{reason:?}"
            );
        }
        for reason in [Timeout, ProtocolError, IoError, SlowViewer] {
            assert_eq!(
                failure_side(Role::Viewer, reason),
                Some(FailureSide::Viewer),
                "{reason:?}"
            );
        }
        for reason in [Kicked, StreamEnded, Shutdown] {
            assert_eq!(failure_side(Role::Publisher, reason), None, "{reason:?}");
            assert_eq!(failure_side(Role::Viewer, reason), None, "{reason:?}");
        }
        assert_eq!(failure_side(Role::Viewer, PeerClosed), None);
        assert_eq!(failure_side(Role::Other, ProtocolError), None);
    }

    #[test]
    fn limits_map_to_their_refusal_reason() {
        let key = StreamKey::new("live", "a").unwrap();
        assert_eq!(
            claim_refusal(&DirectoryError::Full { limit: 1 }),
            RefuseReason::StreamLimit
        );
        assert_eq!(
            claim_refusal(&DirectoryError::Taken {
                key: key.clone(),
                owner_core: 0
            }),
            RefuseReason::DuplicatePublish
        );
        assert_eq!(
            play_refusal(&PlayError::Refused(ShardError::TooManyViewers { limit: 1 })),
            RefuseReason::ViewerLimit
        );
        assert_eq!(
            play_refusal(&PlayError::Refused(ShardError::TooManyStreams { limit: 1 })),
            RefuseReason::StreamLimit
        );
        assert_eq!(
            play_refusal(&PlayError::NotFound(key)),
            RefuseReason::StreamNotFound
        );
    }
}
