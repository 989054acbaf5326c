//! AMF0 decoding, and everything built on it: arbitrary bytes as an AMF0 body, a
//! command message and a data message. Nothing may panic; whatever decodes must
//! re-encode to bytes that decode to the same encoding.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use ringcast::protocol::rtmp::amf0::{Amf0Decoder, Amf0Limits, Amf0Value};
use ringcast::protocol::rtmp::command::{data, Command, CommandConfig};
use ringcast::protocol::rtmp::message::type_id;

fn encode_all(values: &[Amf0Value]) -> BytesMut {
    let mut out = BytesMut::new();
    for v in values {
        v.encode(&mut out).expect("decoded values are encodable");
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let limits = Amf0Limits::default();
    if let Ok(values) = Amf0Decoder::new(input, limits).decode_all() {
        let once = encode_all(&values);
        let again = Amf0Decoder::new(&once, limits)
            .decode_all()
            .expect("re-decodes");
        assert_eq!(encode_all(&again), once, "encoding is stable");
    }
    let config = CommandConfig::default();
    if let Ok(cmd) = Command::decode(type_id::COMMAND_AMF0, input, &config) {
        let mut out = BytesMut::new();
        cmd.encode(&mut out)
            .expect("decoded commands are encodable");
    }
    let _ = Command::decode(type_id::COMMAND_AMF3, input, &config);
    let _ = data::parse_data_message(type_id::DATA_AMF0, &Bytes::copy_from_slice(input), limits);
});
