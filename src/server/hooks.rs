//! HTTP hooks on a core's reactor: the core's [`HookCore`] (sans-IO: what to
//! ask, coalescing, cache, bounds, retries), the hook servers' addresses, and
//! the sessions held while their hook is asked. Each call is an outbound
//! connection ([`super::hook_conn`]) opened on this core's own reactor, so a
//! slow or dead hook server holds only the sessions that wait for it.
//!
//! A held session is resumed or refused exactly as a signed-URL check would
//! have left it ([`Resume`]). Another kind of session (an HLS viewer) asks
//! through [`CoreState::ask_hook`] with a `Resume` variant of its own.

use std::net::{SocketAddr, ToSocketAddrs};

use rand::Rng;

use super::conn::Proto;
use super::hook_conn::HookConn;
use super::worker::CoreState;
use crate::auth::hooks::core::HookSettings;
use crate::auth::hooks::{
    Asked, CallId, CallOutcome, Finished, HookAction, HookCore, HookResult, HookSubject,
    HooksConfig,
};
use crate::auth::{Action, Refusal};
use crate::config::ConfigError;
use crate::metrics::{HookActionLabel, HookResultLabel, Listener};
use crate::protocol::http::response::ResponseContext;
use crate::runtime::Reactor;
use crate::stream::StreamKey;

/// The `[hooks]` every core shares: settings and resolved addresses.
#[derive(Clone, Debug)]
pub struct HookTargets {
    settings: HookSettings,
    addrs: [Option<SocketAddr>; 4],
}

impl HookTargets {
    /// Parses `[hooks]` and resolves each URL's host once (at start, before
    /// any core runs: never on a core). `None` when no hook URL is set.
    pub fn resolve(config: &HooksConfig) -> Result<Option<HookTargets>, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            field: "hooks",
            reason,
        };
        let urls = config.urls().map_err(|e| invalid(e.to_string()))?;
        if urls.iter().all(Option::is_none) {
            return Ok(None);
        }
        let mut addrs = [None; 4];
        for (addr, (url, action)) in addrs.iter_mut().zip(urls.iter().zip(HookAction::ALL)) {
            let Some(url) = url else { continue };
            *addr = (url.host.as_str(), url.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next());
            if addr.is_none() {
                return Err(invalid(format!(
                    "cannot resolve the host of hooks.{} ({})",
                    action.as_str(),
                    url.host
                )));
            }
        }
        let service_id = format!("{:08x}", rand::thread_rng().gen::<u32>());
        let settings = HookSettings::new(config, service_id).map_err(|e| invalid(e.to_string()))?;
        Ok(Some(HookTargets { settings, addrs }))
    }
}

/// How a held session continues once its hook answered.
#[derive(Debug)]
pub enum Resume {
    /// An RTMP `publish`, not yet accepted.
    RtmpPublish {
        /// Its message stream.
        msg_stream: u32,
        /// The app.
        app: String,
        /// The stream name.
        name: String,
    },
    /// An RTMP `play`, not yet accepted.
    RtmpPlay {
        /// Its message stream.
        msg_stream: u32,
        /// The app.
        app: String,
        /// The stream name.
        name: String,
        /// Its query (passed on to an edge pull).
        query: Option<String>,
    },
    /// An HTTP-FLV `GET`, nothing answered yet.
    Flv {
        /// How to answer.
        ctx: ResponseContext,
        /// The stream.
        key: StreamKey,
        /// Its query (passed on to an edge pull).
        query: Option<String>,
    },
    /// An HLS / DASH entry request (multivariant, TS playlist or MPD): its
    /// connection is parked, so requests pipelined behind it wait too.
    Hls(Box<super::hls::HlsRequest>),
}

/// A session held for its hook.
#[derive(Debug)]
pub struct HookWaiter {
    slot: u32,
    generation: u32,
    resume: Resume,
}

/// This core's hooks.
pub struct Hooks {
    core: Option<HookCore<HookWaiter>>,
    addrs: [Option<SocketAddr>; 4],
    /// Each call's connection, so a call the core timed out is closed.
    conns: std::collections::HashMap<u64, (u32, u32)>,
    finished: Vec<Finished<HookWaiter>>,
}

impl Hooks {
    /// Hooks from the shared targets (`None`: no hook configured).
    pub fn new(targets: Option<&HookTargets>) -> Hooks {
        Hooks {
            core: targets.map(|t| HookCore::new(t.settings.clone())),
            addrs: targets.map(|t| t.addrs).unwrap_or_default(),
            conns: std::collections::HashMap::new(),
            finished: Vec::new(),
        }
    }

    /// Whether `action`'s URL is set.
    pub fn configured(&self, action: HookAction) -> bool {
        self.core.as_ref().is_some_and(|c| c.url(action).is_some())
    }
}

