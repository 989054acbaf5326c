//! 188-byte transport packets: a PES cut into packets with the adaptation field
//! carrying PCR, random access and stuffing; PSI sections; PCR-only packets.
//!
//! Every function writes whole packets only, so the output of any call can end
//! a segment.

use bytes::{BufMut, BytesMut};

use super::h264::Sink;

/// Size of a transport packet.
pub const TS_PACKET_SIZE: usize = 188;
/// Bytes after the 4-byte packet header.
const BODY: usize = TS_PACKET_SIZE - 4;
const SYNC_BYTE: u8 = 0x47;
/// adaptation_field_control values.
const AFC_PAYLOAD: u8 = 0b01;
const AFC_ADAPTATION: u8 = 0b10;
const AFC_BOTH: u8 = 0b11;
/// Adaptation field flags.
const AF_RANDOM_ACCESS: u8 = 0x40;
const AF_PCR: u8 = 0x10;
const PCR_LEN: usize = 6;

/// A 4-bit continuity counter; the value held is the one the next packet with a
/// payload takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Continuity(u8);

impl Continuity {
    /// Takes the counter for a packet with payload and advances it (wrapping at 16).
    fn next(&mut self) -> u8 {
        let cc = self.0;
        self.0 = (self.0 + 1) & 0x0F;
        cc
    }

    /// The counter of the last packet with payload: what a packet without
    /// payload repeats (ISO 13818-1 §2.4.3.3).
    fn last(self) -> u8 {
        self.0.wrapping_sub(1) & 0x0F
    }
}

fn header(out: &mut BytesMut, pid: u16, unit_start: bool, afc: u8, cc: u8) {
    let [p0, p1] = (pid & 0x1FFF).to_be_bytes();
    out.put_slice(&[
        SYNC_BYTE,
        if unit_start { 0x40 } else { 0 } | p0,
        p1,
        (afc << 4) | cc,
    ]);
}

/// The 6-byte PCR: 33-bit base, 6 reserved bits, 9-bit extension (0).
fn pcr_field(base: u64) -> [u8; PCR_LEN] {
    [
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base & 1) as u8) << 7 | 0x7E,
        0,
    ]
}

/// Writes one PSI section (≤ 183 bytes) as a single packet: pointer field 0,
/// the section, 0xFF to the end.
pub(crate) fn write_section(out: &mut BytesMut, pid: u16, cc: &mut Continuity, section: &[u8]) {
    header(out, pid, true, AFC_PAYLOAD, cc.next());
    out.put_u8(0);
    let section = section.get(..BODY - 1).unwrap_or(section);
    out.put_slice(section);
    out.put_bytes(0xFF, BODY - 1 - section.len());
}

/// Writes a packet that carries only a PCR (no payload, counter not advanced).
pub(crate) fn write_pcr_only(out: &mut BytesMut, pid: u16, cc: Continuity, pcr: u64) {
    header(out, pid, false, AFC_ADAPTATION, cc.last());
    out.put_u8((BODY - 1) as u8);
    out.put_u8(AF_PCR);
    out.put_slice(&pcr_field(pcr));
    out.put_bytes(0xFF, BODY - 2 - PCR_LEN);
}

/// Cuts one PES of a known total length into packets as its bytes arrive.
///
/// The first packet has payload_unit_start and, when asked, an adaptation field
/// with the PCR and random_access_indicator; the packet that would end short is
/// filled up by adaptation-field stuffing so the payload ends exactly at 188.
pub(crate) struct PesPacketizer<'a> {
    out: &'a mut BytesMut,
    cc: &'a mut Continuity,
    pid: u16,
    /// PES bytes not yet placed.
    left: usize,
    /// Payload room left in the current packet.
    room: usize,
    first: bool,
    pcr: Option<u64>,
    random_access: bool,
    packets: usize,
}

