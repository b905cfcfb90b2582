//! The dashboard's authorization matrix: every route of the dashboard, taken from its route
//! table, against every kind of actor, on the real stack with the real identity, asserting the
//! status `docs/authorization.md` ("## dashboard") writes down — and that a refused request
//! changed nothing at identity. A route without a row (or a row without a route) fails the
//! test, so the table cannot drift from the code.
//!
//! The other tenant's admin is also sent every item route with their own tenant's id and
//! tenant A's item (a user, a provider, a secret): the dashboard lets the tenant through (it is
//! theirs), and identity must not find A's item under it (404).

#[path = "dashboard/common.rs"]
mod common;

use std::collections::BTreeSet;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The actors, in the document's column order.
const ACTORS: [&str; 5] = ["anonymous", "member", "admin", "other", "platform"];

struct Row {
    method: Method,
    /// The path with its placeholders, and the query the row adds.
    path: String,
    query: Option<String>,
    expect: Vec<u16>,
}

/// The rows of the "## dashboard" section of `docs/authorization.md`.
fn table() -> Vec<Row> {
    let doc = include_str!("../../docs/authorization.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("dashboard\n"))
        .expect("a \"## dashboard\" section");
    let rows: Vec<Row> = section
        .lines()
        .filter(|l| l.starts_with("| GET `") || l.starts_with("| POST `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 1 + ACTORS.len(), "row: {line}");
            let (method, target) = cells[0].split_once(' ').expect("METHOD `/path`");
            let target = target.trim_matches('`');
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
                None => (target.to_owned(), None),
            };
            Row {
                method: method.parse().unwrap(),
                path,
                query,
                expect: cells[1..]
                    .iter()
                    .map(|c| c.parse().expect("a status"))
                    .collect(),
            }
        })
        .collect();
    assert!(rows.len() > 30, "the dashboard's route table was not found");
    rows
}

/// Tenant A's items the requests aim at, and tenant B.
struct World {
    a: String,
    b: String,
    uid: String,
    provider: String,
    secret: String,
    client: String,
    idp: String,
    counter: std::cell::Cell<u32>,
}

impl World {
    fn fresh(&self, what: &str) -> String {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        format!("{what}-{n}")
    }
}

