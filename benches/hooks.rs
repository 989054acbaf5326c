//! Cost of the hook core per play start, without the network: a new call
//! (subject → SRS JSON body → request bytes), joining a call in flight,
//! answering from the allow cache, and reading + deciding an answer and
//! finishing the call. Run: `cargo bench --bench hooks`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ringcast::auth::hooks::core::HookSettings;
use ringcast::auth::hooks::{
    Asked, CallOutcome, HookAction, HookCore, HookSubject, HooksConfig, ResponseReader,
};

fn settings() -> HookSettings {
    let config = HooksConfig {
        on_play: Some("http://127.0.0.1:8085/api/v1/sessions?token=x".into()),
        max_in_flight_per_core: 1 << 16,
        ..HooksConfig::default()
    };
    HookSettings::new(&config, "bench".into()).expect("settings")
}

fn subject(n: u32) -> HookSubject {
    HookSubject {
        client_id: format!("0-{n}-1"),
        ip: format!("10.0.{}.{}", n >> 8 & 255, n & 255),
        app: "live".into(),
        stream: "cam".into(),
        param: "?token=abcdef0123456789".into(),
        tc_url: "rtmp://edge.example.com/live".into(),
        page_url: String::new(),
    }
}

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 22\r\nConnection: close\r\n\r\n{\"code\":0,\"data\":null}";

fn bench(c: &mut Criterion) {
    let who = subject(1);
    c.bench_function("hooks/new call (body + request) + answer + finish", |b| {
        let mut core: HookCore<u32> = HookCore::new(settings());
        let mut now = 0;
        b.iter(|| {
            now += 20_000; // past the allow cache: every ask is a call
            let asked = core.ask(HookAction::Play, black_box(&who), 1, now);
            assert_eq!(asked, Asked::Waiting { coalesced: false });
            let out = core.take_outgoing().expect("a request");
            black_box(&out.request);
            let mut reader = ResponseReader::new();
            let answer = reader
                .push(black_box(ANSWER))
                .expect("valid")
                .expect("complete");
            core.finish(out.call, CallOutcome::Answer(answer), now + 1)
        })
    });
    c.bench_function("hooks/coalesced ask", |b| {
        let mut core: HookCore<u32> = HookCore::new(settings());
        core.ask(HookAction::Play, &who, 0, 0);
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            if n.is_multiple_of(60_000) {
                // Keep the waiter list under its bound.
                let out = core.take_outgoing().expect("a request");
                core.finish(out.call, CallOutcome::Error, 0);
                core.ask(HookAction::Play, &who, 0, 0);
            }
            core.ask(HookAction::Play, black_box(&who), 1, 0)
        })
    });
    c.bench_function("hooks/cached allow", |b| {
        let mut core: HookCore<u32> = HookCore::new(settings());
        core.ask(HookAction::Play, &who, 0, 0);
        let out = core.take_outgoing().expect("a request");
        let allow = ResponseReader::new()
            .push(ANSWER)
            .expect("valid")
            .expect("complete");
        core.finish(out.call, CallOutcome::Answer(allow), 0);
        b.iter(|| core.ask(HookAction::Play, black_box(&who), 1, 1))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
