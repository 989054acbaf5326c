//! Closed sets of label values. Every label is an enum so that a typo cannot create
//! a new time series, and so that per-label counters are fixed arrays indexed by
//! the enum: no map lookup, no allocation on the hot path.

use super::local::{LocalCounter, LocalGauge};

/// A closed set of values for one Prometheus label.
pub trait LabelValue: Copy + 'static {
    /// The label's name (`protocol`, `reason`, ...).
    const LABEL: &'static str;
    /// Every value, in index order.
    const ALL: &'static [Self];
    /// Position of this value in [`LabelValue::ALL`].
    fn index(self) -> usize;
    /// The value as it appears in the exposition text.
    fn as_str(self) -> &'static str;
}

macro_rules! label_enum {
    (
        $(#[$meta:meta])*
        $name:ident, label = $label:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Number of values.
            pub const COUNT: usize = <Self as LabelValue>::ALL.len();
        }

        impl LabelValue for $name {
            const LABEL: &'static str = $label;
            const ALL: &'static [Self] = &[$($name::$variant),+];
            #[inline]
            fn index(self) -> usize {
                self as usize
            }
            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

label_enum! {
    /// Egress protocol a viewer watches through.
    Protocol, label = "protocol" {
        /// HTTP-FLV.
        HttpFlv => "http_flv",
        /// RTMP play.
        Rtmp => "rtmp",
        /// HLS.
        Hls => "hls",
        /// WebSocket-FLV (`ws://…/{app}/{stream}.flv`).
        WsFlv => "ws_flv",
    }
}

label_enum! {
    /// What an HLS/DASH request asked for.
    HlsKind, label = "kind" {
        /// `{stream}.m3u8`.
        Multivariant => "multivariant",
        /// A media playlist without `_HLS_msn`.
        MediaPlaylist => "media_playlist",
        /// A media playlist with `_HLS_msn` (blocking reload).
        BlockingReload => "blocking_reload",
        /// An LL-HLS part.
        Part => "part",
        /// A whole fMP4 segment (also LL-DASH's, streamed or not).
        Segment => "segment",
        /// An init segment.
        Init => "init",
        /// The DASH manifest.
        Mpd => "mpd",
        /// `{stream}-ts.m3u8`.
        TsPlaylist => "ts_playlist",
        /// An MPEG-TS segment.
        TsSegment => "ts_segment",
    }
}

label_enum! {
    /// The error status of an HLS/DASH request.
    HlsStatus, label = "status" {
        /// Bad path or directive.
        BadRequest => "400",
        /// Play token refused.
        Forbidden => "403",
        /// Not live, evicted or never made.
        NotFound => "404",
        /// Not GET, HEAD or OPTIONS.
        MethodNotAllowed => "405",
        /// Blocked too long, too many waiters, nothing packaged yet.
        Unavailable => "503",
        /// Any other status.
        Other => "other",
    }
}

label_enum! {
    /// Which listener a connection arrived on.
    Listener, label = "listener" {
        /// The RTMP port (publishers and RTMP viewers).
        Rtmp => "rtmp",
        /// The HTTP port (HTTP-FLV, HLS, API on the shared port).
        Http => "http",
        /// The separate admin address (API, metrics).
        Admin => "admin",
        /// The HTTPS port: the HTTP port's routes over TLS.
        Https => "https",
        /// The RTMPS port: RTMP over TLS.
        Rtmps => "rtmps",
    }
}

impl Listener {
    /// Whether connections on this listener speak TLS first.
    pub fn is_tls(self) -> bool {
        matches!(self, Listener::Https | Listener::Rtmps)
    }

    /// The plaintext listener whose protocol and routes a TLS listener serves
    /// (HTTPS → HTTP, RTMPS → RTMP); the others are themselves.
    pub fn plain(self) -> Listener {
        match self {
            Listener::Https => Listener::Http,
            Listener::Rtmps => Listener::Rtmp,
            other => other,
        }
    }
}

label_enum! {
    /// How a TLS handshake on an HTTPS or RTMPS listener ended.
    TlsHandshakeResult, label = "result" {
        /// Completed.
        Ok => "ok",
        /// The client sent bytes rustls refused (garbage, no shared cipher...).
        Failed => "failed",
        /// The client spoke plaintext HTTP or RTMP to the TLS port.
        Plaintext => "plaintext",
        /// Not complete within `limits.handshake_timeout`.
        Timeout => "timeout",
    }
}

label_enum! {
    /// Why a connection or a request to publish/play was turned away.
    RefuseReason, label = "reason" {
        /// The server-wide connection limit was reached.
        ConnectionLimit => "connection_limit",
        /// The limit on concurrent streams was reached.
        StreamLimit => "stream_limit",
        /// The per-stream viewer limit was reached.
        ViewerLimit => "viewer_limit",
        /// Publish or play authorisation failed.
        Unauthorized => "unauthorized",
        /// Someone is already publishing this stream key.
        DuplicatePublish => "duplicate_publish",
        /// A viewer asked for a stream that does not exist (and no origin has it).
        StreamNotFound => "stream_not_found",
        /// A held viewer's stream could not be pulled: every origin failed.
        OriginUnavailable => "origin_unavailable",
        /// A local publisher on an edge with origins and `edge.allow_publish = false`.
        PublishDisabled => "publish_disabled",
        /// A WebSocket upgrade of an FLV URL that was not valid (answered 400 or 426).
        BadWebSocketHandshake => "bad_websocket_handshake",
        /// A TLS ClientHello on a plaintext HTTP or RTMP port.
        TlsOnPlainPort => "tls_on_plain_port",
    }
}

label_enum! {
    /// Why a WebSocket-FLV connection was closed with a close frame.
    WsCloseLabel, label = "reason" {
        /// The client sent a close frame (answered with a close).
        ClientClose => "client_close",
        /// The stream ended (close 1000).
        StreamEnded => "stream_ended",
        /// The client broke the protocol: unmasked or fragmented control frame,
        /// reserved bits or opcode, bad close payload (close 1002).
        ProtocolError => "protocol_error",
        /// A client message over the size limit (close 1009).
        MessageTooBig => "message_too_big",
        /// A close reason that is not UTF-8 (close 1007).
        InvalidPayload => "invalid_payload",
    }
}

label_enum! {
    /// Why a publish or play was refused by `[auth]` (signed URLs).
    AuthRefusal, label = "reason" {
        /// No token in the URL.
        Missing => "missing",
        /// A token field missing or unreadable.
        Malformed => "malformed",
        /// The token's expiry (plus clock skew) passed.
        Expired => "expired",
        /// The signature does not match.
        BadSignature => "bad_signature",
        /// The token names an unknown key id (or no key of its scheme exists).
        UnknownKey => "unknown_key",
        /// The token is bound to another client address.
        IpMismatch => "ip_mismatch",
        /// The `[hooks]` server answered, and not with an allow.
        HookDenied => "hook_denied",
        /// The `[hooks]` server could not be asked and the action fails closed.
        HookError => "hook_error",
    }
}

label_enum! {
    /// Which HTTP hook a call was.
    HookActionLabel, label = "action" {
        /// `on_publish`.
        OnPublish => "on_publish",
        /// `on_unpublish`.
        OnUnpublish => "on_unpublish",
        /// `on_play`.
        OnPlay => "on_play",
        /// `on_stop`.
        OnStop => "on_stop",
    }
}

label_enum! {
    /// How a hook question was answered.
    HookResultLabel, label = "result" {
        /// The hook server allowed.
        Allow => "allow",
        /// The hook server answered, not with an allow.
        Deny => "deny",
        /// No usable answer (refused, reset, broken or oversize response).
        Error => "error",
        /// No answer within the timeout.
        Timeout => "timeout",
        /// Joined an identical call in flight (no request of its own).
        Coalesced => "coalesced",
        /// Answered from a cached allow (no request).
        Cached => "cached",
        /// Too many calls in flight on the core, or a full notification queue: not asked.
        Overload => "overload",
    }
}

label_enum! {
    /// Why an established connection was closed.
    CloseReason, label = "reason" {
        /// The peer closed or reset the connection.
        PeerClosed => "peer_closed",
        /// Handshake, idle or send timeout.
        Timeout => "timeout",
        /// The peer sent bytes that broke a protocol rule or limit.
        ProtocolError => "protocol_error",
        /// The viewer fell past the hard lag bound.
        SlowViewer => "slow_viewer",
        /// An operator kicked it through the API.
        Kicked => "kicked",
        /// The stream it watched ended.
        StreamEnded => "stream_ended",
        /// A socket error other than a reset.
        IoError => "io_error",
        /// The server is shutting down.
        Shutdown => "shutdown",
    }
}

label_enum! {
    /// Where ingested media came from.
    IngestSource, label = "source" {
        /// A publisher pushing to this box.
        Publisher => "publisher",
        /// An origin this box pulls from.
        Origin => "origin",
    }
}

label_enum! {
    /// Why a frame was not delivered to a viewer.
    DropReason, label = "reason" {
        /// The viewer lagged past the soft bound and non-keyframe video was skipped.
        SlowViewer => "slow_viewer",
        /// A bounded queue (per-send cap, cross-core media backlog) was full; counted by the sending core.
        QueueCap => "queue_cap",
        /// A replica missed frames across cores (a sequence gap) or skipped them
        /// while resyncing at the next keyframe; counted by the replica's core.
        MeshGap => "mesh_gap",
    }
}

label_enum! {
    /// Why `accept` failed. Descriptor and memory exhaustion are split out because
    /// each has a different fix (rlimits, fs.file-max, memory).
    AcceptErrorKind, label = "errno" {
        /// Per-process descriptor limit (RLIMIT_NOFILE).
        Emfile => "emfile",
        /// System-wide descriptor limit (fs.file-max).
        Enfile => "enfile",
        /// Socket buffer memory exhausted.
        Enobufs => "enobufs",
        /// Kernel memory exhausted.
        Enomem => "enomem",
        /// Anything else.
        Other => "other",
    }
}

impl AcceptErrorKind {
    /// Classifies a raw `errno` from a failed accept completion (the value is
    /// positive, i.e. `-cqe.result()`).
    pub fn from_errno(errno: i32) -> Self {
        match errno {
            libc::EMFILE => Self::Emfile,
            libc::ENFILE => Self::Enfile,
            libc::ENOBUFS => Self::Enobufs,
            libc::ENOMEM => Self::Enomem,
            _ => Self::Other,
        }
    }
}

label_enum! {
    /// Which side of the relay failed.
    FailureSide, label = "side" {
        /// A publisher connection (ingest).
        Publisher => "publisher",
        /// A viewer connection (egress).
        Viewer => "viewer",
        /// An origin pull.
        Origin => "origin",
    }
}

/// One single-writer counter per value of label `L`. `N` must equal `L::COUNT`
/// (use `{ L::COUNT }`); a mismatch is caught by [`LabeledCounters::new`] in debug
/// builds and otherwise only drops increments for out-of-range values.
#[derive(Debug)]
pub struct LabeledCounters<L: LabelValue, const N: usize> {
    slots: [LocalCounter; N],
    _label: std::marker::PhantomData<L>,
}

impl<L: LabelValue, const N: usize> Default for LabeledCounters<L, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: LabelValue, const N: usize> LabeledCounters<L, N> {
    /// All counters at zero.
    pub fn new() -> Self {
        debug_assert_eq!(N, L::ALL.len(), "array length must match label values");
        Self {
            slots: std::array::from_fn(|_| LocalCounter::new()),
            _label: std::marker::PhantomData,
        }
    }

    /// Adds one to the counter for `label`. Owner core only.
    #[inline]
    pub fn inc(&self, label: L) {
        self.add(label, 1);
    }

    /// Adds `n` to the counter for `label`. Owner core only.
    #[inline]
    pub fn add(&self, label: L, n: u64) {
        if let Some(slot) = self.slots.get(label.index()) {
            slot.add(n);
        }
    }

    /// The counter for `label`.
    pub fn get(&self, label: L) -> u64 {
        self.slots.get(label.index()).map_or(0, LocalCounter::get)
    }
}

/// One single-writer gauge per value of label `L`; see [`LabeledCounters`] for `N`.
#[derive(Debug)]
pub struct LabeledGauges<L: LabelValue, const N: usize> {
    slots: [LocalGauge; N],
    _label: std::marker::PhantomData<L>,
}

impl<L: LabelValue, const N: usize> Default for LabeledGauges<L, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: LabelValue, const N: usize> LabeledGauges<L, N> {
    /// All gauges at zero.
    pub fn new() -> Self {
        debug_assert_eq!(N, L::ALL.len(), "array length must match label values");
        Self {
            slots: std::array::from_fn(|_| LocalGauge::new()),
            _label: std::marker::PhantomData,
        }
    }

    /// Adds `delta` to the gauge for `label`. Owner core only.
    #[inline]
    pub fn add(&self, label: L, delta: i64) {
        if let Some(slot) = self.slots.get(label.index()) {
            slot.add(delta);
        }
    }

    /// Adds one to the gauge for `label`. Owner core only.
    #[inline]
    pub fn inc(&self, label: L) {
        self.add(label, 1);
    }

    /// Subtracts one from the gauge for `label`. Owner core only.
    #[inline]
    pub fn dec(&self, label: L) {
        self.add(label, -1);
    }

    /// The gauge for `label`.
    pub fn get(&self, label: L) -> i64 {
        self.slots.get(label.index()).map_or(0, LocalGauge::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_all_order() {
        for (i, p) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
        }
        assert_eq!(Protocol::COUNT, 4);
        assert_eq!(Protocol::WsFlv.as_str(), "ws_flv");
        assert_eq!(Protocol::HttpFlv.as_str(), "http_flv");
        assert_eq!(FailureSide::LABEL, "side");
    }

    #[test]
    fn label_values_are_valid_prometheus_values_and_unique() {
        fn check<L: LabelValue>() {
            let mut seen = std::collections::HashSet::new();
            for v in L::ALL {
                let s = v.as_str();
                assert!(
                    s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{s}"
                );
                assert!(seen.insert(s), "duplicate {s}");
            }
        }
        check::<Protocol>();
        check::<Listener>();
        check::<RefuseReason>();
        check::<AuthRefusal>();
        check::<HookActionLabel>();
        check::<HookResultLabel>();
        check::<CloseReason>();
        check::<WsCloseLabel>();
        check::<IngestSource>();
        check::<DropReason>();
        check::<AcceptErrorKind>();
        check::<FailureSide>();
    }

    #[test]
    fn accept_errno_classification() {
        assert_eq!(
            AcceptErrorKind::from_errno(libc::EMFILE),
            AcceptErrorKind::Emfile
        );
        assert_eq!(
            AcceptErrorKind::from_errno(libc::ENFILE),
            AcceptErrorKind::Enfile
        );
        assert_eq!(
            AcceptErrorKind::from_errno(libc::ECONNABORTED),
            AcceptErrorKind::Other
        );
    }

    #[test]
    fn labeled_counters_keep_values_apart() {
        let c: LabeledCounters<DropReason, { DropReason::COUNT }> = LabeledCounters::new();
        c.inc(DropReason::SlowViewer);
        c.add(DropReason::QueueCap, 5);
        assert_eq!(c.get(DropReason::SlowViewer), 1);
        assert_eq!(c.get(DropReason::QueueCap), 5);
        let g: LabeledGauges<Protocol, { Protocol::COUNT }> = LabeledGauges::new();
        g.inc(Protocol::Rtmp);
        g.inc(Protocol::Rtmp);
        g.dec(Protocol::Hls);
        assert_eq!(g.get(Protocol::Rtmp), 2);
        assert_eq!(g.get(Protocol::Hls), -1);
        assert_eq!(g.get(Protocol::HttpFlv), 0);
    }
}
