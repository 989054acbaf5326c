//! RTMP viewers and publishers, sans-IO, on top of ringcast's [`ClientSession`]
//! (handshake, chunk codec and commands are all ringcast's; this only decides what
//! to measure and when to send).

use bytes::{Bytes, BytesMut};
use ringcast::protocol::rtmp::session::client::{ClientEvent, ClientMode, ClientSession, ClientSessionConfig};
use ringcast::protocol::rtmp::session::SessionError;
use ringcast::protocol::{Frame, FrameKind};

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
    let phase = if matches!(e, SessionError::Handshake(_)) { Phase::Handshake } else { phase };
    (phase, FailureKind::Protocol)
}

/// Builds a session for `target` in `mode`.
pub fn session(target: &Target, mode: ClientMode, rng: &mut impl rand::RngCore, now_ms: u64) -> ClientSession {
    let config = ClientSessionConfig::new(&target.path, &target.tc_url(), &target.stream, mode);
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

/// One RTMP play connection.
#[derive(Debug)]
pub struct RtmpViewer {
    session: Box<ClientSession>,
    phase: Phase,
    got_media: bool,
}

impl RtmpViewer {
    /// Starts the handshake, writing C0+C1 into `out`.
    pub fn start(mut session: ClientSession, out: &mut BytesMut) -> Result<Self, (Phase, FailureKind)> {
        session.start(out).map_err(|e| session_failure(Phase::Handshake, &e))?;
        Ok(RtmpViewer { session: Box::new(session), phase: Phase::Handshake, got_media: false })
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
        let res = self.session.handle_input(data, now.mono_us / 1000, out, events);
        for event in events.drain(..) {
            self.phase = phase_after(&event, self.phase);
            match event {
                ClientEvent::Media(frame) => {
                    self.got_media = true;
                    if meter.sampled() {
                        meter.on_frame(frame.kind, &frame.payload, now, iv);
                    }
                }
                ClientEvent::StatusError { code, .. } => {
                    tracing::debug!(%code, "rtmp play refused");
                    return Err((self.phase, FailureKind::Rejected));
                }
                ClientEvent::StreamEof => return Err((Phase::Streaming, FailureKind::EarlyEof)),
                ClientEvent::Connected | ClientEvent::PlayStarted | ClientEvent::PublishStarted => {}
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
    pub fn start(mut session: ClientSession, source: MediaSource, out: &mut BytesMut) -> Result<Self, (Phase, FailureKind)> {
        session.start(out).map_err(|e| session_failure(Phase::Handshake, &e))?;
        Ok(Publisher { session: Box::new(session), source, phase: Phase::Handshake, epoch_us: None, sequence: 0, scratch: Vec::new() })
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
        let res = self.session.handle_input(data, now.mono_us / 1000, out, events);
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
    pub fn pump(&mut self, now: Now, iv: &mut Interval, out: &mut BytesMut) -> Result<Option<u64>, (Phase, FailureKind)> {
        let Some(epoch) = self.epoch_us else { return Ok(None) };
        let elapsed_ms = now.mono_us.saturating_sub(epoch) / 1000;
        for _ in 0..MAX_FRAMES_PER_PUMP {
            let due = self.source.next_timestamp();
            if due > elapsed_ms {
                return Ok(Some((due - elapsed_ms) * 1000));
            }
            let mut frame = self.source.next_frame();
            if frame.kind == FrameKind::Video && !frame.sequence_header {
                let stamp = Stamp { sent_unix_us: now.unix_us, sequence: self.sequence };
                // Non-AVC or malformed frames go out unstamped; viewers then see no stamp.
                if stamp_avc_tag(&frame.payload, self.source.nal_len_size(), stamp, &mut self.scratch).is_ok() {
                    frame.payload = Bytes::copy_from_slice(&self.scratch);
                    self.sequence += 1;
                }
            }
            self.send(&frame, iv, out)?;
        }
        Ok(Some(0))
    }

    fn send(&mut self, frame: &Frame, iv: &mut Interval, out: &mut BytesMut) -> Result<(), (Phase, FailureKind)> {
        self.session.send_frame(frame, out).map_err(|e| session_failure(self.phase, &e))?;
        iv.counters.published_frames += 1;
        iv.counters.published_bytes += frame.payload.len() as u64;
        Ok(())
    }

    /// Ends the publish politely (`FCUnpublish`, `deleteStream`).
    pub fn close(&mut self, out: &mut BytesMut) {
        let _ = self.session.close(out);
    }
}
