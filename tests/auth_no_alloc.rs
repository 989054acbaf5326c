//! An `[auth]` check allocates nothing: a counting global allocator watches
//! `Gate::check` over a valid and a refused URL of every scheme.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ringcast::auth::ringcast::{sign, Scope};
use ringcast::auth::{Action, AuthConfig, Request};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn a_check_allocates_nothing() {
    let config: AuthConfig = toml::from_str(
        r#"
        play = "signed"
        [[keys]]
        id = "k2"
        secret = "0123456789abcdef0123456789abcdef"
        [[keys]]
        id = "tx"
        secret = "e12c46f2612d5106e2034781ab261ca3"
        scheme = "tencent"
        [[keys]]
        id = "ali"
        secret = "aliyuncdnexp1234"
        scheme = "auth_key_a"
        [[keys]]
        id = "ngx"
        secret = "secret"
        scheme = "secure_link_md5"
        "#,
    )
    .unwrap();
    let gate = config.gate().unwrap();
    let ip = "203.0.113.9".parse().unwrap();
    let secret = b"0123456789abcdef0123456789abcdef";
    let bound = sign(
        secret,
        "k2",
        Action::Play,
        Scope::Stream("live", "test"),
        1_700_003_600,
        Some(ip),
    );
    let prefix = sign(
        secret,
        "k2",
        Action::Play,
        Scope::Prefix("live/"),
        1_700_003_600,
        None,
    );
    let queries = [
        bound.as_str(),
        prefix.as_str(),
        // The vectors of benches/auth.rs (python3 hashlib).
        "txSecret=c13d1132aa4a777d7f53368d33d037db&txTime=6553FF10",
        "auth_key=1700000000-0-0-7fc0012f85f16dbb7dbcdf15c930e9dd",
        "md5=bad&expires=1700003600",
        "exp=1&kid=nope&sig=00",
        "nothing=here",
    ];
    let mut outcomes = Vec::with_capacity(queries.len());
    for query in queries {
        let req = Request {
            action: Action::Play,
            app: "live",
            stream: "test",
            uri_suffix: ".flv",
            query: Some(query),
            client_ip: Some(ip),
            now_s: 1_700_000_000,
        };
        let before = allocations();
        let outcome = gate.check(&req).is_ok();
        let after = allocations();
        assert_eq!(after, before, "checking {query:?} allocated");
        outcomes.push(outcome);
    }
    assert_eq!(outcomes, [true, true, true, true, false, false, false]);
}
