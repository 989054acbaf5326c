//! Identical HLS on every edge: one ringcast origin with an ffmpeg RTMP
//! publisher, two ringcast edges (real binaries) started at different times,
//! one pulling over RTMP and one over HTTP-FLV, each pull started by an HLS
//! request. For every segment and part both edges and the origin hold, the
//! media playlists name the same URIs and every fMP4 init, part and segment is
//! byte-identical; the MPEG-TS playlists list the same segment numbers with the
//! same durations and the segments carry the same PES packets (timestamps and
//! payloads). TS bytes may differ: each box's muxer starts its continuity
//! counters when its packager starts.

mod common;
mod edge_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use edge_support::{edge_toml, http_origin, rtmp_origin};

/// (status, body) of `GET path` on `port`, read to the connection's close.
fn get(port: u16, path: &str) -> (u16, Vec<u8>) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let raw = http_exchange(port, request.as_bytes(), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("GET {path} on port {port}: {e}"));
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head for {path}"));
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let mut body = raw[end + 4..].to_vec();
    let len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    if let Some(len) = len {
        assert!(body.len() >= len, "{path}: short body");
        body.truncate(len);
    }
    (status, body)
}

fn get_text(port: u16, path: &str) -> (u16, String) {
    let (status, body) = get(port, path);
    (status, String::from_utf8_lossy(&body).to_string())
}

/// What a media playlist lists: the init URI, the whole segments by msn and
/// the parts by (msn, part), each with its URI.
#[derive(Debug, Default)]
struct Listed {
    init: Option<String>,
    segments: BTreeMap<u64, (String, String)>,
    parts: BTreeMap<(u64, u32), String>,
}

/// The quoted `URI="…"` of a tag line.
fn uri_of(line: &str) -> Option<String> {
    Some(line.split("URI=\"").nth(1)?.split('"').next()?.to_owned())
}

/// Parses a media playlist (fMP4 or TS) with the segment numbers taken from
/// the URIs, checked against EXT-X-MEDIA-SEQUENCE.
fn listed(playlist: &str) -> Listed {
    let mut out = Listed::default();
    let mut sequence = None;
    let mut duration = String::new();
    let mut index = 0u64;
    for line in playlist.lines() {
        if let Some(n) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            sequence = Some(n.trim().parse::<u64>().unwrap());
        } else if line.starts_with("#EXT-X-MAP:") {
            out.init = uri_of(line);
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = d.trim_end_matches(',').to_owned();
        } else if line.starts_with("#EXT-X-PART:") {
            let uri = uri_of(line).expect("part URI");
            let name = uri.rsplit('/').next().unwrap().trim_end_matches(".m4s");
            let (msn, part) = name.split_once('.').expect("msn.part");
            out.parts
                .insert((msn.parse().unwrap(), part.parse().unwrap()), uri);
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.rsplit('/').next().unwrap();
            let msn: u64 = name.split('.').next().unwrap().parse().unwrap();
            let first = sequence.expect("EXT-X-MEDIA-SEQUENCE before the segments");
            assert_eq!(
                msn,
                first + index,
                "segment numbers follow the media sequence"
            );
            index += 1;
            out.segments
                .insert(msn, (line.to_owned(), std::mem::take(&mut duration)));
        }
    }
    out
}

/// The media playlist paths named by a multivariant playlist.
fn media_playlists(multivariant: &str) -> Vec<String> {
    let mut out: Vec<String> = multivariant
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:"))
        .filter_map(uri_of)
        .collect();
    out.extend(
        multivariant
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(str::to_owned),
    );
    out.sort();
    out.dedup();
    out
}

/// The PES packets of a TS segment: (stream id, PTS, DTS, payload).
fn pes_packets(ts: &[u8]) -> Vec<(u8, u64, u64, Vec<u8>)> {
    use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
    use mpeg2ts::ts::TsPacketReader;
    let mut pes = PesPacketReader::new(TsPacketReader::new(ts));
    let mut out = Vec::new();
    while let Some(pkt) = pes.read_pes_packet().unwrap() {
        let pts = pkt.header.pts.unwrap().as_u64();
        let dts = pkt.header.dts.map_or(pts, |d| d.as_u64());
        out.push((pkt.header.stream_id.as_u8(), pts, dts, pkt.data));
    }
    out
}

