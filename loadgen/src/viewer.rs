//! What one viewer measures, independent of how its bytes arrive.
//!
//! The transport (HTTP-FLV or RTMP play) turns bytes into frames with ringcast's own
//! decoders and feeds them here with the current time; this type turns them into
//! counts and histogram samples in the worker's [`Interval`]. Its state is a few
//! dozen bytes per viewer and it never allocates.

use ringcast::protocol::flv::codec::{VideoCodec, VideoTagInfo};
use ringcast::protocol::flv::config::{parse_video_sequence_header, VideoConfig};
use ringcast::protocol::FrameKind;

use crate::stamp::find_stamp;
use crate::stats::Interval;

/// A gap in video (or, for unsampled viewers, in bytes) longer than this is a stall.
pub const STALL_THRESHOLD_US: u64 = 500_000;

/// The two clocks a viewer needs: monotonic for gaps and startup, wall clock to
/// compare with the publisher's stamp (same host, so the clocks agree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic microseconds since an arbitrary epoch shared by the worker.
    pub mono_us: u64,
    /// Wall clock, microseconds since the UNIX epoch.
    pub unix_us: u64,
}

/// One viewer's measuring state.
#[derive(Clone, Debug)]
pub struct ViewerMeter {
    sampled: bool,
    started_us: u64,
    playing: bool,
    nal_len_size: u8,
    last_video_us: Option<u64>,
    last_byte_us: u64,
    last_sequence: Option<u64>,
    frames_since_keyframe: Option<u64>,
}

impl ViewerMeter {
    /// A viewer whose connection attempt starts at `now`. Only `sampled` viewers
    /// parse frames; all count bytes and check that bytes keep coming.
    pub fn new(now: Now, sampled: bool, iv: &mut Interval) -> Self {
        iv.counters.viewers_started += 1;
        ViewerMeter {
            sampled,
            started_us: now.mono_us,
            playing: false,
            nal_len_size: 4,
            last_video_us: None,
            last_byte_us: now.mono_us,
            last_sequence: None,
            frames_since_keyframe: None,
        }
    }

    /// Whether the transport should demux frames and call [`Self::on_frame`].
    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// Whether the first keyframe has arrived.
    pub fn playing(&self) -> bool {
        self.playing
    }

    /// Counts `n` received bytes and checks byte-level liveness.
    pub fn on_bytes(&mut self, n: usize, now: Now, iv: &mut Interval) {
        iv.counters.bytes_received += n as u64;
        if self.playing && now.mono_us.saturating_sub(self.last_byte_us) > STALL_THRESHOLD_US {
            iv.counters.byte_stalls += 1;
        }
        self.last_byte_us = now.mono_us;
    }

    /// Accounts one received frame (sampled viewers only).
    pub fn on_frame(&mut self, kind: FrameKind, payload: &[u8], now: Now, iv: &mut Interval) {
        match kind {
            FrameKind::Audio => iv.counters.audio_frames += 1,
            FrameKind::Script => {}
            FrameKind::Video => self.on_video(payload, now, iv),
        }
    }

    fn on_video(&mut self, payload: &[u8], now: Now, iv: &mut Interval) {
        let Some(info) = VideoTagInfo::parse(payload) else {
            return;
        };
        if info.sequence_header {
            if let Ok(VideoConfig::Avc(avc)) = parse_video_sequence_header(payload) {
                self.nal_len_size = avc.nal_length_size;
            }
            return;
        }
        if info.command_frame || !carries_picture(payload, &info) {
            return;
        }
        iv.counters.video_frames += 1;
        self.close_video_gap(now, iv);
        if info.keyframe {
            iv.counters.keyframes += 1;
            if !self.playing {
                self.playing = true;
                iv.counters.viewers_playing += 1;
                iv.hist
                    .startup_ms
                    .saturating_record(now.mono_us.saturating_sub(self.started_us) / 1000);
            }
            if let Some(n) = self.frames_since_keyframe {
                iv.hist.gop_frames.saturating_record(n);
            }
            self.frames_since_keyframe = Some(0);
        }
        if let Some(n) = self.frames_since_keyframe.as_mut() {
            *n += 1;
        }
        if let Some(stamp) = find_stamp(payload, self.nal_len_size) {
            iv.counters.stamped_frames += 1;
            iv.hist
                .latency_us
                .saturating_record(now.unix_us.saturating_sub(stamp.sent_unix_us).max(1));
            count_sequence(&mut self.last_sequence, stamp.sequence, iv);
        }
    }

