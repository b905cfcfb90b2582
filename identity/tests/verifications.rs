//! Chain verification as a background job (long operations show progress):
//! `POST /admin/security-events/verifications` starts it (202 + Location), `GET …/{id}`
//! reports `state`, `checked` and `total` while it runs and the synchronous endpoint's answer
//! when done — on an intact and on a tampered chain of several pages, per tenant, on SQLite
//! and (when configured) PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::Value;
use tansu_identity::store::Store;
use tansu_identity::store::events::EventRow;

const SUITE: &str = "identity chain verification jobs";
/// More events than one page of the walk (1,000), so progress is published on the way.
const EVENTS: usize = 2_500;

/// Appends `n` events to the tenant's chain through the service's own writer.
async fn fill(id: &Instance, tenant: &str, n: usize) {
    let rows: Vec<EventRow> = (0..n)
        .map(|i| EventRow {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant.to_owned(),
            seq: 0,
            at: 1_700_000_000_000 + i64::try_from(i).unwrap(),
            kind: "test.filler".into(),
            actor: "system".into(),
            ip: String::new(),
            user_agent: String::new(),
            outcome: "success".into(),
            details: format!("{{\"i\":{i}}}"),
            trace_id: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
        })
        .collect();
    for chunk in rows.chunks(1000) {
        tansu_identity::events::append_batch(&id.state.events, chunk.to_vec())
            .await
            .unwrap();
    }
}

async fn tamper_seq(store: &Store, tenant: &str, seq: i64) {
    raw_exec(
        store,
        "UPDATE security_events SET outcome = 'failure' \
         WHERE tenant_id = $1 AND seq = CAST($2 AS BIGINT)",
        &[tenant, &seq.to_string()],
    )
    .await;
}

