//! Protocol control messages (RTMP spec 5.4, types 1–3, 5, 6) and User Control
//! messages (type 4, spec 6.2 and 7.1.7), typed.
//!
//! They travel on chunk stream 2, message stream 0. The chunk decoder already
//! applies Set Chunk Size and Abort itself; the session uses these types for the rest
//! (acknowledgements, window sizes, pings, stream begin/EOF).

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::protocol::reader::Reader;

use super::message::{type_id, RtmpMessage};

/// The chunk stream id control messages are sent on.
pub const CONTROL_CSID: u32 = 2;

/// A control message payload is malformed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// The payload is shorter than the message type requires.
    #[error("control message type {type_id} has {len} bytes, needs at least {need}")]
    TooShort {
        /// The message type id.
        type_id: u8,
        /// The payload length.
        len: usize,
        /// The minimum length for that type (and event).
        need: usize,
    },
    /// Set Peer Bandwidth with a limit type other than 0, 1, 2.
    #[error("set peer bandwidth limit type {0} is not 0, 1 or 2")]
    InvalidLimitType(u8),
}

/// How the peer should apply a Set Peer Bandwidth (spec 5.4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitType {
    /// Limit output bandwidth to the window size.
    Hard = 0,
    /// Limit to the window or the current limit, whichever is smaller.
    Soft = 1,
    /// Hard if the previous limit was hard, else ignore.
    Dynamic = 2,
}

/// A User Control event (message type 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserControlEvent {
    /// Event 0: the stream became functional.
    StreamBegin {
        /// Message stream id.
        stream_id: u32,
    },
    /// Event 1: playback of the stream ended.
    StreamEof {
        /// Message stream id.
        stream_id: u32,
    },
    /// Event 2: no more data on the stream for now.
    StreamDry {
        /// Message stream id.
        stream_id: u32,
    },
    /// Event 3: the client's buffer length for a stream.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        ms: u32,
    },
    /// Event 4: the stream is a recorded one.
    StreamIsRecorded {
        /// Message stream id.
        stream_id: u32,
    },
    /// Event 6: liveness probe; answer with [`UserControlEvent::PingResponse`].
    PingRequest(u32),
    /// Event 7: answer to a ping, echoing its timestamp.
    PingResponse(u32),
    /// Any other event (e.g. FMS buffer empty/ready 31/32), kept as is.
    Unknown {
        /// The event type.
        event_type: u16,
        /// The event data after the type.
        data: Bytes,
    },
}

/// A typed protocol control or user control message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlMessage {
    /// Type 1: the sender's new maximum chunk size.
    SetChunkSize(u32),
    /// Type 2: discard the partial message on this chunk stream id.
    Abort {
        /// The chunk stream id.
        csid: u32,
    },
    /// Type 3: bytes received so far (the sequence number, wrapping).
    Acknowledgement(u32),
    /// Type 5: acknowledge every this many bytes.
    WindowAckSize(u32),
    /// Type 6: limit the peer's output bandwidth.
    SetPeerBandwidth {
        /// Window size in bytes.
        size: u32,
        /// How to apply it.
        limit: LimitType,
    },
    /// Type 4: a user control event.
    UserControl(UserControlEvent),
}

fn u32_at(payload: &[u8], at: usize, type_id: u8, need: usize) -> Result<u32, ControlError> {
    let mut r = Reader::new(payload);
    r.skip(at)
        .and_then(|()| r.be_u32())
        .map_err(|_| ControlError::TooShort {
            type_id,
            len: payload.len(),
            need,
        })
}

