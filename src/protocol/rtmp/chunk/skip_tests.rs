//! The media-skipping decoder against the assembling one: on the same input, in
//! any split, the same messages (audio/video as their headers), byte counts,
//! chunk sizes and errors.

use bytes::Bytes;
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::protocol::payload::HeapAllocator;
use crate::protocol::rtmp::message::type_id;

/// What one decoder made of a split input: everything it completed, the byte
/// count and chunk size after each piece, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Run {
    completed: Vec<Incoming>,
    progress: Vec<(u64, u32)>,
    end: Result<(), ChunkError>,
}

fn run<'a>(pieces: impl Iterator<Item = &'a [u8]>, skip: bool, limits: ChunkLimits) -> Run {
    let mut dec = ChunkDecoder::new(limits);
    dec.set_skip_media(skip);
    assert_eq!(dec.skips_media(), skip);
    let mut completed = Vec::new();
    let mut progress = Vec::new();
    for mut piece in pieces {
        loop {
            match dec.decode(piece, &mut HeapAllocator) {
                Ok(d) => {
                    piece = piece.get(d.consumed..).unwrap_or_default();
                    match d.message {
                        Some(m) => completed.push(m),
                        None if piece.is_empty() => break,
                        None => {}
                    }
                }
                Err(e) => {
                    return Run {
                        completed,
                        progress,
                        end: Err(e),
                    }
                }
            }
        }
        progress.push((dec.bytes_received(), dec.chunk_size()));
    }
    Run {
        completed,
        progress,
        end: Ok(()),
    }
}

/// What the skipping decoder must make of what the assembling one completed:
/// non-empty audio and video become their headers, the rest stays.
fn skimmed(assembled: Run) -> Run {
    let completed = assembled
        .completed
        .into_iter()
        .map(|i| match i {
            Incoming::Message(m)
                if matches!(m.type_id, type_id::AUDIO | type_id::VIDEO)
                    && !m.payload.is_empty() =>
            {
                Incoming::Skipped(SkippedMessage {
                    csid: m.csid,
                    timestamp: m.timestamp,
                    type_id: m.type_id,
                    stream_id: m.stream_id,
                    len: m.payload.len() as u32,
                })
            }
            other => other,
        })
        .collect();
    Run {
        completed,
        ..assembled
    }
}

/// Both decoders on the same pieces agree; returns the assembling one's run.
fn assert_same(pieces: &[&[u8]], limits: ChunkLimits) -> Run {
    let assembled = run(pieces.iter().copied(), false, limits);
    let skipped = run(pieces.iter().copied(), true, limits);
    assert_eq!(skipped, skimmed(assembled.clone()));
    assembled
}

/// Writes a chunk stream by hand, chunk by chunk, so messages on different
/// chunk streams can interleave the way the spec allows.
struct Wire {
    bytes: Vec<u8>,
    chunk_size: usize,
}

/// A message being sent: its first chunk's header, and what is left.
struct Outgoing {
    csid: u8,
    /// The extended timestamp its fmt 3 continuations repeat, if it has one.
    extended: Option<u32>,
    rest: Vec<u8>,
    first: Option<Vec<u8>>,
}

impl Wire {
    fn new() -> Self {
        Wire {
            bytes: Vec::new(),
            chunk_size: 128,
        }
    }

    /// A message with header format `fmt` (fields beyond it are left out).
    fn message(
        csid: u8,
        fmt: u8,
        time: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
    ) -> Outgoing {
        let mut h = vec![(fmt << 6) | csid];
        let extended = time >= 0xFF_FFFF;
        if fmt <= 2 {
            let t = time.min(0xFF_FFFF).to_be_bytes();
            h.extend_from_slice(&t[1..]);
        }
        if fmt <= 1 {
            let l = (payload.len() as u32).to_be_bytes();
            h.extend_from_slice(&l[1..]);
            h.push(type_id);
        }
        if fmt == 0 {
            h.extend_from_slice(&stream_id.to_le_bytes());
        }
        if extended {
            h.extend_from_slice(&time.to_be_bytes());
        }
        Outgoing {
            csid,
            extended: extended.then_some(time),
            rest: payload.to_vec(),
            first: Some(h),
        }
    }

