//! ffmpeg publishes over RTMP; ffmpeg pulls over HTTP-FLV and RTMP and decodes;
//! ffprobe sees the right codecs and size.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn ffmpeg_publish_then_pull_http_flv_and_rtmp() {
    let server = Server::start(1, "");
    let mut publisher = publish(&server.rtmp_url("live", "e2e"), 30);
    wait_live(&server, "live", "e2e", Duration::from_secs(10));

    let flv = pull_decode(&server.flv_url("live", "e2e"), 100, Duration::from_secs(20));
    assert!(flv.ok && flv.video_frames >= 100, "HTTP-FLV: {flv:?}");
    assert!(
        flv.errors.trim().is_empty(),
        "HTTP-FLV decode errors: {}",
        flv.errors
    );

    let rtmp = pull_decode(
        &server.rtmp_url("live", "e2e"),
        100,
        Duration::from_secs(20),
    );
    assert!(rtmp.ok && rtmp.video_frames >= 100, "RTMP: {rtmp:?}");
    assert!(
        rtmp.errors.trim().is_empty(),
        "RTMP decode errors: {}",
        rtmp.errors
    );

    let (vcodec, w, h, acodec) = probe(&server.flv_url("live", "e2e"));
    assert_eq!(
        (vcodec.as_str(), w, h, acodec.as_str()),
        ("h264", 320, 240, "aac")
    );

    publisher.kill();
}

#[test]
fn unknown_stream_is_404_and_bad_paths_are_rejected() {
    let server = Server::start(1, "");
    assert_eq!(server.http_get("/live/nothing.flv").0, 404);
    assert_eq!(http_request(server.http_port, "POST", "/live/x.flv").0, 405);
    let long = format!("/live/{}.flv", "a".repeat(3000));
    assert_eq!(server.http_get(&long).0, 414);
}

#[test]
fn viewers_wait_for_a_publisher_when_configured() {
    let server = Server::start(2, "[stream]\nwait_for_publisher = \"8s\"\n");
    let flv_url = server.flv_url("live", "later");
    let rtmp_url = server.rtmp_url("live", "later");
    // Both viewers ask before anyone publishes.
    let flv = std::thread::spawn(move || pull_decode(&flv_url, 50, Duration::from_secs(30)));
    let rtmp = std::thread::spawn(move || pull_decode(&rtmp_url, 50, Duration::from_secs(30)));
    // Both are connected (and this scrape) before anyone publishes.
    wait_until("both viewers to connect", Duration::from_secs(30), || {
        metric_on(server.admin_port, "ringcast_open_connections") >= 3.0
    });
    let mut publisher = publish(&server.rtmp_url("live", "later"), 30);
    let (flv, rtmp) = (flv.join().unwrap(), rtmp.join().unwrap());
    assert!(
        flv.ok && flv.video_frames >= 50,
        "HTTP-FLV viewer that waited: {flv:?}"
    );
    assert!(
        rtmp.ok && rtmp.video_frames >= 50,
        "RTMP viewer that waited: {rtmp:?}"
    );
    publisher.kill();
    // Nobody publishes this one: 404 once the wait is over.
    let started = std::time::Instant::now();
    assert_eq!(server.http_get("/live/never.flv").0, 404);
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "answered before the wait was over"
    );
}

/// Zero-copy sends made from the registered region, summed over cores.
fn fixed_buffer_sends(server: &Server) -> f64 {
    let (status, metrics) = server.http_get("/metrics");
    assert_eq!(status, 200);
    metrics
        .lines()
        .filter(|l| l.starts_with("ringcast_reactor_fixed_buffer_sends_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn zero_copy_sends_deliver_decodable_streams() {
    // zero_copy_send registers each core's send region and sends from it with
    // fixed-buffer SENDMSG_ZC; both protocols must decode, and the counter must show
    // that fixed-buffer sends really carried them.
    let server = Server::start(1, "[runtime]\nzero_copy_send = true\n");
    let mut publisher = publish(&server.rtmp_url("live", "zc"), 30);
    wait_live(&server, "live", "zc", Duration::from_secs(10));
    for url in [server.flv_url("live", "zc"), server.rtmp_url("live", "zc")] {
        let before = fixed_buffer_sends(&server);
        let got = pull_decode(&url, 100, Duration::from_secs(20));
        assert!(
            got.ok && got.video_frames >= 100 && got.errors.trim().is_empty(),
            "{url}: {got:?}"
        );
        let after = fixed_buffer_sends(&server);
        assert!(
            after - before >= 20.0,
            "{url}: only {} fixed-buffer sends ({before} -> {after})",
            after - before
        );
    }
    publisher.kill();
}

/// The status page's play URLs name the ports this server listens on (the test
/// harness picks free ports, never the defaults 1935/8080).
#[test]
fn status_page_play_urls_use_the_configured_ports() {
    let server = Server::start(1, "");
    let mut publisher = publish(&server.rtmp_url("live", "page"), 30);
    wait_live(&server, "live", "page", Duration::from_secs(30));
    let (status, html) = server.http_get("/");
    assert_eq!(status, 200, "{html}");
    // http_request sends `Host: localhost`.
    let rtmp = format!("rtmp://localhost:{}/live/page", server.rtmp_port);
    let flv = format!("http://localhost:{}/live/page.flv", server.http_port);
    assert!(html.contains(&rtmp), "no {rtmp} in {html}");
    assert!(html.contains(&flv), "no {flv} in {html}");
    publisher.kill();
}
