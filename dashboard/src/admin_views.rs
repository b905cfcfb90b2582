//! The pages of issue #8's admin sections: tenants, users and roles, external providers,
//! security events, identity settings and secrets. Plain HTML forms (each with the session's
//! CSRF token), rendered on the server with Leptos; values from identity are escaped by Leptos.

use leptos::prelude::*;
use serde_json::Value;

use crate::views::urlencode;

pub(crate) fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

pub(crate) fn list(v: &Value, key: &str) -> String {
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

fn badge(text: &str) -> AnyView {
    let class = match text {
        "active" | "enabled" | "success" | "ok" | "current" => "badge ok",
        "suspended" | "disabled" | "revoked" | "failure" | "broken" => "badge bad",
        _ => "badge warn",
    };
    view! { <span class=class>{text.to_owned()}</span> }.into_any()
}

fn hidden(name: &'static str, value: &str) -> AnyView {
    view! { <input type="hidden" name=name value=value.to_owned()/> }.into_any()
}

/// The query string `?tenant=<id>` (further parameters follow with `&`).
pub(crate) fn tq(tenant: &str) -> String {
    format!("?tenant={}", urlencode(tenant))
}

/// The tenant picker of platform admins: a GET form to `action` listing the tenants.
pub fn tenant_picker(action: String, tenants: &[Value], current: &str) -> AnyView {
    let options = tenants
        .iter()
        .map(|t| {
            let id = s(t, "id");
            let selected = id == current;
            let label = format!("{} ({}) · {}", s(t, "name"), s(t, "slug"), s(t, "status"));
            view! { <option value=id selected=selected>{label}</option> }
        })
        .collect_view();
    view! {
        <form class="card picker" method="get" action=action>
            <label for="tenant">"Tenant"</label>
            <select id="tenant" name="tenant">
                <option value="" selected=current.is_empty()>"— choose a tenant —"</option>
                {options}
            </select>
            <p><button class="secondary" type="submit" id="pick-tenant">"Show"</button></p>
        </form>
    }
    .into_any()
}

/// The tenant a page is about, as a line above its content.
pub fn tenant_line(t: &Value) -> AnyView {
    view! {
        <p class="muted" id="current-tenant">"Tenant: " <strong>{s(t, "name")}</strong>
            " (" <code>{s(t, "slug")}</code> ") " {badge(&s(t, "status"))}</p>
    }
    .into_any()
}

pub fn choose_tenant() -> AnyView {
    view! { <div class="notice">"Choose a tenant to manage."</div> }.into_any()
}

/// "Next page" (and "first page") links of a cursor-paged list.
pub fn pager(first: String, next: Option<String>) -> AnyView {
    let next = next.map(
        |href| view! { <a class="button secondary" id="next-page" href=href>"Next page →"</a> },
    );
    view! { <p class="pager"><a class="button secondary" href=first>"First page"</a> " " {next}</p> }
        .into_any()
}

/// The sort links of a list (sorted on the server): one per allowed key; the current key's
/// link flips the direction (▲ ascending, ▼ descending). Paging restarts at the first page.
pub fn sort_links(
    base_href: &str,
    sorts: &[(&'static str, &'static str)],
    current: &str,
    desc: bool,
) -> AnyView {
    let sep = if base_href.contains('?') { '&' } else { '?' };
    let links = sorts
        .iter()
        .map(|(key, label)| {
            let active = *key == current;
            let order = if active && !desc { "desc" } else { "asc" };
            let href = format!("{base_href}{sep}sort={key}&order={order}");
            let (class, text) = match (active, desc) {
                (true, false) => ("badge ok", format!("{label} ▲")),
                (true, true) => ("badge ok", format!("{label} ▼")),
                _ => ("badge", (*label).to_owned()),
            };
            let id = format!("sort-{key}");
            view! { <a class=class id=id href=href>{text}</a> " " }
        })
        .collect_view();
    view! { <p class="muted sorts">"Sort by: " {links}</p> }.into_any()
}

// ---------------------------------------------------------------- tenants

pub fn tenants(base: &str, csrf: &str, items: &[Value], pager: AnyView, sorts: AnyView) -> AnyView {
    let rows = items
        .iter()
        .map(|t| {
            let id = s(t, "id");
            let status = s(t, "status");
            let (to, label) = if status == "active" {
                ("suspend", "Suspend…")
            } else {
                ("activate", "Activate…")
            };
            let href = format!("{base}tenants/{}/status?to={to}", urlencode(&id));
            let users = format!("{base}users?tenant={}", urlencode(&id));
            view! {
                <tr>
                    <td><strong>{s(t, "name")}</strong><br/><code>{id.clone()}</code></td>
                    <td><code>{s(t, "slug")}</code></td>
                    <td>{badge(&status)}</td>
                    <td>{s(t, "created_at")}</td>
                    <td><a href=users>"Users"</a> " " <a class="button secondary" href=href>{label}</a></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {sorts}
        <div class="table"><table>
            <thead><tr><th>"Tenant"</th><th>"Slug"</th><th>"Status"</th><th>"Created"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        {pager}
        <h2>"Create a tenant"</h2>
        <form class="card" method="post" action=format!("{base}tenants")>
            {hidden("csrf", csrf)}
            <label for="slug">"Slug (a-z 0-9 -)"</label>
            <input type="text" id="slug" name="slug" required=true maxlength="63"/>
            <label for="name">"Name"</label>
            <input type="text" id="name" name="name" required=true maxlength="200"/>
            <p><button type="submit" id="create-tenant">"Create tenant"</button></p>
        </form>
    }
    .into_any()
}

// ---------------------------------------------------------------- users

pub fn users(
    base: &str,
    csrf: &str,
    tenant: &str,
    search: &str,
    items: &[Value],
    pager: AnyView,
    sorts: AnyView,
) -> AnyView {
    let rows = items
        .iter()
        .map(|u| {
            let id = s(u, "id");
            let disabled = u.get("disabled").and_then(Value::as_bool).unwrap_or(false);
            let (to, label) = if disabled {
                ("enable", "Enable…")
            } else {
                ("disable", "Disable…")
            };
            let status_href = format!("{base}users/{}/status{}&to={to}", urlencode(&id), tq(tenant));
            let password_href = format!("{base}users/{}/password{}", urlencode(&id), tq(tenant));
            let mfa_href = format!("{base}users/{}/mfa{}", urlencode(&id), tq(tenant));
            let roles: Vec<String> = u
                .get("roles")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            let role_buttons = roles
                .iter()
                .map(|r| {
                    let href = format!(
                        "{base}users/{}/roles{}&role={}&action=revoke",
                        urlencode(&id),
                        tq(tenant),
                        urlencode(r)
                    );
                    view! { <a class="badge" title="Revoke…" href=href>{format!("{r} ✕")}</a> " " }
                })
                .collect_view();
            let assign = view! {
                <form method="post" action=format!("{base}users/{}/roles", urlencode(&id)) class="inline">
                    {hidden("csrf", csrf)}
                    {hidden("tenant", tenant)}
                    {hidden("action", "assign")}
                    <select name="role" aria-label="Role to assign">
                        <option value="User">"User"</option>
                        <option value="Admin">"Admin"</option>
                        <option value="Owner">"Owner"</option>
                    </select>
                    <button class="secondary" type="submit">"Assign"</button>
                </form>
            };
            view! {
                <tr>
                    <td><strong>{s(u, "email")}</strong><br/>{s(u, "name")}<br/><code class="muted">{id.clone()}</code></td>
                    <td>{badge(if disabled { "disabled" } else { "enabled" })}</td>
                    <td>{role_buttons}{assign}</td>
                    <td>
                        <a class="button secondary" href=status_href>{label}</a> " "
                        <a class="button secondary" href=password_href>"Reset password…"</a> " "
                        <a class="button secondary" href=mfa_href>"Reset MFA…"</a>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <form class="card" method="get" action=format!("{base}users")>
            {hidden("tenant", tenant)}
            <label for="search">"Search (email or name)"</label>
            <input type="text" id="search" name="search" value=search.to_owned() maxlength="100"/>
            <p><button class="secondary" type="submit" id="search-users">"Search"</button></p>
        </form>
        {sorts}
        <div class="table"><table>
            <thead><tr><th>"User"</th><th>"Status"</th><th>"Roles"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        {pager}
        <h2>"Invite or create a user"</h2>
        <form class="card" method="post" action=format!("{base}users")>
            {hidden("csrf", csrf)}
            {hidden("tenant", tenant)}
            <label for="email">"Email"</label>
            <input type="text" id="email" name="email" required=true maxlength="320"/>
            <label for="user-name">"Name"</label>
            <input type="text" id="user-name" name="name" maxlength="200"/>
            <label for="password">"Initial password (optional; empty: the user needs a reset)"</label>
            <input type="password" id="password" name="password" autocomplete="new-password"/>
            <label for="role">"Role"</label>
            <select id="role" name="role">
                <option value="User">"User"</option>
                <option value="Admin">"Admin"</option>
                <option value="Owner">"Owner"</option>
            </select>
            <p class="muted">"An existing account with this email is invited: it keeps its password."</p>
            <p><button type="submit" id="invite-user">"Invite user"</button></p>
        </form>
    }
    .into_any()
}

pub fn password_form(base: &str, csrf: &str, tenant: &str, user: &Value) -> AnyView {
    let action = format!("{base}users/{}/password", urlencode(&s(user, "id")));
    view! {
        <form class="card" method="post" action=action>
            {hidden("csrf", csrf)}
            {hidden("tenant", tenant)}
            <p>"New password for " <strong>{s(user, "email")}</strong>
               ". The tenant's password policy applies; the user's current password stops working."</p>
            <label for="new-password">"New password"</label>
            <input type="password" id="new-password" name="password" required=true autocomplete="new-password"/>
            {hidden("confirm", "yes")}
            <p><button class="danger" type="submit" id="reset-password">"Reset password"</button> " "
               <a class="button secondary" href=format!("{base}users{}", tq(tenant))>"Cancel"</a></p>
        </form>
    }
    .into_any()
}

// ---------------------------------------------------------------- providers

pub fn providers(base: &str, csrf: &str, tenant: &str, items: &[Value], sorts: AnyView) -> AnyView {
    let rows = items
        .iter()
        .map(|p| {
            let id = s(p, "id");
            let enabled = p.get("enabled").and_then(Value::as_bool).unwrap_or(false);
            let pid = urlencode(&id);
            let edit = format!("{base}admin/providers/{pid}{}", tq(tenant));
            let (to, label) = if enabled {
                ("disable", "Disable…")
            } else {
                ("enable", "Enable…")
            };
            let status = format!("{base}admin/providers/{pid}/status{}&to={to}", tq(tenant));
            let delete = format!("{base}admin/providers/{pid}/delete{}", tq(tenant));
            let secret = if p.get("has_secret").and_then(Value::as_bool).unwrap_or(false) {
                "set"
            } else {
                "none"
            };
            view! {
                <tr>
                    <td><strong>{s(p, "name")}</strong><br/><code class="muted">{id.clone()}</code></td>
                    <td><code>{s(p, "issuer")}</code></td>
                    <td><code>{s(p, "client_id")}</code><br/><span class="muted">{format!("secret: {secret}")}</span></td>
                    <td>{list(p, "scopes")}</td>
                    <td>{badge(if enabled { "enabled" } else { "disabled" })}</td>
                    <td>
                        <form method="post" action=format!("{base}admin/providers/{pid}/test") class="inline">
                            {hidden("csrf", csrf)}
                            {hidden("tenant", tenant)}
                            <button class="secondary" type="submit">"Test discovery"</button>
                        </form>
                        " " <a class="button secondary" href=edit>"Edit"</a>
                        " " <a class="button secondary" href=status>{label}</a>
                        " " <a class="button secondary" href=delete>"Delete…"</a>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {sorts}
        <div class="table"><table>
            <thead><tr><th>"Provider"</th><th>"Issuer"</th><th>"Client"</th><th>"Scopes"</th><th>"Status"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        <h2>"Add an OIDC provider"</h2>
        {provider_form(base, csrf, tenant, None)}
    }
    .into_any()
}

/// The add (no provider) or edit form.
pub fn provider_form(base: &str, csrf: &str, tenant: &str, p: Option<&Value>) -> AnyView {
    let empty = Value::Null;
    let v = p.unwrap_or(&empty);
    let action = match p {
        Some(p) => format!("{base}admin/providers/{}", urlencode(&s(p, "id"))),
        None => format!("{base}admin/providers"),
    };
    let scopes = if p.is_some() {
        v.get("scopes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    } else {
        "openid profile email".to_owned()
    };
    let has_secret = v
        .get("has_secret")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let secret_hint = if has_secret {
        "Client secret (set; leave empty to keep it)"
    } else {
        "Client secret (optional)"
    };
    let remove = (p.is_some() && has_secret).then(|| {
        view! {
            <label><input type="checkbox" name="remove_secret" value="yes"/>" Remove the stored secret"</label>
        }
    });
    let button = if p.is_some() {
        "Save provider"
    } else {
        "Add provider"
    };
    view! {
        <form class="card" method="post" action=action>
            {hidden("csrf", csrf)}
            {hidden("tenant", tenant)}
            <label for="provider-name">"Display name"</label>
            <input type="text" id="provider-name" name="name" required=true maxlength="200" value=s(v, "name")/>
            <label for="issuer">"Issuer URL (https; its discovery document is /.well-known/openid-configuration)"</label>
            <input type="text" id="issuer" name="issuer" required=true maxlength="2048" value=s(v, "issuer")/>
            <label for="client_id">"Client id"</label>
            <input type="text" id="client_id" name="client_id" required=true maxlength="256" value=s(v, "client_id")/>
            <label for="client_secret">{secret_hint}</label>
            <input type="password" id="client_secret" name="client_secret" autocomplete="off"/>
            {remove}
            <label for="scopes">"Scopes (space separated, with openid)"</label>
            <input type="text" id="scopes" name="scopes" value=scopes/>
            <p><button type="submit" id="save-provider">{button}</button></p>
        </form>
    }
    .into_any()
}

pub fn discovery_result(name: &str, r: &Value) -> AnyView {
    let ok = r.get("ok").and_then(Value::as_bool).unwrap_or(false);
    let row = |label: &'static str, key: &str| {
        let v = s(r, key);
        (!v.is_empty()).then(|| view! { <tr><th>{label}</th><td><code>{v}</code></td></tr> })
    };
    let headline = if ok {
        format!("Discovery of {name} works.")
    } else {
        format!("Discovery of {name} failed: {}", s(r, "reason"))
    };
    view! {
        <div class={if ok { "notice success" } else { "notice error" }} id="discovery-result" role="status">{headline}</div>
        <div class="table"><table><tbody>
            {row("Discovery URL", "discovery_url")}
            {row("HTTP status", "http_status")}
            {row("Issuer", "issuer")}
            {row("Authorization endpoint", "authorization_endpoint")}
            {row("Token endpoint", "token_endpoint")}
            {row("JWKS", "jwks_uri")}
            {row("Time (ms)", "elapsed_ms")}
        </tbody></table></div>
    }
    .into_any()
}

// ---------------------------------------------------------------- security events

/// The filter values of the events page.
#[derive(Debug, Default, Clone)]
pub struct EventFilters {
    pub tenant: String,
    pub kind: String,
    pub actor: String,
    pub outcome: String,
    pub from: String,
    pub to: String,
}

pub const EVENT_TYPES: &[&str] = &[
    "sign_in",
    "sign_in.locked",
    "refresh.reuse_detected",
    "keys.rotate",
    "client.change",
    "tenant.change",
    "user.change",
    "role.change",
    "provider.change",
    "secret.read",
    "secret.write",
];

#[allow(clippy::too_many_arguments)]
pub fn events(
    base: &str,
    f: &EventFilters,
    tenant_choice: Option<AnyView>,
    items: &[Value],
    verify: AnyView,
    pager: AnyView,
    sorts: AnyView,
    export_query: &str,
) -> AnyView {
    let types = EVENT_TYPES
        .iter()
        .map(|t| view! { <option value=*t selected={f.kind == *t}>{*t}</option> })
        .collect_view();
    let rows = items
        .iter()
        .map(|e| {
            let details = e
                .get("details")
                .map(|d| serde_json::to_string_pretty(d).unwrap_or_default())
                .unwrap_or_default();
            let tenant = {
                let t = s(e, "tenant_id");
                if t.is_empty() {
                    "platform".to_owned()
                } else {
                    t
                }
            };
            view! {
                <tr class="event">
                    <td class="nowrap">{s(e, "time")}</td>
                    <td><code>{s(e, "type")}</code></td>
                    <td>{badge(&s(e, "outcome"))}</td>
                    <td><code>{s(e, "actor")}</code></td>
                    <td>
                        <details>
                            <summary>"Detail"</summary>
                            <dl class="detail">
                                <dt>"Id"</dt><dd><code>{s(e, "id")}</code></dd>
                                <dt>"Tenant"</dt><dd><code>{tenant}</code></dd>
                                <dt>"Sequence"</dt><dd>{s(e, "seq")}</dd>
                                <dt>"IP"</dt><dd>{s(e, "ip")}</dd>
                                <dt>"User agent"</dt><dd>{s(e, "user_agent")}</dd>
                                <dt>"Trace id"</dt><dd><code>{s(e, "trace_id")}</code></dd>
                                <dt>"Hash"</dt><dd><code>{s(e, "hash")}</code></dd>
                                <dt>"Previous hash"</dt><dd><code>{s(e, "prev_hash")}</code></dd>
                            </dl>
                            <pre>{details}</pre>
                        </details>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let outcome_opt = |v: &'static str, label: &'static str| {
        view! { <option value=v selected={f.outcome == v}>{label}</option> }
    };
    view! {
        {verify}
        <form class="card filters" method="get" action=format!("{base}admin/security-events")>
            {tenant_choice}
            <div class="grid">
                <div>
                    <label for="type">"Type"</label>
                    <select id="type" name="type">
                        <option value="" selected=f.kind.is_empty()>"any"</option>
                        {types}
                    </select>
                </div>
                <div>
                    <label for="actor">"Actor (user:<id>, client:<id>, system)"</label>
                    <input type="text" id="actor" name="actor" value=f.actor.clone() maxlength="200"/>
                </div>
                <div>
                    <label for="outcome">"Outcome"</label>
                    <select id="outcome" name="outcome">
                        {outcome_opt("", "any")}
                        {outcome_opt("success", "success")}
                        {outcome_opt("failure", "failure")}
                    </select>
                </div>
                <div>
                    <label for="from">"From (UTC)"</label>
                    <input type="datetime-local" id="from" name="from" value=f.from.clone()/>
                </div>
                <div>
                    <label for="to">"To (UTC)"</label>
                    <input type="datetime-local" id="to" name="to" value=f.to.clone()/>
                </div>
            </div>
            <p><button type="submit" id="filter-events">"Filter"</button> " "
               <a class="button secondary" id="export-ndjson" href=format!("{base}admin/security-events/export.ndjson{export_query}")>"Export NDJSON"</a> " "
               <a class="button secondary" id="export-csv" href=format!("{base}admin/security-events/export.csv{export_query}")>"Export CSV"</a></p>
        </form>
        {sorts}
        <div class="table"><table>
            <thead><tr><th>"Time"</th><th>"Type"</th><th>"Outcome"</th><th>"Actor"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        {pager}
    }
    .into_any()
}

/// The tenant filter of platform admins: all, the platform's own events, or one tenant.
pub fn event_tenant_choice(tenants: &[Value], current: &str) -> AnyView {
    let options = tenants
        .iter()
        .map(|t| {
            let id = s(t, "id");
            let selected = id == current;
            let label = format!("{} ({})", s(t, "name"), s(t, "slug"));
            view! { <option value=id selected=selected>{label}</option> }
        })
        .collect_view();
    view! {
        <label for="tenant">"Tenant"</label>
        <select id="tenant" name="tenant">
            <option value="" selected=current.is_empty()>"all"</option>
            <option value="platform" selected={current == "platform"}>"platform"</option>
            {options}
        </select>
    }
    .into_any()
}

pub fn key_rotation_heading() -> AnyView {
    view! { <h2>"Signing key rotation"</h2> }.into_any()
}

/// Chain verification on request (it reads the whole chain): a form starting identity's
/// verification job; the events page (with `filters`, a query string) then shows its progress.
pub fn verify_link(what: &str, action: String, csrf: &str, tenant: &str, filters: &str) -> AnyView {
    view! {
        <div class="notice" id="chain-status">{format!("Event chain of {what}: not verified yet. ")}
            <form class="inline" method="post" action=action>
                {hidden("csrf", csrf)}
                {hidden("tenant", tenant)}
                {hidden("filters", filters)}
                <button class="secondary" type="submit" id="verify-chain">"Verify the chain"</button>
            </form>
        </div>
    }
    .into_any()
}

/// A running verification job: events checked of the chain's events when it started.
pub fn verification_running(what: &str, job: &Value) -> AnyView {
    let n = |k: &str| job.get(k).and_then(Value::as_i64).unwrap_or(0);
    let (checked, total) = (n("checked"), n("total"));
    view! {
        <div class="notice" id="chain-status">
            {format!("Verifying the event chain of {what}…")}
            {crate::progress::bar(
                "chain-progress",
                format!("Chain verification of {what}"),
                checked,
                total,
                format!("{checked} of {total} events checked"),
            )}
            {crate::progress::refreshing(1, "until the verification is done")}
        </div>
    }
    .into_any()
}

pub fn chain_status(what: &str, v: Result<&Value, String>) -> AnyView {
    match v {
        Ok(v) if v.get("ok").and_then(Value::as_bool) == Some(true) => view! {
            <div class="notice success" id="chain-status">{format!("Event chain of {what}: intact ({} events checked).", s(v, "checked"))}</div>
        }
        .into_any(),
        Ok(v) => {
            let broken = v.get("first_broken").cloned().unwrap_or(Value::Null);
            view! {
                <div class="notice error" id="chain-status">{format!(
                    "Event chain of {what}: BROKEN at event {} (seq {}): {}",
                    s(&broken, "id"), s(&broken, "seq"), s(&broken, "reason")
                )}</div>
            }
            .into_any()
        }
        Err(e) => view! { <div class="notice" id="chain-status">{format!("Chain verification unavailable: {e}")}</div> }.into_any(),
    }
}

// ---------------------------------------------------------------- settings

fn num(policy: &Value, key: &str) -> String {
    match policy.get(key) {
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The tenant's policy form (platform admins, and the tenant's own Owners and Admins).
pub fn settings(base: &str, csrf: &str, tenant: &Value, keys: AnyView) -> AnyView {
    let p = tenant.get("policy").cloned().unwrap_or(Value::Null);
    let tid = s(tenant, "id");
    let mfa = p
        .get("mfa_required")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let field = |id: &'static str, label: &'static str, hint: &'static str| {
        view! {
            <label for=id>{label}</label>
            <input type="number" id=id name=id min="0" value=num(&p, id)/>
            <span class="muted">{hint}</span>
        }
    };
    view! {
        <form class="card" method="post" action=format!("{base}settings")>
            {hidden("csrf", csrf)}
            {hidden("tenant", &tid)}
            <h2>"Tokens and sessions"</h2>
            {field("access_token_lifetime_secs", "Access token lifetime (seconds)", "empty: the client's or the service default; 30 s – 1 day")}
            {field("refresh_token_lifetime_secs", "Refresh token lifetime (seconds)", "empty: the service default; 60 s – 90 days")}
            {field("session_timeout_secs", "Session timeout (seconds)", "empty: the service default; 60 s – 30 days")}
            <h2>"Passwords and lockout"</h2>
            {field("password_min_length", "Minimum password length", "8 – 128")}
            {field("lockout_threshold", "Failed sign-ins before a lock", "1 – 100")}
            {field("lockout_duration_secs", "Lock duration (seconds)", "1 s – 1 day")}
            <h2>"Multi-factor authentication"</h2>
            <label><input type="checkbox" id="mfa_required" name="mfa_required" value="yes" checked=mfa/>" MFA required for this tenant's users"</label>
            <p><button type="submit" id="save-policy">"Save policy"</button></p>
        </form>
        <h2>"Signing key rotation"</h2>
        {keys}
    }
    .into_any()
}

pub fn key_policy(base: &str, policy: &Value) -> AnyView {
    let days = |key: &str| {
        policy
            .get(key)
            .and_then(Value::as_u64)
            .map_or_else(String::new, |secs| {
                format!("{:.1} days", secs as f64 / 86_400.0)
            })
    };
    view! {
        <div class="card" id="key-policy">
            <p>"Keys rotate every " <strong>{days("rotation_period_secs")}</strong>
               "; a new key is published " <strong>{days("lead_secs")}</strong>
               " before it signs; a retired key stays published for " <strong>{days("grace_secs")}</strong>
               ". Default algorithm " <strong>{s(policy, "default_alg")}</strong>
               ". The policy is the identity service's configuration (key_rotation_*)."</p>
            <a class="button secondary" href=format!("{base}keys")>"Signing keys"</a>
        </div>
    }
    .into_any()
}

// ---------------------------------------------------------------- secrets

pub fn secrets(base: &str, csrf: &str, tenant: &str, items: &[Value], sorts: AnyView) -> AnyView {
    let rows = items
        .iter()
        .map(|sec| {
            let name = s(sec, "name");
            let versions = sec.get("versions").and_then(Value::as_array).cloned().unwrap_or_default();
            let live = versions
                .iter()
                .filter(|v| !v.get("revoked").and_then(Value::as_bool).unwrap_or(false))
                .count();
            let latest = versions.last().cloned().unwrap_or(Value::Null);
            let version_list = versions
                .iter()
                .map(|v| {
                    let revoked = v.get("revoked").and_then(Value::as_bool).unwrap_or(false);
                    format!("v{}{}", s(v, "version"), if revoked { " (revoked)" } else { "" })
                })
                .collect::<Vec<_>>()
                .join(", ");
            let revoke = (live > 0).then(|| {
                let href = format!("{base}secrets/{}/revoke{}", urlencode(&name), tq(tenant));
                view! { <a class="button secondary" href=href>"Revoke…"</a> }
            });
            let rotate = view! {
                <form method="post" action=format!("{base}secrets") class="inline">
                    {hidden("csrf", csrf)}
                    {hidden("tenant", tenant)}
                    {hidden("name", &name)}
                    <input type="password" name="value" aria-label="New value" placeholder="new value" autocomplete="off" required=true/>
                    <button class="secondary" type="submit">"Rotate"</button>
                </form>
            };
            view! {
                <tr>
                    <td><code>{name.clone()}</code></td>
                    <td>{version_list}</td>
                    <td>{s(&latest, "created_at")}</td>
                    <td>{badge(if live > 0 { "active" } else { "revoked" })}</td>
                    <td>{rotate} " " {revoke}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="muted">"Values are write-only here: lists show names and versions, never values."</p>
        {sorts}
        <div class="table"><table>
            <thead><tr><th>"Name"</th><th>"Versions"</th><th>"Latest"</th><th>"Status"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        <h2>"Add a secret"</h2>
        <form class="card" method="post" action=format!("{base}secrets")>
            {hidden("csrf", csrf)}
            {hidden("tenant", tenant)}
            <label for="secret-name">"Name (A-Z a-z 0-9 - _ .)"</label>
            <input type="text" id="secret-name" name="name" required=true maxlength="128"/>
            <label for="secret-value">"Value"</label>
            <input type="password" id="secret-value" name="value" required=true autocomplete="off"/>
            <p><button type="submit" id="add-secret">"Store secret"</button></p>
        </form>
    }
    .into_any()
}

/// A confirmation page for a destructive action, carrying the form's fields.
pub fn confirm(
    action: String,
    csrf: &str,
    fields: Vec<(&'static str, String)>,
    question: String,
    button: &'static str,
    cancel: String,
) -> AnyView {
    let fields = fields
        .into_iter()
        .map(|(k, v)| view! { <input type="hidden" name=k value=v/> })
        .collect_view();
    view! {
        <div class="card">
            <p>{question}</p>
            <form method="post" action=action>
                {hidden("csrf", csrf)}
                {fields}
                <input type="hidden" name="confirm" value="yes"/>
                <button class="danger" type="submit" id="confirm">{button}</button>
                " "
                <a class="button secondary" href=cancel>"Cancel"</a>
            </form>
        </div>
    }
    .into_any()
}
