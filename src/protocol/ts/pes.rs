//! PES packet headers (ISO 13818-1 §2.4.3.6) and the 90 kHz clock.

/// PES stream_id of the first video stream.
pub(crate) const STREAM_ID_VIDEO: u8 = 0xE0;
/// PES stream_id of the first audio stream.
pub(crate) const STREAM_ID_AUDIO: u8 = 0xC0;
/// Longest PES header written: 6 fixed + 3 flags + PTS 5 + DTS 5.
pub(crate) const MAX_PES_HEADER_LEN: usize = 19;
/// PTS, DTS and PCR base are 33-bit counters of a 90 kHz clock.
const TIMESTAMP_MASK: i64 = (1 << 33) - 1;
/// 90 kHz ticks per millisecond.
const TICKS_PER_MS: i64 = 90;
/// How far PTS/DTS run ahead of the PCR derived from the same frame.
///
/// The T-STD wants each PES delivered (PCR) before it is decoded (DTS); 700 ms
/// is ffmpeg's and nginx-rtmp's muxing delay and covers audio/video interleave
/// skew in real RTMP input. Adding it to PTS/DTS (rather than subtracting it from
/// the PCR) keeps every clock non-negative from a stream timestamp of 0.
pub const PTS_DELAY_MS: i64 = 700;

/// Milliseconds on the stream's timeline to a 33-bit 90 kHz timestamp (wrapping
/// like the field does; the mask is a Euclidean modulo for negative input too).
pub(crate) fn ms_to_ticks(ms: i64) -> u64 {
    (ms.wrapping_mul(TICKS_PER_MS) & TIMESTAMP_MASK) as u64
}

/// PTS/DTS of a frame at `ms` on the stream timeline.
pub(crate) fn media_ticks(ms: i64) -> u64 {
    ms_to_ticks(ms.wrapping_add(PTS_DELAY_MS))
}

/// The 5-byte PTS/DTS field with its 4-bit prefix and marker bits.
fn timestamp_field(prefix: u8, ticks: u64) -> [u8; 5] {
    [
        (prefix << 4) | (((ticks >> 30) & 0x07) as u8) << 1 | 1,
        (ticks >> 22) as u8,
        (((ticks >> 15) & 0x7F) as u8) << 1 | 1,
        (ticks >> 7) as u8,
        ((ticks & 0x7F) as u8) << 1 | 1,
    ]
}

/// Writes a PES header for `payload_len` bytes of one access unit into `buf`
/// and returns its length. A DTS is written only when it differs from the PTS.
///
/// `PES_packet_length` is 0 ("unbounded", allowed for video only) when the PES
/// does not fit 16 bits; the muxer bounds audio PES well below that.
pub(crate) fn write_pes_header(
    stream_id: u8,
    pts: u64,
    dts: Option<u64>,
    payload_len: usize,
    buf: &mut [u8; MAX_PES_HEADER_LEN],
) -> usize {
    let dts = dts.filter(|d| *d != pts);
    let data_len: u8 = if dts.is_some() { 10 } else { 5 };
    let after_length = 3 + usize::from(data_len) + payload_len;
    let packet_length = u16::try_from(after_length).unwrap_or(0);
    let [l0, l1] = packet_length.to_be_bytes();
    // '10' marker, data_alignment_indicator (an access unit starts here).
    let flags1 = 0x84;
    let flags2 = if dts.is_some() { 0xC0 } else { 0x80 };
    let fixed = [0, 0, 1, stream_id, l0, l1, flags1, flags2, data_len];
    let (head, tail) = buf.split_at_mut(fixed.len());
    head.copy_from_slice(&fixed);
    let pts_prefix = if dts.is_some() { 0b0011 } else { 0b0010 };
    let mut fields = tail.chunks_exact_mut(5);
    if let Some(f) = fields.next() {
        f.copy_from_slice(&timestamp_field(pts_prefix, pts));
    }
    if let (Some(dts), Some(f)) = (dts, fields.next()) {
        f.copy_from_slice(&timestamp_field(0b0001, dts));
    }
    fixed.len() + usize::from(data_len)
}

/// PES header length for a frame, before it is written (to size the PES).
pub(crate) fn pes_header_len(pts: u64, dts: Option<u64>) -> usize {
    if dts.is_some_and(|d| d != pts) {
        MAX_PES_HEADER_LEN
    } else {
        MAX_PES_HEADER_LEN - 5
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn read_ts(f: &[u8]) -> u64 {
        (u64::from(f[0] >> 1) & 7) << 30
            | u64::from(f[1]) << 22
            | u64::from(f[2] >> 1) << 15
            | u64::from(f[3]) << 7
            | u64::from(f[4] >> 1)
    }

    #[test]
    fn pts_and_dts_round_trip_with_markers() {
        let mut buf = [0; MAX_PES_HEADER_LEN];
        let (pts, dts) = ((1 << 33) - 2, 0x1_2345_6789 & ((1 << 33) - 1));
        let n = write_pes_header(STREAM_ID_VIDEO, pts, Some(dts), 1000, &mut buf);
        assert_eq!(n, 19);
        assert_eq!(pes_header_len(pts, Some(dts)), 19);
        assert_eq!(&buf[..4], &[0, 0, 1, 0xE0]);
        assert_eq!(u16::from_be_bytes([buf[4], buf[5]]), 1013);
        assert_eq!((buf[7], buf[8]), (0xC0, 10));
        assert_eq!(buf[9] >> 4, 0b0011);
        assert_eq!(buf[14] >> 4, 0b0001);
        assert_eq!(read_ts(&buf[9..14]), pts);
        assert_eq!(read_ts(&buf[14..19]), dts);
        for i in [9, 11, 13, 14, 16, 18] {
            assert_eq!(buf[i] & 1, 1, "marker bit of byte {i}");
        }
    }

    #[test]
    fn equal_dts_is_omitted_and_big_video_pes_is_unbounded() {
        let mut buf = [0; MAX_PES_HEADER_LEN];
        let n = write_pes_header(STREAM_ID_AUDIO, 90, Some(90), 100, &mut buf);
        assert_eq!(n, 14);
        assert_eq!(pes_header_len(90, Some(90)), 14);
        assert_eq!((buf[7], buf[8], buf[9] >> 4), (0x80, 5, 0b0010));
        assert_eq!(u16::from_be_bytes([buf[4], buf[5]]), 108);
        write_pes_header(STREAM_ID_VIDEO, 90, None, 70_000, &mut buf);
        assert_eq!(u16::from_be_bytes([buf[4], buf[5]]), 0);
    }

    #[test]
    fn clock_wraps_and_handles_negative_times() {
        assert_eq!(ms_to_ticks(1000), 90_000);
        assert_eq!(ms_to_ticks(-1), (1 << 33) - 90);
        assert_eq!(media_ticks(0), (PTS_DELAY_MS * 90) as u64);
        // 2^33 ticks is about 26.5 hours; the counter wraps there.
        assert_eq!(
            ms_to_ticks((1 << 33) / 90 + 1),
            ((1 << 33) / 90 + 1) * 90 - (1 << 33)
        );
    }
}
