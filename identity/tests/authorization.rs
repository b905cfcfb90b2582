//! The authorization matrix: every route of identity, taken from its router, against every kind
//! of actor, asserting the answer `docs/authorization.md` writes down — and that a refused
//! request changed nothing. A route missing from the document (or a document row without a
//! route) fails the test, so the policy table cannot drift from the code.

mod common;

use std::collections::BTreeSet;

use common::*;
use reqwest::Method;
use serde_json::json;

/// The actors, in the document's column order.
const ACTORS: [&str; 9] = [
    "platform", "owner", "admin", "user", "custom", "other", "tclient", "pclient", "anon",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Passes the policy (may still fail validation).
    Ok,
    /// A protocol or browser route: no bearer policy; any answer but a server error.
    Public,
    /// Refused with this status, changing nothing.
    Refused(u16),
}

struct Row {
    method: Method,
    /// The path with its placeholders, and the query the row adds.
    path: String,
    query: Option<String>,
    expect: Vec<Expect>,
}

fn table() -> Vec<Row> {
    let doc = include_str!("../../docs/authorization.md");
    let rows: Vec<Row> = doc
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 1 + ACTORS.len(), "row: {line}");
            let route = cells[0].trim_matches('`');
            let (method, target) = route.split_once(' ').expect("METHOD /path");
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
                None => (target.to_owned(), None),
            };
            let expect = cells[1..]
                .iter()
                .map(|c| match *c {
                    "ok" => Expect::Ok,
                    "public" => Expect::Public,
                    code => Expect::Refused(code.parse().expect("ok, public or a status")),
                })
                .collect();
            Row {
                method: method.parse().unwrap(),
                path,
                query,
                expect,
            }
        })
        .collect();
    assert!(rows.len() > 50, "the route table was not found");
    rows
}

/// The actors' credentials and the stable resources of tenant A that refused requests aim at.
struct World {
    tokens: Vec<Option<String>>,
    a: String,
    a_slug: String,
    b: String,
    target: String,
    client: String,
    secret: String,
    role: String,
    provider: String,
    invitation: String,
    job: String,
    counter: std::cell::Cell<u32>,
}

impl World {
    fn fresh(&self, what: &str) -> String {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        format!("{what}-{n}")
    }
}

async fn call(
    inst: &Instance,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = no_redirects().request(method, inst.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send_ok().await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(json!(text)))
}

async fn ok_json(
    inst: &Instance,
    method: Method,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let (status, v) = call(inst, method, path, Some(token), Some(body)).await;
    assert!((200..300).contains(&status), "{path}: {status} {v}");
    v
}

