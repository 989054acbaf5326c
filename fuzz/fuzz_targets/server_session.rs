//! Arbitrary bytes into a ServerSession after a valid (simple) handshake. The first
//! input byte picks how publish/play requests are answered; the rest is the chunk
//! stream. Errors are fine; panics and unbounded growth are not.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use ringcast::protocol::rtmp::handshake::HANDSHAKE_PACKET_LEN;
use ringcast::protocol::rtmp::session::server::{
    PlayRejection, PublishRejection, ServerEvent, ServerSession, ServerSessionConfig,
};

fuzz_target!(|input: &[u8]| {
    let Some((&policy, stream)) = input.split_first() else {
        return;
    };
    let mut session = ServerSession::new(
        ServerSessionConfig::default(),
        &mut SmallRng::seed_from_u64(0),
        0,
    );
    let mut out = BytesMut::new();
    let mut events = Vec::new();
    // C0 (version 3), a C1 without a digest (simple handshake), then C2.
    let mut handshake = vec![3u8];
    handshake.resize(1 + 2 * HANDSHAKE_PACKET_LEN, 0);
    session
        .handle_input(&handshake, 0, &mut out, &mut events)
        .expect("valid handshake");
    // Feed in pieces whose sizes come from the policy byte, to exercise resumption.
    let piece = usize::from(policy % 64) + 1;
    for (i, chunk) in stream.chunks(piece).enumerate() {
        if session
            .handle_input(chunk, i as u64, &mut out, &mut events)
            .is_err()
        {
            return;
        }
        for ev in events.drain(..) {
            let result = match ev {
                ServerEvent::PublishRequested { stream_id, .. } if policy & 0x80 == 0 => {
                    session.accept_publish(stream_id, &mut out)
                }
                ServerEvent::PublishRequested { stream_id, .. } => {
                    session.reject_publish(stream_id, PublishRejection::BadName, "fuzz", &mut out)
                }
                ServerEvent::PlayRequested { stream_id, .. } if policy & 0x40 == 0 => session
                    .accept_play(stream_id, &mut out)
                    .and_then(|_| session.send_unpublish_notify(stream_id, &mut out)),
                ServerEvent::PlayRequested { stream_id, .. } => {
                    session.reject_play(stream_id, PlayRejection::StreamNotFound, "fuzz", &mut out)
                }
                _ => Ok(()),
            };
            result.expect("deciding a pending request succeeds");
        }
        out.clear();
    }
});
