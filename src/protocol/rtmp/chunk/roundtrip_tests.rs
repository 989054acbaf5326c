//! Encoder → decoder round trips, including the shared egress path.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::protocol::payload::HeapAllocator;
use crate::protocol::rtmp::message::{type_id, RtmpMessage};

fn decode_split(bytes: &[u8], split: usize, limits: ChunkLimits) -> Vec<RtmpMessage> {
    let mut dec = ChunkDecoder::new(limits);
    let mut out = Vec::new();
    for piece in bytes.chunks(split.max(1)) {
        dec.decode_all(piece, &mut HeapAllocator, &mut out).unwrap();
    }
    assert_eq!(dec.bytes_received(), bytes.len() as u64);
    out
}

/// Set Chunk Size on the control chunk stream, as peers send it in-band.
fn set_chunk_size(size: u32) -> RtmpMessage {
    RtmpMessage {
        csid: 2,
        timestamp: 0,
        type_id: type_id::SET_CHUNK_SIZE,
        stream_id: 0,
        payload: Bytes::copy_from_slice(&size.to_be_bytes()),
    }
}

fn message_strategy() -> impl Strategy<Value = RtmpMessage> {
    (
        prop_oneof![2u32..8, 60u32..70, 318u32..322, 65590u32..=65599],
        prop_oneof![0u32..100_000, 0xFF_FFF0u32..0x0100_0010, any::<u32>()],
        prop_oneof![Just(8u8), Just(9u8), Just(18u8), Just(20u8)],
        0u32..3,
        prop::collection::vec(any::<u8>(), 0..1200),
    )
        .prop_map(
            |(csid, timestamp, type_id, stream_id, payload)| RtmpMessage {
                csid,
                timestamp,
                type_id,
                stream_id,
                payload: Bytes::from(payload),
            },
        )
}

/// Keeps timestamps on a csid mostly increasing, so fmt 1/2/3 headers get used.
fn make_monotonic(mut msgs: Vec<RtmpMessage>) -> Vec<RtmpMessage> {
    for i in 1..msgs.len() {
        if matches!(msgs[i].timestamp % 3, 1 | 2) {
            let prev = msgs[..i]
                .iter()
                .rev()
                .find(|m| m.csid == msgs[i].csid)
                .map(|m| m.timestamp);
            if let Some(p) = prev {
                msgs[i].timestamp = p.wrapping_add(msgs[i].timestamp % 50);
            }
        }
    }
    msgs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn encode_then_decode_is_identity(
        msgs in prop::collection::vec(message_strategy(), 1..20),
        chunk_sizes in prop::collection::vec(1u32..1500, 1..4),
        split in 1usize..300,
    ) {
        let msgs = make_monotonic(msgs);
        let mut enc = ChunkEncoder::new();
        let mut wire = BytesMut::new();
        let mut expected = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            // Change the chunk size now and then, mid-stream, the way a server does.
            if i % 5 == 0 {
                let size = chunk_sizes[i / 5 % chunk_sizes.len()];
                let set = set_chunk_size(size);
                enc.encode(&set, &mut wire).unwrap();
                expected.push(set);
            }
            enc.encode(m, &mut wire).unwrap();
            expected.push(m.clone());
        }
        let whole = decode_split(&wire, wire.len(), ChunkLimits::default());
        prop_assert_eq!(&whole, &expected);
        let split_up = decode_split(&wire, split, ChunkLimits::default());
        prop_assert_eq!(&split_up, &expected);
    }

    #[test]
    fn shared_body_with_first_header_decodes_to_the_message(
        payload in prop::collection::vec(any::<u8>(), 0..5000),
        chunk_size in 1u32..5000,
        csid in prop_oneof![3u32..10, 64u32..400, 65000u32..=65599],
        timestamp in 0u32..0xFF_FFFF,
        stream_id in any::<u32>(),
    ) {
        let payload = Bytes::from(payload);
        let shared = SharedChunks::encode(&payload, chunk_size, csid).unwrap();
        prop_assert!(shared.usable_for(timestamp));
        let mut wire = BytesMut::new();
        let mut hdr = [0u8; MAX_CHUNK_HEADER_LEN];
        let n = write_first_header(csid, timestamp, shared.payload_len(), 9, stream_id, &mut hdr).unwrap();
        // The viewer's chunk size goes out first, as it would on a real connection.
        let mut enc = ChunkEncoder::new();
        let set = set_chunk_size(chunk_size);
        enc.encode(&set, &mut wire).unwrap();
        wire.extend_from_slice(&hdr[..n]);
        wire.extend_from_slice(shared.body());
        let got = decode_split(&wire, 7, ChunkLimits::default());
        let want = RtmpMessage { csid, timestamp, type_id: 9, stream_id, payload };
        prop_assert_eq!(got, vec![set, want]);
    }
}

#[test]
fn shared_body_needs_private_encode_past_extended_timestamps() {
    let payload = Bytes::from(vec![1u8; 300]);
    let shared = SharedChunks::encode(&payload, 128, 6).unwrap();
    assert!(shared.usable_for(0xFF_FFFE));
    assert!(!shared.usable_for(0xFF_FFFF));
    let small = SharedChunks::encode(&payload, 4096, 6).unwrap();
    assert!(
        small.usable_for(0xFFFF_FFFF),
        "one chunk has no continuation headers"
    );
    assert_eq!(small.body(), &payload);
}
