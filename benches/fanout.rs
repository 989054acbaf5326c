//! Fan-out benchmark: one sender thread pinned to core 0 sends the same frames
//! to N loopback viewers, drained by a reader process pinned to core 1.
//!
//! Modes, compared in the same run:
//! * `epoll`: the classic loop: one `writev([hdr, payload])` syscall per frame per
//!   viewer, epoll (edge-triggered) for writability.
//! * `uring`: the ringcast design: each viewer's queued frames in one gathered
//!   `sendmsg` (up to 64 frames / 1 MiB), every viewer's send in one submit.
//! * `zc`: as `uring` with `SENDMSG_ZC` (the kernel pins the pages of every iovec per send).
//! * `zcreg`: as `zc` from a registered region (`runtime::region`, what the server does
//!   with `runtime.zero_copy_send`): each viewer's prefix scratch is a slot of the region,
//!   each frame body is copied into it once when produced (that copy is in the measured
//!   CPU time), and sends name the region as fixed buffer (`IORING_RECVSEND_FIXED_BUF`),
//!   so the kernel skips the per-send page pinning.
//!
//! Figures are per second of sender-thread CPU time (`CLOCK_THREAD_CPUTIME_ID`),
//! so they measure the sender's cost, not how fast the reader drains.
//!
//! Run: `cargo bench --bench fanout -- --viewers 100,1000,10000 --seconds 3`
//! The readers live in a child process (this binary with `--reader`) so 10000
//! viewers need only 10000 fds per process.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use ringcast::runtime::outbox::SendProgress;
use ringcast::runtime::region::{RegionConfig, SendRegion};
use ringcast::runtime::{Outbox, Reactor, ReactorConfig};

/// Frames one gathered send may carry (the DESIGN.md cap).
const MAX_FRAMES_PER_SEND: usize = 64;
/// Bytes one gathered send may carry.
const MAX_BYTES_PER_SEND: usize = 128 << 10;
/// How far the producer may run ahead of the slowest viewer, in frames.
const WINDOW: u64 = 256;
/// FLV PreviousTagSize + tag header.
const HDR: usize = 15;

#[derive(Parser, Debug)]
struct Args {
    /// Viewer counts to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    viewers: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Stream profiles: `normal` (600 kbps, 25 fps) and/or `high` (~6 Mbps, 60 fps).
    #[arg(long, value_delimiter = ',', default_value = "normal,high")]
    profile: Vec<String>,
    /// Modes to compare: epoll, uring, zc, zcreg.
    #[arg(long, value_delimiter = ',', default_value = "epoll,uring,zc,zcreg")]
    modes: Vec<String>,
    /// Internal: run as the reader child, connecting `n` sockets to `addr`.
    #[arg(long, num_args = 2, value_names = ["ADDR", "N"])]
    reader: Option<Vec<String>>,
    /// Cap on frames per gathered send (io_uring modes), at most 64.
    #[arg(long, default_value_t = MAX_FRAMES_PER_SEND)]
    max_frames: usize,
    /// Cap on bytes per gathered send (io_uring modes).
    #[arg(long, default_value_t = MAX_BYTES_PER_SEND)]
    max_bytes: usize,
    /// Passed by `cargo bench`. Without it (`cargo test` runs this binary too) the
    /// bench does a short smoke run: 100 viewers, 0.2 s, each mode once.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One media frame: what every viewer gets (after its own 15-byte header).
#[derive(Clone)]
struct Frame {
    tag_type: u8,
    timestamp: u32,
    payload: Bytes,
}

/// Produces a realistic frame sequence from a small pool of payloads.
struct Source {
    video_fps: u32,
    video_size: usize,
    keyframe_size: usize,
    audio_size: usize,
    audio_interval_ms: f64,
    video_n: u64,
    audio_n: u64,
    pool_video: Vec<Bytes>,
    pool_key: Bytes,
    pool_audio: Bytes,
}

impl Source {
    fn new(profile: &str) -> Source {
        let (video_fps, video_size, keyframe_size, audio_size) = match profile {
            "high" => (60, 12_000, 64 * 1024, 400),
            _ => (25, 2_900, 16 * 1024, 186),
        };
        let filled = |len: usize, seed: u8| {
            Bytes::from(
                (0..len)
                    .map(|i| (i as u8).wrapping_mul(seed))
                    .collect::<Vec<_>>(),
            )
        };
        Source {
            video_fps,
            video_size,
            keyframe_size,
            audio_size,
            audio_interval_ms: 1024.0 * 1000.0 / 44_100.0,
            video_n: 0,
            audio_n: 0,
            pool_video: (0..16)
                .map(|i| filled(video_size - 200 + i * 25, i as u8 + 3))
                .collect(),
            pool_key: filled(keyframe_size, 7),
            pool_audio: filled(audio_size, 5),
        }
    }

