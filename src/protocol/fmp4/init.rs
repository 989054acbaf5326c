//! The init segment of one track: `ftyp` + `moov` with an empty sample table
//! and `mvex/trex`, so every sample lives in the chunks (ISO 14496-12 §8.8).
//!
//! Every field is a function of the [`Track`] alone (creation times are zero,
//! durations unknown), so two boxes packaging the same stream write the same bytes.

use bytes::Bytes;

use super::error::Fmp4Error;
use super::track::{Fmp4Codec, Track, TrackMedia, MAX_CONFIG_RECORD};
use super::writer::BoxWriter;

/// Upper bound on an init segment: the fixed boxes (under 1 KiB) plus the record.
const MAX_INIT_SIZE: usize = MAX_CONFIG_RECORD + 2048;

/// The unity transformation matrix of `mvhd` / `tkhd`.
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// `ftyp` brands: `iso6` (the fragment boxes used) and `cmfc` (CMAF), so one
/// init serves LL-HLS and LL-DASH alike.
const MAJOR_BRAND: &[u8; 4] = b"iso6";
const COMPATIBLE_BRANDS: [&[u8; 4]; 3] = [b"iso6", b"cmfc", b"mp41"];

/// Writes the init segment (`ftyp` + `moov`) of `track`.
pub fn write_init(track: &Track) -> Result<Bytes, Fmp4Error> {
    if track.track_id == 0 {
        return Err(Fmp4Error::ZeroTrackId);
    }
    let mut w = BoxWriter::new(MAX_INIT_SIZE);
    w.start(b"ftyp")?;
    w.bytes(MAJOR_BRAND)?;
    w.u32(0)?;
    for brand in COMPATIBLE_BRANDS {
        w.bytes(brand)?;
    }
    w.end()?;

    w.start(b"moov")?;
    write_mvhd(&mut w, track)?;
    w.start(b"trak")?;
    write_tkhd(&mut w, track)?;
    w.start(b"mdia")?;
    write_mdhd(&mut w, track)?;
    write_hdlr(&mut w, track)?;
    w.start(b"minf")?;
    match track.media {
        TrackMedia::Video { .. } => {
            w.start_full(b"vmhd", 0, 1)?;
            w.zeros(8)?; // graphicsmode + opcolor
            w.end()?;
        }
        TrackMedia::Audio { .. } => {
            w.start_full(b"smhd", 0, 0)?;
            w.zeros(4)?; // balance + reserved
            w.end()?;
        }
    }
    w.start(b"dinf")?;
    w.start_full(b"dref", 0, 0)?;
    w.u32(1)?;
    w.start_full(b"url ", 0, 1)?; // flag 1: media is in this file
    w.end()?;
    w.end()?;
    w.end()?;
    write_stbl(&mut w, track)?;
    w.end()?; // minf
    w.end()?; // mdia
    w.end()?; // trak
    w.start(b"mvex")?;
    w.start_full(b"trex", 0, 0)?;
    w.u32(track.track_id)?;
    w.u32(1)?; // default_sample_description_index
    w.zeros(12)?; // default duration, size, flags: every chunk states its own
    w.end()?;
    w.end()?;
    w.end()?; // moov
    Ok(Bytes::from(w.finish()?))
}

fn write_mvhd(w: &mut BoxWriter, track: &Track) -> Result<(), Fmp4Error> {
    w.start_full(b"mvhd", 0, 0)?;
    w.zeros(8)?; // creation / modification time: none, for byte-identical output
    w.u32(1000)?; // movie timescale
    w.u32(0)?; // duration unknown (live)
    w.u32(0x0001_0000)?; // rate 1.0
    w.u16(0x0100)?; // volume 1.0
    w.zeros(10)?;
    for m in MATRIX {
        w.u32(m)?;
    }
    w.zeros(24)?; // pre_defined
    w.u32(track.track_id.saturating_add(1))?; // next_track_ID
    w.end()
}

