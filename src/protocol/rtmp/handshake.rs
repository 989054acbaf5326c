//! The RTMP handshake (C0/C1/C2, S0/S1/S2), sans-IO, both sides.
//!
//! Two flavours exist in the wild. The *simple* one of the published spec (S2
//! echoes C1) and the *complex* one Flash Player introduced, where C1/S1 carry an
//! HMAC-SHA256 digest at a position derived from the packet itself (digest block at
//! offset 8 or at 772: schemes 0 and 1 here) and S2/C2 are signed with a key derived
//! from the peer's digest. Players that see a complex C1 answered simply refuse
//! to play H.264/AAC, and ffmpeg checks S2's signature when it plays, so the server
//! answers complex whenever C1 carries a valid digest.

use bytes::{BufMut, BytesMut};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use thiserror::Error;
use tracing::debug;

/// Size of C1, C2, S1 and S2.
pub const HANDSHAKE_PACKET_LEN: usize = 1536;
/// The only plain RTMP version.
pub const RTMP_VERSION: u8 = 3;
/// The version byte of RTMPE (encrypted RTMP), which is not supported.
pub const RTMPE_VERSION: u8 = 6;

const DIGEST_LEN: usize = 32;
/// Length of the bytes digested around the digest itself.
const SIGNED_LEN: usize = HANDSHAKE_PACKET_LEN - DIGEST_LEN;

/// Key half shared by both: appended to the Flash Player / FMS strings.
const KEY_SUFFIX: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
const PLAYER_NAME: &[u8; 30] = b"Genuine Adobe Flash Player 001";
const SERVER_NAME: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";

/// The version field this server puts in S1 (FMS 4.5.0.1; ffmpeg wants ≥ 3 in the first byte).
const SERVER_VERSION: [u8; 4] = [4, 5, 0, 1];
/// The version field the client puts in C1 (Flash Player 9.0.124.2, as ffmpeg sends).
const CLIENT_VERSION: [u8; 4] = [9, 0, 124, 2];

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

/// Where a complex handshake puts the digest in C1/S1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestScheme {
    /// Digest block at offset 8 (what ffmpeg and librtmp send by default).
    Scheme0,
    /// Digest block at offset 772.
    Scheme1,
}

impl DigestScheme {
    /// Where the digest sits: the four bytes opening the block, summed, pick a
    /// position within the block's 728 free bytes. Always in bounds.
    fn digest_offset(self, packet: &[u8; HANDSHAKE_PACKET_LEN]) -> usize {
        let base = match self {
            DigestScheme::Scheme0 => 8,
            DigestScheme::Scheme1 => 772,
        };
        let sum: usize = packet[base..base + 4].iter().map(|&b| usize::from(b)).sum();
        base + 4 + sum % 728
    }
}

/// What one `handle` call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeStatus {
    /// Input bytes consumed. Once `done`, the rest belongs to the chunk layer.
    pub consumed: usize,
    /// The handshake is complete.
    pub done: bool,
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length; were that ever to fail, an all-zero
    // digest simply never validates.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; DIGEST_LEN];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn full_key(name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + KEY_SUFFIX.len());
    key.extend_from_slice(name);
    key.extend_from_slice(&KEY_SUFFIX);
    key
}

/// The digest of `packet` with the 32 bytes at `offset` left out.
fn packet_digest(
    packet: &[u8; HANDSHAKE_PACKET_LEN],
    offset: usize,
    key: &[u8],
) -> [u8; DIGEST_LEN] {
    hmac_sha256(key, &[&packet[..offset], &packet[offset + DIGEST_LEN..]])
}

/// Finds a valid digest made with `key`, trying both schemes.
fn find_digest(
    packet: &[u8; HANDSHAKE_PACKET_LEN],
    key: &[u8],
) -> Option<(DigestScheme, [u8; DIGEST_LEN])> {
    [DigestScheme::Scheme0, DigestScheme::Scheme1]
        .into_iter()
        .find_map(|scheme| {
            let offset = scheme.digest_offset(packet);
            let expected = packet_digest(packet, offset, key);
            (packet[offset..offset + DIGEST_LEN] == expected).then_some((scheme, expected))
        })
}

