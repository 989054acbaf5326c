//! The chunk decoder fed arbitrary bytes, with valid Set Chunk Size messages
//! injected between pieces and limits chosen by the input.
//!
//! Input: [limits byte][split byte][ops...], where an op byte below 0xF0 feeds the
//! next (op % 64 + 1) bytes as they are, and 0xF0.. injects a Set Chunk Size on
//! csid 2 whose size comes from the next two bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::protocol::payload::HeapAllocator;
use ringcast::protocol::rtmp::chunk::{ChunkDecoder, ChunkLimits};

fuzz_target!(|data: &[u8]| {
    let [limits_byte, split, ops @ ..] = data else {
        return;
    };
    let limits = ChunkLimits {
        max_chunk_size: 1 << (u32::from(limits_byte & 0x0F) + 8),
        max_message_len: 1 << (u32::from(limits_byte >> 4) + 8),
        max_chunk_streams: usize::from(limits_byte % 7) + 1,
        max_assembling_bytes: 1 << 20,
    };
    let mut dec = ChunkDecoder::new(limits);
    let mut fed = 0u64;
    let mut i = 0;
    let mut stream = Vec::new();
    while let Some(&op) = ops.get(i) {
        i += 1;
        if op >= 0xF0 {
            let size = ops
                .get(i..i + 2)
                .map_or(128, |b| u32::from(u16::from_be_bytes([b[0], b[1]])));
            i += 2;
            stream.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0]);
            stream.extend_from_slice(&size.to_be_bytes());
        } else {
            let end = (i + usize::from(op % 64) + 1).min(ops.len());
            stream.extend_from_slice(&ops[i..end]);
            i = end;
        }
    }
    let step = usize::from(*split) + 1;
    let mut out = Vec::new();
    for piece in stream.chunks(step) {
        match dec.decode_all(piece, &mut HeapAllocator, &mut out) {
            Ok(_) => fed += piece.len() as u64,
            Err(_) => return,
        }
        for m in out.drain(..) {
            assert!(m.payload.len() <= limits.max_message_len as usize);
            assert!((2..=65599).contains(&m.csid));
        }
        assert_eq!(dec.bytes_received(), fed);
        assert!(dec.chunk_size() >= 1 && dec.chunk_size() <= limits.max_chunk_size);
    }
});