async fn setup(inst: &Instance) -> World {
    let admin = inst.admin_token().await;
    let a = inst.create_tenant("matrix-a").await;
    let b = inst.create_tenant("matrix-b").await;
    ok_json(
        inst,
        Method::POST,
        &format!("/admin/tenants/{a}/roles"),
        &admin,
        json!({"name": "vault-reader", "scopes": ["secrets.read"]}),
    )
    .await;
    for (email, roles) in [
        ("owner@a.test", vec!["Owner"]),
        ("admin@a.test", vec!["Admin"]),
        ("user@a.test", vec!["User"]),
        ("custom@a.test", vec!["vault-reader"]),
        ("target@a.test", vec!["User"]),
    ] {
        inst.create_member(&a, email, &roles).await;
    }
    inst.create_member(&b, "owner@b.test", &["Owner"]).await;
    inst.create_member(&b, "invitee@b.test", &["User"]).await;
    inst.create_client(json!({
        "client_id": "matrix-app",
        "name": "Matrix app",
        "first_party": true,
        "client_type": "public",
        "grant_types": ["authorization_code"],
        "redirect_uris": ["https://app.example/cb"],
        "scopes": ["openid", "admin.tenant", "secrets.read", "secrets.write", "db.read"],
    }))
    .await;
    let scope = "openid admin.tenant secrets.read secrets.write";
    let member = |email: &'static str, tid: String| async move {
        inst.user_access("matrix-app", email, USER_PASSWORD, scope, Some(&tid))
            .await
    };
    let (tclient, tsecret) = inst
        .create_client(json!({
            "name": "A's service",
            "tenant_id": a,
            "client_type": "confidential",
            "grant_types": ["client_credentials"],
            "scopes": ["secrets.read", "secrets.write"],
        }))
        .await;
    let (pclient, psecret) = inst
        .create_client(json!({
            "name": "A platform service",
            "client_type": "confidential",
            "grant_types": ["client_credentials"],
            "scopes": ["tenants.read", "events.write"],
        }))
        .await;
    let tokens = vec![
        Some(admin.clone()),
        Some(member("owner@a.test", a.clone()).await),
        Some(member("admin@a.test", a.clone()).await),
        Some(member("user@a.test", a.clone()).await),
        Some(member("custom@a.test", a.clone()).await),
        Some(member("owner@b.test", b.clone()).await),
        Some(
            inst.access_token(&tclient, &tsecret, Some("secrets.read secrets.write"))
                .await,
        ),
        Some(
            inst.access_token(&pclient, &psecret, Some("tenants.read events.write"))
                .await,
        ),
        None,
    ];
    let mut world = World {
        tokens,
        a_slug: "matrix-a".into(),
        a,
        b,
        target: String::new(),
        client: tclient,
        secret: "db-password".into(),
        role: "vault-reader".into(),
        provider: String::new(),
        invitation: String::new(),
        job: String::new(),
        counter: std::cell::Cell::new(0),
    };
    world.target = member_id(inst, &world, "target@a.test").await;
    ok_json(
        inst,
        Method::PUT,
        &format!("/admin/tenants/{}/secrets/{}", world.a, world.secret),
        &admin,
        json!({"value": "s3cret"}),
    )
    .await;
    world.provider = provider(inst, &world).await;
    world.invitation = invitation(inst, &world, "invitee@b.test").await;
    world.job = job(inst, &world).await;
    world
}

async fn member_id(inst: &Instance, w: &World, email: &str) -> String {
    let (_, v) = call(
        inst,
        Method::GET,
        &format!("/admin/tenants/{}/users?search={email}", w.a),
        w.tokens[0].as_deref(),
        None,
    )
    .await;
    v["items"][0]["id"].as_str().unwrap().to_owned()
}

async fn provider(inst: &Instance, w: &World) -> String {
    let v = ok_json(
        inst,
        Method::POST,
        &format!("/admin/tenants/{}/providers", w.a),
        w.tokens[0].as_deref().unwrap(),
        json!({"name": "idp", "issuer": format!("http://127.0.0.1:9/{}", w.fresh("idp")), "client_id": "c"}),
    )
    .await;
    v["id"].as_str().unwrap().to_owned()
}

/// A's owner invites an existing account (of tenant B).
async fn invitation(inst: &Instance, w: &World, email: &str) -> String {
    let v = ok_json(
        inst,
        Method::POST,
        &format!("/admin/tenants/{}/users", w.a),
        w.tokens[1].as_deref().unwrap(),
        json!({"email": email}),
    )
    .await;
    v["id"].as_str().unwrap().to_owned()
}

/// A passkey of `uid` in tenant `tid`, stored straight (no authenticator needed to remove one).
async fn passkey(inst: &Instance, tid: &str, uid: &str) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let row = tansu_identity::store::passkeys::PasskeyRow {
        id: id.clone(),
        tenant_id: Some(tid.to_owned()),
        user_id: uid.to_owned(),
        credential_id: id.as_bytes().to_vec(),
        user_handle: uuid::Uuid::now_v7().to_string(),
        name: "Matrix key".into(),
        passkey: "{}".into(),
        counter: 0,
        backup_eligible: false,
        backup_state: false,
        created_at: 0,
        last_used_at: None,
    };
    assert!(inst.state.store.insert_passkey(&row).await.unwrap());
    id
}

async fn job(inst: &Instance, w: &World) -> String {
    let v = ok_json(
        inst,
        Method::POST,
        &format!("/admin/security-events/verifications?tenant={}", w.a),
        w.tokens[0].as_deref().unwrap(),
        json!({}),
    )
    .await;
    v["id"].as_str().unwrap().to_owned()
}