impl ControlMessage {
    /// Parses `msg` if it is a control message type (1–6); `Ok(None)` for any
    /// other type. Bytes past what the type needs are ignored, as peers pad.
    pub fn from_message(msg: &RtmpMessage) -> Result<Option<Self>, ControlError> {
        let p = &msg.payload[..];
        let t = msg.type_id;
        let parsed = match t {
            type_id::SET_CHUNK_SIZE => ControlMessage::SetChunkSize(u32_at(p, 0, t, 4)?),
            type_id::ABORT => ControlMessage::Abort {
                csid: u32_at(p, 0, t, 4)?,
            },
            type_id::ACKNOWLEDGEMENT => ControlMessage::Acknowledgement(u32_at(p, 0, t, 4)?),
            type_id::WINDOW_ACK_SIZE => ControlMessage::WindowAckSize(u32_at(p, 0, t, 4)?),
            type_id::SET_PEER_BANDWIDTH => {
                let size = u32_at(p, 0, t, 5)?;
                let limit = match p.get(4) {
                    Some(0) => LimitType::Hard,
                    Some(1) => LimitType::Soft,
                    Some(2) => LimitType::Dynamic,
                    Some(&other) => return Err(ControlError::InvalidLimitType(other)),
                    None => {
                        return Err(ControlError::TooShort {
                            type_id: t,
                            len: p.len(),
                            need: 5,
                        })
                    }
                };
                ControlMessage::SetPeerBandwidth { size, limit }
            }
            type_id::USER_CONTROL => ControlMessage::UserControl(parse_event(&msg.payload)?),
            _ => return Ok(None),
        };
        Ok(Some(parsed))
    }

    /// The message to send: chunk stream 2, message stream 0, timestamp 0.
    pub fn to_message(&self) -> RtmpMessage {
        let mut p = BytesMut::with_capacity(10);
        let t = match self {
            ControlMessage::SetChunkSize(size) => {
                p.put_u32(*size);
                type_id::SET_CHUNK_SIZE
            }
            ControlMessage::Abort { csid } => {
                p.put_u32(*csid);
                type_id::ABORT
            }
            ControlMessage::Acknowledgement(seq) => {
                p.put_u32(*seq);
                type_id::ACKNOWLEDGEMENT
            }
            ControlMessage::WindowAckSize(size) => {
                p.put_u32(*size);
                type_id::WINDOW_ACK_SIZE
            }
            ControlMessage::SetPeerBandwidth { size, limit } => {
                p.put_u32(*size);
                p.put_u8(*limit as u8);
                type_id::SET_PEER_BANDWIDTH
            }
            ControlMessage::UserControl(event) => {
                write_event(event, &mut p);
                type_id::USER_CONTROL
            }
        };
        RtmpMessage {
            csid: CONTROL_CSID,
            timestamp: 0,
            type_id: t,
            stream_id: 0,
            payload: p.freeze(),
        }
    }
}

fn parse_event(payload: &Bytes) -> Result<UserControlEvent, ControlError> {
    let t = type_id::USER_CONTROL;
    let event_type = Reader::new(payload)
        .be_u16()
        .map_err(|_| ControlError::TooShort {
            type_id: t,
            len: payload.len(),
            need: 2,
        })?;
    let p = &payload[..];
    Ok(match event_type {
        0 => UserControlEvent::StreamBegin {
            stream_id: u32_at(p, 2, t, 6)?,
        },
        1 => UserControlEvent::StreamEof {
            stream_id: u32_at(p, 2, t, 6)?,
        },
        2 => UserControlEvent::StreamDry {
            stream_id: u32_at(p, 2, t, 6)?,
        },
        3 => UserControlEvent::SetBufferLength {
            stream_id: u32_at(p, 2, t, 10)?,
            ms: u32_at(p, 6, t, 10)?,
        },
        4 => UserControlEvent::StreamIsRecorded {
            stream_id: u32_at(p, 2, t, 6)?,
        },
        6 => UserControlEvent::PingRequest(u32_at(p, 2, t, 6)?),
        7 => UserControlEvent::PingResponse(u32_at(p, 2, t, 6)?),
        other => UserControlEvent::Unknown {
            event_type: other,
            data: payload.slice_ref(payload.get(2..).unwrap_or_default()),
        },
    })
}

