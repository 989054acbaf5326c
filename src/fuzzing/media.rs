//! FLV demuxing.

use crate::protocol::flv::config::{parse_audio_sequence_header, parse_video_sequence_header};
use crate::protocol::flv::demux::{FlvDemuxer, FlvLimits};
use crate::protocol::flv::metadata::Metadata;
use crate::protocol::rtmp::amf0::Amf0Limits;
use crate::protocol::FrameKind;

/// The FLV demuxer with arbitrary bytes fed in arbitrary splits; every frame it
/// yields goes through the codec-config and metadata parsers.
///
/// Input: `[ctl][stream...]`: the low 7 bits of `ctl` pick the split size, the
/// top bit strict PreviousTagSize checking.
pub fn flv_demux(data: &[u8]) {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let limits = FlvLimits {
        max_tag_size: 64 * 1024,
        strict_prev_tag_size: ctl & 0x80 != 0,
        ..FlvLimits::default()
    };
    let piece = usize::from(ctl & 0x7F) + 1;
    let mut demux = FlvDemuxer::new(limits);
    let mut frames = Vec::new();
    for chunk in stream.chunks(piece) {
        if demux.decode_all(chunk, &mut frames).is_err() {
            break;
        }
    }
    let _ = demux.finish();
    for f in &frames {
        assert!(f.payload.len() <= 64 * 1024);
        match f.kind {
            FrameKind::Video => {
                let _ = parse_video_sequence_header(&f.payload);
            }
            FrameKind::Audio => {
                let _ = parse_audio_sequence_header(&f.payload);
            }
            FrameKind::Script => {
                if let Ok(m) = Metadata::parse(&f.payload, Amf0Limits::default()) {
                    let encoded = m.to_payload().expect("parsed metadata re-encodes");
                    let again = Metadata::parse(&encoded, Amf0Limits::default())
                        .expect("re-encoded metadata parses");
                    assert_eq!(again.other.len(), m.other.len());
                }
            }
        }
    }
}
