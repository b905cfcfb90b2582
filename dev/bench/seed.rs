//! What the identity benchmarks set up: the store they run on (SQLite in a fresh directory or
//! a fresh PostgreSQL database, one after the other as `--stores` lists them), the platform
//! admin's token, tenants and an event reporter.

use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::gateway::{date_utc, machine};
use crate::token::{BenchDb, DEV_SECRET, json_ok};

/// Where an identity benchmark runs and where its report goes.
#[derive(clap::Args)]
pub struct StoreArgs {
    /// Stores to run on: `sqlite`, `postgres` (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub stores: Vec<String>,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres: String,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// An identity benchmark's report: the machine and `command`, then the section `run(database_url,
/// data_dir)` writes for each of the `stores` (`sqlite`, `postgres` on the server
/// `postgres`), ending with `--stores`; printed, and written to `out` when given. A PostgreSQL
/// database is dropped after its run, also when the run failed.
pub async fn report_on_each_store<F, Fut>(
    command: &str,
    on: &StoreArgs,
    mut run: F,
) -> anyhow::Result<()>
where
    F: FnMut(String, PathBuf) -> Fut,
    Fut: Future<Output = anyhow::Result<String>>,
{
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Run on {}, {}.\n\nCommand: `{command} --stores {}`\n",
        date_utc(),
        machine(),
        on.stores.join(",")
    );
    for store in &on.stores {
        let (dir, db, url) = store_database(store, &on.postgres).await?;
        let result = run(url, dir.path().to_owned()).await;
        if let Some(db) = db {
            db.drop_it().await;
        }
        let _ = writeln!(report, "### {store}\n\n{}", result?);
    }
    crate::print_report(&report, on.out.as_deref())
}

/// Identity's store for one run: a data directory, and the database URL in it (`sqlite`) or of
/// a fresh database on the PostgreSQL server `postgres` (drop it with [`BenchDb::drop_it`]).
pub async fn store_database(
    store: &str,
    postgres: &str,
) -> anyhow::Result<(tempfile::TempDir, Option<BenchDb>, String)> {
    let dir = tempfile::tempdir()?;
    let (db, url) = match store {
        "sqlite" => (
            None,
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("identity.db").display()
            ),
        ),
        "postgres" => {
            let (db, url) = BenchDb::create(postgres).await?;
            (Some(db), url)
        }
        other => anyhow::bail!("unknown store {other}"),
    };
    Ok((dir, db, url))
}

/// A client_credentials token of `client_id` for `scope` from the issuer at `base`.
async fn client_token(
    http: &reqwest::Client,
    base: &str,
    (client_id, secret): (&str, Option<&str>),
    scope: &str,
) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{base}connect/token"))
        .basic_auth(client_id, secret)
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await?;
    json_ok(resp, scope).await?["access_token"]
        .as_str()
        .with_context(|| format!("{scope} token"))
        .map(str::to_owned)
}

/// The dev client's `admin.full` token.
pub async fn admin_token(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let dev_client = (tansu_identity::DEV_CLIENT_ID, Some(DEV_SECRET));
    client_token(http, base, dev_client, "admin.full").await
}

/// A new tenant `slug`; returns its id.
pub async fn create_tenant(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    slug: &str,
    name: &str,
) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{base}admin/tenants"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"slug": slug, "name": name}))
        .send()
        .await?;
    json_ok(resp, "create tenant").await?["id"]
        .as_str()
        .context("tenant id")
        .map(str::to_owned)
}

/// A token of a new client that reports security events (`events.write`), as services do.
pub async fn reporter_token(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{base}admin/clients"))
        .bearer_auth(admin)
        .json(&serde_json::json!({
            "name": "bench reporter",
            "grant_types": ["client_credentials"],
            "scopes": ["events.write"],
        }))
        .send()
        .await?;
    let client = json_ok(resp, "create client").await?;
    let id = client["client_id"].as_str().context("client_id")?;
    let secret = client["client_secret"].as_str();
    client_token(http, base, (id, secret), "events.write").await
}

/// The `q` quantile of `sorted` (nearest rank); NaN when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