#[test]
fn two_edges_behind_one_origin_serve_identical_segments_and_parts() {
    require::command("ffmpeg", "ffmpeg");
    let origin = Server::start(1, "");
    let _publisher = publish(&origin.rtmp_url("live", "cam"), 90);
    wait_live(&origin, "live", "cam", Duration::from_secs(20));
    let ports = |p: u16| (p, format!("127.0.0.1:{p}"));

    // Edge A pulls over RTMP, started by its first HLS request.
    let edge_a = Server::start(2, &edge_toml(&[rtmp_origin(&origin)], "60s"));
    let asked = std::time::Instant::now();
    let (status, first) = get_text(edge_a.http_port, "/live/cam.m3u8");
    assert_eq!(
        status, 200,
        "the request that starts edge A's pull: {first}"
    );
    // The pull connects, the origin's GOP cache arrives, the joining
    // packager proves a segment start: within the 2 s + one target wait
    // (from when the pulled stream is live), plus the pull's connection.
    let waited = asked.elapsed();
    eprintln!("edge A: first HLS answer {waited:?} after the request that started the pull");
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    // Edge B joins later (the origin has moved on by more than a segment),
    // over HTTP-FLV.
    let origin_msn = || {
        let (_, ts) = get_text(origin.http_port, "/live/cam-ts.m3u8");
        listed(&ts).segments.keys().last().copied().unwrap_or(0)
    };
    let start_msn = origin_msn();
    wait_until(
        "the origin to close two more segments",
        Duration::from_secs(30),
        || origin_msn() >= start_msn + 2,
    );
    let edge_b = Server::start(2, &edge_toml(&[http_origin(&origin)], "60s"));
    // A media playlist (not the entry URL) may start the pull too.
    let asked = std::time::Instant::now();
    let (status, first) = get_text(edge_b.http_port, "/live/cam/v.m3u8");
    assert_eq!(
        status, 200,
        "the request that starts edge B's pull: {first}"
    );
    let waited = asked.elapsed();
    eprintln!("edge B: first HLS answer {waited:?} after the request that started the pull");
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    // Both edges hold three closed segments of their own.
    for edge in [&edge_a, &edge_b] {
        wait_until(
            "three TS segments on the edge",
            Duration::from_secs(30),
            || {
                listed(&get_text(edge.http_port, "/live/cam-ts.m3u8").1)
                    .segments
                    .len()
                    >= 3
            },
        );
    }

    let boxes = [
        ports(origin.http_port),
        ports(edge_a.http_port),
        ports(edge_b.http_port),
    ];
    let (_, multivariant) = get_text(origin.http_port, "/live/cam.m3u8");
    let medias = media_playlists(&multivariant);
    assert_eq!(medias.len(), 2, "video and audio playlists: {multivariant}");
    for port in [edge_a.http_port, edge_b.http_port] {
        let (_, other) = get_text(port, "/live/cam.m3u8");
        assert_eq!(
            media_playlists(&other),
            medias,
            "the same media playlist URIs"
        );
    }

    let mut compared_segments = 0;
    let mut compared_parts = 0;
    for media in &medias {
        let path = format!("/live/{media}");
        let dir = path.rsplit_once('/').unwrap().0.to_owned();
        let lists: Vec<Listed> = boxes
            .iter()
            .map(|(port, name)| {
                let (status, text) = get_text(*port, &path);
                assert_eq!(status, 200, "{name}{path}");
                listed(&text)
            })
            .collect();
        // Init: the same URI and bytes everywhere.
        let init = lists[0].init.clone().expect("EXT-X-MAP");
        for (l, (_, name)) in lists.iter().zip(&boxes) {
            assert_eq!(l.init.as_ref(), Some(&init), "init URI on {name}");
        }
        same_bytes(&boxes, &format!("{dir}/{init}"));

        // Segments all three list: same URI, same duration, same bytes.
        let common_msns: BTreeSet<u64> = lists[0]
            .segments
            .keys()
            .filter(|m| lists[1..].iter().all(|l| l.segments.contains_key(m)))
            .copied()
            .collect();
        assert!(
            common_msns.len() >= 2,
            "{path}: segments in common {common_msns:?}, lists {lists:?}"
        );
        for msn in &common_msns {
            let reference = &lists[0].segments[msn];
            for (l, (_, name)) in lists.iter().zip(&boxes) {
                assert_eq!(
                    &l.segments[msn], reference,
                    "segment {msn} of {path} on {name}"
                );
            }
            same_bytes(&boxes, &format!("{dir}/{}", reference.0));
            compared_segments += 1;
        }
        // Parts all three list: same URI and bytes.
        let common_parts: Vec<(u64, u32)> = lists[0]
            .parts
            .keys()
            .filter(|k| lists[1..].iter().all(|l| l.parts.contains_key(k)))
            .copied()
            .collect();
        assert!(
            !common_parts.is_empty(),
            "{path}: no part in common: {lists:?}"
        );
        for k in common_parts {
            let reference = &lists[0].parts[&k];
            for (l, (_, name)) in lists.iter().zip(&boxes) {
                assert_eq!(&l.parts[&k], reference, "part {k:?} of {path} on {name}");
            }
            same_bytes(&boxes, &format!("{dir}/{reference}"));
            compared_parts += 1;
        }
    }
    assert!(compared_segments >= 4 && compared_parts >= 2);

    // MPEG-TS: the same numbers and durations; the same PES packets.
    let ts_lists: Vec<Listed> = boxes
        .iter()
        .map(|(port, _)| listed(&get_text(*port, "/live/cam-ts.m3u8").1))
        .collect();
    let common_ts: Vec<u64> = ts_lists[0]
        .segments
        .keys()
        .filter(|m| ts_lists[1..].iter().all(|l| l.segments.contains_key(m)))
        .copied()
        .collect();
    assert!(common_ts.len() >= 2, "TS segments in common: {common_ts:?}");
    for msn in common_ts {
        let reference = &ts_lists[0].segments[&msn];
        let origin_pes = pes_packets(&get(origin.http_port, &format!("/live/{}", reference.0)).1);
        assert!(origin_pes.len() > 10);
        for (l, (port, name)) in ts_lists.iter().zip(&boxes).skip(1) {
            assert_eq!(&l.segments[&msn], reference, "TS segment {msn} on {name}");
            let (status, body) = get(*port, &format!("/live/{}", reference.0));
            assert_eq!(status, 200);
            assert!(
                pes_packets(&body) == origin_pes,
                "TS segment {msn}: the PES packets on {name} differ from the origin's"
            );
        }
    }
}