/// The concrete request path of a row: the stable resources for a refused request, fresh ones
/// (so an allowed change does not disturb the next check) for an allowed one.
async fn concrete(inst: &Instance, w: &World, row: &Row, fresh: bool) -> String {
    let admin = w.tokens[0].as_deref().unwrap();
    let platform_status = row.path == "/admin/tenants/{tid}" && row.method == Method::DELETE
        || row.path.ends_with("/suspend")
        || row.path.ends_with("/activate");
    let mut out: Vec<String> = Vec::new();
    for seg in row.path.split('/') {
        let value = match seg {
            "{tid}" if fresh && platform_status => inst.create_tenant(&w.fresh("matrix-t")).await,
            "{tid}" => w.a.clone(),
            "{uid}" if fresh => {
                let email = format!("{}@a.test", w.fresh("member"));
                inst.create_member(&w.a, &email, &["User"]).await
            }
            "{uid}" => w.target.clone(),
            "{client_id}" if fresh => {
                let id = w.fresh("matrix-client");
                inst.create_client(json!({
                    "client_id": id, "name": "x", "client_type": "confidential",
                    "grant_types": ["client_credentials"], "scopes": ["db.read"],
                }))
                .await
                .0
            }
            "{client_id}" => w.client.clone(),
            "{name}" if row.path.contains("/secrets/") && fresh => {
                let name = w.fresh("secret");
                ok_json(
                    inst,
                    Method::PUT,
                    &format!("/admin/tenants/{}/secrets/{name}", w.a),
                    admin,
                    json!({"value": "v"}),
                )
                .await;
                name
            }
            "{name}" if row.path.contains("/secrets/") => w.secret.clone(),
            "{name}" if fresh => {
                let name = w.fresh("role");
                ok_json(
                    inst,
                    Method::POST,
                    &format!("/admin/tenants/{}/roles", w.a),
                    admin,
                    json!({"name": name, "scopes": ["db.read"]}),
                )
                .await;
                name
            }
            "{name}" => w.role.clone(),
            // A linked upstream identity of the member just named (linking takes a sign-in
            // through a provider: it is stored directly).
            "{id}" if row.path.contains("/identities/") => {
                let uid = out[out.len() - 2].clone();
                linked_identity(inst, &w.a, &uid).await
            }
            "{id}" if row.path.contains("/passkeys/") => {
                // The member's passkey in A ({uid} came two segments before).
                let uid = out[out.len() - 2].clone();
                passkey(inst, &w.a, &uid).await
            }
            "{id}" if row.path.contains("/providers/") && fresh => provider(inst, w).await,
            "{id}" if row.path.contains("/providers/") => w.provider.clone(),
            "{id}" if row.path.contains("/invitations/") && fresh => {
                let email = format!("{}@b.test", w.fresh("invitee"));
                inst.create_member(&w.b, &email, &["User"]).await;
                invitation(inst, w, &email).await
            }
            "{id}" if row.path.contains("/invitations/") => w.invitation.clone(),
            "{id}" => w.job.clone(),
            "{role}" => "User".to_owned(),
            "{kind}" => "password_reset".to_owned(),
            "{reference}" => w.a_slug.clone(),
            other => other.to_owned(),
        };
        out.push(value);
    }
    let mut path = out.join("/");
    if let Some(q) = &row.query {
        path = format!("{path}?{}", q.replace("{tid}", &w.a));
    }
    path
}

