//! Sans-IO streaming FLV demuxer: bytes in (any split), [`Frame`]s out.
//!
//! Used by the edge's HTTP-FLV origin pull, loadgen's HTTP-FLV viewers and the
//! `publish --source FILE.flv` mode. Tag bodies are assembled directly into
//! buffers from a [`PayloadAllocator`]; nothing else is buffered except the 15
//! bytes of a split `PreviousTagSize | tag header` block.
//!
//! PreviousTagSize is checked against the previous tag, but by default a
//! mismatch is only counted and logged: real muxers write wrong values (0,
//! or the body size without the 11-byte header) and the tag headers alone are
//! enough to frame the stream. [`FlvLimits::strict_prev_tag_size`] turns a
//! mismatch into an error for callers that prefer to detect corruption early.

use bytes::BytesMut;

use super::error::FlvError;
use super::frame::{Frame, FrameKind};
use super::tag::{
    prev_tag_size_for, FileHeader, TagHeader, FILE_HEADER_LEN, PREV_TAG_SIZE_LEN, TAG_HEADER_LEN,
    TAG_PREFIX_LEN,
};
use crate::protocol::payload::{HeapAllocator, PayloadAllocator};
use crate::protocol::reader::Reader;
use crate::protocol::writer::copy_prefix;

/// What to do with tags whose type is not audio, video or script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownTagPolicy {
    /// Skip the body (bounded by [`FlvLimits::max_tag_size`] and
    /// [`FlvLimits::max_consecutive_unknown_tags`]).
    Skip,
    /// Fail with [`FlvError::UnknownTagType`].
    Error,
}

/// Limits and strictness for [`FlvDemuxer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlvLimits {
    /// Largest tag body accepted (default 4 MiB); larger tags fail with
    /// [`FlvError::TagTooLarge`] before anything is allocated.
    pub max_tag_size: u32,
    /// Largest header DataOffset accepted (default 1 KiB); the bytes past the
    /// 9-byte header are skipped.
    pub max_header_size: u32,
    /// Unknown tag types: skipped or rejected (default skipped).
    pub unknown_tags: UnknownTagPolicy,
    /// Unknown tags allowed in a row before the input is judged not to be FLV
    /// (default 16).
    pub max_consecutive_unknown_tags: u32,
    /// Fail on a PreviousTagSize mismatch instead of counting it (default false).
    pub strict_prev_tag_size: bool,
}

impl Default for FlvLimits {
    fn default() -> Self {
        FlvLimits {
            max_tag_size: 4 * 1024 * 1024,
            max_header_size: 1024,
            unknown_tags: UnknownTagPolicy::Skip,
            max_consecutive_unknown_tags: 16,
            strict_prev_tag_size: false,
        }
    }
}

#[derive(Debug)]
enum State {
    /// Collecting the 9-byte file header.
    FileHeader {
        buf: [u8; FILE_HEADER_LEN],
        have: usize,
    },
    /// Skipping header bytes past the first 9 (DataOffset > 9).
    HeaderExtra { remaining: u32 },
    /// Collecting `PreviousTagSize | tag header`.
    Prefix {
        buf: [u8; TAG_PREFIX_LEN],
        have: usize,
    },
    /// Filling a tag body.
    Body {
        kind: FrameKind,
        timestamp: u32,
        len: usize,
        buf: BytesMut,
    },
    /// Discarding the body of an unknown tag.
    Skip { remaining: u32 },
    /// A previous call failed; the error repeats.
    Failed(FlvError),
}

/// Streaming FLV demuxer. Feed bytes with [`FlvDemuxer::decode`] in any split.
#[derive(Debug)]
pub struct FlvDemuxer<A: PayloadAllocator = HeapAllocator> {
    limits: FlvLimits,
    alloc: A,
    state: State,
    header: Option<FileHeader>,
    /// PreviousTagSize the next tag should be preceded by.
    expected_prev_tag_size: u32,
    unknown_in_a_row: u32,
    prev_tag_size_mismatches: u64,
    skipped_tags: u64,
}

impl FlvDemuxer<HeapAllocator> {
    /// A demuxer that allocates payloads on the heap.
    pub fn new(limits: FlvLimits) -> Self {
        Self::with_allocator(limits, HeapAllocator)
    }
}

