//! [`HookCore`] unit tests: coalescing, the allow cache, fail policies, the
//! in-flight and waiter bounds, and notification retries.

use super::*;
use crate::auth::hooks::HooksConfig;
use std::time::Duration;

fn settings(edit: impl FnOnce(&mut HooksConfig)) -> HookSettings {
    let mut c = HooksConfig {
        on_publish: Some("http://127.0.0.1:9/publish".into()),
        on_unpublish: Some("http://127.0.0.1:9/unpublish".into()),
        on_play: Some("http://127.0.0.1:9/play?k=s".into()),
        on_stop: Some("http://127.0.0.1:9/stop".into()),
        ..HooksConfig::default()
    };
    edit(&mut c);
    HookSettings::new(&c, "svc".into()).unwrap()
}

fn who(ip: &str) -> HookSubject {
    HookSubject {
        client_id: format!("c-{ip}"),
        ip: ip.into(),
        app: "live".into(),
        stream: "cam".into(),
        param: "?t=1".into(),
        ..HookSubject::default()
    }
}

fn waiting<W: std::fmt::Debug>(a: Asked<W>) -> bool {
    match a {
        Asked::Waiting { coalesced } => coalesced,
        other => panic!("expected a wait, got {other:?}"),
    }
}

const ALLOW: CallOutcome = CallOutcome::Answer(Answer::Allow);
const DENY: CallOutcome = CallOutcome::Answer(Answer::Deny {
    status: 403,
    code: None,
});

#[test]
fn a_call_goes_out_and_its_answer_releases_the_waiter() {
    let mut core: HookCore<u32> = HookCore::new(settings(|_| {}));
    assert!(!waiting(core.ask(
        HookAction::Play,
        &who("1.1.1.1"),
        7,
        100
    )));
    let out = core.take_outgoing().unwrap();
    assert!(core.take_outgoing().is_none());
    assert_eq!((out.action, out.deadline_ms), (HookAction::Play, 3_100));
    assert!(out.request.starts_with(b"POST /play?k=s HTTP/1.1\r\n"));
    assert_eq!(core.poll_timeout(), Some(3_100));
    let done = core.finish(out.call, ALLOW, 150).unwrap();
    assert_eq!(
        done,
        Finished {
            call: out.call,
            action: HookAction::Play,
            result: HookResult::Allow,
            allow: true,
            latency_ms: 50,
            waiters: vec![7],
            retrying: false
        }
    );
    assert_eq!(core.in_flight(), 0);
    assert!(core.finish(out.call, DENY, 151).is_none(), "ends once");
}

#[test]
fn identical_asks_coalesce_and_different_ones_do_not() {
    let mut core: HookCore<u32> = HookCore::new(settings(|_| {}));
    assert!(!waiting(core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0)));
    assert!(waiting(core.ask(HookAction::Play, &who("1.1.1.1"), 2, 1)));
    assert!(waiting(core.ask(HookAction::Play, &who("1.1.1.1"), 3, 2)));
    assert!(!waiting(core.ask(HookAction::Play, &who("2.2.2.2"), 4, 3)));
    assert!(!waiting(core.ask(
        HookAction::Publish,
        &who("1.1.1.1"),
        5,
        3
    )));
    let calls: Vec<Outgoing> = std::iter::from_fn(|| core.take_outgoing()).collect();
    assert_eq!(calls.len(), 3);
    let done = core.finish(calls[0].call, DENY, 10).unwrap();
    assert_eq!(
        (done.result, done.allow, done.waiters),
        (HookResult::Deny, false, vec![1, 2, 3])
    );
    // The finished call no longer collects waiters: the next ask is a new call.
    assert!(!waiting(core.ask(HookAction::Play, &who("1.1.1.1"), 6, 11)));
}

#[test]
fn allows_are_cached_for_the_configured_time_denies_never() {
    let mut core: HookCore<u32> =
        HookCore::new(settings(|c| c.cache_allow_for = Duration::from_millis(500)));
    core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0);
    let call = core.take_outgoing().unwrap().call;
    core.finish(call, ALLOW, 10);
    assert_eq!(
        core.ask(HookAction::Play, &who("1.1.1.1"), 2, 509),
        Asked::Now {
            allow: true,
            result: HookResult::Cached,
            waiter: 2
        }
    );
    assert!(core.take_outgoing().is_none());
    // Expired: asked again.
    assert!(!waiting(core.ask(
        HookAction::Play,
        &who("1.1.1.1"),
        3,
        510
    )));
    let call = core.take_outgoing().unwrap().call;
    core.finish(call, DENY, 520);
    assert!(!waiting(core.ask(
        HookAction::Play,
        &who("1.1.1.1"),
        4,
        521
    )));
    // Another address is another key.
    let mut core: HookCore<u32> = HookCore::new(settings(|_| {}));
    core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0);
    let call = core.take_outgoing().unwrap().call;
    core.finish(call, ALLOW, 1);
    assert!(!waiting(core.ask(HookAction::Play, &who("9.9.9.9"), 2, 2)));
    // Expired entries are dropped by the sweep.
    let mut out = Vec::new();
    core.handle_timeout(20_000, &mut out);
    assert!(core.cache.is_empty());
}

#[test]
fn cache_off_means_every_ask_is_a_call() {
    let mut core: HookCore<u32> = HookCore::new(settings(|c| c.cache_allow_for = Duration::ZERO));
    core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0);
    let call = core.take_outgoing().unwrap().call;
    core.finish(call, ALLOW, 1);
    assert!(!waiting(core.ask(HookAction::Play, &who("1.1.1.1"), 2, 2)));
}

