//! The pull core's side: one [`Pull`] per key, and what its actions do to the
//! directory, the shard, the upstream connection and the waiting viewers.

use super::EdgeCore;
use crate::edge::pull::{Pull, PullAction};
use crate::edge::EdgeMsg;
use crate::metrics::CloseReason;
use crate::server::worker::CoreState;
use crate::server::MeshMsg;
use crate::stream::{Claim, CoreMsg, CoreSet, PublishPolicy, Role, StreamId, StreamKey};

/// Most pulls one core runs.
pub const MAX_PULLS: usize = 10_000;
/// How long a stream whose upstream broke keeps its viewers: as long as the
/// pull keeps retrying, which idle close bounds.
const LOST_GRACE_MS: u64 = 7 * 24 * 3600 * 1000;

/// A pull and what the server holds for it.
pub struct PullEntry {
    pub(crate) pull: Pull,
    /// Passed upstream (the first viewer's play token).
    pub(crate) query: Option<String>,
    /// The current upstream connection (slot, generation).
    pub(crate) conn: Option<(u32, u32)>,
    /// The stream and its directory claim, once opened.
    pub(crate) stream: Option<(StreamId, Claim)>,
}

impl EdgeCore {
    /// Whether the pull of `key` still has `conn` (slot, generation) as its upstream.
    pub(crate) fn is_upstream(&self, key: &StreamKey, conn: (u32, u32)) -> bool {
        self.pulls.get(key).is_some_and(|e| e.conn == Some(conn))
    }

    /// The upstream `conn` of `key`'s pull closed: true if it was the current
    /// one (the pull forgets it and must learn that the attempt failed).
    pub(crate) fn upstream_closed(&mut self, key: &StreamKey, conn: (u32, u32)) -> bool {
        match self.pulls.get_mut(key) {
            Some(entry) if entry.conn == Some(conn) => {
                entry.conn = None;
                true
            }
            _ => false,
        }
    }

    /// An upstream attempt of `key`'s pull failed at `now_ms` (`not_found`: the
    /// origin said it has no such stream). Unless it was "not found", the
    /// origin's name is looked up again before its next try. Returns the origin
    /// tried, if the pull exists; its next actions are appended to `actions`.
    pub(crate) fn attempt_failed(
        &mut self,
        key: &StreamKey,
        not_found: bool,
        now_ms: u64,
        actions: &mut Vec<PullAction>,
    ) -> Option<Option<usize>> {
        let entry = self.pulls.get_mut(key)?;
        let tried = entry.pull.origin();
        // Not a "no such stream": the origin may have moved or this address
        // may be dead, so its name is looked up again before the next try.
        if let Some(target) = tried
            .filter(|_| !not_found)
            .and_then(|i| self.origins.get_mut(i))
        {
            target.connect_failed();
        }
        entry.pull.upstream_failed(not_found, now_ms, actions);
        Some(tried)
    }

    /// The URL of the origin `key`'s pull uses (empty if none).
    fn origin_url(&self, key: &StreamKey) -> String {
        let origin = self.pulls.get(key).and_then(|e| e.pull.origin());
        origin
            .and_then(|i| self.origins.get(i))
            .map(|o| o.url.clone())
            .unwrap_or_default()
    }

    /// Removes `key`'s pull if it has finished.
    fn remove_finished(&mut self, key: &StreamKey) -> Option<PullEntry> {
        if self.pulls.get(key).is_some_and(|e| e.pull.is_finished()) {
            return self.pulls.remove(key);
        }
        None
    }
}

impl CoreState {
    /// A viewer on `from_core` wants `key` (this is its pull core).
    pub(crate) fn edge_request(&mut self, key: StreamKey, query: Option<String>, from_core: usize) {
        let now = self.now_ms();
        let mut actions = std::mem::take(&mut self.edge.actions);
        actions.clear();
        if let Some(entry) = self.edge.pulls.get_mut(&key) {
            entry.pull.request(from_core, now, &mut actions);
        } else if self.shared.directory.lookup(&key).is_some() {
            // Published here, or pulled by a pull that just handed its key over.
            self.send_edge(from_core, EdgeMsg::Ready { key: key.clone() });
        } else if self.edge.known_missing(&key, now) {
            self.send_edge(from_core, EdgeMsg::NotFound { key: key.clone() });
        } else if self.edge.pulls.len() >= MAX_PULLS {
            tracing::warn!(core = self.core, limit = MAX_PULLS, "too many origin pulls");
            self.send_edge(from_core, EdgeMsg::Unavailable { key: key.clone() });
        } else {
            tracing::info!(core = self.core, %key, "starting origin pull");
            let pull = Pull::new(
                self.edge.origins.len(),
                self.edge.timing,
                from_core,
                now,
                &mut actions,
            );
            self.edge.pulls.insert(
                key.clone(),
                PullEntry {
                    pull,
                    query,
                    conn: None,
                    stream: None,
                },
            );
        }
        self.apply_pull_actions(&key, &mut actions);
        self.edge.actions = actions;
    }

