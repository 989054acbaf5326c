//! HLS, MPEG-TS HLS and LL-DASH served by the real server (2 cores) from a
//! stream published with ffmpeg over RTMP: real decoders (ffmpeg's hls and
//! dash demuxers) on every entry URL, blocking playlist reload, keep-alive
//! pipelining, the same bytes from both cores, an in-progress LL-DASH
//! segment streamed with chunked transfer, and bad requests.

mod common;
mod edge_support;

use std::time::{Duration, Instant};

use common::hls_playlist::preload_hint;
use common::http1::{Conn, Response};
use common::*;
use edge_support::{edge_toml, rtmp_origin};

/// A connection to `port`, reads bounded (a blocking reload waits seconds).
fn connect(port: u16) -> Conn {
    Conn::connect(port, Duration::from_secs(20))
}

/// `GET path` as HTTP/1.1 on a connection of its own.
fn get(port: u16, path: &str) -> Response {
    connect(port).request("GET", path)
}

/// Starts a 2-core server and an ffmpeg publisher of `live/cam` for
/// `seconds`, and waits until the multivariant playlist is served.
fn live_server(seconds: u32) -> (Server, Proc) {
    require::command("ffmpeg", "ffmpeg");
    require::command("ffprobe", "ffmpeg");
    let server = Server::start(2, "");
    let publisher = publish(&server.rtmp_url("live", "cam"), seconds);
    wait_live(&server, "live", "cam", Duration::from_secs(20));
    wait_until("the multivariant playlist", Duration::from_secs(20), || {
        get(server.http_port, "/live/cam.m3u8").status == 200
    });
    (server, publisher)
}

/// An ffmpeg publisher of `live/name` to `server` for `seconds`, once the
/// stream is live and its video media playlist is served (20 s for each).
fn publish_until_media_playlist(server: &Server, name: &str, seconds: u32) -> Proc {
    let publisher = publish(&server.rtmp_url("live", name), seconds);
    wait_live(server, "live", name, Duration::from_secs(20));
    let path = format!("/live/{name}/v.m3u8");
    wait_until("a media playlist", Duration::from_secs(20), || {
        get(server.http_port, &path).status == 200
    });
    publisher
}

#[test]
fn ll_hls_ts_hls_and_ll_dash_decode_in_ffmpeg() {
    let (server, _publisher) = live_server(60);
    // ffmpeg's demuxers are not low-latency clients: they start three whole
    // segments from the live edge, so wait until there are three.
    wait_until("three closed segments", Duration::from_secs(30), || {
        get(server.http_port, "/live/cam/v.m3u8")
            .text()
            .matches("#EXTINF")
            .count()
            >= 3
    });
    // ffmpeg's hls demuxer reads the multivariant playlist, both media
    // playlists and their fMP4 segments; the TS playlist muxed segments; the
    // dash demuxer the MPD's $Number$ segments.
    for path in ["/live/cam.m3u8", "/live/cam-ts.m3u8", "/live/cam.mpd"] {
        let url = format!("http://127.0.0.1:{}{path}", server.http_port);
        let d = pull_decode(&url, 100, Duration::from_secs(60));
        assert!(
            d.video_frames >= 100,
            "{path}: {} frames decoded: {}",
            d.video_frames,
            d.errors
        );
        assert!(d.ok && d.errors.trim().is_empty(), "{path}: {}", d.errors);
    }
    // The playlists parse with an independent parser.
    let media = get(server.http_port, "/live/cam/v.m3u8");
    match m3u8_rs::parse_playlist_res(&media.body) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => {
            assert!(!p.segments.is_empty(), "{}", media.text());
            assert!(p.target_duration >= 2);
        }
        other => panic!("v.m3u8 is not a media playlist: {other:?}"),
    }
    let master = get(server.http_port, "/live/cam.m3u8");
    assert!(matches!(
        m3u8_rs::parse_playlist_res(&master.body),
        Ok(m3u8_rs::Playlist::MasterPlaylist(_))
    ));
}

