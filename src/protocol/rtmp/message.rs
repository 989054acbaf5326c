//! A complete RTMP message, as the chunk decoder assembles it and the chunk
//! encoder splits it.

use bytes::Bytes;

/// RTMP message type ids (RTMP spec 5.4, 7.1).
pub mod type_id {
    /// Protocol control: Set Chunk Size.
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Protocol control: Abort Message.
    pub const ABORT: u8 = 2;
    /// Protocol control: Acknowledgement.
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message (StreamBegin, PingRequest, ...).
    pub const USER_CONTROL: u8 = 4;
    /// Protocol control: Window Acknowledgement Size.
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Protocol control: Set Peer Bandwidth.
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data (an FLV audio tag body).
    pub const AUDIO: u8 = 8;
    /// Video data (an FLV video tag body).
    pub const VIDEO: u8 = 9;
    /// AMF3 data message (unsupported payload encoding).
    pub const DATA_AMF3: u8 = 15;
    /// AMF3 shared object (unsupported).
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// AMF3 command message (accepted when its body is AMF0 after a 0 byte).
    pub const COMMAND_AMF3: u8 = 17;
    /// AMF0 data message (`@setDataFrame`, `onMetaData`).
    pub const DATA_AMF0: u8 = 18;
    /// AMF0 shared object (unsupported).
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// AMF0 command message (`connect`, `publish`, `play`, ...).
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message (a sequence of FLV tags).
    pub const AGGREGATE: u8 = 22;
}

/// One complete RTMP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtmpMessage {
    /// Chunk stream id it arrived on / should be sent on (2..=65599).
    pub csid: u32,
    /// Absolute timestamp in ms (32-bit wrapping), after delta accumulation.
    pub timestamp: u32,
    /// Message type id, see [`type_id`].
    pub type_id: u8,
    /// Message stream id (0 for control and NetConnection commands).
    pub stream_id: u32,
    /// The assembled payload.
    pub payload: Bytes,
}
