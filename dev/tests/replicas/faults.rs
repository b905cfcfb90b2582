//! Faults under continuous load: a replica killed, keys rotated, Redis and PostgreSQL taken
//! away and brought back — while a bounded in-test load generator keeps verifying tokens at the
//! database service and asking identity for tokens, through both gateways, and counts every
//! answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::Mutex;

use super::{ONE_AT_A_TIME, Platform, prerequisites};

/// What the load saw, by kind of request and outcome (`200`, `503+retry-after`, `502`,
/// `error`…), with the time of the last answer that was not a success.
#[derive(Debug, Default)]
struct Tally {
    counts: BTreeMap<(&'static str, String), u64>,
    last_failure: Option<Instant>,
}

impl Tally {
    fn failures(&self, kind: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((k, outcome), _)| *k == kind && outcome != "200")
            .map(|(_, n)| n)
            .sum()
    }

    fn total(&self, kind: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    /// Failures that are not `503` with `Retry-After`.
    fn unexpected(&self) -> Vec<String> {
        self.counts
            .iter()
            .filter(|((_, o), _)| o != "200" && o != "503+retry-after")
            .map(|((k, o), n)| format!("{k} {o} x{n}"))
            .collect()
    }
}

/// The load generator: `workers` loops alternating the two gateways until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    tasks: tokio::task::JoinSet<()>,
}

impl Load {
    fn start(p: &Platform, tenant_token: &str, client: (&str, &str)) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..4usize {
            let http = p.http.clone();
            let bases = p.bases.clone();
            let (stop, tally) = (stop.clone(), tally.clone());
            let token = tenant_token.to_owned();
            let (id, secret) = (client.0.to_owned(), client.1.to_owned());
            tasks.spawn(async move {
                // Worker 0 asks for tokens (a sign-in of a client); the others verify.
                let mut n = worker;
                // Bounded even if never stopped.
                let deadline = Instant::now() + Duration::from_secs(300);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let base = &bases[n % 2];
                    n += 1;
                    let (kind, req) = if worker == 0 {
                        (
                            "token",
                            http.post(format!("{base}/identity/connect/token"))
                                .basic_auth(&id, Some(&secret))
                                .form(&[
                                    ("grant_type", "client_credentials"),
                                    ("scope", "db.read"),
                                ]),
                        )
                    } else {
                        (
                            "verify",
                            http.get(format!("{base}/db/api/collections"))
                                .bearer_auth(&token),
                        )
                    };
                    let outcome = match req.timeout(Duration::from_secs(5)).send().await {
                        Ok(r) if r.status() == StatusCode::OK => "200".to_owned(),
                        Ok(r)
                            if r.status() == StatusCode::SERVICE_UNAVAILABLE
                                && r.headers().contains_key("retry-after") =>
                        {
                            "503+retry-after".to_owned()
                        }
                        Ok(r) => r.status().as_u16().to_string(),
                        Err(e) if e.is_timeout() => "timeout".to_owned(),
                        Err(_) => "error".to_owned(),
                    };
                    let mut t = tally.lock().await;
                    if outcome != "200" {
                        t.last_failure = Some(Instant::now());
                    }
                    *t.counts.entry((kind, outcome)).or_default() += 1;
                    drop(t);
                    tokio::task::yield_now().await;
                }
            });
        }
        Load { stop, tally, tasks }
    }

    /// Lets the load run for `d`.
    async fn run_for(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    async fn stop(mut self, phase: &str) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        while self.tasks.join_next().await.is_some() {}
        let tally = std::mem::take(&mut *self.tally.lock().await);
        println!(
            "faults: {phase}: verify {} ({} failed), token {} ({} failed): {:?}",
            tally.total("verify"),
            tally.failures("verify"),
            tally.total("token"),
            tally.failures("token"),
            tally.counts
        );
        tally
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_rides_out_faults_under_load() {
    let Some(pg_bin) = prerequisites() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let mut p = Platform::start(pg_bin, "").await;
    let (_, tenant_token, client) = p.tenant_with_data("faults-shop").await;
    let client = (client.0.as_str(), client.1.as_str());

    // kill -9 of identity 1: tokens keep verifying at the database service (cached keys), and
    // the gateways send sign-ins to identity 2.
    let load = Load::start(&p, &tenant_token, client);
    load.run_for(Duration::from_secs(1)).await;
    p.identities[0].kill9().await;
    let killed = Instant::now();
    load.run_for(Duration::from_secs(4)).await;
    let t = load.stop("kill -9 identity 1").await;
    assert_eq!(
        t.failures("verify"),
        0,
        "verifications failed: {:?}",
        t.counts
    );
    assert!(t.total("token") > 0);
    // Sign-ins moved: the last second had no failed token request.
    if let Some(last) = t.last_failure {
        assert!(
            last.duration_since(killed) < Duration::from_secs(3),
            "token requests still failing {:?} after the kill: {:?}",
            last.duration_since(killed),
            t.counts
        );
    }
    let http = p.http.clone();
    p.identities[0].start();
    let url = format!("http://{}/health/ready", p.identities[0].addr);
    p.identities[0]
        .wait_ready(&http, &url, Duration::from_secs(60))
        .await;

    // Rotate now under load: the new key is published before it signs; no verification fails.
    let load = Load::start(&p, &tenant_token, client);
    load.run_for(Duration::from_millis(500)).await;
    let (s, body) = p
        .admin(1, reqwest::Method::POST, "keys/rotate-now", None)
        .await;
    assert!(s.is_success(), "rotate now: {s} {body}");
    // Past the lead (3 s): tokens are now signed with the new key.
    load.run_for(Duration::from_secs(5)).await;
    let t = load.stop("rotate keys now").await;
    assert_eq!(t.failures("verify"), 0, "{:?}", t.counts);
    assert_eq!(t.failures("token"), 0, "{:?}", t.counts);

    // Redis away: the gateways' budgets fall back to each replica's own; nothing else breaks.
    let load = Load::start(&p, &tenant_token, client);
    load.run_for(Duration::from_millis(500)).await;
    p.redis.stop_server();
    load.run_for(Duration::from_secs(3)).await;
    p.redis.start_server();
    load.run_for(Duration::from_secs(1)).await;
    let t = load.stop("Redis stopped and started").await;
    assert_eq!(
        t.failures("verify") + t.failures("token"),
        0,
        "{:?}",
        t.counts
    );

    // PostgreSQL restarted: while it is away the answers are 503 with Retry-After, and within
    // 10 s of its return everything succeeds again, without restarting any service.
    let load = Load::start(&p, &tenant_token, client);
    load.run_for(Duration::from_millis(500)).await;
    let pg = &p.pg;
    tokio::task::block_in_place(|| pg.stop_server());
    load.run_for(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| pg.start_server());
    let back = Instant::now();
    load.run_for(Duration::from_secs(12)).await;
    let t = load.stop("PostgreSQL restarted").await;
    assert!(
        t.unexpected().is_empty(),
        "failures other than 503 with Retry-After: {:?}",
        t.unexpected()
    );
    let recovered = t
        .last_failure
        .map_or(Duration::ZERO, |l| l.saturating_duration_since(back));
    println!("faults: PostgreSQL back; last failure {recovered:?} after its return");
    assert!(
        recovered < Duration::from_secs(10),
        "still failing {recovered:?} after PostgreSQL returned: {:?}",
        t.counts
    );
}
