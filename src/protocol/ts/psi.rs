//! Program-specific information: the PAT and PMT sections (ISO 13818-1 §2.4.4)
//! describing the one program of a segment, built from the tracks present.

/// PID of the program map table (ffmpeg's default).
pub const PID_PMT: u16 = 0x1000;
/// PID of the H.264 elementary stream.
pub const PID_VIDEO: u16 = 0x100;
/// PID of the AAC elementary stream.
pub const PID_AUDIO: u16 = 0x101;
/// PMT stream_type of H.264 video.
pub(crate) const STREAM_TYPE_H264: u8 = 0x1B;
/// PMT stream_type of AAC in ADTS.
pub(crate) const STREAM_TYPE_ADTS_AAC: u8 = 0x0F;
/// The single program's number.
const PROGRAM_NUMBER: u16 = 1;
/// A PSI section longer than this would not fit one TS packet after the pointer field.
pub(crate) const MAX_SECTION: usize = 183;

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial all ones, no reflection, no final xor).
pub(crate) fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in data {
        crc ^= u32::from(*byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A section assembled on the stack (both tables here are tiny).
pub(crate) struct Section {
    buf: [u8; MAX_SECTION],
    len: usize,
}

impl Section {
    fn push(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    /// The section's bytes, CRC included.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Starts a long-form section: table_id, then section_length over `body_len`
    /// bytes of table data plus the 5 bytes of extension header and 4 of CRC.
    fn start(table_id: u8, table_id_extension: u16, body_len: usize) -> Self {
        let mut s = Section {
            buf: [0; MAX_SECTION],
            len: 0,
        };
        let section_length = (5 + body_len + 4) as u16;
        // section_syntax_indicator 1, '0', reserved '11', 12-bit length.
        let [l0, l1] = (0xB000 | section_length).to_be_bytes();
        let [e0, e1] = table_id_extension.to_be_bytes();
        // reserved '11', version 0, current_next_indicator 1; section 0 of 0.
        s.push(&[table_id, l0, l1, e0, e1, 0xC1, 0, 0]);
        s
    }

    fn finish(mut self) -> Self {
        let crc = crc32_mpeg2(self.bytes());
        self.push(&crc.to_be_bytes());
        self
    }
}

/// The PAT: program 1 at [`PID_PMT`].
pub(crate) fn pat() -> Section {
    let mut s = Section::start(0x00, 1, 4);
    let [p0, p1] = PROGRAM_NUMBER.to_be_bytes();
    let [m0, m1] = (0xE000 | PID_PMT).to_be_bytes();
    s.push(&[p0, p1, m0, m1]);
    s.finish()
}

/// The PMT for the tracks present; the PCR is on the video PID when there is
/// video, else on the audio PID.
pub(crate) fn pmt(video: bool, audio: bool) -> Section {
    let streams = usize::from(video) + usize::from(audio);
    let mut s = Section::start(0x02, PROGRAM_NUMBER, 4 + 5 * streams);
    let pcr_pid = if video { PID_VIDEO } else { PID_AUDIO };
    let [c0, c1] = (0xE000 | pcr_pid).to_be_bytes();
    // reserved '1111', program_info_length 0.
    s.push(&[c0, c1, 0xF0, 0x00]);
    let mut stream = |stream_type: u8, pid: u16| {
        let [p0, p1] = (0xE000 | pid).to_be_bytes();
        s.push(&[stream_type, p0, p1, 0xF0, 0x00]);
    };
    if video {
        stream(STREAM_TYPE_H264, PID_VIDEO);
    }
    if audio {
        stream(STREAM_TYPE_ADTS_AAC, PID_AUDIO);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_catalogue_check_value() {
        // CRC-32/MPEG-2 check value over "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn pat_bytes() {
        let pat = pat();
        assert_eq!(
            pat.bytes().get(..12),
            Some(&[0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0, 0, 0x00, 0x01, 0xF0, 0x00][..])
        );
        assert_eq!(pat.bytes().len(), 16);
        // A section with its CRC appended has CRC 0 over the whole.
        assert_eq!(crc32_mpeg2(pat.bytes()), 0);
    }

    #[test]
    fn pmt_lists_only_present_tracks() {
        let both = pmt(true, true);
        assert_eq!(both.bytes().len(), 8 + 4 + 10 + 4);
        assert_eq!(crc32_mpeg2(both.bytes()), 0);
        let audio_only = pmt(false, true);
        assert_eq!(
            audio_only.bytes().get(8..17),
            Some(&[0xE1, 0x01, 0xF0, 0x00, 0x0F, 0xE1, 0x01, 0xF0, 0x00][..]),
            "PCR on the audio PID, one AAC stream"
        );
        let video_only = pmt(true, false);
        assert_eq!(
            video_only.bytes().get(8..17),
            Some(&[0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0, 0x00][..])
        );
        assert_eq!(video_only.bytes().len(), 8 + 4 + 5 + 4);
    }
}
