//! What the dashboard needs from the admin API: activity per hour, sorted keyset
//! paging of tenants, users and events, and tenant admins editing their own tenant's policy —
//! over real HTTP, on SQLite and (when configured) PostgreSQL.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const SUITE: &str = "identity admin dashboard";

/// Alice (Admin of `a`) and her `admin.tenant` token, plus Bob (User of `b`).
struct Tenants {
    a: String,
    b: String,
    app: String,
    alice: String,
}

async fn two_tenants(id: &Instance) -> Tenants {
    let a = id.create_tenant("shop-a").await;
    let b = id.create_tenant("shop-b").await;
    let app = id.tenant_app().await;
    id.create_member(&a, "alice@a.example", &["Admin"]).await;
    id.create_member(&b, "bob@b.example", &["User"]).await;
    let alice = id
        .user_access(
            &app,
            "alice@a.example",
            USER_PASSWORD,
            "openid admin.tenant",
            Some(&a),
        )
        .await;
    Tenants { a, b, app, alice }
}

fn totals(v: &Value) -> (i64, i64, i64) {
    let t = &v["totals"];
    (
        t["sign_ins"].as_i64().unwrap(),
        t["failures"].as_i64().unwrap(),
        t["tokens"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn activity_per_hour_is_scoped_like_the_events() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let t = two_tenants(&id).await;
        // Bob: one failed and one successful sign-in for B.
        assert!(
            id.user_tokens(&t.app, "bob@b.example", "wrong password 1", "openid", None)
                .await
                .is_err()
        );
        id.user_tokens(&t.app, "bob@b.example", USER_PASSWORD, "openid", None)
            .await
            .unwrap();
        // Two client_credentials tokens of a client of A.
        let (cid, secret) = id
            .create_client(json!({"name": "svc", "tenant_id": t.a, "grant_types": ["client_credentials"], "scopes": ["db.read"]}))
            .await;
        for _ in 0..2 {
            id.access_token(&cid, &secret, Some("db.read")).await;
        }

        let (status, all) = id.get_as("/admin/stats/activity?hours=24", &admin).await;
        assert_eq!(status, 200, "{all}");
        let buckets = all["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), 24);
        assert!(buckets[0]["hour"].as_str().unwrap() < buckets[23]["hour"].as_str().unwrap());
        let (sign_ins, failures, tokens) = totals(&all);
        assert_eq!((sign_ins, failures), (2, 1), "{all}");
        // Alice's, Bob's and the two client tokens, plus the platform admin's own tokens.
        assert!(tokens >= 5, "{all}");

        let (_, of_a) = id
            .get_as(&format!("/admin/stats/activity?tenant={}", t.a), &admin)
            .await;
        assert_eq!(totals(&of_a), (1, 0, 3), "{of_a}");
        // Reading again flushes nothing twice.
        let (_, again) = id
            .get_as(&format!("/admin/stats/activity?tenant={}", t.a), &admin)
            .await;
        assert_eq!(totals(&again), (1, 0, 3));
        let (_, of_b) = id
            .get_as(
                &format!("/admin/stats/activity?tenant={}&hours=1", t.b),
                &admin,
            )
            .await;
        assert_eq!(of_b["buckets"].as_array().unwrap().len(), 1);
        // The failure is on the platform chain (the account is unknown when it fails).
        let (_, platform) = id
            .get_as("/admin/stats/activity?tenant=platform", &admin)
            .await;
        assert_eq!(totals(&platform).1, 1, "{platform}");

        // Alice sees her tenant only.
        let (status, own) = id.get_as("/admin/stats/activity", &t.alice).await;
        assert_eq!(status, 200);
        assert_eq!(totals(&own), (1, 0, 3), "{own}");
        assert_eq!(own["tenant"], t.a.as_str());
        for path in [
            format!("/admin/stats/activity?tenant={}", t.b),
            "/admin/stats/activity?tenant=platform".to_owned(),
        ] {
            let (status, v) = id.get_as(&path, &t.alice).await;
            assert_eq!(status, 404, "{path}: {v}");
        }
        for bad in ["hours=0", "hours=169", "hours=x"] {
            let (status, v) = id
                .get_as(&format!("/admin/stats/activity?{bad}"), &admin)
                .await;
            assert_eq!(status, 400, "{bad}: {v}");
        }
        let (status, _) = id.get_as("/admin/stats/activity", "garbage").await;
        assert_eq!(status, 401);

        id.stop().await;
        db.cleanup().await;
    }
}

/// Walks every page of `path` (which has a query) with `limit=2`; checks the pages neither
/// repeat nor skip and returns the items.
async fn walk(id: &Instance, token: &str, path: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let url = match &after {
            Some(a) => format!("{path}&limit=2&after={}", form_encode(a)),
            None => format!("{path}&limit=2"),
        };
        let (status, v) = id.get_as(&url, token).await;
        assert_eq!(status, 200, "{url}: {v}");
        out.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["next_after"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => return out,
        }
    }
    panic!("{path}: more than 100 pages");
}

fn column(items: &[Value], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[key].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn lists_sort_on_the_server_with_cursors() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        for (slug, name) in [
            ("sort-c", "charlie"),
            ("sort-a", "echo"),
            ("sort-e", "alpha"),
            ("sort-b", "delta"),
            ("sort-d", "bravo"),
        ] {
            id.call_expect(
                Method::POST,
                "/admin/tenants",
                &admin,
                Some(json!({"slug": slug, "name": name})),
                201,
            )
            .await;
        }
        let ours = |items: Vec<Value>| -> Vec<Value> {
            items
                .into_iter()
                .filter(|t| t["slug"].as_str().unwrap().starts_with("sort-"))
                .collect()
        };
        let by_name = ours(walk(&id, &admin, "/admin/tenants?sort=name").await);
        assert_eq!(
            column(&by_name, "name"),
            ["alpha", "bravo", "charlie", "delta", "echo"]
        );
        let by_slug = ours(walk(&id, &admin, "/admin/tenants?sort=slug&order=desc").await);
        assert_eq!(
            column(&by_slug, "slug"),
            ["sort-e", "sort-d", "sort-c", "sort-b", "sort-a"]
        );
        let created = ours(walk(&id, &admin, "/admin/tenants?sort=created").await);
        assert_eq!(
            column(&created, "slug"),
            ["sort-c", "sort-a", "sort-e", "sort-b", "sort-d"]
        );
        let newest = ours(walk(&id, &admin, "/admin/tenants?order=desc").await);
        assert_eq!(
            column(&newest, "slug"),
            ["sort-d", "sort-b", "sort-e", "sort-a", "sort-c"]
        );
        for bad in [
            "sort=password_hash",
            "sort=name%20DESC",
            "order=sideways",
            "sort=name&after=garbage",
        ] {
            let (status, v) = id.get_as(&format!("/admin/tenants?{bad}"), &admin).await;
            assert_eq!(status, 400, "{bad}: {v}");
            assert_eq!(v["status"], 400);
        }

        // Users of a tenant: by email and by name, with a search, both directions.
        let tid = created[0]["id"].as_str().unwrap().to_owned();
        for (email, name) in [
            ("u3@x.example", "carol"),
            ("u1@x.example", "erin"),
            ("u5@x.example", "alice"),
            ("u2@x.example", "dave"),
            ("u4@x.example", "bob"),
            ("other@y.example", "zed"),
        ] {
            id.call_expect(
                Method::POST,
                &format!("/admin/tenants/{tid}/users"),
                &admin,
                Some(json!({"email": email, "name": name})),
                201,
            )
            .await;
        }
        let users = |q: &str| format!("/admin/tenants/{tid}/users?{q}");
        let by_email = walk(
            &id,
            &admin,
            &users("sort=email&order=desc&search=x.example"),
        )
        .await;
        assert_eq!(
            column(&by_email, "email"),
            [
                "u5@x.example",
                "u4@x.example",
                "u3@x.example",
                "u2@x.example",
                "u1@x.example"
            ]
        );
        let by_name = walk(&id, &admin, &users("sort=name")).await;
        assert_eq!(
            column(&by_name, "name"),
            ["alice", "bob", "carol", "dave", "erin", "zed"]
        );
        let (status, _) = id.get_as(&users("sort=password_hash"), &admin).await;
        assert_eq!(status, 400);

        // Events of the tenant: oldest first by default, newest first on request.
        let events = |q: &str| format!("/admin/security-events?tenant={tid}&{q}");
        let oldest = column(&walk(&id, &admin, &events("sort=time")).await, "id");
        let mut newest = column(&walk(&id, &admin, &events("order=desc")).await, "id");
        assert!(oldest.len() >= 6, "{oldest:?}");
        assert!(oldest.windows(2).all(|w| w[0] < w[1]));
        newest.reverse();
        assert_eq!(oldest, newest);
        for bad in ["sort=type", "order=newest"] {
            let (status, _) = id.get_as(&events(bad), &admin).await;
            assert_eq!(status, 400, "{bad}");
        }

        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn tenant_admins_edit_their_own_policy_only() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let t = two_tenants(&id).await;
        let policy = json!({"policy": {"password_min_length": 16, "lockout_threshold": 3,
            "lockout_duration_secs": 600, "mfa_required": false, "session_timeout_secs": 3600}});
        let (status, v) = id
            .call(
                Method::PATCH,
                &format!("/admin/tenants/{}", t.a),
                &t.alice,
                Some(policy.clone()),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["policy"]["password_min_length"], 16);
        assert_eq!(v["policy"]["session_timeout_secs"], 3600);
        assert_eq!(v["status"], "active");
        // The change is recorded in A's event chain, by Alice.
        let (_, ev) = id
            .get_as(
                &format!(
                    "/admin/security-events?tenant={}&type=tenant.change&order=desc&limit=1",
                    t.a
                ),
                &admin,
            )
            .await;
        assert!(
            ev["items"][0]["actor"]
                .as_str()
                .unwrap()
                .starts_with("user:"),
            "{ev}"
        );
        // Another tenant: 404 (as if it did not exist); B's policy is untouched.
        let (status, v) = id
            .call(
                Method::PATCH,
                &format!("/admin/tenants/{}", t.b),
                &t.alice,
                Some(policy.clone()),
            )
            .await;
        assert_eq!(status, 404, "{v}");
        let (_, b) = id.get_as(&format!("/admin/tenants/{}", t.b), &admin).await;
        assert_eq!(b["policy"]["password_min_length"], 12);
        // Status, name and slug stay the platform's; a bad policy is a 422.
        for body in [
            json!({"status": "suspended"}),
            json!({"status": "active", "policy": {"password_min_length": 16}}),
            json!({"name": "Renamed"}),
            json!({"slug": "taken-over"}),
        ] {
            let (status, v) = id
                .call(
                    Method::PATCH,
                    &format!("/admin/tenants/{}", t.a),
                    &t.alice,
                    Some(body.clone()),
                )
                .await;
            assert_eq!(status, 403, "{body}: {v}");
        }
        id.call_expect(
            Method::PATCH,
            &format!("/admin/tenants/{}", t.a),
            &t.alice,
            Some(json!({"policy": {"password_min_length": 2}})),
            422,
        )
        .await;
        // Suspending stays platform-only, for the own tenant too.
        id.call_expect(
            Method::POST,
            &format!("/admin/tenants/{}/suspend", t.a),
            &t.alice,
            None,
            403,
        )
        .await;
        // A plain user's token is no admin token: the grant drops admin.tenant for a User, so
        // the token is not even for this service.
        let bob = id
            .user_access(
                &t.app,
                "bob@b.example",
                USER_PASSWORD,
                "openid admin.tenant",
                None,
            )
            .await;
        id.call_expect(
            Method::PATCH,
            &format!("/admin/tenants/{}", t.b),
            &bob,
            Some(policy),
            401,
        )
        .await;
        let (_, a) = id.get_as(&format!("/admin/tenants/{}", t.a), &admin).await;
        assert_eq!(a["policy"]["password_min_length"], 16);
        assert_eq!(a["name"], "Shop shop-a");

        id.stop().await;
        db.cleanup().await;
    }
}