async fn put_secret(api: &AdminApi, tid: &str, name: &str) {
    let (status, v) = api
        .call(
            Method::PUT,
            &format!("admin/tenants/{tid}/secrets/{name}"),
            Some(json!({"value": "matrix-value"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
}

async fn setup(api: &AdminApi, idp: &str) -> World {
    let a = api.create_tenant("matrix-a", "Matrix A").await;
    let b = api.create_tenant("matrix-b", "Matrix B").await;
    api.create_member(&a, "owner@matrix-a.example", "Owner")
        .await;
    api.create_member(&a, "member@matrix-a.example", "User")
        .await;
    api.create_member(&b, "owner@matrix-b.example", "Owner")
        .await;
    let uid = api
        .create_member(&a, "target@matrix-a.example", "User")
        .await;
    let provider = api.create_provider(&a, "Matrix IdP", idp).await;
    put_secret(api, &a, "matrix-secret").await;
    let (status, client) = api
        .call(
            Method::POST,
            "admin/clients",
            Some(json!({"name": "Matrix client", "grant_types": ["client_credentials"]})),
        )
        .await;
    assert_eq!(status, 201, "{client}");
    World {
        a,
        b,
        uid,
        provider,
        secret: "matrix-secret".into(),
        client: client["client_id"].as_str().unwrap().to_owned(),
        idp: idp.to_owned(),
        counter: std::cell::Cell::new(0),
    }
}

/// Identity's state a refused request must leave as it was: the tenants, both tenants'
/// members, invitations, providers, secrets, mail templates and events, the clients and the
/// signing keys.
async fn snapshot(api: &AdminApi, w: &World) -> Vec<Value> {
    let mut paths = vec![
        "admin/tenants?limit=500".to_owned(),
        "admin/clients?limit=500".to_owned(),
    ];
    for t in [&w.a, &w.b] {
        for kind in [
            "users?limit=500",
            "invitations",
            "providers",
            "secrets",
            "mail-templates",
        ] {
            paths.push(format!("admin/tenants/{t}/{kind}"));
        }
        paths.push(format!("admin/security-events?limit=1000&tenant={t}"));
    }
    let mut out = Vec::new();
    for p in &paths {
        out.push(api.get(p).await);
    }
    // The keys' ids (their states move with the clock).
    let keys = api.get("admin/keys/policies").await;
    out.push(json!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].clone())
            .collect::<Vec<_>>()
    ));
    out
}

/// One signed-in actor (or none): its browser and CSRF token.
struct Actor {
    browser: Browser,
    csrf: String,
}

async fn actors(f: &Fixture) -> Vec<Actor> {
    let mut out = Vec::new();
    for (i, name) in ACTORS.iter().enumerate() {
        let mut b = Browser::new(&f.certificate_pem);
        let (email, password) = match *name {
            "anonymous" => {
                out.push(Actor {
                    browser: b,
                    csrf: "x".into(),
                });
                continue;
            }
            "member" => ("member@matrix-a.example", OWNER_PASSWORD),
            "admin" => ("owner@matrix-a.example", OWNER_PASSWORD),
            "other" => ("owner@matrix-b.example", OWNER_PASSWORD),
            _ => (ADMIN, PASSWORD),
        };
        let landed = sign_in_landing(&mut b, &f.base, "", email, password).await;
        let want = if i == 1 {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::OK
        };
        assert_eq!(landed.status, want, "{name}: {}", landed.body);
        out.push(Actor {
            csrf: hidden(&landed.body, "csrf"),
            browser: b,
        });
    }
    out
}

/// The request of a row: its URL and, for a form, its fields — about tenant `tid` (A, or the
/// other admin's own B). A destructive action that is expected to succeed gets an item of
/// its own (a provider to delete, a secret to revoke), so the stable items stay.
async fn concrete(
    api: &AdminApi,
    w: &World,
    row: &Row,
    tid: &str,
    ok: bool,
    csrf: &str,
) -> (String, Vec<(String, String)>) {
    let mut provider = w.provider.clone();
    let mut secret = w.secret.clone();
    if ok && row.method == Method::POST && row.path.ends_with("/delete") {
        let name = w.fresh("doomed");
        provider = api
            .create_provider(&w.a, &name, &format!("{}/{name}", w.idp))
            .await;
    }
    if ok && row.method == Method::POST && row.path.ends_with("/revoke") {
        secret = w.fresh("doomed");
        put_secret(api, &w.a, &secret).await;
    }
    let fill = |s: &str| {
        s.replace("{tid}", tid)
            .replace("{uid}", &w.uid)
            .replace("{id}", &provider)
            .replace("{name}", &secret)
            .replace("{client_id}", &w.client)
    };
    let mut url = fill(&row.path).trim_start_matches('/').to_owned();
    if let Some(q) = &row.query {
        url = format!("{url}?{}", fill(q));
    }
    let mut form: Vec<(String, String)> = Vec::new();
    if row.method == Method::POST {
        let mut add = |k: &str, v: &str| form.push((k.to_owned(), v.to_owned()));
        add("csrf", csrf);
        add("tenant", tid);
        add("confirm", "yes");
        match row.path.as_str() {
            "/tenants" => {
                add("slug", &w.fresh("matrix-t"));
                add("name", "Matrix T");
            }
            "/tenants/{tid}/status" => add("to", "activate"),
            "/users" => {
                add("email", &format!("{}@matrix-a.example", w.fresh("invited")));
                add("name", "Invited");
                add("role", "User");
            }
            "/users/{uid}/status" | "/admin/providers/{id}/status" => add("to", "enable"),
            "/users/{uid}/password" => add("password", "a matrix passphrase 1234"),
            "/users/{uid}/roles" => {
                add("role", "User");
                add("action", "assign");
            }
            "/clients" => {
                add("name", &w.fresh("Matrix client"));
                add("client_type", "confidential");
                add("grant_types", "client_credentials");
            }
            "/admin/providers" => {
                let name = w.fresh("matrix-idp");
                add("name", &name);
                add("issuer", &format!("{}/{name}", w.idp));
                add("client_id", "c");
                add("scopes", "openid");
            }
            "/admin/providers/{id}" => {
                add("name", &w.fresh("Matrix IdP"));
                add("issuer", &w.idp);
                add("client_id", "c");
                add("scopes", "openid");
            }
            "/settings" => {
                add("password_min_length", "12");
                add("lockout_threshold", "5");
                add("lockout_duration_secs", "900");
            }
            "/secrets" => {
                add("name", &w.fresh("matrix-s"));
                add("value", "v");
            }
            "/mail-templates" => {
                add("kind", "new_sign_in");
                add("subject", "Matrix {{product}}");
                add("body", &format!("{} {{{{link}}}}", w.fresh("matrix")));
            }
            _ => {}
        }
    }
    (url, form)
}

async fn send(
    b: &mut Browser,
    base: &str,
    method: &Method,
    url: &str,
    form: &[(String, String)],
) -> Page {
    let url = format!("{base}{url}");
    if *method == Method::POST {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        b.post(&url, &form).await
    } else {
        b.get(&url).await
    }
}

#[tokio::test]
async fn every_dashboard_route_answers_every_actor_as_the_policy_table_says() {
    matrix(stack(), "sqlite").await;
}

#[tokio::test]
async fn every_dashboard_route_answers_every_actor_as_the_policy_table_says_on_postgres() {
    if let Some(f) = stack_on_postgres() {
        matrix(f, "postgres").await;
    }
}

/// The matrix on one stack (`store`: identity's store, for the report).
async fn matrix(f: &Fixture, store: &str) {
    let rows = table();

    // The table and the router name the same routes.
    let documented: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.method.to_string(), r.path.clone()))
        .collect();
    let routed = tansu_shared::testing::http::routed_methods(
        &format!("http://{}", f.dashboard),
        tansu_dashboard::routes().paths(),
    )
    .await;
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "docs/authorization.md (## dashboard) and the dashboard's router differ:\n  routes \
         without a policy row: {undocumented:?}\n  rows without a route: {unrouted:?}"
    );

    let api = AdminApi::on(f).await;
    let (idp, idp_issuer) = external_provider().await;
    let world = setup(&api, &idp_issuer).await;
    let mut actors = actors(f).await;

    // Sign-out ends the actor's session: last.
    let mut order: Vec<&Row> = rows.iter().filter(|r| r.path != "/logout").collect();
    order.extend(rows.iter().filter(|r| r.path == "/logout"));

    let mut failures = Vec::new();
    let mut checked = 0;
    // Item names that the URL parser would resolve away are no items: the role `..` would make
    // "revoke" a `DELETE …/users/{uid}/` at identity (today a route that does not exist, so
    // 404 either way; the dashboard refuses such a call before it is sent).
    for (actor, role) in [(2, ".."), (4, ".."), (2, ".")] {
        let a = &mut actors[actor];
        let form: Vec<(String, String)> = [
            ("csrf", a.csrf.as_str()),
            ("tenant", world.a.as_str()),
            ("role", role),
            ("action", "revoke"),
            ("confirm", "yes"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let url = format!("users/{}/roles", world.uid);
        let before = snapshot(&api, &world).await;
        let r = send(&mut a.browser, &f.base, &Method::POST, &url, &form).await;
        checked += 1;
        let what = format!("POST /{url} role={role} as {}", ACTORS[actor]);
        if r.status != StatusCode::NOT_FOUND {
            failures.push(format!("{what}: {}, expected 404", r.status));
        }
        if snapshot(&api, &world).await != before {
            failures.push(format!("{what}: it changed identity's state"));
        }
    }
    for row in order {
        for (i, actor) in ACTORS.iter().enumerate() {
            let expect = row.expect[i];
            let refused = matches!(expect, 401 | 403 | 404 | 400) && row.path != "/callback";
            let ok = !refused;
            let a = &mut actors[i];
            let (url, form) = concrete(&api, &world, row, &world.a, ok, &a.csrf).await;
            let before = if refused {
                Some(snapshot(&api, &world).await)
            } else {
                None
            };
            let r = send(&mut a.browser, &f.base, &row.method, &url, &form).await;
            checked += 1;
            let what = format!("{} /{url} as {actor}", row.method);
            if r.status.as_u16() != expect {
                failures.push(format!(
                    "{what}: {}, expected {expect}: {}",
                    r.status,
                    r.body.chars().take(300).collect::<String>()
                ));
            } else if expect == 303
                && i == 0
                && row.method == Method::GET
                && row.path != "/login"
                && !r
                    .location
                    .starts_with(&format!("{}login?return_to=", f.base))
            {
                failures.push(format!("{what}: 303 to {}, not to sign-in", r.location));
            }
            if let Some(before) = before
                && snapshot(&api, &world).await != before
            {
                failures.push(format!("{what}: refused, but it changed identity's state"));
            }
        }
        // The other tenant's admin with their own tenant and A's item: not found at identity.
        let item = ["{uid}", "{id}", "{name}"]
            .iter()
            .any(|p| row.path.contains(p));
        let confirm_page = row.method == Method::GET && row.path.starts_with("/secrets/");
        if item && !confirm_page {
            let a = &mut actors[3];
            let (url, form) = concrete(&api, &world, row, &world.b, false, &a.csrf).await;
            let before = snapshot(&api, &world).await;
            let r = send(&mut a.browser, &f.base, &row.method, &url, &form).await;
            checked += 1;
            let what = format!("{} /{url} as other with their own tenant", row.method);
            if r.status != StatusCode::NOT_FOUND {
                failures.push(format!("{what}: {}, expected 404", r.status));
            }
            if snapshot(&api, &world).await != before {
                failures.push(format!("{what}: refused, but it changed identity's state"));
            }
        }
    }
    println!(
        "dashboard authorization matrix ({store}): {} routes x {} actors = {} checks ({checked} \
         requests with the other admin's own-tenant item checks)",
        rows.len(),
        ACTORS.len(),
        rows.len() * ACTORS.len(),
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    idp.stop().await;
}
