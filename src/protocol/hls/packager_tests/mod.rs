//! The packager on real frames (the committed FLV fixtures, demuxed by
//! ringcast's own FLV demuxer and looped on one timeline).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod parts;
mod publishers;
mod serving;
mod tracks;

use bytes::Bytes;

use super::packager::{Packager, PackagerConfig, PackagerEvent, PackagerWarning, Start};
use super::serve::{Answer, Cacheability, RequestError};
use super::timeline::TrackKind;
use super::urls::Resource;
use crate::protocol::flv::{FlvDemuxer, FlvLimits};
use crate::protocol::{Frame, FrameKind};

const AVC420: &[u8] = include_bytes!("../../../../tests/data/flv/avc420_aac_320x180.flv");
const AVC444: &[u8] = include_bytes!("../../../../tests/data/flv/avc444_aac_320x240.flv");

/// (sequence headers, coded frames with DTS in decode order) of a fixture
/// looped `loops` times on one timeline starting at `base`.
fn stream(file: &[u8], loops: u64, base: u64) -> (Vec<Frame>, Vec<(Frame, u64)>) {
    let mut d = FlvDemuxer::new(FlvLimits::default());
    let mut frames = Vec::new();
    d.decode_all(file, &mut frames).unwrap();
    let seq: Vec<Frame> = frames
        .iter()
        .filter(|f| f.sequence_header)
        .cloned()
        .collect();
    let coded: Vec<Frame> = frames
        .iter()
        .filter(|f| f.kind != FrameKind::Script && f.payload.get(1) == Some(&1))
        .cloned()
        .collect();
    let video: Vec<&Frame> = coded
        .iter()
        .filter(|f| f.kind == FrameKind::Video)
        .collect();
    let t0 = video[0].timestamp;
    let span = u64::from(video[video.len() - 1].timestamp - t0) + 40;
    let mut out = Vec::new();
    for i in 0..loops {
        for f in &coded {
            let rel = u64::from(f.timestamp.saturating_sub(t0));
            if rel < span {
                out.push((f.clone(), base + i * span + rel));
            }
        }
    }
    out.sort_by_key(|(f, dts)| (*dts, f.kind == FrameKind::Audio));
    (seq, out)
}

fn feed(p: &mut Packager, frames: &[(Frame, u64)], ev: &mut Vec<PackagerEvent>) {
    for (f, dts) in frames {
        p.push(f, *dts, 1_700_000_000_000 + dts, ev);
    }
}

fn started(file: &[u8], loops: u64, config: PackagerConfig) -> (Packager, Vec<PackagerEvent>) {
    let (seq, coded) = stream(file, loops, 0);
    let mut p = Packager::new("live", "cam", config, Start::Publish).unwrap();
    let mut ev = Vec::new();
    for f in &seq {
        p.push(f, 0, 1_700_000_000_000, &mut ev);
    }
    feed(&mut p, &coded, &mut ev);
    (p, ev)
}

/// The warnings among `ev`, in order.
fn warnings(ev: &[PackagerEvent]) -> Vec<&PackagerWarning> {
    ev.iter()
        .filter_map(|e| match e {
            PackagerEvent::Warning(w) => Some(w),
            _ => None,
        })
        .collect()
}

fn serve(p: &Packager, r: Resource, q: &str) -> (Bytes, &'static str, Cacheability) {
    match p.answer(r, q, 0, 0).unwrap() {
        Answer::Serve(reply) => (reply.body.to_bytes(), reply.content_type, reply.cache),
        other => panic!("{r:?}: {other:?}"),
    }
}

fn text(p: &Packager, r: Resource, q: &str) -> String {
    String::from_utf8(serve(p, r, q).0.to_vec()).unwrap()
}
