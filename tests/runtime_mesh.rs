//! Two pinned cores play ping-pong over the mesh, each sleeping in its reactor
//! until the other's eventfd wake-up arrives; and two stream shards replicate
//! over a deliberately tiny mesh that must drop media but never control.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast::protocol::{Frame, FrameKind};
use ringcast::runtime::cores::{CoreSlot, CoreThreads, Cores};
use ringcast::runtime::mesh::{CoreLink, Lane, Mesh, MeshConfig, Refused};
use ringcast::runtime::{Reactor, ReactorConfig};
use ringcast::stream::{
    BatchStatus, CoreMsg, Handled, OutFrame, Role, Shard, ShardConfig, StreamId, StreamKey,
    ViewerId, ViewerOptions,
};

const WAKE: u64 = 7;
const ROUNDS: u64 = 2_000;

/// Runs one core: answers every `n` with `n + 1` until `n` reaches `ROUNDS`.
/// Returns (items received, wake completions seen, elapsed).
fn play(slot: CoreSlot, mut link: CoreLink<u64>) -> (u64, u64, Duration) {
    let cfg = ReactorConfig {
        entries: 32,
        recv_buffers: 2,
        recv_buffer_size: 64,
        ..ReactorConfig::default()
    };
    let mut reactor = Reactor::new(&cfg).unwrap();
    let mut counter = Box::new(0u64);
    // SAFETY: `counter` is boxed and outlives the reactor's use of it (the loop).
    unsafe {
        reactor
            .read_eventfd(link.wake_fd(), &mut *counter, WAKE)
            .unwrap()
    };
    let peer = 1 - slot.index;
    let started = Instant::now();
    if slot.index == 0 {
        link.send(peer, Lane::Control, 0).unwrap();
        link.flush_wakeups();
    }
    let (mut received, mut wakes) = (0u64, 0u64);
    let deadline = started + Duration::from_secs(20);
    let mut done = false;
    while !done && Instant::now() < deadline {
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(200)))
            .unwrap();
        let mut rearm = false;
        reactor.drain_completions(|_, c| {
            assert_eq!(c.user_data, WAKE);
            assert_eq!(c.result, 8, "eventfd read: {:?}", c.error());
            wakes += 1;
            rearm = true;
        });
        if rearm {
            // SAFETY: as above.
            unsafe {
                reactor
                    .read_eventfd(link.wake_fd(), &mut *counter, WAKE)
                    .unwrap()
            };
        }
        let mut replies = Vec::new();
        link.drain(|from, n| {
            assert_eq!(from, peer);
            received += 1;
            if n + 1 >= ROUNDS {
                done = true;
            }
            if n < ROUNDS {
                replies.push(n + 1);
            }
        });
        for n in replies {
            link.send(peer, Lane::Control, n).unwrap();
        }
        link.flush_wakeups();
    }
    (received, wakes, started.elapsed())
}

