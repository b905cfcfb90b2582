//! The access matrices of `docs/authorization.md`, parsed for the services' isolation tests: one
//! table per service (`### <service>` under "database-svc and storage-svc"), one row per route
//! (`| METHOD /path | scope | expectation per actor… |`), so that route × actor expectations
//! come from the document and a route the document does not know fails the test.

use std::collections::BTreeSet;

/// The actors, in the document's column order.
pub const ACTORS: [&str; 6] = [
    "own",
    "wrong-scope",
    "wrong-audience",
    "other",
    "platform",
    "anon",
];

/// What an actor must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Passes the checks: anything but 401, 403 or a server error.
    Ok,
    /// Refused with this status, changing nothing.
    Refused(u16),
}

impl Expect {
    /// Whether `status` is what the document says.
    pub fn admits(self, status: u16) -> bool {
        match self {
            Expect::Ok => !matches!(status, 401 | 403) && status < 500,
            Expect::Refused(code) => status == code,
        }
    }
}

/// One route of a service's table.
#[derive(Debug, Clone)]
pub struct Row {
    pub method: String,
    /// The router's path template (`/api/buckets/{bucket}`).
    pub path: String,
    /// The scope the route requires.
    pub scope: String,
    /// One expectation per actor of [`ACTORS`].
    pub expect: Vec<Expect>,
}

/// The table of `service` (its `### service` heading) in `doc`. Panics on a malformed row, so a
/// typo in the document fails the test that reads it.
pub fn table(doc: &str, service: &str) -> Vec<Row> {
    let heading = format!("### {service}");
    let mut lines = doc.lines().skip_while(|l| l.trim() != heading);
    assert!(lines.next().is_some(), "no `{heading}` in the document");
    let rows: Vec<Row> = lines
        .take_while(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| route") && !l.starts_with("|-"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 2 + ACTORS.len(), "row: {line}");
            let (method, path) = cells[0].split_once(' ').expect("METHOD /path");
            let expect = cells[2..]
                .iter()
                .map(|c| match *c {
                    "ok" => Expect::Ok,
                    code => Expect::Refused(code.parse().expect("ok or a status")),
                })
                .collect();
            Row {
                method: method.to_owned(),
                path: path.to_owned(),
                scope: cells[1].to_owned(),
                expect,
            }
        })
        .collect();
    assert!(!rows.is_empty(), "`{heading}` has no rows");
    rows
}

/// How the table and the router differ: `(routes without a row, rows without a route)`. `HEAD`
/// rows stand for the `GET` route of the same path (the router serves HEAD with GET, and
/// [`super::http::routed_methods`] does not probe it).
pub fn differences(
    rows: &[Row],
    routed: &BTreeSet<(String, String)>,
) -> (Vec<String>, Vec<String>) {
    let documented: BTreeSet<(String, String)> = rows
        .iter()
        .filter(|r| r.method != "HEAD")
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let fmt = |(m, p): &(String, String)| format!("{m} {p}");
    let undocumented = routed.difference(&documented).map(fmt).collect();
    let mut unrouted: Vec<String> = documented.difference(routed).map(fmt).collect();
    for r in rows.iter().filter(|r| r.method == "HEAD") {
        if !routed.contains(&("GET".to_owned(), r.path.clone())) {
            unrouted.push(format!("HEAD {}", r.path));
        }
    }
    (undocumented, unrouted)
}

/// Fills a path template: each `{name}` (or `{*name}`) segment by `value(name)`.
pub fn concrete(template: &str, mut value: impl FnMut(&str) -> String) -> String {
    template
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => value(name.trim_start_matches('*')),
                None => seg.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
# Authorization
| `GET /identity` | ok |
### svc
| route | scope | own | wrong-scope | wrong-audience | other | platform | anon |
|---|---|---|---|---|---|---|---|
| GET /api/things/{id} | s.read | ok | 403 | 401 | 403 | 403 | 401 |
| HEAD /api/things/{id} | s.read | ok | 403 | 401 | 403 | 403 | 401 |
| PUT /admin/{tenant} | s.admin | 403 | 403 | 401 | 403 | ok | 401 |
### next
| GET /elsewhere | x | ok | ok | ok | ok | ok | ok |
";

    #[test]
    fn a_service_table_is_read_from_its_section_only() {
        let rows = table(DOC, "svc");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].path, "/api/things/{id}");
        assert_eq!(rows[2].scope, "s.admin");
        assert_eq!(rows[2].expect[4], Expect::Ok);
        assert_eq!(rows[2].expect[0], Expect::Refused(403));
        let routed = BTreeSet::from([
            ("GET".to_owned(), "/api/things/{id}".to_owned()),
            ("POST".to_owned(), "/api/new".to_owned()),
        ]);
        let (undocumented, unrouted) = differences(&rows, &routed);
        assert_eq!(undocumented, ["POST /api/new"]);
        assert_eq!(unrouted, ["PUT /admin/{tenant}"]);
        assert_eq!(
            concrete("/b/{bucket}/o/{*key}", |n| n.to_uppercase()),
            "/b/BUCKET/o/KEY"
        );
        assert!(Expect::Ok.admits(404) && !Expect::Ok.admits(403) && !Expect::Ok.admits(500));
    }
}