impl<'a> PesPacketizer<'a> {
    /// Prepares to write a PES of exactly `len` bytes.
    pub(crate) fn new(
        out: &'a mut BytesMut,
        pid: u16,
        cc: &'a mut Continuity,
        len: usize,
        pcr: Option<u64>,
        random_access: bool,
    ) -> Self {
        // One packet per 184 bytes at most; reserve for the common case up front.
        out.reserve(len.div_ceil(BODY - 8).max(1) * TS_PACKET_SIZE);
        PesPacketizer {
            out,
            cc,
            pid,
            left: len,
            room: 0,
            first: true,
            pcr,
            random_access,
            packets: 0,
        }
    }

    /// Packets written so far.
    pub(crate) fn packets(&self) -> usize {
        self.packets
    }

    fn start_packet(&mut self) {
        let (pcr, random_access) = if self.first {
            (self.pcr, self.random_access)
        } else {
            (None, false)
        };
        let flags = if random_access { AF_RANDOM_ACCESS } else { 0 } | pcr.map_or(0, |_| AF_PCR);
        // Adaptation field bytes, its length byte included.
        let fields = if flags != 0 {
            2 + pcr.map_or(0, |_| PCR_LEN)
        } else {
            0
        };
        let stuffing = (BODY - fields).saturating_sub(self.left);
        let af_len = fields + stuffing;
        let afc = if af_len > 0 { AFC_BOTH } else { AFC_PAYLOAD };
        header(self.out, self.pid, self.first, afc, self.cc.next());
        if af_len > 0 {
            self.out.put_u8((af_len - 1) as u8);
        }
        // A 1-byte adaptation field is the length byte alone (value 0): no flags.
        if af_len > 1 {
            self.out.put_u8(flags);
            if let Some(pcr) = pcr {
                self.out.put_slice(&pcr_field(pcr));
            }
            self.out.put_bytes(0xFF, af_len - fields.max(2));
        }
        self.room = BODY - af_len;
        self.first = false;
        self.packets += 1;
    }
}

