//! RTMP viewers and publishers, sans-IO, on top of ringcast's [`ClientSession`]
//! (handshake, chunk codec and commands are all ringcast's; this only decides what
//! to measure and when to send).

use bytes::{Bytes, BytesMut};
use ringcast::protocol::rtmp::session::client::{
    ClientEvent, ClientMode, ClientSession, ClientSessionConfig,
};
use ringcast::protocol::rtmp::session::SessionError;
use ringcast::protocol::{Frame, FrameKind};

use crate::arena::SharedArena;
use crate::filesource::FileSource;
use crate::stamp::{stamp_avc_tag, Stamp};
use crate::stats::{FailureKind, Interval, Phase};
use crate::synthetic::{SyntheticSource, NAL_LENGTH_SIZE};
use crate::target::Target;
use crate::viewer::{Now, ViewerMeter};

/// Most frames a publisher sends in one turn when it has fallen behind, so one late
/// publisher cannot hold up the worker's loop.
const MAX_FRAMES_PER_PUMP: usize = 256;

/// A session failure, counted under the phase the connection was in.
fn session_failure(phase: Phase, e: &SessionError) -> (Phase, FailureKind) {
    tracing::debug!(error = %e, ?phase, "rtmp session error");
    let phase = if matches!(e, SessionError::Handshake(_)) {
        Phase::Handshake
    } else {
        phase
    };
    (phase, FailureKind::Protocol)
}

/// Builds a session for `target` in `mode`.
pub fn session(
    target: &Target,
    mode: ClientMode,
    rng: &mut impl rand::RngCore,
    now_ms: u64,
) -> ClientSession {
    let config = ClientSessionConfig::new(&target.path, &target.tc_url(), &target.stream, mode);
    ClientSession::new(config, rng, now_ms)
}

/// Builds a play session for `target`. An unsampled viewer never looks at a frame,
/// so its session skips audio and video payloads (walks their chunks, copies and
/// parses nothing), which makes it about as cheap as an unsampled HTTP-FLV viewer.
pub fn viewer_session(
    target: &Target,
    sampled: bool,
    rng: &mut impl rand::RngCore,
    now_ms: u64,
) -> ClientSession {
    let mut config = ClientSessionConfig::new(
        &target.path,
        &target.tc_url(),
        &target.stream,
        ClientMode::Play,
    );
    config.skip_media = !sampled;
    ClientSession::new(config, rng, now_ms)
}

/// Tracks how far a client session got, for failure phases.
fn phase_after(event: &ClientEvent, phase: Phase) -> Phase {
    match event {
        ClientEvent::Connected => Phase::Request,
        ClientEvent::PlayStarted | ClientEvent::PublishStarted => Phase::Streaming,
        _ => phase,
    }
}

/// One RTMP play connection. Sampled viewers get every frame and measure it;
/// unsampled ones (a session from [`viewer_session`]) only learn that media arrived.
#[derive(Debug)]
pub struct RtmpViewer {
    session: Box<ClientSession>,
    /// The worker's arena: every message payload is carved from it, so frames cost
    /// no malloc each.
    arena: SharedArena,
    phase: Phase,
    got_media: bool,
}

impl RtmpViewer {
    /// Starts the handshake, writing C0+C1 into `out`; payloads will come from `arena`.
    pub fn start(
        mut session: ClientSession,
        arena: SharedArena,
        out: &mut BytesMut,
    ) -> Result<Self, (Phase, FailureKind)> {
        session
            .start(out)
            .map_err(|e| session_failure(Phase::Handshake, &e))?;
        Ok(RtmpViewer {
            session: Box::new(session),
            arena,
            phase: Phase::Handshake,
            got_media: false,
        })
    }

    /// The phase a connection loss now would count under.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether play started and media arrived.
    pub fn streaming(&self) -> bool {
        self.got_media
    }

