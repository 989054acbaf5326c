//! What an H.264 access unit holds, read from its NAL unit headers only: whether it
//! carries a picture and whether that picture is an IDR (a keyframe, as ffprobe's
//! `key_frame` says). Two framings: length-prefixed (fMP4 samples) and Annex B
//! start codes (MPEG-TS PES payloads). Bounded: at most [`MAX_NALS`] NAL units are
//! looked at, and malformed input just ends the walk.

/// Most NAL units examined per access unit.
pub const MAX_NALS: usize = 16;

/// NAL unit type of a non-IDR slice; 1..=5 are coded slices.
const NAL_SLICE: u8 = 1;
/// NAL unit type of an IDR slice.
const NAL_IDR: u8 = 5;

/// What an access unit holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccessUnit {
    /// It has at least one coded slice.
    pub picture: bool,
    /// It has an IDR slice.
    pub keyframe: bool,
}

impl AccessUnit {
    fn add(&mut self, header: u8) {
        let t = header & 0x1f;
        if (NAL_SLICE..=NAL_IDR).contains(&t) {
            self.picture = true;
        }
        if t == NAL_IDR {
            self.keyframe = true;
        }
    }
}

/// Classifies length-prefixed NAL units (`len_size` 1, 2 or 4 bytes each).
pub fn classify_length_prefixed(mut nals: &[u8], len_size: u8) -> AccessUnit {
    let mut au = AccessUnit::default();
    let size = usize::from(len_size);
    if !matches!(size, 1 | 2 | 4) {
        return au;
    }
    for _ in 0..MAX_NALS {
        let Some(field) = nals.get(..size) else { break };
        let len = field.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        let Some(nal) = nals.get(size..size.saturating_add(len)) else {
            break;
        };
        if let Some(&h) = nal.first() {
            au.add(h);
        }
        nals = nals.get(size + len..).unwrap_or_default();
    }
    au
}

/// Classifies an Annex B access unit (NAL units after `00 00 01` start codes).
pub fn classify_annexb(es: &[u8]) -> AccessUnit {
    let mut au = AccessUnit::default();
    let mut rest = es;
    for _ in 0..MAX_NALS {
        let Some(at) = rest.windows(3).position(|w| w == [0, 0, 1]) else {
            break;
        };
        rest = rest.get(at + 3..).unwrap_or_default();
        if let Some(&h) = rest.first() {
            au.add(h);
        }
    }
    au
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixed_idr_and_non_idr() {
        let idr = [0, 0, 0, 2, 0x06, 0x05, 0, 0, 0, 2, 0x65, 0x88];
        assert_eq!(
            classify_length_prefixed(&idr, 4),
            AccessUnit {
                picture: true,
                keyframe: true
            }
        );
        let p = [0, 2, 0x41, 0x9a];
        assert_eq!(
            classify_length_prefixed(&p, 2),
            AccessUnit {
                picture: true,
                keyframe: false
            }
        );
        assert_eq!(
            classify_length_prefixed(&[0, 0, 0, 9, 0x65], 4),
            AccessUnit::default(),
            "truncated"
        );
        assert_eq!(classify_length_prefixed(&idr, 3), AccessUnit::default());
    }

    #[test]
    fn annexb_with_aud_sps_pps() {
        let au = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 9,
        ];
        assert_eq!(
            classify_annexb(&au),
            AccessUnit {
                picture: true,
                keyframe: true
            }
        );
        assert_eq!(
            classify_annexb(&[0, 0, 1, 0x09, 0xf0]),
            AccessUnit::default()
        );
        assert_eq!(classify_annexb(&[]), AccessUnit::default());
    }
}
