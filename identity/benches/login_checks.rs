//! What a sign-in costs beyond the password hash (target: < 1 ms): the password
//! policy check and the lockout bookkeeping on SQLite — the lock lookup of the (account, IP) and
//! IP keys that every attempt makes, plus either the failure counting (a wrong password) or
//! the reset of the counter (a success).
//!
//! `cargo bench -p tansu-identity --bench login_checks`; for a quick look without a release
//! build, `cargo test -p tansu-identity --bench login_checks -- --bench` (dependencies are
//! optimised in the dev profile too, and the work is in them).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use tansu_identity::store::{Store, now_ms};
use tansu_identity::tenants::{TenantPolicy, password_problems};

fn login_checks(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let store = rt.block_on(Store::connect(&url)).expect("store");
    let policy = TenantPolicy::default();
    let threshold = i64::from(policy.lockout_threshold);
    let lock_ms = 900_000;

    c.bench_function("password_policy_check", |b| {
        b.iter(|| {
            password_problems(
                black_box("a long unique phrase 42"),
                black_box("bob@shop.example"),
                black_box("Bob Builder"),
                &policy,
            )
        })
    });

    // A successful sign-in: the lock lookup, then the counter reset.
    c.bench_function("lockout_success_path", |b| {
        b.to_async(&rt).iter(|| async {
            let account = "a:bob@shop.example|198.51.100.1";
            let ip = "i:198.51.100.1";
            let locked = store.locked_until(&[account, ip], now_ms()).await.unwrap();
            assert!(locked.is_none());
            store.clear_login_failures(account).await.unwrap();
        })
    });

    // A failed sign-in: the lock lookup, then counting the failure for the pair and the IP
    // (fresh keys, so no lock engages and every iteration does the same work).
    let n = AtomicU64::new(0);
    c.bench_function("lockout_failure_path", |b| {
        b.to_async(&rt).iter(|| async {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let account = format!("a:user{i}@shop.example|203.0.113.9");
            let ip = format!("i:203.0.113.{}", i % 250);
            let now = now_ms();
            let locked = store.locked_until(&[&account, &ip], now).await.unwrap();
            black_box(locked);
            store
                .record_login_failure(&account, now, threshold, lock_ms)
                .await
                .unwrap();
            store
                .record_login_failure(&ip, now, 1_000_000_000, lock_ms)
                .await
                .unwrap();
        })
    });

    rt.block_on(store.close());
}

criterion_group!(benches, login_checks);
criterion_main!(benches);
