//! A core's end of the cross-core mesh: its [`CoreLink`] and the inbox that the
//! turn's messages are drained into. Sending picks the message's lane; what each
//! message does on arrival is `CoreState`'s (`on_stream_msg`, `on_edge_msg`).

use super::MeshMsg;
use crate::metrics::{CoreMetrics, DropReason};
use crate::runtime::mesh::{CoreLink, Refused};

/// Control messages backed up behind full control rings (all peers) past which
/// this core stops accepting connections until they drain: control is never
/// dropped, so new work that would make more of it is held back instead.
pub(super) const CONTROL_BACKPRESSURE: usize = 4096;

/// This core's links to the other cores.
pub struct CoreMesh {
    /// The rings to and from every other core.
    link: CoreLink<MeshMsg>,
    /// Messages drained this turn (kept to reuse its allocation).
    inbox: Vec<MeshMsg>,
}

impl CoreMesh {
    /// Wraps this core's end of the mesh.
    pub fn new(link: CoreLink<MeshMsg>) -> CoreMesh {
        CoreMesh {
            link,
            inbox: Vec::new(),
        }
    }

    /// Sends `msg` to core `to` on its lane (control is never dropped; see
    /// `runtime::mesh`). A frame the target is hopelessly behind on is dropped and
    /// counted in `metrics`; its replica sees the sequence gap and resyncs at a
    /// keyframe.
    pub fn send(&mut self, metrics: &CoreMetrics, to: usize, msg: MeshMsg) {
        match self.link.send(to, msg.lane(), msg) {
            Ok(()) => {}
            Err(Refused::Full(_)) => metrics.frames_dropped.inc(DropReason::QueueCap),
            Err(Refused::NoRoute(msg)) => {
                tracing::error!(
                    core = self.link.core(),
                    to,
                    ?msg,
                    "mesh message for no core"
                )
            }
        }
    }

    /// Control messages waiting for a peer, when more than
    /// `CONTROL_BACKPRESSURE` of them are: accepting should pause.
    pub fn control_backed_up(&self) -> Option<usize> {
        let (control, _) = self.link.backlog();
        (control > CONTROL_BACKPRESSURE).then_some(control)
    }

    /// Moves backed-up messages into rings that have room again.
    pub fn flush_backlogs(&mut self) {
        self.link.flush_backlogs();
    }

    /// Wakes the cores sent to this turn that may be asleep.
    pub fn flush_wakeups(&mut self) {
        self.link.flush_wakeups();
    }

    /// The eventfd other cores wake this one with.
    pub fn wake_fd(&self) -> std::os::fd::RawFd {
        self.link.wake_fd()
    }

    /// Takes every message waiting for this core, in order; hand the list back
    /// with [`CoreMesh::handled`].
    pub fn receive(&mut self) -> Vec<MeshMsg> {
        let mut msgs = std::mem::take(&mut self.inbox);
        self.link.drain(|_from, msg| msgs.push(msg));
        msgs
    }

    /// Returns the (drained) list taken by [`CoreMesh::receive`].
    pub fn handled(&mut self, mut msgs: Vec<MeshMsg>) {
        msgs.clear();
        self.inbox = msgs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::EdgeMsg;
    use crate::metrics::MetricsRegistry;
    use crate::runtime::mesh::{Mesh, MeshConfig};
    use crate::stream::StreamKey;

    #[test]
    fn control_is_never_dropped_and_backs_up_past_the_mark() {
        let config = MeshConfig {
            control_ring: 2,
            ..MeshConfig::default()
        };
        let mut links = Mesh::new::<MeshMsg>(2, config).unwrap().into_iter();
        let (mut a, mut b) = (
            CoreMesh::new(links.next().unwrap()),
            CoreMesh::new(links.next().unwrap()),
        );
        let registry = MetricsRegistry::new(2).unwrap();
        let metrics = registry.core(0).unwrap();
        let sent = CONTROL_BACKPRESSURE + 10;
        for n in 0..sent {
            let key = StreamKey::new("live", &format!("k{n}")).unwrap();
            a.send(&metrics, 1, MeshMsg::Edge(EdgeMsg::Ready { key }));
            if n == CONTROL_BACKPRESSURE {
                // The ring holds 2; the rest is backed up, one short of the mark.
                assert_eq!(a.control_backed_up(), None);
            }
        }
        assert!(a.control_backed_up().is_some());
        assert_eq!(metrics.frames_dropped.get(DropReason::QueueCap), 0);
        let mut got = Vec::new();
        while got.len() < sent {
            a.flush_backlogs();
            let msgs = b.receive();
            assert!(!msgs.is_empty(), "backed-up control must arrive");
            got.extend(msgs.iter().map(|m| match m {
                MeshMsg::Edge(EdgeMsg::Ready { key }) => key.to_string(),
                other => panic!("unexpected {other:?}"),
            }));
            b.handled(msgs);
        }
        let want: Vec<String> = (0..sent)
            .map(|n| {
                StreamKey::new("live", &format!("k{n}"))
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(a.control_backed_up(), None);
    }
}
