//! Push relay (`[[relay.push]] url = "rtmp://…"`): every stream published on
//! this box is also published to each target, e.g. a redundant origin.
//!
//! A relay connection publishes with the protocol core's RTMP
//! [`ClientSession`]; once the target accepts, the connection becomes a viewer
//! of the stream with an RTMP egress on the session's message stream, so it
//! gets the same shared encodings, GOP start and slow-viewer bounds as any
//! viewer. A lost relay reconnects with the edge's backoff (1, 2, 4 … 30 s)
//! for as long as the stream is published here.

use crate::server::tls_conn::TlsConn;
use std::collections::HashMap;

use bytes::BytesMut;
use rand::SeedableRng;
use socket2::SockAddr;

use super::outbound::HANDSHAKE_TIMEOUT_MS;
use super::OriginTarget;
use crate::config::Config;
use crate::edge::backoff::Backoff;
use crate::metrics::{CloseReason, Listener};
use crate::protocol::rtmp::chunk::ChunkLimits;
use crate::protocol::rtmp::session::client::{
    ClientEvent, ClientMode, ClientSession, ClientSessionConfig, ClientTimeouts,
};
use crate::runtime::Reactor;
use crate::server::conn::{Egress, Proto};
use crate::server::connections::Connections;
use crate::server::egress_rtmp::RtmpEgress;
use crate::server::worker::CoreState;
use crate::stream::StreamKey;

/// One relay connection's state.
pub struct RelayConn {
    /// The stream it forwards.
    pub key: StreamKey,
    session: ClientSession,
    addr: Box<SockAddr>,
    out: BytesMut,
    events: Vec<ClientEvent>,
}

impl RelayConn {
    /// The target's address.
    pub(crate) fn addr(&self) -> &SockAddr {
        &self.addr
    }

    /// The opening bytes (C0+C1), connected at `now_ms`; `None` if they cannot be written.
    pub(crate) fn start(&mut self, now_ms: u64) -> Option<BytesMut> {
        self.session.start_at(now_ms, &mut self.out).ok()?;
        Some(self.out.split())
    }

    /// The session's next deadline: publishing must start within
    /// [`HANDSHAKE_TIMEOUT_MS`] of the connect; then none (it is a viewer).
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        self.session.poll_timeout()
    }

    /// Checks the session's deadline at `now_ms`; why it must close, if it passed.
    pub(crate) fn handle_timeout(&mut self, now_ms: u64) -> Result<(), String> {
        self.session
            .handle_timeout(now_ms)
            .map_err(|e| e.to_string())
    }
}

/// A relay of one stream to one target.
#[derive(Debug)]
pub struct RelayEntry {
    conn: Option<(u32, u32)>,
    backoff: Backoff,
    /// When to (re)connect; `None` while connected or connecting.
    retry_at_ms: Option<u64>,
}

/// This core's relays.
pub struct Relays {
    targets: Vec<OriginTarget>,
    /// (stream, target index) → relay.
    entries: HashMap<(StreamKey, usize), RelayEntry>,
}

impl Relays {
    /// The configured targets (inactive when there are none).
    pub fn new(config: &Config) -> Relays {
        Relays {
            targets: config
                .relay
                .push
                .iter()
                .map(|p| OriginTarget::new(&p.url))
                .collect(),
            entries: HashMap::new(),
        }
    }

    /// A publisher started (or resumed) `key` at `now_ms`: relay it to every
    /// target, connecting at once.
    pub(crate) fn start(&mut self, key: &StreamKey, now_ms: u64) {
        for target in 0..self.targets.len() {
            self.entries
                .entry((key.clone(), target))
                .or_insert(RelayEntry {
                    conn: None,
                    backoff: Backoff::default(),
                    retry_at_ms: Some(now_ms),
                });
        }
    }

    /// The publisher of `key` left: stop relaying it (its connections close).
    pub(crate) fn stop(&mut self, key: &StreamKey, conns: &mut Connections) {
        for target in 0..self.targets.len() {
            if let Some(entry) = self.entries.remove(&(key.clone(), target)) {
                if let Some((slot, _)) = entry.conn {
                    conns.close_later(slot, CloseReason::StreamEnded);
                }
            }
        }
    }

