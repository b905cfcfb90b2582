//! The pages, rendered on the server with Leptos. Plain HTML forms, no WebAssembly.

use leptos::prelude::*;
use serde_json::Value;

/// Navigation entries: (service-relative path, label).
pub const NAV: &[(&str, &str)] = &[
    ("", "Overview"),
    ("tenants", "Tenants"),
    ("users", "Users and roles"),
    ("clients", "Clients"),
    ("admin/providers", "External providers"),
    ("admin/security-events", "Security events"),
    ("keys", "Signing keys"),
    ("settings", "Identity settings"),
    ("secrets", "Secrets"),
];

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b2430;background:#f4f6f9}
a{color:#1f5fbf}
header.top{display:flex;align-items:center;justify-content:space-between;gap:1rem;padding:.6rem 1rem;background:#14213d;color:#fff}
header.top .brand{font-weight:700;letter-spacing:.02em;color:#fff;text-decoration:none}
header.top form{margin:0}
header.top .who{font-size:.85rem;opacity:.85;margin-right:.6rem}
.wrap{display:flex;min-height:calc(100vh - 52px)}
nav.side{flex:0 0 220px;background:#fff;border-right:1px solid #dde3ea;padding:1rem .5rem}
nav.side a{display:block;padding:.45rem .75rem;border-radius:6px;text-decoration:none;color:#1b2430}
nav.side a:hover{background:#eef2f7}
nav.side a.active{background:#1f5fbf;color:#fff}
main{flex:1;min-width:0;padding:1.25rem 1.5rem;max-width:1100px}
h1{font-size:1.5rem;margin:.2rem 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .6rem}
.card{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:1rem;margin-bottom:1rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:1rem}
.stat{font-size:1.8rem;font-weight:700}
.muted{color:#5b6776;font-size:.9rem}
table{width:100%;border-collapse:collapse;background:#fff}
th,td{text-align:left;padding:.5rem .6rem;border-bottom:1px solid #e6eaef;vertical-align:top;overflow-wrap:break-word}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;color:#5b6776}
.table{overflow-x:auto;border:1px solid #dde3ea;border-radius:8px}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:999px;font-size:.8rem;background:#e6eaef}
.ok{background:#d8f3df;color:#14532d}.warn{background:#fdf0c8;color:#6b4e00}.bad{background:#fde0e0;color:#7f1d1d}
button,.button{display:inline-block;border:0;border-radius:6px;padding:.5rem .9rem;font:inherit;cursor:pointer;background:#1f5fbf;color:#fff;text-decoration:none}
button.secondary,.button.secondary{background:#e6eaef;color:#1b2430}
button.danger{background:#b42318}
label{display:block;font-weight:600;margin:.6rem 0 .2rem}
input[type=text],textarea,select{width:100%;max-width:520px;padding:.45rem .55rem;border:1px solid #c5ced9;border-radius:6px;font:inherit}
.notice{padding:.75rem 1rem;border-radius:8px;margin-bottom:1rem;background:#eef2f7}
.notice.error{background:#fde0e0}
.notice.success{background:#d8f3df}
.secret{font-family:ui-monospace,monospace;background:#14213d;color:#fff;padding:.6rem .8rem;border-radius:6px;word-break:break-all}
code{font-family:ui-monospace,monospace;font-size:.9em;overflow-wrap:anywhere}
form.inline{display:inline-block;margin:.15rem 0}
form.inline select,form.inline input{width:auto;max-width:12rem;display:inline-block}
input[type=password],input[type=number],input[type=datetime-local]{width:100%;max-width:520px;padding:.45rem .55rem;border:1px solid #c5ced9;border-radius:6px;font:inherit}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:0 1rem}
details pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f4f6f9;padding:.5rem;border-radius:6px}
dl.detail{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .6rem;margin:.4rem 0}
dl.detail dt{font-weight:600}dl.detail dd{margin:0;overflow-wrap:anywhere}
.pager{margin:.75rem 0}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1rem}
.chart-box svg{display:block;width:100%;height:auto}
.nowrap{white-space:nowrap}
.progress{margin:.5rem 0}
progress{display:block;width:100%;max-width:520px;height:1.1rem;accent-color:#1f5fbf}
ol.stages{list-style:none;padding:0;margin:.4rem 0}
ol.stages li{padding:.3rem .6rem;margin:.25rem 0;border-left:4px solid #c5ced9;color:#5b6776}
ol.stages li.done{border-color:#2f855a;color:#14532d}
ol.stages li.active{border-color:#b7791f;background:#fdf8e8;color:#1b2430;font-weight:600}
@media (max-width:760px){
 .wrap{flex-direction:column}
 nav.side{flex:none;border-right:0;border-bottom:1px solid #dde3ea;display:flex;flex-wrap:wrap;gap:.25rem;padding:.5rem}
 nav.side a{padding:.35rem .6rem;font-size:.9rem}
 main{padding:1rem}
 .table table{min-width:680px}
 header.top .who{display:none}
}
"#;

/// What every signed-in page needs to draw the frame.
pub struct Frame<'a> {
    pub base: &'a str,
    pub active: &'a str,
    pub user: String,
    pub csrf: &'a str,
    /// A platform admin (else a tenant admin: no platform-only sections in the navigation).
    pub platform: bool,
    /// Reload the page after this many seconds (a long operation's progress page while the
    /// operation runs; `<meta http-equiv="refresh">`, so no script is needed).
    pub refresh: Option<u64>,
}

/// Sections only platform admins use.
pub const PLATFORM_ONLY: &[&str] = &["tenants", "clients", "keys"];

fn doc(title: &str, body: AnyView, refresh: Option<u64>) -> String {
    let title = format!("{title} · Tansu dashboard");
    let refresh =
        refresh.map(|secs| view! { <meta http-equiv="refresh" content=secs.to_string()/> });
    let html = view! {
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="referrer" content="no-referrer"/>
                {refresh}
                <title>{title}</title>
                <style inner_html=CSS></style>
            </head>
            <body>{body}</body>
        </html>
    };
    format!("<!DOCTYPE html>{}", html.to_html())
}

/// A signed-in page: top bar, navigation, content.
pub fn page(frame: &Frame<'_>, title: &str, content: AnyView) -> String {
    let base = frame.base.to_owned();
    let nav = NAV
        .iter()
        .filter(|(path, _)| frame.platform || !PLATFORM_ONLY.contains(path))
        .map(|(path, label)| {
            let class = if *path == frame.active { "active" } else { "" };
            view! { <a class=class href=format!("{base}{path}")>{*label}</a> }
        })
        .collect_view();
    let body = view! {
        <header class="top">
            <a class="brand" href=frame.base.to_owned()>"Tansu"</a>
            <div>
                <span class="who">{frame.user.clone()}</span>
                <form method="post" action=format!("{}logout", frame.base) style="display:inline">
                    <input type="hidden" name="csrf" value=frame.csrf.to_owned()/>
                    <button class="secondary" type="submit">"Sign out"</button>
                </form>
            </div>
        </header>
        <div class="wrap">
            <nav class="side" aria-label="Sections">{nav}</nav>
            <main>
                <h1>{title.to_owned()}</h1>
                {content}
            </main>
        </div>
    };
    doc(title, body.into_any(), frame.refresh)
}

/// A page outside the signed-in frame (no access, signed out, errors).
pub fn bare(title: &str, message: &str, link: Option<(String, &str)>) -> String {
    let link = link.map(|(href, label)| {
        view! { <p><a class="button" href=href>{label.to_owned()}</a></p> }
    });
    let body = view! {
        <header class="top"><span class="brand">"Tansu"</span></header>
        <main>
            <h1>{title.to_owned()}</h1>
            <div class="card"><p>{message.to_owned()}</p>{link}</div>
        </main>
    };
    doc(title, body.into_any(), None)
}

/// The "no access" page for signed-in users without an admin role (with a sign-out form).
pub fn no_access(base: &str, csrf: &str, email: &str) -> String {
    let body = view! {
        <header class="top"><span class="brand">"Tansu"</span></header>
        <main>
            <h1>"No access"</h1>
            <div class="card">
                <p>
                    "You are signed in as " <strong>{email.to_owned()}</strong>
                    ", but the dashboard is only for platform and tenant administrators (role Owner or Admin). Ask an administrator of your tenant for access."
                </p>
                <form method="post" action=format!("{base}logout")>
                    <input type="hidden" name="csrf" value=csrf.to_owned()/>
                    <button type="submit">"Sign out"</button>
                </form>
            </div>
        </main>
    };
    doc("No access", body.into_any(), None)
}

pub fn notice(kind: &'static str, text: String) -> AnyView {
    view! { <div class=format!("notice {kind}") role="status">{text}</div> }.into_any()
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn list(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn status_badge(status: &str) -> AnyView {
    let class = match status {
        "ready" | "current" | "ok" => "badge ok",
        "next" | "pending" | "retiring" => "badge warn",
        _ => "badge bad",
    };
    view! { <span class=class>{status.to_owned()}</span> }.into_any()
}

/// One series of the activity charts: (JSON key, title, bar colour).
const SERIES: &[(&str, &str, &str)] = &[
    ("sign_ins", "Sign-ins", "#1f5fbf"),
    ("failures", "Failed sign-ins", "#b42318"),
    ("tokens", "Tokens issued", "#2f855a"),
];

/// A bar chart of one series over the buckets (hour starts in RFC 3339), as inline SVG built
/// from numbers and hour labels only: no script, nothing from the request. Each bar has a
/// `<title>` (the browser shows it on hover).
pub(crate) fn bar_chart(key: &str, title: &str, colour: &str, buckets: &[Value]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 170.0;
    const TOP: f64 = 14.0;
    const BOTTOM: f64 = 22.0;
    const LEFT: f64 = 40.0;
    let values: Vec<u64> = buckets
        .iter()
        .map(|b| b.get(key).and_then(Value::as_u64).unwrap_or(0))
        .collect();
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let n = values.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let plot = H - TOP - BOTTOM;
    let mut svg = format!(
        r##"<svg class="chart" id="chart-{key}" viewBox="0 0 {W} {H}" role="img" aria-label="{title}, per hour, last {len} hours" xmlns="http://www.w3.org/2000/svg"><line x1="{LEFT}" y1="{base}" x2="{W}" y2="{base}" stroke="#c5ced9"/><text x="{lx}" y="{ty}" text-anchor="end" font-size="11" fill="#5b6776">{max}</text><text x="{lx}" y="{base}" text-anchor="end" font-size="11" fill="#5b6776">0</text>"##,
        len = values.len(),
        base = H - BOTTOM,
        lx = LEFT - 6.0,
        ty = TOP + 4.0,
    );
    for (i, (v, b)) in values.iter().zip(buckets).enumerate() {
        let hour = b
            .get("hour")
            .and_then(Value::as_str)
            .and_then(|h| h.get(11..16))
            .unwrap_or("");
        let h = plot * (*v as f64) / (max as f64);
        let x = LEFT + slot * i as f64 + slot * 0.15;
        svg.push_str(&format!(
            r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{colour}"><title>{hour} UTC: {v}</title></rect>"##,
            y = H - BOTTOM - h,
            w = slot * 0.7,
        ));
        if i % 6 == 0 {
            svg.push_str(&format!(
                r##"<text x="{tx:.1}" y="{H}" font-size="11" fill="#5b6776">{hour}</text>"##,
                tx = LEFT + slot * i as f64,
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The activity of the last 24 h: totals and one chart per series.
fn activity_view(activity: Result<Value, String>) -> AnyView {
    let v = match activity {
        Ok(v) => v,
        Err(e) => {
            return notice("error", format!("Activity is unavailable: {e}"));
        }
    };
    let buckets = v
        .get("buckets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let charts = SERIES
        .iter()
        .map(|(key, title, colour)| {
            let total = v
                .get("totals")
                .and_then(|t| t.get(*key))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let svg = bar_chart(key, title, colour, &buckets);
            view! {
                <div class="card">
                    <div class="muted">{format!("{title}, last 24 h")}</div>
                    <div class="stat" id=format!("total-{key}")>{total}</div>
                    <div class="chart-box" inner_html=svg></div>
                </div>
            }
        })
        .collect_view();
    view! { <div class="charts">{charts}</div> }.into_any()
}

pub fn overview(
    health: Result<Value, String>,
    clients: Option<usize>,
    keys: Option<usize>,
    tenants: Option<usize>,
    activity: Result<Value, String>,
) -> AnyView {
    let count = |n: Option<usize>| n.map_or_else(|| "–".to_owned(), |n| n.to_string());
    let health_view = match health {
        Ok(report) => {
            let overall = s(&report, "status");
            let rows = report
                .get("services")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|i| {
                    let name = {
                        let svc = s(&i, "service");
                        if svc.is_empty() { s(&i, "route") } else { svc }
                    };
                    view! {
                        <tr><td>{name}</td><td>{s(&i, "route")}</td><td>{status_badge(&s(&i, "status"))}</td></tr>
                    }
                })
                .collect_view();
            view! {
                <p>"Gateway: " {status_badge(&overall)}</p>
                <div class="table"><table>
                    <thead><tr><th>"Service"</th><th>"Route"</th><th>"Status"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table></div>
            }
            .into_any()
        }
        Err(e) => notice(
            "error",
            format!("The gateway's health report is unavailable: {e}"),
        ),
    };
    view! {
        <div class="cards">
            <div class="card"><div class="muted">"OAuth clients"</div><div class="stat" id="count-clients">{count(clients)}</div></div>
            <div class="card"><div class="muted">"Signing keys"</div><div class="stat" id="count-keys">{count(keys)}</div></div>
            <div class="card"><div class="muted">"Tenants"</div><div class="stat" id="count-tenants">{count(tenants)}</div></div>
        </div>
        <h2>"Activity (UTC hours)"</h2>
        {activity_view(activity)}
        <h2>"Service health"</h2>
        {health_view}
    }
    .into_any()
}

pub fn keys(base: &str, policy: &Value) -> AnyView {
    let rows = policy
        .get("keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|k| {
            view! {
                <tr>
                    <td><code>{s(&k, "kid")}</code></td>
                    <td>{s(&k, "alg")}</td>
                    <td>{status_badge(&s(&k, "state"))}</td>
                    <td>{s(&k, "signs_from")}</td>
                    <td>{s(&k, "signs_until")}</td>
                    <td>{s(&k, "published_until")}</td>
                </tr>
            }
        })
        .collect_view();
    let days = |key: &str| {
        policy
            .get(key)
            .and_then(Value::as_u64)
            .map_or_else(String::new, |secs| {
                format!("{:.1} days", secs as f64 / 86_400.0)
            })
    };
    view! {
        <div class="card">
            <p>"Rotation period " <strong>{days("rotation_period_secs")}</strong>
               ", grace " <strong>{days("grace_secs")}</strong>
               ", lead " <strong>{days("lead_secs")}</strong>
               ". Default algorithm " <strong>{s(policy, "default_alg")}</strong> "."</p>
            <a class="button danger" id="rotate-now" href=format!("{base}keys/rotate")>"Rotate now…"</a>
        </div>
        <div class="table"><table>
            <thead><tr><th>"Key id"</th><th>"Alg"</th><th>"State"</th><th>"Signs from"</th><th>"Signs until"</th><th>"Published until"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
    }
    .into_any()
}

/// A confirmation page for a destructive action: a POST form with the CSRF token.
pub fn confirm(
    action: String,
    csrf: &str,
    question: String,
    button: &'static str,
    cancel: String,
) -> AnyView {
    view! {
        <div class="card">
            <p>{question}</p>
            <form method="post" action=action>
                <input type="hidden" name="csrf" value=csrf.to_owned()/>
                <input type="hidden" name="confirm" value="yes"/>
                <button class="danger" type="submit" id="confirm">{button}</button>
                " "
                <a class="button secondary" href=cancel>"Cancel"</a>
            </form>
        </div>
    }
    .into_any()
}

pub fn clients(base: &str, csrf: &str, items: &[Value], sorts: AnyView) -> AnyView {
    let rows = items
        .iter()
        .map(|c| {
            let id = s(c, "client_id");
            let confidential = s(c, "client_type") == "confidential" && c.get("jwks").is_none();
            let rotate = confidential.then(|| {
                let href = format!("{base}clients/{}/secret", urlencode(&id));
                view! { <a class="button secondary" href=href>"Rotate secret…"</a> }
            });
            view! {
                <tr>
                    <td><strong>{s(c, "name")}</strong><br/><code>{id.clone()}</code></td>
                    <td>{s(c, "client_type")}</td>
                    <td>{list(c, "grant_types")}</td>
                    <td>{list(c, "scopes")}</td>
                    <td>{list(c, "redirect_uris")}</td>
                    <td>{rotate}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {sorts}
        <div class="table"><table>
            <thead><tr><th>"Client"</th><th>"Type"</th><th>"Grants"</th><th>"Scopes"</th><th>"Redirect URIs"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        <h2>"Create a client"</h2>
        <form class="card" method="post" action=format!("{base}clients")>
            <input type="hidden" name="csrf" value=csrf.to_owned()/>
            <label for="name">"Name"</label>
            <input type="text" id="name" name="name" required=true maxlength="200"/>
            <label for="client_type">"Type"</label>
            <select id="client_type" name="client_type">
                <option value="confidential">"Confidential (has a secret)"</option>
                <option value="public">"Public (PKCE, no secret)"</option>
            </select>
            <label for="grant_types">"Grant types (space separated)"</label>
            <input type="text" id="grant_types" name="grant_types" value="authorization_code refresh_token"/>
            <label for="scopes">"Scopes (space separated)"</label>
            <input type="text" id="scopes" name="scopes" value="openid profile email"/>
            <label for="redirect_uris">"Redirect URIs (one per line)"</label>
            <textarea id="redirect_uris" name="redirect_uris" rows="3"></textarea>
            <p><button type="submit" id="create-client">"Create client"</button></p>
        </form>
    }
    .into_any()
}

/// Shows a client secret exactly once.
pub fn secret_once(base: &str, client_id: &str, secret: &str, what: &str) -> AnyView {
    view! {
        <div class="notice success">{format!("{what} Copy the secret now: it is shown only once.")}</div>
        <div class="card">
            <p>"Client " <code>{client_id.to_owned()}</code></p>
            <div class="secret" id="client-secret">{secret.to_owned()}</div>
            <p><a class="button" href=format!("{base}clients")>"Back to clients"</a></p>
        </div>
    }
    .into_any()
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_scale_to_the_largest_bucket() {
        let buckets: Vec<Value> = (0..24)
            .map(|h| {
                serde_json::json!({
                    "hour": format!("2026-11-26T{h:02}:00:00Z"),
                    "sign_ins": if h == 5 { 40 } else { h % 3 },
                })
            })
            .collect();
        let svg = bar_chart("sign_ins", "Sign-ins", "#123456", &buckets);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 24);
        assert!(svg.contains("<title>05:00 UTC: 40</title>"), "{svg}");
        assert!(svg.contains(">40</text>"), "the axis shows the maximum");
        // The tallest bar fills the plot; an empty series draws flat bars, not NaN.
        assert!(svg.contains(r#"height="134.0""#), "{svg}");
        let empty = bar_chart("tokens", "Tokens", "#123456", &buckets);
        assert!(!empty.contains("NaN") && empty.contains(r#"height="0.0""#));
    }
}