    /// Feeds received bytes; replies (acks, commands) go to `out`.
    pub fn on_bytes(
        &mut self,
        data: &[u8],
        now: Now,
        meter: &mut ViewerMeter,
        iv: &mut Interval,
        out: &mut BytesMut,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), (Phase, FailureKind)> {
        meter.on_bytes(data.len(), now, iv);
        events.clear();
        let res =
            self.session
                .handle_input_in(data, now.mono_us / 1000, &mut self.arena, out, events);
        for event in events.drain(..) {
            self.phase = phase_after(&event, self.phase);
            match event {
                ClientEvent::Media(frame) => {
                    self.got_media = true;
                    if meter.sampled() {
                        meter.on_frame(frame.kind, &frame.payload, now, iv);
                    }
                }
                ClientEvent::MediaSkipped { .. } => self.got_media = true,
                ClientEvent::StatusError { code, .. } => {
                    tracing::debug!(%code, "rtmp play refused");
                    return Err((self.phase, FailureKind::Rejected));
                }
                ClientEvent::StreamEof => return Err((Phase::Streaming, FailureKind::EarlyEof)),
                ClientEvent::Connected | ClientEvent::PlayStarted | ClientEvent::PublishStarted => {
                }
            }
        }
        res.map_err(|e| session_failure(self.phase, &e))
    }
}

/// Where a publisher's frames come from.
#[derive(Debug)]
pub enum MediaSource {
    /// Encoder-free frames.
    Synthetic(SyntheticSource),
    /// A looped FLV file.
    File(FileSource),
}

impl MediaSource {
    fn sequence_headers(&self) -> Vec<Frame> {
        match self {
            MediaSource::Synthetic(s) => s.sequence_headers(),
            MediaSource::File(f) => f.sequence_headers(),
        }
    }

    fn next_timestamp(&self) -> u64 {
        match self {
            MediaSource::Synthetic(s) => s.next_timestamp(),
            MediaSource::File(f) => f.next_timestamp(),
        }
    }

    fn next_frame(&mut self) -> Frame {
        match self {
            MediaSource::Synthetic(s) => s.next_frame(),
            MediaSource::File(f) => f.next_frame(),
        }
    }

    fn nal_len_size(&self) -> u8 {
        match self {
            MediaSource::Synthetic(_) => NAL_LENGTH_SIZE,
            MediaSource::File(f) => f.nal_len_size(),
        }
    }
}

/// One RTMP publish connection, sending its source in real time with every video
/// frame stamped.
#[derive(Debug)]
pub struct Publisher {
    session: Box<ClientSession>,
    source: MediaSource,
    phase: Phase,
    /// Monotonic µs at which media timestamp 0 is due; set when publishing starts.
    epoch_us: Option<u64>,
    sequence: u64,
    scratch: Vec<u8>,
}

impl Publisher {
    /// Starts the handshake, writing C0+C1 into `out`.
    pub fn start(
        mut session: ClientSession,
        source: MediaSource,
        out: &mut BytesMut,
    ) -> Result<Self, (Phase, FailureKind)> {
        session
            .start(out)
            .map_err(|e| session_failure(Phase::Handshake, &e))?;
        Ok(Publisher {
            session: Box::new(session),
            source,
            phase: Phase::Handshake,
            epoch_us: None,
            sequence: 0,
            scratch: Vec::new(),
        })
    }

    /// The phase a connection loss now would count under.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the server accepted the publish.
    pub fn publishing(&self) -> bool {
        self.epoch_us.is_some()
    }

    /// Feeds received bytes; on `NetStream.Publish.Start` the sequence headers go out.
    pub fn on_bytes(
        &mut self,
        data: &[u8],
        now: Now,
        iv: &mut Interval,
        out: &mut BytesMut,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), (Phase, FailureKind)> {
        events.clear();
        let res = self
            .session
            .handle_input(data, now.mono_us / 1000, out, events);
        for event in events.drain(..) {
            self.phase = phase_after(&event, self.phase);
            match event {
                ClientEvent::PublishStarted => {
                    self.epoch_us = Some(now.mono_us);
                    iv.counters.publishers_up += 1;
                    for frame in self.source.sequence_headers() {
                        self.send(&frame, iv, out)?;
                    }
                }
                ClientEvent::StatusError { code, .. } => {
                    tracing::warn!(%code, "rtmp publish refused");
                    return Err((self.phase, FailureKind::Rejected));
                }
                _ => {}
            }
        }
        res.map_err(|e| session_failure(self.phase, &e))
    }

