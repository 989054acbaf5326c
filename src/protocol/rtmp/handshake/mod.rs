//! The RTMP handshake (C0/C1/C2, S0/S1/S2), sans-IO, both sides.
//!
//! Two flavours exist in the wild. The *simple* one of the published spec (S2
//! echoes C1) and the *complex* one Flash Player introduced, where C1/S1 carry an
//! HMAC-SHA256 digest at a position derived from the packet itself (digest block at
//! offset 8 or at 772: schemes 0 and 1 here) and S2/C2 are signed with a key derived
//! from the peer's digest. Players that see a complex C1 answered simply refuse
//! to play H.264/AAC, and ffmpeg checks S2's signature when it plays, so the server
//! answers complex whenever C1 carries a valid digest.
//!
//! The digest schemes and keys are in `digest`; this module is the state
//! machine of both sides.

mod digest;
#[cfg(test)]
mod tests;

use bytes::{BufMut, BytesMut};
use rand::RngCore;
use thiserror::Error;
use tracing::debug;

use crate::protocol::reader::Reader;
pub use digest::DigestScheme;
use digest::{
    answer_packet1, build_packet1, packet2_signed, CLIENT_VERSION, DIGEST_LEN, PLAYER_NAME,
    SERVER_NAME, SERVER_VERSION, SIGNED_LEN,
};

/// Size of C1, C2, S1 and S2.
pub const HANDSHAKE_PACKET_LEN: usize = 1536;
/// The only plain RTMP version.
pub const RTMP_VERSION: u8 = 3;
/// The version byte of RTMPE (encrypted RTMP), which is not supported.
pub const RTMPE_VERSION: u8 = 6;

/// The handshake failed; the connection should close.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// C0/S0 is not version 3.
    #[error("unsupported RTMP version {0} (only 3)")]
    UnsupportedVersion(u8),
    /// C0/S0 asks for RTMPE (version 6).
    #[error("encrypted RTMP (RTMPE, version 6) is not supported")]
    EncryptionNotSupported,
}

/// What one `handle` call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeStatus {
    /// Input bytes consumed. Once `done`, the rest belongs to the chunk layer.
    pub consumed: usize,
    /// The handshake is complete.
    pub done: bool,
}

fn check_version(v: u8) -> Result<(), HandshakeError> {
    match v {
        RTMP_VERSION => Ok(()),
        RTMPE_VERSION => Err(HandshakeError::EncryptionNotSupported),
        other => Err(HandshakeError::UnsupportedVersion(other)),
    }
}

/// Copies as much of `input` as fits into `buf[*filled..]`.
fn fill(buf: &mut [u8], filled: &mut usize, input: &mut Reader<'_>) {
    let Some(free) = buf.get_mut(*filled..) else {
        return;
    };
    let chunk = input.take_up_to(free.len());
    if let Some(dst) = free.get_mut(..chunk.len()) {
        dst.copy_from_slice(chunk);
    }
    *filled += chunk.len();
}

/// How far reading the peer's half of the handshake got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerStage {
    /// Waiting for C0/S0.
    Version,
    /// Collecting C1/S1.
    Packet1,
    /// Collecting C2/S2.
    Packet2,
    Done,
}

/// What one [`PeerPackets::read`] call completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerProgress {
    /// The input ran out (or the handshake was already read).
    NeedInput,
    /// C1/S1 is complete: the caller answers it, then reads on.
    Packet1,
    /// C2/S2 is complete: the peer's half is read.
    Packet2,
}

/// Reads the peer's half of a handshake (version byte, packet 1, packet 2), which
/// has the same shape on both sides.
struct PeerPackets {
    stage: PeerStage,
    packet1: Box<[u8; HANDSHAKE_PACKET_LEN]>,
    packet1_len: usize,
    /// Packet 2, kept only by a side that checks it; otherwise only counted.
    packet2: Option<Box<[u8; HANDSHAKE_PACKET_LEN]>>,
    packet2_len: usize,
}

impl PeerPackets {
    fn new(keep_packet2: bool) -> Self {
        PeerPackets {
            stage: PeerStage::Version,
            packet1: Box::new([0u8; HANDSHAKE_PACKET_LEN]),
            packet1_len: 0,
            packet2: keep_packet2.then(|| Box::new([0u8; HANDSHAKE_PACKET_LEN])),
            packet2_len: 0,
        }
    }

