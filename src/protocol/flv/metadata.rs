//! `onMetaData`: the script data that describes a stream (size, frame rate,
//! codecs, bitrates, encoder), parsed into typed fields and written back.
//!
//! Unknown keys, and known keys with an unexpected type, are kept in
//! [`Metadata::other`] in wire order, so a parse/encode round trip loses nothing
//! an encoder sent. Publishers wrap metadata as `@setDataFrame, onMetaData, {..}`;
//! frames inside ringcast carry it without the wrapper (DESIGN.md), see
//! [`strip_set_data_frame`] and [`add_set_data_frame`].

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use super::aac::AacConfig;
use super::codec::VideoCodec;
use super::config::VideoConfig;
use crate::protocol::rtmp::amf0::{encode, Amf0Decoder, Amf0Error, Amf0Limits, Amf0Value};
use crate::protocol::rtmp::command::data::{write_set_data_frame, ON_METADATA, SET_DATA_FRAME};

/// Why a script payload could not be read as metadata.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MetadataError {
    /// The AMF0 body is malformed or breaks an AMF0 limit.
    #[error(transparent)]
    Amf0(#[from] Amf0Error),
    /// The script data is another handler (e.g. `onCuePoint`).
    #[error("script data handler {handler:?} is not onMetaData")]
    NotMetadata {
        /// The handler name found.
        handler: String,
    },
    /// The payload does not start with a handler-name string.
    #[error("script data does not start with a handler name")]
    MissingHandler,
    /// `onMetaData` is followed by something other than an object or ECMA array.
    #[error("onMetaData value is not an object or ECMA array")]
    NotAnObject,
}

/// A codec id as metadata carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecId {
    /// Legacy FLV codec id (video: 7 AVC, 12 HEVC; audio: 2 MP3, 10 AAC).
    Legacy(u8),
    /// Enhanced RTMP FourCC (`hvc1`, `av01`, `Opus`, ...), written as the
    /// number whose big-endian bytes are the FourCC, as the E-RTMP spec does.
    FourCc([u8; 4]),
}

impl CodecId {
    fn from_amf(v: &Amf0Value) -> Option<Self> {
        match v {
            Amf0Value::Number(n) if n.fract() == 0.0 && (0.0..256.0).contains(n) => {
                Some(CodecId::Legacy(*n as u8))
            }
            Amf0Value::Number(n)
                if n.fract() == 0.0 && (256.0..=f64::from(u32::MAX)).contains(n) =>
            {
                Some(CodecId::FourCc((*n as u32).to_be_bytes()))
            }
            Amf0Value::String(s) => s.as_bytes().try_into().ok().map(CodecId::FourCc),
            _ => None,
        }
    }

    fn to_amf(self) -> Amf0Value {
        match self {
            CodecId::Legacy(id) => Amf0Value::Number(f64::from(id)),
            CodecId::FourCc(cc) => Amf0Value::Number(f64::from(u32::from_be_bytes(cc))),
        }
    }
}

/// Parsed `onMetaData`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    /// Seconds (0 or absent for live streams).
    pub duration: Option<f64>,
    /// Picture width in pixels.
    pub width: Option<f64>,
    /// Picture height in pixels.
    pub height: Option<f64>,
    /// Video bitrate in kbit/s.
    pub videodatarate: Option<f64>,
    /// Frames per second.
    pub framerate: Option<f64>,
    /// Video codec.
    pub videocodecid: Option<CodecId>,
    /// Audio bitrate in kbit/s.
    pub audiodatarate: Option<f64>,
    /// Audio sample rate in Hz.
    pub audiosamplerate: Option<f64>,
    /// Bits per audio sample.
    pub audiosamplesize: Option<f64>,
    /// Two audio channels (or more).
    pub stereo: Option<bool>,
    /// Audio codec.
    pub audiocodecid: Option<CodecId>,
    /// The encoder's name and version.
    pub encoder: Option<String>,
    /// File size in bytes (files only).
    pub filesize: Option<f64>,
    /// Every other property, in wire order.
    pub other: Vec<(String, Amf0Value)>,
}

