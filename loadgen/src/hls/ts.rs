//! Reading the video of an MPEG-TS segment the way a player's demuxer does,
//! bounded and incremental: PAT → PMT → the H.264 PID, then its PES packets
//! reassembled into access units (Annex B) with their PTS/DTS. Audio and other
//! PIDs are skipped. A PES larger than the limit is an error.

use thiserror::Error;

/// MPEG-TS packet size.
pub const PACKET: usize = 188;
/// PMT stream_type of H.264.
const STREAM_TYPE_H264: u8 = 0x1b;

/// Why TS bytes were refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TsReadError {
    /// A packet does not start with the 0x47 sync byte.
    #[error("lost TS sync")]
    Sync,
    /// A video PES exceeds the limit.
    #[error("PES of more than {0} bytes")]
    PesTooLarge(usize),
}

/// One video access unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsFrame<'a> {
    /// Decode time, 90 kHz.
    pub dts: u64,
    /// Presentation time, 90 kHz.
    pub pts: u64,
    /// Annex B bytes.
    pub data: &'a [u8],
}

/// Turns a stream of TS packets into video access units.
#[derive(Debug)]
pub struct TsReader {
    carry: Vec<u8>,
    pmt_pid: Option<u16>,
    video_pid: Option<u16>,
    pes: Vec<u8>,
    times: Option<(u64, u64)>,
    limit: usize,
}

fn timestamp(b: &[u8]) -> Option<u64> {
    let b = b.get(..5)?;
    Some(
        (u64::from(b[0] >> 1) & 0x07) << 30
            | u64::from(b[1]) << 22
            | (u64::from(b[2]) >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4]) >> 1,
    )
}

/// The section after a PSI packet's pointer field.
fn section(payload: &[u8]) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    payload.get(1 + pointer..)
}

impl TsReader {
    /// A reader that refuses any video PES over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        TsReader {
            carry: Vec::new(),
            pmt_pid: None,
            video_pid: None,
            pes: Vec::new(),
            times: None,
            limit,
        }
    }

    /// Feeds bytes; each completed video access unit goes to `f`.
    pub fn push(
        &mut self,
        mut data: &[u8],
        mut f: impl FnMut(TsFrame<'_>),
    ) -> Result<(), TsReadError> {
        if !self.carry.is_empty() {
            let take = (PACKET - self.carry.len()).min(data.len());
            self.carry
                .extend_from_slice(data.get(..take).unwrap_or_default());
            data = data.get(take..).unwrap_or_default();
            if self.carry.len() < PACKET {
                return Ok(());
            }
            let packet = std::mem::take(&mut self.carry);
            self.packet(&packet, &mut f)?;
        }
        let mut chunks = data.chunks_exact(PACKET);
        for p in chunks.by_ref() {
            self.packet(p, &mut f)?;
        }
        self.carry.extend_from_slice(chunks.remainder());
        Ok(())
    }

    /// The segment ended: hands out the last access unit (its PES has no
    /// successor to close it) and forgets partial input.
    pub fn finish(&mut self, mut f: impl FnMut(TsFrame<'_>)) {
        self.flush(&mut f);
        self.carry.clear();
    }

    fn flush(&mut self, f: &mut impl FnMut(TsFrame<'_>)) {
        if let Some((pts, dts)) = self.times.take() {
            f(TsFrame {
                dts,
                pts,
                data: &self.pes,
            });
        }
        self.pes.clear();
    }

    fn packet(&mut self, p: &[u8], f: &mut impl FnMut(TsFrame<'_>)) -> Result<(), TsReadError> {
        if p.first() != Some(&0x47) {
            return Err(TsReadError::Sync);
        }
        let (b1, b2, b3) = match (p.get(1), p.get(2), p.get(3)) {
            (Some(&a), Some(&b), Some(&c)) => (a, b, c),
            _ => return Ok(()),
        };
        let pusi = b1 & 0x40 != 0;
        let pid = (u16::from(b1 & 0x1f) << 8) | u16::from(b2);
        let mut at = 4;
        if b3 & 0x20 != 0 {
            at += 1 + usize::from(*p.get(4).unwrap_or(&0));
        }
        if b3 & 0x10 == 0 {
            return Ok(());
        }
        let payload = p.get(at..).unwrap_or_default();
        if pid == 0 && pusi {
            // PAT: the first program's PMT PID.
            let entries = section(payload).and_then(|s| s.get(8..));
            if let Some(e) = entries.and_then(|e| {
                e.chunks_exact(4)
                    .find(|c| u16::from_be_bytes([c[0], c[1]]) != 0)
            }) {
                self.pmt_pid = Some(u16::from_be_bytes([e[2], e[3]]) & 0x1fff);
            }
        } else if Some(pid) == self.pmt_pid && pusi {
            self.read_pmt(payload);
        } else if Some(pid) == self.video_pid {
            if pusi {
                self.flush(f);
                // PES header: start code, stream id, length, flags, header length.
                let (Some(&flags), Some(&hlen)) = (payload.get(7), payload.get(8)) else {
                    return Ok(());
                };
                let pts = if flags & 0x80 != 0 {
                    timestamp(payload.get(9..).unwrap_or_default())
                } else {
                    None
                };
                let dts = if flags & 0x40 != 0 {
                    timestamp(payload.get(14..).unwrap_or_default())
                } else {
                    pts
                };
                self.times = pts.zip(dts);
                let body = payload.get(9 + usize::from(hlen)..).unwrap_or_default();
                self.pes.extend_from_slice(body);
            } else if self.times.is_some() {
                if self.pes.len() + payload.len() > self.limit {
                    return Err(TsReadError::PesTooLarge(self.limit));
                }
                self.pes.extend_from_slice(payload);
            }
        }
        Ok(())
    }

    fn read_pmt(&mut self, payload: &[u8]) {
        let Some(s) = section(payload) else { return };
        let (Some(&l0), Some(&l1)) = (s.get(1), s.get(2)) else {
            return;
        };
        let section_len = usize::from(u16::from_be_bytes([l0 & 0x0f, l1]));
        let (Some(&p0), Some(&p1)) = (s.get(10), s.get(11)) else {
            return;
        };
        let info_len = usize::from(u16::from_be_bytes([p0 & 0x0f, p1]));
        // Streams run from after the program info to before the CRC.
        let end = (3 + section_len).saturating_sub(4).min(s.len());
        let mut at = 12 + info_len;
        while at + 5 <= end {
            let Some(e) = s.get(at..at + 5) else { break };
            let pid = u16::from_be_bytes([e[1] & 0x1f, e[2]]);
            let es_len = usize::from(u16::from_be_bytes([e[3] & 0x0f, e[4]]));
            if e[0] == STREAM_TYPE_H264 {
                self.video_pid = Some(pid);
                return;
            }
            at += 5 + es_len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_sync_is_an_error_and_partial_packets_wait() {
        let mut r = TsReader::new(1 << 20);
        assert_eq!(r.push(&[0u8; 188], |_| {}), Err(TsReadError::Sync));
        let mut r = TsReader::new(1 << 20);
        assert!(
            r.push(&[0x47; 100], |_| {}).is_ok(),
            "a partial packet waits"
        );
        assert_eq!(
            timestamp(&[0x21, 0x00, 0x01, 0x00, 0x01]),
            Some(0),
            "PTS 0 with marker bits"
        );
    }
}