    /// Consumes `input` until a packet completes or the input runs out.
    fn read(&mut self, input: &mut Reader<'_>) -> Result<PeerProgress, HandshakeError> {
        loop {
            match self.stage {
                PeerStage::Version => {
                    let Some(v) = input.peek() else {
                        return Ok(PeerProgress::NeedInput);
                    };
                    check_version(v)?;
                    input.take_up_to(1);
                    self.stage = PeerStage::Packet1;
                }
                PeerStage::Packet1 => {
                    fill(&mut self.packet1[..], &mut self.packet1_len, input);
                    if self.packet1_len < HANDSHAKE_PACKET_LEN {
                        return Ok(PeerProgress::NeedInput);
                    }
                    self.stage = PeerStage::Packet2;
                    return Ok(PeerProgress::Packet1);
                }
                PeerStage::Packet2 => {
                    match &mut self.packet2 {
                        Some(packet2) => fill(&mut packet2[..], &mut self.packet2_len, input),
                        None => {
                            let left = HANDSHAKE_PACKET_LEN.saturating_sub(self.packet2_len);
                            self.packet2_len += input.take_up_to(left).len();
                        }
                    }
                    if self.packet2_len < HANDSHAKE_PACKET_LEN {
                        return Ok(PeerProgress::NeedInput);
                    }
                    self.stage = PeerStage::Done;
                    return Ok(PeerProgress::Packet2);
                }
                PeerStage::Done => return Ok(PeerProgress::NeedInput),
            }
        }
    }

    fn done(&self) -> bool {
        self.stage == PeerStage::Done
    }
}

/// The server side: reads C0+C1, answers S0+S1+S2, then reads C2.
pub struct ServerHandshake {
    /// C0, C1 and C2; C2's content is not checked: many encoders get it wrong.
    client: PeerPackets,
    /// Random bytes for S1 and S2, drawn up front so no RNG is held.
    s1_random: Box<[u8; HANDSHAKE_PACKET_LEN - 8]>,
    s2_random: Box<[u8; SIGNED_LEN]>,
    epoch_ms: u32,
    complex: Option<DigestScheme>,
}

impl std::fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("stage", &self.client.stage)
            .field("complex", &self.complex)
            .finish()
    }
}

impl ServerHandshake {
    /// A server handshake; `epoch_ms` is the time field of S1.
    pub fn new(rng: &mut impl RngCore, epoch_ms: u32) -> Self {
        let mut s1_random = Box::new([0u8; HANDSHAKE_PACKET_LEN - 8]);
        rng.fill_bytes(&mut s1_random[..]);
        let mut s2_random = Box::new([0u8; SIGNED_LEN]);
        rng.fill_bytes(&mut s2_random[..]);
        Self {
            client: PeerPackets::new(false),
            s1_random,
            s2_random,
            epoch_ms,
            complex: None,
        }
    }

    /// The digest scheme of the client's C1, when it did a complex handshake.
    pub fn complex_scheme(&self) -> Option<DigestScheme> {
        self.complex
    }

    /// Consumes handshake bytes from `input`, appending S0+S1+S2 to `out` once
    /// C1 is complete.
    pub fn handle(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
    ) -> Result<HandshakeStatus, HandshakeError> {
        let mut input = Reader::new(input);
        while self.client.read(&mut input)? == PeerProgress::Packet1 {
            self.answer(out);
        }
        Ok(HandshakeStatus {
            consumed: input.consumed(),
            done: self.client.done(),
        })
    }

    fn answer(&mut self, out: &mut BytesMut) {
        let mut s2 = [0u8; HANDSHAKE_PACKET_LEN];
        self.complex = answer_packet1(
            &self.client.packet1,
            PLAYER_NAME,
            SERVER_NAME,
            &self.s2_random,
            &mut s2,
        );
        debug!(scheme = ?self.complex, "client handshake (no scheme: simple)");
        // A complex client gets a signed S1 in its own scheme; a simple one gets
        // a zero version, which tells it no digest is there.
        let (version, signing) = match self.complex {
            Some(scheme) => (SERVER_VERSION, Some((scheme, &SERVER_NAME[..]))),
            None => ([0; 4], None),
        };
        let mut s1 = [0u8; HANDSHAKE_PACKET_LEN];
        build_packet1(&mut s1, &self.s1_random, self.epoch_ms, version, signing);
        out.reserve(1 + 2 * HANDSHAKE_PACKET_LEN);
        out.put_u8(RTMP_VERSION);
        out.extend_from_slice(&s1);
        out.extend_from_slice(&s2);
    }
}

