//! Registration: tenant + database + vault + owner + role + events, all or nothing —
//! over real HTTP, on SQLite and (when configured) PostgreSQL. Failures are forced for real:
//! the in-process provisioner is told to fail, and a database trigger makes one table refuse
//! inserts.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{Value, json};
use tansu_identity::provisioning::{InProcessProvisioner, Provisioner};
use tansu_identity::store::Store;

const SUITE: &str = "identity registration";

async fn start(db: &TestDb, prov: &Arc<InProcessProvisioner>) -> Instance {
    let p = prov.clone() as Arc<dyn Provisioner>;
    Instance::start_with(
        db,
        "",
        |_| {},
        move |s| {
            s.services_mut().expect("not shared yet").provisioner = Some(p);
        },
    )
    .await
}

async fn break_table(store: &Store, table: &str) {
    let trigger = match store {
        Store::Sqlite(..) => format!(
            "CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'forced failure'); END"
        ),
        Store::Postgres(_) => {
            raw_exec(
                store,
                "CREATE OR REPLACE FUNCTION tansu_forced_failure() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'forced failure'; END $$",
                &[],
            )
            .await;
            format!(
                "CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION tansu_forced_failure()"
            )
        }
    };
    raw_exec(store, &trigger, &[]).await
}

async fn fix_table(store: &Store, table: &str) {
    let on = match store {
        Store::Sqlite(..) => String::new(),
        Store::Postgres(_) => format!(" ON {table}"),
    };
    raw_exec(store, &format!("DROP TRIGGER fail_{table}{on}"), &[]).await
}