#[test]
fn two_cores_ping_pong_with_wakeups() {
    let links = Mesh::new::<u64>(
        2,
        MeshConfig {
            control_ring: 64,
            ..MeshConfig::default()
        },
    )
    .unwrap();
    // Pinned to two CPUs when the machine has them; otherwise both share one.
    let cores = if Cores::All.resolve().unwrap().len() >= 2 {
        Cores::Count(2)
    } else {
        Cores::List(vec![0, 0])
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let threads = CoreThreads::spawn(&cores, links, move |slot, link| {
        let result = play(slot, link);
        tx.lock().unwrap().send((slot.index, result)).unwrap();
    });
    let threads = threads.expect("spawn two pinned cores");
    threads.join().unwrap();
    let mut results: Vec<_> = rx.iter().collect();
    results.sort_by_key(|(i, _)| *i);
    let total: u64 = results.iter().map(|(_, (r, _, _))| r).sum();
    // Items 0..=ROUNDS each cross once.
    assert_eq!(
        total,
        ROUNDS + 1,
        "every hop arrived exactly once: {results:?}"
    );
    for (index, (received, wakes, elapsed)) in &results {
        // The peer waits for each reply before sending, so hops mostly need a wake each.
        assert!(
            *wakes >= received / 2,
            "core {index}: {wakes} wakes for {received} items"
        );
        eprintln!(
            "core {index}: {received} items, {wakes} wakes, {:.1} us per round trip",
            elapsed.as_secs_f64() * 1e6 / (ROUNDS / 2) as f64
        );
    }
}

/// A video frame whose payload carries its publish index `n`.
fn video(n: u32, key: bool) -> Frame {
    let b0 = if key { 0x17 } else { 0x27 };
    let [a, b, c, d] = n.to_be_bytes();
    Frame::new(
        FrameKind::Video,
        n * 20,
        Bytes::from(vec![b0, 1, 0, 0, 0, a, b, c, d]),
    )
}

/// An AVC sequence header whose payload carries `n` (a new encoder configuration).
fn video_header(n: u32) -> Frame {
    let [a, b, c, d] = n.to_be_bytes();
    Frame::new(
        FrameKind::Video,
        n * 20,
        Bytes::from(vec![0x17, 0, 0, 0, 0, a, b, c, d]),
    )
}

fn audio(n: u32) -> Frame {
    let [a, b, c, d] = n.to_be_bytes();
    Frame::new(
        FrameKind::Audio,
        n * 20,
        Bytes::from(vec![0xaf, 1, a, b, c, d]),
    )
}

fn index_of(frame: &Frame) -> Option<u32> {
    let p = &frame.payload;
    let tail: [u8; 4] = p.get(p.len().checked_sub(4)?..)?.try_into().ok()?;
    Some(u32::from_be_bytes(tail))
}

fn send(link: &mut CoreLink<CoreMsg>, to: usize, msg: CoreMsg, media_dropped: &mut u64) {
    let lane = if msg.is_media() {
        Lane::Media
    } else {
        Lane::Control
    };
    match link.send(to, lane, msg) {
        Ok(()) => {}
        Err(Refused::Full(msg)) => {
            assert!(msg.is_media(), "control refused: {msg:?}");
            *media_dropped += 1;
        }
        Err(Refused::NoRoute(msg)) => panic!("no route for {msg:?}"),
    }
}

/// Applies everything core `me` received; returns replies to send back.
fn apply(
    link: &mut CoreLink<CoreMsg>,
    shard: &mut Shard,
    ended: &mut bool,
) -> Vec<(usize, CoreMsg)> {
    let mut msgs = Vec::new();
    link.drain(|_, msg| msgs.push(msg));
    let mut replies = Vec::new();
    for msg in msgs {
        match shard.handle(msg, 0) {
            Handled::Reply { to_core, msg } => replies.push((to_core, msg)),
            Handled::Ended(_) => *ended = true,
            _ => {}
        }
    }
    replies
}

fn read(shard: &mut Shard, viewer: ViewerId, out: &mut Vec<OutFrame>) -> BatchStatus {
    loop {
        let before = out.len();
        let status = shard.next_batch(viewer, 0, 64, 1 << 20, out);
        if status != BatchStatus::Ready || out.len() == before {
            return status;
        }
    }
}

/// Pushes a publisher's frame on the owner and forwards it to the replicas.
fn publish(
    owner: &mut Shard,
    link: &mut CoreLink<CoreMsg>,
    id: StreamId,
    frame: Frame,
    dropped: &mut u64,
) {
    let pushed = owner.push_frame(id, frame, 0).unwrap();
    let msg = CoreMsg::frame(id, &pushed.entry);
    for core in pushed.replicate_to.iter() {
        send(link, core, msg.clone(), dropped);
    }
}

/// Owner on core 0, replica on core 1, rings of two items and a media backlog of
/// two: the replica's core falls behind on purpose. Subscribe, Snapshot and
/// StreamEnd all arrive; frames are dropped, and the replica's viewer never
/// gets a frame that needs a lost one, nor a keyframe without the sequence
/// header current when it was published.
#[test]
fn tiny_mesh_drops_media_never_control_and_replicas_resync() {
    let config = MeshConfig {
        media_ring: 2,
        control_ring: 2,
        media_backlog: 2,
    };
    let mut links = Mesh::new::<CoreMsg>(2, config).unwrap();
    let (mut replica_link, mut owner_link) = (links.pop().unwrap(), links.pop().unwrap());
    let key = StreamKey::new("live", "s").unwrap();
    let id = StreamId(1);
    let mut owner = Shard::new(0, ShardConfig::default());
    let mut replica = Shard::new(1, ShardConfig::default());
    owner
        .open_stream(key.clone(), id, Role::Owner { generation: 1 }, 0)
        .unwrap();
    replica
        .open_stream(key, id, Role::Replica { owner_core: 0 }, 0)
        .unwrap();
    let viewer = replica.add_viewer(id, ViewerOptions::default()).unwrap();
    let (to, subscribe) = replica.subscribe_msg(id).unwrap();
    let mut dropped = 0u64;
    send(&mut replica_link, to, subscribe, &mut dropped);

    let (mut owner_ended, mut replica_ended) = (false, false);
    let mut out = Vec::new();
    // Publish index → the video frame it depends on (None for keyframes).
    let mut depends_on = std::collections::HashMap::new();
    let mut last_video = None;
    // Keyframe index → the sequence header (its index) current when it was published.
    let mut header_of_key = std::collections::HashMap::new();
    let mut header = 0;
    for n in 0..3_000u32 {
        for (to, msg) in apply(&mut owner_link, &mut owner, &mut owner_ended) {
            send(&mut owner_link, to, msg, &mut dropped);
        }
        if n % 90 == 0 {
            header = n;
            publish(
                &mut owner,
                &mut owner_link,
                id,
                video_header(n),
                &mut dropped,
            );
        }
        let frame = if n % 2 == 1 {
            audio(n)
        } else {
            let key = n % 30 == 0;
            depends_on.insert(n, if key { None } else { last_video });
            if key {
                header_of_key.insert(n, header);
            }
            last_video = Some(n);
            video(n, key)
        };
        publish(&mut owner, &mut owner_link, id, frame, &mut dropped);
        owner_link.flush_backlogs();
        replica_link.flush_backlogs();
        // The replica's core runs only now and then.
        if n % 13 == 0 {
            for (to, msg) in apply(&mut replica_link, &mut replica, &mut replica_ended) {
                send(&mut replica_link, to, msg, &mut dropped);
            }
            read(&mut replica, viewer, &mut out);
        }
    }
    let ended = owner.end_stream(id).unwrap();
    assert_eq!(
        ended.notify.iter().collect::<Vec<_>>(),
        vec![1],
        "the subscription arrived"
    );
    send(
        &mut owner_link,
        1,
        CoreMsg::StreamEnd { stream_id: id },
        &mut dropped,
    );
    let mut status = BatchStatus::Idle;
    for _ in 0..10_000 {
        owner_link.flush_backlogs();
        apply(&mut replica_link, &mut replica, &mut replica_ended);
        status = read(&mut replica, viewer, &mut out);
        if status == BatchStatus::Finished {
            break;
        }
    }
    assert_eq!(status, BatchStatus::Finished, "StreamEnd arrived");
    assert!(replica_ended);
    assert!(dropped > 0, "the tiny mesh must have dropped frames");
    let gap = replica.counters().mesh_gap;
    assert!(
        gap >= dropped,
        "replica counted {gap} missed or skipped, {dropped} dropped"
    );

    let mut prev_video = None;
    let mut viewer_header = None;
    let (mut videos, mut keys) = (0, 0);
    for f in &out {
        let frame = f.entry.frame();
        if frame.kind != FrameKind::Video {
            continue;
        }
        let n = index_of(frame).unwrap();
        if frame.sequence_header {
            viewer_header = Some(n);
            continue;
        }
        if frame.keyframe {
            assert_eq!(
                viewer_header,
                header_of_key.get(&n).copied(),
                "keyframe {n} under a stale header"
            );
        }
        if let Some(Some(needs)) = depends_on.get(&n) {
            assert_eq!(
                prev_video,
                Some(*needs),
                "frame {n} sent without the frame it needs"
            );
        }
        prev_video = Some(n);
        videos += 1;
        keys += usize::from(frame.keyframe);
    }
    // Deterministic (one thread): the replica resyncs at several keyframes.
    assert!(
        keys >= 3 && videos >= 10,
        "the replica's viewer got video ({videos} frames, {keys} keyframes)"
    );
}