/// Fills `packet` as a C1/S1: time, version, `random`, and (when a scheme is
/// given) the digest made with `key`, which it returns.
fn build_packet1(
    packet: &mut [u8; HANDSHAKE_PACKET_LEN],
    random: &[u8; HANDSHAKE_PACKET_LEN - 8],
    epoch_ms: u32,
    version: [u8; 4],
    signing: Option<(DigestScheme, &[u8])>,
) -> Option<[u8; DIGEST_LEN]> {
    packet[8..].copy_from_slice(random);
    packet[..4].copy_from_slice(&epoch_ms.to_be_bytes());
    packet[4..8].copy_from_slice(&version);
    let (scheme, key) = signing?;
    let offset = scheme.digest_offset(packet);
    let digest = packet_digest(packet, offset, key);
    packet[offset..offset + DIGEST_LEN].copy_from_slice(&digest);
    Some(digest)
}

/// Fills `packet` as a complex S2/C2: `random` signed with a key derived
/// from the peer's C1/S1 digest.
fn build_packet2(
    packet: &mut [u8; HANDSHAKE_PACKET_LEN],
    random: &[u8; SIGNED_LEN],
    signer_name: &[u8],
    peer_digest: &[u8; DIGEST_LEN],
) {
    packet[..SIGNED_LEN].copy_from_slice(random);
    let key = hmac_sha256(&full_key(signer_name), &[peer_digest]);
    let signature = hmac_sha256(&key, &[&packet[..SIGNED_LEN]]);
    packet[SIGNED_LEN..].copy_from_slice(&signature);
}

/// Fills `packet2` as the answer to the peer's C1/S1: signed with `signer_name`'s
/// key when the peer signed `peer_packet1` with `peer_name`'s key (a complex
/// handshake, whose scheme is returned), else an echo of it (a simple handshake).
fn answer_packet1(
    peer_packet1: &[u8; HANDSHAKE_PACKET_LEN],
    peer_name: &[u8],
    signer_name: &[u8],
    random: &[u8; SIGNED_LEN],
    packet2: &mut [u8; HANDSHAKE_PACKET_LEN],
) -> Option<DigestScheme> {
    match find_digest(peer_packet1, peer_name) {
        Some((scheme, peer_digest)) => {
            build_packet2(packet2, random, signer_name, &peer_digest);
            Some(scheme)
        }
        None => {
            packet2.copy_from_slice(&peer_packet1[..]);
            None
        }
    }
}

/// Whether `packet` is a complex S2/C2 answering our `own_digest`.
fn packet2_signed(
    packet: &[u8; HANDSHAKE_PACKET_LEN],
    signer_name: &[u8],
    own_digest: &[u8; DIGEST_LEN],
) -> bool {
    let key = hmac_sha256(&full_key(signer_name), &[own_digest]);
    hmac_sha256(&key, &[&packet[..SIGNED_LEN]])[..] == packet[SIGNED_LEN..]
}

fn check_version(v: u8) -> Result<(), HandshakeError> {
    match v {
        RTMP_VERSION => Ok(()),
        RTMPE_VERSION => Err(HandshakeError::EncryptionNotSupported),
        other => Err(HandshakeError::UnsupportedVersion(other)),
    }
}