impl Instance {
    async fn register_json(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send_ok().await;
        let status = resp.status().as_u16();
        if status >= 400 {
            assert_eq!(
                resp.headers()["content-type"],
                "application/problem+json",
                "errors are problem+json"
            );
        }
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Exactly `n` registrations' worth of rows and databases, nothing else.
async fn assert_rows(id: &Instance, prov: &InProcessProvisioner, n: i64, what: &str) {
    let s = &id.state.store;
    let rows = [
        ("tenants", "SELECT COUNT(*) FROM tenants", n),
        (
            "users",
            "SELECT COUNT(*) FROM users WHERE email <> 'admin@tansu.local'",
            n,
        ),
        ("memberships", "SELECT COUNT(*) FROM memberships", n),
        ("data keys", "SELECT COUNT(*) FROM tenant_data_keys", n),
        // The descriptor and the scoped credential.
        ("secrets", "SELECT COUNT(*) FROM tenant_secrets", 2 * n),
        // tenant, user, role, two secret writes.
        (
            "tenant events",
            "SELECT COUNT(*) FROM security_events WHERE tenant_id <> '' \
             AND type IN ('tenant.change', 'user.change', 'role.change', 'secret.write')",
            5 * n,
        ),
        (
            "orphan memberships",
            "SELECT COUNT(*) FROM memberships m WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = m.tenant_id) \
             OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.user_id)",
            0,
        ),
        (
            "orphan secrets",
            "SELECT COUNT(*) FROM tenant_secrets s WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = s.tenant_id)",
            0,
        ),
    ];
    for (name, sql, expected) in rows {
        assert_eq!(raw_count(s, sql).await, expected, "{what}: {name}");
    }
    assert_eq!(
        i64::try_from(prov.live().len()).unwrap(),
        n,
        "{what}: provisioned databases"
    );
}

fn body(i: usize) -> Value {
    json!({
        "email": format!("owner{i}@shop.example"),
        "password": USER_PASSWORD,
        "shop_name": format!("Shop {i}"),
    })
}

/// Posts the registration form as a browser holding the page's CSRF `(cookie, token)`.
async fn submit(
    id: &Instance,
    http: &reqwest::Client,
    (cookie, token): (&str, &str),
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("csrf", token)];
    form.extend_from_slice(fields);
    http.post(id.url("/register"))
        .header("cookie", cookie)
        .form(&form)
        .send_ok()
        .await
}

#[tokio::test]
async fn registration_end_to_end() {
    for db in backends(SUITE).await {
        let prov = Arc::new(InProcessProvisioner::new());
        let id = start(&db, &prov).await;
        let admin = id.admin_token().await;

        // Self-service JSON.
        let (status, v) = id
            .register_json(
                "/registrations",
                None,
                json!({"email": "Owner@Acme.example", "password": USER_PASSWORD, "shop_name": "Acme Shop", "name": "Olga Owner"}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        let tid = v["tenant_id"].as_str().unwrap().to_owned();
        let uid = v["user_id"].as_str().unwrap().to_owned();
        assert_eq!(uuid::Uuid::parse_str(&tid).unwrap().get_version_num(), 7);
        assert_eq!(v["slug"], "acme-shop");
        assert_eq!(prov.live(), vec![tid.clone()]);

        // The tenant, the owner with role Owner.
        let (status, t) = id.get_as(&format!("/admin/tenants/{tid}"), &admin).await;
        assert_eq!(status, 200);
        assert_eq!(
            (t["name"].as_str(), t["status"].as_str()),
            (Some("Acme Shop"), Some("active"))
        );
        let (status, m) = id
            .get_as(&format!("/admin/tenants/{tid}/users/{uid}"), &admin)
            .await;
        assert_eq!(status, 200, "{m}");
        assert_eq!(m["roles"], json!(["Owner"]));
        assert_eq!(m["email"], "owner@acme.example");

        // The database descriptor and credential are in the vault, sealed.
        let (status, d) = id
            .get_as(&format!("/admin/tenants/{tid}/secrets/database"), &admin)
            .await;
        assert_eq!(status, 200, "{d}");
        let descriptor: Value = serde_json::from_str(d["value"].as_str().unwrap()).unwrap();
        assert_eq!(descriptor["tenant"], tid.as_str());
        let (status, c) = id
            .get_as(
                &format!("/admin/tenants/{tid}/secrets/database-credential"),
                &admin,
            )
            .await;
        assert_eq!(status, 200, "{c}");
        assert_eq!(c["value"], format!("in-process-credential-{tid}"));
        let plaintext = format!("memory:{tid}");
        let raw = raw_bytes(&id.state.store, "SELECT ciphertext FROM tenant_secrets").await;
        assert_eq!(raw.len(), 2);
        for blob in raw {
            assert!(
                !blob
                    .windows(plaintext.len())
                    .any(|w| w == plaintext.as_bytes())
                    && !blob.windows(10).any(|w| w == b"credential"),
                "secrets are stored sealed"
            );
        }

        // Security events, chained.
        let (status, ev) = id
            .get_as(&format!("/admin/security-events?tenant={tid}"), &admin)
            .await;
        assert_eq!(status, 200);
        let kinds: Vec<&str> = ev["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        for k in [
            "tenant.change",
            "user.change",
            "role.change",
            "secret.write",
        ] {
            assert!(kinds.contains(&k), "{k} in {kinds:?}");
        }
        let (status, verify) = id
            .get_as(
                &format!("/admin/security-events/verify?tenant={tid}"),
                &admin,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(verify["ok"], true, "{verify}");

        // The owner signs in to the new tenant.
        let app = id.tenant_app().await;
        let access = id
            .user_access(
                &app,
                "owner@acme.example",
                USER_PASSWORD,
                "openid roles admin.tenant",
                None,
            )
            .await;
        let claims = jwt_claims(&access);
        assert_eq!(claims["tid"], tid.as_str());
        assert_eq!(claims["roles"], json!(["Owner"]));

        // The admin API: platform admins only.
        let (status, v) = id
            .register_json("/admin/registrations", Some(&admin), json!({"email": "second@shop.example", "password": USER_PASSWORD, "shop_name": "Second", "slug": "second-shop"}))
            .await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["slug"], "second-shop");
        let (status, _) = id
            .register_json("/admin/registrations", None, body(90))
            .await;
        assert_eq!(status, 401);
        let (status, _) = id
            .register_json("/admin/registrations", Some(&access), body(91))
            .await;
        assert_eq!(status, 403, "a tenant owner is no platform admin");
        assert_rows(&id, &prov, 2, "after two registrations").await;

        // The HTML form, entered from the login page with an authorization request: the new
        // owner is signed in and the authorization continues to the client's redirect URI.
        let (verifier, challenge) = pkce();
        let query = format!(
            "response_type=code&client_id={app}&redirect_uri={}&scope=openid%20roles&state=st&code_challenge={challenge}&code_challenge_method=S256",
            form_encode("https://app.example/cb")
        );
        let http = no_redirects();
        let login = id
            .authorize(&http, &query, None)
            .await
            .text()
            .await
            .unwrap();
        assert!(login.contains("Create a shop"), "{login}");
        let resp = http
            .get(id.url(&format!("/register?{query}")))
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200);
        let csrf_cookie = set_cookie(&resp, "tansu_csrf").unwrap();
        let page = resp.text().await.unwrap();
        assert!(page.contains("Create your shop"), "{page}");
        let csrf = hidden_field(&page, "csrf").unwrap();
        assert_eq!(hidden_field(&page, "request").unwrap(), query);
        let resp = submit(
            &id,
            &http,
            (&csrf_cookie, &csrf),
            &[
                ("request", &query),
                ("email", "html@shop.example"),
                ("password", USER_PASSWORD),
                ("shop_name", "Html Shop"),
                ("slug", ""),
            ],
        )
        .await;
        assert_eq!(resp.status(), 303);
        assert!(set_cookie(&resp, "tansu_session").is_some(), "signed in");
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with("https://app.example/cb?"),
            "{location}"
        );
        assert_eq!(query_param(&location, "state").as_deref(), Some("st"));
        let code = query_param(&location, "code").unwrap();
        let resp = id
            .redeem(&app, &code, "https://app.example/cb", Some(&verifier))
            .await;
        assert_eq!(resp.status(), 200);
        let t: Value = resp.json().await.unwrap();
        let claims = jwt_claims(t["access_token"].as_str().unwrap());
        assert_eq!(claims["roles"], json!(["Owner"]));
        let html_tid = claims["tid"].as_str().unwrap().to_owned();
        let (_, t) = id
            .get_as(&format!("/admin/tenants/{html_tid}"), &admin)
            .await;
        assert_eq!(t["slug"], "html-shop");

        // return_to: only a URI the named client registered; without anything, a page here.
        for bad in [
            format!(
                "client_id={app}&return_to={}",
                form_encode("https://evil.example/")
            ),
            format!("return_to={}", form_encode("https://app.example/cb")),
            format!(
                "client_id=nope&return_to={}",
                form_encode("https://app.example/cb")
            ),
        ] {
            let resp = http
                .get(id.url(&format!("/register?{bad}")))
                .send_ok()
                .await;
            assert_eq!(resp.status(), 400, "{bad}");
        }
        let resp = submit(
            &id,
            &http,
            (&csrf_cookie, &csrf),
            &[
                ("client_id", &app),
                ("return_to", "https://evil.example/"),
                ("email", "evil@shop.example"),
                ("password", USER_PASSWORD),
                ("shop_name", "Evil"),
            ],
        )
        .await;
        assert_eq!(resp.status(), 400, "no open redirect");
        let resp = submit(
            &id,
            &http,
            (&csrf_cookie, &csrf),
            &[
                ("client_id", &app),
                ("return_to", "https://app.example/cb"),
                ("email", "back@shop.example"),
                ("password", USER_PASSWORD),
                ("shop_name", "Back Shop"),
            ],
        )
        .await;
        assert_eq!(resp.status(), 303);
        assert_eq!(resp.headers()["location"], "https://app.example/cb");
        let resp = submit(
            &id,
            &http,
            (&csrf_cookie, &csrf),
            &[
                ("email", "plain@shop.example"),
                ("password", USER_PASSWORD),
                ("shop_name", "Plain Shop"),
            ],
        )
        .await;
        assert_eq!(resp.status(), 201);
        assert!(resp.text().await.unwrap().contains("Your shop is ready"));
        assert_rows(&id, &prov, 5, "after five registrations").await;

        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_failure_at_each_step_leaves_nothing_and_a_retry_succeeds() {
    for db in backends(SUITE).await {
        let prov = Arc::new(InProcessProvisioner::new());
        let id = start(&db, &prov).await;
        let store = id.state.store.clone();
        // Provisioning, then the transaction's inserts in order: tenant, vault, user, role,
        // events.
        let steps = [
            "provisioning",
            "tenants",
            "tenant_secrets",
            "users",
            "memberships",
            "security_events",
        ];
        for (i, step) in steps.iter().enumerate() {
            let what = format!("{} forced failure at {step}", db.name());
            if *step == "provisioning" {
                prov.fail_provision(true);
            } else {
                break_table(&store, step).await;
            }
            let (status, v) = id.register_json("/registrations", None, body(i)).await;
            assert!(status >= 500, "{what}: {status} {v}");
            assert!(
                v["detail"].as_str().unwrap_or("").len() < 200
                    && !v.to_string().contains("forced failure"),
                "{what}: internal errors are not echoed: {v}"
            );
            let n = i64::try_from(i).unwrap();
            assert_rows(&id, &prov, n, &what).await;
            assert_eq!(
                raw_count(
                    &store,
                    &format!("SELECT COUNT(*) FROM users WHERE email = 'owner{i}@shop.example'")
                )
                .await,
                0,
                "{what}: no user"
            );

            if *step == "provisioning" {
                prov.fail_provision(false);
            } else {
                fix_table(&store, step).await;
            }
            let (status, v) = id.register_json("/registrations", None, body(i)).await;
            assert_eq!(status, 201, "{what}: retry: {v}");
            assert_eq!(
                v["slug"],
                format!("shop-{i}"),
                "{what}: the slug was not kept"
            );
            assert_rows(&id, &prov, n + 1, &format!("{what}, retried")).await;
            // Retrying a completed registration changes nothing.
            let (status, v) = id.register_json("/registrations", None, body(i)).await;
            assert_eq!(status, 409, "{what}: {v}");
            assert_rows(&id, &prov, n + 1, &format!("{what}, repeated")).await;
        }
        assert_eq!(prov.provisioned_total(), steps.len() * 2 - 1);

        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn bad_input_duplicates_csrf_and_closed_registration() {
    for db in backends(SUITE).await {
        let prov = Arc::new(InProcessProvisioner::new());
        let id = start(&db, &prov).await;
        let (status, _) = id.register_json("/registrations", None, body(1)).await;
        assert_eq!(status, 201);

        for (bad, field) in [
            (
                json!({"email": "x@shop.example", "password": "short", "shop_name": "S1"}),
                "password",
            ),
            (
                json!({"email": "x@shop.example", "password": "password1234", "shop_name": "S1"}),
                "password",
            ),
            (
                json!({"email": "samuel@shop.example", "password": "samuel-is-my-name-ok", "shop_name": "S1"}),
                "password",
            ),
            (
                json!({"email": "not-an-email", "password": USER_PASSWORD, "shop_name": "S1"}),
                "email",
            ),
            (
                json!({"email": "x@shop.example", "password": USER_PASSWORD, "shop_name": ""}),
                "shop_name",
            ),
            (
                json!({"email": "x@shop.example", "password": USER_PASSWORD, "shop_name": "S", "slug": "Bad Slug"}),
                "slug",
            ),
        ] {
            let (status, v) = id.register_json("/registrations", None, bad.clone()).await;
            assert_eq!(status, 422, "{bad}: {v}");
            assert_eq!(v["type"], "urn:tansu:problem:validation", "{v}");
            assert!(v["detail"].as_str().unwrap().contains(field), "{v}");
            assert!(
                !v.to_string().contains("samuel-is-my-name-ok"),
                "passwords are not echoed"
            );
        }
        // Duplicates: the email (any case), the slug.
        let mut dup = body(1);
        dup["email"] = json!("OWNER1@shop.example");
        dup["shop_name"] = json!("Another");
        let (status, v) = id.register_json("/registrations", None, dup).await;
        assert_eq!(status, 409, "{v}");
        assert_eq!(v["type"], "urn:tansu:problem:email-taken");
        assert!(v.get("user_id").is_none() && v.get("tenant_id").is_none());
        let (status, v) = id
            .register_json(
                "/registrations",
                None,
                json!({"email": "other@shop.example", "password": USER_PASSWORD, "shop_name": "X", "slug": "shop-1"}),
            )
            .await;
        assert_eq!(status, 409, "{v}");
        assert_eq!(v["type"], "urn:tansu:problem:slug-taken");
        // The same shop name without a slug gets a free one.
        let (status, v) = id
            .register_json(
                "/registrations",
                None,
                json!({"email": "other@shop.example", "password": USER_PASSWORD, "shop_name": "Shop 1"}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        assert!(v["slug"].as_str().unwrap().starts_with("shop-1-"), "{v}");
        // Not JSON; unknown fields; malformed.
        let resp = id
            .http
            .post(id.url("/registrations"))
            .form(&[("email", "f@shop.example")])
            .send_ok()
            .await;
        assert_eq!(resp.status(), 415);
        let mut extra = body(5);
        extra["admin"] = json!(true);
        assert_eq!(id.register_json("/registrations", None, extra).await.0, 400);
        let resp = id
            .http
            .post(id.url("/registrations"))
            .header("content-type", "application/json")
            .body("{\"email\": ")
            .send_ok()
            .await;
        assert_eq!(resp.status(), 400);
        assert_rows(&id, &prov, 2, "after refusals").await;

        // The form: CSRF missing or wrong → 403; errors are shown on the form, no password.
        let http = no_redirects();
        let resp = http.get(id.url("/register")).send_ok().await;
        assert_eq!(resp.status(), 200);
        let csrf_cookie = set_cookie(&resp, "tansu_csrf").unwrap();
        let csrf = hidden_field(&resp.text().await.unwrap(), "csrf").unwrap();
        let fields = [
            ("email", "form@shop.example"),
            ("password", USER_PASSWORD),
            ("shop_name", "Form Shop"),
        ];
        let resp = http.post(id.url("/register")).form(&fields).send_ok().await;
        assert_eq!(resp.status(), 403, "no CSRF token");
        let mut with_wrong = fields.to_vec();
        with_wrong.push(("csrf", "x".repeat(43).leak()));
        let resp = http
            .post(id.url("/register"))
            .header("cookie", &csrf_cookie)
            .form(&with_wrong)
            .send_ok()
            .await;
        assert_eq!(resp.status(), 403, "wrong CSRF token");
        let weak = "tiny-pass";
        let resp = submit(
            &id,
            &http,
            (&csrf_cookie, &csrf),
            &[
                ("email", "form@shop.example"),
                ("password", weak),
                ("shop_name", "Form Shop"),
            ],
        )
        .await;
        assert_eq!(resp.status(), 422);
        let page = resp.text().await.unwrap();
        assert!(
            page.contains("role=\"alert\"") && page.contains("at least 12"),
            "{page}"
        );
        assert!(page.contains("form@shop.example") && !page.contains(weak));
        let resp = submit(
            &id,
            &http,
            (&csrf_cookie, &csrf),
            &[
                ("email", "owner1@shop.example"),
                ("password", USER_PASSWORD),
                ("shop_name", "Form Shop"),
            ],
        )
        .await;
        assert_eq!(resp.status(), 409);
        assert!(resp.text().await.unwrap().contains("already exists"));
        assert_rows(&id, &prov, 2, "after form refusals").await;
        id.stop().await;

        // Closed self-service: 404; platform admins still register. Without a provisioner: 503.
        let id = Instance::start(&db, "", |c| c.registration_enabled = Some(false)).await;
        assert_eq!(
            id.register_json("/registrations", None, body(7)).await.0,
            404
        );
        assert_eq!(
            no_redirects()
                .get(id.url("/register"))
                .send_ok()
                .await
                .status(),
            404
        );
        let (status, v) = id
            .register_json(
                "/admin/registrations",
                Some(&id.admin_token().await),
                body(7),
            )
            .await;
        assert_eq!(status, 503, "no database_service_url: {v}");
        assert_eq!(v["type"], "urn:tansu:problem:registration-unavailable");
        id.stop().await;
        db.cleanup().await;
    }
}

/// The same registration sent twice at once (a double submit): one shop, one owner, one
/// database; the loser answers 409 and its database is deprovisioned again.
#[tokio::test]
async fn concurrent_duplicates_end_with_one_tenant() {
    for db in backends(SUITE).await {
        let prov = Arc::new(InProcessProvisioner::new());
        let id = start(&db, &prov).await;
        let (a, b) = futures::join!(
            id.register_json("/registrations", None, body(1)),
            id.register_json("/registrations", None, body(1)),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
        assert_rows(&id, &prov, 1, &format!("{} double submit", db.name())).await;
        id.stop().await;
        db.cleanup().await;
    }
}
