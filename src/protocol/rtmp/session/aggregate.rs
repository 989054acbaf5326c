//! Aggregate messages (type 22): several FLV tags in one RTMP message, which some
//! servers (FMS, Wowza) send to players and a few encoders send when publishing.

use bytes::Bytes;

use super::SessionError;
use crate::protocol::flv::frame::{Frame, FrameKind};
use crate::protocol::reader::Reader;

/// FLV tag header length (type, size, timestamp, timestamp ext, stream id).
const TAG_HEADER_LEN: usize = 11;
/// The PreviousTagSize field after each tag body.
const BACK_POINTER_LEN: usize = 4;

fn invalid(reason: &'static str) -> SessionError {
    SessionError::InvalidAggregate { reason }
}

/// Splits an aggregate message into frames, rebasing the tags' timestamps so the
/// first one equals the message's `timestamp`. Tags of other types are skipped.
pub(super) fn split(
    payload: &Bytes,
    timestamp: u32,
    max_frames: usize,
    frames: &mut Vec<Frame>,
) -> Result<(), SessionError> {
    let mut r = Reader::new(payload);
    let mut offset: Option<u32> = None;
    let mut count = 0;
    while !r.is_empty() {
        let header: [u8; TAG_HEADER_LEN] =
            r.array().map_err(|_| invalid("truncated tag header"))?;
        let [tag_type, s0, s1, s2, t0, t1, t2, t_ext, ..] = header;
        let size = u32::from_be_bytes([0, s0, s1, s2]) as usize;
        let tag_ts = u32::from_be_bytes([t_ext, t0, t1, t2]);
        let body = r
            .take(size)
            .map_err(|_| invalid("tag body runs past the message"))?;
        count += 1;
        if count > max_frames {
            return Err(invalid("too many tags"));
        }
        let base = *offset.get_or_insert(timestamp.wrapping_sub(tag_ts));
        if let Some(kind) = FrameKind::from_tag_type(tag_type) {
            // `body` was read from `payload`, so it shares its buffer.
            frames.push(Frame::new(
                kind,
                tag_ts.wrapping_add(base),
                payload.slice_ref(body),
            ));
        }
        // The back pointer may be missing after the last tag; nothing else may be.
        r.take_up_to(BACK_POINTER_LEN);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(tag_type: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let mut t = vec![tag_type];
        t.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        t.extend_from_slice(&ts.to_be_bytes()[1..]);
        t.push((ts >> 24) as u8);
        t.extend_from_slice(&[0, 0, 0]);
        t.extend_from_slice(body);
        t.extend_from_slice(&((body.len() + 11) as u32).to_be_bytes());
        t
    }

    #[test]
    fn splits_and_rebases_timestamps() {
        let mut p = tag(9, 1000, &[0x17, 1, 0, 0, 0, 0xAA]);
        p.extend(tag(8, 1020, &[0xAF, 1, 0xBB]));
        p.extend(tag(4, 1030, &[1])); // not a media tag: skipped
        let mut frames = Vec::new();
        split(&Bytes::from(p), 5000, 16, &mut frames).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(
            (frames[0].kind, frames[0].timestamp, frames[0].keyframe),
            (FrameKind::Video, 5000, true)
        );
        assert_eq!(
            (frames[1].kind, frames[1].timestamp),
            (FrameKind::Audio, 5020)
        );
        assert_eq!(&frames[1].payload[..], &[0xAF, 1, 0xBB]);
    }

    #[test]
    fn malformed_aggregates_are_typed_errors() {
        let mut frames = Vec::new();
        let short = Bytes::from_static(&[9, 0, 0]);
        assert!(matches!(
            split(&short, 0, 16, &mut frames),
            Err(SessionError::InvalidAggregate { .. })
        ));
        let mut overlong = tag(9, 0, &[1, 2, 3]);
        overlong[3] = 200;
        assert!(split(&Bytes::from(overlong), 0, 16, &mut frames).is_err());
        let many: Vec<u8> = (0..5).flat_map(|i| tag(8, i, &[0xAF, 1])).collect();
        assert_eq!(
            split(&Bytes::from(many), 0, 4, &mut frames),
            Err(SessionError::InvalidAggregate {
                reason: "too many tags"
            })
        );
    }
}