    /// Carries out `actions` for `key`'s pull, then forgets it if it finished.
    pub(crate) fn apply_pull_actions(&mut self, key: &StreamKey, actions: &mut Vec<PullAction>) {
        let now = self.now_ms();
        // Actions may append more (an abandoned open closes the upstream): walk by index.
        let mut i = 0;
        while let Some(&action) = actions.get(i) {
            i += 1;
            match action {
                PullAction::Connect { origin } => {
                    self.edge.connects.push(super::PendingConnect {
                        key: key.clone(),
                        origin,
                    });
                }
                PullAction::OpenStream => {
                    if !self.open_pulled_stream(key, now) {
                        if let Some(entry) = self.edge.pulls.get_mut(key) {
                            entry.pull.abandon(actions);
                        }
                    }
                }
                PullAction::Ready(cores) => {
                    self.tell_cores(cores, key, |key| EdgeMsg::Ready { key })
                }
                PullAction::NotFound(cores) => {
                    self.edge.remember_missing(key, now);
                    self.tell_cores(cores, key, |key| EdgeMsg::NotFound { key });
                }
                PullAction::Unavailable(cores) => {
                    self.tell_cores(cores, key, |key| EdgeMsg::Unavailable { key })
                }
                PullAction::UpstreamLost => self.pulled_stream_lost(key, now),
                PullAction::CloseUpstream => {
                    if let Some((slot, _)) =
                        self.edge.pulls.get_mut(key).and_then(|e| e.conn.take())
                    {
                        self.conns.close_later(slot, CloseReason::StreamEnded);
                    }
                }
                PullAction::Finish => self.end_pulled_stream(key),
            }
        }
        if let Some(entry) = self.edge.remove_finished(key) {
            if let Some((slot, _)) = entry.conn {
                self.conns.close_later(slot, CloseReason::StreamEnded);
            }
            tracing::info!(core = self.core, %key, "origin pull closed");
        }
    }

    fn tell_cores(&mut self, cores: CoreSet, key: &StreamKey, msg: impl Fn(StreamKey) -> EdgeMsg) {
        for core in cores.iter() {
            self.send_edge(core, msg(key.clone()));
        }
    }

    /// Claims `key` and opens its stream, or resumes it after an upstream loss.
    /// False if the key belongs to someone else now (a local publisher).
    fn open_pulled_stream(&mut self, key: &StreamKey, now: u64) -> bool {
        let granted = match self
            .shared
            .directory
            .claim(key, self.core, PublishPolicy::default())
        {
            Ok(granted) => granted,
            Err(e) => {
                tracing::info!(core = self.core, %key, error = %e, "pulled stream's key is taken; dropping the pull");
                return false;
            }
        };
        let claim = granted.claim;
        let resumed = match granted.previous {
            Some(prev) if prev.stream_id == claim.stream_id => {
                // The pull asked for the origin's timeline: follow it again.
                self.shard
                    .resume_following(claim.stream_id, claim.generation)
                    .is_ok()
            }
            Some(prev) => {
                // A stream of this key in grace on another core gives way.
                let kick = CoreMsg::Kick {
                    stream_id: prev.stream_id,
                    generation: prev.generation,
                };
                if prev.owner_core == self.core {
                    self.on_stream_msg(kick);
                } else {
                    self.mesh
                        .send(&self.metrics, prev.owner_core, MeshMsg::Stream(kick));
                }
                false
            }
            None => false,
        };
        if !resumed {
            let role = Role::Owner {
                generation: claim.generation,
            };
            if let Err(e) = self
                .shard
                .open_stream(key.clone(), claim.stream_id, role, now)
            {
                tracing::warn!(core = self.core, %key, error = %e, "cannot open pulled stream");
                self.shared.directory.release(key, &claim);
                return false;
            }
            self.metrics.streams.set(self.shard.stream_count() as i64);
        }
        let url = self.edge.origin_url(key);
        if let Some(entry) = self.edge.pulls.get_mut(key) {
            entry.stream = Some((claim.stream_id, claim));
        }
        self.report.origin_started(claim.stream_id, url);
        tracing::info!(core = self.core, %key, stream_id = %claim.stream_id, resumed, "pulling from origin");
        true
    }

    /// The upstream broke: the stream waits (viewers stay) for the next one.
    fn pulled_stream_lost(&mut self, key: &StreamKey, now: u64) {
        let Some((stream_id, claim)) = self.edge.pulls.get(key).and_then(|e| e.stream) else {
            return;
        };
        tracing::info!(core = self.core, %key, "origin pull lost; viewers wait for a reconnect");
        self.shared.directory.publisher_left(key, &claim);
        if let Some(ended) =
            self.shard
                .publisher_left(stream_id, claim.generation, now, LOST_GRACE_MS)
        {
            self.stream_ended(ended);
        }
    }