fn action_label(a: HookAction) -> HookActionLabel {
    match a {
        HookAction::Publish => HookActionLabel::OnPublish,
        HookAction::Unpublish => HookActionLabel::OnUnpublish,
        HookAction::Play => HookActionLabel::OnPlay,
        HookAction::Stop => HookActionLabel::OnStop,
    }
}

fn result_label(r: HookResult) -> HookResultLabel {
    match r {
        HookResult::Allow => HookResultLabel::Allow,
        HookResult::Deny => HookResultLabel::Deny,
        HookResult::Error => HookResultLabel::Error,
        HookResult::Timeout => HookResultLabel::Timeout,
        HookResult::Coalesced => HookResultLabel::Coalesced,
        HookResult::Cached => HookResultLabel::Cached,
        HookResult::Overload => HookResultLabel::Overload,
    }
}

/// The refusal of a session whose hook did not allow it.
fn refusal(result: HookResult) -> Refusal {
    if result == HookResult::Deny {
        Refusal::HookDenied
    } else {
        Refusal::HookError
    }
}

/// What [`CoreState::ask_hook`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum HookGate {
    /// Continue now.
    Allowed,
    /// Held: the session is resumed or refused when the answer comes.
    Held,
    /// Refuse now.
    Refused(Refusal),
}

impl CoreState {
    /// What the hook server is told about the session on `slot`.
    pub(super) fn hook_subject(
        &mut self,
        slot: u32,
        app: &str,
        stream: &str,
        query: Option<&str>,
    ) -> HookSubject {
        let core = self.core;
        let http = self.shared.config.server.http_listen;
        let Some(conn) = self.conns.at(slot) else {
            return HookSubject::default();
        };
        let (tc_url, page_url) = match &conn.proto {
            Proto::Rtmp(rc) => rc.connect_urls(),
            _ => (format!("http://{http}/{app}"), String::new()),
        };
        HookSubject {
            client_id: format!("{core}-{slot}-{}", conn.generation),
            ip: conn.peer.map(|p| p.ip().to_string()).unwrap_or_default(),
            app: app.to_owned(),
            stream: stream.to_owned(),
            param: query.map(|q| format!("?{q}")).unwrap_or_default(),
            tc_url,
            page_url,
        }
    }

    /// Asks `action`'s gating hook about `who` for the session on `slot`,
    /// which `resume` continues if it has to wait. Counted here; a refusal is
    /// not (the caller counts it with the other `[auth]` refusals).
    pub fn ask_hook(
        &mut self,
        slot: u32,
        action: HookAction,
        who: &HookSubject,
        resume: Resume,
    ) -> HookGate {
        let now = self.now_ms();
        let generation = self.conns.at(slot).map_or(0, |c| c.generation);
        let waiter = HookWaiter {
            slot,
            generation,
            resume,
        };
        let Some(core) = self.hooks.core.as_mut() else {
            // Policy needs a hook the server could not set up: fail closed.
            self.metrics
                .count_hook(action_label(action), HookResultLabel::Error);
            return HookGate::Refused(Refusal::HookError);
        };
        match core.ask(action, who, waiter, now) {
            Asked::Now { allow, result, .. } => {
                self.metrics
                    .count_hook(action_label(action), result_label(result));
                if allow {
                    HookGate::Allowed
                } else {
                    HookGate::Refused(refusal(result))
                }
            }
            Asked::Waiting { coalesced } => {
                if coalesced {
                    self.metrics
                        .count_hook(action_label(action), HookResultLabel::Coalesced);
                }
                HookGate::Held
            }
        }
    }

    /// Remembers, when `on_stop` is configured, what to tell it when the
    /// viewer on `slot` (just allowed to play) stops.
    pub(super) fn arm_stop_hook(
        &mut self,
        slot: u32,
        app: &str,
        stream: &str,
        query: Option<&str>,
    ) {
        if !self.hooks.configured(HookAction::Stop) {
            return;
        }
        let who = self.hook_subject(slot, app, stream, query);
        if let Some(conn) = self.conns.at(slot) {
            conn.hook_stop = Some(Box::new(who));
        }
    }

    /// Tells `action`'s notification hook (if configured) about `who`.
    pub(super) fn notify_hook(&mut self, action: HookAction, who: &HookSubject) {
        let now = self.now_ms();
        let Some(core) = self.hooks.core.as_mut() else {
            return;
        };
        if core.url(action).is_some() && !core.notify(action, who, now) {
            self.metrics
                .count_hook(action_label(action), HookResultLabel::Overload);
        }
    }