    /// Closes the books at the end of the run: a stall still going on counts too.
    pub fn finish(&mut self, now: Now, iv: &mut Interval) {
        if self.last_video_us.is_some() {
            self.close_video_gap(now, iv);
        }
    }

    /// Ends the gap since the last picture at `now`, counting it as a stall if it
    /// was longer than the threshold.
    fn close_video_gap(&mut self, now: Now, iv: &mut Interval) {
        if let Some(last) = self.last_video_us {
            let gap = now.mono_us.saturating_sub(last);
            if gap > STALL_THRESHOLD_US {
                iv.counters.stalls += 1;
                iv.hist.stall_ms.saturating_record(gap / 1000);
            }
        }
        self.last_video_us = Some(now.mono_us);
    }
}

/// Whether a video tag carries a coded picture: not an AVC/HEVC end-of-sequence
/// (packet type 2) or Enhanced RTMP metadata/sequence-end packet, which muxers write
/// and ffprobe does not count as frames.
fn carries_picture(payload: &[u8], info: &VideoTagInfo) -> bool {
    use ringcast::protocol::flv::codec::ex_packet_type;
    let Some(&b0) = payload.first() else {
        return false;
    };
    if info.enhanced {
        matches!(
            b0 & 0x0f,
            ex_packet_type::CODED_FRAMES | ex_packet_type::CODED_FRAMES_X
        )
    } else if matches!(info.codec, Some(VideoCodec::Avc | VideoCodec::Hevc)) {
        payload.get(1) == Some(&1)
    } else {
        true
    }
}

/// Whether viewer `index` is one of the fully parsed ones when a `fraction` of all
/// viewers are sampled: spreads them evenly so every ramp step has its share.
pub fn is_sampled(index: u64, fraction: f64) -> bool {
    // Integer parts per million, so 0.1 picks exactly every tenth viewer.
    let ppm = (fraction.clamp(0.0, 1.0) * 1e6).round() as u64;
    match index.checked_sub(1) {
        _ if ppm == 0 => false,
        None => true,
        Some(prev) => index.saturating_mul(ppm) / 1_000_000 != prev.saturating_mul(ppm) / 1_000_000,
    }
}

