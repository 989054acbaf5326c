//! Reading fMP4/CMAF the way a player's demuxer does, bounded and incremental:
//! the init segment's timescale and AVC NAL length size, then `moof` + `mdat`
//! chunks as they arrive (a part whole, or a DASH segment streamed chunk by
//! chunk) into samples with their decode time.
//!
//! Only what a player needs to place samples is read: `tfhd`, `tfdt` and `trun`
//! of the first `traf` (ringcast writes one track per chunk). A top-level box
//! larger than the reader's limit is an error, so memory is bounded by it.

use thiserror::Error;

/// Most samples accepted in one `trun`.
pub const MAX_SAMPLES: usize = 4096;
/// Deepest box nesting walked in an init segment.
const MAX_DEPTH: usize = 8;

/// Why fMP4 bytes were refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Fmp4ReadError {
    /// A box header is malformed (size below its header, or to-end-of-file).
    #[error("malformed {0} box")]
    Malformed(&'static str),
    /// A box is larger than the reader's limit.
    #[error("box of {size} bytes exceeds the limit {limit}")]
    TooLarge {
        /// Declared size.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// A `trun` with more than [`MAX_SAMPLES`] samples.
    #[error("trun of {0} samples exceeds the limit")]
    TooManySamples(u32),
    /// An init segment without `mdhd`.
    #[error("init segment without a media header")]
    NoMediaHeader,
}

/// What the init segment says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitInfo {
    /// Ticks per second of the track's media time.
    pub timescale: u32,
    /// AVC NAL length size (`avcC` lengthSizeMinusOne + 1), for H.264 tracks.
    pub nal_len_size: Option<u8>,
}

/// One sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample<'a> {
    /// Decode time, in timescale ticks.
    pub dts: u64,
    /// Duration, in ticks.
    pub duration: u32,
    /// Composition offset, in ticks.
    pub cts: i32,
    /// `sample_is_non_sync_sample` is clear.
    pub sync: bool,
    /// The sample's bytes.
    pub data: &'a [u8],
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some((u64::from(be_u32(b, at)?) << 32) | u64::from(be_u32(b, at + 4)?))
}

/// A box header: (type, header length, total size if known from the bytes).
fn header(b: &[u8]) -> Option<([u8; 4], usize, u64)> {
    let size = be_u32(b, 0)?;
    let kind: [u8; 4] = b.get(4..8)?.try_into().ok()?;
    match size {
        1 => Some((kind, 16, be_u64(b, 8)?)),
        0 => Some((kind, 8, 0)),
        n => Some((kind, 8, u64::from(n))),
    }
}

/// Iterates the child boxes of `b`: (type, body).
fn children(mut b: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let (kind, hlen, size) = header(b)?;
        let size = usize::try_from(size).ok()?;
        if size < hlen {
            return None;
        }
        let body = b.get(hlen..size)?;
        b = b.get(size..).unwrap_or_default();
        Some((kind, body))
    })
}

fn find<'a>(b: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(b).find(|(k, _)| k == kind).map(|(_, body)| body)
}

/// Reads an init segment (`ftyp` + `moov` with one track).
pub fn parse_init(init: &[u8]) -> Result<InitInfo, Fmp4ReadError> {
    let trak = find(init, b"moov")
        .and_then(|m| find(m, b"trak"))
        .ok_or(Fmp4ReadError::NoMediaHeader)?;
    let mdia = find(trak, b"mdia").ok_or(Fmp4ReadError::NoMediaHeader)?;
    let mdhd = find(mdia, b"mdhd").ok_or(Fmp4ReadError::NoMediaHeader)?;
    // Full box: version, flags, then creation/modification times (32 or 64 bit).
    let at = if mdhd.first() == Some(&1) { 20 } else { 12 };
    let timescale = be_u32(mdhd, at)
        .filter(|t| *t > 0)
        .ok_or(Fmp4ReadError::Malformed("mdhd"))?;
    let stsd = find(mdia, b"minf")
        .and_then(|m| find(m, b"stbl"))
        .and_then(|s| find(s, b"stsd"));
    // stsd: version/flags, entry count, then sample entries; avc1/avc3 entries
    // have 78 bytes of fields before their child boxes.
    let nal_len_size = stsd
        .and_then(|s| s.get(8..))
        .and_then(|entries| {
            children(entries)
                .take(MAX_DEPTH)
                .find(|(k, _)| k == b"avc1" || k == b"avc3")
        })
        .and_then(|(_, entry)| find(entry.get(78..)?, b"avcC"))
        .and_then(|avcc| avcc.get(4))
        .map(|b| (b & 0x03) + 1);
    Ok(InitInfo {
        timescale,
        nal_len_size,
    })
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    duration: u32,
    size: u32,
    flags: u32,
    cts: i32,
}

