//! Origins named by host name: the edge looks the name up off its cores and
//! again on every reconnect, so `localhost:PORT`, an origin restarted under
//! the same name and a name moved to another address (a DNS failover, played
//! with an `/etc/hosts` of the edge's own, via `unshare`) are all followed.

mod common;
mod edge_support;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use edge_support::*;

/// Waits until the origin whose admin port is `admin_port` lists `live/moved`.
fn wait_origin_live(admin_port: u16) {
    assert!(
        eventually(Duration::from_secs(20), || {
            http_request(admin_port, "GET", "/api/v1/streams/live/moved").0 == 200
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
    let (rtmp_port, http_port, admin_port) = (free_port(), free_port(), free_port());
    let mut origin = start_origin("127.0.0.1", rtmp_port, http_port, admin_port);
    let url = format!("rtmp://127.0.0.1:{rtmp_port}/live/moved");
    let mut publisher = publish(&url, 60);
    wait_origin_live(admin_port);
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
    origin = start_origin("127.0.0.1", rtmp_port, http_port, admin_port);
    publisher = publish(&url, 60);
    wait_origin_live(admin_port);
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

/// A ringcast edge whose `/etc/hosts` is `hosts` (bind-mounted in a private
/// mount namespace, so the test can change what names resolve to).
fn edge_with_hosts(hosts: &std::path::Path, origin: &str) -> Server {
    let (rtmp_port, http_port, admin_port) = (free_port(), free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("ringcast-dns-{}-{rtmp_port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("ringcast.toml");
    std::fs::write(&config, edge_toml(&[origin.to_owned()], "30s")).unwrap();
    let script = format!(
        "mount --bind {} /etc/hosts && exec {} serve --config {} --cores 1 --rtmp 127.0.0.1:{rtmp_port} --http 127.0.0.1:{http_port} --admin 127.0.0.1:{admin_port}",
        hosts.display(),
        env!("CARGO_BIN_EXE_ringcast"),
        config.display()
    );
    // A missing unshare fails naming util-linux.
    let unshare = require::command("unshare", "util-linux");
    let mut cmd = Command::new(unshare);
    cmd.args(["--mount", "sh", "-c", &script]);
    let mut server = Server {
        proc: spawn_ringcast(&mut cmd, "ringcast edge"),
        rtmp_port,
        http_port,
        admin_port,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", http_port)).is_err()
        || std::net::TcpStream::connect(("127.0.0.1", admin_port)).is_err()
    {
        assert!(
            server.alive(),
            "the edge exited: unshare --mount needs CAP_SYS_ADMIN"
        );
        assert!(Instant::now() < deadline, "edge did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// Starts ringcast listening on `ip` (RTMP on `rtmp_port`); returns it and its admin port.
fn origin_at(ip: &str, rtmp_port: u16) -> (Proc, u16) {
    let (http_port, admin_port) = (free_port(), free_port());
    (
        start_origin(ip, rtmp_port, http_port, admin_port),
        admin_port,
    )
}

/// Viewers the origin whose API is on `admin_port` counts for `live/fo`.
fn origin_viewers(admin_port: u16) -> Option<u64> {
    let (status, body) = http_request(admin_port, "GET", "/api/v1/streams/live/fo");
    let v: serde_json::Value = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
    let c = &v["viewers"];
    Some(c["http_flv"].as_u64()? + c["rtmp"].as_u64()?)
}

#[test]
fn a_dns_failover_is_followed_on_reconnect() {
    // Two origins on the same port at two loopback addresses, one name.
    let port = free_port();
    let (mut a, a_http) = origin_at("127.0.0.1", port);
    let (_b, b_http) = origin_at("127.0.0.2", port);
    let mut pub_a = publish(&format!("rtmp://127.0.0.1:{port}/live/fo"), 60);
    let mut pub_b = publish(&format!("rtmp://127.0.0.2:{port}/live/fo"), 60);
    for http in [a_http, b_http] {
        assert!(
            eventually(Duration::from_secs(20), || origin_viewers(http).is_some()),
            "origin with API on {http} never had the stream"
        );
    }
    let dir = std::env::temp_dir().join(format!("ringcast-hosts-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 origin.test\n").unwrap();
    let edge = edge_with_hosts(&hosts, &format!("rtmp://origin.test:{port}/live"));
    let viewer = watch(&edge, "/live/fo.flv", 5);
    assert!(
        eventually(Duration::from_secs(10), || origin_viewers(a_http)
            == Some(1)),
        "the edge pulls from the first address"
    );
    // Failover: the name moves (same file, rewritten in place), then the old
    // origin dies.
    std::fs::write(&hosts, "127.0.0.2 origin.test\n").unwrap();
    a.kill();
    pub_a.kill();
    assert!(
        eventually(Duration::from_secs(60), || origin_viewers(b_http)
            == Some(1)),
        "the edge never reconnected to the name's new address"
    );
    drop(viewer);
    let _fresh = watch(&edge, "/live/fo.flv", 5);
    pub_b.kill();
}