#[test]
fn errors_and_timeouts_take_the_fail_policy() {
    for fail_open in [false, true] {
        let mut core: HookCore<u32> = HookCore::new(settings(|c| {
            c.fail_open_play = fail_open;
            c.timeout_play = Duration::from_millis(100);
        }));
        core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0);
        core.ask(HookAction::Publish, &who("1.1.1.1"), 2, 0);
        core.ask(HookAction::Play, &who("2.2.2.2"), 3, 0);
        let calls: Vec<Outgoing> = std::iter::from_fn(|| core.take_outgoing()).collect();
        let e = core.finish(calls[0].call, CallOutcome::Error, 5).unwrap();
        assert_eq!((e.result, e.allow), (HookResult::Error, fail_open));
        // Publish fails closed by default.
        let e = core.finish(calls[1].call, CallOutcome::Timeout, 5).unwrap();
        assert_eq!((e.result, e.allow), (HookResult::Timeout, false));
        // The sweep times out what is past its deadline.
        let mut out = Vec::new();
        core.handle_timeout(99, &mut out);
        assert!(out.is_empty());
        core.handle_timeout(100, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].result, out[0].allow, &out[0].waiters),
            (HookResult::Timeout, fail_open, &vec![3])
        );
        assert_eq!(core.in_flight(), 0);
        assert_eq!(core.poll_timeout(), None);
    }
}

#[test]
fn in_flight_is_bounded() {
    let mut core: HookCore<u32> = HookCore::new(settings(|c| {
        c.max_in_flight_per_core = 2;
        c.fail_open_publish = true;
    }));
    core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0);
    core.ask(HookAction::Play, &who("2.2.2.2"), 2, 0);
    assert_eq!(
        core.ask(HookAction::Play, &who("3.3.3.3"), 3, 0),
        Asked::Now {
            allow: false,
            result: HookResult::Overload,
            waiter: 3
        }
    );
    assert_eq!(
        core.ask(HookAction::Publish, &who("3.3.3.3"), 4, 0),
        Asked::Now {
            allow: true,
            result: HookResult::Overload,
            waiter: 4
        }
    );
    // Coalescing onto a call in flight needs no room.
    assert!(waiting(core.ask(HookAction::Play, &who("1.1.1.1"), 5, 0)));
    assert_eq!(core.in_flight(), 2);
    // A notification waits for room, then goes out.
    assert!(core.notify(HookAction::Stop, &who("1.1.1.1"), 0));
    assert_eq!(core.queued_notices(), 1);
    let first = core.take_outgoing().unwrap().call;
    core.take_outgoing().unwrap();
    assert!(core.take_outgoing().is_none());
    core.finish(first, ALLOW, 3);
    let next = core.take_outgoing().unwrap();
    assert_eq!(next.action, HookAction::Stop);
    assert_eq!(core.queued_notices(), 0);
    // The notice queue itself is bounded.
    let mut dropped = 0;
    for _ in 0..MAX_QUEUED_NOTICES + 5 {
        if !core.notify(HookAction::Stop, &who("1.1.1.1"), 4) {
            dropped += 1;
        }
    }
    assert_eq!(dropped, 5);
}

#[test]
fn waiters_per_call_are_bounded() {
    let mut core: HookCore<usize> = HookCore::new(settings(|_| {}));
    for i in 0..MAX_WAITERS_PER_CALL {
        assert!(matches!(
            core.ask(HookAction::Play, &who("1.1.1.1"), i, 0),
            Asked::Waiting { .. }
        ));
    }
    assert!(matches!(
        core.ask(HookAction::Play, &who("1.1.1.1"), 0, 0),
        Asked::Now {
            allow: false,
            result: HookResult::Overload,
            ..
        }
    ));
}

#[test]
fn notifications_retry_a_bounded_number_of_times() {
    let mut core: HookCore<u32> = HookCore::new(settings(|c| c.stop_retries = 2));
    assert!(core.notify(HookAction::Unpublish, &who("1.1.1.1"), 0));
    let first = core.take_outgoing().unwrap();
    assert!(first.request.windows(14).any(|w| w == b"\"on_unpublish\""));
    let f = core.finish(first.call, CallOutcome::Error, 10).unwrap();
    assert!(f.retrying && f.waiters.is_empty());
    // Retry 1 is due a second later.
    assert!(core.take_outgoing().is_none());
    assert_eq!(core.poll_timeout(), Some(1_010));
    let mut out = Vec::new();
    core.handle_timeout(1_009, &mut out);
    assert!(core.take_outgoing().is_none());
    core.handle_timeout(1_010, &mut out);
    let second = core.take_outgoing().unwrap();
    assert_eq!(second.request, first.request);
    assert!(
        core.finish(second.call, CallOutcome::Timeout, 1_020)
            .unwrap()
            .retrying
    );
    core.handle_timeout(3_020, &mut out);
    let third = core.take_outgoing().unwrap();
    let f = core.finish(third.call, CallOutcome::Error, 3_030).unwrap();
    assert!(!f.retrying, "two retries, then it gives up");
    assert_eq!(core.poll_timeout(), None);
    // An answer (even a deny) is final.
    core.notify(HookAction::Stop, &who("1.1.1.1"), 0);
    let call = core.take_outgoing().unwrap().call;
    assert!(!core.finish(call, DENY, 1).unwrap().retrying);
}

#[test]
fn unconfigured_hooks() {
    let mut core: HookCore<u32> = HookCore::new(settings(|c| {
        c.on_play = None;
        c.on_stop = None;
        c.fail_open_play = true;
    }));
    assert!(!core.notify(HookAction::Stop, &who("1.1.1.1"), 0));
    assert_eq!(
        core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0),
        Asked::Now {
            allow: true,
            result: HookResult::Error,
            waiter: 1
        }
    );
    assert!(core.take_outgoing().is_none());
}
