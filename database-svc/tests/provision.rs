//! Provisioning: idempotent, soft delete with retention, purge, reprovision; 200 tenants on
//! PostgreSQL within a bounded number of connections.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tansu_shared::testing::http::SendOk;
use uuid::Uuid;

#[tokio::test]
async fn provisioning_is_idempotent_and_survives_deprovision_and_purge() {
    // Retention 0: deprovisioned databases may be purged at once (the test purges explicitly;
    // the background purge runs hourly).
    for env in envs_with("database provisioning", |c| c.retention_secs = 0).await {
        let n = env.name;
        let t = Uuid::now_v7();
        let path = format!("/provision/{t}");
        let resp = env
            .req(Method::PUT, &path, &env.platform(), None)
            .send_ok()
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{n}");
        let first: Value = resp.json().await.unwrap();
        assert_eq!(first["status"], "active");
        let resp = env
            .req(Method::PUT, &path, &env.platform(), None)
            .send_ok()
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{n}: second provision");
        let second: Value = resp.json().await.unwrap();
        assert!(
            !second.to_string().to_lowercase().contains("password"),
            "{n}: an idempotent repeat hands out no secret: {second}"
        );
        assert_eq!(first["database"], second["database"], "{n}: same database");
        assert_eq!(first["created_at"], second["created_at"]);
        if env.name == "postgres" {
            assert_eq!(first["backend"], "postgres");
            assert_eq!(first["role"], first["database"]);
            assert_public_cannot_connect(&env, first["database"].as_str().unwrap()).await;
        } else {
            assert_eq!(first["database"], format!("{t}.db"));
            assert!(
                env.config
                    .data_dir
                    .join("tenants")
                    .join(format!("{t}.db"))
                    .exists()
            );
        }

        assert_eq!(
            applied_migrations(&env, first["database"].as_str().unwrap()).await,
            [
                (1, "documents_and_outbox".to_owned()),
                (2, "changes_floor".to_owned())
            ],
            "{n}: tenant migrations recorded"
        );
        let metrics = env.http.get(env.url("/metrics")).send_text().await;
        assert!(
            metrics.contains("tansu_database_open_tenant_pools"),
            "{n}: {metrics}"
        );
        env.create_collection(t, "notes").await;
        let put = |body: Value| {
            env.as_tenant(Method::PUT, "/api/collections/notes/documents/n1", t)
                .json(&body)
                .send_ok()
        };
        assert_eq!(put(json!({"v": 1})).await.status(), StatusCode::CREATED);

        // Soft delete: the API stops answering; reprovision within retention restores the data.
        let resp = env
            .req(Method::DELETE, &path, &env.platform(), None)
            .send_ok()
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{n}");
        let d: Value = resp.json().await.unwrap();
        assert_eq!(d["status"], "deleted");
        assert!(d["purge_after"].is_string());
        let resp = env.get(t, "/api/collections/notes/documents/n1").await;
        let p = problem(resp, StatusCode::NOT_FOUND, n).await;
        assert_eq!(p["type"], "urn:tansu:problem:tenant-not-provisioned");
        let resp = env
            .req(Method::PUT, &path, &env.platform(), None)
            .send_ok()
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{n}: restored");
        let resp = env.get(t, "/api/collections/notes/documents/n1").await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{n}: data kept within retention"
        );

        // Deprovision, purge: the database is gone; provisioning again starts empty.
        env.req(Method::DELETE, &path, &env.platform(), None)
            .send_ok()
            .await;
        let resp = env
            .req(Method::POST, "/provision/purge", &env.platform(), None)
            .send_ok()
            .await;
        let purged: Value = resp.json().await.unwrap();
        assert_eq!(purged["purged"], 1, "{n}");
        let resp = env
            .req(Method::GET, &path, &env.platform(), None)
            .send_ok()
            .await;
        problem(resp, StatusCode::NOT_FOUND, n).await;
        if env.name == "postgres" {
            assert!(!pg_database_exists(&env, first["database"].as_str().unwrap()).await);
        } else {
            assert!(
                !env.config
                    .data_dir
                    .join("tenants")
                    .join(format!("{t}.db"))
                    .exists()
            );
        }
        let resp = env
            .req(Method::PUT, &path, &env.platform(), None)
            .send_ok()
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{n}: fresh");
        let resp = env.get(t, "/api/collections").await;
        let list: Value = resp.json().await.unwrap();
        assert_eq!(list["collections"], json!([]), "{n}: empty after purge");

        // Deprovisioning an unknown tenant is a 404.
        let resp = env
            .req(
                Method::DELETE,
                &format!("/provision/{}", Uuid::now_v7()),
                &env.platform(),
                None,
            )
            .send_ok()
            .await;
        problem(resp, StatusCode::NOT_FOUND, n).await;
        env.finish().await;
    }
}