#[test]
fn blocking_reload_pipelining_both_cores_dash_in_progress_and_bad_requests() {
    let (server, _publisher) = live_server(90);
    let port = server.http_port;

    // The oldest segment listed now, to see it evicted later.
    let first_msn = media_sequence(&get(port, "/live/cam/v.m3u8").text());
    let oldest = format!("/live/cam/v/{first_msn}.m4s");
    assert_eq!(get(port, &oldest).status, 200);

    // Blocking reload for the next part: answered only once it exists, and
    // the playlist then lists it.
    let media = get(port, "/live/cam/v.m3u8");
    assert_eq!(media.status, 200);
    assert!(media.header("cache-control").is_some());
    assert_eq!(media.header("access-control-allow-origin"), Some("*"));
    let (msn, part) = preload_hint(&media.text());
    let next = format!("URI=\"v/{msn}.{part}.m4s\"");
    assert!(
        !media
            .text()
            .lines()
            .any(|l| l.starts_with("#EXT-X-PART:") && l.contains(&next)),
        "the hinted part is not listed yet"
    );
    let asked = Instant::now();
    let reload = get(
        port,
        &format!("/live/cam/v.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
    );
    assert_eq!(reload.status, 200, "{}", reload.text());
    assert!(
        reload
            .text()
            .lines()
            .any(|l| l.starts_with("#EXT-X-PART:") && l.contains(&next)),
        "the blocking reload returned before part {msn}.{part} existed:\n{}",
        reload.text()
    );
    assert!(asked.elapsed() < Duration::from_secs(12));
    // The part itself is immutable.
    let p = get(port, &format!("/live/cam/v/{msn}.{part}.m4s"));
    assert_eq!(p.status, 200);
    assert_eq!(
        p.header("cache-control"),
        Some("max-age=31536000, immutable")
    );
    assert_eq!(
        reload.header("cache-control"),
        Some("max-age=12"),
        "3 x TARGETDURATION"
    );
    // A byte range of an immutable body: 206 with the same bytes.
    let mut c = connect(port);
    c.send(&format!(
        "GET /live/cam/v/{msn}.{part}.m4s HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n"
    ));
    let ranged = c.read_response();
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body, p.body[..10]);
    assert_eq!(
        ranged.header("content-range"),
        Some(format!("bytes 0-9/{}", p.body.len()).as_str())
    );
    // Too far ahead: 400 at once.
    let far = get(port, &format!("/live/cam/v.m3u8?_HLS_msn={}", msn + 10));
    assert_eq!(far.status, 400);

    // Keep-alive and pipelining: three requests in one write, the first a
    // blocking reload that waits; the answers come in request order.
    let media = get(port, "/live/cam/v.m3u8");
    let (msn, part) = preload_hint(&media.text());
    let mut s = connect(port);
    s.send(&format!(
        "GET /live/cam/v.m3u8?_HLS_msn={msn}&_HLS_part={part} HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /live/cam.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n\
         HEAD /live/cam-ts.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n"
    ));
    let first = s.read_response();
    assert_eq!(first.status, 200);
    assert!(first.text().contains(&format!("v/{msn}.{part}.m4s")));
    let second = s.read_response();
    assert_eq!(second.status, 200);
    assert!(second.text().starts_with("#EXTM3U") && second.text().contains("STREAM-INF"));
    // HEAD: the headers of the TS playlist, no body.
    s.send("GET /live/cam.mpd HTTP/1.1\r\nHost: x\r\n\r\n");
    // A HEAD response has a Content-Length but no body: read the head only.
    let third_head = s.read_head();
    assert!(third_head.starts_with("HTTP/1.1 200"), "{third_head}");
    assert!(third_head.contains("Content-Length: "));
    let mpd = s.read_response();
    assert_eq!(mpd.status, 200);
    assert!(mpd.text().contains("<MPD"));

    // An HTTP-FLV play pipelined behind an HLS response starts after it.
    let mut s = connect(port);
    s.send(
        "GET /live/cam/v.m3u8 HTTP/1.1\r\nHost: x\r\n\r\nGET /live/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let playlist = s.read_response();
    assert!(playlist.status == 200 && playlist.text().starts_with("#EXTM3U"));
    let flv_head = s.read_head();
    assert!(
        flv_head.starts_with("HTTP/1.1 200") && flv_head.contains("video/x-flv"),
        "{flv_head}"
    );
    drop(s);

    // Both cores answer (16 connections spread over the SO_REUSEPORT
    // listeners; the core not owning the stream answers from its copy of the
    // owner's views) with the same bytes.
    let init_path = {
        let v = get(port, "/live/cam/v.m3u8").text();
        let uri = v
            .lines()
            .find(|l| l.starts_with("#EXT-X-MAP"))
            .and_then(|l| l.split("URI=\"").nth(1))
            .and_then(|u| u.split('"').next())
            .unwrap()
            .to_owned();
        format!("/live/cam/{uri}")
    };
    let closed_part = format!("/live/cam/v/{msn}.0.m4s");
    let reference = (get(port, &init_path).body, get(port, &closed_part).body);
    assert!(!reference.0.is_empty() && !reference.1.is_empty());
    check_served_media(port, &reference.0, &reference.1);
    for _ in 0..16 {
        let mut c = connect(port);
        let init = c.request("GET", &init_path);
        let part = c.request("GET", &closed_part);
        assert_eq!((init.status, part.status), (200, 200));
        assert!(
            init.body == reference.0 && part.body == reference.1,
            "bytes differ between cores"
        );
    }
    let copies: f64 = (0..2)
        .map(|core| {
            let text = http_request(server.admin_port, "GET", "/metrics").1;
            let series = format!("ringcast_hls_copies{{core=\"{core}\"}}");
            text.lines()
                .find_map(|l| l.strip_prefix(series.as_str())?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        })
        .sum();
    assert_eq!(
        copies, 1.0,
        "the non-owner core serves from one copied view"
    );

    // LL-DASH: the segment being produced streams with chunked transfer as
    // its parts land, and equals the stored segment once complete.
    let v = get(port, "/live/cam/v.m3u8").text();
    let (open_msn, _) = preload_hint(&v);
    let streamed = get(port, &format!("/live/cam/v/{open_msn}.m4s"));
    assert_eq!(streamed.status, 200);
    assert_eq!(streamed.header("transfer-encoding"), Some("chunked"));
    let stored = get(port, &format!("/live/cam/v/{open_msn}.m4s"));
    assert_eq!(stored.status, 200);
    assert!(stored.header("content-length").is_some());
    assert!(
        streamed.body == stored.body && !stored.body.is_empty(),
        "streamed {} bytes, stored {}",
        streamed.body.len(),
        stored.body.len()
    );

    // Bad requests: each gets its status, and the server keeps serving.
    for (method, path, status) in [
        ("GET", "/live/cam/v/999999.0.m4s".to_owned(), 404),
        ("GET", "/live/cam/v.m3u8?_HLS_msn=x".to_owned(), 400),
        ("GET", "/live/cam/v.m3u8?_HLS_part=1".to_owned(), 400),
        ("GET", "/live/cam/x/1.m4s".to_owned(), 400),
        ("POST", "/live/cam.m3u8".to_owned(), 405),
        ("GET", "/live/nobody.m3u8".to_owned(), 404),
        ("GET", "/live/nobody.mpd".to_owned(), 404),
        (
            "GET",
            "/live/cam/v/18446744073709551615.0.m4s".to_owned(),
            404,
        ),
        (
            "GET",
            "/live/cam/v/99999999999999999999999.m4s".to_owned(),
            400,
        ),
        ("GET", "/live/cam/v/init-zz.mp4".to_owned(), 400),
        (
            "GET",
            "/live/cam/v.m3u8?_HLS_msn=1&_HLS_msn=2".to_owned(),
            400,
        ),
        ("GET", "/live/cam/v.m3u8?_HLS_skip=NO".to_owned(), 400),
        ("DELETE", "/live/cam/v/1.0.m4s".to_owned(), 405),
    ] {
        let r = connect(port).request(method, &path);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
    }
    let mut c = connect(port);
    let preflight = c.request("OPTIONS", "/live/cam.m3u8");
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    // An evicted segment: the oldest leaves the window (6 segments of 2 s).
    wait_until(
        "the oldest segment evicted (404)",
        Duration::from_secs(40),
        || get(port, &oldest).status == 404,
    );
    let clock = get(port, "/time");
    assert_eq!(clock.status, 200);
    assert!(clock.text().ends_with('Z'), "{}", clock.text());
    // HTTP/1.0 (no keep-alive): answered, then closed.
    let (status, body) = http_request(port, "GET", "/live/cam.m3u8");
    assert_eq!(status, 200);
    assert!(body.contains("STREAM-INF"));
    assert_eq!(get(port, "/live/cam.m3u8").status, 200, "still serving");
}

#[test]
fn an_hls_request_starts_the_edge_pull_and_waits_for_a_publisher() {
    require::command("ffmpeg", "ffmpeg");
    // Edge: the first HLS request for a key not live here starts the pull
    // and is answered once the stream is packaged.
    let origin = Server::start(1, "");
    let _publisher = publish(&origin.rtmp_url("live", "cam"), 60);
    wait_live(&origin, "live", "cam", Duration::from_secs(20));
    let edge = Server::start(2, &edge_toml(&[rtmp_origin(&origin)], "30s"));
    let first = get(edge.http_port, "/live/cam.m3u8");
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(first.text().contains("STREAM-INF"));
    wait_until(
        "three closed segments on the edge",
        Duration::from_secs(30),
        || {
            get(edge.http_port, "/live/cam-ts.m3u8")
                .text()
                .matches("#EXTINF")
                .count()
                >= 3
        },
    );
    let url = format!("http://127.0.0.1:{}/live/cam-ts.m3u8", edge.http_port);
    let d = pull_decode(&url, 100, Duration::from_secs(60));
    assert!(
        d.video_frames >= 100 && d.ok,
        "{} frames: {}",
        d.video_frames,
        d.errors
    );
    assert_eq!(
        get(edge.http_port, "/live/nobody.m3u8").status,
        404,
        "the origin does not have it"
    );

    // wait_for_publisher: a request before the publisher is held, then answered.
    let server = Server::start(1, "[stream]\nwait_for_publisher = \"15s\"\n");
    let port = server.http_port;
    let early = std::thread::spawn(move || get(port, "/live/late.m3u8"));
    std::thread::sleep(Duration::from_millis(300));
    let _late = publish(&server.rtmp_url("live", "late"), 30);
    let answered = early.join().unwrap();
    assert_eq!(answered.status, 200, "{}", answered.text());
    assert!(answered.text().contains("#EXTM3U"));
}

/// The served init and part read back box by box with mp4-atom, and the
/// newest TS segment with mpeg2ts (continuity counters, DTS monotone).
fn check_served_media(port: u16, init: &[u8], part: &[u8]) {
    use mp4_atom::{Decode, Ftyp, Mdat, Moof, Moov};
    let mut buf = init;
    Ftyp::decode(&mut buf).unwrap();
    let moov = Moov::decode(&mut buf).unwrap();
    assert_eq!(moov.trak.len(), 1, "one track per init");
    let track_id = moov.trak[0].tkhd.track_id;
    let mut buf = part;
    let moof = Moof::decode(&mut buf).unwrap();
    let mdat = Mdat::decode(&mut buf).unwrap();
    assert!(buf.is_empty(), "one moof+mdat per part");
    let [traf] = moof.traf.as_slice() else {
        panic!("one track per chunk")
    };
    assert_eq!(traf.tfhd.track_id, track_id);
    assert!(traf.tfdt.is_some());
    let size: usize = traf
        .trun
        .iter()
        .flat_map(|t| t.samples.iter())
        .map(|e| e.size.unwrap() as usize)
        .sum();
    assert_eq!(size, mdat.data.len(), "sample sizes cover the mdat");

    use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
    use mpeg2ts::ts::{ReadTsPacket, TsPacketReader};
    let ts_list = get(port, "/live/cam-ts.m3u8").text();
    let last = ts_list
        .lines()
        .rfind(|l| l.ends_with(".ts"))
        .expect("a TS segment")
        .to_owned();
    let seg = get(port, &format!("/live/{last}"));
    assert_eq!(seg.status, 200, "/live/{last}");
    assert_eq!(seg.header("content-type"), Some("video/mp2t"));
    let mut cc = std::collections::HashMap::new();
    let mut reader = TsPacketReader::new(seg.body.as_slice());
    while let Some(pkt) = reader.read_ts_packet().unwrap() {
        let pid = pkt.header.pid.as_u16();
        let counter = pkt.header.continuity_counter.as_u8();
        if pkt.payload.is_some() {
            if let Some(prev) = cc.insert(pid, counter) {
                assert_eq!(counter, (prev + 1) % 16, "CC on PID {pid:#x}");
            }
        }
    }
    let mut pes = PesPacketReader::new(TsPacketReader::new(seg.body.as_slice()));
    let mut last_dts = std::collections::HashMap::new();
    let mut n = 0;
    while let Some(pkt) = pes.read_pes_packet().unwrap() {
        let pts = pkt.header.pts.unwrap().as_u64();
        let dts = pkt.header.dts.map_or(pts, |d| d.as_u64());
        if let Some(prev) = last_dts.insert(pkt.header.stream_id.as_u8(), dts) {
            assert!(dts > prev, "DTS monotone");
        }
        n += 1;
    }
    assert!(n > 10, "{n} PES packets in {last}");
}

/// The `#EXT-X-MEDIA-SEQUENCE` of a media playlist.
fn media_sequence(playlist: &str) -> u64 {
    playlist
        .lines()
        .find_map(|l| {
            l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no media sequence in {playlist}"))
}

#[test]
fn a_returning_publisher_continues_the_numbers_with_a_discontinuity() {
    require::command("ffmpeg", "ffmpeg");
    // One core: the returning publisher lands on the core that kept the packager.
    let server = Server::start(1, "");
    let port = server.http_port;
    let mut first = publish(&server.rtmp_url("live", "back"), 8);
    wait_live(&server, "live", "back", Duration::from_secs(20));
    wait_until("two closed segments", Duration::from_secs(30), || {
        get(port, "/live/back/v.m3u8")
            .text()
            .matches("#EXTINF")
            .count()
            >= 2
    });
    let before = get(port, "/live/back/v.m3u8").text();
    let discontinuity = |p: &str| p.lines().any(|l| l.trim() == "#EXT-X-DISCONTINUITY");
    assert!(!discontinuity(&before));
    let last_before = preload_hint(&before).0;
    assert!(
        first.wait_for(Duration::from_secs(30)).is_some(),
        "publisher ends"
    );
    wait_until("the stream ended (404)", Duration::from_secs(20), || {
        get(port, "/live/back.m3u8").status == 404
    });
    let _second = publish(&server.rtmp_url("live", "back"), 20);
    wait_until(
        "a segment of the new publisher",
        Duration::from_secs(30),
        || {
            let r = get(port, "/live/back/v.m3u8");
            r.status == 200 && discontinuity(&r.text())
        },
    );
    let after = get(port, "/live/back/v.m3u8").text();
    assert!(
        media_sequence(&after) <= last_before && preload_hint(&after).0 > last_before,
        "numbers continue: before up to {last_before}, after:\n{after}"
    );
    let url = format!("http://127.0.0.1:{port}/live/back.m3u8");
    let d = pull_decode(&url, 50, Duration::from_secs(40));
    assert!(
        d.video_frames >= 50 && d.ok,
        "{} frames: {}",
        d.video_frames,
        d.errors
    );
}

#[test]
fn the_api_counts_hls_sessions_from_request_rates() {
    require::command("ffmpeg", "ffmpeg");
    let server = Server::start(1, "");
    let port = server.http_port;
    let _publisher = publish_until_media_playlist(&server, "s", 40);
    // Two LL-HLS "players": one blocking reload of the video playlist per part.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let players: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = connect(port);
                let started = Instant::now();
                let mut playlist = c.request("GET", "/live/s/v.m3u8").text();
                while started.elapsed() < Duration::from_secs(30)
                    && !stop.load(std::sync::atomic::Ordering::Relaxed)
                {
                    let (msn, part) = preload_hint(&playlist);
                    let path = format!("/live/s/v.m3u8?_HLS_msn={msn}&_HLS_part={part}");
                    let r = c.request("GET", &path);
                    assert_eq!(r.status, 200);
                    playlist = r.text();
                }
            })
        })
        .collect();
    wait_until(
        "the API shows 2 HLS sessions",
        Duration::from_secs(25),
        || {
            let snapshot = edge_support::stream_json(&server, "live", "s");
            snapshot["viewers"]["hls"].as_u64() == Some(2)
        },
    );
    let metrics = http_request(server.admin_port, "GET", "/metrics").1;
    assert!(
        metrics.contains("ringcast_viewers{protocol=\"hls\"} 2"),
        "{metrics}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in players {
        p.join().unwrap();
    }
}

