//! The frame every page is drawn in (top bar, navigation, styles), the pages outside it (no
//! access, signed out, errors) and notices. Rendered on the server with Leptos: plain HTML,
//! no WebAssembly or script; values are escaped by Leptos.

use leptos::prelude::*;

/// A section of the dashboard: its navigation path (service-relative) and page title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub active: &'static str,
    pub title: &'static str,
}

const fn section(active: &'static str, title: &'static str) -> Section {
    Section { active, title }
}

pub const OVERVIEW: Section = section("", "Overview");
pub const TENANTS: Section = section("tenants", "Tenants");
pub const USERS: Section = section("users", "Users and roles");
pub const CLIENTS: Section = section("clients", "Clients");
pub const PROVIDERS: Section = section("admin/providers", "External providers");
pub const EVENTS: Section = section("admin/security-events", "Security events");
pub const KEYS: Section = section("keys", "Signing keys");
pub const SETTINGS: Section = section("settings", "Identity settings");
pub const MAIL: Section = section("mail-templates", "Mail templates");
pub const SECRETS: Section = section("secrets", "Secrets");

/// The navigation, in order.
pub const NAV: &[Section] = &[
    OVERVIEW, TENANTS, USERS, CLIENTS, PROVIDERS, EVENTS, KEYS, SETTINGS, MAIL, SECRETS,
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
pub const PLATFORM_ONLY: &[Section] = &[TENANTS, CLIENTS, KEYS];

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
        .filter(|s| frame.platform || !PLATFORM_ONLY.contains(s))
        .map(|s| {
            let class = if s.active == frame.active {
                "active"
            } else {
                ""
            };
            view! { <a class=class href=format!("{base}{}", s.active)>{s.title}</a> }
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

/// The navigation section a service-relative request path belongs to (`/users/x/status` →
/// `users`): the longest [`NAV`] entry it starts with.
pub fn section_of(path: &str) -> &'static str {
    let path = path.trim_start_matches('/');
    NAV.iter()
        .map(|s| s.active)
        .filter(|p| {
            !p.is_empty()
                && (path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
        })
        .max_by_key(|p| p.len())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_map_to_their_section() {
        assert_eq!(section_of("/"), "");
        assert_eq!(section_of("/users/u1/status"), "users");
        assert_eq!(section_of("/keys/master-key/rewrap"), "keys");
        assert_eq!(section_of("/admin/providers/p/test"), "admin/providers");
        assert_eq!(
            section_of("/admin/security-events/export.csv"),
            "admin/security-events"
        );
        assert_eq!(section_of("/usersx"), "");
    }
}