/// Copies as much of `input` as fits into `buf[*filled..]`; returns the count.
fn fill(buf: &mut [u8], filled: &mut usize, input: &[u8]) -> usize {
    let n = (buf.len() - *filled).min(input.len());
    buf[*filled..*filled + n].copy_from_slice(&input[..n]);
    *filled += n;
    n
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

    /// Consumes `input[*pos..]`, advancing `pos`, until a packet completes or the
    /// input runs out.
    fn read(&mut self, input: &[u8], pos: &mut usize) -> Result<PeerProgress, HandshakeError> {
        loop {
            let rest = input.get(*pos..).unwrap_or_default();
            match self.stage {
                PeerStage::Version => {
                    let Some(&v) = rest.first() else {
                        return Ok(PeerProgress::NeedInput);
                    };
                    check_version(v)?;
                    *pos += 1;
                    self.stage = PeerStage::Packet1;
                }
                PeerStage::Packet1 => {
                    *pos += fill(&mut self.packet1[..], &mut self.packet1_len, rest);
                    if self.packet1_len < HANDSHAKE_PACKET_LEN {
                        return Ok(PeerProgress::NeedInput);
                    }
                    self.stage = PeerStage::Packet2;
                    return Ok(PeerProgress::Packet1);
                }
                PeerStage::Packet2 => {
                    *pos += match &mut self.packet2 {
                        Some(packet2) => fill(&mut packet2[..], &mut self.packet2_len, rest),
                        None => {
                            let n = (HANDSHAKE_PACKET_LEN - self.packet2_len).min(rest.len());
                            self.packet2_len += n;
                            n
                        }
                    };
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
        let mut pos = 0;
        while self.client.read(input, &mut pos)? == PeerProgress::Packet1 {
            self.answer(out);
        }
        Ok(HandshakeStatus {
            consumed: pos,
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
        let mut pos = 0;
        loop {
            match self.server.read(input, &mut pos)? {
                PeerProgress::Packet1 => self.answer(out),
                PeerProgress::Packet2 => self.s2_signed = self.check_s2(),
                PeerProgress::NeedInput => break,
            }
        }
        Ok(HandshakeStatus {
            consumed: pos,
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn rng(seed: u64) -> SmallRng {
        SmallRng::seed_from_u64(seed)
    }

    /// Runs both sides against each other, feeding `step` bytes at a time.
    fn run_pair(
        mut client: ClientHandshake,
        mut server: ServerHandshake,
        step: usize,
    ) -> (ClientHandshake, ServerHandshake) {
        let mut to_server = BytesMut::new();
        let mut to_client = BytesMut::new();
        client.handle(&[], &mut to_server).unwrap();
        let (mut c_done, mut s_done) = (false, false);
        for _ in 0..100_000 {
            if !to_server.is_empty() && !s_done {
                let n = step.min(to_server.len());
                let st = server.handle(&to_server[..n], &mut to_client).unwrap();
                assert_eq!(st.consumed, n);
                let _ = to_server.split_to(n);
                s_done = st.done;
            }
            if !to_client.is_empty() && !c_done {
                let n = step.min(to_client.len());
                let st = client.handle(&to_client[..n], &mut to_server).unwrap();
                assert_eq!(st.consumed, n);
                let _ = to_client.split_to(n);
                c_done = st.done;
            }
            if c_done && s_done {
                break;
            }
        }
        assert!(c_done && s_done, "handshake did not finish");
        assert!(to_server.is_empty() && to_client.is_empty());
        (client, server)
    }

    #[test]
    fn complex_handshake_scheme_0_in_memory() {
        let client = ClientHandshake::with_scheme(&mut rng(1), 10, DigestScheme::Scheme0);
        let server = ServerHandshake::new(&mut rng(2), 20);
        let (client, server) = run_pair(client, server, usize::MAX);
        assert_eq!(server.complex_scheme(), Some(DigestScheme::Scheme0));
        assert!(client.server_complex());
        assert!(client.server_signed_s2(), "S2 signed off C1's digest");
    }

    #[test]
    fn complex_handshake_scheme_1_in_memory() {
        let client = ClientHandshake::with_scheme(&mut rng(3), 10, DigestScheme::Scheme1);
        let server = ServerHandshake::new(&mut rng(4), 20);
        let (client, server) = run_pair(client, server, 1000);
        assert_eq!(server.complex_scheme(), Some(DigestScheme::Scheme1));
        assert!(client.server_complex());
        assert!(client.server_signed_s2());
        // S1's digest is in the client's scheme too.
        assert_eq!(
            find_digest(&client.server.packet1, SERVER_NAME).map(|d| d.0),
            Some(DigestScheme::Scheme1)
        );
    }

    #[test]
    fn byte_by_byte_feeding_works() {
        let client = ClientHandshake::new(&mut rng(5), 0);
        let server = ServerHandshake::new(&mut rng(6), 0);
        let (client, server) = run_pair(client, server, 1);
        assert!(client.server_complex());
        assert!(server.complex_scheme().is_some());
    }

    #[test]
    fn simple_c1_gets_echoed_in_s2() {
        let mut server = ServerHandshake::new(&mut rng(7), 99);
        let mut c0c1 = vec![3u8];
        let mut c1 = [0u8; HANDSHAKE_PACKET_LEN];
        rng(8).fill_bytes(&mut c1[8..]);
        c0c1.extend_from_slice(&c1);
        let mut out = BytesMut::new();
        let st = server.handle(&c0c1, &mut out).unwrap();
        assert_eq!(
            st,
            HandshakeStatus {
                consumed: 1537,
                done: false
            }
        );
        assert_eq!(out.len(), 1 + 2 * HANDSHAKE_PACKET_LEN);
        assert_eq!(out[0], 3);
        assert_eq!(&out[1..5], &99u32.to_be_bytes());
        assert_eq!(&out[1 + HANDSHAKE_PACKET_LEN..], &c1[..]);
        assert_eq!(server.complex_scheme(), None);
    }

    #[test]
    fn client_accepts_a_simple_server() {
        let mut client = ClientHandshake::new(&mut rng(9), 0);
        let mut c0c1 = BytesMut::new();
        client.handle(&[], &mut c0c1).unwrap();
        // A simple server: S1 unsigned, S2 echoes C1.
        let mut s = vec![3u8];
        let mut s1 = [0u8; HANDSHAKE_PACKET_LEN];
        rng(10).fill_bytes(&mut s1);
        s.extend_from_slice(&s1);
        s.extend_from_slice(&c0c1[1..]);
        let mut c2 = BytesMut::new();
        let st = client.handle(&s, &mut c2).unwrap();
        assert_eq!(
            st,
            HandshakeStatus {
                consumed: s.len(),
                done: true
            }
        );
        assert!(!client.server_complex());
        assert_eq!(&c2[..], &s1[..], "C2 echoes S1");
    }

    #[test]
    fn bytes_after_c2_are_left_for_the_chunk_layer() {
        let mut client = ClientHandshake::new(&mut rng(11), 0);
        let mut server = ServerHandshake::new(&mut rng(12), 0);
        let mut c0c1 = BytesMut::new();
        client.handle(&[], &mut c0c1).unwrap();
        let mut s012 = BytesMut::new();
        server.handle(&c0c1, &mut s012).unwrap();
        let mut c2 = BytesMut::new();
        client.handle(&s012, &mut c2).unwrap();
        c2.extend_from_slice(&[0x02, 0, 0, 0]);
        let st = server.handle(&c2, &mut BytesMut::new()).unwrap();
        assert_eq!(
            st,
            HandshakeStatus {
                consumed: HANDSHAKE_PACKET_LEN,
                done: true
            }
        );
        let st = server.handle(&[1, 2, 3], &mut BytesMut::new()).unwrap();
        assert_eq!(
            st,
            HandshakeStatus {
                consumed: 0,
                done: true
            }
        );
    }

    #[test]
    fn scheme_1_c1_from_a_hand_built_packet_is_recognised() {
        let mut c1 = [0u8; HANDSHAKE_PACKET_LEN];
        rng(13).fill_bytes(&mut c1);
        let offset = DigestScheme::Scheme1.digest_offset(&c1);
        assert!(offset >= 776 && offset + DIGEST_LEN <= HANDSHAKE_PACKET_LEN);
        let key = &PLAYER_NAME[..];
        let digest = packet_digest(&c1, offset, key);
        c1[offset..offset + DIGEST_LEN].copy_from_slice(&digest);
        assert_eq!(find_digest(&c1, key), Some((DigestScheme::Scheme1, digest)));
        let mut server = ServerHandshake::new(&mut rng(14), 0);
        let mut input = vec![3u8];
        input.extend_from_slice(&c1);
        server.handle(&input, &mut BytesMut::new()).unwrap();
        assert_eq!(server.complex_scheme(), Some(DigestScheme::Scheme1));
    }

    #[test]
    fn bad_versions_are_typed_errors() {
        let mut server = ServerHandshake::new(&mut rng(15), 0);
        assert_eq!(
            server.handle(b"GET / HTTP/1.1", &mut BytesMut::new()),
            Err(HandshakeError::UnsupportedVersion(b'G'))
        );
        let mut server = ServerHandshake::new(&mut rng(15), 0);
        assert_eq!(
            server.handle(&[6], &mut BytesMut::new()),
            Err(HandshakeError::EncryptionNotSupported)
        );
        let mut client = ClientHandshake::new(&mut rng(16), 0);
        client.handle(&[], &mut BytesMut::new()).unwrap();
        assert_eq!(
            client.handle(&[0x16, 3, 1], &mut BytesMut::new()),
            Err(HandshakeError::UnsupportedVersion(0x16))
        );
    }

    #[test]
    fn garbage_after_a_valid_version_is_a_simple_handshake_not_a_panic() {
        let mut server = ServerHandshake::new(&mut rng(17), 0);
        let garbage = [3u8; 1 + 2 * HANDSHAKE_PACKET_LEN + 100];
        let st = server.handle(&garbage, &mut BytesMut::new()).unwrap();
        assert_eq!(
            st,
            HandshakeStatus {
                consumed: 1 + 2 * HANDSHAKE_PACKET_LEN,
                done: true
            }
        );
        assert_eq!(server.complex_scheme(), None);
    }
}
