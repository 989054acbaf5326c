//! [`TsMuxer`]: FLV frames in, transport packets out, one segment at a time.

use bytes::BytesMut;

use super::adts::{adts_header, parse_asc, AdtsParams, ADTS_HEADER_LEN};
use super::codec::{audio_body, video_body, AudioBody, VideoBody};
use super::error::{TrackKind, TsError};
use super::h264::{parse_avcc_record, plan, write_access_unit, AvcParams, Sink};
use super::packet::{write_pcr_only, write_section, Continuity, PesPacketizer};
use super::pes::{
    media_ticks, ms_to_ticks, pes_header_len, write_pes_header, MAX_PES_HEADER_LEN,
    STREAM_ID_AUDIO, STREAM_ID_VIDEO,
};
use super::psi::{pat, pmt, PID_AUDIO, PID_PMT, PID_VIDEO};
use crate::protocol::{Frame, FrameKind};

/// The elementary streams a muxer carries, fixed for its lifetime (the PMT lists
/// exactly these). Decide them with [`super::track_support`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsTracks {
    /// An H.264 track on [`PID_VIDEO`].
    pub video: bool,
    /// An AAC track on [`PID_AUDIO`].
    pub audio: bool,
}

/// Bounds on what one frame may produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsLimits {
    /// Largest PES (header + Annex B access unit or ADTS frame) written; a frame
    /// that would make a larger one fails with [`TsError::PesTooLarge`].
    /// Default 8 MiB: twice the FLV demuxer's default tag limit.
    pub max_pes_size: usize,
}

impl Default for TsLimits {
    fn default() -> Self {
        TsLimits {
            max_pes_size: 8 * 1024 * 1024,
        }
    }
}

/// What [`TsMuxer::write_frame`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// One PES went out as this many 188-byte packets (a PCR-only packet
    /// included, when one was due).
    Pes {
        /// Packets appended to the output.
        packets: usize,
    },
    /// A sequence header replaced the track's configuration; nothing written.
    Config,
    /// Nothing to write: script data, a picture-less video tag (end of
    /// sequence, command frame), or a frame of a track this muxer does not carry.
    Skipped,
}

/// Sans-IO MPEG-TS muxer for classic HLS: H.264 + AAC, one program.
///
/// Feed it every frame of the stream in order, sequence headers included
/// ([`write_frame`](Self::write_frame)), and call
/// [`start_segment`](Self::start_segment) where the caller cuts a segment (at a
/// frame for which [`is_random_access`](Self::is_random_access) holds).
/// Continuity counters and the PCR continue across segments, so consecutive
/// segments concatenate into one valid stream (RFC 8216 §3.2); a new publisher
/// (an `EXT-X-DISCONTINUITY`) takes a new muxer.
#[derive(Debug)]
pub struct TsMuxer {
    tracks: TsTracks,
    limits: TsLimits,
    avc: Option<AvcParams>,
    aac: Option<AdtsParams>,
    cc_pat: Continuity,
    cc_pmt: Continuity,
    cc_video: Continuity,
    cc_audio: Continuity,
    started: bool,
    /// No PCR written since the segment began: the first PES on another PID must
    /// be preceded by one (a PCR before the first media byte of every segment).
    pcr_due: bool,
    /// Last PCR on the stream timeline in ms, to keep the PCR monotone when
    /// audio and video interleave slightly out of order.
    last_pcr: Option<i64>,
}

impl TsMuxer {
    /// A muxer for `tracks`; fails with [`TsError::NoTracks`] when there are none.
    pub fn new(tracks: TsTracks, limits: TsLimits) -> Result<Self, TsError> {
        if !tracks.video && !tracks.audio {
            return Err(TsError::NoTracks);
        }
        Ok(TsMuxer {
            tracks,
            limits,
            avc: None,
            aac: None,
            cc_pat: Continuity::default(),
            cc_pmt: Continuity::default(),
            cc_video: Continuity::default(),
            cc_audio: Continuity::default(),
            started: false,
            pcr_due: true,
            last_pcr: None,
        })
    }

    /// The tracks this muxer carries.
    pub fn tracks(&self) -> TsTracks {
        self.tracks
    }

    /// Whether a segment may start at `frame`: a video keyframe that carries a
    /// picture, or with no video track any audio frame that carries audio. (An
    /// AVC end-of-sequence tag is flagged as a keyframe by FLV but is not one.)
    pub fn is_random_access(&self, frame: &Frame) -> bool {
        if frame.sequence_header {
            return false;
        }
        match frame.kind {
            FrameKind::Video => {
                self.tracks.video
                    && frame.keyframe
                    && matches!(video_body(&frame.payload), Ok(VideoBody::Coded { .. }))
            }
            FrameKind::Audio => {
                self.tracks.audio
                    && !self.tracks.video
                    && matches!(audio_body(&frame.payload), Ok(AudioBody::Raw(_)))
            }
            FrameKind::Script => false,
        }
    }

    /// Begins a segment: writes a PAT and a PMT (2 packets) into `out`. Frames
    /// written after it belong to the new segment.
    pub fn start_segment(&mut self, out: &mut BytesMut) {
        write_section(out, 0, &mut self.cc_pat, pat().bytes());
        let pmt = pmt(self.tracks.video, self.tracks.audio);
        write_section(out, PID_PMT, &mut self.cc_pmt, pmt.bytes());
        self.started = true;
        self.pcr_due = true;
    }