/// The client side (origin pull, loadgen): writes a complex C0+C1, accepts a
/// complex or simple server, answers C2, then reads S2.
pub struct ClientHandshake {
    /// C0+C1 written.
    started: bool,
    c1: Box<[u8; HANDSHAKE_PACKET_LEN]>,
    c1_digest: [u8; DIGEST_LEN],
    /// S0, S1 and S2 (kept, to check its signature).
    server: PeerPackets,
    /// Random bytes for C2.
    random: [u8; SIGNED_LEN],
    server_complex: bool,
    s2_signed: bool,
}

impl std::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("started", &self.started)
            .field("stage", &self.server.stage)
            .field("server_complex", &self.server_complex)
            .finish()
    }
}

impl ClientHandshake {
    /// A client handshake with a scheme-0 digest in C1.
    pub fn new(rng: &mut impl RngCore, epoch_ms: u32) -> Self {
        Self::with_scheme(rng, epoch_ms, DigestScheme::Scheme0)
    }

    /// A client handshake putting C1's digest where `scheme` says.
    pub fn with_scheme(rng: &mut impl RngCore, epoch_ms: u32, scheme: DigestScheme) -> Self {
        let mut c1 = Box::new([0u8; HANDSHAKE_PACKET_LEN]);
        let mut c1_random = [0u8; HANDSHAKE_PACKET_LEN - 8];
        rng.fill_bytes(&mut c1_random);
        let c1_digest = build_packet1(
            &mut c1,
            &c1_random,
            epoch_ms,
            CLIENT_VERSION,
            Some((scheme, PLAYER_NAME)),
        )
        .unwrap_or_default();
        let mut random = [0u8; SIGNED_LEN];
        rng.fill_bytes(&mut random);
        Self {
            started: false,
            c1,
            c1_digest,
            server: PeerPackets::new(true),
            random,
            server_complex: false,
            s2_signed: false,
        }
    }

    /// Whether the server answered with a valid complex S1.
    pub fn server_complex(&self) -> bool {
        self.server_complex
    }

    /// Whether S2 carried a valid complex signature of C1's digest (known once done).
    pub fn server_signed_s2(&self) -> bool {
        self.s2_signed
    }

    /// Writes C0+C1 on the first call (call it with empty input to start),
    /// then consumes S0/S1/S2 from `input`, writing C2 once S1 is complete.
    pub fn handle(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
    ) -> Result<HandshakeStatus, HandshakeError> {
        if !self.started {
            out.reserve(1 + HANDSHAKE_PACKET_LEN);
            out.put_u8(RTMP_VERSION);
            out.extend_from_slice(&self.c1[..]);
            self.started = true;
        }
        let mut input = Reader::new(input);
        loop {
            match self.server.read(&mut input)? {
                PeerProgress::Packet1 => self.answer(out),
                PeerProgress::Packet2 => self.s2_signed = self.check_s2(),
                PeerProgress::NeedInput => break,
            }
        }
        Ok(HandshakeStatus {
            consumed: input.consumed(),
            done: self.server.done(),
        })
    }

    fn answer(&mut self, out: &mut BytesMut) {
        let mut c2 = [0u8; HANDSHAKE_PACKET_LEN];
        let scheme = answer_packet1(
            &self.server.packet1,
            SERVER_NAME,
            PLAYER_NAME,
            &self.random,
            &mut c2,
        );
        debug!(?scheme, "server handshake (no scheme: simple)");
        self.server_complex = scheme.is_some();
        out.extend_from_slice(&c2);
    }

    /// S2 is only checked for the log: servers that sign S1 but echo C1 in S2
    /// (or sign it wrongly) still stream fine, so they are accepted.
    fn check_s2(&self) -> bool {
        let Some(s2) = &self.server.packet2 else {
            return false;
        };
        let signed = packet2_signed(s2, SERVER_NAME, &self.c1_digest);
        let echoed = s2[..] == self.c1[..];
        if !signed && !echoed {
            debug!(
                server_complex = self.server_complex,
                "S2 is neither signed nor an echo of C1"
            );
        }
        signed
    }
}
