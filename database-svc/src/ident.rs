//! Identifiers that reach SQL text, validated strictly.
//!
//! Why: values are always bound as parameters, but a few names cannot be — index names and the
//! JSON paths inside index expressions must be literal for the database to match an index to a
//! query. Everything that is ever spliced into SQL passes one of these checks first, and the
//! checks admit only ASCII letters, digits and `_` (no quotes, no spaces, no punctuation), so
//! there is nothing an attacker could close a literal or an identifier with.

use tansu_shared::Problem;

const MAX_NAME: usize = 63;
const MAX_SEGMENT: usize = 64;
const MAX_PATH_DEPTH: usize = 8;
const MAX_DOC_ID: usize = 128;

/// Collection and index names: `^[a-z][a-z0-9_]{0,62}$`.
pub fn name(kind: &str, s: &str) -> Result<(), Problem> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{kind} name must match ^[a-z][a-z0-9_]{{0,62}}$"
        )))
    }
}

/// Document ids: `^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`. Ids are always bound, never spliced;
/// the restriction keeps them safe in URLs and logs.
pub fn doc_id(s: &str) -> Result<(), Problem> {
    let ok = !s.is_empty()
        && s.len() <= MAX_DOC_ID
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "document id must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$".to_owned(),
        ))
    }
}

/// A field path into a JSON document: dot-separated segments, each
/// `^[A-Za-z_][A-Za-z0-9_]{0,63}$`, at most 8 deep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    pub fn parse(s: &str) -> Result<Self, Problem> {
        let segments: Vec<&str> = s.split('.').collect();
        let seg_ok = |seg: &str| {
            !seg.is_empty()
                && seg.len() <= MAX_SEGMENT
                && (seg.as_bytes()[0].is_ascii_alphabetic() || seg.as_bytes()[0] == b'_')
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        if segments.len() > MAX_PATH_DEPTH || !segments.iter().all(|s| seg_ok(s)) {
            return Err(invalid(format!(
                "field path {:?} must be up to {MAX_PATH_DEPTH} dot-separated segments matching ^[A-Za-z_][A-Za-z0-9_]{{0,63}}$",
                truncate(s)
            )));
        }
        Ok(Self(segments.into_iter().map(str::to_owned).collect()))
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// `$.a.b` — SQLite's JSON path (safe to splice: segments are validated).
    pub fn sqlite_path(&self) -> String {
        format!("$.{}", self.0.join("."))
    }

    /// `{a,b}` — PostgreSQL's text-array path for `#>` (safe to splice: segments are validated).
    pub fn pg_path(&self) -> String {
        format!("{{{}}}", self.0.join(","))
    }

    pub fn dotted(&self) -> String {
        self.0.join(".")
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn invalid(detail: String) -> Problem {
    Problem::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-identifier",
        "Invalid identifier",
    )
    .with_detail(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "orders", "order_items_2", &"a".repeat(63)] {
            assert!(name("collection", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "1a",
            "_a",
            "a-b",
            "a b",
            "a\"b",
            "a;drop table x",
            "é",
            &"a".repeat(64),
        ] {
            assert!(name("collection", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids() {
        assert!(doc_id("0190f5c0-0000-7000-8000-000000000001").is_ok());
        assert!(doc_id("user:42.v1_x").is_ok());
        for bad in ["", "-a", "a/b", "a'b", "a b", &"a".repeat(129)] {
            assert!(doc_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths() {
        let p = FieldPath::parse("address.city").unwrap();
        assert_eq!(p.sqlite_path(), "$.address.city");
        assert_eq!(p.pg_path(), "{address,city}");
        for bad in [
            "",
            "a.",
            ".a",
            "a..b",
            "a'b",
            "a}b",
            "a,b",
            "1a",
            "a.b.c.d.e.f.g.h.i",
            "a[0]",
            "a\"",
        ] {
            assert!(FieldPath::parse(bad).is_err(), "{bad}");
        }
    }
}
