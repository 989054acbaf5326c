//! Decoder behaviour on hand-built chunk streams, and the invalid-input fixtures
//! under `tests/data/rtmp/`.

use bytes::Bytes;

use super::*;
use crate::protocol::payload::HeapAllocator;
use crate::protocol::rtmp::message::RtmpMessage;

fn decode(bytes: &[u8]) -> Result<Vec<RtmpMessage>, ChunkError> {
    decode_with(bytes, ChunkLimits::default())
}

fn decode_with(bytes: &[u8], limits: ChunkLimits) -> Result<Vec<RtmpMessage>, ChunkError> {
    let mut dec = ChunkDecoder::new(limits);
    let mut out = Vec::new();
    dec.decode_all(bytes, &mut HeapAllocator, &mut out)?;
    Ok(out)
}

/// Feeds one byte at a time: every header and body boundary gets cut.
fn decode_bytewise(bytes: &[u8]) -> Vec<RtmpMessage> {
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut out = Vec::new();
    for b in bytes.chunks(1) {
        dec.decode_all(b, &mut HeapAllocator, &mut out).unwrap();
    }
    assert_eq!(dec.bytes_received(), bytes.len() as u64);
    out
}

/// The bytes of invalid-input fixture `name` (`tests/data/rtmp/<name>.bin`).
macro_rules! fixture {
    ($name:literal) => {
        &include_bytes!(concat!("../../../../tests/data/rtmp/", $name, ".bin"))[..]
    };
}

/// Decoding `wire` whole and byte by byte both yield `want`.
fn assert_decodes_to(wire: &[u8], want: &[RtmpMessage]) {
    assert_eq!(decode(wire).unwrap(), want);
    assert_eq!(decode_bytewise(wire), want);
}

fn u24(v: u32) -> [u8; 3] {
    let b = v.to_be_bytes();
    [b[1], b[2], b[3]]
}

fn fmt0(csid: u8, ts: u32, len: u32, type_id: u8, stream_id: u32) -> Vec<u8> {
    let mut v = vec![csid];
    v.extend_from_slice(&u24(ts));
    v.extend_from_slice(&u24(len));
    v.push(type_id);
    v.extend_from_slice(&stream_id.to_le_bytes());
    v
}

fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) -> RtmpMessage {
    RtmpMessage {
        csid,
        timestamp,
        type_id,
        stream_id,
        payload: Bytes::copy_from_slice(payload),
    }
}

#[test]
fn fmt_0_1_2_3_accumulate_timestamps() {
    let mut w = fmt0(4, 1000, 3, 8, 1);
    w.extend_from_slice(b"abc");
    w.push(0x44); // fmt 1: delta 20, length 2, type 9
    w.extend_from_slice(&u24(20));
    w.extend_from_slice(&u24(2));
    w.push(9);
    w.extend_from_slice(b"de");
    w.push(0x84); // fmt 2: delta 33
    w.extend_from_slice(&u24(33));
    w.extend_from_slice(b"fg");
    w.push(0xC4); // fmt 3: a new message, same delta again
    w.extend_from_slice(b"hi");
    let want = vec![
        msg(4, 1000, 8, 1, b"abc"),
        msg(4, 1020, 9, 1, b"de"),
        msg(4, 1053, 9, 1, b"fg"),
        msg(4, 1086, 9, 1, b"hi"),
    ];
    assert_decodes_to(&w, &want);
}

#[test]
fn fmt3_after_fmt0_adds_the_fmt0_timestamp_like_ffmpeg() {
    let mut w = fmt0(5, 40, 1, 8, 1);
    w.push(b'x');
    w.push(0xC5);
    w.push(b'y');
    assert_eq!(
        decode(&w).unwrap(),
        vec![msg(5, 40, 8, 1, b"x"), msg(5, 80, 8, 1, b"y")]
    );
}

#[test]
fn two_and_three_byte_basic_headers() {
    // csid 0 in the first byte: 2-byte form, csid = 64 + next byte.
    let mut w = vec![0x00, 200];
    w.extend_from_slice(&fmt0(0, 7, 1, 8, 1)[1..]);
    w.push(b'a');
    // csid 1: 3-byte form, csid = 64 + lo + 256 * hi.
    w.extend_from_slice(&[0x01, 0x10, 0x02]);
    w.extend_from_slice(&fmt0(0, 8, 1, 9, 1)[1..]);
    w.push(b'b');
    // Continuation of a multi-chunk message on a 3-byte-form csid.
    w.extend_from_slice(&[0x01, 0xFF, 0xFF]);
    w.extend_from_slice(&fmt0(0, 9, 130, 9, 1)[1..]);
    w.extend_from_slice(&[b'c'; 128]);
    w.extend_from_slice(&[0xC1, 0xFF, 0xFF]);
    w.extend_from_slice(&[b'c'; 2]);
    let want = vec![
        msg(264, 7, 8, 1, b"a"),
        msg(64 + 0x0210, 8, 9, 1, b"b"),
        msg(65599, 9, 9, 1, &[b'c'; 130]),
    ];
    assert_decodes_to(&w, &want);
}

