//! The overview: activity of the last 24 h (inline SVG bar charts, no script), the gateway's
//! health per service, and counts of clients, keys and tenants (platform admins).

use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use tansu_shared::admin_api::{Activity, ActivityBucket, Client, KeyPolicy, Page, Tenant};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::api::{self, ApiError, HealthReport};
use crate::error::PageError;
use crate::frame::notice;
use crate::page::AdminSession;
use crate::widgets::status_badge;

pub fn routes() -> Routes<AppState> {
    Routes::new().route("/", get(overview))
}

/// A GET of a platform admin's page only (`None` for tenant admins: not asked).
async fn platform_get<T: serde::de::DeserializeOwned>(
    admin: &AdminSession,
    path: &str,
) -> Option<Result<T, ApiError>> {
    if admin.is_platform() {
        Some(admin.identity().get(path).await)
    } else {
        None
    }
}

fn refused<T>(r: &Option<Result<T, ApiError>>) -> bool {
    matches!(r, Some(Err(ApiError::Unauthorized)))
}

fn count<T>(r: Option<Result<T, ApiError>>, len: impl FnOnce(T) -> usize) -> Option<usize> {
    r.and_then(Result::ok).map(len)
}

async fn overview(admin: AdminSession) -> Result<Response, PageError> {
    let identity = admin.identity();
    let (health, clients, keys, tenants, activity) = tokio::join!(
        api::health(&admin.state),
        platform_get::<Page<Client>>(&admin, "admin/clients?limit=500"),
        platform_get::<KeyPolicy>(&admin, "admin/keys/policies"),
        platform_get::<Page<Tenant>>(&admin, "admin/tenants?limit=500"),
        identity.get::<Activity>("admin/stats/activity?hours=24"),
    );
    if refused(&clients)
        || refused(&keys)
        || refused(&tenants)
        || matches!(activity, Err(ApiError::Unauthorized))
    {
        return Err(PageError::Redirect(admin.url("login")));
    }
    let content = view(
        health,
        count(clients, |p| p.items.len()),
        count(keys, |p| p.keys.len()),
        count(tenants, |p| p.items.len()),
        activity.map_err(|e| e.to_string()),
    );
    Ok(admin.render("", "Overview", content))
}

/// One series of the activity charts: (key, title, bar colour).
const SERIES: &[(&str, &str, &str)] = &[
    ("sign_ins", "Sign-ins", "#1f5fbf"),
    ("failures", "Failed sign-ins", "#b42318"),
    ("tokens", "Tokens issued", "#2f855a"),
];

fn series(counts: &tansu_shared::admin_api::Counts, key: &str) -> i64 {
    match key {
        "sign_ins" => counts.sign_ins,
        "failures" => counts.failures,
        _ => counts.tokens,
    }
}

/// A bar chart of one series over the buckets, as inline SVG built from numbers and hour
/// labels only: no script, nothing from the request. Each bar has a `<title>` (the browser
/// shows it on hover).
pub(crate) fn bar_chart(
    key: &str,
    title: &str,
    colour: &str,
    buckets: &[ActivityBucket],
) -> String {
    const W: f64 = 720.0;
    const H: f64 = 170.0;
    const TOP: f64 = 14.0;
    const BOTTOM: f64 = 22.0;
    const LEFT: f64 = 40.0;
    let values: Vec<u64> = buckets
        .iter()
        .map(|b| u64::try_from(series(&b.counts, key)).unwrap_or(0))
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
        // The hour label goes into markup unescaped: digits and `:` only.
        let hour = b
            .hour
            .get(11..16)
            .filter(|h| h.bytes().all(|c| c.is_ascii_digit() || c == b':'))
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
fn activity_view(activity: Result<Activity, String>) -> AnyView {
    let a = match activity {
        Ok(a) => a,
        Err(e) => return notice("error", format!("Activity is unavailable: {e}")),
    };
    let charts = SERIES
        .iter()
        .map(|(key, title, colour)| {
            let total = series(&a.totals, key);
            let svg = bar_chart(key, title, colour, &a.buckets);
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

fn view(
    health: Result<HealthReport, String>,
    clients: Option<usize>,
    keys: Option<usize>,
    tenants: Option<usize>,
    activity: Result<Activity, String>,
) -> AnyView {
    let count = |n: Option<usize>| n.map_or_else(|| "–".to_owned(), |n| n.to_string());
    let health_view = match health {
        Ok(report) => {
            let rows = report
                .services
                .into_iter()
                .map(|i| {
                    let name = i.service.filter(|s| !s.is_empty()).unwrap_or_else(|| i.route.clone());
                    view! {
                        <tr><td>{name}</td><td>{i.route.clone()}</td><td>{status_badge(&i.status)}</td></tr>
                    }
                })
                .collect_view();
            view! {
                <p>"Gateway: " {status_badge(&report.status)}</p>
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

#[cfg(test)]
mod tests {
    use tansu_shared::admin_api::Counts;

    use super::*;

    #[test]
    fn charts_scale_to_the_largest_bucket() {
        let buckets: Vec<ActivityBucket> = (0..24)
            .map(|h| ActivityBucket {
                hour: format!("2026-11-26T{h:02}:00:00Z"),
                counts: Counts {
                    sign_ins: if h == 5 { 40 } else { h % 3 },
                    ..Counts::default()
                },
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
        // Only an hour's digits reach the markup.
        let odd = [ActivityBucket {
            hour: "2026-11-26T<img/>x".into(),
            counts: Counts::default(),
        }];
        assert!(!bar_chart("tokens", "Tokens", "#123456", &odd).contains("<img"));
    }
}
