//! The packager's per-stream store: every URL of [`super::urls`] that has
//! bytes (inits, parts, whole fMP4 segments, TS segments) mapped to an
//! immutable [`Body`], bounded by the timeline's window.
//!
//! Parts are kept in the zero-copy form the fMP4 muxer makes (a ~100-byte
//! `moof`+`mdat` header plus refcounted slices of the frames' payloads, which
//! the GOP cache and HTTP-FLV already share), and a whole fMP4 segment is the
//! list of its parts' pieces: a segment costs a `Vec` of `Bytes` handles, not
//! a second copy of the media. A reactor writes the pieces as one gathered
//! write; [`Body::to_bytes`] joins them at most once per body (lazily, shared
//! by every later caller) for a `Range` response or a peer that wants one
//! buffer. TS segments are one `Bytes` each (the muxer rewrites the media, so
//! there is nothing to share).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};

use super::timeline::TrackKind;
use super::urls::Resource;

/// Init segments kept per track (each new codec configuration, i.e. each
/// publisher with other encoder settings, adds one; the oldest go first).
pub const MAX_INITS_PER_TRACK: usize = 4;

/// An immutable response body: shared pieces, served back to back.
#[derive(Clone, Debug)]
pub struct Body(Arc<BodyInner>);

#[derive(Debug)]
struct BodyInner {
    pieces: Vec<Bytes>,
    len: usize,
    joined: OnceLock<Bytes>,
}

impl Body {
    /// A body made of `pieces`, in order (not copied).
    pub fn from_pieces(pieces: Vec<Bytes>) -> Self {
        let len = pieces.iter().map(Bytes::len).sum();
        Body(Arc::new(BodyInner {
            pieces,
            len,
            joined: OnceLock::new(),
        }))
    }

    /// A body of one buffer.
    pub fn from_bytes(bytes: Bytes) -> Self {
        let joined = OnceLock::new();
        let _ = joined.set(bytes.clone());
        Body(Arc::new(BodyInner {
            len: bytes.len(),
            pieces: vec![bytes],
            joined,
        }))
    }

    /// The pieces to write, in order (one gathered write).
    pub fn pieces(&self) -> &[Bytes] {
        &self.0.pieces
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.0.len
    }

    /// True when the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// The body as one buffer, joined on first use and shared afterwards.
    pub fn to_bytes(&self) -> Bytes {
        self.0
            .joined
            .get_or_init(|| match self.0.pieces.as_slice() {
                [one] => one.clone(),
                pieces => {
                    let mut out = BytesMut::with_capacity(self.0.len);
                    for p in pieces {
                        out.put_slice(p);
                    }
                    out.freeze()
                }
            })
            .clone()
    }
}