#[test]
fn a_reload_blocked_past_three_target_durations_is_503_and_audio_only_is_served() {
    use common::raw_rtmp::{audio_frame, audio_header_frame, RawClient};
    let server = Server::start(1, "");
    let port = server.http_port;
    // An audio-only stream that stops sending (the publisher stays connected).
    let mut publisher =
        RawClient::publish(server.rtmp_port, "live", "mute", Duration::from_secs(10)).unwrap();
    let mut frames = vec![audio_header_frame()];
    frames.extend((0..200u32).map(|i| audio_frame(i * 23, 200)));
    publisher.send(&frames).unwrap();
    wait_until("the audio playlist", Duration::from_secs(20), || {
        let r = get(port, "/live/mute/a.m3u8");
        r.status == 200 && r.text().contains("#EXTINF")
    });
    let master = get(port, "/live/mute.m3u8").text();
    assert!(
        master.contains("mp4a.40.2") && !master.contains("avc1"),
        "{master}"
    );
    assert_eq!(get(port, "/live/mute/v.m3u8").status, 404, "no video track");
    // The stream stalls: a reload for the next part waits 3 x TARGETDURATION
    // (12 s), answered by the timer wheel with 503.
    let (msn, part) = preload_hint(&get(port, "/live/mute/a.m3u8").text());
    let asked = Instant::now();
    let blocked = get(
        port,
        &format!("/live/mute/a.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
    );
    let waited = asked.elapsed();
    assert_eq!(blocked.status, 503, "{}", blocked.text());
    assert!(
        waited >= Duration::from_millis(11_500) && waited < Duration::from_secs(14),
        "answered after {waited:?}"
    );
    let text = http_request(server.admin_port, "GET", "/metrics").1;
    assert!(
        text.contains("ringcast_hls_errors_total{status=\"503\"} 1"),
        "{text}"
    );
    drop(publisher);
}

#[test]
fn blocking_reloads_on_both_cores_follow_every_part_through_a_one_slot_control_ring() {
    require::command("ffmpeg", "ffmpeg");
    let server = Server::start(2, "[runtime]\ncross_core_control_queue = 1\n");
    let port = server.http_port;
    let _publisher = publish_until_media_playlist(&server, "q", 60);
    // Eight players on their own connections (both cores), each following
    // 12 parts by blocking reload: every answer lists the part asked for.
    let players: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = connect(port);
                let mut playlist = c.request("GET", "/live/q/v.m3u8").text();
                for _ in 0..12 {
                    let (msn, part) = preload_hint(&playlist);
                    let path = format!("/live/q/v.m3u8?_HLS_msn={msn}&_HLS_part={part}");
                    let r = c.request("GET", &path);
                    assert_eq!(r.status, 200, "{path}: {}", r.text());
                    playlist = r.text();
                    let listed = format!("URI=\"v/{msn}.{part}.m4s\"");
                    assert!(
                        playlist
                            .lines()
                            .any(|l| l.starts_with("#EXT-X-PART:") && l.contains(&listed)),
                        "{path} answered without part {msn}.{part}"
                    );
                }
            })
        })
        .collect();
    for p in players {
        p.join().unwrap();
    }
    let metrics = http_request(server.admin_port, "GET", "/metrics").1;
    let copies: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ringcast_hls_copies{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(copies, 1.0, "the other core answered from its copy");
}