    /// Sends the next chunk of `m`; false once it is all sent.
    fn chunk(&mut self, m: &mut Outgoing) -> bool {
        if m.first.is_none() && m.rest.is_empty() {
            return false;
        }
        match m.first.take() {
            Some(h) => self.bytes.extend_from_slice(&h),
            None => {
                self.bytes.push(0xC0 | m.csid);
                if let Some(t) = m.extended {
                    self.bytes.extend_from_slice(&t.to_be_bytes());
                }
            }
        }
        let n = m.rest.len().min(self.chunk_size);
        self.bytes.extend(m.rest.drain(..n));
        true
    }

    /// Sends `m` whole.
    fn send(&mut self, mut m: Outgoing) {
        while self.chunk(&mut m) {}
    }

    /// Sends all of `msgs` with their chunks taking turns.
    fn interleave(&mut self, mut msgs: Vec<Outgoing>) {
        while msgs.iter_mut().fold(false, |any, m| self.chunk(m) | any) {}
    }

    fn set_chunk_size(&mut self, size: u32) {
        self.send(Wire::message(2, 0, 0, 1, 0, &size.to_be_bytes()));
        self.chunk_size = size as usize;
    }
}

fn payload(rng: &mut SmallRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.gen()).collect()
}

/// A play session's worth of server output, after the handshake: control
/// messages, commands, metadata, then audio (csid 4) and video (csid 6) whose
/// chunks interleave, with every header format, chunk size changes between
/// them, an extended timestamp, an abort and an empty message.
fn realistic_stream(seed: u64, frames: usize) -> Vec<u8> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut w = Wire::new();
    w.send(Wire::message(2, 0, 0, 5, 0, &2_500_000u32.to_be_bytes()));
    w.send(Wire::message(2, 0, 0, 6, 0, &[0, 0x26, 0x25, 0xA0, 2]));
    w.set_chunk_size(60);
    w.send(Wire::message(3, 0, 0, 20, 0, &payload(&mut rng, 190)));
    w.send(Wire::message(2, 0, 0, 4, 0, &[0, 0, 0, 0, 0, 1]));
    w.send(Wire::message(5, 0, 0, 20, 1, &payload(&mut rng, 130)));
    w.send(Wire::message(5, 1, 0, 18, 1, &payload(&mut rng, 90)));
    let (mut ta, mut tv) = (0u32, 0u32);
    let mut started = false;
    for i in 0..frames {
        match i % 7 {
            3 => w.set_chunk_size([1, 37, 128, 500, 4096][rng.gen_range(0..5)]),
            5 => w.send(Wire::message(2, 0, 0, 4, 0, &[0, 6, 0, 0, 0, 7])),
            _ => {}
        }
        let alen = rng.gen_range(1..300);
        let vlen = if i % 11 == 10 {
            0
        } else {
            rng.gen_range(1..2500)
        };
        let (afmt, vfmt) = if started { (1, 1) } else { (0, 0) };
        started = true;
        ta += 23;
        tv += 33;
        let audio = Wire::message(
            4,
            afmt,
            if afmt == 0 { ta } else { 23 },
            8,
            1,
            &payload(&mut rng, alen),
        );
        let video = Wire::message(
            6,
            vfmt,
            if vfmt == 0 { tv } else { 33 },
            9,
            1,
            &payload(&mut rng, vlen),
        );
        w.interleave(vec![video, audio]);
        if i % 5 == 2 {
            // Same length and delta again: fmt 3 starts a new message.
            let vid = payload(&mut rng, vlen);
            let mut again = Wire::message(6, 3, 0, 9, 1, &vid);
            again.first = Some(vec![0xC6]);
            w.send(again);
            tv += 33;
            // Same length, new delta: fmt 2.
            w.send(Wire::message(6, 2, 40, 9, 1, &payload(&mut rng, vlen)));
            tv += 40;
        }
    }
    // Half a video message, then the server aborts it and starts over.
    let mut half = Wire::message(6, 0, tv, 9, 1, &payload(&mut rng, 3 * w.chunk_size + 1));
    w.chunk(&mut half);
    w.send(Wire::message(2, 0, 0, 2, 0, &6u32.to_be_bytes()));
    w.send(Wire::message(6, 0, tv, 9, 1, &payload(&mut rng, 700)));
    // A timestamp past 24 bits: every chunk carries the extended field.
    w.interleave(vec![
        Wire::message(6, 0, 0x0100_0000, 9, 1, &payload(&mut rng, 900)),
        Wire::message(4, 0, 0x0100_0005, 8, 1, &payload(&mut rng, 300)),
    ]);
    w.send(Wire::message(
        5,
        0,
        0x0100_0010,
        20,
        1,
        &payload(&mut rng, 40),
    ));
    w.bytes
}