pub(crate) fn slot(track: TrackKind) -> usize {
    match track {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

#[derive(Clone, Debug, Default)]
struct SegmentEntry {
    /// Parts by index, per track (`None`: the track had no frame in that part).
    parts: [Vec<Option<Body>>; 2],
    /// The whole fMP4 segment per track, once closed.
    whole: [Option<Body>; 2],
    /// The MPEG-TS segment, once closed.
    ts: Option<Body>,
}

/// The bytes of one stream's window. Cloning it clones handles (a few
/// hundred `Arc` bumps for a full window), never media.
#[derive(Clone, Debug, Default)]
pub struct Store {
    segments: BTreeMap<u64, SegmentEntry>,
    inits: Vec<(TrackKind, u64, Body)>,
    bytes: u64,
}

impl Store {
    /// Bytes the store holds on its own account: part headers and samples
    /// (counted once although whole segments list them again), TS segments,
    /// inits.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Segment numbers held, oldest first.
    pub fn msns(&self) -> impl Iterator<Item = u64> + '_ {
        self.segments.keys().copied()
    }

    /// Adds an init segment (ignored when that id is already held).
    pub fn add_init(&mut self, track: TrackKind, id: u64, bytes: Bytes) {
        if self.init(track, id).is_some() {
            return;
        }
        self.bytes = self.bytes.saturating_add(bytes.len() as u64);
        self.inits.push((track, id, Body::from_bytes(bytes)));
        while self.inits.iter().filter(|(t, _, _)| *t == track).count() > MAX_INITS_PER_TRACK {
            if let Some(pos) = self.inits.iter().position(|(t, _, _)| *t == track) {
                let (_, _, b) = self.inits.remove(pos);
                self.bytes = self.bytes.saturating_sub(b.len() as u64);
            }
        }
    }

    /// An init segment.
    pub fn init(&self, track: TrackKind, id: u64) -> Option<&Body> {
        self.inits
            .iter()
            .find(|(t, i, _)| *t == track && *i == id)
            .map(|(_, _, b)| b)
    }

    /// Stores part `(msn, part)` of `track` (`None`: the track had no frame in it).
    pub fn put_part(&mut self, track: TrackKind, msn: u64, part: u32, body: Option<Body>) {
        let entry = self.segments.entry(msn).or_default();
        let Some(list) = entry.parts.get_mut(slot(track)) else {
            return;
        };
        let index = usize::try_from(part).unwrap_or(usize::MAX);
        if list.len() <= index {
            list.resize(index.saturating_add(1), None);
        }
        if let Some(s) = list.get_mut(index) {
            if let Some(b) = &body {
                self.bytes = self.bytes.saturating_add(b.len() as u64);
            }
            *s = body;
        }
    }

    /// A part.
    pub fn part(&self, track: TrackKind, msn: u64, part: u32) -> Option<&Body> {
        self.segments
            .get(&msn)?
            .parts
            .get(slot(track))?
            .get(usize::try_from(part).ok()?)?
            .as_ref()
    }

    /// Seals segment `msn` of `track`: its parts' pieces back to back (no
    /// copy). Nothing is stored when the track has no part in it.
    pub fn seal_segment(&mut self, track: TrackKind, msn: u64) {
        let Some(entry) = self.segments.get_mut(&msn) else {
            return;
        };
        let pieces: Vec<Bytes> = entry
            .parts
            .get(slot(track))
            .map(|ps| {
                ps.iter()
                    .flatten()
                    .flat_map(|b| b.pieces().iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        if pieces.is_empty() {
            return;
        }
        if let Some(w) = entry.whole.get_mut(slot(track)) {
            *w = Some(Body::from_pieces(pieces));
        }
    }

    /// A whole fMP4 segment.
    pub fn segment(&self, track: TrackKind, msn: u64) -> Option<&Body> {
        self.segments.get(&msn)?.whole.get(slot(track))?.as_ref()
    }

    /// The stored parts of segment `msn` of `track` from part `from_part` on,
    /// back to back, and the index after the last part looked at (parts in
    /// which the track had no frame are skipped but counted).
    pub fn parts_from(&self, track: TrackKind, msn: u64, from_part: u32) -> (Vec<Bytes>, u32) {
        let mut pieces = Vec::new();
        let mut next = from_part;
        let Some(list) = self
            .segments
            .get(&msn)
            .and_then(|e| e.parts.get(slot(track)))
        else {
            return (pieces, next);
        };
        let from = usize::try_from(from_part).unwrap_or(usize::MAX);
        for (i, p) in list.iter().enumerate().skip(from) {
            if let Some(b) = p {
                pieces.extend(b.pieces().iter().cloned());
            }
            next = u32::try_from(i).unwrap_or(u32::MAX).saturating_add(1);
        }
        (pieces, next)
    }

    /// Stores the MPEG-TS segment `msn`.
    pub fn put_ts(&mut self, msn: u64, bytes: Bytes) {
        self.bytes = self.bytes.saturating_add(bytes.len() as u64);
        self.segments.entry(msn).or_default().ts = Some(Body::from_bytes(bytes));
    }

    /// An MPEG-TS segment.
    pub fn ts(&self, msn: u64) -> Option<&Body> {
        self.segments.get(&msn)?.ts.as_ref()
    }

    /// Drops everything of segment `msn` (the timeline evicted it).
    pub fn evict(&mut self, msn: u64) {
        if let Some(e) = self.segments.remove(&msn) {
            let parts: u64 = e
                .parts
                .iter()
                .flatten()
                .flatten()
                .map(|b| b.len() as u64)
                .sum();
            let ts = e.ts.map_or(0, |b| b.len() as u64);
            self.bytes = self.bytes.saturating_sub(parts.saturating_add(ts));
        }
    }

    /// Every resource that has bytes here (the playlists excepted), for
    /// tests and for a peer that mirrors the store.
    pub fn resources(&self) -> Vec<Resource> {
        let mut out: Vec<Resource> = self
            .inits
            .iter()
            .map(|(track, id, _)| Resource::Init {
                track: *track,
                id: *id,
            })
            .collect();
        for (&msn, e) in &self.segments {
            for track in [TrackKind::Video, TrackKind::Audio] {
                if let Some(ps) = e.parts.get(slot(track)) {
                    for (i, p) in ps.iter().enumerate() {
                        if p.is_some() {
                            out.push(Resource::Part {
                                track,
                                msn,
                                part: u32::try_from(i).unwrap_or(u32::MAX),
                            });
                        }
                    }
                }
                if e.whole.get(slot(track)).is_some_and(Option::is_some) {
                    out.push(Resource::Segment { track, msn });
                }
            }
            if e.ts.is_some() {
                out.push(Resource::TsSegment { msn });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_can_cross_cores() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Body>();
        send_sync::<crate::protocol::hls::serve::Reply>();
    }

    #[test]
    fn a_body_joins_its_pieces_once_and_shares_the_result() {
        let b = Body::from_pieces(vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")]);
        assert_eq!(b.len(), 4);
        let j1 = b.to_bytes();
        let j2 = b.clone().to_bytes();
        assert_eq!(&j1[..], b"abcd");
        assert_eq!(j1.as_ptr(), j2.as_ptr(), "joined once, then shared");
        let one = Bytes::from_static(b"xyz");
        assert_eq!(
            Body::from_bytes(one.clone()).to_bytes().as_ptr(),
            one.as_ptr()
        );
    }

    #[test]
    fn segments_share_their_parts_pieces_and_eviction_frees_the_account() {
        let mut s = Store::default();
        let header = Bytes::from_static(b"moofmdat");
        let sample = Bytes::from(vec![7u8; 100]);
        let part = Body::from_pieces(vec![header.clone(), sample.clone()]);
        s.put_part(TrackKind::Video, 5, 0, Some(part.clone()));
        s.put_part(TrackKind::Video, 5, 1, Some(part));
        s.put_part(TrackKind::Audio, 5, 1, None);
        s.seal_segment(TrackKind::Video, 5);
        s.seal_segment(TrackKind::Audio, 5);
        s.put_ts(5, Bytes::from(vec![0x47u8; 188]));
        assert_eq!(s.bytes(), 2 * 108 + 188);
        let seg = s.segment(TrackKind::Video, 5).unwrap();
        assert_eq!(seg.pieces().len(), 4);
        assert_eq!(seg.pieces()[1].as_ptr(), sample.as_ptr(), "not copied");
        assert!(s.segment(TrackKind::Audio, 5).is_none());
        assert!(s.part(TrackKind::Audio, 5, 1).is_none());
        assert_eq!(s.resources().len(), 4);
        s.evict(5);
        assert_eq!(s.bytes(), 0);
        assert!(s.resources().is_empty());
    }

    #[test]
    fn inits_are_bounded_per_track() {
        let mut s = Store::default();
        for id in 0..(MAX_INITS_PER_TRACK as u64 + 3) {
            s.add_init(TrackKind::Video, id, Bytes::from_static(b"init"));
        }
        s.add_init(TrackKind::Audio, 1, Bytes::from_static(b"init"));
        assert_eq!(s.resources().len(), MAX_INITS_PER_TRACK + 1);
        assert!(s.init(TrackKind::Video, 0).is_none());
        assert!(s
            .init(TrackKind::Video, MAX_INITS_PER_TRACK as u64 + 2)
            .is_some());
        assert_eq!(s.bytes(), 4 * (MAX_INITS_PER_TRACK as u64 + 1));
    }
}