    fn bitrate_kbps(&self) -> f64 {
        let fps = f64::from(self.video_fps);
        let video = (fps - 1.0) * self.video_size as f64 + self.keyframe_size as f64;
        let audio = 1000.0 / self.audio_interval_ms * self.audio_size as f64;
        (video + audio) * 8.0 / 1000.0
    }

    fn next(&mut self) -> Frame {
        let video_ts = self.video_n as f64 * 1000.0 / f64::from(self.video_fps);
        let audio_ts = self.audio_n as f64 * self.audio_interval_ms;
        if video_ts <= audio_ts {
            let key = self.video_n.is_multiple_of(u64::from(self.video_fps));
            let payload = if key {
                self.pool_key.clone()
            } else {
                let i = (self.video_n as usize) % self.pool_video.len();
                self.pool_video.get(i).cloned().unwrap_or_default()
            };
            self.video_n += 1;
            Frame {
                tag_type: 9,
                timestamp: video_ts as u32,
                payload,
            }
        } else {
            self.audio_n += 1;
            Frame {
                tag_type: 8,
                timestamp: audio_ts as u32,
                payload: self.pool_audio.clone(),
            }
        }
    }
}

/// Frames not yet sent to every viewer; `frames[i]` has sequence `base + i`.
struct FrameRing {
    frames: VecDeque<Frame>,
    base: u64,
}

impl FrameRing {
    fn head(&self) -> u64 {
        self.base + self.frames.len() as u64
    }
    fn get(&self, seq: u64) -> &Frame {
        &self.frames[(seq - self.base) as usize]
    }
    /// Drops frames every viewer is past.
    fn trim(&mut self, min_next: u64) {
        while self.base < min_next && self.frames.pop_front().is_some() {
            self.base += 1;
        }
    }
}

/// Per-viewer state: a cursor into the ring plus header scratch and send buffers.
struct Viewer {
    fd: RawFd,
    /// Next frame to send.
    next: u64,
    /// Bytes of frame `next` (header + payload) already sent.
    offset: usize,
    /// Previous tag's size, for the PreviousTagSize field.
    prev_tag_size: u32,
    writable: bool,
    in_flight: bool,
    /// Header scratch for the epoll path's writev.
    hdrs: Box<[[u8; HDR]; 1]>,
    /// The io_uring paths' gathered send (the production type).
    gather: Outbox<Bytes>,
    /// The header of the send `fill_gather` assembled, to submit.
    msg: Option<*const libc::msghdr>,
    /// A zero-copy send's result, held until its notification.
    zc_result: i32,
    frames_in_send: u64,
    prev_after_send: u32,
}

impl Viewer {
    fn new(fd: RawFd) -> Viewer {
        Viewer {
            fd,
            next: 0,
            offset: 0,
            prev_tag_size: 0,
            writable: true,
            in_flight: false,
            hdrs: Box::new([[0; HDR]; 1]),
            gather: Outbox::new(MAX_FRAMES_PER_SEND, 0),
            msg: None,
            zc_result: 0,
            frames_in_send: 0,
            prev_after_send: 0,
        }
    }