/// A 200-byte video message on csid 6 at extended timestamp `ts`, in a 128-byte
/// chunk of 1s and a fmt 3 continuation of 72 2s, which repeats the extended
/// timestamp only when `repeat_in_continuation`.
fn extended_timestamp_message(ts: u32, repeat_in_continuation: bool) -> (Vec<u8>, RtmpMessage) {
    let mut w = fmt0(6, 0xFF_FFFF, 200, 9, 1);
    w.extend_from_slice(&ts.to_be_bytes());
    w.extend_from_slice(&[1; 128]);
    w.push(0xC6);
    if repeat_in_continuation {
        w.extend_from_slice(&ts.to_be_bytes());
    }
    w.extend_from_slice(&[2; 72]);
    let payload = [[1; 128].as_slice(), &[2; 72]].concat();
    (w, msg(6, ts, 9, 1, &payload))
}

#[test]
fn extended_timestamp_repeated_in_fmt3_continuations() {
    let (w, want) = extended_timestamp_message(0x0123_4567, true);
    assert_decodes_to(&w, &[want]);
}

#[test]
fn extended_timestamp_not_repeated_by_the_peer_is_tolerated() {
    let (w, want) = extended_timestamp_message(0x0123_4567, false);
    assert_decodes_to(&w, &[want]);
}

#[test]
fn extended_delta_on_fmt1_and_fmt3_new_message() {
    let mut w = fmt0(7, 10, 1, 8, 1);
    w.push(b'a');
    w.push(0x47); // fmt 1 with an extended delta
    w.extend_from_slice(&u24(0xFF_FFFF));
    w.extend_from_slice(&u24(1));
    w.push(8);
    w.extend_from_slice(&0x0100_0000u32.to_be_bytes());
    w.push(b'b');
    w.push(0xC7); // fmt 3 new message: the extended delta is repeated and applies again
    w.extend_from_slice(&0x0100_0000u32.to_be_bytes());
    w.push(b'c');
    let want = vec![
        msg(7, 10, 8, 1, b"a"),
        msg(7, 0x0100_000A, 8, 1, b"b"),
        msg(7, 0x0200_000A, 8, 1, b"c"),
    ];
    assert_decodes_to(&w, &want);
}

#[test]
fn interleaved_chunk_streams() {
    // Audio on csid 4 and video on csid 6, chunks alternating.
    let mut w = fmt0(6, 0, 300, 9, 1);
    w.extend_from_slice(&[9; 128]);
    w.extend_from_slice(&fmt0(4, 0, 130, 8, 1));
    w.extend_from_slice(&[8; 128]);
    w.push(0xC6);
    w.extend_from_slice(&[9; 128]);
    w.push(0xC4);
    w.extend_from_slice(&[8; 2]);
    w.push(0xC6);
    w.extend_from_slice(&[9; 44]);
    let want = vec![msg(4, 0, 8, 1, &[8; 130]), msg(6, 0, 9, 1, &[9; 300])];
    assert_decodes_to(&w, &want);
}

#[test]
fn set_chunk_size_applies_to_the_next_chunk() {
    let mut w = fmt0(2, 0, 4, 1, 0);
    w.extend_from_slice(&4096u32.to_be_bytes());
    w.extend_from_slice(&fmt0(6, 0, 3000, 9, 1));
    w.extend_from_slice(&[5; 3000]);
    let got = decode(&w).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1], msg(6, 0, 9, 1, &[5; 3000]));
    assert_eq!(decode_bytewise(&w), got);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    dec.decode_all(&w, &mut HeapAllocator, &mut Vec::new())
        .unwrap();
    assert_eq!(dec.chunk_size(), 4096);
}

#[test]
fn abort_discards_the_partial_message() {
    let mut w = fmt0(6, 0, 300, 9, 1);
    w.extend_from_slice(&[9; 128]);
    w.extend_from_slice(&fmt0(2, 0, 4, 2, 0));
    w.extend_from_slice(&6u32.to_be_bytes());
    // After the abort, csid 6 may start a new message with a full header.
    w.extend_from_slice(&fmt0(6, 5, 2, 9, 1));
    w.extend_from_slice(b"ok");
    let got = decode(&w).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].type_id, 2, "the abort is still returned");
    assert_eq!(got[1], msg(6, 5, 9, 1, b"ok"));
}

#[test]
fn empty_messages_complete_at_once() {
    let w = fmt0(3, 0, 0, 20, 0);
    assert_eq!(decode(&w).unwrap(), vec![msg(3, 0, 20, 0, b"")]);
}

#[test]
fn decode_stops_after_each_message_and_counts_bytes() {
    let mut w = fmt0(4, 0, 1, 8, 1);
    w.push(1);
    let first_len = w.len();
    w.extend_from_slice(&fmt0(4, 0, 1, 8, 1)[..5]);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let d = dec.decode(&w, &mut HeapAllocator).unwrap();
    assert_eq!(d.consumed, first_len);
    assert!(d.message.is_some());
    let d = dec.decode(&w[first_len..], &mut HeapAllocator).unwrap();
    assert_eq!(
        d,
        Decoded {
            consumed: 5,
            message: None
        }
    );
    assert_eq!(dec.bytes_received(), w.len() as u64);
}

