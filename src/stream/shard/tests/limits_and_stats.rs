//! The shard's limits (streams, viewers, a stream opened twice, an unknown
//! stream) and the statistics it reports per stream (codecs, rates, size).

use super::*;

#[test]
fn limits_are_enforced() {
    let config = ShardConfig {
        max_streams: 1,
        max_viewers: 1,
        ..Default::default()
    };
    let (mut shard, id) = owner_shard(config);
    assert_eq!(
        shard.open_stream(key("t"), StreamId(2), Role::Owner { generation: 2 }, 0),
        Err(ShardError::TooManyStreams { limit: 1 })
    );
    assert_eq!(
        shard.open_stream(key("s"), id, Role::Replica { owner_core: 1 }, 0),
        Err(ShardError::AlreadyOpen(id))
    );
    shard.add_viewer(id, ViewerOptions::default()).unwrap();
    assert_eq!(
        shard.add_viewer(id, ViewerOptions::default()),
        Err(ShardError::TooManyViewers { limit: 1 })
    );
    assert_eq!(
        shard.push_frame(StreamId(7), audio(0), 0).err(),
        Some(ShardError::UnknownStream(StreamId(7)))
    );
    let mut full = Shard::new(
        1,
        ShardConfig {
            max_viewers: 0,
            ..Default::default()
        },
    );
    assert_eq!(
        full.open_stream(key("s"), id, Role::Replica { owner_core: 0 }, 0),
        Err(ShardError::TooManyViewers { limit: 0 }),
        "no replica is opened for a viewer that cannot be added"
    );
}

#[test]
fn stats_report_codecs_and_rates() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, 0, 0);
    push_gops(&mut shard, id, 3, 10, 0, 0);
    shard.set_video_size(id, 1280, 720);
    let stats = shard.stats(id).unwrap();
    assert_eq!(
        stats.video_codec,
        Some(crate::protocol::flv::codec::VideoCodec::Avc)
    );
    assert_eq!(
        stats.audio_codec,
        Some(crate::protocol::flv::codec::AudioCodec::Aac)
    );
    assert_eq!(stats.fps_x100, 2_500);
    assert_eq!(stats.frames_in, 63);
    assert_eq!((stats.width, stats.height), (Some(1280), Some(720)));
    assert!(stats.publishing && stats.owned);
}