impl Metadata {
    /// Parses a script frame payload: `onMetaData` + object/ECMA array, with or
    /// without a leading `@setDataFrame`. Bytes after the object are ignored.
    pub fn parse(payload: &[u8], limits: Amf0Limits) -> Result<Self, MetadataError> {
        let mut d = Amf0Decoder::new(payload, limits);
        let mut handler = handler_name(d.decode()?)?;
        if handler == SET_DATA_FRAME {
            handler = handler_name(d.decode()?)?;
        }
        if handler != ON_METADATA {
            return Err(MetadataError::NotMetadata { handler });
        }
        let props = match d.decode()? {
            Amf0Value::EcmaArray(p) | Amf0Value::Object(p) => p,
            _ => return Err(MetadataError::NotAnObject),
        };
        let mut m = Metadata::default();
        for (key, value) in props {
            if !m.take_known(&key, &value) {
                m.other.push((key, value));
            }
        }
        Ok(m)
    }

    /// Stores a known key with the expected type in its field, if not set yet.
    fn take_known(&mut self, key: &str, value: &Amf0Value) -> bool {
        fn set<T>(slot: &mut Option<T>, v: Option<T>) -> bool {
            match (slot.is_none(), v) {
                (true, Some(v)) => {
                    *slot = Some(v);
                    true
                }
                _ => false,
            }
        }
        let num = value.as_number();
        match key {
            "duration" => set(&mut self.duration, num),
            "width" => set(&mut self.width, num),
            "height" => set(&mut self.height, num),
            "videodatarate" => set(&mut self.videodatarate, num),
            "framerate" => set(&mut self.framerate, num),
            "videocodecid" => set(&mut self.videocodecid, CodecId::from_amf(value)),
            "audiodatarate" => set(&mut self.audiodatarate, num),
            "audiosamplerate" => set(&mut self.audiosamplerate, num),
            "audiosamplesize" => set(&mut self.audiosamplesize, num),
            "stereo" => set(&mut self.stereo, value.as_bool()),
            "audiocodecid" => set(&mut self.audiocodecid, CodecId::from_amf(value)),
            "encoder" => set(&mut self.encoder, value.as_str().map(str::to_owned)),
            "filesize" => set(&mut self.filesize, num),
            _ => false,
        }
    }

    /// Appends `onMetaData` + an ECMA array: known fields in the order ffmpeg
    /// writes them, then [`Metadata::other`]. No `@setDataFrame`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), Amf0Error> {
        let n = Amf0Value::Number;
        let known: [(&str, Option<Amf0Value>); 13] = [
            ("duration", self.duration.map(n)),
            ("width", self.width.map(n)),
            ("height", self.height.map(n)),
            ("videodatarate", self.videodatarate.map(n)),
            ("framerate", self.framerate.map(n)),
            ("videocodecid", self.videocodecid.map(CodecId::to_amf)),
            ("audiodatarate", self.audiodatarate.map(n)),
            ("audiosamplerate", self.audiosamplerate.map(n)),
            ("audiosamplesize", self.audiosamplesize.map(n)),
            ("stereo", self.stereo.map(Amf0Value::Boolean)),
            ("audiocodecid", self.audiocodecid.map(CodecId::to_amf)),
            ("encoder", self.encoder.clone().map(Amf0Value::String)),
            ("filesize", self.filesize.map(n)),
        ];
        let props: Vec<(String, Amf0Value)> = known
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .chain(self.other.iter().cloned())
            .collect();
        encode::write_string(out, ON_METADATA)?;
        Amf0Value::EcmaArray(props).encode(out)
    }

    /// The encoded payload of a script frame carrying this metadata.
    pub fn to_payload(&self) -> Result<Bytes, Amf0Error> {
        let mut out = BytesMut::with_capacity(256);
        self.encode(&mut out)?;
        Ok(out.freeze())
    }

    /// Fills fields the publisher left out from the decoded sequence headers
    /// (what a status page or an FLV file needs when the encoder sent no metadata).
    pub fn fill_from_configs(&mut self, video: Option<&VideoConfig>, audio: Option<&AacConfig>) {
        if let Some(v) = video {
            let (w, h) = v.dimensions();
            self.width.get_or_insert(f64::from(w));
            self.height.get_or_insert(f64::from(h));
            self.videocodecid.get_or_insert(match v.codec() {
                VideoCodec::Hevc => CodecId::Legacy(12),
                _ => CodecId::Legacy(7),
            });
        }
        if let Some(a) = audio {
            self.audiosamplerate
                .get_or_insert(f64::from(a.extension_sample_rate.unwrap_or(a.sample_rate)));
            self.audiosamplesize.get_or_insert(16.0);
            self.stereo.get_or_insert(a.channels >= 2);
            self.audiocodecid.get_or_insert(CodecId::Legacy(10));
        }
    }
}