#[test]
fn the_realistic_stream_has_what_it_claims() {
    let wire = realistic_stream(1, 24);
    let assembled = assert_same(&[&wire], ChunkLimits::default());
    assert_eq!(assembled.end, Ok(()));
    let count = |t: u8| {
        assembled
            .completed
            .iter()
            .filter(|i| matches!(i, Incoming::Message(m) if m.type_id == t))
            .count()
    };
    assert_eq!(count(type_id::AUDIO), 24 + 1);
    assert!(count(type_id::VIDEO) > 24 + 2);
    assert_eq!(count(type_id::ABORT), 1);
    assert!(count(type_id::SET_CHUNK_SIZE) >= 4);
    let extended = assembled
        .completed
        .iter()
        .any(|i| matches!(i, Incoming::Message(m) if m.type_id == 9 && m.timestamp == 0x0100_0000));
    assert!(extended, "the extended timestamp message decodes");
}

#[test]
fn skipping_matches_assembling_at_every_split_point() {
    let wire = realistic_stream(2, 6);
    for cut in 0..=wire.len() {
        let (a, b) = wire.split_at(cut);
        let assembled = assert_same(&[a, b], ChunkLimits::default());
        assert_eq!(assembled.end, Ok(()), "cut at {cut}");
    }
    let bytewise: Vec<&[u8]> = wire.chunks(1).collect();
    assert_same(&bytewise, ChunkLimits::default());
}

#[test]
fn skipping_matches_assembling_on_random_splits() {
    let mut rng = SmallRng::seed_from_u64(3);
    for seed in 0..20 {
        let wire = realistic_stream(seed, 60);
        for _ in 0..10 {
            let mut pieces = Vec::new();
            let mut rest = &wire[..];
            while !rest.is_empty() {
                let n = rng.gen_range(1..=rest.len().min(3000));
                let (p, r) = rest.split_at(n);
                pieces.push(p);
                rest = r;
            }
            assert_eq!(assert_same(&pieces, ChunkLimits::default()).end, Ok(()));
        }
    }
}

#[test]
fn skipping_matches_assembling_on_an_ffmpeg_capture() {
    // What ffmpeg 5.1 sent when publishing (chunk size 4096, audio and video).
    let capture = include_bytes!("../../../../tests/data/rtmp/captures/ffmpeg_publish.bin");
    let wire = &capture[1 + 2 * 1536..];
    let assembled = assert_same(&[wire], ChunkLimits::default());
    assert_eq!(assembled.end, Ok(()));
    assert!(assembled.completed.len() > 50);
    let mut rng = SmallRng::seed_from_u64(4);
    for _ in 0..20 {
        let mut pieces = Vec::new();
        let mut rest = wire;
        while !rest.is_empty() {
            let n = rng.gen_range(1..=rest.len().min(1460));
            let (p, r) = rest.split_at(n);
            pieces.push(p);
            rest = r;
        }
        assert_same(&pieces, ChunkLimits::default());
    }
}