/// What a refused request must not change: row counts and change times of the tables an
/// admin request can write.
async fn snapshot(inst: &Instance) -> Vec<i64> {
    const QUERIES: &[&str] = &[
        "SELECT COUNT(*) FROM tenants",
        "SELECT CAST(COALESCE(SUM(updated_at), 0) AS BIGINT) FROM tenants",
        "SELECT COUNT(*) FROM users",
        "SELECT CAST(COALESCE(SUM(updated_at), 0) AS BIGINT) FROM users",
        "SELECT COUNT(*) FROM users WHERE disabled",
        "SELECT COUNT(*) FROM memberships",
        "SELECT CAST(COALESCE(SUM(LENGTH(roles)), 0) AS BIGINT) FROM memberships",
        "SELECT COUNT(*) FROM clients",
        "SELECT CAST(COALESCE(SUM(updated_at), 0) AS BIGINT) FROM clients",
        "SELECT COUNT(*) FROM tenant_secrets",
        "SELECT COUNT(*) FROM tenant_roles",
        "SELECT CAST(COALESCE(SUM(updated_at), 0) AS BIGINT) FROM tenant_roles",
        "SELECT COUNT(*) FROM external_providers",
        "SELECT CAST(COALESCE(SUM(updated_at), 0) AS BIGINT) FROM external_providers",
        "SELECT COUNT(*) FROM invitations",
        "SELECT COUNT(*) FROM signing_keys",
        "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL",
        "SELECT COUNT(*) FROM refresh_families WHERE revoked_at IS NOT NULL",
        "SELECT COUNT(*) FROM mfa_totp",
        "SELECT COUNT(*) FROM passkeys",
    ];
    let mut out = Vec::with_capacity(QUERIES.len());
    for q in QUERIES {
        out.push(raw_count(&inst.state.store, q).await);
    }
    out
}

#[tokio::test]
async fn every_route_answers_every_actor_as_the_policy_table_says() {
    for db in backends("authorization matrix").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        let rows = table();

        let documented: BTreeSet<(String, String)> = rows
            .iter()
            .map(|r| (r.method.to_string(), r.path.clone()))
            .collect();
        let routed = tansu_shared::testing::http::routed_methods(
            &inst.url(""),
            tansu_identity::routes().paths(),
        )
        .await;
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "docs/authorization.md and the router differ:\n  routes without a policy row: \
             {undocumented:?}\n  rows without a route: {unrouted:?}"
        );

        let world = setup(&inst).await;
        let mut failures = Vec::new();
        let mut checked = 0;
        for row in &rows {
            for (i, actor) in ACTORS.iter().enumerate() {
                let expect = row.expect[i];
                let path = concrete(&inst, &world, row, expect == Expect::Ok).await;
                let body = matches!(row.method, Method::POST | Method::PUT | Method::PATCH)
                    .then(|| json!({}));
                let before = match expect {
                    Expect::Refused(_) => Some(snapshot(&inst).await),
                    _ => None,
                };
                let (status, answer) = call(
                    &inst,
                    row.method.clone(),
                    &path,
                    world.tokens[i].as_deref(),
                    body,
                )
                .await;
                checked += 1;
                let after = match expect {
                    Expect::Refused(_) => Some(snapshot(&inst).await),
                    _ => None,
                };
                let what = format!("{} {path} as {actor}", row.method);
                match expect {
                    Expect::Public if status >= 500 => {
                        failures.push(format!("{what}: {status} (a server error) {answer}"));
                    }
                    Expect::Ok if matches!(status, 401 | 403 | 404) || status >= 500 => {
                        failures.push(format!("{what}: {status}, expected it allowed: {answer}"));
                    }
                    Expect::Refused(code) if status != code => {
                        failures.push(format!("{what}: {status}, expected {code}: {answer}"));
                    }
                    Expect::Refused(_) if after != before => {
                        failures.push(format!("{what}: refused, but it changed the store"));
                    }
                    _ => {}
                }
            }
        }
        println!(
            "authorization matrix ({}): {} routes x {} actors = {checked} requests",
            db.name(),
            rows.len(),
            ACTORS.len()
        );
        assert!(
            failures.is_empty(),
            "{} of {checked} checks failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        inst.stop().await;
        db.cleanup().await;
    }
}

/// Links an upstream identity to `uid` in tenant `tid`; its id.
async fn linked_identity(inst: &Instance, tid: &str, uid: &str) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let row = tansu_identity::store::federation::FederatedIdentityRow {
        id: id.clone(),
        tenant_id: tid.to_owned(),
        provider_id: "matrix-provider".into(),
        issuer: "https://op.example".into(),
        subject: id.clone(),
        user_id: uid.to_owned(),
        email: None,
        created_at: 0,
        last_used_at: 0,
    };
    inst.state
        .store
        .insert_federated_identity(&row)
        .await
        .unwrap();
    id
}