impl<A: PayloadAllocator> FlvDemuxer<A> {
    /// A demuxer that takes payload buffers from `alloc`.
    pub fn with_allocator(limits: FlvLimits, alloc: A) -> Self {
        FlvDemuxer {
            limits,
            alloc,
            state: State::FileHeader {
                buf: [0; FILE_HEADER_LEN],
                have: 0,
            },
            header: None,
            expected_prev_tag_size: 0,
            unknown_in_a_row: 0,
            prev_tag_size_mismatches: 0,
            skipped_tags: 0,
        }
    }

    /// The file header, once it has been read.
    pub fn header(&self) -> Option<&FileHeader> {
        self.header.as_ref()
    }

    /// PreviousTagSize values that did not match (non-strict mode).
    pub fn prev_tag_size_mismatches(&self) -> u64 {
        self.prev_tag_size_mismatches
    }

    /// Unknown tags skipped so far.
    pub fn skipped_tags(&self) -> u64 {
        self.skipped_tags
    }

    /// Consumes bytes from the front of `input` until one frame is complete or
    /// `input` is empty, advancing `input` past what was consumed.
    ///
    /// Returns `Ok(None)` when more input is needed. After an error the demuxer
    /// stays failed and returns the same error.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Frame>, FlvError> {
        loop {
            match &mut self.state {
                State::Failed(e) => return Err(e.clone()),
                State::FileHeader { buf, have } => {
                    if !fill(buf, have, input) {
                        return Ok(None);
                    }
                    let decoded = FileHeader::decode(buf);
                    let header = self.fail_on(decoded)?;
                    let extra = header.data_offset - FILE_HEADER_LEN as u32;
                    if header.data_offset > self.limits.max_header_size.max(FILE_HEADER_LEN as u32)
                    {
                        return self.fail(FlvError::HeaderTooLarge {
                            data_offset: header.data_offset,
                            limit: self.limits.max_header_size,
                        });
                    }
                    self.header = Some(header);
                    self.state = if extra > 0 {
                        State::HeaderExtra { remaining: extra }
                    } else {
                        State::Prefix {
                            buf: [0; TAG_PREFIX_LEN],
                            have: 0,
                        }
                    };
                }
                State::HeaderExtra { remaining } | State::Skip { remaining } => {
                    let n = input.len().min(*remaining as usize);
                    *input = input.get(n..).unwrap_or_default();
                    *remaining -= n as u32;
                    if *remaining > 0 {
                        return Ok(None);
                    }
                    self.state = State::Prefix {
                        buf: [0; TAG_PREFIX_LEN],
                        have: 0,
                    };
                }
                State::Prefix { buf, have } => {
                    if !fill(buf, have, input) {
                        return Ok(None);
                    }
                    // The prefix is exactly PreviousTagSize + tag header, so both reads succeed.
                    let mut prefix = Reader::new(&buf[..]);
                    let prev = prefix.be_u32().unwrap_or_default();
                    let hdr: [u8; TAG_HEADER_LEN] = prefix.array().unwrap_or_default();
                    self.check_prev_tag_size(prev)?;
                    self.start_tag(TagHeader::decode(&hdr))?;
                }
                State::Body {
                    kind,
                    timestamp,
                    len,
                    buf,
                } => {
                    let mut r = Reader::new(input);
                    buf.extend_from_slice(r.take_up_to(*len - buf.len()));
                    *input = r.rest();
                    if buf.len() < *len {
                        return Ok(None);
                    }
                    let frame = Frame::new(*kind, *timestamp, std::mem::take(buf).freeze());
                    self.state = State::Prefix {
                        buf: [0; TAG_PREFIX_LEN],
                        have: 0,
                    };
                    return Ok(Some(frame));
                }
            }
        }
    }

    /// Decodes all of `input`, appending complete frames to `out`.
    pub fn decode_all(&mut self, mut input: &[u8], out: &mut Vec<Frame>) -> Result<(), FlvError> {
        while let Some(frame) = self.decode(&mut input)? {
            out.push(frame);
        }
        Ok(())
    }

    /// Reports whether the input so far ended cleanly: between tags (with or
    /// without the trailing PreviousTagSize), or [`FlvError::Truncated`].
    pub fn finish(&self) -> Result<(), FlvError> {
        let missing = match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::FileHeader { have, .. } => FILE_HEADER_LEN - have,
            State::HeaderExtra { remaining } | State::Skip { remaining } => *remaining as usize,
            State::Prefix { have, .. } if *have == 0 || *have == PREV_TAG_SIZE_LEN => 0,
            State::Prefix { have, .. } => TAG_PREFIX_LEN - have,
            State::Body { len, buf, .. } => len - buf.len(),
        };
        if missing == 0 {
            Ok(())
        } else {
            Err(FlvError::Truncated {
                missing: u32::try_from(missing).unwrap_or(u32::MAX),
            })
        }
    }

    fn check_prev_tag_size(&mut self, found: u32) -> Result<(), FlvError> {
        let expected = self.expected_prev_tag_size;
        if found == expected {
            return Ok(());
        }
        if self.limits.strict_prev_tag_size {
            return self.fail(FlvError::PreviousTagSizeMismatch { expected, found });
        }
        self.prev_tag_size_mismatches += 1;
        tracing::debug!(expected, found, "FLV PreviousTagSize mismatch ignored");
        Ok(())
    }

    fn start_tag(&mut self, h: TagHeader) -> Result<(), FlvError> {
        if h.data_size > self.limits.max_tag_size {
            return self.fail(FlvError::TagTooLarge {
                len: h.data_size,
                limit: self.limits.max_tag_size,
            });
        }
        if h.filter {
            return self.fail(FlvError::Encrypted {
                tag_type: h.tag_type,
            });
        }
        self.expected_prev_tag_size = prev_tag_size_for(h.data_size);
        let Some(kind) = FrameKind::from_tag_type(h.tag_type) else {
            if self.limits.unknown_tags == UnknownTagPolicy::Error {
                return self.fail(FlvError::UnknownTagType {
                    tag_type: h.tag_type,
                });
            }
            self.unknown_in_a_row += 1;
            if self.unknown_in_a_row > self.limits.max_consecutive_unknown_tags {
                return self.fail(FlvError::TooManyUnknownTags {
                    limit: self.limits.max_consecutive_unknown_tags,
                });
            }
            self.skipped_tags += 1;
            tracing::trace!(
                tag_type = h.tag_type,
                len = h.data_size,
                "skipping unknown FLV tag"
            );
            self.state = State::Skip {
                remaining: h.data_size,
            };
            return Ok(());
        };
        self.unknown_in_a_row = 0;
        let len = h.data_size as usize;
        self.state = State::Body {
            kind,
            timestamp: h.timestamp,
            len,
            buf: self.alloc.allocate(len),
        };
        Ok(())
    }

    fn fail<T>(&mut self, e: FlvError) -> Result<T, FlvError> {
        self.state = State::Failed(e.clone());
        Err(e)
    }

    fn fail_on<T>(&mut self, r: Result<T, FlvError>) -> Result<T, FlvError> {
        r.or_else(|e| self.fail(e))
    }
}