/// Starts a verification job; returns the 202's Location and body.
async fn start(id: &Instance, token: &str, tenant: Option<&str>) -> (String, Value) {
    let path = match tenant {
        Some(t) => format!("/admin/security-events/verifications?tenant={t}"),
        None => "/admin/security-events/verifications".to_owned(),
    };
    let resp = id
        .http
        .post(id.url(&path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let location = resp.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    (location, resp.json().await.unwrap())
}

/// Follows a job until it is done, checking every answer on the way; returns the last.
async fn until_done(id: &Instance, token: &str, job: &str) -> Value {
    let seen = std::cell::Cell::new(0);
    eventually(Duration::from_secs(60), "the verification job ends", || {
        let path = format!("/admin/security-events/verifications/{job}");
        let seen = &seen;
        async move {
            let (status, v) = id.call(Method::GET, &path, token, None).await;
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["id"], job);
            let checked = v["checked"].as_i64().unwrap();
            assert!(checked >= seen.get(), "progress never goes back: {v}");
            assert!(checked <= v["total"].as_i64().unwrap(), "{v}");
            seen.set(checked);
            match v["state"].as_str().unwrap() {
                "running" => {
                    assert!(v["result"].is_null() && v["finished_at"].is_null(), "{v}");
                    None
                }
                "done" => Some(v),
                other => panic!("state {other}: {v}"),
            }
        }
    })
    .await
}

async fn verify_now(id: &Instance, token: &str, tenant: &str) -> Value {
    let (status, v) = id
        .call(
            Method::GET,
            &format!("/admin/security-events/verify?tenant={tenant}"),
            token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test]
async fn verification_jobs_report_progress_and_the_synchronous_result() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let a = id.create_tenant("vj-a").await;
        let b = id.create_tenant("vj-b").await;
        fill(&id, &a, EVENTS).await;

        // An intact chain of several pages: the job's result is the synchronous answer.
        let (location, started) = start(&id, &admin, Some(&a)).await;
        let job = started["id"].as_str().unwrap().to_owned();
        assert!(
            location.ends_with(&format!("/admin/security-events/verifications/{job}")),
            "{location}"
        );
        assert_eq!(started["tenant"], a.as_str());
        assert!(["running", "done"].contains(&started["state"].as_str().unwrap()));
        // The chain's size when the job started: the tenant's creation and the filler.
        let total = i64::try_from(EVENTS).unwrap() + 1;
        assert_eq!(started["total"], total, "{started}");
        let done = until_done(&id, &admin, &job).await;
        let sync = verify_now(&id, &admin, &a).await;
        assert_eq!(done["result"], sync, "{done}");
        assert_eq!(sync["ok"], true);
        assert_eq!(done["checked"], total);
        assert_eq!(done["total"], total);
        assert!(done["finished_at"].is_string() && done["error"].is_null());

        // The platform's chain (named `platform`).
        let (_, p) = start(&id, &admin, Some("platform")).await;
        assert_eq!(p["tenant"], "platform");
        let done = until_done(&id, &admin, p["id"].as_str().unwrap()).await;
        assert_eq!(done["result"], verify_now(&id, &admin, "platform").await);

        // A tampered event in the second page: the job names it as the synchronous walk does.
        tamper_seq(&id.state.store, &a, 1_500).await;
        let (_, started) = start(&id, &admin, Some(&a)).await;
        assert_ne!(
            started["id"].as_str().unwrap(),
            job,
            "a finished job is not reused"
        );
        let done = until_done(&id, &admin, started["id"].as_str().unwrap()).await;
        let sync = verify_now(&id, &admin, &a).await;
        assert_eq!(sync["ok"], false, "{sync}");
        assert_eq!(sync["first_broken"]["seq"], 1_500);
        assert_eq!(sync["checked"], 1_499);
        assert_eq!(done["result"], sync, "{done}");
        assert_eq!(done["checked"], 1_499);

        // Tenant admins: their own tenant's jobs only.
        let app = id.tenant_app().await;
        id.create_member(&b, "bea@vj.example", &["Admin"]).await;
        let bea = id
            .user_tokens(
                &app,
                "bea@vj.example",
                USER_PASSWORD,
                "openid admin.tenant",
                Some(&b),
            )
            .await
            .unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, own) = start(&id, &bea, None).await;
        assert_eq!(own["tenant"], b.as_str());
        let own_id = own["id"].as_str().unwrap().to_owned();
        let done = until_done(&id, &bea, &own_id).await;
        assert_eq!(done["result"], verify_now(&id, &bea, &b).await);
        // Another tenant's job, another tenant's or the platform's chain: 404.
        let (status, v) = id
            .call(
                Method::GET,
                &format!("/admin/security-events/verifications/{job}"),
                &bea,
                None,
            )
            .await;
        assert_eq!(status, 404, "{v}");
        for tenant in [a.as_str(), "platform"] {
            let (status, _) = id
                .call(
                    Method::POST,
                    &format!("/admin/security-events/verifications?tenant={tenant}"),
                    &bea,
                    None,
                )
                .await;
            assert_eq!(status, 404, "{tenant}");
        }
        // The platform admin sees every job.
        let (status, _) = id
            .call(
                Method::GET,
                &format!("/admin/security-events/verifications/{own_id}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 200);

        // Bad ids and tenants: 404 problem+json; a platform admin must name the chain (400).
        for path in [
            "/admin/security-events/verifications/nope".to_owned(),
            "/admin/security-events/verifications/..%2F..%2Fkeys".to_owned(),
            format!("/admin/security-events/verifications/{}", "9".repeat(5000)),
            format!(
                "/admin/security-events/verifications/{}",
                uuid::Uuid::now_v7()
            ),
        ] {
            let resp = id
                .http
                .get(id.url(&path))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 404, "{path}");
            assert_eq!(
                resp.headers()[reqwest::header::CONTENT_TYPE],
                "application/problem+json",
                "{path}"
            );
        }
        let (status, v) = id
            .call(
                Method::POST,
                "/admin/security-events/verifications?tenant=no-such-tenant",
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 404, "{v}");
        assert_eq!(v["status"], 404);
        let (status, v) = id
            .call(
                Method::POST,
                "/admin/security-events/verifications",
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 400, "{v}");

        // A bearer API: no CSRF token, no cookie needed (a cross-site Origin changes nothing),
        // and no bearer token is no access at all (RFC 6750), whatever cookie comes along.
        let resp = id
            .http
            .post(id.url(&format!("/admin/security-events/verifications?tenant={b}")))
            .bearer_auth(&admin)
            .header("origin", "https://elsewhere.example")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        let resp = id
            .http
            .post(id.url(&format!("/admin/security-events/verifications?tenant={b}")))
            .header("cookie", "tansu_session=anything")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert!(
            resp.headers()
                .contains_key(reqwest::header::WWW_AUTHENTICATE)
        );
        let (status, _) = id
            .call(
                Method::GET,
                &format!("/admin/security-events/verifications/{job}"),
                "not-a-token",
                None,
            )
            .await;
        assert_eq!(status, 401);

        id.stop().await;
        db.cleanup().await;
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A running job of `holder` on `tenant`, as a replica walking it would have stored it.
async fn running_row(store: &Store, id: &str, tenant: &str, holder: &str, heartbeat_at: i64) {
    raw_exec(
        store,
        &format!(
            "INSERT INTO verification_jobs (id, tenant_id, holder, state, checked, total, \
             started_at, heartbeat_at) VALUES ($1, $2, $3, 'running', 7, 100, {heartbeat_at}, \
             {heartbeat_at})"
        ),
        &[id, tenant, holder],
    )
    .await;
}

/// Jobs are rows of the shared database: a job started at one replica is followed, with its
/// progress, at another; a start at any replica while the chain's job runs elsewhere gets that
/// job; a job whose replica stopped (no heartbeat) is ended as failed by the next start and a
/// new one runs; each replica's bound on running jobs is its own.
#[tokio::test]
async fn replicas_share_the_jobs() {
    for db in backends(SUITE).await {
        // Each replica has its own issuer URL here: each verifies its own tokens.
        let one = Instance::start(&db, "", |_| {}).await;
        let two = Instance::start(&db, "", |_| {}).await;
        let (admin1, admin2) = (one.admin_token().await, two.admin_token().await);
        let a = one.create_tenant("vr-a").await;
        fill(&one, &a, EVENTS).await;

        // Started at one, followed at two to the end; the same answer at one.
        let (_, started) = start(&one, &admin1, Some(&a)).await;
        let job = started["id"].as_str().unwrap().to_owned();
        let done = until_done(&two, &admin2, &job).await;
        assert_eq!(done["result"], verify_now(&two, &admin2, &a).await);
        let (status, at_one) = one
            .call(
                Method::GET,
                &format!("/admin/security-events/verifications/{job}"),
                &admin1,
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(at_one, done);

        // The chain's job runs at a third replica: a start at two gets it, as running.
        let elsewhere = uuid::Uuid::now_v7().to_string();
        running_row(&one.state.store, &elsewhere, &a, "replica-3", now_ms()).await;
        let (_, got) = start(&two, &admin2, Some(&a)).await;
        assert_eq!(got["id"], elsewhere.as_str(), "{got}");
        assert_eq!(got["state"], "running");
        assert_eq!(got["checked"], 7);

        // That replica stops: once its heartbeat is stale, the next start ends its job as failed
        // and runs a new one.
        raw_exec(
            &one.state.store,
            "UPDATE verification_jobs SET heartbeat_at = 0 WHERE id = $1",
            &[&elsewhere],
        )
        .await;
        let (_, fresh) = start(&two, &admin2, Some(&a)).await;
        assert_ne!(fresh["id"], elsewhere.as_str(), "{fresh}");
        let (status, old) = one
            .call(
                Method::GET,
                &format!("/admin/security-events/verifications/{elsewhere}"),
                &admin1,
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(old["state"], "failed", "{old}");
        assert!(old["error"].as_str().unwrap().contains("stopped"), "{old}");
        let done = until_done(&one, &admin1, fresh["id"].as_str().unwrap()).await;
        assert_eq!(done["result"]["ok"], true, "{done}");

        // Two runs as many jobs as it may: it refuses more (429 problem+json); one still starts.
        let holder = two.state.verifications.holder().to_owned();
        let now = now_ms();
        for i in 0..tansu_identity::verifications::MAX_RUNNING {
            let id = uuid::Uuid::now_v7().to_string();
            running_row(&one.state.store, &id, &format!("busy-{i}"), &holder, now).await;
        }
        let resp = two
            .http
            .post(two.url(&format!("/admin/security-events/verifications?tenant={a}")))
            .bearer_auth(&admin2)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 429);
        assert_eq!(
            resp.headers()[reqwest::header::CONTENT_TYPE],
            "application/problem+json"
        );
        let (_, at_one) = start(&one, &admin1, Some(&a)).await;
        until_done(&one, &admin1, at_one["id"].as_str().unwrap()).await;

        one.stop().await;
        two.stop().await;
        db.cleanup().await;
    }
}
