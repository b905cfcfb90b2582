//! The body of the `db_query` fuzz target (`fuzz/`), also run by the test that replays its
//! corpus (`tests/properties.rs`): arbitrary bytes as the body of `POST …/query`, read as the
//! handler reads it (nesting bound, JSON, [`QueryRequest`]) and compiled to SQL in both
//! dialects. Nothing may panic, and an accepted query must compile to SQL whose every value is
//! a bound parameter (placeholders `$1..$n` exactly, balanced quotes, no statement separator or
//! comment, and the same statement whatever the string operands are), and whose next-page
//! cursor belongs to it.

use std::collections::BTreeSet;

use axum::body::Bytes;
use serde_json::Value;

use crate::body::{parse_json, project};
use crate::query::{Dialect, DocQuery, QueryRequest};

/// The service's defaults: JSON nesting, page size and its maximum.
const MAX_DEPTH: usize = 32;
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

/// The `db_query` target.
pub fn query(data: &[u8]) {
    let Ok(value) = parse_json(&Bytes::copy_from_slice(data), MAX_DEPTH) else {
        return;
    };
    let Some(q) = accepted(&value) else {
        return;
    };
    // A struct also deserialises from an array of its fields; what follows edits the object
    // form by key.
    if !value.is_object() {
        return compiles_safely(&q);
    }
    assert!((1..=MAX_LIMIT).contains(&q.limit));
    compiles_safely(&q);
    // The operands are bound, never spliced: other strings, the same statement.
    let mut other = value.clone();
    if let Some(filter) = other.get_mut("filter") {
        replace_strings(filter);
    }
    let q2 = accepted(&other).expect("the operands' text does not decide acceptance");
    for d in [Dialect::Sqlite, Dialect::Postgres] {
        assert_eq!(q.to_sql(d, "id, body").0, q2.to_sql(d, "id, body").0);
    }
    if let Some(fields) = &q.fields {
        let _ = project(&value, fields);
    }
    // Keyset paging: the cursor of a page ending with any document belongs to the query.
    for last in [&value["filter"], &value, &Value::Null] {
        let mut next = value.clone();
        next["cursor"] = Value::String(q.next_cursor("doc-1", last));
        let q = accepted(&next).expect("a query's own cursor belongs to it");
        compiles_safely(&q);
    }
}

fn accepted(value: &Value) -> Option<DocQuery> {
    let req: QueryRequest = serde_json::from_value(value.clone()).ok()?;
    DocQuery::parse(req, DEFAULT_LIMIT, MAX_LIMIT).ok()
}

fn compiles_safely(q: &DocQuery) {
    for d in [Dialect::Sqlite, Dialect::Postgres] {
        let (sql, args) = q.to_sql(d, "id, body");
        let expected: BTreeSet<usize> = (1..=args.len() + 1).collect();
        assert_eq!(placeholders(&sql), expected, "{sql}");
        assert_eq!(sql.matches('\'').count() % 2, 0, "unbalanced quote: {sql}");
        assert!(!sql.contains(';') && !sql.contains("--"), "{sql}");
    }
}

/// The numbers of the `$n` placeholders in a statement.
pub fn placeholders(sql: &str) -> BTreeSet<usize> {
    let mut found = BTreeSet::new();
    for (i, b) in sql.bytes().enumerate() {
        if b == b'$' {
            let digits: String = sql[i + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse() {
                found.insert(n);
            }
        }
    }
    found
}

/// Every string value (not key) in `v` replaced by one that would break a spliced statement.
fn replace_strings(v: &mut Value) {
    match v {
        Value::String(s) => *s = "x'); DROP TABLE documents; --".into(),
        Value::Array(a) => a.iter_mut().for_each(replace_strings),
        Value::Object(o) => o.values_mut().for_each(replace_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_with_every_operator_and_its_next_page() {
        let body = br#"{"filter": {"status": "paid", "total": {"$gte": 10, "$lt": 100.5},
            "tags": {"$in": ["a", "b'; DROP TABLE documents; --"]}, "note": {"$exists": false},
            "customer.name": {"$eq": null}}, "sort": ["-total", "customer.name"],
            "fields": ["total", "customer.name"], "limit": 20}"#;
        let value = parse_json(&Bytes::from_static(body), MAX_DEPTH).unwrap();
        assert!(accepted(&value).is_some());
        query(body);
    }
}