/// Counts the frames skipped between the last stamped sequence number and `sequence` as
/// missing (or a sequence reset when it does not move forward), then remembers `sequence`.
/// Shared by the FLV viewer and the HLS/DASH playback model so both count gaps alike.
pub(crate) fn count_sequence(last_sequence: &mut Option<u64>, sequence: u64, iv: &mut Interval) {
    match *last_sequence {
        Some(last) if sequence > last => iv.counters.missing_frames += sequence - last - 1,
        Some(_) => iv.counters.sequence_resets += 1,
        None => {}
    }
    *last_sequence = Some(sequence);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::{stamp_avc_tag, Stamp};
    use crate::synthetic::{SyntheticConfig, SyntheticSource, NAL_LENGTH_SIZE};

    fn at(ms: u64) -> Now {
        Now {
            mono_us: ms * 1000,
            unix_us: 1_700_000_000_000_000 + ms * 1000,
        }
    }

    /// A 25 fps, 1 s GOP stream, stamped as a publisher would, with sequence numbers.
    fn stream() -> (Vec<ringcast::protocol::Frame>, Vec<Vec<u8>>) {
        let mut src = SyntheticSource::new(SyntheticConfig {
            video_bitrate: 100_000,
            audio_bitrate: 0,
            fps: 25,
            gop_ms: 1000,
        })
        .unwrap();
        let headers = src.sequence_headers();
        let mut bodies = Vec::new();
        for seq in 0..100u64 {
            let f = src.next_frame();
            let mut out = Vec::new();
            let stamp = Stamp {
                sent_unix_us: at(seq * 40).unix_us,
                sequence: seq,
            };
            stamp_avc_tag(&f.payload, NAL_LENGTH_SIZE, stamp, &mut out).unwrap();
            bodies.push(out);
        }
        (headers, bodies)
    }

    #[test]
    fn measures_latency_startup_gop_and_gaps() {
        let (headers, bodies) = stream();
        let mut iv = Interval::default();
        let mut v = ViewerMeter::new(at(0), true, &mut iv);
        let avc_header = headers.iter().find(|f| f.kind == FrameKind::Video).unwrap();
        v.on_frame(FrameKind::Video, &avc_header.payload, at(100), &mut iv);
        assert!(!v.playing());
        for (seq, body) in bodies.iter().enumerate() {
            if seq == 30 || seq == 31 {
                continue; // lost by the server
            }
            // Arrives 150 ms after it was sent.
            v.on_frame(FrameKind::Video, body, at(seq as u64 * 40 + 150), &mut iv);
        }
        v.finish(at(99 * 40 + 150), &mut iv);
        let c = iv.counters;
        assert_eq!((c.viewers_started, c.viewers_playing), (1, 1));
        assert_eq!((c.video_frames, c.keyframes, c.stamped_frames), (98, 4, 98));
        assert_eq!(c.missing_frames, 2);
        assert_eq!(c.stalls, 0);
        assert_eq!(iv.hist.startup_ms.max(), 150);
        assert!(iv
            .hist
            .latency_us
            .equivalent(iv.hist.latency_us.min(), 150_000));
        assert!(iv
            .hist
            .latency_us
            .equivalent(iv.hist.latency_us.max(), 150_000));
        assert_eq!(iv.hist.latency_us.len(), 98);
        // Three whole GOPs between four keyframes; the second lost frames 30 and 31.
        assert_eq!(iv.hist.gop_frames.len(), 3);
        assert_eq!(iv.hist.gop_frames.min(), 23);
        assert_eq!(iv.hist.gop_frames.max(), 25);
    }

    #[test]
    fn nal_length_size_comes_from_the_avc_sequence_header() {
        use ringcast::protocol::flv::tag_body::{
            avc_tag_header, write_avc_sequence_header, AvcPacketType,
        };
        let mut header = bytes::BytesMut::new();
        write_avc_sequence_header(
            &crate::synthetic::SPS,
            &crate::synthetic::PPS,
            2,
            &mut header,
        )
        .unwrap();
        let mut frame = avc_tag_header(true, AvcPacketType::Nalu, 0)
            .unwrap()
            .to_vec();
        frame.extend_from_slice(&[0, 4, 0x65, 1, 2, 3]);
        let mut stamped = Vec::new();
        stamp_avc_tag(
            &frame,
            2,
            Stamp {
                sent_unix_us: at(0).unix_us,
                sequence: 0,
            },
            &mut stamped,
        )
        .unwrap();
        let mut iv = Interval::default();
        let mut v = ViewerMeter::new(at(0), true, &mut iv);
        v.on_frame(FrameKind::Video, &stamped, at(5), &mut iv);
        assert_eq!(
            iv.counters.stamped_frames, 0,
            "read with the default 4-byte lengths, the stamp is not found"
        );
        v.on_frame(FrameKind::Video, &header, at(10), &mut iv);
        v.on_frame(FrameKind::Video, &stamped, at(20), &mut iv);
        assert_eq!(iv.counters.stamped_frames, 1);
    }

    #[test]
    fn a_two_second_freeze_is_one_stall() {
        let (_, bodies) = stream();
        let mut iv = Interval::default();
        let mut v = ViewerMeter::new(at(0), true, &mut iv);
        for (seq, body) in bodies.iter().enumerate().take(50) {
            let mut t = seq as u64 * 40;
            if seq >= 20 {
                t += 2000; // server froze for 2 s before frame 20
            }
            v.on_frame(FrameKind::Video, body, at(t), &mut iv);
            v.on_bytes(body.len(), at(t), &mut iv);
        }
        v.finish(at(49 * 40 + 2000 + 100), &mut iv);
        assert_eq!(iv.counters.stalls, 1);
        assert_eq!(iv.counters.byte_stalls, 1);
        assert_eq!(
            iv.hist.stall_ms.max(),
            iv.hist.stall_ms.highest_equivalent(2040)
        );
        assert_eq!(iv.counters.missing_frames, 0);
    }

    #[test]
    fn a_stream_that_stops_counts_as_stalled_at_the_end() {
        let (_, bodies) = stream();
        let mut iv = Interval::default();
        let mut v = ViewerMeter::new(at(0), true, &mut iv);
        v.on_frame(FrameKind::Video, &bodies[0], at(10), &mut iv);
        v.finish(at(3010), &mut iv);
        assert_eq!(iv.counters.stalls, 1);
        assert_eq!(
            iv.hist.stall_ms.max(),
            iv.hist.stall_ms.highest_equivalent(3000)
        );
    }

    #[test]
    fn publisher_restart_is_a_reset_not_a_huge_gap() {
        let (_, bodies) = stream();
        let mut iv = Interval::default();
        let mut v = ViewerMeter::new(at(0), true, &mut iv);
        v.on_frame(FrameKind::Video, &bodies[50], at(0), &mut iv);
        v.on_frame(FrameKind::Video, &bodies[0], at(40), &mut iv);
        assert_eq!(
            (iv.counters.missing_frames, iv.counters.sequence_resets),
            (0, 1)
        );
    }

    #[test]
    fn garbage_video_and_audio_never_panic() {
        let mut iv = Interval::default();
        let mut v = ViewerMeter::new(at(0), true, &mut iv);
        for body in [
            &[][..],
            &[0x17],
            &[0x17, 0x00],
            &[0x17, 0x01, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 6],
        ] {
            v.on_frame(FrameKind::Video, body, at(1), &mut iv);
            v.on_frame(FrameKind::Audio, body, at(1), &mut iv);
        }
        assert_eq!(iv.counters.stamped_frames, 0);
    }

    #[test]
    fn end_of_sequence_is_not_a_frame() {
        let mut iv = Interval::default();
        let mut v = ViewerMeter::new(at(0), true, &mut iv);
        v.on_frame(FrameKind::Video, &[0x17, 0x02, 0, 0, 0], at(1), &mut iv);
        v.on_frame(
            FrameKind::Video,
            &[0x94, b'a', b'v', b'c', b'1'],
            at(1),
            &mut iv,
        );
        assert_eq!(iv.counters.video_frames, 0);
        v.on_frame(
            FrameKind::Video,
            &[0x93, b'a', b'v', b'c', b'1', 0, 0, 0, 1, 0x65],
            at(2),
            &mut iv,
        );
        assert_eq!((iv.counters.video_frames, iv.counters.keyframes), (1, 1));
    }

    #[test]
    fn sampling_spreads_the_chosen_fraction_evenly() {
        let picked: Vec<u64> = (0..100).filter(|&i| is_sampled(i, 0.1)).collect();
        assert_eq!(picked.len(), 10);
        assert!(picked.windows(2).all(|w| w[1] - w[0] == 10), "{picked:?}");
        assert_eq!((0..50).filter(|&i| is_sampled(i, 1.0)).count(), 50);
        assert_eq!((0..50).filter(|&i| is_sampled(i, 0.0)).count(), 0);
    }
}