#[tokio::test]
async fn provisioning_requires_the_provision_scope() {
    for env in envs("database provisioning scope").await {
        let n = env.name;
        let path = format!("/provision/{TENANT_A}");
        let resp = env.http.put(env.url(&path)).send_ok().await;
        problem(resp, StatusCode::UNAUTHORIZED, n).await;
        let resp = env
            .req(
                Method::PUT,
                &path,
                &env.token(Some(TENANT_A), "db.read db.write"),
                Some(TENANT_A),
            )
            .send_ok()
            .await;
        problem(resp, StatusCode::FORBIDDEN, n).await;
        // A tenant's token never provisions, even carrying db.provision, even for itself.
        for path in [path.clone(), format!("/provision/{TENANT_B}")] {
            let token = env.token(Some(TENANT_A), "db.provision db.read db.write");
            let resp = env
                .req(Method::PUT, &path, &token, Some(TENANT_A))
                .send_ok()
                .await;
            problem(resp, StatusCode::FORBIDDEN, n).await;
        }
        // Nor purges, compacts or rotates any tenant's credential, its own included.
        env.provision(TENANT_A).await;
        let token = env.token(Some(TENANT_A), "db.provision");
        for path in [
            "/provision/purge".to_owned(),
            "/provision/compact".to_owned(),
            format!("/provision/{TENANT_A}/credential/rotate"),
            format!("/provision/{TENANT_B}/credential/rotate"),
        ] {
            let resp = env.req(Method::POST, &path, &token, None).send_ok().await;
            problem(resp, StatusCode::FORBIDDEN, n).await;
            let resp = env.http.post(env.url(&path)).send_ok().await;
            problem(resp, StatusCode::UNAUTHORIZED, n).await;
        }
        let resp = env
            .req(Method::PUT, "/provision/not-a-uuid", &env.platform(), None)
            .send_ok()
            .await;
        problem(resp, StatusCode::BAD_REQUEST, n).await;
        // Wrong audience: a storage token is not a database token.
        let mut c = env.issuer.claims();
        c.tid = None;
        c.scope = "db.provision".into();
        c.aud = tansu_shared::auth::Audience::One("tansu.storage".into());
        let token = tansu_shared::testing::issuer::sign(&env.key, &c);
        let resp = env.req(Method::PUT, &path, &token, None).send_ok().await;
        problem(resp, StatusCode::UNAUTHORIZED, n).await;
        env.finish().await;
    }
}

/// 200 tenants on one PostgreSQL server, each its own database, with at most 8 pools of 2
/// connections open at a time.
#[tokio::test]
async fn two_hundred_tenants_on_postgres_without_exhausting_connections() {
    let envs = envs("database 200 tenants").await;
    let Some(env) = envs.into_iter().find(|e| e.name == "postgres") else {
        return;
    };
    let Store::Postgres {
        prefix, admin_url, ..
    } = &env.store
    else {
        unreachable!()
    };
    let started = Instant::now();
    let tenants: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
    let one = |t: Uuid| {
        let env = &env;
        async move {
            env.provision(t).await;
            env.create_collection(t, "c").await;
            assert_eq!(
                env.put(
                    t,
                    "/api/collections/c/documents/only",
                    &json!({"tenant": t.to_string()}),
                )
                .await
                .status(),
                StatusCode::CREATED
            );
        }
    };
    let mut max_conns = 0i64;
    // Four provisioning clients at a time; sample the connections between batches.
    for batch in tenants.chunks(20) {
        futures::stream::iter(batch.iter().copied().map(one))
            .buffer_unordered(4)
            .collect::<Vec<()>>()
            .await;
        max_conns = max_conns.max(tenant_connections(admin_url, prefix).await);
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "bounded in time"
        );
    }
    // Every tenant still reads its own document (pools reopen after eviction).
    for t in tenants.iter().step_by(17) {
        let doc: Value = env.get_json(*t, "/api/collections/c/documents/only").await;
        assert_eq!(doc["data"]["tenant"], t.to_string());
    }
    let dbs = count_databases(admin_url, prefix).await;
    assert_eq!(dbs, 200);
    // 8 pools × 2 connections, plus pools being closed after eviction.
    assert!(max_conns <= 24, "tenant connections peaked at {max_conns}");
    eprintln!(
        "200 tenants provisioned in {:?}; tenant connections peaked at {max_conns}",
        started.elapsed()
    );
    env.finish().await;
}