/// The sample table of the last `moof`, waiting for its `mdat`.
#[derive(Clone, Debug, Default)]
struct Run {
    base_dts: u64,
    /// Offset of the first sample from the start of the `moof`.
    data_offset: u64,
    moof_len: u64,
    entries: Vec<Entry>,
}

const TFHD_BASE_DATA_OFFSET: u32 = 0x1;
const TFHD_SAMPLE_DESCRIPTION: u32 = 0x2;
const TFHD_DEFAULT_DURATION: u32 = 0x8;
const TFHD_DEFAULT_SIZE: u32 = 0x10;
const TFHD_DEFAULT_FLAGS: u32 = 0x20;
const TRUN_DATA_OFFSET: u32 = 0x1;
const TRUN_FIRST_FLAGS: u32 = 0x4;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_CTS: u32 = 0x800;
const NON_SYNC: u32 = 0x0001_0000;

fn parse_moof(moof: &[u8], moof_len: u64) -> Result<Run, Fmp4ReadError> {
    let traf = find(moof, b"traf").ok_or(Fmp4ReadError::Malformed("moof"))?;
    let tfhd = find(traf, b"tfhd").ok_or(Fmp4ReadError::Malformed("traf"))?;
    let bad_tfhd = Fmp4ReadError::Malformed("tfhd");
    let tf_flags = be_u32(tfhd, 0).ok_or(bad_tfhd.clone())? & 0x00ff_ffff;
    let mut at = 8; // version/flags, track_ID
    if tf_flags & TFHD_BASE_DATA_OFFSET != 0 {
        at += 8;
    }
    if tf_flags & TFHD_SAMPLE_DESCRIPTION != 0 {
        at += 4;
    }
    let mut default = Entry::default();
    for (flag, slot) in [
        (TFHD_DEFAULT_DURATION, &mut default.duration),
        (TFHD_DEFAULT_SIZE, &mut default.size),
        (TFHD_DEFAULT_FLAGS, &mut default.flags),
    ] {
        if tf_flags & flag != 0 {
            *slot = be_u32(tfhd, at).ok_or(bad_tfhd.clone())?;
            at += 4;
        }
    }
    let base_dts = match find(traf, b"tfdt") {
        Some(t) if t.first() == Some(&1) => be_u64(t, 4),
        Some(t) => be_u32(t, 4).map(u64::from),
        None => Some(0),
    }
    .ok_or(Fmp4ReadError::Malformed("tfdt"))?;
    let trun = find(traf, b"trun").ok_or(Fmp4ReadError::Malformed("traf"))?;
    let bad = Fmp4ReadError::Malformed("trun");
    let flags = be_u32(trun, 0).ok_or(bad.clone())? & 0x00ff_ffff;
    let count = be_u32(trun, 4).ok_or(bad.clone())?;
    if count as usize > MAX_SAMPLES {
        return Err(Fmp4ReadError::TooManySamples(count));
    }
    let mut at = 8;
    let mut data_offset = 0u64;
    if flags & TRUN_DATA_OFFSET != 0 {
        // Signed, relative to the moof (default-base-is-moof, as CMAF requires).
        data_offset = u64::from(be_u32(trun, at).ok_or(bad.clone())?);
        at += 4;
    }
    let mut first_flags = None;
    if flags & TRUN_FIRST_FLAGS != 0 {
        first_flags = Some(be_u32(trun, at).ok_or(bad.clone())?);
        at += 4;
    }
    let mut entries = Vec::with_capacity(count as usize);
    for i in 0..count {
        let mut e = default;
        if i == 0 {
            if let Some(f) = first_flags {
                e.flags = f;
            }
        }
        for (flag, slot) in [
            (TRUN_DURATION, &mut e.duration),
            (TRUN_SIZE, &mut e.size),
            (TRUN_FLAGS, &mut e.flags),
        ] {
            if flags & flag != 0 {
                *slot = be_u32(trun, at).ok_or(bad.clone())?;
                at += 4;
            }
        }
        if flags & TRUN_CTS != 0 {
            e.cts = be_u32(trun, at).ok_or(bad.clone())? as i32;
            at += 4;
        }
        entries.push(e);
    }
    Ok(Run {
        base_dts,
        data_offset,
        moof_len,
        entries,
    })
}