impl Sink for PesPacketizer<'_> {
    fn put(&mut self, mut bytes: &[u8]) {
        // Callers put exactly `len` bytes; anything beyond is dropped, never a
        // partial packet.
        while !bytes.is_empty() && self.left > 0 {
            if self.room == 0 {
                self.start_packet();
            }
            let n = self.room.min(bytes.len()).min(self.left);
            let (now, rest) = bytes.split_at(n);
            self.out.put_slice(now);
            self.room -= n;
            self.left -= n;
            bytes = rest;
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pes(len: usize, pcr: Option<u64>, rai: bool, cc: &mut Continuity) -> (BytesMut, usize) {
        let mut out = BytesMut::new();
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut p = PesPacketizer::new(&mut out, 0x100, cc, len, pcr, rai);
        // Feed in odd pieces, as the H.264 writer does.
        for chunk in data.chunks(7) {
            p.put(chunk);
        }
        let n = p.packets();
        (out, n)
    }

    /// Payload bytes of one packet, from the adaptation field length.
    fn payload(pkt: &[u8]) -> &[u8] {
        match pkt[3] >> 4 {
            AFC_PAYLOAD => &pkt[4..],
            AFC_BOTH => &pkt[5 + usize::from(pkt[4])..],
            _ => &[],
        }
    }

    #[test]
    fn every_length_fills_whole_packets_and_round_trips() {
        let mut cc = Continuity::default();
        for len in [
            1, 2, 175, 176, 177, 182, 183, 184, 185, 367, 368, 369, 1000, 5000,
        ] {
            for (pcr, rai) in [(None, false), (Some(12345), true), (None, true)] {
                let (out, n) = pes(len, pcr, rai, &mut cc);
                assert_eq!(out.len(), n * TS_PACKET_SIZE, "len {len}");
                let mut back = Vec::new();
                for (i, pkt) in out.chunks(TS_PACKET_SIZE).enumerate() {
                    assert_eq!(pkt[0], SYNC_BYTE);
                    assert_eq!(pkt[1] & 0x40 != 0, i == 0, "PUSI only on the first");
                    if pkt[3] >> 4 == AFC_BOTH && pkt[4] > 0 {
                        let flags = pkt[5];
                        assert_eq!(flags & AF_PCR != 0, i == 0 && pcr.is_some());
                        assert_eq!(flags & AF_RANDOM_ACCESS != 0, i == 0 && rai);
                    }
                    back.extend_from_slice(payload(pkt));
                }
                let want: Vec<u8> = (0..len).map(|i| i as u8).collect();
                assert_eq!(back, want, "len {len}");
            }
        }
    }

    #[test]
    fn one_byte_of_stuffing_is_a_bare_length_byte() {
        let mut cc = Continuity::default();
        let (out, n) = pes(183, None, false, &mut cc);
        assert_eq!(n, 1);
        assert_eq!((out[3] >> 4, out[4]), (AFC_BOTH, 0));
        let (out, _) = pes(182, None, false, &mut cc);
        assert_eq!((out[4], out[5]), (1, 0), "length 1, no flags");
    }

    #[test]
    fn continuity_counter_wraps_per_pid() {
        let mut cc = Continuity::default();
        let (out, n) = pes(184 * 20, None, false, &mut cc);
        assert_eq!(n, 20);
        let ccs: Vec<u8> = out.chunks(188).map(|p| p[3] & 0x0F).collect();
        let want: Vec<u8> = (0..20).map(|i| i % 16).collect();
        assert_eq!(ccs, want);
        assert_eq!(cc.last(), 3);
    }

    #[test]
    fn pcr_field_and_pcr_only_packet() {
        let base = (1u64 << 33) - 3;
        let f = pcr_field(base);
        let back = u64::from(f[0]) << 25
            | u64::from(f[1]) << 17
            | u64::from(f[2]) << 9
            | u64::from(f[3]) << 1
            | u64::from(f[4] >> 7);
        assert_eq!(back, base);
        let mut out = BytesMut::new();
        let mut cc = Continuity::default();
        cc.next();
        write_pcr_only(&mut out, 0x100, cc, 90);
        assert_eq!(out.len(), TS_PACKET_SIZE);
        assert_eq!(out[3], (AFC_ADAPTATION << 4), "repeats CC 0, no payload");
        assert_eq!((out[4], out[5]), (183, AF_PCR));
    }

    #[test]
    fn section_packet() {
        let mut out = BytesMut::new();
        let mut cc = Continuity::default();
        write_section(&mut out, 0, &mut cc, &[1, 2, 3]);
        assert_eq!(out.len(), TS_PACKET_SIZE);
        assert_eq!(&out[..8], &[0x47, 0x40, 0, 0x10, 0, 1, 2, 3]);
        assert!(out[8..].iter().all(|b| *b == 0xFF));
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any PES length, cut into any pieces, fills whole packets whose payloads
        /// concatenate back to the PES, with consecutive counters.
        #[test]
        fn any_length_any_pieces(len in 1usize..6000, piece in 1usize..400, pcr in any::<bool>(), start_cc in 0u8..16) {
            let mut cc = Continuity(start_cc);
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut out = BytesMut::new();
            let mut p = PesPacketizer::new(&mut out, 0x101, &mut cc, len, pcr.then_some(77), pcr);
            for chunk in data.chunks(piece) {
                p.put(chunk);
            }
            let n = p.packets();
            prop_assert_eq!(out.len(), n * TS_PACKET_SIZE);
            let mut back = Vec::new();
            for (i, pkt) in out.chunks(TS_PACKET_SIZE).enumerate() {
                prop_assert_eq!(pkt[3] & 0x0F, (start_cc + i as u8) & 0x0F);
                let body = match pkt[3] >> 4 {
                    AFC_PAYLOAD => &pkt[4..],
                    _ => &pkt[5 + usize::from(pkt[4])..],
                };
                back.extend_from_slice(body);
            }
            prop_assert_eq!(back, data);
        }
    }
}
