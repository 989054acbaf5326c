//! Server (and client) handshake fed arbitrary bytes at arbitrary split points.
//! Input: [split seed][bytes...]. Must never panic; consumed counts must add up.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use ringcast::protocol::rtmp::handshake::{ClientHandshake, ServerHandshake};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let step = usize::from(seed) * 13 + 1;
    let mut rng = SmallRng::seed_from_u64(u64::from(seed));

    let mut server = ServerHandshake::new(&mut rng, 0);
    let mut out = BytesMut::new();
    let mut pos = 0;
    for piece in input.chunks(step) {
        match server.handle(piece, &mut out) {
            Ok(st) => {
                assert!(st.consumed <= piece.len());
                pos += st.consumed;
                if st.done {
                    assert_eq!(out.len(), 1 + 2 * 1536);
                    break;
                }
                assert_eq!(
                    st.consumed,
                    piece.len(),
                    "an unfinished handshake takes everything"
                );
            }
            Err(_) => return,
        }
    }
    assert!(pos <= input.len());

    let mut client = ClientHandshake::new(&mut rng, 0);
    let mut out = BytesMut::new();
    for piece in input.chunks(step) {
        match client.handle(piece, &mut out) {
            Ok(st) if st.done => break,
            Ok(st) => assert_eq!(st.consumed, piece.len()),
            Err(_) => return,
        }
    }
});