    /// The (stream, target) pairs to connect at `now_ms`.
    fn due(&self, now_ms: u64) -> Vec<(StreamKey, usize)> {
        self.entries
            .iter()
            .filter(|(_, e)| e.conn.is_none() && e.retry_at_ms.is_some_and(|t| t <= now_ms))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// `key`'s relay to `target` is connecting on `conn` (slot, generation).
    fn connecting(&mut self, key: StreamKey, target: usize, conn: (u32, u32)) {
        if let Some(entry) = self.entries.get_mut(&(key, target)) {
            entry.conn = Some(conn);
            entry.retry_at_ms = None;
        }
    }

    /// The relay on `conn` is publishing: its next loss backs off from the start.
    fn publishing(&mut self, conn: (u32, u32)) {
        for entry in self.entries.values_mut() {
            if entry.conn == Some(conn) {
                entry.backoff.reset();
            }
        }
    }

    /// Which target of `key` the relay on `conn` serves, if it is still relayed.
    fn target_of(&self, key: &StreamKey, conn: (u32, u32)) -> Option<usize> {
        (0..self.targets.len()).find(|&t| {
            self.entries
                .get(&(key.clone(), t))
                .is_some_and(|e| e.conn == Some(conn))
        })
    }

    /// `key`'s relay to `target` failed at `now_ms`: retry after its backoff.
    /// The delay chosen, if the relay is still wanted.
    fn failed(&mut self, key: &StreamKey, target: usize, now_ms: u64) -> Option<u64> {
        let entry = self.entries.get_mut(&(key.clone(), target))?;
        entry.conn = None;
        let delay = entry.backoff.next_delay_ms();
        entry.retry_at_ms = Some(now_ms + delay);
        Some(delay)
    }
}

impl CoreState {
    /// Opens the relay connections that are due.
    pub(crate) fn submit_relay_connects(&mut self, r: &mut Reactor) {
        if self.relays.entries.is_empty() {
            return;
        }
        let now = self.now_ms();
        for (key, target) in self.relays.due(now) {
            match self.open_relay_conn(r, &key, target) {
                Ok(conn) => self.relays.connecting(key, target, conn),
                Err(reason) => {
                    tracing::info!(core = self.core, %key, target, reason, "relay connect failed");
                    self.relay_failed(&key, target, now);
                }
            }
        }
    }

    fn open_relay_conn(
        &mut self,
        r: &mut Reactor,
        key: &StreamKey,
        index: usize,
    ) -> Result<(u32, u32), &'static str> {
        let now = self.now_ms();
        let target = self.relays.targets.get_mut(index).ok_or("no such target")?;
        let origin = target.origin.clone().ok_or("unusable relay URL")?;
        let addr = target.address(now)?;
        let app = if origin.path.is_empty() {
            key.app().to_owned()
        } else {
            origin.path.clone()
        };
        let scheme = if origin.tls { "rtmps" } else { "rtmp" };
        let tc_url = format!("{scheme}://{}/{}", origin.authority(), app);
        let tls = match (origin.tls, self.shared.client_tls.as_ref()) {
            (false, _) => None,
            (true, None) => return Err("no TLS client configuration"),
            (true, Some(client)) => {
                let limits = self.shared.tls_limits;
                match TlsConn::client(client.rtmps(), &origin.host, limits, now) {
                    Ok(tls) => Some(Box::new(tls)),
                    Err(why) => {
                        tracing::warn!(core = self.core, url = %origin.url, %why, "cannot start TLS to relay target");
                        return Err("cannot start TLS to relay target");
                    }
                }
            }
        };
        let mut config = ClientSessionConfig::new(&app, &tc_url, key.name(), ClientMode::Publish);
        config.chunk_limits = ChunkLimits {
            max_chunk_size: self.shared.config.limits.max_chunk_size,
            max_message_len: self.shared.config.limits.max_message_size,
            ..ChunkLimits::default()
        };
        config.out_chunk_size = self.shared.config.limits.out_chunk_size;
        config.timeouts = ClientTimeouts {
            start_ms: Some(HANDSHAKE_TIMEOUT_MS),
            idle_ms: None,
        };
        let mut rng = rand::rngs::SmallRng::from_entropy();
        let rc = RelayConn {
            key: key.clone(),
            session: ClientSession::new(config, &mut rng, now),
            addr: Box::new(SockAddr::from(addr)),
            out: BytesMut::new(),
            events: Vec::new(),
        };
        tracing::debug!(core = self.core, %key, url = %origin.url, "relaying");
        let conn = self.open_outbound(r, addr, Listener::Rtmp, Proto::Relay(Box::new(rc)))?;
        if let Some(c) = self.conns.get_mut(conn.0, conn.1) {
            c.tls = tls;
        }
        Ok(conn)
    }