    /// Writes the per-viewer FLV prefix for `frame` into header slot `slot`.
    fn write_header(&mut self, slot: usize, frame: &Frame, prev_tag_size: u32) {
        let len = frame.payload.len() as u32;
        let ts = frame.timestamp;
        let h = &mut self.hdrs[slot];
        h[0..4].copy_from_slice(&prev_tag_size.to_be_bytes());
        h[4] = frame.tag_type;
        h[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
        h[8..11].copy_from_slice(&ts.to_be_bytes()[1..]);
        h[11] = (ts >> 24) as u8;
        h[12..15].copy_from_slice(&[0, 0, 0]);
    }

    /// Fills the viewer's `Outbox` with frames from its cursor, up to the caps,
    /// exactly as the server does: a copy of the 15-byte prefix, then the shared body.
    /// Returns the number of frames queued.
    fn fill_gather(&mut self, ring: &FrameRing, caps: (usize, usize)) -> u64 {
        let (max_frames, max_bytes) = (caps.0.clamp(1, MAX_FRAMES_PER_SEND), caps.1.max(1));
        self.gather.begin().expect("no send in flight");
        let mut prev = self.prev_tag_size;
        let mut seq = self.next;
        let mut frames = 0;
        while seq < ring.head() && frames < max_frames && self.gather.bytes_queued() < max_bytes {
            let frame = ring.get(seq);
            self.write_header(0, frame, prev);
            let header = self.hdrs[0];
            let queued = self.gather.push_frame(
                |scratch| {
                    scratch[..HDR].copy_from_slice(&header);
                    HDR
                },
                frame.payload.clone(),
            );
            if !queued {
                break;
            }
            prev = frame.payload.len() as u32 + 11;
            seq += 1;
            frames += 1;
        }
        self.frames_in_send = frames as u64;
        self.prev_after_send = prev;
        self.msg = if frames > 0 {
            self.gather.finish()
        } else {
            None
        };
        frames as u64
    }

    /// The gathered send fully went out: move the cursor past its frames.
    fn finish_gather(&mut self) -> u64 {
        let done = self.frames_in_send;
        self.next += done;
        self.prev_tag_size = self.prev_after_send;
        self.frames_in_send = 0;
        self.gather.release().expect("the send completed");
        done
    }

    /// Moves the cursor forward by `sent` bytes; returns frames completed.
    fn advance(&mut self, ring: &FrameRing, mut sent: usize) -> u64 {
        let mut done = 0;
        while sent > 0 && self.next < ring.head() {
            let total = HDR + ring.get(self.next).payload.len();
            let left = total - self.offset;
            if sent >= left {
                sent -= left;
                self.prev_tag_size = ring.get(self.next).payload.len() as u32 + 11;
                self.next += 1;
                self.offset = 0;
                done += 1;
            } else {
                self.offset += sent;
                sent = 0;
            }
        }
        done
    }
}

/// What one measurement produced.
struct Outcome {
    deliveries: u64,
    bytes: u64,
    cpu: Duration,
    wall: Duration,
    sends_per_submit: f64,
    /// Send operations queued.
    sends: u64,
    /// Sends that named a registered buffer.
    fixed_sends: u64,
}

/// How the io_uring modes send.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SendMode {
    Copy,
    ZeroCopy,
    ZeroCopyRegistered,
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Keeps the frame ring `WINDOW` frames ahead of the slowest viewer.
struct Producer {
    min_next: u64,
    /// Send completions since the slowest cursor was last computed.
    progress_since_scan: usize,
}

impl Producer {
    /// Tops the ring up; returns true if new frames were added. The O(viewers) scan
    /// for the slowest cursor runs only when the window is full and enough cursors
    /// moved since the last scan (a sixteenth of the viewers), so its cost per send
    /// stays constant whatever the viewer count.
    /// With a region, each new frame's payload is copied into it once (as the server
    /// stages a frame once per core), so the registered sends can carry it.
    fn produce(
        &mut self,
        ring: &mut FrameRing,
        source: &mut Source,
        viewers: &[Viewer],
        mut region: Option<&mut SendRegion>,
    ) -> bool {
        if ring.head() - self.min_next >= WINDOW && self.progress_since_scan * 16 >= viewers.len() {
            self.min_next = viewers.iter().map(|v| v.next).min().unwrap_or(0);
            self.progress_since_scan = 0;
            ring.trim(self.min_next);
        }
        let head = ring.head();
        while ring.head() - self.min_next < WINDOW {
            let mut frame = source.next();
            if let Some(staged) = region.as_deref_mut().and_then(|r| r.stage(&frame.payload)) {
                frame.payload = staged;
            }
            ring.frames.push_back(frame);
        }
        ring.head() > head
    }
}

fn run_epoll(viewers: &mut [Viewer], source: &mut Source, seconds: f64) -> Outcome {
    // SAFETY: plain syscalls on fds we own; results checked.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(epfd >= 0);
    for (i, v) in viewers.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLOUT | libc::EPOLLET) as u32,
            u64: i as u64,
        };
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, v.fd, &mut ev) },
            0
        );
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut ring = FrameRing {
        frames: VecDeque::new(),
        base: 0,
    };
    let (mut deliveries, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    let cpu0 = thread_cpu_time();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut producer = Producer {
        min_next: 0,
        progress_since_scan: 0,
    };
    // Viewers that may write: all at first, then those epoll reports writable.
    let mut ready: Vec<usize> = (0..viewers.len()).collect();
    let mut still_ready = Vec::with_capacity(viewers.len());
    // Writable viewers with nothing left to send, revisited when frames arrive.
    let mut caught_up: Vec<usize> = Vec::with_capacity(viewers.len());
    while Instant::now() < deadline {
        if producer.produce(&mut ring, source, viewers, None) {
            ready.append(&mut caught_up);
        }
        let mut progress = false;
        for (k, &i) in ready.iter().enumerate() {
            // A turn over thousands of viewers can be long; stop on time. Unvisited
            // viewers stay writable and are not lost: they go back on the ready list.
            if k % 256 == 255 && Instant::now() >= deadline {
                still_ready.extend_from_slice(&ready[k..]);
                break;
            }
            let Some(v) = viewers.get_mut(i) else {
                continue;
            };
            while v.writable && v.next < ring.head() {
                let frame = ring.get(v.next);
                v.write_header(0, frame, v.prev_tag_size);
                let mut iov = [
                    libc::iovec {
                        iov_base: v.hdrs[0].as_ptr() as *mut _,
                        iov_len: HDR,
                    },
                    libc::iovec {
                        iov_base: frame.payload.as_ptr() as *mut _,
                        iov_len: frame.payload.len(),
                    },
                ];
                // Skip what a partial write already sent.
                let mut skip = v.offset;
                let mut first = 0;
                for (k, part) in iov.iter_mut().enumerate() {
                    if skip >= part.iov_len {
                        skip -= part.iov_len;
                        first = k + 1;
                    } else {
                        // SAFETY: skip < iov_len.
                        part.iov_base = unsafe { part.iov_base.cast::<u8>().add(skip) }.cast();
                        part.iov_len -= skip;
                        break;
                    }
                }
                // SAFETY: iovecs point into live header scratch and payload.
                let n = unsafe { libc::writev(v.fd, iov[first..].as_ptr(), (2 - first) as i32) };
                if n < 0 {
                    v.writable = false;
                    break;
                }
                bytes += n as u64;
                deliveries += v.advance(&ring, n as usize);
                progress = true;
            }
            producer.progress_since_scan += 1;
            if v.writable {
                caught_up.push(i);
            }
        }
        std::mem::swap(&mut ready, &mut still_ready);
        still_ready.clear();
        let timeout = if progress { 0 } else { 10 };
        // SAFETY: events buffer is live and sized.
        let n =
            unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as i32, timeout) };
        if n <= 0 && !progress {
            // Idle turn: make sure the next one rescans for the slowest cursor.
            producer.progress_since_scan = viewers.len();
        }
        for ev in events.iter().take(n.max(0) as usize) {
            if let Some(v) = viewers.get_mut(ev.u64 as usize) {
                if !v.writable {
                    v.writable = true;
                    ready.push(ev.u64 as usize);
                }
            }
        }
    }
    let cpu = thread_cpu_time() - cpu0;
    // SAFETY: closing our epoll fd.
    unsafe { libc::close(epfd) };
    Outcome {
        deliveries,
        bytes,
        cpu,
        wall: start.elapsed(),
        sends_per_submit: 1.0,
        sends: 0,
        fixed_sends: 0,
    }
}