/// Copies from `input` into `buf[*have..]`; true once `buf` is full.
fn fill(buf: &mut [u8], have: &mut usize, input: &mut &[u8]) -> bool {
    let dst = buf.get_mut(*have..).unwrap_or_default();
    let mut r = Reader::new(input);
    *have += copy_prefix(dst, r.take_up_to(dst.len()));
    *input = r.rest();
    *have == buf.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::flv::tag::{encode_tag, write_file_header, FILE_HEADER_WITH_PTS0_LEN};
    use bytes::Bytes;
    use proptest::prelude::*;

    fn file_of(frames: &[Frame]) -> Vec<u8> {
        let mut head = [0u8; FILE_HEADER_WITH_PTS0_LEN];
        write_file_header(true, true, &mut head);
        let mut out = BytesMut::from(&head[..]);
        for f in frames {
            encode_tag(f, &mut out).unwrap();
        }
        out.to_vec()
    }

    fn demux_in_pieces(
        data: &[u8],
        piece: usize,
        limits: FlvLimits,
    ) -> Result<Vec<Frame>, FlvError> {
        let mut d = FlvDemuxer::new(limits);
        let mut out = Vec::new();
        for chunk in data.chunks(piece.max(1)) {
            d.decode_all(chunk, &mut out)?;
        }
        d.finish()?;
        Ok(out)
    }

    fn sample_frames() -> Vec<Frame> {
        vec![
            Frame::new(
                FrameKind::Script,
                0,
                Bytes::from_static(b"\x02\x00\x0aonMetaData\x05"),
            ),
            Frame::new(
                FrameKind::Video,
                0,
                Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64]),
            ),
            Frame::new(
                FrameKind::Audio,
                0,
                Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
            ),
            Frame::new(
                FrameKind::Video,
                40,
                Bytes::from_static(&[0x17, 1, 0, 0, 0, 9, 9, 9]),
            ),
            Frame::new(FrameKind::Audio, 0x0100_0000, Bytes::new()),
        ]
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        let frames = sample_frames();
        let data = file_of(&frames);
        assert_eq!(
            demux_in_pieces(&data, 1, FlvLimits::default()).unwrap(),
            frames
        );
        assert_eq!(
            demux_in_pieces(&data, data.len(), FlvLimits::default()).unwrap(),
            frames
        );
        let strict = FlvLimits {
            strict_prev_tag_size: true,
            ..FlvLimits::default()
        };
        assert_eq!(demux_in_pieces(&data, 7, strict).unwrap(), frames);
    }

    #[test]
    fn classifies_frames() {
        let frames = demux_in_pieces(&file_of(&sample_frames()), 3, FlvLimits::default()).unwrap();
        assert!(frames[1].sequence_header && !frames[1].keyframe);
        assert!(frames[2].sequence_header);
        assert!(frames[3].keyframe);
    }

    #[test]
    fn demuxes_ffmpeg_file() {
        let data = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/flv/avc444_aac_320x240.flv"
        ))
        .unwrap();
        let strict = FlvLimits {
            strict_prev_tag_size: true,
            ..FlvLimits::default()
        };
        let frames = demux_in_pieces(&data, 1000, strict).unwrap();
        assert_eq!(frames[0].kind, FrameKind::Script);
        assert!(frames
            .iter()
            .any(|f| f.kind == FrameKind::Video && f.sequence_header));
        assert!(frames
            .iter()
            .any(|f| f.kind == FrameKind::Audio && f.sequence_header));
        let first_coded = frames
            .iter()
            .find(|f| f.kind == FrameKind::Video && !f.sequence_header)
            .unwrap();
        assert!(first_coded.keyframe);
        assert!(frames.iter().filter(|f| f.kind == FrameKind::Video).count() >= 25);
        // Re-muxing gives back the same bytes ffmpeg wrote after its header.
        assert_eq!(
            file_of(&frames)[FILE_HEADER_WITH_PTS0_LEN..],
            data[FILE_HEADER_WITH_PTS0_LEN..]
        );
    }

    #[test]
    fn rejects_bad_signature_and_repeats_error() {
        let mut d = FlvDemuxer::new(FlvLimits::default());
        let mut input: &[u8] = b"GIF89a\x00\x00\x00\x00";
        let e = d.decode(&mut input).unwrap_err();
        assert_eq!(e, FlvError::BadSignature { found: *b"GIF" });
        assert_eq!(d.decode(&mut &b"more"[..]).unwrap_err(), e);
    }

    #[test]
    fn rejects_oversized_tag_before_allocating() {
        let mut data = file_of(&[]);
        data.extend_from_slice(&[9, 0x40, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0]);
        let e = demux_in_pieces(&data, 100, FlvLimits::default()).unwrap_err();
        assert_eq!(
            e,
            FlvError::TagTooLarge {
                len: 0x40_0001,
                limit: 4 * 1024 * 1024
            }
        );
    }

    #[test]
    fn rejects_encrypted_tag() {
        let mut data = file_of(&[]);
        data.extend_from_slice(&[0x29, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x17]);
        let e = demux_in_pieces(&data, 100, FlvLimits::default()).unwrap_err();
        assert_eq!(e, FlvError::Encrypted { tag_type: 9 });
    }

    #[test]
    fn skips_unknown_tags_within_bound() {
        let mut data = file_of(&[]);
        data.extend_from_slice(&[15, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0xEE, 0xEE, 0, 0, 0, 13]);
        let tail = file_of(&sample_frames()[..1]);
        data.extend_from_slice(&tail[FILE_HEADER_WITH_PTS0_LEN..]);
        let strict = FlvLimits {
            strict_prev_tag_size: true,
            ..FlvLimits::default()
        };
        assert_eq!(
            demux_in_pieces(&data, 5, strict).unwrap(),
            sample_frames()[..1].to_vec()
        );

        let err_policy = FlvLimits {
            unknown_tags: UnknownTagPolicy::Error,
            ..FlvLimits::default()
        };
        assert_eq!(
            demux_in_pieces(&data, 5, err_policy),
            Err(FlvError::UnknownTagType { tag_type: 15 })
        );

        let mut many = file_of(&[]);
        for _ in 0..3 {
            many.extend_from_slice(&[15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);
        }
        let tight = FlvLimits {
            max_consecutive_unknown_tags: 2,
            ..FlvLimits::default()
        };
        assert_eq!(
            demux_in_pieces(&many, 64, tight),
            Err(FlvError::TooManyUnknownTags { limit: 2 })
        );
    }

    #[test]
    fn prev_tag_size_mismatch_counted_or_rejected() {
        let mut data = file_of(&sample_frames()[..2]);
        let pts_at = FILE_HEADER_WITH_PTS0_LEN + TAG_HEADER_LEN + sample_frames()[0].payload.len();
        data[pts_at + 3] ^= 0xFF;
        let mut d = FlvDemuxer::new(FlvLimits::default());
        let mut out = Vec::new();
        d.decode_all(&data, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(d.prev_tag_size_mismatches(), 1);
        let strict = FlvLimits {
            strict_prev_tag_size: true,
            ..FlvLimits::default()
        };
        assert!(matches!(
            demux_in_pieces(&data, 64, strict),
            Err(FlvError::PreviousTagSizeMismatch { .. })
        ));
    }

    #[test]
    fn header_extra_bytes_are_skipped_and_bounded() {
        let mut data = b"FLV\x01\x05\x00\x00\x00\x0c\xAA\xBB\xCC".to_vec();
        let body = file_of(&sample_frames());
        data.extend_from_slice(&body[FILE_HEADER_LEN..]);
        assert_eq!(
            demux_in_pieces(&data, 2, FlvLimits::default()).unwrap(),
            sample_frames()
        );
        let small = FlvLimits {
            max_header_size: 10,
            ..FlvLimits::default()
        };
        assert_eq!(
            demux_in_pieces(&data, 2, small),
            Err(FlvError::HeaderTooLarge {
                data_offset: 12,
                limit: 10
            })
        );
    }

    #[test]
    fn truncation_is_reported() {
        let data = file_of(&sample_frames());
        let cut = &data[..data.len() - 6];
        assert_eq!(
            demux_in_pieces(cut, 9, FlvLimits::default()),
            Err(FlvError::Truncated { missing: 2 })
        );
        // Missing only the final PreviousTagSize is a clean end.
        assert!(demux_in_pieces(&data[..data.len() - 4], 9, FlvLimits::default()).is_ok());
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (
            prop_oneof![
                Just(FrameKind::Audio),
                Just(FrameKind::Video),
                Just(FrameKind::Script)
            ],
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(k, ts, body)| Frame::new(k, ts, Bytes::from(body)))
    }

    proptest! {
        #[test]
        fn encode_then_demux_round_trips(
            frames in proptest::collection::vec(arb_frame(), 0..20),
            splits in proptest::collection::vec(1usize..64, 1..50),
        ) {
            let data = file_of(&frames);
            let strict = FlvLimits { strict_prev_tag_size: true, ..FlvLimits::default() };
            let mut d = FlvDemuxer::new(strict);
            let mut out = Vec::new();
            let mut rest = &data[..];
            let mut i = 0;
            while !rest.is_empty() {
                let n = splits[i % splits.len()].min(rest.len());
                d.decode_all(&rest[..n], &mut out).unwrap();
                rest = &rest[n..];
                i += 1;
            }
            d.finish().unwrap();
            prop_assert_eq!(out, frames);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut input = b"FLV\x01\x05\x00\x00\x00\x09".to_vec();
            input.extend_from_slice(&data);
            let mut d = FlvDemuxer::new(FlvLimits::default());
            let mut out = Vec::new();
            let _ = d.decode_all(&input, &mut out);
            let _ = d.finish();
        }
    }
}