    /// Ends the pulled stream (if it is still ours): viewers finish, the key is released.
    fn end_pulled_stream(&mut self, key: &StreamKey) {
        let Some((stream_id, claim)) = self.edge.pulls.get_mut(key).and_then(|e| e.stream.take())
        else {
            return;
        };
        self.report.origin_stopped(stream_id);
        if self.shared.directory.lookup(key) != Some((stream_id, self.core)) {
            return;
        }
        match self.shard.end_stream(stream_id) {
            Some(ended) => self.stream_ended(ended),
            None => {
                self.shared.directory.release(key, &claim);
            }
        }
    }

    /// Periodic work of the pull core: retries, start timeouts, idle close, and
    /// dropping pulls whose key was taken over or deleted.
    pub(crate) fn tick_pulls(&mut self, now: u64) {
        if self.edge.pulls.is_empty() {
            return;
        }
        let keys: Vec<StreamKey> = self.edge.pulls.keys().cloned().collect();
        let mut actions = std::mem::take(&mut self.edge.actions);
        for key in keys {
            actions.clear();
            let Some(entry) = self.edge.pulls.get(&key) else {
                continue;
            };
            let stream = entry.stream;
            // HLS players are no shard viewers: their requests keep the pull too.
            let audience = stream
                .and_then(|(id, _)| self.shard.audience(id))
                .unwrap_or(0)
                + stream.map_or(0, |(id, _)| self.hls_audience(id, now));
            let ours = match stream {
                None => true,
                Some((id, _)) => self.shared.directory.lookup(&key) == Some((id, self.core)),
            };
            let Some(entry) = self.edge.pulls.get_mut(&key) else {
                continue;
            };
            if ours {
                entry.pull.handle_timeout(now, audience, &mut actions);
            } else {
                tracing::info!(core = self.core, %key, "pulled stream was taken over or deleted; closing its upstream");
                if let Some((id, _)) = entry.stream.take() {
                    self.report.origin_stopped(id);
                }
                if let Some(entry) = self.edge.pulls.get_mut(&key) {
                    entry.pull.abandon(&mut actions);
                }
            }
            self.apply_pull_actions(&key, &mut actions);
        }
        self.edge.actions = actions;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::server::edge::PendingConnect;

    fn edge_pulling(key: &StreamKey) -> (EdgeCore, Vec<PullAction>) {
        let mut config = Config::default();
        config.edge.origins = vec!["rtmp://127.0.0.1:19350/live".to_owned()];
        let mut edge = EdgeCore::new(&config);
        let mut actions = Vec::new();
        let pull = Pull::new(edge.origins.len(), edge.timing, 0, 0, &mut actions);
        edge.pulls.insert(
            key.clone(),
            PullEntry {
                pull,
                query: None,
                conn: None,
                stream: None,
            },
        );
        (edge, actions)
    }

    #[test]
    fn connects_are_dialled_only_while_their_pull_wants_them() {
        let key = StreamKey::new("live", "x").unwrap();
        let (mut edge, actions) = edge_pulling(&key);
        assert!(actions.contains(&PullAction::Connect { origin: 0 }));
        edge.connects.push(PendingConnect {
            key: key.clone(),
            origin: 0,
        });
        let connects = edge.take_connects(0);
        assert_eq!(connects.len(), 1);
        assert_eq!(
            edge.dial(&connects[0], 0),
            Some(Ok("127.0.0.1:19350".parse().unwrap()))
        );
        // Once it has an upstream, a stale connect is not dialled.
        edge.pulls.get_mut(&key).unwrap().conn = Some((3, 0));
        assert_eq!(edge.dial(&connects[0], 0), None);
        assert!(edge.connects.is_empty());
    }

    #[test]
    fn only_the_current_upstream_closing_fails_the_attempt() {
        let key = StreamKey::new("live", "x").unwrap();
        let (mut edge, _) = edge_pulling(&key);
        edge.pulls.get_mut(&key).unwrap().conn = Some((3, 0));
        assert!(edge.is_upstream(&key, (3, 0)));
        assert!(!edge.upstream_closed(&key, (3, 1)), "an older generation");
        assert!(edge.upstream_closed(&key, (3, 0)));
        assert!(!edge.is_upstream(&key, (3, 0)));
        assert!(edge.remove_finished(&key).is_none(), "a running pull stays");
        assert_eq!(edge.origin_url(&key), "rtmp://127.0.0.1:19350/live");
        let mut actions = Vec::new();
        assert_eq!(
            edge.attempt_failed(&key, false, 10, &mut actions),
            Some(Some(0))
        );
        let other = StreamKey::new("live", "y").unwrap();
        assert_eq!(edge.attempt_failed(&other, false, 10, &mut actions), None);
        assert_eq!(edge.origin_url(&other), "");
        // The only origin failed and no viewer has media yet: the pull gives up.
        assert!(edge.remove_finished(&key).is_some());
        assert!(edge.pulls.is_empty());
    }
}
