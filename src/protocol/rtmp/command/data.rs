//! Data messages (type 18, or type 15 with a 0 format byte): metadata and other
//! script handlers.
//!
//! Publishers wrap metadata as `@setDataFrame, onMetaData, {...}`; everything
//! downstream (FLV files, players) expects it to start at `onMetaData`, so the
//! wrapper is stripped here by slicing, without copying or re-encoding the body.

use bytes::{Bytes, BytesMut};

use super::{amf0_body, CommandError};
use crate::protocol::rtmp::amf0::{encode, Amf0Decoder, Amf0Error, Amf0Limits};
use crate::protocol::rtmp::message::type_id;

/// The handler name of stream metadata.
pub const ON_METADATA: &str = "onMetaData";
/// The wrapper publishers put before metadata they want the server to keep.
pub const SET_DATA_FRAME: &str = "@setDataFrame";
/// Asks the server to forget the stream's metadata.
pub const CLEAR_DATA_FRAME: &str = "@clearDataFrame";
/// The handler servers send to allow players raw sample access.
pub const RTMP_SAMPLE_ACCESS: &str = "|RtmpSampleAccess";

/// What a data message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataMessage {
    /// Stream metadata; the body starts at the `onMetaData` string.
    Metadata(Bytes),
    /// `@clearDataFrame`: drop the stream's metadata.
    ClearMetadata,
    /// Another handler (`onCuePoint`, `onTextData`, `onFI`, `|RtmpSampleAccess`, ...).
    Other {
        /// The handler name.
        handler: String,
        /// The body, starting at the handler name (any `@setDataFrame` removed).
        body: Bytes,
    },
}

/// Splits a data message into its handler and body.
pub fn parse_data_message(
    message_type: u8,
    payload: &Bytes,
    limits: Amf0Limits,
) -> Result<DataMessage, CommandError> {
    if message_type != type_id::DATA_AMF0 && message_type != type_id::DATA_AMF3 {
        return Err(CommandError::NotACommand {
            type_id: message_type,
        });
    }
    let body = amf0_body(message_type, payload, type_id::DATA_AMF3)?;
    // What is forwarded: the whole AMF0 body, or what follows `@setDataFrame`.
    let mut forwarded = body;
    let mut decoder = Amf0Decoder::new(body, limits);
    let mut handler = decoder
        .decode()?
        .as_str()
        .ok_or(CommandError::MissingName)?
        .to_owned();
    if handler == CLEAR_DATA_FRAME {
        return Ok(DataMessage::ClearMetadata);
    }
    if handler == SET_DATA_FRAME {
        forwarded = decoder.remaining();
        handler = decoder
            .decode()?
            .as_str()
            .ok_or(CommandError::MissingName)?
            .to_owned();
    }
    // `forwarded` lies inside `payload`, so this shares its buffer.
    let body = payload.slice_ref(forwarded);
    if handler == ON_METADATA {
        Ok(DataMessage::Metadata(body))
    } else {
        Ok(DataMessage::Other { handler, body })
    }
}

/// True when a Script frame payload is stream metadata (starts with `onMetaData`).
pub fn is_metadata(payload: &[u8]) -> bool {
    const PREFIX: &[u8] = b"\x02\x00\x0aonMetaData";
    payload.starts_with(PREFIX)
}

/// Writes `@setDataFrame` followed by `body` (which starts at `onMetaData`): how a
/// publisher hands metadata to a server.
pub fn write_set_data_frame(body: &[u8], out: &mut BytesMut) -> Result<(), Amf0Error> {
    encode::write_string(out, SET_DATA_FRAME)?;
    out.extend_from_slice(body);
    Ok(())
}

/// Writes `|RtmpSampleAccess, true, true`: lets Flash-era players read raw samples.
pub fn write_sample_access(out: &mut BytesMut) -> Result<(), Amf0Error> {
    encode::write_string(out, RTMP_SAMPLE_ACCESS)?;
    encode::write_bool(out, true);
    encode::write_bool(out, true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rtmp::amf0::Amf0Value;

    fn metadata_body() -> BytesMut {
        let mut b = BytesMut::new();
        encode::write_string(&mut b, ON_METADATA).unwrap();
        Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(320.0))])
            .encode(&mut b)
            .unwrap();
        b
    }

    #[test]
    fn set_data_frame_is_stripped_by_slicing() {
        let body = metadata_body();
        let mut msg = BytesMut::new();
        write_set_data_frame(&body, &mut msg).unwrap();
        let msg = msg.freeze();
        let parsed = parse_data_message(type_id::DATA_AMF0, &msg, Amf0Limits::default()).unwrap();
        assert_eq!(parsed, DataMessage::Metadata(Bytes::from(body.to_vec())));
        if let DataMessage::Metadata(b) = parsed {
            assert!(is_metadata(&b));
            assert_eq!(b.as_ptr(), msg[16..].as_ptr(), "no copy");
        }
    }

    #[test]
    fn bare_metadata_and_amf3_typed_messages_parse() {
        let body = metadata_body().freeze();
        assert_eq!(
            parse_data_message(type_id::DATA_AMF0, &body, Amf0Limits::default()),
            Ok(DataMessage::Metadata(body.clone()))
        );
        let mut amf3 = vec![0u8];
        amf3.extend_from_slice(&body);
        assert_eq!(
            parse_data_message(
                type_id::DATA_AMF3,
                &Bytes::from(amf3),
                Amf0Limits::default()
            ),
            Ok(DataMessage::Metadata(body))
        );
    }

    #[test]
    fn other_handlers_and_clear() {
        let mut b = BytesMut::new();
        write_sample_access(&mut b).unwrap();
        let b = b.freeze();
        assert_eq!(
            parse_data_message(type_id::DATA_AMF0, &b, Amf0Limits::default()),
            Ok(DataMessage::Other {
                handler: RTMP_SAMPLE_ACCESS.into(),
                body: b.clone()
            })
        );
        assert!(!is_metadata(&b));
        let mut c = BytesMut::new();
        encode::write_string(&mut c, CLEAR_DATA_FRAME).unwrap();
        assert_eq!(
            parse_data_message(type_id::DATA_AMF0, &c.freeze(), Amf0Limits::default()),
            Ok(DataMessage::ClearMetadata)
        );
    }

    #[test]
    fn malformed_data_messages_are_typed_errors() {
        let limits = Amf0Limits::default();
        assert!(matches!(
            parse_data_message(type_id::DATA_AMF0, &Bytes::new(), limits),
            Err(CommandError::Amf0(Amf0Error::Truncated { .. }))
        ));
        assert_eq!(
            parse_data_message(type_id::DATA_AMF0, &Bytes::from_static(&[0x05]), limits),
            Err(CommandError::MissingName)
        );
        assert_eq!(
            parse_data_message(type_id::DATA_AMF3, &Bytes::from_static(&[0x03]), limits),
            Err(CommandError::Amf3Body { byte: 3 })
        );
        assert_eq!(
            parse_data_message(type_id::AUDIO, &Bytes::new(), limits),
            Err(CommandError::NotACommand { type_id: 8 })
        );
    }
}