fn write_event(event: &UserControlEvent, p: &mut BytesMut) {
    match event {
        UserControlEvent::StreamBegin { stream_id } => {
            p.put_u16(0);
            p.put_u32(*stream_id);
        }
        UserControlEvent::StreamEof { stream_id } => {
            p.put_u16(1);
            p.put_u32(*stream_id);
        }
        UserControlEvent::StreamDry { stream_id } => {
            p.put_u16(2);
            p.put_u32(*stream_id);
        }
        UserControlEvent::SetBufferLength { stream_id, ms } => {
            p.put_u16(3);
            p.put_u32(*stream_id);
            p.put_u32(*ms);
        }
        UserControlEvent::StreamIsRecorded { stream_id } => {
            p.put_u16(4);
            p.put_u32(*stream_id);
        }
        UserControlEvent::PingRequest(ts) => {
            p.put_u16(6);
            p.put_u32(*ts);
        }
        UserControlEvent::PingResponse(ts) => {
            p.put_u16(7);
            p.put_u32(*ts);
        }
        UserControlEvent::Unknown { event_type, data } => {
            p.put_u16(*event_type);
            p.extend_from_slice(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: ControlMessage) {
        let msg = m.to_message();
        assert_eq!(msg.csid, 2);
        assert_eq!(msg.stream_id, 0);
        assert_eq!(ControlMessage::from_message(&msg), Ok(Some(m)));
    }

    #[test]
    fn every_kind_round_trips() {
        round_trip(ControlMessage::SetChunkSize(4096));
        round_trip(ControlMessage::Abort { csid: 6 });
        round_trip(ControlMessage::Acknowledgement(0xDEAD_BEEF));
        round_trip(ControlMessage::WindowAckSize(2_500_000));
        round_trip(ControlMessage::SetPeerBandwidth {
            size: 2_500_000,
            limit: LimitType::Dynamic,
        });
        for e in [
            UserControlEvent::StreamBegin { stream_id: 1 },
            UserControlEvent::StreamEof { stream_id: 1 },
            UserControlEvent::StreamDry { stream_id: 1 },
            UserControlEvent::SetBufferLength {
                stream_id: 1,
                ms: 3000,
            },
            UserControlEvent::StreamIsRecorded { stream_id: 1 },
            UserControlEvent::PingRequest(1234),
            UserControlEvent::PingResponse(1234),
            UserControlEvent::Unknown {
                event_type: 31,
                data: Bytes::from_static(&[0, 0, 0, 1]),
            },
        ] {
            round_trip(ControlMessage::UserControl(e));
        }
    }

    #[test]
    fn wire_bytes_match_the_spec() {
        let m = ControlMessage::SetPeerBandwidth {
            size: 5_000_000,
            limit: LimitType::Dynamic,
        }
        .to_message();
        assert_eq!(m.type_id, 6);
        assert_eq!(&m.payload[..], &[0x00, 0x4C, 0x4B, 0x40, 2]);
        let m = ControlMessage::UserControl(UserControlEvent::SetBufferLength {
            stream_id: 1,
            ms: 100,
        })
        .to_message();
        assert_eq!(&m.payload[..], &[0, 3, 0, 0, 0, 1, 0, 0, 0, 100]);
    }

    #[test]
    fn short_payloads_are_typed_errors() {
        let mut msg = ControlMessage::WindowAckSize(1).to_message();
        msg.payload = Bytes::from_static(&[0, 0, 1]);
        assert_eq!(
            ControlMessage::from_message(&msg),
            Err(ControlError::TooShort {
                type_id: 5,
                len: 3,
                need: 4
            })
        );
        let mut msg = ControlMessage::UserControl(UserControlEvent::PingRequest(1)).to_message();
        msg.payload = Bytes::from_static(&[0]);
        assert_eq!(
            ControlMessage::from_message(&msg),
            Err(ControlError::TooShort {
                type_id: 4,
                len: 1,
                need: 2
            })
        );
        msg.payload = Bytes::from_static(&[0, 3, 0, 0, 0, 1, 0, 0]);
        assert_eq!(
            ControlMessage::from_message(&msg),
            Err(ControlError::TooShort {
                type_id: 4,
                len: 8,
                need: 10
            })
        );
        let mut msg = ControlMessage::SetPeerBandwidth {
            size: 1,
            limit: LimitType::Hard,
        }
        .to_message();
        msg.payload = Bytes::from_static(&[0, 0, 0, 1, 9]);
        assert_eq!(
            ControlMessage::from_message(&msg),
            Err(ControlError::InvalidLimitType(9))
        );
    }

    #[test]
    fn other_message_types_are_not_control() {
        let msg = RtmpMessage {
            csid: 6,
            timestamp: 0,
            type_id: 9,
            stream_id: 1,
            payload: Bytes::new(),
        };
        assert_eq!(ControlMessage::from_message(&msg), Ok(None));
    }
}
