//! Pieces several pages draw: badges, hidden fields, the tenant picker, pagers, sort links
//! (and the sort allow-list they obey), progress bars and the confirmation form.

use leptos::prelude::*;
use tansu_shared::admin_api::Tenant;

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The query string `?tenant=<id>` (further parameters follow with `&`).
pub fn tq(tenant: &str) -> String {
    format!("?tenant={}", urlencode(tenant))
}

/// `…&after=<cursor>` when there is one.
pub fn after_param(after: &str) -> String {
    if after.is_empty() {
        String::new()
    } else {
        format!("&after={}", urlencode(after))
    }
}

/// A status as a coloured badge.
pub fn badge(text: &str) -> AnyView {
    let class = match text {
        "active" | "enabled" | "success" | "ok" | "current" => "badge ok",
        "suspended" | "disabled" | "revoked" | "failure" | "broken" => "badge bad",
        _ => "badge warn",
    };
    view! { <span class=class>{text.to_owned()}</span> }.into_any()
}

/// A service or key state as a badge: anything unknown is bad.
pub fn status_badge(status: &str) -> AnyView {
    let class = match status {
        "ready" | "current" | "ok" => "badge ok",
        "next" | "pending" | "retiring" => "badge warn",
        _ => "badge bad",
    };
    view! { <span class=class>{status.to_owned()}</span> }.into_any()
}

pub fn hidden(name: &'static str, value: &str) -> AnyView {
    view! { <input type="hidden" name=name value=value.to_owned()/> }.into_any()
}

/// The tenant picker of platform admins: a GET form to `action` listing the tenants.
pub fn tenant_picker(action: String, tenants: &[Tenant], current: &str) -> AnyView {
    let options = tenants
        .iter()
        .map(|t| {
            let selected = t.id == current;
            let label = format!("{} ({}) · {}", t.name, t.slug, t.status);
            view! { <option value=t.id.clone() selected=selected>{label}</option> }
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
pub fn tenant_line(t: &Tenant) -> AnyView {
    view! {
        <p class="muted" id="current-tenant">"Tenant: " <strong>{t.name.clone()}</strong>
            " (" <code>{t.slug.clone()}</code> ") " {badge(&t.status)}</p>
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

/// The sort of a list, from the query: a key of the list's allow-list (`(key, label)`, the
/// first is the default) and the direction. Anything else is refused with 400, as identity
/// refuses it. Cursor-paged lists (tenants, users, events) pass it on to identity; the complete
/// lists (clients, providers, secrets) are sorted here with [`ListSort::apply`].
#[derive(Debug, Clone)]
pub struct ListSort {
    pub key: &'static str,
    pub desc: bool,
}

/// A list's sort allow-list: `(key, label)`, the first the default.
pub type Sorts = &'static [(&'static str, &'static str)];

impl ListSort {
    /// The sort of `sort=…&order=…` (each empty: the default), or `None` outside the list.
    pub fn parse(sort: &str, order: &str, allowed: Sorts, default_desc: bool) -> Option<Self> {
        let key = match sort.trim() {
            "" => allowed.first()?.0,
            k => allowed.iter().find(|(a, _)| *a == k)?.0,
        };
        let desc = match order.trim() {
            "" => default_desc,
            "asc" => false,
            "desc" => true,
            _ => return None,
        };
        Some(Self { key, desc })
    }

    /// The first key of the list, ascending: the order a list returns to after a form action.
    pub fn default_of(allowed: Sorts) -> Self {
        Self {
            key: allowed.first().map_or("", |(k, _)| *k),
            desc: false,
        }
    }

    /// `sort=…&order=…`, for identity's API and the dashboard's own links.
    pub fn query(&self) -> String {
        format!(
            "sort={}&order={}",
            self.key,
            if self.desc { "desc" } else { "asc" }
        )
    }

    /// Sorts a complete list by the text `key_of` gives for the key (ties keep their order).
    pub fn apply<T>(&self, items: &mut [T], key_of: impl Fn(&T, &str) -> String) {
        items.sort_by_cached_key(|i| key_of(i, self.key).to_lowercase());
        if self.desc {
            items.reverse();
        }
    }
}

/// The sort links of a list (sorted on the server): one per allowed key; the current key's
/// link flips the direction (▲ ascending, ▼ descending). Paging restarts at the first page.
pub fn sort_links(base_href: &str, sorts: Sorts, sort: &ListSort) -> AnyView {
    let sep = if base_href.contains('?') { '&' } else { '?' };
    let links = sorts
        .iter()
        .map(|(key, label)| {
            let active = *key == sort.key;
            let order = if active && !sort.desc { "desc" } else { "asc" };
            let href = format!("{base_href}{sep}sort={key}&order={order}");
            let (class, text) = match (active, sort.desc) {
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

/// A progress bar with its accessible label and an "n of m" text; without a known `max`
/// (0) the bar is indeterminate.
pub fn bar(id: &'static str, label: String, value: i64, max: i64, text: String) -> AnyView {
    let bar = if max > 0 {
        let value = value.clamp(0, max);
        let percent = format!("{}%", value * 100 / max);
        view! {
            <progress id=id value=value.to_string() max=max.to_string() aria-label=label.clone()>{percent}</progress>
        }
        .into_any()
    } else {
        view! { <progress id=id aria-label=label.clone()></progress> }.into_any()
    };
    view! {
        <div class="progress">
            {bar}
            <div class="muted" id=format!("{id}-text")>{text}</div>
        </div>
    }
    .into_any()
}

/// "This page reloads itself…" below a running operation's progress.
pub fn refreshing(secs: u64, until: &'static str) -> AnyView {
    let unit = if secs == 1 { "second" } else { "seconds" };
    view! {
        <p class="muted" id="refreshing">{format!("This page reloads itself every {secs} {unit} {until}.")}</p>
    }
    .into_any()
}

/// `n h m min`, `m min s s` or `s s`.
pub fn duration_text(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {s} s")
    } else {
        format!("{s} s")
    }
}

/// Seconds as days (`1.0 days`), for key and rotation policies.
pub fn days(secs: u64) -> String {
    format!("{:.1} days", secs as f64 / 86_400.0)
}

/// The confirmation form of a destructive action: a POST to `action` with the CSRF token,
/// the action's `fields` and `confirm=yes`.
pub fn confirm_form(
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

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT_SORTS: Sorts = &[
        ("created", "Created"),
        ("name", "Name"),
        ("slug", "Slug"),
        ("status", "Status"),
    ];

    #[test]
    fn sorts_are_allow_listed() {
        let s = ListSort::parse("", "", TENANT_SORTS, false).unwrap();
        assert_eq!(s.query(), "sort=created&order=asc");
        let s = ListSort::parse("slug", "desc", TENANT_SORTS, false).unwrap();
        assert_eq!(s.query(), "sort=slug&order=desc");
        assert_eq!(
            ListSort::parse("", "", &[("time", "Time")], true)
                .unwrap()
                .query(),
            "sort=time&order=desc"
        );
        for (sort, order) in [("password_hash", ""), ("name&x=1", ""), ("", "up")] {
            assert!(
                ListSort::parse(sort, order, TENANT_SORTS, false).is_none(),
                "{sort} {order}"
            );
        }
        let mut rows = vec!["beta", "Alpha", "gamma"];
        let s = ListSort::parse("", "desc", &[("name", "Name")], false).unwrap();
        s.apply(&mut rows, |r, _| (*r).to_owned());
        assert_eq!(rows, ["gamma", "beta", "Alpha"]);
    }
}