/// Turns a stream of fMP4 bytes into samples.
#[derive(Debug)]
pub struct Fmp4Reader {
    buf: Vec<u8>,
    limit: usize,
    run: Option<Run>,
}

impl Fmp4Reader {
    /// A reader that refuses any top-level box over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Fmp4Reader {
            buf: Vec::new(),
            limit,
            run: None,
        }
    }

    /// Feeds bytes; every sample of every complete `moof` + `mdat` goes to `f`.
    pub fn push(
        &mut self,
        data: &[u8],
        mut f: impl FnMut(Sample<'_>),
    ) -> Result<(), Fmp4ReadError> {
        self.buf.extend_from_slice(data);
        let mut used = 0;
        let result = loop {
            let rest = self.buf.get(used..).unwrap_or_default();
            let Some((kind, hlen, size)) = header(rest) else {
                break Ok(());
            };
            if size == 0 || size < hlen as u64 {
                break Err(Fmp4ReadError::Malformed("top-level"));
            }
            if size > self.limit as u64 {
                break Err(Fmp4ReadError::TooLarge {
                    size,
                    limit: self.limit,
                });
            }
            let size = size as usize;
            let Some(whole) = rest.get(..size) else {
                break Ok(());
            };
            let body = whole.get(hlen..).unwrap_or_default();
            match &kind {
                b"moof" => match parse_moof(body, size as u64) {
                    Ok(run) => self.run = Some(run),
                    Err(e) => break Err(e),
                },
                b"mdat" => {
                    if let Some(run) = self.run.take() {
                        emit(&run, body, hlen as u64, &mut f);
                    }
                }
                _ => {}
            }
            used += size;
        };
        self.buf.drain(..used.min(self.buf.len()));
        result
    }

    /// Forgets any partial box (the response it came from ended or failed).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.run = None;
    }
}

/// Hands out the samples of `run` from the `mdat` body that follows its `moof`.
fn emit(run: &Run, mdat: &[u8], mdat_header: u64, f: &mut impl FnMut(Sample<'_>)) {
    // The data offset counts from the moof's first byte; the mdat body starts
    // right after the moof and the mdat header.
    let Some(mut at) = run
        .data_offset
        .checked_sub(run.moof_len + mdat_header)
        .and_then(|a| usize::try_from(a).ok())
    else {
        return;
    };
    let mut dts = run.base_dts;
    for e in &run.entries {
        let end = at.saturating_add(e.size as usize);
        let Some(data) = mdat.get(at..end) else {
            return;
        };
        f(Sample {
            dts,
            duration: e.duration,
            cts: e.cts,
            sync: e.flags & NON_SYNC == 0,
            data,
        });
        dts = dts.saturating_add(u64::from(e.duration));
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_oversized_boxes_are_errors() {
        let mut r = Fmp4Reader::new(1024);
        assert!(matches!(
            r.push(&[0, 0, 0x10, 0, b'm', b'd', b'a', b't'], |_| {}),
            Err(Fmp4ReadError::TooLarge { .. })
        ));
        let mut r = Fmp4Reader::new(1024);
        assert!(r
            .push(&[0, 0, 0, 3, b'f', b'r', b'e', b'e'], |_| {})
            .is_err());
        let mut r = Fmp4Reader::new(1024);
        // A moof without traf.
        assert!(r
            .push(&[0, 0, 0, 8, b'm', b'o', b'o', b'f'], |_| {})
            .is_err());
        assert_eq!(parse_init(&[]), Err(Fmp4ReadError::NoMediaHeader));
        let mut r = Fmp4Reader::new(1024);
        assert!(
            r.push(&[0, 0, 0], |_| {}).is_ok(),
            "incomplete header waits"
        );
    }
}
