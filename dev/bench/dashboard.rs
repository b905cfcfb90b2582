//! `tansu-bench dashboard` — the page benchmark: "each page renders in < 200 ms server
//! time with 10,000 users and 100,000 events". Identity and the dashboard run in this process
//! (plain HTTP on 127.0.0.1; the dashboard calls identity's admin API as in production); one
//! tenant gets 10,000 members (written straight into identity's database: hashing 10,000
//! passwords would take longer than the benchmark) and 100,000 security events over the last
//! 23 hours (through the ingest API, as other services report them). The platform admin signs
//! in through the real OIDC flow, then every page is fetched `--rounds` times, one request at a
//! time; the report gives each page's latency as the client on loopback sees it and the
//! dashboard's own `Server-Timing`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::seed::{
    StoreArgs, admin_token, create_tenant, quantile, report_on_each_store, reporter_token,
};
use crate::token::{DEV_SECRET, enc};

#[derive(clap::Args)]
pub struct Args {
    /// Members of the benchmark tenant.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// Security events of the benchmark tenant (over the last 23 hours).
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Requests per page.
    #[arg(long, default_value_t = 30)]
    rounds: usize,
    #[command(flatten)]
    on: StoreArgs,
}

const ADMIN_PASSWORD: &str = "bench-dashboard-admin-password-1";
/// The target: each page's server time under 200 ms.
const BUDGET_MS: f64 = 200.0;

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.rounds > 0, "--rounds: at least 1");
    let command = format!(
        "tansu-bench dashboard --users {} --events {} --rounds {}",
        args.users, args.events, args.rounds
    );
    let args = &args;
    report_on_each_store(&command, &args.on, |url, dir| async move {
        run_store(args, &url, &dir).await
    })
    .await
}

/// Identity and the dashboard on loopback ports of this process; stopped with `stop`.
struct Services {
    identity: String,
    dashboard: String,
    stop: CancellationToken,
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
}