fn write_tkhd(w: &mut BoxWriter, track: &Track) -> Result<(), Fmp4Error> {
    w.start_full(b"tkhd", 0, 0x000003)?; // enabled | in movie
    w.zeros(8)?;
    w.u32(track.track_id)?;
    w.zeros(4)?;
    w.u32(0)?; // duration
    w.zeros(8)?;
    w.u16(0)?; // layer
    w.u16(0)?; // alternate_group
    let (volume, width, height) = match track.media {
        TrackMedia::Video { width, height } => (0, width, height),
        TrackMedia::Audio { .. } => (0x0100, 0, 0),
    };
    w.u16(volume)?;
    w.zeros(2)?;
    for m in MATRIX {
        w.u32(m)?;
    }
    w.u32(fixed_16_16(width, "tkhd width")?)?;
    w.u32(fixed_16_16(height, "tkhd height")?)?;
    w.end()
}

fn fixed_16_16(v: u32, what: &'static str) -> Result<u32, Fmp4Error> {
    u16::try_from(v)
        .map(|v| u32::from(v) << 16)
        .map_err(|_| Fmp4Error::TimeOutOfRange { what })
}

fn write_mdhd(w: &mut BoxWriter, track: &Track) -> Result<(), Fmp4Error> {
    w.start_full(b"mdhd", 0, 0)?;
    w.zeros(8)?;
    w.u32(track.timescale)?;
    w.u32(0)?;
    w.u16(0x55C4)?; // ISO 639-2 "und", packed 5 bits per letter
    w.u16(0)?;
    w.end()
}

fn write_hdlr(w: &mut BoxWriter, track: &Track) -> Result<(), Fmp4Error> {
    let (handler, name): (&[u8; 4], &[u8]) = match track.media {
        TrackMedia::Video { .. } => (b"vide", b"ringcast video\0"),
        TrackMedia::Audio { .. } => (b"soun", b"ringcast audio\0"),
    };
    w.start_full(b"hdlr", 0, 0)?;
    w.u32(0)?;
    w.bytes(handler)?;
    w.zeros(12)?;
    w.bytes(name)?;
    w.end()
}

fn write_stbl(w: &mut BoxWriter, track: &Track) -> Result<(), Fmp4Error> {
    w.start(b"stbl")?;
    w.start_full(b"stsd", 0, 0)?;
    w.u32(1)?;
    match track.media {
        TrackMedia::Video { width, height } => write_visual_entry(w, track, width, height)?,
        TrackMedia::Audio {
            sample_rate,
            channels,
        } => write_mp4a(w, track, sample_rate, channels)?,
    }
    w.end()?; // stsd
              // Empty tables: fragmented files carry their samples in moof/trun.
    for kind in [b"stts", b"stsc", b"stco"] {
        w.start_full(kind, 0, 0)?;
        w.u32(0)?;
        w.end()?;
    }
    w.start_full(b"stsz", 0, 0)?;
    w.u32(0)?; // sample_size
    w.u32(0)?; // sample_count
    w.end()?;
    w.end()
}

fn write_visual_entry(
    w: &mut BoxWriter,
    track: &Track,
    width: u32,
    height: u32,
) -> Result<(), Fmp4Error> {
    let (entry, config_box): (&[u8; 4], &[u8; 4]) = match track.codec {
        Fmp4Codec::Avc => (b"avc1", b"avcC"),
        Fmp4Codec::Hevc => (b"hvc1", b"hvcC"),
        Fmp4Codec::Av1 => (b"av01", b"av1C"),
        Fmp4Codec::Aac => {
            return Err(Fmp4Error::Internal {
                what: "audio codec on a video track",
            })
        }
    };
    let w16 = u16::try_from(width).map_err(|_| Fmp4Error::TimeOutOfRange {
        what: "sample entry width",
    })?;
    let h16 = u16::try_from(height).map_err(|_| Fmp4Error::TimeOutOfRange {
        what: "sample entry height",
    })?;
    w.start(entry)?;
    w.zeros(6)?;
    w.u16(1)?; // data_reference_index
    w.zeros(16)?; // pre_defined, reserved, pre_defined[3]
    w.u16(w16)?;
    w.u16(h16)?;
    w.u32(0x0048_0000)?; // 72 dpi
    w.u32(0x0048_0000)?;
    w.u32(0)?;
    w.u16(1)?; // frame_count
    w.zeros(32)?; // compressorname
    w.u16(0x0018)?; // depth
    w.u16(0xFFFF)?; // pre_defined = -1
    w.start(config_box)?;
    w.bytes(&track.config)?;
    w.end()?;
    // CMAF asks for pasp in visual sample entries; FLV carries square pixels.
    w.start(b"pasp")?;
    w.u32(1)?;
    w.u32(1)?;
    w.end()?;
    w.end()
}

