//! The security-event log: events for sign-ins and admin changes, the query API with
//! filters and paging, NDJSON export, tenant isolation, and the hash chain's verify endpoint
//! naming the first tampered event — on SQLite and (when configured) PostgreSQL.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tansu_identity::store::Store;

const SUITE: &str = "identity security events";

async fn tamper(store: &Store, id: &str) {
    raw_exec(
        store,
        "UPDATE security_events SET outcome = 'failure' WHERE id = $1",
        &[id],
    )
    .await;
}

#[tokio::test]
async fn events_are_recorded_queried_exported_and_verified() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let a = id.create_tenant("ev-a").await;
        let b = id.create_tenant("ev-b").await;
        let app = id.tenant_app().await;
        let alice = id.create_member(&a, "alice@ev.example", &["Admin"]).await;
        id.create_member(&b, "bob@ev.example", &["User"]).await;
        let (status, _) = id
            .call(
                Method::PUT,
                &format!("/admin/tenants/{a}/users/{alice}/roles/User"),
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert!(
            id.user_tokens(
                &app,
                "alice@ev.example",
                "not the password!",
                "openid",
                Some(&a)
            )
            .await
            .is_err()
        );
        let at = id
            .user_tokens(
                &app,
                "alice@ev.example",
                USER_PASSWORD,
                "openid admin.tenant",
                Some(&a),
            )
            .await
            .unwrap();
        let alice_token = at["access_token"].as_str().unwrap().to_owned();

        // Tenant A's chain: created, member added, roles changed, signed in.
        let (status, page) = id
            .call(
                Method::GET,
                &format!("/admin/security-events?tenant={a}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        let kinds: Vec<&str> = items.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["tenant.change", "user.change", "role.change", "sign_in"],
            "{page}"
        );
        for (i, e) in items.iter().enumerate() {
            assert_eq!(e["seq"], i64::try_from(i).unwrap() + 1);
            assert_eq!(e["tenant_id"], a.as_str());
            assert!(e["time"].is_string() && e["id"].is_string() && e["hash"].is_string());
        }
        assert_eq!(items[3]["outcome"], "success");
        assert_eq!(items[3]["actor"], format!("user:{alice}"));
        assert!(items[0]["actor"].as_str().unwrap().starts_with("client:"));
        // The failed sign-in (tenant not yet known) is a platform event, without the password.
        let (_, failed) = id
            .call(
                Method::GET,
                "/admin/security-events?type=sign_in&outcome=failure",
                &admin,
                None,
            )
            .await;
        let failed = failed["items"].as_array().unwrap().clone();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["tenant_id"], Value::Null);
        assert_eq!(failed[0]["details"]["email"], "alice@ev.example");
        assert!(!failed[0].to_string().contains("not the password"));

        // Filters: type, actor, time range; paging.
        let (_, t) = id
            .call(
                Method::GET,
                &format!("/admin/security-events?tenant={a}&type=role.change"),
                &admin,
                None,
            )
            .await;
        assert_eq!(t["items"].as_array().unwrap().len(), 1);
        let (_, t) = id
            .call(
                Method::GET,
                &format!("/admin/security-events?actor=user:{alice}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(t["items"].as_array().unwrap().len(), 1);
        let (_, t) = id
            .call(
                Method::GET,
                "/admin/security-events?from=2999-01-01T00:00:00Z",
                &admin,
                None,
            )
            .await;
        assert!(t["items"].as_array().unwrap().is_empty());
        let (_, t) = id
            .call(
                Method::GET,
                "/admin/security-events?to=2000-01-01T00:00:00Z",
                &admin,
                None,
            )
            .await;
        assert!(t["items"].as_array().unwrap().is_empty());
        let (status, _) = id
            .call(
                Method::GET,
                "/admin/security-events?from=yesterday",
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 400);
        let mut paged = Vec::new();
        let mut after = String::new();
        for _ in 0..20 {
            let (_, p) = id
                .call(
                    Method::GET,
                    &format!("/admin/security-events?tenant={a}&limit=3&after={after}"),
                    &admin,
                    None,
                )
                .await;
            for e in p["items"].as_array().unwrap() {
                paged.push(e["id"].as_str().unwrap().to_owned());
            }
            match p["next_after"].as_str() {
                Some(n) => after = n.to_owned(),
                None => break,
            }
        }
        assert_eq!(
            paged,
            items
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        );

        // NDJSON export.
        let resp = id
            .http
            .get(id.url(&format!("/admin/security-events/export?tenant={a}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
        let text = resp.text().await.unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2]["type"], "role.change");

        // A tenant admin sees their own tenant only.
        let (status, own) = id
            .call(Method::GET, "/admin/security-events", &alice_token, None)
            .await;
        assert_eq!(status, 200);
        assert!(
            own["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["tenant_id"] == a.as_str())
        );
        for path in [
            format!("/admin/security-events?tenant={b}"),
            format!("/admin/security-events/export?tenant={b}"),
            format!("/admin/security-events/verify?tenant={b}"),
            "/admin/security-events?tenant=platform".to_owned(),
        ] {
            let (status, _) = id.call(Method::GET, &path, &alice_token, None).await;
            assert_eq!(status, 404, "{path}");
        }
        let (status, v) = id
            .call(
                Method::GET,
                "/admin/security-events/verify",
                &alice_token,
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(v["ok"], true);

        // The chain verifies; tampering with one stored row is found at that row.
        let (_, v) = id
            .call(
                Method::GET,
                &format!("/admin/security-events/verify?tenant={a}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["checked"], 4);
        let (_, v) = id
            .call(
                Method::GET,
                "/admin/security-events/verify?tenant=platform",
                &admin,
                None,
            )
            .await;
        assert_eq!(v["ok"], true, "{v}");
        let victim = items[1]["id"].as_str().unwrap();
        tamper(&id.state.store, victim).await;
        let (_, v) = id
            .call(
                Method::GET,
                &format!("/admin/security-events/verify?tenant={a}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(v["first_broken"]["id"], victim);
        assert_eq!(v["first_broken"]["seq"], 2);
        assert_eq!(v["checked"], 1);
        // Other tenants' chains are unaffected.
        let (_, v) = id
            .call(
                Method::GET,
                &format!("/admin/security-events/verify?tenant={b}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(v["ok"], true);

        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_events_keep_one_linear_chain() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let t = id.create_tenant("busy").await;
        create_users_at_once(&[(&id, &admin)], &t, 6).await;
        let (_, v) = id
            .call(
                Method::GET,
                &format!("/admin/security-events/verify?tenant={t}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["checked"], 7);
        id.stop().await;
        db.cleanup().await;
    }
}

/// Two replicas on one database append to the same tenant's chain at once: each writer's
/// remembered link goes stale when the other appends, and the chain stays one linear list.
#[tokio::test]
async fn replicas_appending_at_once_keep_one_linear_chain() {
    for db in backends(SUITE).await {
        let a = Instance::start(&db, "", |_| {}).await;
        let b = Instance::start(&db, "", |_| {}).await;
        // Each replica has its own issuer URL here: each verifies its own tokens.
        let admins = [a.admin_token().await, b.admin_token().await];
        let t = a.create_tenant("shared").await;
        create_users_at_once(&[(&a, &admins[0]), (&b, &admins[1])], &t, 16).await;
        for (id, admin) in [(&a, &admins[0]), (&b, &admins[1])] {
            let (_, v) = id
                .call(
                    Method::GET,
                    &format!("/admin/security-events/verify?tenant={t}"),
                    admin,
                    None,
                )
                .await;
            assert_eq!(v["ok"], true, "{v}");
            assert_eq!(v["checked"], 17, "{v}");
        }
        a.stop().await;
        b.stop().await;
        db.cleanup().await;
    }
}

/// Sign-ins at once on two replicas: each sign-in's session and code are stored in the write
/// of its event (batched with others', re-linked when the other replica moved the chain), so
/// every code redeems and the tenant's chain gains exactly one linked event per sign-in.
#[tokio::test]
async fn sign_ins_at_once_on_replicas_store_each_session_with_its_event() {
    for db in backends(SUITE).await {
        let a = Instance::start(&db, "", |_| {}).await;
        let b = Instance::start(&db, "", |_| {}).await;
        let admin = a.admin_token().await;
        let t = a.create_tenant("sign-ins").await;
        a.create_member(&t, "carol@chain.example", &["User"]).await;
        let app = a.tenant_app().await;
        let verify = || chain_verified(&a, &admin, &t);
        let before = verify().await;
        let sign_ins = (0..8).map(|i| {
            let id = if i % 2 == 0 { &a } else { &b };
            id.user_tokens(
                &app,
                "carol@chain.example",
                USER_PASSWORD,
                "openid",
                Some(&t),
            )
        });
        for tokens in futures::future::join_all(sign_ins).await {
            let tokens = tokens.unwrap();
            assert!(tokens["id_token"].is_string(), "{tokens}");
        }
        assert_eq!(verify().await, before + 8);
        let (_, page) = a
            .call(
                Method::GET,
                &format!("/admin/security-events?tenant={t}&type=sign_in&outcome=success"),
                &admin,
                None,
            )
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 8, "{page}");
        a.stop().await;
        b.stop().await;
        db.cleanup().await;
    }
}

/// The chain's newest event is lost after the writer linked it (a failover to a replica that
/// had not received it): the next append does not link to the lost event — it reads the
/// chain's real end and continues it, so the chain still verifies and holds the new sign-in.
#[tokio::test]
async fn an_append_after_a_lost_tail_continues_the_chain_it_finds() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let t = id.create_tenant("lost-tail").await;
        id.create_member(&t, "dave@tail.example", &["User"]).await;
        let app = id.tenant_app().await;
        let sign_in = || async {
            let tokens = id
                .user_tokens(&app, "dave@tail.example", USER_PASSWORD, "openid", Some(&t))
                .await
                .unwrap();
            assert!(tokens["id_token"].is_string(), "{tokens}");
        };
        let verify = || chain_verified(&id, &admin, &t);
        sign_in().await;
        sign_in().await;
        let before = verify().await;
        // The writer remembers the link it wrote last; the database loses it.
        raw_exec(
            &id.state.store,
            "DELETE FROM security_events WHERE tenant_id = $1 \
             AND seq = (SELECT MAX(seq) FROM security_events WHERE tenant_id = $1)",
            &[t.as_str()],
        )
        .await;
        assert_eq!(verify().await, before - 1);
        sign_in().await;
        assert_eq!(
            verify().await,
            before,
            "{}: the new sign-in continues the chain",
            db.name()
        );
        id.stop().await;
        db.cleanup().await;
    }
}

/// Verifies tenant `t`'s chain (it must be intact) and returns how many events it checked.
async fn chain_verified(id: &Instance, admin: &str, t: &str) -> i64 {
    let path = format!("/admin/security-events/verify?tenant={t}");
    let (_, v) = id.call(Method::GET, &path, admin, None).await;
    assert_eq!(v["ok"], true, "{v}");
    v["checked"].as_i64().unwrap()
}

/// Creates `n` users in tenant `t` with concurrent requests, spread over the (instance, admin
/// token) pairs in turn; each must answer 201.
async fn create_users_at_once(callers: &[(&Instance, &String)], t: &str, n: usize) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let (id, admin) = callers[i % callers.len()];
        let request = id
            .http
            .post(id.url(&format!("/admin/tenants/{t}/users")))
            .bearer_auth(admin)
            .json(&json!({"email": format!("u{i}@chain.example")}));
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap().status().as_u16()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 201);
    }
}