    /// Opens a connection for every call the hook core wants sent.
    pub(crate) fn submit_hook_calls(&mut self, r: &mut Reactor) {
        let now = self.now_ms();
        while let Some(out) = self.hooks.core.as_mut().and_then(HookCore::take_outgoing) {
            let opened = match self.hooks.addrs.get(out.action.index()).copied().flatten() {
                Some(addr) => {
                    let hc = HookConn::new(out.call, addr, out.request, out.deadline_ms);
                    self.open_outbound(r, addr, Listener::Http, Proto::Hook(Box::new(hc)))
                }
                None => Err("no address"),
            };
            match opened {
                Ok(conn) => {
                    self.hooks.conns.insert(out.call.0, conn);
                }
                Err(why) => {
                    tracing::info!(
                        core = self.core,
                        action = out.action.as_str(),
                        why,
                        "cannot open a hook connection"
                    );
                    self.hook_call_ended(out.call, CallOutcome::Error, now);
                }
            }
        }
    }

    /// Times out overdue calls (closing their connections) and starts due
    /// notification retries; from the core's periodic sweep.
    pub(super) fn sweep_hooks(&mut self, now_ms: u64) {
        let Some(core) = self.hooks.core.as_mut() else {
            return;
        };
        let mut finished = std::mem::take(&mut self.hooks.finished);
        core.handle_timeout(now_ms, &mut finished);
        for done in finished.drain(..) {
            if let Some((slot, generation)) = self.hooks.conns.remove(&done.call.0) {
                if self.conns.get_mut(slot, generation).is_some() {
                    if let Some(Proto::Hook(hc)) = self.conns.at(slot).map(|c| &mut c.proto) {
                        hc.mark_reported();
                    }
                    self.conns
                        .close_later(slot, crate::metrics::CloseReason::Timeout);
                }
            }
            self.hook_finished(done);
        }
        self.hooks.finished = finished;
    }

    /// Call `call` ended: count it, then resume or refuse its sessions.
    pub(crate) fn hook_call_ended(&mut self, call: CallId, outcome: CallOutcome, now_ms: u64) {
        self.hooks.conns.remove(&call.0);
        let Some(done) = self
            .hooks
            .core
            .as_mut()
            .and_then(|c| c.finish(call, outcome, now_ms))
        else {
            return;
        };
        self.hook_finished(done);
    }

    fn hook_finished(&mut self, done: Finished<HookWaiter>) {
        let action = done.action;
        self.metrics
            .count_hook(action_label(action), result_label(done.result));
        self.metrics
            .hook_latency
            .observe_ns(done.latency_ms.saturating_mul(1_000_000));
        tracing::debug!(
            core = self.core,
            action = action.as_str(),
            result = done.result.as_str(),
            waiters = done.waiters.len(),
            latency_ms = done.latency_ms,
            retrying = done.retrying,
            "hook call ended"
        );
        for w in done.waiters {
            let alive = self
                .conns
                .get_mut(w.slot, w.generation)
                .is_some_and(|c| !c.closing);
            if !alive {
                continue;
            }
            if done.allow {
                self.resume_after_hook(w.slot, w.resume);
            } else {
                self.refuse_after_hook(w.slot, w.resume, refusal(done.result));
            }
        }
    }

    fn resume_after_hook(&mut self, slot: u32, resume: Resume) {
        match resume {
            Resume::RtmpPublish {
                msg_stream,
                app,
                name,
            } => {
                self.publish_authorized(slot, msg_stream, &app, &name);
                // Input that arrived while the publish was held is processed now.
                self.on_rtmp_data(slot, &[]);
            }
            Resume::RtmpPlay {
                msg_stream,
                app,
                name,
                query,
            } => {
                self.play_authorized(slot, msg_stream, &app, &name, query);
                self.on_rtmp_data(slot, &[]);
            }
            Resume::Flv { ctx, key, query } => {
                self.flv_authorized(slot, ctx, &key, query);
            }
            Resume::Hls(req) => self.hls_authorized(slot, *req),
        }
    }

    fn refuse_after_hook(&mut self, slot: u32, resume: Resume, why: Refusal) {
        let (action, app, stream) = match &resume {
            Resume::RtmpPublish { app, name, .. } => (Action::Publish, app.as_str(), name.as_str()),
            Resume::RtmpPlay { app, name, .. } => (Action::Play, app.as_str(), name.as_str()),
            Resume::Flv { key, .. } => (Action::Play, key.app(), key.name()),
            Resume::Hls(req) => (Action::Play, req.key.app(), req.key.name()),
        };
        self.refused(slot, action, app, stream, why);
        match resume {
            Resume::RtmpPublish { msg_stream, .. } => {
                self.refuse_rtmp_publish_unauthorized(slot, msg_stream, why)
            }
            Resume::RtmpPlay { msg_stream, .. } => {
                self.refuse_rtmp_play_unauthorized(slot, msg_stream, why)
            }
            Resume::Flv { ctx, .. } => self.refuse_flv_unauthorized(slot, ctx),
            Resume::Hls(req) => {
                if self.hls_error(slot, req.ctx, 403) {
                    self.process_http(slot);
                }
            }
        }
    }
}
