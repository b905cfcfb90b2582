//! Sorted keyset paging for the admin lists (`sort`, `order`, `after`).
//!
//! A list is ordered by an allow-listed sort key and then by id (ids are unique UUIDv7, so the
//! order is total and a cursor names one exact position). Sorting by id alone (`created`) keeps
//! the plain id as the cursor, as before; any other key's cursor is
//! `<base64url(key value)>.<id>`, opaque to clients. The clause compares `(key, id)` against the
//! cursor, so pages neither repeat nor skip rows while rows are added.

// `Problem` is the error type of the handlers these helpers serve.
#![allow(clippy::result_large_err)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use tansu_shared::Problem;

/// The `sort`/`order`/`after`/`limit` query of a sorted list.
#[derive(Debug, Default, Deserialize)]
pub struct SortQuery {
    pub sort: Option<String>,
    pub order: Option<String>,
    pub after: Option<String>,
}

/// A validated sort: the SQL expression of the key (from the allow-list; `None` = id only),
/// the direction and the decoded cursor.
#[derive(Debug, Clone, Default)]
pub struct Sort {
    pub key: Option<&'static str>,
    pub desc: bool,
    /// (key value, id) after which the page starts.
    pub after: Option<(String, String)>,
}

impl Sort {
    /// Validates `q` against `allowed` (`(name, SQL expression)`; an empty expression sorts by
    /// id). Unknown names, orders or cursors are 400s.
    pub fn parse(q: &SortQuery, allowed: &[(&str, &'static str)]) -> Result<Self, Problem> {
        let name = q.sort.as_deref().unwrap_or("created");
        let Some((_, expr)) = allowed.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
            return Err(Problem::bad_request(format!(
                "sort: one of {}",
                names.join(", ")
            )));
        };
        let desc = match q.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(Problem::bad_request("order: asc or desc")),
        };
        let key = (!expr.is_empty()).then_some(*expr);
        let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
            None => None,
            Some(a) if key.is_none() => Some((String::new(), a.to_owned())),
            Some(a) => {
                Some(decode_cursor(a).ok_or_else(|| Problem::bad_request("after: not a cursor"))?)
            }
        };
        Ok(Self { key, desc, after })
    }

    /// The cursor that continues after a row with this key value and id.
    pub fn cursor(&self, value: &str, id: &str) -> String {
        match self.key {
            None => id.to_owned(),
            Some(_) => format!("{}.{id}", URL_SAFE_NO_PAD.encode(value)),
        }
    }

    /// The `WHERE` condition (parameters from `$first`; `"1 = 1"` without a cursor), the
    /// `ORDER BY` list and the text values to bind, in order.
    pub fn sql(&self, id_col: &str, first: usize) -> (String, String, Vec<String>) {
        let (cmp, dir) = if self.desc {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let order = match self.key {
            Some(k) => format!("{k} {dir}, {id_col} {dir}"),
            None => format!("{id_col} {dir}"),
        };
        let Some((value, id)) = &self.after else {
            return ("1 = 1".into(), order, Vec::new());
        };
        match self.key {
            None => (format!("{id_col} {cmp} ${first}"), order, vec![id.clone()]),
            Some(k) => (
                format!(
                    "({k} {cmp} ${first} OR ({k} = ${first} AND {id_col} {cmp} ${}))",
                    first + 1
                ),
                order,
                vec![value.clone(), id.clone()],
            ),
        }
    }
}

fn decode_cursor(c: &str) -> Option<(String, String)> {
    let (value, id) = c.split_once('.')?;
    let value = String::from_utf8(URL_SAFE_NO_PAD.decode(value).ok()?).ok()?;
    (!id.is_empty() && id.len() <= 64).then(|| (value, id.to_owned()))
}

/// The next cursor when a page came back full.
pub fn next_cursor<T>(
    rows: &[T],
    limit: i64,
    sort: &Sort,
    key_and_id: impl Fn(&T) -> (String, String),
) -> Option<String> {
    if i64::try_from(rows.len()).unwrap_or(0) != limit {
        return None;
    }
    rows.last().map(|r| {
        let (k, id) = key_and_id(r);
        sort.cursor(&k, &id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: &[(&str, &str)] = &[("created", ""), ("name", "LOWER(name)")];

    fn q(sort: Option<&str>, order: Option<&str>, after: Option<&str>) -> SortQuery {
        SortQuery {
            sort: sort.map(str::to_owned),
            order: order.map(str::to_owned),
            after: after.map(str::to_owned),
        }
    }

    #[test]
    fn sorts_are_allow_listed_and_cursors_round_trip() {
        let s = Sort::parse(&q(None, None, Some("abc")), ALLOWED).unwrap();
        assert_eq!(s.sql("id", 2).0, "id > $2");
        let s = Sort::parse(&q(Some("name"), Some("desc"), None), ALLOWED).unwrap();
        let c = s.cursor("Ä b.c", "0190-id");
        let s = Sort::parse(&q(Some("name"), Some("desc"), Some(&c)), ALLOWED).unwrap();
        assert_eq!(s.after, Some(("Ä b.c".to_owned(), "0190-id".to_owned())));
        let (clause, order, binds) = s.sql("u.id", 3);
        assert_eq!(
            clause,
            "(LOWER(name) < $3 OR (LOWER(name) = $3 AND u.id < $4))"
        );
        assert_eq!(order, "LOWER(name) DESC, u.id DESC");
        assert_eq!(binds.len(), 2);
        for bad in [
            q(Some("password_hash"), None, None),
            q(Some("name; DROP"), None, None),
            q(None, Some("up"), None),
            q(Some("name"), None, Some("no-dot")),
            q(Some("name"), None, Some("!!.x")),
        ] {
            assert!(Sort::parse(&bad, ALLOWED).is_err(), "{bad:?}");
        }
    }
}