/// The provisioning answer carries a credential scoped to the tenant's database: on
/// PostgreSQL a login of the tenant's own role (its URL connects to its database and is
/// refused on another tenant's), handed out on creation and on an explicit rotation only; on
/// SQLite the secret-free description of how to reach the document API.
#[tokio::test]
async fn provisioning_returns_a_credential_scoped_to_the_tenants_database() {
    for env in envs("database credential").await {
        let n = env.name;
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let put = |t: Uuid| {
            env.req(
                Method::PUT,
                &format!("/provision/{t}"),
                &env.platform(),
                None,
            )
            .send_ok()
        };
        let resp = put(a).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{n}");
        let da: Value = resp.json().await.unwrap();
        let db: Value = put(b).await.json().await.unwrap();
        let ca = &da["credential"];
        if n == "sqlite" {
            assert_eq!(ca["kind"], "document-api", "{n}: {da}");
            assert_eq!(ca["tenant"], a.to_string());
            assert_eq!(ca["audience"], "tansu.db");
            assert_eq!(ca["tenant_header"], "X-Tansu-Tenant");
            assert!(ca.get("password").is_none());
            // Repeats describe the same access.
            let again: Value = put(a).await.json().await.unwrap();
            assert_eq!(&again["credential"], ca);
            env.finish().await;
            continue;
        }
        assert_eq!(ca["kind"], "postgres", "{n}");
        assert_eq!(ca["user"], da["role"]);
        assert_eq!(ca["database"], da["database"]);
        let password = ca["password"].as_str().unwrap();
        assert!(password.len() >= 43, "256 bits of randomness");
        assert_ne!(password, db["credential"]["password"].as_str().unwrap());
        let url_a = ca["url"].as_str().unwrap().to_owned();
        assert!(url_a.contains(password));

        // Data written through the API is the tenant role's to read over its own login.
        env.create_collection(a, "notes").await;
        assert_eq!(
            env.post(
                a,
                "/api/collections/notes/documents",
                &json!({"text": "hello"}),
            )
            .await
            .status(),
            StatusCode::CREATED
        );
        {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url_a).await.unwrap();
            let (database, user): (String, String) =
                sqlx::query_as("SELECT current_database()::text, current_user::text")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            assert_eq!(database, da["database"].as_str().unwrap());
            assert_eq!(user, da["role"].as_str().unwrap());
            let docs: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(docs, 1);
            conn.close().await.unwrap();
        }
        // The same login on tenant B's database is refused.
        // (Role and database share a name: only the path changes.)
        let other = format!(
            "{}/{}",
            url_a.rsplit_once('/').unwrap().0,
            db["database"].as_str().unwrap()
        );
        assert!(other.contains(&format!("//{}:", da["role"].as_str().unwrap())));
        let refused = {
            use sqlx::Connection;
            sqlx::PgConnection::connect(&other).await
        };
        let Err(err) = refused else {
            panic!("A's login must not reach B's database")
        };
        assert_eq!(
            err.as_database_error().and_then(|e| e.code()).as_deref(),
            Some("42501"),
            "insufficient privilege: {err}"
        );
        // Only a SCRAM verifier is stored (PostgreSQL's own), never the password itself.
        let mut adm = admin(&env).await;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
                .bind(da["role"].as_str().unwrap())
                .fetch_one(&mut adm)
                .await
                .unwrap();
        let stored = stored.unwrap();
        assert!(stored.starts_with("SCRAM-SHA-256$"), "verifier only");
        assert!(!stored.contains(password));

        // A repeat returns no credential (nothing rotated behind the caller's back) …
        let resp = put(a).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let again: Value = resp.json().await.unwrap();
        assert!(again.get("credential").is_none(), "{again}");
        let still: Option<String> =
            sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
                .bind(da["role"].as_str().unwrap())
                .fetch_one(&mut adm)
                .await
                .unwrap();
        assert_eq!(
            still.as_deref(),
            Some(stored.as_str()),
            "password unchanged"
        );
        // … an explicit rotation replaces it.
        let rotate = format!("/provision/{a}/credential/rotate");
        let resp = env
            .req(Method::POST, &rotate, &env.rw(a), None)
            .send_ok()
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::FORBIDDEN,
            "a tenant token rotates nothing"
        );
        let resp = env
            .req(Method::POST, &rotate, &env.platform(), None)
            .send_ok()
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let rotated: Value = resp.json().await.unwrap();
        let new_password = rotated["credential"]["password"].as_str().unwrap();
        assert_ne!(new_password, password);
        let now: Option<String> =
            sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
                .bind(da["role"].as_str().unwrap())
                .fetch_one(&mut adm)
                .await
                .unwrap();
        assert_ne!(now.as_deref(), Some(stored.as_str()), "verifier replaced");
        {
            use sqlx::Connection;
            let conn = sqlx::PgConnection::connect(rotated["credential"]["url"].as_str().unwrap())
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        // Deprovisioned: the role may no longer log in.
        let resp = env
            .req(
                Method::DELETE,
                &format!("/provision/{a}"),
                &env.platform(),
                None,
            )
            .send_ok()
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let login: bool = sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1")
            .bind(da["role"].as_str().unwrap())
            .fetch_one(&mut adm)
            .await
            .unwrap();
        assert!(!login, "NOLOGIN after deprovision");
        let refused = {
            use sqlx::Connection;
            sqlx::PgConnection::connect(rotated["credential"]["url"].as_str().unwrap()).await
        };
        assert!(refused.is_err());
        // Rotating a deprovisioned tenant's credential: 404.
        let resp = env
            .req(Method::POST, &rotate, &env.platform(), None)
            .send_ok()
            .await;
        problem(resp, StatusCode::NOT_FOUND, n).await;
        drop(adm);
        env.finish().await;
    }
}