#[test]
fn a_viewer_of_a_brand_new_stream_gets_a_whole_segment_and_an_mpd_with_a_segment() {
    require::command("ffmpeg", "ffmpeg");
    // Requests made before the publisher arrives (held by wait_for_publisher),
    // so they reach the packager in its first segment: the media playlist is
    // held until that segment closes (hls.js takes a playlist of parts only as
    // empty), and the MPD is never served with an empty SegmentTimeline.
    let server = Server::start(1, "[stream]\nwait_for_publisher = \"15s\"\n");
    let port = server.http_port;
    let playlist = std::thread::spawn(move || get(port, "/live/fresh/v.m3u8"));
    let mpd = std::thread::spawn(move || get(port, "/live/fresh.mpd"));
    std::thread::sleep(Duration::from_millis(300));
    let _publisher = publish(&server.rtmp_url("live", "fresh"), 30);
    let playlist = playlist.join().unwrap();
    assert_eq!(playlist.status, 200, "{}", playlist.text());
    assert!(
        playlist.text().contains("#EXTINF:"),
        "a whole segment: {}",
        playlist.text()
    );
    let mpd = mpd.join().unwrap();
    assert_eq!(mpd.status, 200, "{}", mpd.text());
    let text = mpd.text();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let timelines: Vec<usize> = doc
        .descendants()
        .filter(|n| n.has_tag_name("SegmentTimeline"))
        .map(|t| t.children().filter(|s| s.has_tag_name("S")).count())
        .collect();
    assert_eq!(timelines.len(), 2, "video and audio: {text}");
    assert!(timelines.iter().all(|n| *n >= 1), "{text}");
}