    /// Sends every frame that is due by `now`; returns µs until the next one is due.
    pub fn pump(
        &mut self,
        now: Now,
        iv: &mut Interval,
        out: &mut BytesMut,
    ) -> Result<Option<u64>, (Phase, FailureKind)> {
        let Some(epoch) = self.epoch_us else {
            return Ok(None);
        };
        let elapsed_ms = now.mono_us.saturating_sub(epoch) / 1000;
        for _ in 0..MAX_FRAMES_PER_PUMP {
            let due = self.source.next_timestamp();
            if due > elapsed_ms {
                return Ok(Some((due - elapsed_ms) * 1000));
            }
            let mut frame = self.source.next_frame();
            if frame.kind == FrameKind::Video && !frame.sequence_header {
                let stamp = Stamp {
                    sent_unix_us: now.unix_us,
                    sequence: self.sequence,
                };
                // Non-AVC or malformed frames go out unstamped; viewers then see no stamp.
                if stamp_avc_tag(
                    &frame.payload,
                    self.source.nal_len_size(),
                    stamp,
                    &mut self.scratch,
                )
                .is_ok()
                {
                    frame.payload = Bytes::copy_from_slice(&self.scratch);
                    self.sequence += 1;
                }
            }
            self.send(&frame, iv, out)?;
        }
        Ok(Some(0))
    }

    fn send(
        &mut self,
        frame: &Frame,
        iv: &mut Interval,
        out: &mut BytesMut,
    ) -> Result<(), (Phase, FailureKind)> {
        self.session
            .send_frame(frame, out)
            .map_err(|e| session_failure(self.phase, &e))?;
        iv.counters.published_frames += 1;
        iv.counters.published_bytes += frame.payload.len() as u64;
        Ok(())
    }

