//! Origins named by host name: the edge looks the name up off its cores and
//! again on every reconnect, so `localhost:PORT` (which also resolves to `::1`,
//! where these origins do not listen) and an origin restarted under the same
//! name are both followed.

mod common;
mod edge_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use edge_support::*;

/// Starts a ringcast origin on given ports (so a test can restart it in place).
fn origin_on(rtmp_port: u16, http_port: u16) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["serve", "--cores", "1"])
        .args(["--rtmp", &format!("127.0.0.1:{rtmp_port}")])
        .args(["--http", &format!("127.0.0.1:{http_port}")])
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn ringcast");
    let proc = Proc {
        child,
        name: "ringcast origin".into(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in [rtmp_port, http_port] {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "origin did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    proc
}

/// Waits until the origin on `http_port` lists `live/moved`.
fn wait_origin_live(http_port: u16) {
    assert!(
        eventually(Duration::from_secs(20), || {
            http_request(http_port, "GET", "/api/v1/streams/live/moved").0 == 200
        }),
        "the origin never had the stream"
    );
}

/// A viewer of the edge that has decoded `pictures` pictures.
fn watch(edge: &Server, path: &str, pictures: usize) -> FlvViewer {
    let mut viewer = FlvViewer::connect(edge.http_port, path);
    viewer
        .stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(read_pictures(&mut viewer, pictures), pictures, "{path}");
    viewer
}

#[test]
fn origins_given_as_localhost_are_pulled_over_rtmp_and_http() {
    let origin = Server::start(1, "");
    let mut publisher = publish(&origin.rtmp_url("live", "cam"), 40);
    wait_live(&origin, "live", "cam", Duration::from_secs(10));
    let rtmp = format!("rtmp://localhost:{}/live", origin.rtmp_port);
    let http = format!("http://localhost:{}", origin.http_port);
    let rtmp_edge = Server::start(1, &edge_toml(std::slice::from_ref(&rtmp), "30s"));
    let http_edge = Server::start(1, &edge_toml(std::slice::from_ref(&http), "30s"));
    for (edge, url) in [(&rtmp_edge, &rtmp), (&http_edge, &http)] {
        let _viewer = watch(edge, "/live/cam.flv", 10);
        assert!(
            eventually(Duration::from_secs(10), || {
                stream_json(edge, "live", "cam")["origin"] == url.as_str()
            }),
            "the edge pulls from {url}: {}",
            stream_json(edge, "live", "cam")
        );
    }
    publisher.kill();
}

#[test]
fn an_origin_restarted_under_its_name_is_followed() {
    let (rtmp_port, http_port) = (free_port(), free_port());
    let mut origin = origin_on(rtmp_port, http_port);
    let url = format!("rtmp://127.0.0.1:{rtmp_port}/live/moved");
    let mut publisher = publish(&url, 60);
    wait_origin_live(http_port);
    let edge = Server::start(
        1,
        &edge_toml(&[format!("rtmp://localhost:{rtmp_port}/live")], "30s"),
    );
    let viewer = watch(&edge, "/live/moved.flv", 5);
    origin.kill();
    publisher.kill();
    assert!(
        eventually(Duration::from_secs(30), || {
            metric(&edge, "ringcast_origin_pull_failures_total") >= 1.0
        }),
        "the edge saw its upstream fail"
    );
    origin = origin_on(rtmp_port, http_port);
    publisher = publish(&url, 60);
    wait_origin_live(http_port);
    assert!(
        eventually(Duration::from_secs(60), || {
            metric(&edge, "ringcast_origin_pull_recoveries_total") >= 1.0
        }),
        "the edge pulled again from the restarted origin"
    );
    drop(viewer);
    let _fresh = watch(&edge, "/live/moved.flv", 5);
    publisher.kill();
    origin.kill();
}