    /// Muxes one frame whose decode time is `dts_ms` on the stream's timeline
    /// (the frame's FLV timestamp, unwrapped by the caller to 64 bits). Appends
    /// whole packets to `out`, or nothing on error.
    pub fn write_frame(
        &mut self,
        frame: &Frame,
        dts_ms: i64,
        out: &mut BytesMut,
    ) -> Result<Written, TsError> {
        match frame.kind {
            FrameKind::Video if self.tracks.video => self.write_video(frame, dts_ms, out),
            FrameKind::Audio if self.tracks.audio => self.write_audio(frame, dts_ms, out),
            _ => Ok(Written::Skipped),
        }
    }

    fn write_video(
        &mut self,
        frame: &Frame,
        dts_ms: i64,
        out: &mut BytesMut,
    ) -> Result<Written, TsError> {
        let (cts_ms, nalus) = match video_body(&frame.payload)? {
            VideoBody::Config(record) => {
                self.avc = Some(parse_avcc_record(record)?);
                return Ok(Written::Config);
            }
            VideoBody::Nothing => return Ok(Written::Skipped),
            VideoBody::Coded { cts_ms, nalus } => (cts_ms, nalus),
        };
        let params = self.avc.as_ref().ok_or(TsError::MissingConfig {
            track: TrackKind::Video,
        })?;
        if !self.started {
            return Err(TsError::NoSegment);
        }
        let au = plan(nalus, params, frame.keyframe)?;
        if au.empty {
            return Ok(Written::Skipped);
        }
        let dts = media_ticks(dts_ms);
        let pts = media_ticks(dts_ms.wrapping_add(i64::from(cts_ms)));
        let len = pes_header_len(pts, Some(dts)) + au.len;
        check_pes(len, &self.limits)?;
        let pcr = Some(next_pcr(&mut self.last_pcr, dts_ms));
        self.pcr_due = false;
        let mut header = [0; MAX_PES_HEADER_LEN];
        let n = write_pes_header(STREAM_ID_VIDEO, pts, Some(dts), au.len, &mut header);
        let random_access = frame.keyframe || au.idr;
        let mut p = PesPacketizer::new(out, PID_VIDEO, &mut self.cc_video, len, pcr, random_access);
        p.put(header.get(..n).unwrap_or_default());
        write_access_unit(nalus, params, &au, &mut p);
        Ok(Written::Pes {
            packets: p.packets(),
        })
    }

    fn write_audio(
        &mut self,
        frame: &Frame,
        dts_ms: i64,
        out: &mut BytesMut,
    ) -> Result<Written, TsError> {
        let raw = match audio_body(&frame.payload)? {
            AudioBody::Config(asc) => {
                self.aac = Some(parse_asc(asc)?);
                return Ok(Written::Config);
            }
            AudioBody::Nothing => return Ok(Written::Skipped),
            AudioBody::Raw(raw) => raw,
        };
        let params = self.aac.ok_or(TsError::MissingConfig {
            track: TrackKind::Audio,
        })?;
        if !self.started {
            return Err(TsError::NoSegment);
        }
        let adts = adts_header(&params, raw.len())?;
        let pts = media_ticks(dts_ms);
        let len = pes_header_len(pts, None) + ADTS_HEADER_LEN + raw.len();
        check_pes(len, &self.limits)?;
        let mut extra = 0;
        let pcr = if self.tracks.video {
            // The PCR lives on the video PID; a segment whose first media is audio
            // still gets a PCR before it.
            if self.pcr_due {
                let pcr = next_pcr(&mut self.last_pcr, dts_ms);
                write_pcr_only(out, PID_VIDEO, self.cc_video, pcr);
                extra = 1;
            }
            None
        } else {
            Some(next_pcr(&mut self.last_pcr, dts_ms))
        };
        self.pcr_due = false;
        let mut header = [0; MAX_PES_HEADER_LEN];
        let n = write_pes_header(
            STREAM_ID_AUDIO,
            pts,
            None,
            ADTS_HEADER_LEN + raw.len(),
            &mut header,
        );
        // Every AAC frame is a random access point.
        let mut p = PesPacketizer::new(out, PID_AUDIO, &mut self.cc_audio, len, pcr, true);
        p.put(header.get(..n).unwrap_or_default());
        p.put(&adts);
        p.put(raw);
        Ok(Written::Pes {
            packets: p.packets() + extra,
        })
    }
}

fn check_pes(len: usize, limits: &TsLimits) -> Result<(), TsError> {
    if len > limits.max_pes_size {
        return Err(TsError::PesTooLarge {
            len,
            limit: limits.max_pes_size,
        });
    }
    Ok(())
}

/// The PCR for a PES decoded at `dts_ms`: [`super::PTS_DELAY_MS`] before its DTS,
/// never behind the last PCR written.
fn next_pcr(last: &mut Option<i64>, dts_ms: i64) -> u64 {
    let ticks = last.map_or(dts_ms, |l| l.max(dts_ms));
    *last = Some(ticks);
    ms_to_ticks(ticks)
}