#[test]
fn a_skipped_message_allocates_nothing() {
    struct Refusing;
    impl crate::protocol::payload::PayloadAllocator for Refusing {
        fn allocate(&mut self, len: usize) -> bytes::BytesMut {
            panic!("allocated {len} bytes for a skipped payload");
        }
    }
    let mut w = Wire::new();
    w.interleave(vec![
        Wire::message(6, 0, 40, 9, 1, &[7; 1000]),
        Wire::message(4, 0, 41, 8, 1, &[8; 300]),
    ]);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    dec.set_skip_media(true);
    let mut input = &w.bytes[..];
    let mut got = Vec::new();
    loop {
        let d = dec.decode(input, &mut Refusing).unwrap();
        input = &input[d.consumed..];
        match d.message {
            Some(m) => got.push(m),
            None if input.is_empty() => break,
            None => {}
        }
    }
    let header = |csid, timestamp, type_id, len| {
        Incoming::Skipped(SkippedMessage {
            csid,
            timestamp,
            type_id,
            stream_id: 1,
            len,
        })
    };
    assert_eq!(got, vec![header(4, 41, 8, 300), header(6, 40, 9, 1000)]);
    assert_eq!(dec.bytes_received(), w.bytes.len() as u64);
}

#[test]
fn switching_applies_from_the_next_message() {
    let mut w = Wire::new();
    w.send(Wire::message(6, 0, 0, 9, 1, &[1; 300]));
    let first = w.bytes.len();
    w.send(Wire::message(6, 1, 33, 9, 1, &[2; 200]));
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    // The first message starts assembled; skipping turns on halfway through it.
    let d = dec.decode(&w.bytes[..200], &mut HeapAllocator).unwrap();
    assert_eq!((d.consumed, d.message), (200, None));
    dec.set_skip_media(true);
    let d = dec.decode(&w.bytes[200..], &mut HeapAllocator).unwrap();
    assert_eq!(d.consumed, first - 200);
    let Some(Incoming::Message(m)) = d.message else {
        panic!("{:?}", d.message);
    };
    assert_eq!(m.payload, Bytes::from(vec![1; 300]));
    let d = dec.decode(&w.bytes[first..], &mut HeapAllocator).unwrap();
    assert!(matches!(
        d.message,
        Some(Incoming::Skipped(SkippedMessage {
            len: 200,
            timestamp: 33,
            ..
        }))
    ));
}

/// The invalid-input fixtures fail the same way, skipping or not.
#[test]
fn fixtures_fail_the_same_when_skipping() {
    for name in [
        "assembling_too_much",
        "chunk_size_2pow31_minus1",
        "chunk_size_zero",
        "csid0_form_fmt3_without_fmt0",
        "csid1_form_fmt2_without_fmt0",
        "fmt0_during_assembly",
        "fmt1_without_fmt0",
        "message_too_large",
        "set_chunk_size_short",
        "too_many_chunk_streams",
    ] {
        let path = format!("{}/tests/data/rtmp/{name}.bin", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap();
        let assembled = assert_same(&[&bytes], ChunkLimits::default());
        assert!(assembled.end.is_err(), "{name}");
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_same(&bytewise, ChunkLimits::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Garbage, and a realistic stream with bytes flipped, give both decoders
    /// the same outcome in any split.
    #[test]
    fn garbage_fails_the_same_when_skipping(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        split in 1usize..64,
        streams in 1usize..8,
    ) {
        let limits = ChunkLimits {
            max_chunk_streams: streams,
            max_message_len: 4096,
            max_assembling_bytes: 6000,
            ..ChunkLimits::default()
        };
        let pieces: Vec<&[u8]> = bytes.chunks(split).collect();
        assert_same(&pieces, limits);
    }

    #[test]
    fn corrupted_streams_fail_the_same_when_skipping(
        seed in 0u64..1000,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        split in 1usize..600,
    ) {
        let mut wire = realistic_stream(seed, 8);
        for (at, v) in flips {
            let i = at.index(wire.len());
            wire[i] = v;
        }
        let limits = ChunkLimits {
            max_message_len: 1 << 16,
            max_assembling_bytes: 1 << 17,
            ..ChunkLimits::default()
        };
        let pieces: Vec<&[u8]> = wire.chunks(split).collect();
        assert_same(&pieces, limits);
    }
}