fn run_uring(
    viewers: &mut [Viewer],
    source: &mut Source,
    seconds: f64,
    mode: SendMode,
    caps: (usize, usize),
) -> Outcome {
    let cfg = ReactorConfig {
        entries: 4096,
        recv_buffers: 2,
        recv_buffer_size: 64,
        ..ReactorConfig::default()
    };
    let mut reactor = Reactor::new(&cfg).expect("io_uring");
    let mut region = (mode == SendMode::ZeroCopyRegistered).then(|| {
        let cfg = RegionConfig {
            scratch_slots: viewers.len(),
            scratch_slot_size: 32 * MAX_FRAMES_PER_SEND,
            staging_bytes: 64 << 20,
            block_size: 1 << 20,
        };
        let mut region = SendRegion::new(cfg).expect("region");
        reactor
            .register_region(region.mem())
            .expect("register the region (RLIMIT_MEMLOCK?)");
        for v in viewers.iter_mut() {
            let slot = region.scratch().expect("a scratch slot per viewer");
            v.gather = Outbox::with_region_scratch(MAX_FRAMES_PER_SEND, 0, slot);
        }
        region
    });
    let zero_copy = mode != SendMode::Copy;
    let mut ring = FrameRing {
        frames: VecDeque::new(),
        base: 0,
    };
    let (mut deliveries, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    let cpu0 = thread_cpu_time();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut stopping = false;
    let mut producer = Producer {
        min_next: 0,
        progress_since_scan: 0,
    };
    let mut in_flight = 0usize;
    // Idle viewers with nothing left to send, revisited when frames arrive.
    let mut caught_up: Vec<usize> = Vec::with_capacity(viewers.len());
    // Viewers with no send in flight: all at first, then those whose send completed.
    let mut idle: Vec<usize> = (0..viewers.len()).collect();
    let mut still_idle = Vec::with_capacity(viewers.len());
    loop {
        if !stopping && Instant::now() >= deadline {
            stopping = true;
        }
        if stopping && in_flight == 0 {
            break;
        }
        if !stopping {
            if producer.produce(&mut ring, source, viewers, region.as_mut()) {
                idle.append(&mut caught_up);
            }
            for &i in &idle {
                let Some(v) = viewers.get_mut(i) else {
                    continue;
                };
                if v.next >= ring.head() || v.fill_gather(&ring, caps) == 0 {
                    caught_up.push(i);
                    continue;
                }
                v.in_flight = true;
                in_flight += 1;
                let msg = v.msg.take().expect("an assembled send");
                submit_gather(&mut reactor, v, msg, i, zero_copy);
            }
            std::mem::swap(&mut idle, &mut still_idle);
            still_idle.clear();
        }
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(10)))
            .expect("submit");
        let completed_before = deliveries;
        reactor.drain_completions(|r, c| {
            let Some(v) = viewers.get_mut(c.user_data as usize) else {
                return;
            };
            // A copy send is over at its CQE; a zero-copy one at its notification
            // (the kernel reads the buffers until then), or at its CQE when no
            // notification follows. Only then does the outbox learn the result.
            if !c.is_notification() && c.more() {
                v.zc_result = c.result;
                return;
            }
            let result = if c.is_notification() {
                v.zc_result
            } else {
                c.result
            };
            if result < 0 {
                panic!(
                    "send failed: {:?}",
                    std::io::Error::from_raw_os_error(-result)
                );
            }
            bytes += result as u64;
            let _: SendProgress = v.gather.on_sent(result as usize);
            if let Some(msg) = v.gather.resume() {
                // Short send: the remainder goes again, same buffers.
                submit_gather(r, v, msg, c.user_data as usize, zero_copy);
            } else {
                deliveries += v.finish_gather();
                producer.progress_since_scan += 1;
                v.in_flight = false;
                in_flight -= 1;
                idle.push(c.user_data as usize);
            }
        });
        if deliveries == completed_before {
            // Idle turn: make sure the next one rescans for the slowest cursor.
            producer.progress_since_scan = viewers.len();
        }
    }
    let cpu = thread_cpu_time() - cpu0;
    let stats = reactor.stats();
    Outcome {
        deliveries,
        bytes,
        cpu,
        wall: start.elapsed(),
        sends_per_submit: stats.sends_per_submit(),
        sends: stats.sends,
        fixed_sends: stats.fixed_sends,
    }
}

