//! The consistent-hash nginx front of `deploy/nginx/ringcast-front.conf`, run on
//! loopback in front of two ringcast edges pulling from one origin: every
//! viewer of a stream lands on one edge (whatever its play token), another
//! stream's viewers land on the other, and the origin sees one pull per stream.

mod common;
mod edge_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use edge_support::*;

const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/nginx/ringcast-front.conf"
);
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// The deploy config with its sample edges and ports replaced by loopback ones.
fn render(edges: &[&Server; 2], http_port: u16, rtmp_port: u16) -> String {
    let config = std::fs::read_to_string(CONFIG).unwrap();
    let rendered = config
        .replace(
            "10.0.1.1:8080",
            &format!("127.0.0.1:{}", edges[0].http_port),
        )
        .replace(
            "10.0.1.2:8080",
            &format!("127.0.0.1:{}", edges[1].http_port),
        )
        .replace(
            "10.0.1.1:1935",
            &format!("127.0.0.1:{}", edges[0].rtmp_port),
        )
        .replace(
            "10.0.1.2:1935",
            &format!("127.0.0.1:{}", edges[1].rtmp_port),
        )
        .replace("listen 80 ", &format!("listen 127.0.0.1:{http_port} "))
        .replace("listen 1935 ", &format!("listen 127.0.0.1:{rtmp_port} "));
    assert_ne!(rendered, config);
    assert!(
        !rendered.contains("server 10.0.1."),
        "every sample edge was replaced"
    );
    rendered
}

/// nginx in the foreground. Dropping it stops the master with SIGTERM, which
/// takes its workers down too (a SIGKILLed master would orphan them).
struct Nginx(Proc);

impl Drop for Nginx {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.pid() as i32, libc::SIGTERM) };
        if self.0.wait_for(Duration::from_secs(5)).is_none() {
            eprintln!("nginx did not stop on SIGTERM; killed");
        }
    }
}

/// Starts nginx on the rendered config and waits until it answers.
fn start_nginx(config: &str, http_port: u16) -> Nginx {
    let dir =
        std::env::temp_dir().join(format!("ringcast-front-{}-{http_port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).unwrap();
    let globals = format!(
        "daemon off; pid {0}/nginx.pid; error_log {0}/error.log warn;",
        dir.display()
    );
    let check = run_bounded(
        Command::new("nginx")
            .arg("-t")
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(&dir)
            .arg("-g")
            .arg(&globals),
        Duration::from_secs(10),
    );
    assert!(
        check.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(&dir)
        .arg("-g")
        .arg(&globals)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nginx");
    let nginx = Nginx(Proc {
        child,
        name: "nginx".into(),
    });
    assert!(
        eventually(Duration::from_secs(30), || std::net::TcpStream::connect((
            "127.0.0.1",
            http_port
        ))
        .is_ok()),
        "nginx front did not listen"
    );
    assert_eq!(http_request(http_port, "GET", "/healthz").0, 200);
    nginx
}

/// Which edge (0 or 1) the front sends `/live/{name}.flv` to: asks for the
/// (not yet published) stream and sees which edge answered 404.
fn edge_for(name: &str, front_http: u16, edges: &[&Server; 2]) -> usize {
    let refused = |e: &Server| {
        labeled_metric(
            e,
            "ringcast_connections_refused_total",
            "reason=\"stream_not_found\"",
        )
    };
    let before: Vec<f64> = edges.iter().map(|e| refused(e)).collect();
    let (status, _) = http_request(front_http, "GET", &format!("/live/{name}.flv"));
    assert_eq!(status, 404, "unpublished stream through the front");
    let after: Vec<f64> = edges.iter().map(|e| refused(e)).collect();
    let hit: Vec<usize> = (0..2).filter(|&i| after[i] > before[i]).collect();
    assert_eq!(
        hit.len(),
        1,
        "exactly one edge answered for {name}: {before:?} -> {after:?}"
    );
    hit[0]
}

#[test]
fn consistent_hash_front_sends_each_streams_viewers_to_one_edge() {
    require::file(STREAM_MODULE, "libnginx-mod-stream");
    require::command("nginx", "nginx");
    let origin = Server::start(1, "");
    let toml = edge_toml(&[rtmp_origin(&origin)], "30s");
    let (edge_a, edge_b) = (Server::start(1, &toml), Server::start(1, &toml));
    let edges = [&edge_a, &edge_b];
    let (front_http, front_rtmp) = (free_port(), free_port());
    let _nginx = start_nginx(&render(&edges, front_http, front_rtmp), front_http);

    // Find one stream name per edge.
    let mut names: [Option<String>; 2] = [None, None];
    for i in 0..64 {
        let name = format!("front{i}");
        let edge = edge_for(&name, front_http, &edges);
        assert_eq!(
            edge_for(&name, front_http, &edges),
            edge,
            "the same stream always reaches the same edge"
        );
        names[edge].get_or_insert(name);
        if names.iter().all(Option::is_some) {
            break;
        }
    }
    let names: Vec<String> = names
        .into_iter()
        .map(|n| n.expect("64 names all hashed to one edge"))
        .collect();
    let mut publishers: Vec<Proc> = names
        .iter()
        .map(|n| publish(&origin.rtmp_url("live", n), 30))
        .collect();
    for n in &names {
        wait_live(&origin, "live", n, Duration::from_secs(10));
    }
    let mut viewers_held = Vec::new();
    for (edge, name) in names.iter().enumerate() {
        let connect = |token| {
            FlvViewer::connect(front_http, &format!("/live/{name}.flv?token=viewer{token}"))
        };
        // The edge remembers the probes' 404 for a short while: retry the first
        // viewer until that memory has expired and it gets the stream.
        let mut first = None;
        wait_until(
            &format!("{name} to play past the edge's not-found memory"),
            Duration::from_secs(30),
            || {
                let mut v = connect(0);
                let playing = v.next_frame().is_some();
                first = playing.then_some(v);
                playing
            },
        );
        for token in 0..3 {
            let mut v = if token == 0 {
                first.take().expect("first viewer")
            } else {
                connect(token)
            };
            assert_eq!(
                read_pictures(&mut v, 5),
                5,
                "viewer {token} of {name} via the front"
            );
            viewers_held.push(v);
        }
        let other = 1 - edge;
        assert!(
            eventually(Duration::from_secs(30), || viewers(
                edges[edge],
                "live",
                name
            ) == Some(3)),
            "all three viewers of {name} on edge {edge}: {:?}",
            viewers(edges[edge], "live", name)
        );
        assert_eq!(
            viewers(edges[other], "live", name),
            None,
            "edge {other} never pulled {name}"
        );
        assert_eq!(
            viewers(&origin, "live", name),
            Some(1),
            "one pull of {name} at the origin"
        );
    }

    let rtmp = pull_decode(
        &format!("rtmp://127.0.0.1:{front_rtmp}/live/{}", names[0]),
        25,
        Duration::from_secs(30),
    );
    assert!(
        rtmp.video_frames >= 25,
        "RTMP through the stream proxy: {} frames: {}",
        rtmp.video_frames,
        rtmp.errors
    );
    drop(viewers_held);
    for p in &mut publishers {
        p.kill();
    }
}
