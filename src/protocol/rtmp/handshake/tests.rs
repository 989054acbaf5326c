//! The handshake against itself, simple peers and garbage.

use super::digest::{find_digest, packet_digest};
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
    let digest = packet_digest(&c1, offset, key).unwrap();
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