/// A TCP proxy on a free loopback port to `target`; `cut()` closes every
/// connection it carries (the listener stays), like a network failure.
struct CuttableProxy {
    port: u16,
    live: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl CuttableProxy {
    fn start(target: u16) -> CuttableProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let live = std::sync::Arc::new(std::sync::Mutex::new(Vec::<TcpStream>::new()));
        let conns = live.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut list = conns.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        CuttableProxy { port, live }
    }

    fn cut(&self) {
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn an_edge_whose_upstream_breaks_keeps_the_origins_numbers() {
    require::command("ffmpeg", "ffmpeg");
    let origin = Server::start(1, "");
    let _publisher = publish(&origin.rtmp_url("live", "cam"), 90);
    wait_live(&origin, "live", "cam", Duration::from_secs(20));
    let proxy = CuttableProxy::start(origin.rtmp_port);
    let edge = Server::start(
        2,
        &edge_toml(&[format!("rtmp://127.0.0.1:{}/live", proxy.port)], "60s"),
    );
    let (status, first) = get_text(edge.http_port, "/live/cam.m3u8");
    assert_eq!(status, 200, "{first}");
    let last_closed = |port: u16| {
        listed(&get_text(port, "/live/cam/v.m3u8").1)
            .segments
            .keys()
            .last()
            .copied()
            .unwrap_or(0)
    };
    let before = last_closed(edge.http_port);
    wait_until(
        "a segment closed on the edge",
        Duration::from_secs(20),
        || last_closed(edge.http_port) > before,
    );
    // The upstream breaks; the edge reconnects (about 1 s backoff) to the same
    // origin stream, which ran on meanwhile.
    proxy.cut();
    let cut_at = last_closed(origin.http_port);
    wait_until(
        "three more segments closed on the edge after the cut",
        Duration::from_secs(40),
        || last_closed(edge.http_port) >= cut_at + 4,
    );
    let boxes = [
        (origin.http_port, "origin".to_owned()),
        (edge.http_port, "edge".to_owned()),
    ];
    let lists: Vec<Listed> = boxes
        .iter()
        .map(|(port, _)| listed(&get_text(*port, "/live/cam/v.m3u8").1))
        .collect();
    // Segments fully after the reconnect: the same numbers, URIs and bytes.
    let after: Vec<u64> = lists[1]
        .segments
        .keys()
        .filter(|m| **m >= cut_at + 3 && lists[0].segments.contains_key(m))
        .copied()
        .collect();
    assert!(
        !after.is_empty(),
        "no segment after the reconnect in common: {lists:?}"
    );
    for msn in after {
        assert_eq!(
            lists[0].segments[&msn], lists[1].segments[&msn],
            "segment {msn}"
        );
        same_bytes(&boxes, &format!("/live/cam/{}", lists[0].segments[&msn].0));
    }
}

/// `path` answers 200 with the same bytes on every box.
fn same_bytes(boxes: &[(u16, String)], path: &str) {
    let (status, reference) = get(boxes[0].0, path);
    assert_eq!(status, 200, "{}{path}", boxes[0].1);
    assert!(!reference.is_empty(), "{path} is empty");
    for (port, name) in &boxes[1..] {
        let (status, body) = get(*port, path);
        assert_eq!(status, 200, "{name}{path}");
        assert!(
            body == reference,
            "{path}: {} bytes on {name}, {} on the origin, not identical",
            body.len(),
            reference.len()
        );
    }
}