fn write_mp4a(
    w: &mut BoxWriter,
    track: &Track,
    sample_rate: u32,
    channels: u16,
) -> Result<(), Fmp4Error> {
    w.start(b"mp4a")?;
    w.zeros(6)?;
    w.u16(1)?; // data_reference_index
    w.zeros(8)?; // version/revision/vendor
    w.u16(channels)?;
    w.u16(16)?; // samplesize
    w.zeros(4)?; // pre_defined + reserved
                 // 16.16 rate; rates above 65535 Hz do not fit, and mdhd's timescale is authoritative.
    w.u32(u16::try_from(sample_rate).map_or(0, |r| u32::from(r) << 16))?;
    write_esds(w, track)?;
    w.end()
}

/// `esds` (ISO 14496-1 §7.2.6.5): ES_Descriptor → DecoderConfigDescriptor
/// (AAC, audio stream) → DecoderSpecificInfo (the AudioSpecificConfig), SLConfig.
fn write_esds(w: &mut BoxWriter, track: &Track) -> Result<(), Fmp4Error> {
    let asc_len = track.config.len();
    // DecoderSpecificInfo: tag + 4-byte length + ASC.
    let dsi_len = asc_len;
    let dcd_len = 13 + 5 + dsi_len;
    let sl_len = 1;
    let es_len = 3 + 5 + dcd_len + 5 + sl_len;
    w.start_full(b"esds", 0, 0)?;
    descriptor_header(w, 0x03, es_len)?;
    w.u16(0)?; // ES_ID
    w.u8(0)?; // no dependency, URL or OCR stream
    descriptor_header(w, 0x04, dcd_len)?;
    w.u8(0x40)?; // objectTypeIndication: MPEG-4 Audio
    w.u8(0x15)?; // streamType 5 (audio) << 2 | reserved 1
    w.u24(0)?; // bufferSizeDB
    w.u32(0)?; // maxBitrate
    w.u32(0)?; // avgBitrate
    descriptor_header(w, 0x05, dsi_len)?;
    w.bytes(&track.config)?;
    descriptor_header(w, 0x06, sl_len)?;
    w.u8(0x02)?; // predefined SL config for MP4 files
    w.end()
}