    /// Bytes from a relay target.
    pub(crate) fn on_relay_data(&mut self, slot: u32, data: &[u8]) {
        let now = self.now_ms();
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let Proto::Relay(rc) = &mut conn.proto else {
            return;
        };
        let result = rc
            .session
            .handle_input(data, now, &mut rc.out, &mut rc.events);
        let events = std::mem::take(&mut rc.events);
        let out = rc.out.split();
        let key = rc.key.clone();
        if !out.is_empty() {
            if conn.outbox.queue_control(&out).is_err() {
                self.conns.close_later(slot, CloseReason::ProtocolError);
                return;
            }
            self.sends.mark_ready(&mut self.conns, slot);
        }
        if let Err(e) = result {
            tracing::info!(core = self.core, %key, error = %e, "relay target broke the protocol");
            self.conns.close_later(slot, CloseReason::ProtocolError);
            return;
        }
        for event in events {
            match event {
                ClientEvent::PublishStarted => self.relay_started(slot, &key),
                ClientEvent::StatusError { code, description } => {
                    tracing::info!(core = self.core, %key, code, description, "relay target refused");
                    self.conns.close_later(slot, CloseReason::ProtocolError);
                }
                _ => {}
            }
        }
    }

    /// The target accepted the publish: the connection becomes a viewer of the stream.
    fn relay_started(&mut self, slot: u32, key: &StreamKey) {
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let Proto::Relay(rc) = &conn.proto else {
            return;
        };
        let Some(stream_id) = rc.session.active_stream_id() else {
            return;
        };
        let egress = RtmpEgress::new(stream_id, rc.session.out_chunk_size(), rc.session.csids());
        let generation = conn.generation;
        match self.start_viewer(slot, key, Egress::Rtmp(egress)) {
            Ok(()) => {
                tracing::info!(core = self.core, %key, "relay publishing");
                self.relays.publishing((slot, generation));
            }
            Err(e) => {
                tracing::info!(core = self.core, %key, error = %e, "relay cannot follow the stream");
                self.conns.close_later(slot, CloseReason::StreamEnded);
            }
        }
    }

    /// A relay connection is closing: if its stream is still relayed, retry later.
    pub(crate) fn relay_conn_closed(&mut self, slot: u32) {
        let now = self.now_ms();
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let generation = conn.generation;
        let Proto::Relay(rc) = &conn.proto else {
            return;
        };
        let key = rc.key.clone();
        if let Some(target) = self.relays.target_of(&key, (slot, generation)) {
            self.relay_failed(&key, target, now);
        }
    }

    fn relay_failed(&mut self, key: &StreamKey, target: usize, now: u64) {
        if let Some(delay) = self.relays.failed(key, target, now) {
            tracing::info!(core = self.core, %key, target, delay_ms = delay, "relay lost; retrying");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_relay_push_entries() {
        let config = Config::from_toml(
            "[[relay.push]]\nurl = \"rtmp://127.0.0.1:1936/live\"\n[[relay.push]]\nurl = \"rtmp://b\"\n",
        )
        .unwrap();
        let relays = Relays::new(&config);
        assert_eq!(relays.targets.len(), 2);
        let mut relays = relays;
        assert_eq!(
            relays.targets[0].address(0),
            Ok("127.0.0.1:1936".parse().unwrap())
        );
        assert_eq!(
            relays.targets[1].origin.as_ref().map(|o| o.port),
            Some(1935)
        );
        let err = Config::from_toml("[[relay.push]]\nurl = \"http://x\"\n").unwrap_err();
        assert!(err.to_string().contains("relay.push.url"), "{err}");
        assert!(Relays::new(&Config::default()).targets.is_empty());
    }

    #[test]
    fn relays_connect_back_off_and_close_with_their_stream() {
        let config = Config::from_toml(
            "[[relay.push]]\nurl = \"rtmp://127.0.0.1:1936/live\"\n[[relay.push]]\nurl = \"rtmp://b\"\n",
        )
        .unwrap();
        let mut relays = Relays::new(&config);
        let mut conns = Connections::new(0, 8);
        let key = StreamKey::new("live", "x").unwrap();
        relays.start(&key, 100);
        assert!(relays.due(99).is_empty());
        let mut due = relays.due(100);
        due.sort_by_key(|(_, t)| *t);
        assert_eq!(due, vec![(key.clone(), 0), (key.clone(), 1)]);

        let slot = conns.insert(crate::server::connections::test_conn);
        relays.connecting(key.clone(), 0, (slot, 0));
        assert_eq!(relays.due(100), vec![(key.clone(), 1)]);
        assert_eq!(relays.target_of(&key, (slot, 0)), Some(0));
        assert_eq!(relays.target_of(&key, (slot, 1)), None);

        // A loss retries after the backoff; publishing resets it.
        let first = relays.failed(&key, 0, 1_000).unwrap();
        assert!(relays.due(1_000 + first - 1).iter().all(|(_, t)| *t != 0));
        assert!(relays.due(1_000 + first).contains(&(key.clone(), 0)));

        relays.connecting(key.clone(), 0, (slot, 0));
        relays.stop(&key, &mut conns);
        assert_eq!(
            conns.next_to_close(),
            Some((slot, CloseReason::StreamEnded))
        );
        assert!(relays.due(u64::MAX).is_empty());
        assert_eq!(relays.failed(&key, 0, 0), None);
    }
}