fn handler_name(v: Amf0Value) -> Result<String, MetadataError> {
    match v {
        Amf0Value::String(s) => Ok(s),
        _ => Err(MetadataError::MissingHandler),
    }
}

/// Removes a leading `@setDataFrame` from a script payload by slicing (no copy);
/// payloads without it are returned as they are.
pub fn strip_set_data_frame(payload: &Bytes, limits: Amf0Limits) -> Result<Bytes, MetadataError> {
    let mut d = Amf0Decoder::new(payload, limits);
    if handler_name(d.decode()?)? == SET_DATA_FRAME {
        Ok(payload.slice_ref(d.remaining()))
    } else {
        Ok(payload.clone())
    }
}

/// Writes `@setDataFrame` followed by `body` (a payload starting at `onMetaData`):
/// the form an RTMP publisher sends to a server.
pub fn add_set_data_frame(body: &[u8], out: &mut BytesMut) -> Result<(), Amf0Error> {
    write_set_data_frame(body, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FrameKind;
    use proptest::prelude::*;

    fn ffmpeg_metadata_payload() -> Bytes {
        crate::protocol::flv::fixture_frames("avc444_aac_320x240.flv")
            .into_iter()
            .find(|f| f.kind == FrameKind::Script)
            .unwrap()
            .payload
    }

    #[test]
    fn parses_ffmpeg_metadata_and_reencodes_identically() {
        let payload = ffmpeg_metadata_payload();
        let m = Metadata::parse(&payload, Amf0Limits::default()).unwrap();
        assert_eq!(
            (m.width, m.height, m.framerate),
            (Some(320.0), Some(240.0), Some(25.0))
        );
        assert_eq!(m.videocodecid, Some(CodecId::Legacy(7)));
        assert_eq!(m.audiocodecid, Some(CodecId::Legacy(10)));
        assert_eq!(m.audiosamplerate, Some(44100.0));
        assert_eq!(m.stereo, Some(false));
        assert_eq!(m.encoder.as_deref(), Some("Lavf59.27.100"));
        assert!(m.other.is_empty());
        assert_eq!(
            m.to_payload().unwrap(),
            payload,
            "same keys, same order, same bytes"
        );
    }

    #[test]
    fn keeps_unknown_keys_and_mistyped_known_keys() {
        let mut body = BytesMut::new();
        encode::write_string(&mut body, ON_METADATA).unwrap();
        Amf0Value::object([
            ("width", Amf0Value::string("1280")),
            ("height", Amf0Value::Number(720.0)),
            ("fps", Amf0Value::Number(30.0)),
            (
                "videocodecid",
                Amf0Value::Number(f64::from(u32::from_be_bytes(*b"hvc1"))),
            ),
            ("audiocodecid", Amf0Value::string("Opus")),
        ])
        .encode(&mut body)
        .unwrap();
        let m = Metadata::parse(&body, Amf0Limits::default()).unwrap();
        assert_eq!(m.width, None);
        assert_eq!(m.height, Some(720.0));
        assert_eq!(m.videocodecid, Some(CodecId::FourCc(*b"hvc1")));
        assert_eq!(m.audiocodecid, Some(CodecId::FourCc(*b"Opus")));
        assert_eq!(
            m.other,
            vec![
                ("width".to_owned(), Amf0Value::string("1280")),
                ("fps".to_owned(), Amf0Value::Number(30.0))
            ]
        );
        let again = Metadata::parse(&m.to_payload().unwrap(), Amf0Limits::default()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn set_data_frame_strip_and_add() {
        let body = ffmpeg_metadata_payload();
        let mut wrapped = BytesMut::new();
        add_set_data_frame(&body, &mut wrapped).unwrap();
        let wrapped = wrapped.freeze();
        assert_eq!(
            strip_set_data_frame(&wrapped, Amf0Limits::default()).unwrap(),
            body
        );
        assert_eq!(
            strip_set_data_frame(&body, Amf0Limits::default()).unwrap(),
            body
        );
        // The parser accepts the wrapped form too.
        assert_eq!(
            Metadata::parse(&wrapped, Amf0Limits::default()).unwrap(),
            Metadata::parse(&body, Amf0Limits::default()).unwrap()
        );
    }

    #[test]
    fn errors_are_typed() {
        let limits = Amf0Limits::default();
        let mut cue = BytesMut::new();
        encode::write_string(&mut cue, "onCuePoint").unwrap();
        assert_eq!(
            Metadata::parse(&cue, limits),
            Err(MetadataError::NotMetadata {
                handler: "onCuePoint".into()
            })
        );
        assert_eq!(
            Metadata::parse(&[0x05], limits),
            Err(MetadataError::MissingHandler)
        );
        let mut no_obj = BytesMut::new();
        encode::write_string(&mut no_obj, ON_METADATA).unwrap();
        encode::write_null(&mut no_obj);
        assert_eq!(
            Metadata::parse(&no_obj, limits),
            Err(MetadataError::NotAnObject)
        );
        assert!(matches!(
            Metadata::parse(&[], limits),
            Err(MetadataError::Amf0(_))
        ));
        let payload = ffmpeg_metadata_payload();
        for cut in 0..payload.len() - 3 {
            assert!(
                Metadata::parse(&payload[..cut], limits).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn fill_from_configs_keeps_publisher_values() {
        let mut m = Metadata {
            width: Some(640.0),
            ..Metadata::default()
        };
        let aac = AacConfig {
            object_type: 2,
            sample_rate: 48000,
            extension_sample_rate: None,
            channel_config: 2,
            channels: 2,
        };
        m.fill_from_configs(None, Some(&aac));
        assert_eq!(
            (m.width, m.audiosamplerate, m.stereo),
            (Some(640.0), Some(48000.0), Some(true))
        );
        assert_eq!(m.audiocodecid, Some(CodecId::Legacy(10)));
        assert_eq!(m.height, None);
    }

    fn arb_value() -> impl Strategy<Value = Amf0Value> {
        prop_oneof![
            (-1e9f64..1e9).prop_map(Amf0Value::Number),
            any::<bool>().prop_map(Amf0Value::Boolean),
            "[a-zA-Z0-9 ]{0,16}".prop_map(Amf0Value::String),
            Just(Amf0Value::Null),
        ]
    }

    proptest! {
        #[test]
        fn parse_encode_parse_is_stable(
            props in proptest::collection::vec(
                (prop_oneof![Just("width".to_owned()), Just("stereo".to_owned()), Just("encoder".to_owned()),
                    Just("videocodecid".to_owned()), "[a-z]{1,10}"], arb_value()), 0..20),
        ) {
            let mut body = BytesMut::new();
            encode::write_string(&mut body, ON_METADATA).unwrap();
            Amf0Value::EcmaArray(props).encode(&mut body).unwrap();
            let m = Metadata::parse(&body, Amf0Limits::default()).unwrap();
            let again = Metadata::parse(&m.to_payload().unwrap(), Amf0Limits::default()).unwrap();
            prop_assert_eq!(again, m);
        }
    }
}