/// A descriptor tag with its length in the fixed 4-byte expandable form, so
/// lengths never need computing twice.
fn descriptor_header(w: &mut BoxWriter, tag: u8, len: usize) -> Result<(), Fmp4Error> {
    if len >= 1 << 28 {
        return Err(Fmp4Error::ConfigTooLarge {
            size: len,
            limit: MAX_CONFIG_RECORD,
        });
    }
    w.u8(tag)?;
    // Each byte carries 7 bits; the high bit says another length byte follows.
    let l = u32::try_from(len).map_err(|_| Fmp4Error::Internal {
        what: "descriptor length",
    })?;
    w.u8(0x80 | ((l >> 21) & 0x7F) as u8)?;
    w.u8(0x80 | ((l >> 14) & 0x7F) as u8)?;
    w.u8(0x80 | ((l >> 7) & 0x7F) as u8)?;
    w.u8((l & 0x7F) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aac_track() -> Track {
        Track {
            track_id: 2,
            codec: Fmp4Codec::Aac,
            timescale: 48_000,
            media: TrackMedia::Audio {
                sample_rate: 48_000,
                channels: 2,
            },
            config: Bytes::from_static(&[0x11, 0x90]),
        }
    }

    /// The child box `path` (a chain of types, each searched inside the previous
    /// box's body after `skip` header bytes) within `data`.
    fn find<'a>(mut data: &'a [u8], path: &[(&[u8; 4], usize)]) -> &'a [u8] {
        for (kind, skip) in path {
            loop {
                let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
                if &data[4..8] == *kind {
                    data = &data[8 + skip..size];
                    break;
                }
                data = &data[size..];
            }
        }
        data
    }

    /// From the top of an init segment to the sample entries inside `stsd`
    /// (past its version/flags and entry count).
    const TO_STSD: &[(&[u8; 4], usize)] = &[
        (b"moov", 0),
        (b"trak", 0),
        (b"mdia", 0),
        (b"minf", 0),
        (b"stbl", 0),
        (b"stsd", 8),
    ];

    #[test]
    fn ftyp_is_iso6_cmfc() {
        let init = write_init(&aac_track()).unwrap();
        assert_eq!(
            &init[..28],
            b"\0\0\0\x1cftypiso6\0\0\0\0iso6cmfcmp41".as_slice()
        );
    }

    #[test]
    fn esds_carries_the_audio_specific_config() {
        let init = write_init(&aac_track()).unwrap();
        let esds = find(find(&init, TO_STSD), &[(b"mp4a", 28), (b"esds", 4)]);
        #[rustfmt::skip]
        let expected = [
            0x03, 0x80, 0x80, 0x80, 0x22, 0, 0, 0,             // ES_Descriptor, 34 bytes
            0x04, 0x80, 0x80, 0x80, 0x14, 0x40, 0x15, 0, 0, 0, // DecoderConfig: AAC, audio
            0, 0, 0, 0, 0, 0, 0, 0,                            // bitrates
            0x05, 0x80, 0x80, 0x80, 0x02, 0x11, 0x90,          // the ASC
            0x06, 0x80, 0x80, 0x80, 0x01, 0x02,                // SLConfig predefined 2
        ];
        assert_eq!(esds, expected.as_slice());
    }

    #[test]
    fn mp4a_entry_fields() {
        let init = write_init(&aac_track()).unwrap();
        let mp4a = find(find(&init, TO_STSD), &[(b"mp4a", 0)]);
        assert_eq!(&mp4a[6..8], &[0, 1], "data_reference_index");
        assert_eq!(&mp4a[16..18], &[0, 2], "channels");
        assert_eq!(&mp4a[18..20], &[0, 16], "sample size");
        assert_eq!(
            &mp4a[24..28],
            &(48_000u32 << 16).to_be_bytes(),
            "16.16 rate"
        );
    }

    #[test]
    fn track_and_timescale_fields() {
        let init = write_init(&aac_track()).unwrap();
        let mvhd = find(&init, &[(b"moov", 0), (b"mvhd", 4)]);
        assert_eq!(&mvhd[8..12], &1000u32.to_be_bytes());
        assert_eq!(&mvhd[92..96], &3u32.to_be_bytes(), "next_track_ID");
        let tkhd = find(&init, &[(b"moov", 0), (b"trak", 0), (b"tkhd", 4)]);
        assert_eq!(&tkhd[8..12], &2u32.to_be_bytes(), "track_ID");
        assert_eq!(&tkhd[32..34], &[1, 0], "audio volume 1.0");
        let mdhd = find(
            &init,
            &[(b"moov", 0), (b"trak", 0), (b"mdia", 0), (b"mdhd", 4)],
        );
        assert_eq!(&mdhd[8..12], &48_000u32.to_be_bytes());
        assert_eq!(&mdhd[16..18], &[0x55, 0xC4], "und");
        let trex = find(&init, &[(b"moov", 0), (b"mvex", 0), (b"trex", 4)]);
        assert_eq!(
            trex,
            [0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn refuses_track_id_zero_and_oversized_pictures() {
        let mut t = aac_track();
        t.track_id = 0;
        assert_eq!(write_init(&t), Err(Fmp4Error::ZeroTrackId));
        let video = Track {
            track_id: 1,
            codec: Fmp4Codec::Avc,
            timescale: 90_000,
            media: TrackMedia::Video {
                width: 70_000,
                height: 10,
            },
            config: Bytes::new(),
        };
        assert_eq!(
            write_init(&video),
            Err(Fmp4Error::TimeOutOfRange { what: "tkhd width" })
        );
    }
}