fn submit_gather(
    reactor: &mut Reactor,
    v: &mut Viewer,
    msg: *const libc::msghdr,
    index: usize,
    zero_copy: bool,
) {
    // SAFETY: `msg` is the in-flight header of `v.gather`, which refuses to touch it
    // (or its iovecs, scratch and held payloads) until this send's last completion.
    let res = unsafe {
        if zero_copy {
            // Fixed-buffer when every iovec lies in the registered region (zcreg mode).
            reactor
                .sendmsg_zc_registered(v.fd, msg, index as u64)
                .map(|_| ())
        } else {
            reactor.sendmsg(v.fd, msg, index as u64)
        }
    };
    res.expect("queue send");
}

/// The reader child: connect, then drain every socket with epoll until all close.
fn reader_main(addr: &str, n: usize) {
    let _ = core_affinity::set_for_current(core_affinity::CoreId { id: 1 });
    raise_fd_limit();
    let addr: SocketAddr = addr.parse().expect("addr");
    let streams: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    // SAFETY: plain syscalls; results checked.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    for (i, s) in streams.iter().enumerate() {
        s.set_nonblocking(true).expect("nonblocking");
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: i as u64,
        };
        // SAFETY: as above.
        unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) };
    }
    println!("ready");
    std::io::stdout().flush().expect("stdout");
    let mut open = n;
    let mut buf = vec![0u8; 256 * 1024];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    while open > 0 {
        // SAFETY: as above.
        let k = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as i32, 1000) };
        for ev in events.iter().take(k.max(0) as usize) {
            let fd = streams[ev.u64 as usize].as_raw_fd();
            loop {
                // SAFETY: buf is live and sized.
                let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if r == 0 {
                    open -= 1;
                    // SAFETY: as above.
                    unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
                    break;
                }
                if r < 0 {
                    break;
                }
            }
        }
    }
}

fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer; raising the soft limit to the hard one.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

/// Spawns the reader child and accepts its `n` connections.
fn connect_viewers(n: usize) -> (Child, Vec<Viewer>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(["--reader", &addr.to_string(), &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn reader");
    let mut viewers = Vec::with_capacity(n);
    for _ in 0..n {
        let (s, _) = listener.accept().expect("accept");
        s.set_nonblocking(true).expect("nonblocking");
        s.set_nodelay(true).expect("nodelay");
        viewers.push(Viewer::new(s.into_raw_fd()));
    }
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out)
            .read_line(&mut line)
            .expect("reader ready");
    }
    (child, viewers)
}

fn main() {
    let mut args = Args::parse();
    if !args.bench && args.reader.is_none() {
        args.viewers = vec![100];
        args.seconds = 0.2;
        args.profile = vec!["normal".into()];
    }
    if let Some(reader) = &args.reader {
        let n = reader.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
        reader_main(reader.first().map_or("", String::as_str), n);
        return;
    }
    raise_fd_limit();
    if !core_affinity::set_for_current(core_affinity::CoreId { id: 0 }) {
        eprintln!("warning: could not pin the sender to core 0");
    }
    println!(
        "{:<7} {:>7} {:<6} {:>6} {:>6} {:>12} {:>10} {:>9} {:>9} {:>7} {:>6}",
        "profile",
        "viewers",
        "mode",
        "wall_s",
        "cpu_s",
        "frames/cpu-s",
        "GB/cpu-s",
        "frames/s",
        "send/sub",
        "vs epoll",
        "fixed"
    );
    for profile in &args.profile {
        for &n in &args.viewers {
            let mut baseline = None;
            for mode in &args.modes {
                let (mut child, mut viewers) = connect_viewers(n);
                let caps = (args.max_frames, args.max_bytes);
                let mut source = Source::new(profile);
                let out = match mode.as_str() {
                    "epoll" => run_epoll(&mut viewers, &mut source, args.seconds),
                    "uring" => run_uring(
                        &mut viewers,
                        &mut source,
                        args.seconds,
                        SendMode::Copy,
                        caps,
                    ),
                    "zc" => run_uring(
                        &mut viewers,
                        &mut source,
                        args.seconds,
                        SendMode::ZeroCopy,
                        caps,
                    ),
                    "zcreg" => run_uring(
                        &mut viewers,
                        &mut source,
                        args.seconds,
                        SendMode::ZeroCopyRegistered,
                        caps,
                    ),
                    other => panic!("unknown mode {other}"),
                };
                for v in &viewers {
                    // SAFETY: closing the fds we accepted; the reader sees EOF and exits.
                    unsafe { libc::close(v.fd) };
                }
                let _ = child.wait();
                let cpu = out.cpu.as_secs_f64().max(1e-9);
                let per_cpu = out.deliveries as f64 / cpu;
                if mode == "epoll" {
                    baseline = Some(per_cpu);
                }
                let ratio = baseline.map_or(String::from("-"), |b| format!("{:.2}x", per_cpu / b));
                println!(
                    "{:<7} {:>7} {:<6} {:>6.2} {:>6.2} {:>12.0} {:>10.2} {:>9.0} {:>9.1} {:>7} {:>5.0}%",
                    profile,
                    n,
                    mode,
                    out.wall.as_secs_f64(),
                    cpu,
                    per_cpu,
                    out.bytes as f64 / cpu / 1e9,
                    out.deliveries as f64 / out.wall.as_secs_f64(),
                    out.sends_per_submit,
                    ratio,
                    100.0 * out.fixed_sends as f64 / out.sends.max(1) as f64
                );
            }
        }
        println!(
            "({profile}: {:.0} kbps per viewer)",
            Source::new(profile).bitrate_kbps()
        );
    }
}