async fn start(url: &str, dir: &Path) -> anyhow::Result<Services> {
    tansu_shared::install_crypto_provider();
    let id_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let dash_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let identity = format!("http://{}/", id_listener.local_addr()?);
    let dashboard = format!("http://{}/", dash_listener.local_addr()?);
    let id_config = tansu_identity::Config {
        listen: id_listener.local_addr()?.to_string(),
        issuer: identity.clone(),
        data_dir: dir.to_owned(),
        database_url: tansu_shared::config::Secret::new(url),
        dev_mode: true,
        dev_client_secret: tansu_shared::config::Secret::new(DEV_SECRET),
        dev_admin_password: tansu_shared::config::Secret::new(ADMIN_PASSWORD),
        dev_dashboard_url: dashboard.clone(),
        ..tansu_identity::Config::default()
    };
    let dash_config = tansu_dashboard::Config {
        listen: dash_listener.local_addr()?.to_string(),
        public_url: dashboard.clone(),
        issuer: identity.clone(),
        health_url: format!("{identity}health"),
        client_secret: tansu_shared::config::Secret::new(DEV_SECRET),
        ..tansu_dashboard::Config::default()
    };
    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let s = stop.clone();
    tasks.spawn(async move {
        tansu_identity::serve_on(id_listener, id_config, s.cancelled_owned()).await
    });
    // The dashboard reads identity's discovery at sign-in, so identity must answer first.
    let probe = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = probe
            .get(format!("{identity}.well-known/openid-configuration"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "identity did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = stop.clone();
    tasks.spawn(async move {
        tansu_dashboard::serve_on(dash_listener, dash_config, s.cancelled_owned()).await
    });
    Ok(Services {
        identity,
        dashboard,
        stop,
        tasks,
    })
}

async fn run_store(args: &Args, url: &str, dir: &Path) -> anyhow::Result<String> {
    let mut services = start(url, dir).await?;
    let outcome = measure(args, &services, url).await;
    services.stop.cancel();
    while services.tasks.join_next().await.is_some() {}
    outcome
}

/// Cookies of one host, as a browser keeps them (enough for these two services).
#[derive(Default)]
struct Jar(HashMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn take(&mut self, resp: &reqwest::Response) {
        for c in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(c) = c.to_str() else { continue };
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            if let Some((k, v)) = kv.split_once('=') {
                if v.is_empty() || attrs.contains("Max-Age=0") {
                    self.0.remove(k.trim());
                } else {
                    self.0.insert(k.trim().to_owned(), v.to_owned());
                }
            }
        }
    }
}

fn location(resp: &reqwest::Response) -> anyhow::Result<String> {
    Ok(resp
        .headers()
        .get(reqwest::header::LOCATION)
        .context("a redirect")?
        .to_str()?
        .to_owned())
}

/// The value of a hidden form field (`name="…" value="…"`).
fn hidden(html: &str, name: &str) -> anyhow::Result<String> {
    let at = html
        .find(&format!("name=\"{name}\""))
        .with_context(|| format!("no field {name}"))?;
    let rest = &html[at..];
    let v = rest.find("value=\"").context("no value")? + 7;
    let end = rest[v..].find('"').context("unterminated value")?;
    Ok(rest[v..v + end]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'"))
}

/// The platform admin's sign-in through the dashboard (code + PKCE at identity): the
/// dashboard's cookie jar afterwards.
async fn sign_in(http: &reqwest::Client, s: &Services) -> anyhow::Result<Jar> {
    let (mut dash, mut id) = (Jar::default(), Jar::default());
    let r = http.get(format!("{}login", s.dashboard)).send().await?;
    dash.take(&r);
    let authorize = location(&r)?;
    let r = http.get(&authorize).send().await?;
    id.take(&r);
    let page = r.text().await?;
    let r = http
        .post(format!("{}login", s.identity))
        .header(reqwest::header::COOKIE, id.header())
        .form(&[
            ("csrf", hidden(&page, "csrf")?.as_str()),
            ("request", hidden(&page, "request")?.as_str()),
            ("email", tansu_identity::DEV_ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await?;
    let callback = location(&r).context("sign-in at identity")?;
    anyhow::ensure!(
        callback.starts_with(&s.dashboard),
        "identity sent the browser to {callback}"
    );
    let r = http
        .get(&callback)
        .header(reqwest::header::COOKIE, dash.header())
        .send()
        .await?;
    dash.take(&r);
    anyhow::ensure!(r.status().is_redirection(), "callback: {}", r.text().await?);
    Ok(dash)
}

/// 10,000 members written straight into identity's database (as identity's store writes
/// them), in one tenant.
async fn seed_users(url: &str, tenant: &str, users: u64) -> anyhow::Result<()> {
    let store = tansu_identity::store::Store::connect(url).await?;
    let now = tansu_identity::store::now_ms();
    // Nobody signs in as them: a placeholder hash (an Argon2id hash each would take minutes).
    let hash =
        "$argon2id$v=19$m=19456,t=2,p=1$YmVuY2hzYWx0$placeholderplaceholderplaceholderplaceholde";
    for i in 0..users {
        let i64_i = i64::try_from(i).unwrap_or(0);
        let user = tansu_identity::store::users::UserRow {
            id: uuid::Uuid::now_v7().to_string(),
            email: format!("user-{i:05}@bench-shop.example"),
            name: format!("Bench User {}", users - i),
            password_hash: hash.to_owned(),
            tenant_id: None,
            roles: Vec::new(),
            disabled: i.is_multiple_of(50),
            platform_admin: false,
            home_tenant_id: Some(tenant.to_owned()),
            created_at: now + i64_i,
            updated_at: now + i64_i,
        };
        store.insert_user(&user).await?;
        store
            .upsert_membership(&tansu_identity::store::tenants::MembershipRow {
                user_id: user.id,
                tenant_id: tenant.to_owned(),
                roles: vec![
                    if i.is_multiple_of(100) {
                        "Admin"
                    } else {
                        "User"
                    }
                    .to_owned(),
                ],
                created_at: now,
            })
            .await?;
    }
    store.close().await;
    Ok(())
}

/// `events` events of the tenant through the ingest API, spread over the last 23 hours: half
/// sign-ins (one in five failed), the rest access denials and changes.
async fn seed_events(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    tenant: &str,
    events: u64,
) -> anyhow::Result<()> {
    let token = reporter_token(http, base, admin).await?;
    let now = time::OffsetDateTime::now_utc();
    let span_ms = 23 * 3_600_000_i64;
    let mut n = 0u64;
    while n < events {
        let batch: Vec<serde_json::Value> = (n..(n + 1000).min(events))
            .map(|k| {
                let (kind, outcome) = match k % 10 {
                    0..=3 => ("sign_in", "success"),
                    4 => ("sign_in", "failure"),
                    5..=7 => ("access.denied", "denied"),
                    _ => ("user.change", "success"),
                };
                let ago = span_ms * i64::try_from(events - k).unwrap_or(0)
                    / i64::try_from(events).unwrap_or(1);
                let at = now - time::Duration::milliseconds(ago);
                serde_json::json!({
                    "id": uuid::Uuid::now_v7().to_string(),
                    "time": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                    "tenant": tenant,
                    "type": kind,
                    "actor": format!("user:{}", k % 10_000),
                    "outcome": outcome,
                    "ip": format!("10.0.{}.{}", k % 250, k % 200),
                    "user_agent": "tansu-bench",
                    "details": {"bench": true},
                })
            })
            .collect();
        n += batch.len() as u64;
        let resp = http
            .post(format!("{base}admin/security-events/ingest"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "events": batch }))
            .send()
            .await?;
        let status = resp.status();
        anyhow::ensure!(
            status.as_u16() == 202,
            "ingest: {status}: {}",
            resp.text().await?
        );
    }
    Ok(())
}

/// `dur` of the `Server-Timing` header (`total;dur=12.3`), in ms.
fn server_timing(resp: &reqwest::Response) -> Option<f64> {
    let v = resp.headers().get("server-timing")?.to_str().ok()?;
    v.split(';')
        .find_map(|p| p.trim().strip_prefix("dur="))
        .and_then(|d| d.parse().ok())
}

async fn measure(args: &Args, s: &Services, url: &str) -> anyhow::Result<String> {
    let base = &s.identity;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()?;
    let admin = admin_token(&http, base).await?;
    let tenant = create_tenant(&http, base, &admin, "bench-shop", "Bench Shop").await?;
    let t = Instant::now();
    seed_users(url, &tenant, args.users).await?;
    let users_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    seed_events(&http, base, &admin, &tenant, args.events).await?;
    let events_s = t.elapsed().as_secs_f64();
    eprintln!(
        "seeded {} users in {users_s:.1} s and {} events in {events_s:.1} s",
        args.users, args.events
    );

    let jar = sign_in(&http, s).await?;
    let cookie = jar.header();
    let tq = format!("tenant={}", enc(&tenant));
    let pages: Vec<(&str, String)> = vec![
        ("Overview", String::new()),
        ("Tenants", "tenants".into()),
        ("Users (first page)", format!("users?{tq}")),
        (
            "Users by email, descending",
            format!("users?{tq}&sort=email&order=desc"),
        ),
        ("Users by name", format!("users?{tq}&sort=name")),
        ("Users, search", format!("users?{tq}&search=user-0421")),
        ("Clients", "clients".into()),
        ("External providers", format!("admin/providers?{tq}")),
        ("Security events (all)", "admin/security-events".into()),
        (
            "Security events (tenant)",
            format!("admin/security-events?{tq}"),
        ),
        (
            "Security events (failed sign-ins)",
            format!("admin/security-events?{tq}&type=sign_in&outcome=failure"),
        ),
        (
            "Security events (oldest first)",
            format!("admin/security-events?{tq}&sort=time&order=asc"),
        ),
        ("Signing keys", "keys".into()),
        ("Identity settings", format!("settings?{tq}")),
        ("Secrets", format!("secrets?{tq}")),
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} members and {} events in one tenant (seeded in {users_s:.0} s and {events_s:.0} s); load before the pages: {}.\n",
        args.users,
        args.events,
        load_average()
    );
    let _ = writeln!(
        out,
        "| page ({} requests each) | p50 ms | p99 ms | max ms | Server-Timing p50 ms | Server-Timing p99 ms | < {BUDGET_MS} ms |\n|---|---:|---:|---:|---:|---:|:---:|",
        args.rounds
    );
    for (name, path) in &pages {
        let mut client_ms = Vec::with_capacity(args.rounds);
        let mut server_ms = Vec::with_capacity(args.rounds);
        for _ in 0..args.rounds {
            let t = Instant::now();
            let resp = http
                .get(format!("{}{path}", s.dashboard))
                .header(reqwest::header::COOKIE, &cookie)
                .send()
                .await?;
            let status = resp.status();
            let timing = server_timing(&resp);
            let body = resp.text().await?;
            client_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status.is_success(), "/{path}: {status}: {body}");
            if let Some(ms) = timing {
                server_ms.push(ms);
            }
        }
        client_ms.sort_by(f64::total_cmp);
        server_ms.sort_by(f64::total_cmp);
        let p99 = quantile(&server_ms, 0.99);
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            quantile(&client_ms, 0.5),
            quantile(&client_ms, 0.99),
            client_ms.last().copied().unwrap_or(f64::NAN),
            quantile(&server_ms, 0.5),
            p99,
            if p99 < BUDGET_MS { "yes" } else { "**no**" }
        );
    }
    eprintln!("{out}");
    Ok(out)
}

/// The 1-minute load average (`/proc/loadavg`).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "–".into())
}
