//! Chunk stream ids ringcast sends on (the same split nginx-rtmp and SRS use, so
//! captures read familiarly), and the per-kind choice for media.

use crate::protocol::flv::frame::FrameKind;
use crate::protocol::rtmp::control::CONTROL_CSID;

/// Protocol control and user control messages.
pub const CONTROL: u32 = CONTROL_CSID;
/// NetConnection commands and their responses (`connect`, `createStream`, ...).
pub const COMMAND: u32 = 3;
/// NetStream commands, `onStatus` and data (script) messages.
pub const STREAM: u32 = 5;
/// Audio messages.
pub const AUDIO: u32 = 6;
/// Video messages.
pub const VIDEO: u32 = 7;

/// The csids one side uses for each kind of outgoing message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputCsids {
    /// Control messages.
    pub control: u32,
    /// NetConnection commands.
    pub command: u32,
    /// NetStream commands and status.
    pub stream: u32,
    /// Script (data) frames.
    pub data: u32,
    /// Audio frames.
    pub audio: u32,
    /// Video frames.
    pub video: u32,
}

impl Default for OutputCsids {
    fn default() -> Self {
        OutputCsids {
            control: CONTROL,
            command: COMMAND,
            stream: STREAM,
            data: STREAM,
            audio: AUDIO,
            video: VIDEO,
        }
    }
}

impl OutputCsids {
    /// The csid a frame of `kind` goes on.
    pub fn for_kind(&self, kind: FrameKind) -> u32 {
        match kind {
            FrameKind::Audio => self.audio,
            FrameKind::Video => self.video,
            FrameKind::Script => self.data,
        }
    }
}