#[test]
fn payload_buffer_comes_from_the_allocator_at_full_size() {
    struct Counting(Vec<usize>);
    impl crate::protocol::payload::PayloadAllocator for Counting {
        fn allocate(&mut self, len: usize) -> bytes::BytesMut {
            self.0.push(len);
            bytes::BytesMut::with_capacity(len)
        }
    }
    let mut w = fmt0(6, 0, 300, 9, 1);
    w.extend_from_slice(&[9; 128]);
    w.push(0xC6);
    w.extend_from_slice(&[9; 128]);
    w.push(0xC6);
    w.extend_from_slice(&[9; 44]);
    let mut alloc = Counting(Vec::new());
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut out = Vec::new();
    dec.decode_all(&w, &mut alloc, &mut out).unwrap();
    assert_eq!(alloc.0, vec![300]);
    assert_eq!(out[0].payload.len(), 300);
}

/// Each fixture that breaks one rule fails with the error naming it.
#[test]
fn fixtures_fail_with_the_error_naming_the_rule_broken() {
    let cases = [
        (fixture!("chunk_size_zero"), ChunkError::ChunkSizeZero),
        (
            fixture!("message_too_large"),
            ChunkError::MessageTooLarge {
                csid: 6,
                len: 0x50_0000,
                limit: 4 * 1024 * 1024,
            },
        ),
        (
            fixture!("fmt1_without_fmt0"),
            ChunkError::NoPriorHeader { csid: 4, fmt: 1 },
        ),
        (
            fixture!("csid0_form_fmt3_without_fmt0"),
            ChunkError::NoPriorHeader { csid: 69, fmt: 3 },
        ),
        (
            fixture!("csid1_form_fmt2_without_fmt0"),
            ChunkError::NoPriorHeader { csid: 336, fmt: 2 },
        ),
        (
            fixture!("fmt0_during_assembly"),
            ChunkError::HeaderDuringAssembly {
                csid: 4,
                fmt: 0,
                remaining: 72,
            },
        ),
        (
            fixture!("set_chunk_size_short"),
            ChunkError::ShortControlMessage { type_id: 1, len: 2 },
        ),
        (
            fixture!("assembling_too_much"),
            ChunkError::AssemblingTooMuch {
                len: 20 * 1024 * 1024,
                limit: 16 * 1024 * 1024,
            },
        ),
    ];
    for (bytes, error) in cases {
        assert_eq!(decode(bytes), Err(error));
    }
}

#[test]
fn fixture_chunk_size_2pow31_minus1() {
    let f = fixture!("chunk_size_2pow31_minus1");
    assert_eq!(
        decode(f),
        Err(ChunkError::ChunkSizeTooLarge {
            size: 0x7FFF_FFFF,
            limit: 16 * 1024 * 1024
        })
    );
    let no_cap = ChunkLimits {
        max_chunk_size: u32::MAX,
        ..ChunkLimits::default()
    };
    assert_eq!(
        decode_with(f, no_cap),
        Err(ChunkError::ChunkSizeTooLarge {
            size: 0x7FFF_FFFF,
            limit: 0x7FFF_FFFE
        }),
        "2^31-1 is refused whatever the configured cap"
    );
}

#[test]
fn fixture_too_many_chunk_streams() {
    let f = fixture!("too_many_chunk_streams");
    assert_eq!(
        decode(f),
        Err(ChunkError::TooManyChunkStreams { limit: 64 })
    );
    let roomy = ChunkLimits {
        max_chunk_streams: 65,
        ..ChunkLimits::default()
    };
    assert_eq!(decode_with(f, roomy).map(|m| m.len()), Ok(65));
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Garbage never panics, splitting never changes the outcome, and every
        /// byte fed before an error is counted.
        #[test]
        fn garbage_is_an_error_or_messages_never_a_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..2000),
            split in 1usize..64,
            streams in 1usize..8,
        ) {
            let limits = ChunkLimits {
                max_chunk_streams: streams,
                max_message_len: 4096,
                ..ChunkLimits::default()
            };
            let whole = decode_with(&bytes, limits);
            let mut dec = ChunkDecoder::new(limits);
            let mut out = Vec::new();
            let mut split_result = Ok(());
            for piece in bytes.chunks(split) {
                if let Err(e) = dec.decode_all(piece, &mut HeapAllocator, &mut out) {
                    split_result = Err(e);
                    break;
                }
            }
            match (whole, split_result) {
                (Ok(w), Ok(())) => prop_assert_eq!(&w, &out),
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "whole {:?} vs split {:?}", a, b),
            }
            for m in &out {
                prop_assert!(m.payload.len() <= 4096);
            }
        }
    }
}