    /// Ends the publish politely (`FCUnpublish`, `deleteStream`).
    pub fn close(&mut self, out: &mut BytesMut) {
        let _ = self.session.close(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use ringcast::protocol::rtmp::session::server::{
        PublishRejection, ServerEvent, ServerSession, ServerSessionConfig,
    };

    use crate::synthetic::SyntheticConfig;

    /// ringcast's ServerSession on both sides of an in-memory relay: a publisher
    /// publishes into one, the relay forwards media (dropping what `drop_video` says)
    /// to the other, which a viewer plays from.
    struct Relay {
        publisher: Publisher,
        ingest: ServerSession,
        viewer: RtmpViewer,
        egress: ServerSession,
        play_stream: Option<u32>,
        reject_publish: bool,
        to_ingest: BytesMut,
        to_publisher: BytesMut,
        to_egress: BytesMut,
        to_viewer: BytesMut,
        meter: ViewerMeter,
        iv: Interval,
        publish_iv: Interval,
        video_seen: u64,
        /// Bytes the viewer wrote (commands, acknowledgements).
        viewer_sent: usize,
    }

    fn now(ms: u64) -> Now {
        Now {
            mono_us: ms * 1000,
            unix_us: 1_700_000_000_000_000 + ms * 1000,
        }
    }

    impl Relay {
        fn new(reject_publish: bool) -> Self {
            Self::with_viewer(
                reject_publish,
                true,
                ServerSessionConfig::default().window_ack_size,
            )
        }

        /// A relay whose viewer is `sampled` or not, and whose egress asks for an
        /// acknowledgement every `ack_window` bytes.
        fn with_viewer(reject_publish: bool, sampled: bool, ack_window: u32) -> Self {
            let mut rng = SmallRng::seed_from_u64(1);
            let target = Target::parse("rtmp://127.0.0.1/live/x").unwrap();
            let cfg = SyntheticConfig {
                video_bitrate: 200_000,
                audio_bitrate: 32_000,
                fps: 25,
                gop_ms: 1000,
            };
            let mut to_ingest = BytesMut::new();
            let mut to_egress = BytesMut::new();
            let publisher = Publisher::start(
                session(&target, ClientMode::Publish, &mut rng, 0),
                MediaSource::Synthetic(SyntheticSource::new(cfg).unwrap()),
                &mut to_ingest,
            )
            .unwrap();
            let viewer = RtmpViewer::start(
                viewer_session(&target, sampled, &mut rng, 0),
                SharedArena::default(),
                &mut to_egress,
            )
            .unwrap();
            let mut iv = Interval::default();
            let meter = ViewerMeter::new(now(0), sampled, &mut iv);
            let egress_config = ServerSessionConfig {
                window_ack_size: ack_window,
                ..ServerSessionConfig::default()
            };
            Relay {
                publisher,
                ingest: ServerSession::new(ServerSessionConfig::default(), &mut rng, 0),
                viewer,
                egress: ServerSession::new(egress_config, &mut rng, 0),
                play_stream: None,
                reject_publish,
                to_ingest,
                to_publisher: BytesMut::new(),
                to_egress,
                to_viewer: BytesMut::new(),
                meter,
                iv,
                publish_iv: Interval::default(),
                video_seen: 0,
                viewer_sent: 0,
            }
        }

        /// Runs one 10 ms tick: pumps the publisher and moves bytes until all is quiet.
        fn tick(
            &mut self,
            ms: u64,
            drop_video: &dyn Fn(u64) -> bool,
        ) -> Result<(), (Phase, FailureKind)> {
            let t = now(ms);
            self.publisher
                .pump(t, &mut self.publish_iv, &mut self.to_ingest)?;
            let mut events = Vec::new();
            for _ in 0..32 {
                let mut server_events = Vec::new();
                let input = std::mem::take(&mut self.to_ingest);
                self.ingest
                    .handle_input(&input, ms, &mut self.to_publisher, &mut server_events)
                    .unwrap();
                for ev in server_events {
                    match ev {
                        ServerEvent::PublishRequested { stream_id, .. } if self.reject_publish => {
                            self.ingest
                                .reject_publish(
                                    stream_id,
                                    PublishRejection::Denied,
                                    "no",
                                    &mut self.to_publisher,
                                )
                                .unwrap()
                        }
                        ServerEvent::PublishRequested { stream_id, .. } => self
                            .ingest
                            .accept_publish(stream_id, &mut self.to_publisher)
                            .unwrap(),
                        ServerEvent::Media { frame, .. } => {
                            let dropped =
                                if frame.kind == FrameKind::Video && !frame.sequence_header {
                                    self.video_seen += 1;
                                    drop_video(self.video_seen - 1)
                                } else {
                                    false
                                };
                            if let (Some(sid), false) = (self.play_stream, dropped) {
                                self.egress
                                    .write_frame(sid, &frame, &mut self.to_viewer)
                                    .unwrap();
                            }
                        }
                        _ => {}
                    }
                }
                let mut server_events = Vec::new();
                let input = std::mem::take(&mut self.to_egress);
                self.egress
                    .handle_input(&input, ms, &mut self.to_viewer, &mut server_events)
                    .unwrap();
                for ev in server_events {
                    if let ServerEvent::PlayRequested { stream_id, .. } = ev {
                        self.egress
                            .accept_play(stream_id, &mut self.to_viewer)
                            .unwrap();
                        self.play_stream = Some(stream_id);
                    }
                }
                let input = std::mem::take(&mut self.to_viewer);
                if !input.is_empty() {
                    let before = self.to_egress.len();
                    self.viewer.on_bytes(
                        &input,
                        t,
                        &mut self.meter,
                        &mut self.iv,
                        &mut self.to_egress,
                        &mut events,
                    )?;
                    self.viewer_sent += self.to_egress.len() - before;
                }
                let input = std::mem::take(&mut self.to_publisher);
                if !input.is_empty() {
                    self.publisher.on_bytes(
                        &input,
                        t,
                        &mut self.publish_iv,
                        &mut self.to_ingest,
                        &mut events,
                    )?;
                }
                if self.to_ingest.is_empty()
                    && self.to_egress.is_empty()
                    && self.to_viewer.is_empty()
                    && self.to_publisher.is_empty()
                {
                    return Ok(());
                }
            }
            panic!("relay never went quiet");
        }
    }

    #[test]
    fn viewer_measures_everything_the_publisher_stamped() {
        let mut relay = Relay::new(false);
        for step in 0..300 {
            relay.tick(step * 10, &|_| false).unwrap();
        }
        assert!(relay.publisher.publishing());
        assert_eq!(relay.viewer.phase(), Phase::Streaming);
        let c = relay.iv.counters;
        // The viewer joined before the first frame, so it saw every video frame.
        assert_eq!(c.video_frames, relay.video_seen);
        assert_eq!(c.stamped_frames, c.video_frames);
        assert!(
            c.video_frames >= 74,
            "{} frames in 3 s at 25 fps",
            c.video_frames
        );
        assert_eq!(c.keyframes, 3);
        assert_eq!((c.missing_frames, c.stalls), (0, 0));
        assert!(c.audio_frames > 100);
        assert_eq!(relay.iv.hist.gop_frames.max(), 25);
        // Same tick, same clock: latency is the relay's zero plus the histogram's floor.
        assert!(relay.iv.hist.latency_us.max() <= 1);
        assert_eq!(relay.publish_iv.counters.publishers_up, 1);
        assert!(relay.publish_iv.counters.published_frames >= c.video_frames + c.audio_frames);
    }

    #[test]
    fn unsampled_viewers_skip_media_yet_stream_and_acknowledge_like_sampled_ones() {
        let mut sampled = Relay::with_viewer(false, true, 10_000);
        let mut unsampled = Relay::with_viewer(false, false, 10_000);
        // No acknowledgements (the default 2.5 MB window): what the rest is above.
        let mut unacked = Relay::with_viewer(false, false, 2_500_000);
        for step in 0..300 {
            sampled.tick(step * 10, &|_| false).unwrap();
            unsampled.tick(step * 10, &|_| false).unwrap();
            unacked.tick(step * 10, &|_| false).unwrap();
        }
        assert!(unsampled.viewer.streaming(), "media arrived");
        assert_eq!(unsampled.viewer.phase(), Phase::Streaming);
        let (s, u) = (sampled.iv.counters, unsampled.iv.counters);
        assert!(s.video_frames >= 74);
        assert_eq!((u.video_frames, u.audio_frames), (0, 0), "nothing parsed");
        assert_eq!(u.bytes_received, s.bytes_received);
        assert!(u.bytes_received > 50_000, "{}", u.bytes_received);
        // Same acknowledgements (one per 10 kB received) and commands, byte for byte.
        assert_eq!(unsampled.viewer_sent, sampled.viewer_sent);
        // Each acknowledgement takes at least 5 bytes (a 1-byte header, 4 of payload).
        let acks = u.bytes_received / 10_000;
        assert!(
            unsampled.viewer_sent >= unacked.viewer_sent + 5 * acks as usize,
            "{} bytes sent, {} without acknowledgements",
            unsampled.viewer_sent,
            unacked.viewer_sent
        );
    }

    #[test]
    fn frames_a_server_drops_are_counted_missing() {
        let mut relay = Relay::new(false);
        // The relay loses 5 interframes of the second GOP.
        let lost = |i: u64| (30..35).contains(&i);
        for step in 0..300 {
            relay.tick(step * 10, &lost).unwrap();
        }
        let c = relay.iv.counters;
        assert_eq!(c.missing_frames, 5);
        assert_eq!(c.video_frames, relay.video_seen - 5);
        assert_eq!(relay.iv.hist.gop_frames.min(), 20);
    }

    #[test]
    fn a_refused_publish_is_a_rejected_request() {
        let mut relay = Relay::new(true);
        let mut result = Ok(());
        for step in 0..10 {
            result = relay.tick(step * 10, &|_| false);
            if result.is_err() {
                break;
            }
        }
        assert!(
            matches!(result, Err((_, FailureKind::Rejected))),
            "{result:?}"
        );
        assert!(!relay.publisher.publishing());
    }
}
