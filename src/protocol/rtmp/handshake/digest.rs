//! The complex handshake's digest schemes: where C1/S1 carry their HMAC-SHA256
//! digest (schemes 0 and 1), the Flash Player / FMS keys, and how S2/C2 are
//! signed from the peer's digest. Pure functions over fixed-size packets; the
//! state machine that reads and answers packets is in the parent module.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::HANDSHAKE_PACKET_LEN;

/// Length of an HMAC-SHA256 digest.
pub(super) const DIGEST_LEN: usize = 32;
/// Length of the bytes digested around the digest itself.
pub(super) const SIGNED_LEN: usize = HANDSHAKE_PACKET_LEN - DIGEST_LEN;

/// Key half shared by both: appended to the Flash Player / FMS strings.
const KEY_SUFFIX: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
/// The Flash Player key string: clients sign C1 with it (plus [`KEY_SUFFIX`]).
pub(super) const PLAYER_NAME: &[u8; 30] = b"Genuine Adobe Flash Player 001";
/// The Flash Media Server key string: servers sign S1 with it (plus [`KEY_SUFFIX`]).
pub(super) const SERVER_NAME: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";

/// The version field this server puts in S1 (FMS 4.5.0.1; ffmpeg wants ≥ 3 in the first byte).
pub(super) const SERVER_VERSION: [u8; 4] = [4, 5, 0, 1];
/// The version field the client puts in C1 (Flash Player 9.0.124.2, as ffmpeg sends).
pub(super) const CLIENT_VERSION: [u8; 4] = [9, 0, 124, 2];

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
    /// position within the block's 728 free bytes. Always in bounds: the
    /// furthest digest (scheme 1) ends at 772 + 4 + 727 + 32 = 1535.
    pub(super) fn digest_offset(self, packet: &[u8; HANDSHAKE_PACKET_LEN]) -> usize {
        let base = match self {
            DigestScheme::Scheme0 => 8,
            DigestScheme::Scheme1 => 772,
        };
        let sum: usize = packet
            .iter()
            .skip(base)
            .take(4)
            .map(|&b| usize::from(b))
            .sum();
        base + 4 + sum % 728
    }
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

/// `packet` cut around the digest at `offset`: before, the digest, after.
/// `None` only for an offset [`DigestScheme::digest_offset`] never returns.
fn around_digest(packet: &[u8], offset: usize) -> Option<(&[u8], &[u8; DIGEST_LEN], &[u8])> {
    let (before, rest) = packet.split_at_checked(offset)?;
    let (digest, after) = rest.split_first_chunk::<DIGEST_LEN>()?;
    Some((before, digest, after))
}

/// The digest of `packet` with the 32 bytes at `offset` left out.
pub(super) fn packet_digest(
    packet: &[u8; HANDSHAKE_PACKET_LEN],
    offset: usize,
    key: &[u8],
) -> Option<[u8; DIGEST_LEN]> {
    let (before, _, after) = around_digest(packet, offset)?;
    Some(hmac_sha256(key, &[before, after]))
}

/// Finds a valid digest made with `key`, trying both schemes.
pub(super) fn find_digest(
    packet: &[u8; HANDSHAKE_PACKET_LEN],
    key: &[u8],
) -> Option<(DigestScheme, [u8; DIGEST_LEN])> {
    [DigestScheme::Scheme0, DigestScheme::Scheme1]
        .into_iter()
        .find_map(|scheme| {
            let (before, found, after) = around_digest(packet, scheme.digest_offset(packet))?;
            let expected = hmac_sha256(key, &[before, after]);
            (*found == expected).then_some((scheme, expected))
        })
}

/// Fills `packet` as a C1/S1: time, version, `random`, and (when a scheme is
/// given) the digest made with `key`, which it returns.
pub(super) fn build_packet1(
    packet: &mut [u8; HANDSHAKE_PACKET_LEN],
    random: &[u8; HANDSHAKE_PACKET_LEN - 8],
    epoch_ms: u32,
    version: [u8; 4],
    signing: Option<(DigestScheme, &[u8])>,
) -> Option<[u8; DIGEST_LEN]> {
    let content = epoch_ms
        .to_be_bytes()
        .into_iter()
        .chain(version)
        .chain(random.iter().copied());
    for (dst, src) in packet.iter_mut().zip(content) {
        *dst = src;
    }
    let (scheme, key) = signing?;
    let offset = scheme.digest_offset(packet);
    let digest = packet_digest(packet, offset, key)?;
    packet
        .get_mut(offset..offset + DIGEST_LEN)?
        .copy_from_slice(&digest);
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
    let key = hmac_sha256(&full_key(signer_name), &[peer_digest]);
    let signature = hmac_sha256(&key, &[random]);
    for (dst, src) in packet.iter_mut().zip(random.iter().chain(&signature)) {
        *dst = *src;
    }
}

/// Fills `packet2` as the answer to the peer's C1/S1: signed with `signer_name`'s
/// key when the peer signed `peer_packet1` with `peer_name`'s key (a complex
/// handshake, whose scheme is returned), else an echo of it (a simple handshake).
pub(super) fn answer_packet1(
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
            *packet2 = *peer_packet1;
            None
        }
    }
}

/// Whether `packet` is a complex S2/C2 answering our `own_digest`.
pub(super) fn packet2_signed(
    packet: &[u8; HANDSHAKE_PACKET_LEN],
    signer_name: &[u8],
    own_digest: &[u8; DIGEST_LEN],
) -> bool {
    let Some((signed, signature)) = packet.split_last_chunk::<DIGEST_LEN>() else {
        return false;
    };
    let key = hmac_sha256(&full_key(signer_name), &[own_digest]);
    hmac_sha256(&key, &[signed]) == *signature
}