async fn admin(env: &Env) -> sqlx::PgConnection {
    use sqlx::Connection;
    let Store::Postgres { admin_url, .. } = &env.store else {
        unreachable!()
    };
    sqlx::PgConnection::connect(admin_url).await.unwrap()
}

async fn assert_public_cannot_connect(env: &Env, db: &str) {
    let mut conn = admin(env).await;
    let public: bool = sqlx::query_scalar("SELECT has_database_privilege('public', $1, 'CONNECT')")
        .bind(db)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!public, "CONNECT revoked from PUBLIC on {db}");
    let owner: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
    )
    .bind(db)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(owner, db, "owned by the tenant's role");
}

async fn pg_database_exists(env: &Env, db: &str) -> bool {
    let mut conn = admin(env).await;
    sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(db)
        .fetch_optional(&mut conn)
        .await
        .unwrap()
        .is_some()
}

/// The tenant database's `tansu_migrations`, read directly.
async fn applied_migrations(env: &Env, database: &str) -> Vec<(i64, String)> {
    use sqlx::Connection;
    let sql = "SELECT version, name FROM tansu_migrations ORDER BY version";
    match &env.store {
        Store::Sqlite(dir) => {
            let path = dir.path().join("tenants").join(database);
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
        Store::Postgres { admin_url, .. } => {
            let mut url = url::Url::parse(admin_url).unwrap();
            url.set_path(&format!("/{database}"));
            let mut conn = sqlx::PgConnection::connect(url.as_str()).await.unwrap();
            let rows = sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap();
            let _ = conn.close().await;
            rows
        }
    }
}

fn like(prefix: &str) -> String {
    format!("{prefix}%").replace('_', "\\_")
}

/// `SELECT count(*) …` over the server's catalog, with the names starting with `prefix` bound
/// as the LIKE pattern `$1`.
async fn catalog_count(admin_url: &str, sql: &'static str, prefix: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await.unwrap();
    sqlx::query_scalar(sql)
        .bind(like(prefix))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

async fn tenant_connections(admin_url: &str, prefix: &str) -> i64 {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE $1";
    catalog_count(admin_url, sql, prefix).await
}

async fn count_databases(admin_url: &str, prefix: &str) -> i64 {
    let sql = "SELECT count(*) FROM pg_database WHERE datname LIKE $1";
    catalog_count(admin_url, sql, prefix).await
}

/// With `platform_tenant` configured, tokens of the platform tenant may provision.
#[tokio::test]
async fn platform_tenant_tokens_may_provision() {
    let platform = Uuid::now_v7();
    for env in envs_with("database platform tenant", |c| {
        c.platform_tenant = platform.to_string()
    })
    .await
    {
        let n = env.name;
        let t = Uuid::now_v7();
        let token = env.token(Some(platform), "db.provision");
        let resp = env
            .req(
                Method::PUT,
                &format!("/provision/{t}"),
                &token,
                Some(platform),
            )
            .send_ok()
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{n}");
        let token = env.token(Some(t), "db.provision");
        let resp = env
            .req(Method::DELETE, &format!("/provision/{t}"), &token, Some(t))
            .send_ok()
            .await;
        problem(resp, StatusCode::FORBIDDEN, n).await;
        env.finish().await;
    }
}
